//! Scopes: parsing, what we support and how each is described to the user.

pub const OPENID: &str = "openid";
pub const OFFLINE_ACCESS: &str = "offline_access";

/// The standard scopes, in the order the consent page lists them.
pub const SUPPORTED: &[&str] = &["openid", "profile", "email", "groups", "offline_access"];

/// Splits a scope parameter; refuses characters RFC 6749 §3.3 does not allow.
pub fn parse(raw: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for s in raw.split(' ').filter(|s| !s.is_empty()) {
        if !s
            .bytes()
            .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b))
        {
            return Err("scope contains characters that are not allowed".into());
        }
        if !out.iter().any(|x| x == s) {
            out.push(s.to_string());
        }
    }
    Ok(out)
}

/// Scopes that identify the user (meaningless without one, e.g. for client credentials).
pub const USER_SCOPES: &[&str] = &["openid", "profile", "email", "groups", "offline_access"];

/// A custom scope name an operator may register: letters, digits and `._:-/`, at most 64.
pub fn valid_custom(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-' | '/'))
}

/// What a scope means, in words for the consent page.
pub fn describe(scope: &str) -> &'static str {
    match scope {
        "openid" => "Confirm who you are (your user identifier)",
        "profile" => "Your name and username",
        "email" => "Your email address",
        "groups" => "The groups you belong to",
        "offline_access" => "Stay connected when you are not using it (refresh tokens)",
        _ => "Access to additional data",
    }
}

/// Joins scopes the way they travel on the wire.
pub fn join(scopes: &[String]) -> String {
    scopes.join(" ")
}

/// A scope string in a stable order (oxide-auth keeps scopes in a set).
pub fn normalize(scopes: &str) -> String {
    let mut v: Vec<&str> = scopes.split(' ').filter(|s| !s.is_empty()).collect();
    v.sort_unstable();
    v.dedup();
    v.join(" ")
}

pub fn contains(scopes: &str, wanted: &str) -> bool {
    scopes.split(' ').any(|s| s == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_drops_duplicates_and_empty_parts() {
        assert_eq!(
            parse("openid  email openid").unwrap(),
            vec!["openid".to_string(), "email".to_string()]
        );
        assert!(parse("open\"id").is_err());
        assert!(parse("a\\b").is_err());
        assert!(parse("").unwrap().is_empty());
    }
}
