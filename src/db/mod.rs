//! Database access: one connection type over PostgreSQL and SQLite, a pool, migrations.

pub mod plans;
pub mod schema;
pub mod server_lock;
pub mod writer;

use diesel::connection::SimpleConnection;
use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::migration::MigrationSource;
use diesel::pg::PgConnection;
use diesel::r2d2::{self, CustomizeConnection, ManageConnection, R2D2Connection};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, QueryableByName, RunQueryDsl};
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
#[derive(Clone, PartialEq, Eq)]
pub enum DbUrl {
    Postgres(String),
    Sqlite(String),
}

/// The URL with any password replaced, for messages and `Debug`.
pub fn redact_url(raw: &str) -> String {
    match url::Url::parse(raw) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("[redacted]"));
            u.to_string()
        }
        Ok(_) => raw.to_string(),
        // Unparsable: show the scheme at most.
        Err(_) => raw
            .split_once("://")
            .map(|(scheme, _)| format!("{scheme}://[redacted]"))
            .unwrap_or_else(|| raw.to_string()),
    }
}

impl std::fmt::Debug for DbUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DbUrl::Postgres(u) => f.debug_tuple("Postgres").field(&redact_url(u)).finish(),
            DbUrl::Sqlite(p) => f.debug_tuple("Sqlite").field(p).finish(),
        }
    }
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
            DbUrl::Postgres(u) => PgConnection::establish(&with_connect_timeout(u))
                .map(DbConn::Pg)
                .map_err(r2d2::Error::ConnectionError),
            DbUrl::Sqlite(p) => SqliteConnection::establish(p)
                .map(DbConn::Sqlite)
                .map_err(r2d2::Error::ConnectionError),
        }
    }

    fn is_valid(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        if conn.is_broken() {
            return Err(r2d2::Error::QueryError(
                diesel::result::Error::BrokenTransactionManager,
            ));
        }
        conn.ping().map_err(r2d2::Error::QueryError)
    }

    /// A connection handed back while a thread unwinds, inside an unfinished transaction or
    /// with its transaction state in error is closed, never reused: closing it makes the
    /// database roll back whatever it held.
    fn has_broken(&self, conn: &mut DbConn) -> bool {
        std::thread::panicking() || conn.is_broken()
    }
}

#[derive(Debug)]
struct SessionSettings;

/// How long a statement of a pooled PostgreSQL connection may run (or wait for a lock)
/// before it is cancelled, so a database that stops answering fails requests with 503 in
/// seconds instead of hanging them. Migrations run on a connection without it.
pub const STATEMENT_TIMEOUT_MS: u32 = 5_000;

impl CustomizeConnection<DbConn, r2d2::Error> for SessionSettings {
    fn on_acquire(&self, conn: &mut DbConn) -> Result<(), r2d2::Error> {
        match conn {
            // The server checkpoints the WAL every second off the request path
            // (`checkpoint_wal`); a commit checkpoints only when the WAL has grown past
            // 10,000 pages (about 40 MB) without that, e.g. in a long command.
            DbConn::Sqlite(c) => c.batch_execute(
                "PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                 PRAGMA wal_autocheckpoint = 10000;",
            ),
            DbConn::Pg(c) => {
                c.batch_execute(&format!("SET statement_timeout = {STATEMENT_TIMEOUT_MS}"))
            }
        }
        .map_err(r2d2::Error::QueryError)
    }
}

/// The URL with a connect timeout of 5 s unless it names one (libpq waits forever by default).
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_string();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}connect_timeout=5")
}

pub type Pool = r2d2::Pool<Manager>;

/// One SQLite connection outside the pool, set up as pooled ones are (the writer
/// connection of `writer::Gate`).
pub(crate) fn open_sqlite(path: &str) -> Result<DbConn, r2d2::Error> {
    let mut conn = Manager {
        url: DbUrl::Sqlite(path.to_string()),
    }
    .connect()?;
    SessionSettings.on_acquire(&mut conn)?;
    Ok(conn)
}

