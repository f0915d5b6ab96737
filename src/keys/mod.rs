//! Key material: random secrets and their hashes, signing keys and the JWKS.

pub mod master;
pub mod secrets;
pub mod signing;
