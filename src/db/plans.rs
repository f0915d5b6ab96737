//! The queries of the hot path (token grants, introspection, userinfo, sign-in, the audit
//! append and link, detection) and of the purge, written out with sample values, and a check
//! that each finds its rows through an index on the backend at hand (`full_scans`). A unit
//! test runs it on SQLite and an integration test on whichever backend the suite runs on.
//! Tables with a handful of rows by nature (signing keys, instances, job runs) are left out.

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;

use super::DbConn;

const T: &str = "'2026-01-01 00:00:00'";

/// The queries, with `{T}` standing for a timestamp.
pub const QUERIES: &[&str] = &[
    // Grants, introspection, userinfo, sign-in: lookups by key.
    "SELECT * FROM tokens WHERE token_hash = 'h'",
    "UPDATE tokens SET revoked = TRUE WHERE family_id = 'f'",
    "SELECT * FROM tokens WHERE user_id = 'u' AND client_id = 'c'",
    "SELECT * FROM clients WHERE client_id = 'c'",
    "SELECT * FROM users WHERE id = 'u'",
    "SELECT * FROM users WHERE username = 'alice'",
    "SELECT * FROM sessions WHERE id_hash = 'h'",
    "SELECT * FROM sessions WHERE user_id = 'u'",
    "SELECT * FROM auth_codes WHERE code_hash = 'h'",
    "SELECT * FROM auth_requests WHERE id = 'r'",
    "SELECT COUNT(*) FROM auth_requests WHERE client_ip = 'a' AND expires_at > {T}",
    "SELECT * FROM pushed_requests WHERE id = 'r'",
    "SELECT COUNT(*) FROM pushed_requests WHERE client_id = 'c' AND expires_at > {T}",
    "SELECT * FROM consents WHERE user_id = 'u' AND client_id = 'c'",
    "SELECT * FROM throttles WHERE key = 'k'",
    "SELECT * FROM session_clients WHERE sid = 's'",
    "SELECT * FROM totp_credentials WHERE user_id = 'u'",
    "SELECT * FROM passkeys WHERE user_id = 'u'",
    "SELECT * FROM recovery_codes WHERE user_id = 'u'",
    // The audit append (SQLite), the link (PostgreSQL) and detection.
    "SELECT * FROM audit_log WHERE seq > 0 ORDER BY seq DESC LIMIT 1",
    "SELECT * FROM audit_log WHERE seq < 0 ORDER BY seq DESC LIMIT 1000",
    "UPDATE audit_log SET seq = 1, prev_hash = 'a', hash = 'b' WHERE seq = -1",
    "SELECT id FROM detection_facts WHERE kind = 'k' AND subject = 's' AND at >= {T} LIMIT 11",
    "SELECT DISTINCT other FROM detection_facts WHERE kind = 'k' AND subject = 's' AND at >= {T} LIMIT 11",
    "SELECT other, at FROM detection_facts WHERE kind = 'k' AND subject = 's' AND at >= {T} ORDER BY at DESC LIMIT 500",
    // The purge's batches (store/*::purge) and audit retention.
    "SELECT id_hash FROM sessions WHERE expires_at <= {T} OR last_seen_at <= {T} LIMIT 500",
    "SELECT id FROM auth_requests WHERE expires_at <= {T} LIMIT 500",
    "SELECT code_hash FROM auth_codes WHERE expires_at <= {T} LIMIT 500",
    "SELECT token_hash FROM tokens WHERE expires_at <= {T} LIMIT 500",
    "SELECT token_hash FROM tokens WHERE rotated_at <= {T} AND successor_sealed IS NOT NULL LIMIT 500",
    "SELECT key FROM throttles WHERE last_failure_at < {T} LIMIT 500",
    "SELECT id FROM logout_deliveries WHERE created_at <= {T} AND (delivered = TRUE OR attempts >= 8) LIMIT 500",
    "SELECT id FROM webauthn_ceremonies WHERE expires_at <= {T} LIMIT 500",
    "SELECT id FROM pushed_requests WHERE expires_at <= {T} LIMIT 500",
    "SELECT id FROM detection_facts WHERE at < {T} ORDER BY at ASC LIMIT 500",
    "DELETE FROM audit_log WHERE seq > 0 AND seq <= 5",
];

#[derive(diesel::QueryableByName)]
struct SqlitePlanStep {
    #[diesel(sql_type = diesel::sql_types::Text)]
    detail: String,
}

#[derive(diesel::QueryableByName)]
struct PgPlanLine {
    #[diesel(sql_type = diesel::sql_types::Text)]
    #[diesel(column_name = "QUERY PLAN")]
    line: String,
}

/// Each query of `QUERIES` whose plan reads a whole table, with that plan. On PostgreSQL the
/// planner is told to avoid sequential scans (it prefers them on small tables), so one that
/// remains means no index serves the query.
pub fn full_scans(conn: &mut DbConn) -> Result<Vec<(String, String)>, diesel::result::Error> {
    let mut found = Vec::new();
    for q in QUERIES {
        let q = q.replace("{T}", T);
        let plan: Vec<String> = match conn {
            DbConn::Sqlite(_) => diesel::sql_query(format!("EXPLAIN QUERY PLAN {q}"))
                .load::<SqlitePlanStep>(conn)?
                .into_iter()
                .map(|s| s.detail)
                .collect(),
            DbConn::Pg(_) => super::read_only(conn, |c| {
                c.batch_execute("SET LOCAL enable_seqscan = off")?;
                diesel::sql_query(format!("EXPLAIN {q}")).load::<PgPlanLine>(c)
            })?
            .into_iter()
            .map(|l| l.line)
            .collect(),
        };
        let scans = plan
            .iter()
            .any(|step| step.trim_start().starts_with("SCAN ") || step.contains("Seq Scan"));
        if scans || plan.is_empty() {
            found.push((q, plan.join("\n")));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    #[test]
    fn every_hot_path_and_purge_query_finds_its_rows_through_an_index_on_sqlite() {
        let mut c = crate::testkit::db();
        assert_eq!(super::full_scans(&mut c).unwrap(), Vec::new());
    }
}
