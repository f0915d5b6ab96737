//! What every use case needs besides the connection and the time: configuration and keys.

use crate::config::Config;
use crate::keys::signing::KeySet;

/// Read-only facts handed to domain functions.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub config: &'a Config,
    pub keys: &'a KeySet,
    /// An Argon2id hash of a random password, verified for unknown users so both cases cost the same.
    pub dummy_hash: &'a str,
}