/// Opens the pool, creating the SQLite file's folder when needed, and runs pending migrations.
pub fn connect(url: &DbUrl, max_size: u32) -> Result<Pool, InternalError> {
    if let DbUrl::Sqlite(path) = url
        && path != ":memory:"
        && let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        crate::private_files::create_dir_all(parent)
            .map_err(|e| InternalError::io(format!("cannot create {}", parent.display()), e))?;
    }
    // A new database file is created 0600 before SQLite opens it (an empty file is a new
    // database); SQLite gives its -wal and -shm files the database file's permissions.
    if let DbUrl::Sqlite(path) = url
        && path != ":memory:"
        && !std::path::Path::new(path).exists()
    {
        match crate::private_files::create_new(std::path::Path::new(path)) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(InternalError::io(format!("cannot create {path}"), e)),
        }
    }
    // SQLite's own messages ("attempt to write a readonly database") name no file.
    let place = match url {
        DbUrl::Sqlite(path) => format!(
            " at {path} (its folder must be writable by this user: SQLite writes {path}-wal and {path}-shm beside it)"
        ),
        DbUrl::Postgres(_) => String::new(),
    };
    let manager = Manager { url: url.clone() };
    let cannot_open = format!("cannot open the database{place}");
    let mut first = manager
        .connect()
        .map_err(|e| InternalError::with(cannot_open.as_str(), e))?;
    if let DbConn::Sqlite(c) = &mut first {
        c.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")
            .map_err(|e| InternalError::with(cannot_open.as_str(), e))?;
    }
    run_migrations(&mut first).map_err(|e| match url {
        DbUrl::Sqlite(_) => InternalError::with(format!("cannot migrate the database{place}"), e),
        DbUrl::Postgres(_) => e,
    })?;
    drop(first);
    let size = if url.is_postgres() {
        max_size
    } else {
        max_size.min(8)
    };
    // Connections are opened as load needs them, up to `size`, and an idle instance keeps
    // one: N instances hold about N connections until they are busy.
    r2d2::Pool::builder()
        .max_size(size)
        // A SQLite file cannot drop a connection: no round trip to test one before each use.
        // A PostgreSQL connection is tested, so one the server closed is replaced, not used.
        .test_on_check_out(url.is_postgres())
        .min_idle(Some(1))
        .idle_timeout(Some(std::time::Duration::from_secs(60)))
        .connection_timeout(std::time::Duration::from_secs(5))
        .connection_customizer(Box::new(SessionSettings))
        .build(manager)
        .map_err(|e| InternalError::with("cannot open the database pool", e))
}

/// Applies every embedded migration not yet applied.
pub fn run_migrations(conn: &mut DbConn) -> Result<(), InternalError> {
    type Failure = Box<dyn std::error::Error + Send + Sync>;
    // Instances started together take turns: the first migrates, the others wait and then
    // find nothing pending. PostgreSQL: a session advisory lock around the run; SQLite: the
    // whole run in one immediate transaction (each migration becomes a savepoint in it).
    let result: Result<(), Failure> = match conn {
        DbConn::Pg(c) => (|| {
            diesel::sql_query(format!("SELECT pg_advisory_lock({LOCK_MIGRATIONS})")).execute(c)?;
            let run = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
            diesel::sql_query(format!("SELECT pg_advisory_unlock({LOCK_MIGRATIONS})"))
                .execute(c)?;
            run
        })(),
        DbConn::Sqlite(c) => c.immediate_transaction(|c| {
            c.run_pending_migrations(SQLITE_MIGRATIONS)
                .map(|_| ())
                .map_err(|e| -> Failure { e })
        }),
    };
    result.map_err(|e| InternalError::with("migration failed", e))
}

/// Runs `f` in one transaction; SQLite takes the write lock up front so read-then-write never
/// deadlocks. Both backends go through diesel's transaction manager, so a connection left
/// inside a transaction (a panic in `f`) is known to be broken and never returns to the pool.
pub fn transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if let DbConn::Pg(_) = conn {
        return conn.transaction(f);
    }
    writer::in_turn(|writer| sqlite_write_transaction(writer.unwrap_or(conn), f))
}

/// `transaction` on SQLite: BEGIN IMMEDIATE … COMMIT, in this thread's turn to write.
fn sqlite_write_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    transaction_begun_by(conn, "BEGIN IMMEDIATE", f)
}

