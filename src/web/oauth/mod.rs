pub mod authorize;
pub mod token;
pub mod token_management;
