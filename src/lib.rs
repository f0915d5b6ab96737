//! Portcullis: an OAuth 2.0 / OpenID Connect identity provider.

pub(crate) mod account;
pub mod app;
pub mod audit;
pub(crate) mod bootstrap;
pub mod cli;
pub mod clock;
pub mod config;
pub mod context;
pub mod db;
pub mod error;
pub mod jobs;
pub mod keys;
pub(crate) mod maintenance;
pub(crate) mod metrics;
pub mod oauth;
pub(crate) mod oidc;
pub(crate) mod private_files;
pub mod protocol;
pub(crate) mod rate_limit;
pub(crate) mod retry;
pub mod sign_in;
pub mod store;
#[cfg(test)]
pub(crate) mod testkit;
pub mod web;