/// Runs `f` in one read-only transaction: one consistent view for its reads, no write lock
/// and no turn at the writer gate. On PostgreSQL a write in it fails (`BEGIN READ ONLY`); on
/// SQLite it is a deferred transaction that a write would upgrade, so callers only use it
/// for work that does not write, or that retries in `transaction` when it fails.
pub fn read_only<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    let begin = match conn {
        DbConn::Pg(_) => "BEGIN READ ONLY",
        DbConn::Sqlite(_) => "BEGIN DEFERRED",
    };
    transaction_begun_by(conn, begin, f)
}

/// A transaction opened with `begin`, committed when `f` succeeds and rolled back when it
/// fails, through diesel's transaction manager (a connection left inside it is broken).
fn transaction_begun_by<T, E, F>(conn: &mut DbConn, begin: &str, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    match conn {
        DbConn::Pg(c) => AnsiTransactionManager::begin_transaction_sql(c, begin)?,
        DbConn::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, begin)?,
    }
    let result = f(conn);
    let finished = match (&result, &mut *conn) {
        (Ok(_), DbConn::Pg(c)) => AnsiTransactionManager::commit_transaction(c),
        (Ok(_), DbConn::Sqlite(c)) => AnsiTransactionManager::commit_transaction(c),
        // A failed rollback leaves the manager in error: the pool then discards the connection.
        (Err(_), DbConn::Pg(c)) => AnsiTransactionManager::rollback_transaction(c).or(Ok(())),
        (Err(_), DbConn::Sqlite(c)) => AnsiTransactionManager::rollback_transaction(c).or(Ok(())),
    };
    finished?;
    result
}

/// Copies what the SQLite write-ahead log holds into the database file, beside readers and
/// writers (PASSIVE: it waits for no one), so no request's commit has to: with the WAL
/// checkpointed by the committing connection, every thousandth commit or so paid for a
/// checkpoint and its fsync while holding the write lock. Nothing to do on PostgreSQL.
pub fn checkpoint_wal(conn: &mut DbConn) -> Result<(), diesel::result::Error> {
    if let DbConn::Sqlite(c) = conn {
        c.batch_execute("PRAGMA wal_checkpoint(PASSIVE);")?;
    }
    Ok(())
}

/// Runs a trivial transaction: what readiness asks of a pooled connection.
pub fn trivial_transaction(conn: &mut DbConn) -> Result<(), diesel::result::Error> {
    conn.transaction(|c| diesel::sql_query("SELECT 1").execute(c).map(|_| ()))
}

