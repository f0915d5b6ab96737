//! The redirects pages answer with after a form: never cached, the session (and device) cookie
//! renewed when sign-in changed it.

use actix_web::HttpResponse;
use actix_web::http::header;

use crate::config::Config;
use crate::sign_in::login::Landing;
use crate::web::{device_cookie, session_cookie};

/// 303 to a path of ours.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// 303 after a sign-in step, carrying the new session cookie (first) and, once the sign-in is
/// complete, the device cookie.
pub fn signed_in(config: &Config, landing: &Landing) -> HttpResponse {
    let mut b = HttpResponse::SeeOther();
    b.cookie(session_cookie::set(config, &landing.cookie));
    if let Some(d) = &landing.device {
        b.cookie(device_cookie::set(config, d));
    }
    b.insert_header((header::LOCATION, landing.next.clone()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// `path` with the authorization request it belongs to, if any.
pub fn with_request(path: &str, request: Option<&str>) -> String {
    crate::sign_in::login::with_request(path, request)
}
