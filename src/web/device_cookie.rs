//! The device cookie (see `sign_in/device.rs`): set at every full sign-in, read on sign-in
//! and re-authentication attempts. HttpOnly, SameSite=Lax, Secure and `__Host-` outside
//! development mode, like the session cookie; it outlives the session.

use actix_web::HttpRequest;
use actix_web::cookie::Cookie;

use crate::config::Config;
use crate::web::session_cookie;

pub fn name(config: &Config) -> &'static str {
    session_cookie::prefixed(config, "portcullis_device", "__Host-portcullis_device")
}

/// The cookie value the browser sent, if any (checked by the use case).
pub fn read(req: &HttpRequest, config: &Config) -> Option<String> {
    req.cookie(name(config))
        .map(|c| c.value().to_string())
        .filter(|v| !v.is_empty() && v.len() <= 512)
}

/// The cookie carrying a newly issued device value.
pub fn set(config: &Config, value: &str) -> Cookie<'static> {
    session_cookie::build(
        config,
        name(config),
        value.to_string(),
        Some(config.lifetimes.device),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Lifetimes;
    use actix_web::cookie::{SameSite, time::Duration as CookieDuration};

    #[test]
    fn outside_development_the_device_cookie_is_secure_and_host_prefixed() {
        let config = Config::build(
            "127.0.0.1:0".into(),
            "https://id.example.com",
            "sqlite://x.db",
            Lifetimes::default(),
            1,
        )
        .unwrap();
        let c = set(&config, "v");
        assert_eq!(c.name(), "__Host-portcullis_device");
        assert_eq!(c.secure(), Some(true));
        assert_eq!(c.http_only(), Some(true));
        assert_eq!(c.same_site(), Some(SameSite::Lax));
        assert_eq!(c.path(), Some("/"));
        assert_eq!(c.max_age(), Some(CookieDuration::days(30)));
    }
}