/// True when a migration embedded in this binary has not been applied.
pub fn pending_migrations(conn: &mut DbConn) -> Result<bool, InternalError> {
    // Read-only (readiness probes call this): the versions recorded as applied, against the
    // embedded ones. diesel's own check creates its table first, which is DDL on every probe.
    #[derive(QueryableByName)]
    struct Applied {
        #[diesel(sql_type = diesel::sql_types::Text)]
        version: String,
    }
    let applied: std::collections::HashSet<String> =
        diesel::sql_query("SELECT version FROM __diesel_schema_migrations")
            .load::<Applied>(conn)?
            .into_iter()
            .map(|a| a.version)
            .collect();
    let embedded = |names: Vec<String>| names.into_iter().any(|v| !applied.contains(&v));
    let versions = match conn {
        DbConn::Pg(_) => MigrationSource::<diesel::pg::Pg>::migrations(&POSTGRES_MIGRATIONS)
            .map(|m| m.iter().map(|m| m.name().version().to_string()).collect()),
        DbConn::Sqlite(_) => {
            MigrationSource::<diesel::sqlite::Sqlite>::migrations(&SQLITE_MIGRATIONS)
                .map(|m| m.iter().map(|m| m.name().version().to_string()).collect())
        }
    }
    .map_err(|e| InternalError::with("migration check failed", e))?;
    Ok(embedded(versions))
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

/// Takes the transaction-scoped lock `key` if no one holds it (PostgreSQL); false when
/// another transaction does. On SQLite the immediate transaction holds the write lock.
pub fn try_lock(conn: &mut DbConn, key: i64) -> Result<bool, diesel::result::Error> {
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    match conn {
        DbConn::Pg(_) => Ok(diesel::sql_query(format!(
            "SELECT pg_try_advisory_xact_lock({key}) AS taken"
        ))
        .get_result::<Taken>(conn)?
        .taken),
        DbConn::Sqlite(_) => Ok(true),
    }
}

/// Lock keys for `lock`.
pub const LOCK_AUDIT: i64 = 7_263_001;
pub const LOCK_SIGNING_KEYS: i64 = 7_263_002;
/// Held (for the session) while migrations run.
pub const LOCK_MIGRATIONS: i64 = 7_263_003;

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
    fn a_database_without_the_last_migration_has_one_pending() {
        let mut c = crate::testkit::db();
        diesel::sql_query(
            "DELETE FROM __diesel_schema_migrations WHERE version = \
             (SELECT MAX(version) FROM __diesel_schema_migrations)",
        )
        .execute(&mut c)
        .unwrap();
        assert!(pending_migrations(&mut c).unwrap());
    }

    #[test]
    fn both_backends_have_migrations_with_identical_names() {
        let sqlite = names("sqlite");
        assert!(!sqlite.is_empty());
        assert_eq!(sqlite, names("postgres"));
    }

    #[test]
    fn debug_output_of_a_database_url_hides_its_password() {
        let url = DbUrl::parse("postgres://portcullis:hunter2secret@db.internal:5432/idp").unwrap();
        let shown = format!("{url:?}");
        assert!(!shown.contains("hunter2secret"), "{shown}");
        assert!(shown.contains("db.internal"), "{shown}");
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
        assert!(trivial_transaction(&mut c).is_ok());
    }

    fn one_connection_pool(dir: &tempfile::TempDir) -> Pool {
        let url = DbUrl::Sqlite(dir.path().join("t.db").display().to_string());
        connect(&url, 1).unwrap()
    }

    #[test]
    fn a_connection_inside_an_unfinished_transaction_counts_as_broken() {
        let dir = tempfile::tempdir().unwrap();
        let manager = Manager {
            url: DbUrl::Sqlite(dir.path().join("t.db").display().to_string()),
        };
        let mut conn = manager.connect().unwrap();
        assert!(!manager.has_broken(&mut conn));
        let DbConn::Sqlite(inner) = &mut conn else {
            unreachable!()
        };
        AnsiTransactionManager::begin_transaction_sql(inner, "BEGIN IMMEDIATE").unwrap();
        assert!(manager.has_broken(&mut conn));
        assert!(manager.is_valid(&mut conn).is_err());
    }

    #[test]
    fn a_panic_inside_a_transaction_rolls_back_and_the_pool_keeps_serving() {
        let dir = tempfile::tempdir().unwrap();
        let pool = one_connection_pool(&dir);
        pool.get()
            .unwrap()
            .batch_execute("CREATE TABLE marks (n INTEGER)")
            .unwrap();
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut c = pool.get().unwrap();
            let _: Result<(), diesel::result::Error> = transaction(&mut c, |c| {
                c.batch_execute("INSERT INTO marks VALUES (1)")?;
                panic!("injected");
            });
        }));
        assert!(panicked.is_err());
        let mut c = pool.get().unwrap();
        let n: Result<usize, diesel::result::Error> = transaction(&mut c, |c| {
            c.batch_execute("INSERT INTO marks VALUES (2)")?;
            diesel::sql_query("SELECT n FROM marks").execute(c)
        });
        assert!(trivial_transaction(&mut c).is_ok());
        drop(c);
        #[derive(diesel::QueryableByName)]
        struct Mark {
            #[diesel(sql_type = diesel::sql_types::Integer)]
            n: i32,
        }
        let marks: Vec<Mark> = diesel::sql_query("SELECT n FROM marks")
            .load(&mut *pool.get().unwrap())
            .unwrap();
        assert!(n.is_ok());
        assert_eq!(marks.iter().map(|m| m.n).collect::<Vec<_>>(), vec![2]);
    }
}
