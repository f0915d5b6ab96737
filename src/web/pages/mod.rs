pub mod consent;
pub mod home;
pub mod login;
