//! The one error type for what the caller cannot fix: database failures, broken invariants.

use std::fmt;

/// An unexpected failure. Its message is logged once; clients only see a generic answer.
#[derive(Debug)]
pub struct InternalError {
    message: String,
}

impl InternalError {
    pub fn new(message: impl Into<String>) -> Self {
        InternalError {
            message: message.into(),
        }
    }
}

impl fmt::Display for InternalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for InternalError {}

impl From<diesel::result::Error> for InternalError {
    fn from(e: diesel::result::Error) -> Self {
        InternalError::new(format!("database: {e}"))
    }
}

impl From<serde_json::Error> for InternalError {
    fn from(e: serde_json::Error) -> Self {
        InternalError::new(format!("json: {e}"))
    }
}

impl From<r2d2_error::PoolError> for InternalError {
    fn from(e: r2d2_error::PoolError) -> Self {
        InternalError::new(format!("database pool: {e}"))
    }
}

mod r2d2_error {
    pub type PoolError = diesel::r2d2::PoolError;
}
