//! CSRF protection of page forms. A signed-in (or half signed-in) browser's forms carry the
//! synchronizer token of its server-side session. An anonymous visitor has no session (a
//! page view writes nothing): its forms carry a signed double-submit token instead, an HMAC
//! under a key derived from the master key over a random value the browser holds in an
//! HttpOnly cookie. Another site can neither read that cookie nor compute the token, and the
//! `__Host-` prefix (outside development mode) keeps sibling hosts from planting one. Both
//! kinds are compared in constant time; an Origin check comes on top.

use actix_web::HttpRequest;
use actix_web::cookie::Cookie;
use actix_web::http::header;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::Config;
use crate::keys::master::MasterKey;
use crate::keys::secrets::{ct_eq, random_token, sha256_hex};
use crate::sign_in::sessions::BrowserSession;

/// True when the form's token matches the session's.
pub fn token_ok(session: Option<&BrowserSession>, presented: Option<&str>) -> bool {
    match (session, presented) {
        (Some(s), Some(p)) => ct_eq(s.csrf_token(), p),
        _ => false,
    }
}

/// Refuses a cross-site POST. Browsers that send `Sec-Fetch-Site` must say `same-origin`;
/// otherwise an `Origin` header, when it names an origin, must be ours. (Our pages send
/// `Referrer-Policy: no-referrer`, which makes browsers send `Origin: null` on same-origin posts.)
pub fn origin_ok(req: &HttpRequest, config: &Config) -> bool {
    let h = req.headers();
    if let Some(site) = h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return site == "same-origin";
    }
    match h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None | Some("null") => true,
        Some(o) => match url::Url::parse(&config.issuer) {
            Ok(issuer) => issuer.origin().ascii_serialization() == o,
            Err(_) => false,
        },
    }
}

/// Purpose of the key that signs anonymous form tokens.
pub const ANONYMOUS_PURPOSE: &str = "csrf-anonymous";

/// The cookie holding an anonymous visitor's random value.
pub fn anonymous_cookie_name(config: &Config) -> &'static str {
    crate::web::session_cookie::prefixed(config, "portcullis_csrf", "__Host-portcullis_csrf")
}

/// The form token for a cookie value: base64url HMAC-SHA256 under the purpose key.
pub fn anonymous_token(master: &MasterKey, cookie: &str) -> String {
    use hmac::{Hmac, Mac};
    let key = master.derive(ANONYMOUS_PURPOSE);
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key.as_ref()) else {
        return String::new();
    };
    mac.update(b"portcullis|csrf|");
    mac.update(cookie.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// A value we could have made: 43 base64url characters.
fn well_formed(v: &str) -> bool {
    v.len() == 43
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn anonymous_cookie_value(req: &HttpRequest, config: &Config) -> Option<String> {
    req.cookie(anonymous_cookie_name(config))
        .map(|c| c.value().to_string())
        .filter(|v| well_formed(v))
}

/// What an anonymous page needs: the token for its forms, and the cookie to set when the
/// browser did not have a usable one yet.
#[derive(Debug, Clone)]
pub struct AnonymousForm {
    pub token: String,
    pub new_cookie: Option<Cookie<'static>>,
}

/// The visitor's anonymous form token, reusing the cookie it holds (several tabs keep working).
pub fn anonymous_form(req: &HttpRequest, config: &Config, master: &MasterKey) -> AnonymousForm {
    match anonymous_cookie_value(req, config) {
        Some(v) => AnonymousForm {
            token: anonymous_token(master, &v),
            new_cookie: None,
        },
        None => {
            let v = random_token();
            AnonymousForm {
                token: anonymous_token(master, &v),
                new_cookie: Some(anonymous_cookie(config, v)),
            }
        }
    }
}

/// HttpOnly, SameSite=Lax, Secure and `__Host-` outside development mode; gone with the
/// browser session.
fn anonymous_cookie(config: &Config, value: String) -> Cookie<'static> {
    crate::web::session_cookie::build(config, anonymous_cookie_name(config), value, None)
}

/// When the form's token is the one made for the cookie this browser sent: a stable id of
/// the visitor (a hash of the cookie value) that binds what it begins, such as a passkey
/// ceremony, to this browser.
pub fn anonymous_visitor(
    req: &HttpRequest,
    config: &Config,
    master: &MasterKey,
    presented: Option<&str>,
) -> Option<String> {
    let cookie = anonymous_cookie_value(req, config)?;
    let presented = presented?;
    ct_eq(&anonymous_token(master, &cookie), presented)
        .then(|| format!("anon:{}", sha256_hex(&cookie)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anonymous_tokens_depend_on_the_cookie_and_the_master_key() {
        let k = MasterKey::from_bytes([1u8; 32]);
        let a = anonymous_token(&k, "a");
        assert_eq!(a, anonymous_token(&k, "a"));
        assert_ne!(a, anonymous_token(&k, "b"));
        assert_ne!(a, anonymous_token(&MasterKey::from_bytes([2u8; 32]), "a"));
        assert!(well_formed(&a) && well_formed(&random_token()));
        assert!(!well_formed("short") && !well_formed(&"=".repeat(43)));
    }
}
