//! `portcullis backup FILE` and `portcullis restore FILE`.

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use serde_json::json;
use std::path::Path;

use crate::cli::{CliError, open, output};
use crate::config::Config;
use crate::db::{DbConn, DbUrl};

/// A consistent online snapshot: SQLite's `VACUUM INTO` (the server may keep running).
pub fn backup(config: &Config, file: &Path, json: bool) -> Result<(), CliError> {
    let DbUrl::Sqlite(_) = &config.database_url else {
        return Err(CliError(
            "PostgreSQL is backed up with its own tools: pg_dump --format=custom --file=FILE \"$PORTCULLIS_DATABASE_URL\"".into(),
        ));
    };
    if file.exists() {
        return Err(CliError(format!("{} already exists", file.display())));
    }
    let target = file
        .to_str()
        .ok_or_else(|| CliError("the backup path must be valid UTF-8".into()))?;
    let mut conn = open(config)?;
    let quoted = target.replace('\'', "''");
    conn.batch_execute(&format!("VACUUM INTO '{quoted}'"))
        .map_err(|e| CliError(format!("backup failed: {e}")))?;
    output(
        json,
        &json!({"backup": target}),
        &format!(
            "backup written to {target} (keep the master key separately: without it the signing keys cannot be opened)"
        ),
    );
    Ok(())
}

/// Replaces the configured SQLite database with a backup, after checking it. Stop the server
/// first.
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
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| CliError(format!("cannot create {}: {e}", dir.display())))?;
    }
    let staging = format!("{path}.restoring");
    std::fs::copy(file, &staging).map_err(|e| CliError(format!("cannot copy the backup: {e}")))?;
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

/// `export --masked FILE`: a copy for test environments with personal data, credentials and
/// secrets replaced by realistic fakes (static masking). SQLite only.
pub fn export_masked(config: &Config, file: &Path, json: bool) -> Result<(), CliError> {
    use crate::db::DbConn;
    use diesel::Connection;
    let DbUrl::Sqlite(_) = &config.database_url else {
        return Err(CliError(
            "export --masked works on SQLite; for PostgreSQL restore a pg_dump into a scratch database and mask it there".into(),
        ));
    };
    if file.exists() {
        return Err(CliError(format!("{} already exists", file.display())));
    }
    let target = file
        .to_str()
        .ok_or_else(|| CliError("the export path must be valid UTF-8".into()))?;
    let mut conn = open(config)?;
    conn.batch_execute(&format!("VACUUM INTO '{}'", target.replace('\'', "''")))
        .map_err(|e| CliError(format!("export failed: {e}")))?;
    drop(conn);
    let sqlite = diesel::sqlite::SqliteConnection::establish(target)
        .map_err(|e| CliError(format!("cannot open the export: {e}")))?;
    let mut copy = DbConn::Sqlite(sqlite);
    let fake_password = crate::sign_in::password::hash(&crate::keys::secrets::random_token())?;
    let users = crate::store::users::list(&mut copy)?;
    crate::db::transaction(&mut copy, |c| {
        for (i, u) in users.iter().enumerate() {
            diesel::sql_query(
                "UPDATE users SET email = ?, name = ?, password_hash = ? WHERE id = ?",
            )
            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(
                u.email
                    .as_ref()
                    .map(|_| format!("user{}@example.invalid", i + 1)),
            )
            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(
                u.name.as_ref().map(|_| format!("Test User {}", i + 1)),
            )
            .bind::<diesel::sql_types::Text, _>(&fake_password)
            .bind::<diesel::sql_types::Text, _>(&u.id)
            .execute(c)?;
        }
        c.batch_execute(
            "UPDATE clients SET secret_hash = NULL WHERE public = 1;
             DELETE FROM sessions; DELETE FROM auth_requests; DELETE FROM auth_codes;
             DELETE FROM tokens; DELETE FROM password_history; DELETE FROM throttles;
             DELETE FROM logout_deliveries; DELETE FROM webhook_deliveries;
             DELETE FROM session_clients; DELETE FROM signing_keys;
             UPDATE audit_log SET ip = NULL, user_agent = NULL;",
        )?;
        for cl in crate::store::clients::list(c)? {
            if !cl.public {
                diesel::sql_query("UPDATE clients SET secret_hash = ? WHERE client_id = ?")
                    .bind::<diesel::sql_types::Text, _>(crate::keys::secrets::sha256_hex(
                        &crate::keys::secrets::random_token(),
                    ))
                    .bind::<diesel::sql_types::Text, _>(&cl.client_id)
                    .execute(c)?;
            }
        }
        // No signing key: the test environment generates its own, under its own master key.
        Ok::<_, diesel::result::Error>(())
    })?;
    copy.batch_execute("VACUUM")
        .map_err(|e| CliError(format!("export failed: {e}")))?;
    output(
        json,
        &json!({"export": target, "users": users.len()}),
        &format!(
            "masked copy written to {target}: {} user(s) with fake names, addresses and passwords; sessions, codes and tokens removed; client secrets replaced, signing keys removed (the test environment makes its own) (set new secrets with the CLI of the test environment)",
            users.len()
        ),
    );
    Ok(())
}
