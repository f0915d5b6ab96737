//! `portcullis audit …`: verify the chain, show the newest entries, export for a SIEM.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use clap::Subcommand;
use serde_json::json;

use crate::audit::{self, Verdict};
use crate::cli::{CliError, open, output};
use crate::config::Config;
use crate::store::audit_log::{self, Entry};

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain; exit 1 and name the first broken entry if it was altered
    Verify,
    /// Show the newest entries
    Tail {
        /// How many
        #[arg(short = 'n', long, default_value_t = 20)]
        lines: i64,
        /// Keep printing new entries as they are written
        #[arg(short = 'f', long)]
        follow: bool,
    },
    /// Write entries as JSON lines (for a SIEM)
    Export {
        /// RFC 3339 time or YYYY-MM-DD; entries at or after it
        #[arg(long)]
        since: Option<String>,
    },
}

fn line(e: &Entry) -> String {
    format!(
        "{} #{} {} {} user={} client={} ip={} {}",
        e.at.and_utc().to_rfc3339(),
        e.seq,
        e.event,
        e.outcome,
        e.user_id.as_deref().unwrap_or("-"),
        e.client_id.as_deref().unwrap_or("-"),
        e.ip.as_deref().unwrap_or("-"),
        e.details
    )
}

fn as_json(e: &Entry) -> serde_json::Value {
    let mut v = serde_json::to_value(e).unwrap_or_default();
    if let Some(d) = v.get("details").and_then(|d| d.as_str()) {
        v["details"] = serde_json::from_str(d).unwrap_or_default();
    }
    v["at"] = json!(e.at.and_utc().to_rfc3339());
    v
}

fn parse_since(s: &str) -> Result<NaiveDateTime, CliError> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.naive_utc());
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).unwrap_or_default());
    }
    Err(CliError(format!(
        "invalid --since {s:?}: use an RFC 3339 time or YYYY-MM-DD"
    )))
}

pub fn run(config: &Config, cmd: AuditCommand, json: bool) -> Result<(), CliError> {
    let mut conn = open(config)?;
    // What is committed but not yet chained (PostgreSQL) is chained first, so every command
    // sees the whole trail.
    audit::link(&mut conn, true)?;
    match cmd {
        AuditCommand::Verify => {
            match audit::verify(&mut conn, config.master_key.as_ref().map(|(k, _)| k))? {
                Verdict::Intact { entries } => {
                    let unanchored = match config.master_key.as_ref() {
                        Some((k, _)) => audit::unanchored(&mut conn, k)?,
                        None => entries,
                    };
                    output(
                        json,
                        &json!({"intact": true, "entries": entries, "unanchored": unanchored}),
                        &format!(
                            "audit trail intact: {entries} entries; {unanchored} after the last signed checkpoint (not yet anchored: a dropped tail there would not show)"
                        ),
                    );
                    Ok(())
                }
                Verdict::Broken { seq, reason } => {
                    if json {
                        crate::cli::say(
                            json!({"intact": false, "broken_at": seq, "reason": reason}),
                        );
                    }
                    Err(CliError(format!(
                        "audit trail broken at entry {seq}: {reason}"
                    )))
                }
            }
        }
        AuditCommand::Tail { lines, follow } => {
            // `-n 0` prints nothing (and with `-f`, only what comes next).
            let entries = match lines.clamp(0, 10_000) {
                0 => Vec::new(),
                n => audit_log::tail(&mut conn, n)?,
            };
            let mut last = entries.last().map(|e| e.seq).unwrap_or(0);
            for e in &entries {
                crate::cli::say(if json {
                    as_json(e).to_string()
                } else {
                    line(e)
                });
            }
            if !follow {
                return Ok(());
            }
            // Follows until interrupted (Ctrl-C), checking for new entries every second.
            loop {
                std::thread::park_timeout(std::time::Duration::from_secs(1));
                audit::link(&mut conn, false)?;
                for e in audit_log::page(&mut conn, last, 1000)? {
                    crate::cli::say(if json {
                        as_json(&e).to_string()
                    } else {
                        line(&e)
                    });
                    last = e.seq;
                }
            }
        }
        AuditCommand::Export { since } => {
            let from = match since {
                Some(s) => parse_since(&s)?,
                None => NaiveDateTime::default(),
            };
            let mut after = 0i64;
            loop {
                let page: Vec<Entry> = audit_log::page(&mut conn, after, 1000)?;
                if page.is_empty() {
                    return Ok(());
                }
                for e in &page {
                    if e.at >= from {
                        crate::cli::say(as_json(e));
                    }
                    after = e.seq;
                }
            }
        }
    }
}
