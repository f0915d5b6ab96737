//! OAuth 2.0: authorization requests, the token endpoint and the oxide-auth primitives over diesel.

pub mod acr;
pub mod authorize;
pub mod client_auth;
pub mod errors;
pub mod introspection;
pub mod par;
pub mod primitives;
pub mod redirect;
pub mod refresh_reuse;
pub mod revocation;
pub mod token;
pub mod web_origin;
