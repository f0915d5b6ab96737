//! The session cookie: only a random id; HttpOnly, SameSite=Lax, Secure and `__Host-` outside
//! development mode.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, SameSite, time::Duration as CookieDuration};

use crate::config::Config;

pub fn name(config: &Config) -> &'static str {
    prefixed(config, "portcullis_session", "__Host-portcullis_session")
}

/// A cookie's name: `dev` in development mode, its `__Host-` form otherwise.
pub fn prefixed(config: &Config, dev: &'static str, host: &'static str) -> &'static str {
    if config.dev_mode { dev } else { host }
}

/// Every cookie we set: for the whole site, HttpOnly, SameSite=Lax, Secure outside
/// development mode; `max_age` in seconds, or none for a browser-session cookie.
pub fn build(
    config: &Config,
    name: &'static str,
    value: String,
    max_age: Option<i64>,
) -> Cookie<'static> {
    let mut c = Cookie::build(name, value)
        .path("/")
        .http_only(true)
        .secure(!config.dev_mode)
        .same_site(SameSite::Lax)
        .finish();
    if let Some(seconds) = max_age {
        c.set_max_age(CookieDuration::seconds(seconds));
    }
    c
}

/// The cookie value the browser sent, if any.
pub fn read(req: &HttpRequest, config: &Config) -> Option<String> {
    req.cookie(name(config))
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 128)
}

/// A cookie carrying a new session id, living as long as the session may.
pub fn set(config: &Config, value: &str) -> Cookie<'static> {
    build(
        config,
        name(config),
        value.to_string(),
        Some(config.lifetimes.session_absolute),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Lifetimes;

    fn config(issuer: &str) -> Config {
        Config::build(
            "127.0.0.1:0".into(),
            issuer,
            "sqlite://x.db",
            Lifetimes::default(),
            1,
        )
        .unwrap()
    }

    #[test]
    fn outside_development_the_cookie_is_secure_and_host_prefixed() {
        let c = set(&config("https://id.example.com"), "v");
        assert_eq!(c.name(), "__Host-portcullis_session");
        assert_eq!(c.secure(), Some(true));
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Lax));
        assert_eq!(c.path(), Some("/"));
        assert!(c.domain().is_none());
    }

    #[test]
    fn in_development_the_cookie_may_travel_over_plain_http() {
        let c = set(&config("http://localhost:8080"), "v");
        assert_eq!(c.name(), "portcullis_session");
        assert_eq!(c.secure(), Some(false));
        assert_eq!(c.http_only(), Some(true));
    }
}
