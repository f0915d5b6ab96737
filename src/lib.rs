//! Portcullis: an OAuth 2.0 / OpenID Connect identity provider.

pub mod account;
pub mod app;
pub mod audit;
pub mod bootstrap;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod db;
pub mod error;
pub mod jobs;
pub mod keys;
pub mod maintenance;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod private_files;
pub mod protocol;
pub mod rate_limit;
pub mod retry;
pub mod sign_in;
pub mod store;
#[cfg(test)]
pub(crate) mod testkit;
pub mod web;
