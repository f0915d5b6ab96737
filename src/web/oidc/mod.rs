pub mod discovery;
pub mod userinfo;
