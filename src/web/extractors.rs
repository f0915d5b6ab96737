//! Small request readers shared by handlers.

use actix_web::HttpRequest;
use actix_web::http::header;

use std::net::IpAddr;

use crate::config::Config;
use crate::sign_in::sessions::Origin;

/// `application/x-www-form-urlencoded` pairs, in order, duplicates kept (callers decide).
pub fn form_pairs(raw: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// The single value of a form field, if present once.
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let mut it = pairs.iter().filter(|(k, _)| k == name);
    let first = it.next()?;
    if it.next().is_some() {
        return None;
    }
    Some(first.1.as_str())
}

/// The parked authorization request a page or form carries along, if any (never empty).
pub fn request_param(pairs: &[(String, String)]) -> Option<String> {
    field(pairs, "request")
        .filter(|r| !r.is_empty())
        .map(str::to_string)
}

/// True when the body was sent as a form.
pub fn is_form(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
        .unwrap_or(false)
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the nearest address in
/// `X-Forwarded-For` that is not itself a trusted proxy. `None` when the peer is unknown.
pub fn client_ip(req: &HttpRequest, trusted: &[IpAddr]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !trusted.contains(&peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    Some(
        forwarded
            .iter()
            .rev()
            .find(|ip| !trusted.contains(ip))
            .copied()
            .unwrap_or(peer),
    )
}

/// The client address, user agent and device cookie (the address may be missing, e.g. in some
/// test setups).
pub fn origin(req: &HttpRequest, config: &Config) -> Origin {
    Origin {
        ip: client_ip(req, &config.trusted_proxies).map(|a| a.to_string()),
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        device: crate::web::device_cookie::read(req, config),
    }
}

/// The Authorization header as text.
pub fn authorization(req: &HttpRequest) -> Option<String> {
    req.headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// The id the middleware gave this request (logs, `X-Request-Id`, the audit trail).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// The request's origin for the audit trail.
pub fn meta(req: &HttpRequest, config: &Config) -> crate::context::RequestMeta {
    use actix_web::HttpMessage;
    let o = origin(req, config);
    crate::context::RequestMeta {
        ip: o.ip,
        user_agent: o.user_agent,
        request_id: req.extensions().get::<RequestId>().map(|r| r.0.clone()),
    }
}
