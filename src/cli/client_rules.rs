//! What a client registration may hold: the checks `client add` and `client update` share.

use crate::cli::CliError;
use crate::oauth::redirect::validate_registered;
use crate::oauth::web_origin;
use crate::protocol::scope;

pub const GRANT_TYPES: &[&str] = &["authorization_code", "refresh_token", "client_credentials"];

/// At most this many redirect URIs, post-logout URIs or web origins per client.
pub const MAX_URIS: usize = 32;
/// The longest URI accepted at registration.
pub const MAX_URI_LEN: usize = 2048;
/// Bounds of a client's own request budget (token-side requests per minute).
pub const REQUESTS_PER_MINUTE: std::ops::RangeInclusive<i64> = 1..=100_000;

pub fn client_id(id: &str) -> Result<(), CliError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '~'));
    if ok {
        Ok(())
    } else {
        Err(CliError(format!(
            "invalid client id {id:?}: use 1-64 letters, digits, '.', '_', '-' or '~'"
        )))
    }
}

/// Every grant type must be one we support.
pub fn grant_types(list: &[String]) -> Result<(), CliError> {
    for g in list {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(CliError(format!(
                "unsupported grant type {g:?}: supported are {}",
                GRANT_TYPES.join(", ")
            )));
        }
    }
    Ok(())
}

/// Exact URIs: no wildcards, https (http only on loopback), no fragment, bounded.
pub fn uris(list: &[String]) -> Result<(), CliError> {
    if list.len() > MAX_URIS {
        return Err(CliError(format!("at most {MAX_URIS} URIs per client")));
    }
    for u in list {
        if u.len() > MAX_URI_LEN {
            return Err(CliError(format!(
                "a URI may have at most {MAX_URI_LEN} characters"
            )));
        }
        validate_registered(u).map_err(CliError)?;
    }
    Ok(())
}

/// How the grant types fit the rest of the registration.
pub fn grants_fit(
    public: bool,
    grant_types: &[String],
    redirect_uris: &[String],
) -> Result<(), CliError> {
    if grant_types.iter().any(|g| g == "authorization_code") && redirect_uris.is_empty() {
        return Err(CliError("at least one --redirect-uri is required".into()));
    }
    if public && grant_types.iter().any(|g| g == "client_credentials") {
        return Err(CliError(
            "a --public client cannot use the client_credentials grant".into(),
        ));
    }
    Ok(())
}

/// Scopes as given (a value with spaces counts as several), checked and without duplicates.
pub fn scopes(given: &[String]) -> Result<Vec<String>, CliError> {
    let mut all = Vec::new();
    for s in given {
        for one in scope::parse(s).map_err(CliError)? {
            if !scope::SUPPORTED.contains(&one.as_str()) && !scope::valid_custom(&one) {
                return Err(CliError(format!(
                    "invalid scope {one:?}: use a standard scope ({}) or letters, digits and ._:-/",
                    scope::SUPPORTED.join(", ")
                )));
            }
            if !all.contains(&one) {
                all.push(one);
            }
        }
    }
    if all.len() > 64 {
        return Err(CliError("at most 64 scopes per client".into()));
    }
    Ok(all)
}

/// The name shown on the consent page.
pub fn name(name: &str) -> Result<(), CliError> {
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(CliError(
            "invalid --name: 1-128 printable characters".into(),
        ));
    }
    Ok(())
}

/// Web origins in their serialized form, without duplicates.
pub fn web_origins(given: &[String]) -> Result<Vec<String>, CliError> {
    web_origin::registration_list(given, None).map_err(CliError)
}

/// A client's own budget of token-side requests per minute.
pub fn requests_per_minute(n: i64) -> Result<i32, CliError> {
    if !REQUESTS_PER_MINUTE.contains(&n) {
        return Err(CliError(format!(
            "--requests-per-minute must be between {} and {}",
            REQUESTS_PER_MINUTE.start(),
            REQUESTS_PER_MINUTE.end()
        )));
    }
    i32::try_from(n).map_err(|_| CliError("--requests-per-minute is too large".into()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn wildcard_redirect_uris_are_refused_with_a_message_saying_so() {
        let err = uris(&["https://*.example.com/cb".into()]).unwrap_err();
        assert!(err.0.contains("wildcard"), "{}", err.0);
        assert!(uris(&["https://app.example.com/cb".into()]).is_ok());
    }

    #[test]
    fn request_budgets_outside_one_to_a_hundred_thousand_are_refused() {
        assert!(requests_per_minute(0).is_err());
        assert!(requests_per_minute(100_001).is_err());
        assert!(requests_per_minute(-5).is_err());
        assert_eq!(requests_per_minute(1).unwrap(), 1);
        assert_eq!(requests_per_minute(100_000).unwrap(), 100_000);
    }

    #[test]
    fn web_origins_are_normalized_and_deduplicated() {
        let got = web_origins(&[
            "https://App.example".into(),
            "https://app.example:443".into(),
        ])
        .unwrap();
        assert_eq!(got, vec!["https://app.example".to_string()]);
        assert!(web_origins(&["https://app.example/path".into()]).is_err());
    }
}
