pub mod authorize;
pub mod token;
