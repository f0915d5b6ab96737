//! `portcullis export --masked FILE`: a copy for test environments that holds nothing that
//! helps attack production. Every table of the schema has a rule here; a table without one
//! stops the export, so a new table can never leak into a masked copy by default.

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use serde_json::json;
use std::path::Path;

use crate::cli::{CliError, open, output};
use crate::config::Config;
use crate::db::{DbConn, DbUrl};

/// What a masked copy keeps of a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Nothing secret or personal: kept as it is.
    Keep,
    /// Rewritten row by row with fakes (users, clients).
    Rewrite,
    /// Credentials, sessions, personal history or evidence: emptied.
    Empty,
}

/// The masking rule of every table.
pub const RULES: &[(&str, Rule)] = &[
    ("__diesel_schema_migrations", Rule::Keep),
    ("users", Rule::Rewrite),
    ("clients", Rule::Rewrite),
    ("sessions", Rule::Empty),
    ("auth_requests", Rule::Empty),
    ("auth_codes", Rule::Empty),
    ("tokens", Rule::Empty),
    ("consents", Rule::Empty),
    ("signing_keys", Rule::Empty),
    ("session_clients", Rule::Empty),
    ("logout_deliveries", Rule::Empty),
    ("throttles", Rule::Empty),
    ("password_history", Rule::Empty),
    // The trail names people, addresses and what they did; its chain cannot survive
    // rewriting, so the copy starts a trail of its own.
    ("audit_log", Rule::Empty),
    ("audit_checkpoints", Rule::Empty),
    ("webhook_deliveries", Rule::Empty),
    // A TOTP seed opens under the production master key; recovery-code hashes and passkeys
    // are credentials.
    ("totp_credentials", Rule::Empty),
    ("passkeys", Rule::Empty),
    ("recovery_codes", Rule::Empty),
    ("webauthn_ceremonies", Rule::Empty),
    ("pushed_requests", Rule::Empty),
    // Who failed to sign in from where, and when: personal history.
    ("detection_facts", Rule::Empty),
    // Which instances were serving lately (random ids): nothing personal, and nothing a
    // copy needs.
    ("instances", Rule::Empty),
    // When periodic jobs run next: nothing personal.
    ("job_runs", Rule::Keep),
];

/// The rule for `table`, or an error naming a table nobody decided about.
pub fn rule_for(table: &str) -> Result<Rule, String> {
    RULES
        .iter()
        .find(|(name, _)| *name == table)
        .map(|(_, rule)| *rule)
        .ok_or_else(|| format!("the masking rules do not cover the table {table}"))
}

#[derive(diesel::QueryableByName)]
struct TableName {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

fn tables(conn: &mut DbConn) -> Result<Vec<String>, diesel::result::Error> {
    let rows: Vec<TableName> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .load(conn)?;
    Ok(rows.into_iter().map(|t| t.name).collect())
}

pub fn export_masked(config: &Config, file: &Path, json: bool) -> Result<(), CliError> {
    use diesel::Connection;
    let DbUrl::Sqlite(_) = &config.database_url else {
        return Err(CliError(
            "export --masked works on SQLite; for PostgreSQL restore a pg_dump into a scratch database and mask it there".into(),
        ));
    };
    let target = file
        .to_str()
        .ok_or_else(|| CliError("the export path must be valid UTF-8".into()))?;
    let mut conn = open(config)?;
    let plan = tables(&mut conn)?
        .into_iter()
        .map(|t| rule_for(&t).map(|r| (t, r)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(CliError)?;
    crate::cli::backup::vacuum_into_private(&mut conn, file, target)?;
    drop(conn);
    let sqlite = diesel::sqlite::SqliteConnection::establish(target)
        .map_err(|e| CliError(format!("cannot open the export: {e}")))?;
    let mut copy = DbConn::Sqlite(sqlite);
    let masked = mask(&mut copy, &plan);
    if let Err(e) = masked {
        drop(copy);
        let _ = std::fs::remove_file(file);
        return Err(e);
    }
    let users = masked?;
    output(
        json,
        &json!({"export": target, "users": users}),
        &format!(
            "masked copy written to {target}: {users} user(s) renamed user1… with fake addresses and passwords; second factors, sessions, consents, codes, tokens, signing keys and the audit trail removed; client secrets replaced (set new ones with the CLI of the test environment)"
        ),
    );
    Ok(())
}

/// Applies the rules inside one transaction, then compacts the file so that no deleted
/// page keeps the old contents. Returns how many users were masked.
fn mask(copy: &mut DbConn, plan: &[(String, Rule)]) -> Result<usize, CliError> {
    let fake_password = crate::sign_in::password::hash(&crate::keys::secrets::random_token())?;
    let users = crate::store::users::list(copy)?;
    crate::db::transaction(copy, |c| {
        for (table, rule) in plan {
            if *rule == Rule::Empty {
                // The name comes from RULES, never from the database.
                c.batch_execute(&format!("DELETE FROM {table}"))?;
            }
        }
        for (i, u) in users.iter().enumerate() {
            let n = i + 1;
            diesel::sql_query(
                "UPDATE users SET username = ?, email = ?, name = ?, password_hash = ? WHERE id = ?",
            )
            .bind::<diesel::sql_types::Text, _>(format!("user{n}"))
            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(
                u.email.as_ref().map(|_| format!("user{n}@example.invalid")),
            )
            .bind::<diesel::sql_types::Nullable<diesel::sql_types::Text>, _>(
                u.name.as_ref().map(|_| format!("Test User {n}")),
            )
            .bind::<diesel::sql_types::Text, _>(&fake_password)
            .bind::<diesel::sql_types::Text, _>(&u.id)
            .execute(c)?;
        }
        c.batch_execute(
            "UPDATE clients SET secret_hash = NULL WHERE public = 1; \
             UPDATE clients SET previous_secret_hash = NULL, previous_secret_expires_at = NULL",
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
    Ok(users.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_table_of_the_schema_has_a_masking_rule() {
        let dir = tempfile::tempdir().unwrap();
        let url = DbUrl::Sqlite(dir.path().join("t.db").display().to_string());
        let pool = crate::db::connect(&url, 1).unwrap();
        for table in tables(&mut pool.get().unwrap()).unwrap() {
            assert!(rule_for(&table).is_ok(), "no masking rule for {table}");
        }
        assert!(rule_for("a_table_added_later").is_err());
    }
}
