//! Signing users in: passwords, second factors and browser sessions.

pub mod device;
pub mod finish;
pub mod login;
pub mod passkey_sign_in;
pub mod passkeys;
pub mod password;
pub mod recovery_codes;
pub mod second_factor;
pub mod sessions;
pub mod throttle;
pub mod totp;
