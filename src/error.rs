//! The one error type for what the caller cannot fix: database failures, broken invariants.
//! Every variant keeps the failure it came from as its `source`, so the one place that logs
//! an internal error (`chain`) shows all of it.

use std::error::Error as StdError;
use std::fmt;

/// An underlying failure of any kind, kept as the source of an `InternalError`.
pub type Source = Box<dyn StdError + Send + Sync>;

/// An unexpected failure. It is logged once with its sources; clients only see a generic
/// answer. Its messages name what was being done, never a token, secret or password.
#[derive(Debug, thiserror::Error)]
pub enum InternalError {
    /// A query or a transaction failed.
    #[error("database")]
    Database(#[from] diesel::result::Error),
    /// No pooled connection could be had.
    #[error("database pool")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// A stored or produced JSON document could not be read or written.
    #[error("json")]
    Json(#[from] serde_json::Error),
    /// A file or socket operation failed while doing `doing`.
    #[error("{doing}")]
    Io {
        doing: String,
        #[source]
        source: std::io::Error,
    },
    /// Something this depends on failed while doing `doing`.
    #[error("{doing}")]
    Failed {
        doing: String,
        #[source]
        source: Source,
    },
    /// A broken invariant: what should not happen, said in words.
    #[error("{0}")]
    Invariant(String),
}

impl InternalError {
    /// True when the database did not answer in time: no pooled connection within the pool's
    /// timeout, a statement cancelled by `statement_timeout`, SQLite's write lock not free
    /// within its busy timeout, or a connection that closed. The request may succeed later.
    pub fn is_unavailable(&self) -> bool {
        use diesel::result::{DatabaseErrorKind, Error};
        match self {
            InternalError::Pool(_) => true,
            InternalError::Database(Error::DatabaseError(
                DatabaseErrorKind::ClosedConnection,
                _,
            )) => true,
            InternalError::Database(Error::DatabaseError(_, info)) => {
                let m = info.message();
                m.contains("statement timeout")
                    || m.contains("lock timeout")
                    || m.contains("database is locked")
                    || m.contains("terminating connection")
            }
            _ => false,
        }
    }

    /// A broken invariant.
    pub fn new(message: impl Into<String>) -> Self {
        InternalError::Invariant(message.into())
    }

    /// A failure of something this depends on, kept as the source: `doing` says what was
    /// being done ("signing the ID token").
    pub fn with(doing: impl Into<String>, source: impl Into<Source>) -> Self {
        InternalError::Failed {
            doing: doing.into(),
            source: source.into(),
        }
    }

    /// A failed file or socket operation, kept as the source.
    pub fn io(doing: impl Into<String>, source: std::io::Error) -> Self {
        InternalError::Io {
            doing: doing.into(),
            source,
        }
    }
}

/// An error followed by each of its sources: `doing: because: because`. What logs show.
pub struct Chain<'a>(&'a (dyn StdError + 'static));

/// The whole chain of `e`, for logs and the command line.
pub fn chain<'a>(e: &'a (dyn StdError + 'static)) -> Chain<'a> {
    Chain(e)
}

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut next = self.0.source();
        while let Some(e) = next {
            write!(f, ": {e}")?;
            next = e.source();
        }
        Ok(())
    }
}

/// Lets `?` turn the failures an `InternalError` is made from into a domain error that carries
/// it (the domain error has `From<InternalError>`).
macro_rules! internal_error_sources {
    ($domain:ty) => {
        impl From<diesel::result::Error> for $domain {
            fn from(e: diesel::result::Error) -> Self {
                $crate::error::InternalError::from(e).into()
            }
        }

        impl From<serde_json::Error> for $domain {
            fn from(e: serde_json::Error) -> Self {
                $crate::error::InternalError::from(e).into()
            }
        }
    };
}

pub(crate) use internal_error_sources;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn the_chain_shows_what_was_being_done_and_why_it_failed() {
        let e = InternalError::with("signing the ID token", "key material unreadable");
        assert_eq!(e.to_string(), "signing the ID token");
        assert_eq!(
            chain(&e).to_string(),
            "signing the ID token: key material unreadable"
        );
    }

    #[test]
    fn a_database_failure_keeps_the_database_error_as_its_source() {
        let e = InternalError::from(diesel::result::Error::NotFound);
        let source = e.source().expect("the database error is the source");
        assert!(source.is::<diesel::result::Error>());
        assert_eq!(chain(&e).to_string(), "database: Record not found");
    }

    #[test]
    fn an_io_failure_names_what_was_being_done() {
        let e = InternalError::io(
            "creating the database folder",
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, "denied"),
        );
        assert_eq!(
            chain(&e).to_string(),
            "creating the database folder: denied"
        );
    }

    #[test]
    fn a_broken_invariant_is_its_message_alone() {
        let e = InternalError::new("no active RS256 signing key");
        assert!(e.source().is_none());
        assert_eq!(chain(&e).to_string(), "no active RS256 signing key");
    }
}
