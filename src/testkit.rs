//! In-process fixtures for the domain's unit tests: an in-memory SQLite database with every
//! migration applied, a fixed starting time, and the rows most decisions start from.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDateTime;

use crate::config::Config;
use crate::db::DbConn;

/// A fresh in-memory database with the whole schema.
pub fn db() -> DbConn {
    use diesel::Connection;
    let mut conn = DbConn::Sqlite(diesel::SqliteConnection::establish(":memory:").unwrap());
    crate::db::run_migrations(&mut conn).unwrap();
    conn
}

/// A fixed moment to count from (tests advance it by adding durations).
pub fn t0() -> NaiveDateTime {
    chrono::DateTime::from_timestamp(1_790_000_000, 0)
        .unwrap()
        .naive_utc()
}

/// The default configuration (nothing is read from the environment or a file).
pub fn config() -> Config {
    Config::build(
        "127.0.0.1:8080".into(),
        "http://localhost:8080",
        "sqlite://unused.db",
        crate::config::Lifetimes::default(),
        1,
    )
    .unwrap()
}

/// Adds an enabled user without a password; returns its id.
pub fn user(conn: &mut DbConn, username: &str, now: NaiveDateTime) -> String {
    let id = crate::keys::secrets::random_id();
    crate::store::users::insert(
        conn,
        &crate::store::users::User {
            id: id.clone(),
            username: username.into(),
            email: None,
            name: None,
            groups: "[]".into(),
            roles: "[]".into(),
            password_hash: None,
            disabled: false,
            created_at: now,
            updated_at: now,
            email_verified: false,
        },
    )
    .unwrap();
    id
}
