//! Web origins of browser-based clients (CORS): what an operator may register and how a
//! presented `Origin` header is compared with it.

use url::Url;

/// The longest origin accepted at registration.
pub const MAX_LEN: usize = 255;

/// Parses an origin an operator registers (`https://app.example` or `https://app.example:8443`;
/// `http` only for `localhost` and loopback addresses) into its serialized form
/// (lower-case host, default port dropped). Paths, queries, fragments, credentials and
/// wildcards are refused with a message naming the problem.
pub fn parse(raw: &str) -> Result<String, String> {
    if raw.is_empty() || raw.len() > MAX_LEN {
        return Err(format!("web origin must be 1-{MAX_LEN} characters"));
    }
    if raw.contains('*') {
        return Err(format!(
            "web origin {raw:?}: wildcards are not allowed; register each origin exactly"
        ));
    }
    let url = Url::parse(raw).map_err(|e| format!("web origin {raw:?} is not a URL: {e}"))?;
    let tail = raw
        .split_once("://")
        .map(|(_, rest)| rest.contains('/') || rest.contains('?') || rest.contains('#'))
        .unwrap_or(true);
    if tail || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "web origin {raw:?} must be scheme://host[:port] only, without a path, query or credentials"
        ));
    }
    let host = url.host_str().unwrap_or_default();
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "web origin {raw:?} must use https (http only for localhost and loopback addresses)"
            ));
        }
        other => {
            return Err(format!(
                "web origin {raw:?}: scheme {other:?} is not allowed"
            ));
        }
    }
    match url.origin() {
        url::Origin::Tuple(..) => Ok(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => Err(format!("web origin {raw:?} has no origin")),
    }
}

/// The web origin of a registered redirect URI, for operators who derive a browser app's
/// origins from its redirect URIs. `None` for URIs that are not web origins (custom schemes
/// of native apps, plain `http` on a public host).
pub fn of_redirect_uri(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    let origin = match url.origin() {
        url::Origin::Tuple(..) => url.origin().ascii_serialization(),
        url::Origin::Opaque(_) => return None,
    };
    parse(&origin).ok()
}

/// Whether the `Origin` header a browser sent is one of the registered origins. Comparison is
/// exact on the serialized form; `null` and malformed headers never match.
pub fn allowed(registered: &[String], presented: &str) -> bool {
    if presented.len() > MAX_LEN {
        return false;
    }
    let Ok(presented) = parse(presented) else {
        return false;
    };
    registered.contains(&presented)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_normalized_and_its_default_port_dropped() {
        assert_eq!(
            parse("https://App.Example:443").as_deref(),
            Ok("https://app.example")
        );
        assert_eq!(
            parse("https://app.example:8443").as_deref(),
            Ok("https://app.example:8443")
        );
        assert_eq!(
            parse("http://localhost:5173").as_deref(),
            Ok("http://localhost:5173")
        );
    }

    #[test]
    fn paths_wildcards_credentials_and_plain_http_are_refused() {
        for bad in [
            "https://app.example/",
            "https://app.example/cb",
            "https://*.example",
            "*",
            "null",
            "https://u:p@app.example",
            "http://app.example",
            "javascript://x",
            "app.example",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_redirect_uri_yields_its_web_origin_and_a_native_one_none() {
        assert_eq!(
            of_redirect_uri("https://app.example/cb?x=1").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(of_redirect_uri("com.example.app:/cb"), None);
        assert_eq!(of_redirect_uri("http://app.example/cb"), None);
    }

    #[test]
    fn only_a_registered_origin_is_allowed() {
        let reg = vec!["https://app.example".to_string()];
        assert!(allowed(&reg, "https://app.example"));
        assert!(allowed(&reg, "https://app.example:443"));
        assert!(!allowed(&reg, "https://app.example.evil"));
        assert!(!allowed(&reg, "https://evil.example"));
        assert!(!allowed(&reg, "null"));
        assert!(!allowed(&reg, "http://app.example"));
    }
}
