//! Database access: one connection type over PostgreSQL and SQLite, a pool, migrations.

pub mod schema;

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, RunQueryDsl};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::InternalError;

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// One connection to either backend.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Pg(PgConnection),
    Sqlite(SqliteConnection),
}

/// Which backend a database URL selects, with the URL the driver understands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DbUrl {
    Postgres(String),
    Sqlite(String),
}

impl DbUrl {
    /// `postgres://…` or `postgresql://…` selects PostgreSQL; `sqlite://PATH` or a bare path selects SQLite.
    pub fn parse(url: &str) -> Result<DbUrl, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err("the database URL is empty".into());
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DbUrl::Postgres(url.to_string()));
        }
        if let Some(path) = url.strip_prefix("sqlite://") {
            if path.is_empty() {
                return Err("sqlite:// needs a path, e.g. sqlite://data/portcullis.db".into());
            }
            return Ok(DbUrl::Sqlite(path.to_string()));
        }
        if url.contains("://") {
            return Err(format!(
                "unsupported database URL scheme in {:?}: use postgres:// or sqlite://",
                url.split("://").next().unwrap_or_default()
            ));
        }
        Ok(DbUrl::Sqlite(url.to_string()))
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, DbUrl::Postgres(_))
    }
}

/// r2d2 manager that picks the backend by URL scheme rather than by trial.
pub struct Manager {
    url: DbUrl,
}

impl ManageConnection for Manager {
    type Connection = DbConn;
    type Error = r2d2::Error;

    fn connect(&self) -> Result<DbConn, r2d2::Error> {
        match &self.url {
            DbUrl::Postgres(u) => PgConnection::establish(u)
                .map(DbConn::Pg)
                .map_err(r2d2::Error::ConnectionError),
            DbUrl::Sqlite(p) => SqliteConnection::establish(p)
                .map(DbConn::Sqlite)
                .map_err(r2d2::Error::ConnectionError),
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConn) -> bool {
        false
    }
}

#[derive(Debug)]
struct SqlitePragmas;

impl CustomizeConnection<DbConn, r2d2::Error> for SqlitePragmas {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        if let DbConn::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
            )
            .map_err(r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

pub type Pool = r2d2::Pool<Manager>;

/// Opens the pool, creating the SQLite file's folder when needed, and runs pending migrations.
pub fn connect(url: &DbUrl, max_size: u32) -> Result<Pool, InternalError> {
    if let DbUrl::Sqlite(path) = url
        && path != ":memory:"
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .map_err(|e| InternalError::new(format!("cannot create {}: {e}", parent.display())))?;
    }
    let manager = Manager { url: url.clone() };
    let mut first = manager
        .connect()
        .map_err(|e| InternalError::new(format!("cannot open the database: {e}")))?;
    if let DbConn::Sqlite(c) = &mut first {
        c.batch_execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000;")
            .map_err(|e| InternalError::new(format!("cannot configure SQLite: {e}")))?;
    }
    run_migrations(&mut first)?;
    drop(first);
    let size = if url.is_postgres() {
        max_size
    } else {
        max_size.min(8)
    };
    r2d2::Pool::builder()
        .max_size(size)
        .connection_timeout(std::time::Duration::from_secs(5))
        .connection_customizer(Box::new(SqlitePragmas))
        .build(manager)
        .map_err(|e| InternalError::new(format!("cannot open the database pool: {e}")))
}

/// Applies every embedded migration not yet applied.
pub fn run_migrations(conn: &mut DbConn) -> Result<(), InternalError> {
    let result = match conn {
        DbConn::Pg(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
        DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
    };
    result.map_err(|e| InternalError::new(format!("migration failed: {e}")))
}

/// Runs `f` in one transaction; SQLite takes the write lock up front so read-then-write never deadlocks.
pub fn transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let immediate = matches!(conn, DbConn::Sqlite(_));
    if immediate {
        conn.batch_execute("BEGIN IMMEDIATE")?;
        match f(conn) {
            Ok(v) => {
                conn.batch_execute("COMMIT")?;
                Ok(v)
            }
            Err(e) => {
                let _ = conn.batch_execute("ROLLBACK");
                Err(e)
            }
        }
    } else {
        conn.transaction(f)
    }
}

/// True when a migration embedded in this binary has not been applied.
pub fn pending_migrations(conn: &mut DbConn) -> Result<bool, InternalError> {
    let r = match conn {
        DbConn::Pg(c) => c.has_pending_migration(POSTGRES_MIGRATIONS),
        DbConn::Sqlite(c) => c.has_pending_migration(SQLITE_MIGRATIONS),
    };
    r.map_err(|e| InternalError::new(format!("migration check failed: {e}")))
}

/// Serialises a critical section across instances for the rest of the transaction: a
/// transaction-scoped advisory lock on PostgreSQL; on SQLite the immediate transaction
/// already holds the write lock.
pub fn lock(conn: &mut DbConn, key: i64) -> Result<(), diesel::result::Error> {
    if let DbConn::Pg(_) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_xact_lock({key})")).execute(conn)?;
    }
    Ok(())
}

/// Lock keys for `lock`.
pub const LOCK_AUDIT: i64 = 7_263_001;
pub const LOCK_SIGNING_KEYS: i64 = 7_263_002;

/// True when the database answers a trivial query.
pub fn ping(conn: &mut DbConn) -> bool {
    diesel::sql_query("SELECT 1").execute(conn).is_ok()
}

/// A connection borrowed from the pool.
pub type PooledConn = r2d2::PooledConnection<Manager>;

#[cfg(test)]
mod tests {
    use super::*;

    fn names(backend: &str) -> Vec<String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("migrations")
            .join(backend);
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn both_backends_have_migrations_with_identical_names() {
        let sqlite = names("sqlite");
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, names("postgres"));
    }

    #[test]
    fn database_urls_select_the_backend_by_scheme() {
        assert_eq!(
            DbUrl::parse("sqlite://data/portcullis.db").unwrap(),
            DbUrl::Sqlite("data/portcullis.db".into())
        );
        assert_eq!(
            DbUrl::parse("sqlite:///var/lib/portcullis/db").unwrap(),
            DbUrl::Sqlite("/var/lib/portcullis/db".into())
        );
        assert_eq!(
            DbUrl::parse("data/x.db").unwrap(),
            DbUrl::Sqlite("data/x.db".into())
        );
        assert!(DbUrl::parse("postgres://u@h/db").unwrap().is_postgres());
        assert!(DbUrl::parse("mysql://u@h/db").is_err());
        assert!(DbUrl::parse("sqlite://").is_err());
        assert!(DbUrl::parse("").is_err());
    }

    #[test]
    fn migrations_run_twice_without_harm_on_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = DbUrl::Sqlite(dir.path().join("t.db").display().to_string());
        let pool = connect(&url, 2).unwrap();
        let mut c = pool.get().unwrap();
        run_migrations(&mut c).unwrap();
        assert!(ping(&mut c));
    }
}
