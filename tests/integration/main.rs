//! Integration tests: a real server on loopback, a real database, a real relying party.

mod support;

mod authorize_errors;
mod cli;
mod discovery;
mod flow;
mod token_errors;
mod userinfo;
