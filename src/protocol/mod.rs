//! The vocabulary OAuth 2.0 and OpenID Connect share: request parameters and their bounds,
//! scopes, what a grant carries, and the authentication context classes. Below both `oauth`
//! and `oidc`, so neither needs the other's internals for it.

pub mod acr;
pub mod grant_data;
pub mod params;
pub mod scope;
