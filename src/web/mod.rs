//! HTTP: extract, call one use case, render. The only layer that knows actix.

pub mod account;
pub mod context;
pub mod cors;
pub mod csrf;
pub mod device_cookie;
pub mod errors;
pub mod extractors;
pub mod oauth;
pub mod oidc;
pub mod pages;
pub mod rate_limit;
pub mod redirects;
pub mod routes;
pub mod security_headers;
pub mod server;
pub mod session_cookie;
pub mod tls;
pub mod webauthn;
