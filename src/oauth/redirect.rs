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

/// A registered redirect URI must be absolute, without fragment; http only for loopback hosts
/// (RFC 8252 native apps use custom schemes, which are allowed).
pub fn validate_registered(uri: &str) -> Result<(), String> {
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
    fn registered_uris_must_be_safe() {
        assert!(validate_registered("https://rp.example/cb").is_ok());
        assert!(validate_registered("http://localhost:3000/cb").is_ok());
        assert!(validate_registered("http://rp.example/cb").is_err());
        assert!(validate_registered("https://rp.example/cb#frag").is_err());
        assert!(validate_registered("javascript:alert(1)").is_err());
        assert!(validate_registered("cb").is_err());
    }
}
