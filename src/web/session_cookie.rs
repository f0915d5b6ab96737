//! The session cookie: only a random id; HttpOnly, SameSite=Lax, Secure and `__Host-` outside
//! development mode.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};

use crate::config::Config;

pub fn name(config: &Config) -> &'static str {
    if config.dev_mode {
        "portcullis_session"
    } else {
        "__Host-portcullis_session"
    }
}

/// The cookie value the browser sent, if any.
pub fn read(req: &HttpRequest, config: &Config) -> Option<String> {
    req.cookie(name(config))
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// A cookie carrying a new session id, living as long as the session may.
pub fn set(config: &Config, value: &str) -> Cookie<'static> {
    Cookie::build(name(config), value.to_string())
        .path("/")
        .http_only(true)
        .secure(!config.dev_mode)
        .same_site(SameSite::Lax)
        .max_age(CookieDuration::seconds(config.lifetimes.session_absolute))
        .finish()
}
