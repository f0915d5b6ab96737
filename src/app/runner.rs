//! Runs a use case on the blocking pool with a pooled connection, the keys in force and the
//! clock, so that handlers, jobs and tests drive the domain the same way. A panicking use case
//! never returns its connection to the pool.

use chrono::NaiveDateTime;

use crate::context::{Ctx, RequestMeta};
use crate::db::{self, DbConn};
use crate::error::InternalError;

use super::web_data;

/// One of the few Argon2 verifications allowed at a time (waits for its turn).
pub async fn argon2_permit(
    state: &web_data::Data,
) -> Result<tokio::sync::OwnedSemaphorePermit, InternalError> {
    state
        .argon2_permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| InternalError::with("waiting for an Argon2 permit", e))
}

/// Runs a use case on the blocking pool inside one database transaction.
pub async fn run<T, F>(state: &web_data::Data, f: F) -> Result<T, InternalError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, Ctx<'_>, NaiveDateTime) -> Result<T, InternalError> + Send + 'static,
{
    run_as(state, RequestMeta::default(), f).await
}

/// Like `run`, with the request's origin recorded by the audit trail.
pub async fn run_as<T, F>(
    state: &web_data::Data,
    meta: RequestMeta,
    f: F,
) -> Result<T, InternalError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, Ctx<'_>, NaiveDateTime) -> Result<T, InternalError> + Send + 'static,
{
    execute(state, meta, |conn, ctx, now| {
        db::transaction(conn, |c| f(c, ctx, now))
    })
    .await
}

/// Runs blocking work that manages its own transactions (e.g. Argon2 between two of them).
pub async fn run_conn<T, F>(state: &web_data::Data, f: F) -> Result<T, InternalError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, Ctx<'_>, NaiveDateTime) -> Result<T, InternalError> + Send + 'static,
{
    execute(state, RequestMeta::default(), f).await
}

/// `run_conn` with the request's origin.
pub async fn run_conn_as<T, F>(
    state: &web_data::Data,
    meta: RequestMeta,
    f: F,
) -> Result<T, InternalError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, Ctx<'_>, NaiveDateTime) -> Result<T, InternalError> + Send + 'static,
{
    execute(state, meta, f).await
}

/// The runner itself, for a use case that fails with its own domain error (`E` carries the
/// internal error as one of its variants). The use case manages its transactions.
pub async fn execute<T, E, F>(state: &web_data::Data, meta: RequestMeta, f: F) -> Result<T, E>
where
    T: Send + 'static,
    E: From<InternalError> + Send + 'static,
    F: FnOnce(&mut DbConn, Ctx<'_>, NaiveDateTime) -> Result<T, E> + Send + 'static,
{
    let permit = state
        .db_permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| E::from(InternalError::with("waiting for a database connection", e)))?;
    let st = state.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let now = st.clock.naive();
        let keys = st.published().keys;
        // The connection lives inside the guarded closure: a panic drops it while unwinding,
        // so the pool closes it (rolling back its transaction) instead of reusing it.
        let _writer = st.writer.as_ref().map(db::writer::Gate::enter);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut conn = st.pool.get().map_err(InternalError::from)?;
            f(&mut conn, st.ctx_with(&keys, &meta), now)
        }))
        .unwrap_or_else(|panic| {
            st.metrics.use_case_panics.inc();
            Err(E::from(InternalError::new(format!(
                "a use case panicked: {}",
                panic_message(panic.as_ref())
            ))))
        })
    })
    .await
    .map_err(|e| E::from(InternalError::with("blocking task", e)))?
}

/// The message a panic carried, when it was a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}
