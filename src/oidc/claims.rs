//! Which user claims a set of scopes releases (OpenID Connect Core §5.4).

use serde_json::{Map, Value, json};

use crate::oauth::scope;
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
            .map(|_| json!(false)),
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
}
