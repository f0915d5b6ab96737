//! Building authorization responses: query redirects and form_post, always with `iss` (RFC 9207).

use url::Url;

/// Where and how the answer of an authorization request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResponse {
    pub redirect_uri: String,
    pub params: Vec<(String, String)>,
    pub form_post: bool,
}

impl AuthResponse {
    /// The redirect target for `response_mode=query`, keeping any query the registered URI has.
    pub fn location(&self) -> String {
        match Url::parse(&self.redirect_uri) {
            Ok(mut url) => {
                {
                    let mut q = url.query_pairs_mut();
                    for (k, v) in &self.params {
                        q.append_pair(k, v);
                    }
                }
                url.to_string()
            }
            Err(_) => self.redirect_uri.clone(),
        }
    }
}

/// The origin (scheme://host:port) of a URL, for the form-action directive.
pub fn origin(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    match url.origin() {
        url::Origin::Tuple(..) => Some(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => None,
    }
}

/// Whether a presented redirect URI matches a registered one: exactly, or, for a registered
/// `http` URI on a loopback IP literal (`127.0.0.1`, `[::1]`) without a port, on any port
/// with everything else equal (RFC 8252 §7.3: native apps listen on an ephemeral port).
/// `localhost` gets no such latitude (RFC 8252 §8.3).
pub fn matches(registered: &str, presented: &str) -> bool {
    if registered == presented {
        return true;
    }
    let (Ok(r), Ok(p)) = (Url::parse(registered), Url::parse(presented)) else {
        return false;
    };
    let loopback = matches!(r.host_str(), Some("127.0.0.1" | "[::1]"));
    loopback
        && r.scheme() == "http"
        && r.port().is_none()
        && p.scheme() == "http"
        && p.host_str() == r.host_str()
        && p.username().is_empty()
        && p.password().is_none()
        && p.path() == r.path()
        && p.query() == r.query()
        && p.fragment().is_none()
}

/// A registered redirect URI must be absolute, without fragment; http only for loopback hosts
/// (RFC 8252 native apps use custom schemes, which are allowed).
pub fn validate_registered(uri: &str) -> Result<(), String> {
    if uri.contains('*') {
        return Err(format!(
            "redirect URI {uri:?} contains '*': wildcards are not supported; register every URI exactly (loopback IP URIs without a port match any port)"
        ));
    }
    let url = Url::parse(uri).map_err(|e| format!("invalid redirect URI {uri:?}: {e}"))?;
    if url.fragment().is_some() {
        return Err(format!("redirect URI {uri:?} must not contain a fragment"));
    }
    if url.scheme() == "http" {
        let host = url.host_str().unwrap_or_default();
        if host != "localhost" && host != "127.0.0.1" && host != "[::1]" {
            return Err(format!(
                "redirect URI {uri:?} must use https (http only for localhost)"
            ));
        }
    }
    if url.scheme() == "javascript" || url.scheme() == "data" {
        return Err(format!("redirect URI {uri:?} has a forbidden scheme"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_keeps_the_registered_query_and_encodes_values() {
        let r = AuthResponse {
            redirect_uri: "https://rp.example/cb?x=1".into(),
            params: vec![
                ("code".into(), "a b".into()),
                ("state".into(), "s&t=u".into()),
            ],
            form_post: false,
        };
        assert_eq!(
            r.location(),
            "https://rp.example/cb?x=1&code=a+b&state=s%26t%3Du"
        );
    }

    #[test]
    fn loopback_ip_redirect_uris_registered_without_a_port_match_any_port_and_nothing_else() {
        let reg = "http://127.0.0.1/callback";
        assert!(matches(reg, "http://127.0.0.1:49152/callback"));
        assert!(matches(reg, "http://127.0.0.1/callback"));
        assert!(matches("http://[::1]/cb", "http://[::1]:8400/cb"));
        for other in [
            "http://127.0.0.1:49152/other",
            "http://127.0.0.1:49152/callback?x=1",
            "https://127.0.0.1:49152/callback",
            "http://127.0.0.2:49152/callback",
            "http://user@127.0.0.1:49152/callback",
            "http://127.0.0.1.evil.example:49152/callback",
        ] {
            assert!(!matches(reg, other), "{other}");
        }
        // A registered port is exact; localhost and other hosts are exact.
        assert!(!matches(
            "http://127.0.0.1:3000/cb",
            "http://127.0.0.1:3001/cb"
        ));
        assert!(!matches("http://localhost/cb", "http://localhost:3001/cb"));
        assert!(!matches(
            "https://rp.example/cb",
            "https://rp.example:444/cb"
        ));
        assert!(matches("https://rp.example/cb", "https://rp.example/cb"));
    }

    #[test]
    fn registered_uris_must_be_safe() {
        assert!(validate_registered("https://rp.example/cb").is_ok());
        assert!(validate_registered("http://localhost:3000/cb").is_ok());
        assert!(validate_registered("http://rp.example/cb").is_err());
        assert!(validate_registered("https://rp.example/cb#frag").is_err());
        assert!(validate_registered("javascript:alert(1)").is_err());
        assert!(validate_registered("https://*.rp.example/cb").is_err());
        assert!(validate_registered("https://rp.example/*").is_err());
        assert!(validate_registered("cb").is_err());
    }
}
