//! Which user claims a set of scopes releases (OpenID Connect Core §5.4).

use serde_json::{Map, Value, json};

use crate::oauth::scope;
use crate::store::users::User;

/// Claims for userinfo: `sub` always, the rest by scope; absent values are left out, never empty.
pub fn for_scopes(user: &User, scopes: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("sub".into(), json!(user.id));
    if scope::contains(scopes, "profile") {
        m.insert("preferred_username".into(), json!(user.username));
        if let Some(n) = user.name.as_ref().filter(|n| !n.is_empty()) {
            m.insert("name".into(), json!(n));
        }
        m.insert(
            "updated_at".into(),
            json!(user.updated_at.and_utc().timestamp()),
        );
    }
    if scope::contains(scopes, "email")
        && let Some(e) = user.email.as_ref().filter(|e| !e.is_empty())
    {
        m.insert("email".into(), json!(e));
        // Addresses are set by operators, not proven by a mail round trip.
        m.insert("email_verified".into(), json!(false));
    }
    if scope::contains(scopes, "groups") {
        m.insert("groups".into(), json!(user.group_list()));
    }
    m
}

/// Every claim we can release, for discovery.
pub const SUPPORTED: &[&str] = &[
    "sub",
    "iss",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "acr",
    "amr",
    "azp",
    "at_hash",
    "sid",
    "name",
    "preferred_username",
    "email",
    "email_verified",
    "groups",
    "updated_at",
];
