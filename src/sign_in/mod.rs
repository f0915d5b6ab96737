//! Signing users in: passwords and browser sessions.

pub mod login;
pub mod password;
pub mod sessions;
pub mod throttle;
