//! `portcullis backup FILE` and `portcullis restore FILE`.

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use serde_json::json;
use std::path::Path;

use crate::cli::{CliError, open, output};
use crate::config::Config;
use crate::db::server_lock::{self, Mode};
use crate::db::{DbConn, DbUrl};

/// A consistent online snapshot: SQLite's `VACUUM INTO` (the server may keep running).
pub fn backup(config: &Config, file: &Path, json: bool) -> Result<(), CliError> {
    let DbUrl::Sqlite(_) = &config.database_url else {
        return Err(CliError(
            "PostgreSQL is backed up with its own tools: pg_dump --format=custom --file=FILE \"$PORTCULLIS_DATABASE_URL\"".into(),
        ));
    };
    let target = file
        .to_str()
        .ok_or_else(|| CliError("the backup path must be valid UTF-8".into()))?;
    let mut conn = open(config)?;
    vacuum_into_private(&mut conn, file, target)?;
    output(
        json,
        &json!({"backup": target}),
        &format!(
            "backup written to {target} (keep the master key separately: without it the signing keys cannot be opened)"
        ),
    );
    Ok(())
}

/// Replaces the configured SQLite database with a backup, after checking it. Refused while a
/// server holds the database's lock.
pub fn restore(config: &Config, file: &Path, json: bool) -> Result<(), CliError> {
    let DbUrl::Sqlite(path) = &config.database_url else {
        return Err(CliError(
            "PostgreSQL is restored with its own tools: pg_restore --clean --dbname=\"$PORTCULLIS_DATABASE_URL\" FILE".into(),
        ));
    };
    let source = file
        .to_str()
        .ok_or_else(|| CliError("the backup path must be valid UTF-8".into()))?;
    if !file.is_file() {
        return Err(CliError(format!("no backup at {source}")));
    }
    check_backup(source)?;
    let target = Path::new(path);
    server_lock::ensure_folder(path).map_err(|e| CliError(e.to_string()))?;
    // Held until the restore is done: no server may use the file meanwhile.
    let Some(_lock) =
        server_lock::try_acquire(path, Mode::Exclusive).map_err(|e| CliError(e.to_string()))?
    else {
        return Err(CliError(format!(
            "a server is using the database at {path}: stop it first (e.g. systemctl stop portcullis), then restore"
        )));
    };
    let staging = format!("{path}.restoring");
    std::fs::copy(file, &staging).map_err(|e| CliError(format!("cannot copy the backup: {e}")))?;
    crate::private_files::restrict(Path::new(&staging))
        .map_err(|e| CliError(format!("cannot restrict {staging}: {e}")))?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{path}{suffix}"));
    }
    std::fs::rename(&staging, target)
        .map_err(|e| CliError(format!("cannot put the backup in place: {e}")))?;
    // Bring the restored database up to this version's schema.
    open(config)?;
    output(
        json,
        &json!({"restored": source, "database": path}),
        &format!("restored {source} into {path}"),
    );
    Ok(())
}

/// The file must be an intact SQLite database holding Portcullis's tables.
fn check_backup(source: &str) -> Result<(), CliError> {
    use diesel::Connection;
    let mut c = diesel::sqlite::SqliteConnection::establish(source)
        .map_err(|e| CliError(format!("{source} is not a readable SQLite database: {e}")))?;
    #[derive(diesel::QueryableByName)]
    struct Check {
        #[diesel(sql_type = diesel::sql_types::Text)]
        integrity_check: String,
    }
    let r: Vec<Check> = diesel::sql_query("PRAGMA integrity_check")
        .load(&mut c)
        .map_err(|_| CliError(format!("{source} is not a SQLite database")))?;
    if r.first().map(|x| x.integrity_check.as_str()) != Some("ok") {
        return Err(CliError(format!(
            "{source} failed SQLite's integrity check"
        )));
    }
    let mut any = DbConn::Sqlite(c);
    diesel::sql_query("SELECT kid FROM signing_keys LIMIT 1")
        .execute(&mut any)
        .map_err(|_| CliError(format!("{source} is not a Portcullis backup")))?;
    Ok(())
}

/// Snapshots the open database into a new 0600 file (`VACUUM INTO` accepts an empty file).
pub(super) fn vacuum_into_private(
    conn: &mut DbConn,
    file: &Path,
    target: &str,
) -> Result<(), CliError> {
    crate::private_files::create_new(file).map_err(|e| match e.kind() {
        std::io::ErrorKind::AlreadyExists => CliError(format!("{target} already exists")),
        _ => CliError(format!("cannot create {target}: {e}")),
    })?;
    conn.batch_execute(&format!("VACUUM INTO '{}'", target.replace('\'', "''")))
        .map_err(|e| {
            let _ = std::fs::remove_file(file);
            CliError(format!("snapshot failed: {e}"))
        })
}
