//! Which user claims a set of scopes releases (OpenID Connect Core §5.4).

use serde_json::{Map, Value, json};

use crate::protocol::scope;
use crate::store::users::User;

/// Claims a relying party may ask for by name through the `claims` parameter.
pub const REQUESTABLE: &[&str] = &[
    "name",
    "preferred_username",
    "email",
    "email_verified",
    "groups",
    "updated_at",
];

/// The scope that releases a requestable claim: a client registered without that scope may
/// never receive the claim, whatever it asks for through `claims`.
pub fn scope_of(claim: &str) -> Option<&'static str> {
    match claim {
        "name" | "preferred_username" | "updated_at" => Some("profile"),
        "email" | "email_verified" => Some("email"),
        "groups" => Some("groups"),
        _ => None,
    }
}

/// What a claim means, in words for the consent page.
pub fn describe(claim: &str) -> &'static str {
    match claim {
        "name" => "Your name",
        "preferred_username" => "Your username",
        "updated_at" => "When your profile was last changed",
        "email" => "Your email address",
        "email_verified" => "Whether your email address is verified",
        "groups" => "The groups you belong to",
        _ => "Additional data about you",
    }
}

/// The claims of `requested` a client registered for `registered` scopes may receive.
pub fn allowed(requested: Vec<String>, registered: &[String]) -> Vec<String> {
    requested
        .into_iter()
        .filter(|c| scope_of(c).is_some_and(|s| registered.iter().any(|r| r == s)))
        .collect()
}

/// One claim of the user, if the user has it.
fn claim(user: &User, name: &str) -> Option<Value> {
    match name {
        "name" => user
            .name
            .as_ref()
            .filter(|n| !n.is_empty())
            .map(|n| json!(n)),
        "preferred_username" => Some(json!(user.username)),
        "email" => user
            .email
            .as_ref()
            .filter(|e| !e.is_empty())
            .map(|e| json!(e)),
        "email_verified" => user
            .email
            .as_ref()
            .filter(|e| !e.is_empty())
            .map(|_| json!(user.email_verified)),
        "groups" => Some(json!(user.group_list())),
        "updated_at" => Some(json!(user.updated_at.and_utc().timestamp())),
        _ => None,
    }
}

/// The named claims the user has (for the ID token, when asked through `claims`).
pub fn subset(user: &User, names: &[String]) -> Map<String, Value> {
    names
        .iter()
        .filter_map(|n| claim(user, n).map(|v| (n.clone(), v)))
        .collect()
}

/// Userinfo: the scope's claims plus those asked for through `claims`.
pub fn for_request(user: &User, scopes: &str, requested: &[String]) -> Map<String, Value> {
    let mut m = for_scopes(user, scopes);
    for (k, v) in subset(user, requested) {
        m.entry(k).or_insert(v);
    }
    m
}

/// Parses the `claims` request parameter into (userinfo, id_token) claim names we can release.
pub fn parse_request(raw: &str) -> Result<(Vec<String>, Vec<String>), String> {
    let v: Value = serde_json::from_str(raw).map_err(|_| "claims is not valid JSON".to_string())?;
    let obj = v.as_object().ok_or("claims must be a JSON object")?;
    let names = |member: &str| -> Result<Vec<String>, String> {
        match obj.get(member) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(m)) => {
                for spec in m.values() {
                    if !(spec.is_null() || spec.is_object()) {
                        return Err(format!("claims.{member} members must be null or objects"));
                    }
                }
                Ok(m.keys()
                    .filter(|k| REQUESTABLE.contains(&k.as_str()))
                    .cloned()
                    .collect())
            }
            Some(_) => Err(format!("claims.{member} must be an object")),
        }
    };
    Ok((names("userinfo")?, names("id_token")?))
}

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
        // Operators vouch for an address (`user set --email-verified true`); no mail round
        // trip proves it, and a changed address is unverified again.
        m.insert("email_verified".into(), json!(user.email_verified));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_parameter_is_parsed_and_unknown_claims_dropped() {
        let (u, i) = parse_request(
            r#"{"userinfo":{"name":{"essential":true},"shoe_size":null},"id_token":{"email":null}}"#,
        )
        .unwrap();
        assert_eq!(u, vec!["name".to_string()]);
        assert_eq!(i, vec!["email".to_string()]);
        assert!(parse_request("not json").is_err());
        assert!(parse_request("[]").is_err());
        assert!(parse_request(r#"{"userinfo":{"name":1}}"#).is_err());
        assert!(parse_request(r#"{"userinfo":[]}"#).is_err());
    }

    #[test]
    fn every_requestable_claim_belongs_to_a_scope_that_limits_it() {
        for c in REQUESTABLE {
            assert!(scope_of(c).is_some(), "{c}");
        }
        let registered = vec!["openid".to_string(), "email".to_string()];
        let asked: Vec<String> = ["email", "name", "groups", "email_verified", "sub"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(
            allowed(asked, &registered),
            vec!["email".to_string(), "email_verified".to_string()]
        );
        assert!(allowed(vec!["email".into()], &["openid".to_string()]).is_empty());
    }
}
