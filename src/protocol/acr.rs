//! The authentication context classes Portcullis issues (`acr`, discovery
//! `acr_values_supported`).

/// A password sign-in.
pub const ACR_SINGLE_FACTOR: &str = "1";
/// Two factors: a password and a second factor, or a passkey with user verification.
pub const ACR_MULTI_FACTOR: &str = "2";
