//! Integration tests: a real server on loopback, a real database, a real relying party.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod account;
mod attacks;
mod audit;
mod authorize_bounds;
mod authorize_errors;
mod browser;
mod claims_consent;
mod cli;
mod client_auth;
mod conformance;
mod cors;
mod cors_browser;
mod data_protection;
mod discovery;
mod factor_changes;
mod flow;
mod grant_checks;
mod key_rotation;
mod lockout;
mod logout;
mod master_rotation;
mod mfa;
mod mfa_browser;
mod native_apps;
mod observability;
mod par;
mod passkeys;
mod refresh_scope;
mod resilience;
mod sign_in_page;
mod token_errors;
mod token_management;
mod userinfo;
