//! HTTP: extract, call one use case, render. The only layer that knows actix.

pub(crate) mod account;
pub(crate) mod context;
pub(crate) mod cors;
pub(crate) mod csrf;
pub(crate) mod device_cookie;
pub(crate) mod errors;
pub(crate) mod extractors;
pub(crate) mod oauth;
pub(crate) mod oidc;
pub(crate) mod pages;
pub(crate) mod rate_limit;
pub(crate) mod redirects;
pub(crate) mod routes;
pub(crate) mod security_headers;
pub mod server;
pub(crate) mod session_cookie;
pub(crate) mod tls;
pub(crate) mod webauthn;
