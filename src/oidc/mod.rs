//! OpenID Connect: discovery, ID tokens, userinfo claims.

pub mod backchannel;
pub mod claims;
pub mod discovery;
pub mod id_token;
pub mod logout;
pub mod userinfo;
