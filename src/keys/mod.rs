//! Key material: random secrets and their hashes, signing keys and the JWKS.

pub mod algs;
pub mod at_rest;
pub mod master;
pub mod secrets;
pub mod signing;
