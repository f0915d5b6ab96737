pub mod consent;
pub mod home;
pub mod login;
pub mod second_factor;
