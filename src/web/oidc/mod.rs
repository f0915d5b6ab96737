pub mod discovery;
pub mod logout;
pub mod userinfo;
