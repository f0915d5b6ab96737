//! Diesel queries, one file per group of tables. No HTTP, no policy.

pub mod audit_log;
pub mod auth_codes;
pub mod auth_requests;
pub mod clients;
pub mod consents;
pub mod logout_deliveries;
pub mod mfa;
pub mod password_history;
pub mod pushed_requests;
pub mod session_clients;
pub mod sessions;
pub mod signing_keys;
pub mod throttles;
pub mod tokens;
pub mod users;
pub mod webhook_deliveries;
