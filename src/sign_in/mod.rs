//! Signing users in: passwords and browser sessions.

pub mod password;
pub mod sessions;
