//! CSRF protection of page forms: a synchronizer token bound to the server-side session,
//! compared in constant time, plus an Origin check when the browser sends one.

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::config::Config;
use crate::keys::secrets::ct_eq;
use crate::store::sessions::Session;

/// True when the form's token matches the session's.
pub fn token_ok(session: Option<&Session>, presented: Option<&str>) -> bool {
    match (session, presented) {
        (Some(s), Some(p)) => ct_eq(&s.csrf_token, p),
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
