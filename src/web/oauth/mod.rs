pub mod authorize;
pub mod par;
pub mod token;
pub mod token_management;
