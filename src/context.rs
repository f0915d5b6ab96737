//! What every use case needs besides the connection and the time: configuration and keys.

use crate::config::Config;
use crate::keys::signing::KeySet;

/// Where a request came from, for the audit trail.
#[derive(Debug, Clone, Default)]
pub struct RequestMeta {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub request_id: Option<String>,
}

/// Read-only facts handed to domain functions.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub keys: &'a KeySet,
    /// An Argon2id hash of a random password, verified for unknown users so both cases cost the same.
    pub dummy_hash: &'a str,
    pub meta: &'a RequestMeta,
    pub metrics: &'a crate::metrics::Metrics,
    /// Seals and opens TOTP secrets.
    pub master: &'a crate::keys::master::MasterKey,
    /// The relying-party side of WebAuthn; `None` when the issuer's host cannot be an RP id.
    pub webauthn: Option<&'a webauthn_rs::Webauthn>,
}
