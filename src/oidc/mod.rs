//! OpenID Connect: discovery, ID tokens, userinfo claims.

pub mod claims;
pub mod discovery;
pub mod id_token;
pub mod userinfo;
