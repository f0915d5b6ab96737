//! `portcullis user set` and `portcullis user remove`: changing and removing what `user add`
//! created.

use chrono::NaiveDateTime;
use serde_json::json;

use crate::bootstrap::ADMIN_ROLE;
use crate::cli::user::{validate_email, validate_name};
use crate::cli::{CliError, audit_change, clock, open, output, tx};
use crate::config::Config;
use crate::db::DbConn;
use crate::store::{consents, sessions, tokens, users};

/// What `user set` was asked to change (`None`: leave as it is). An empty email or name
/// removes it.
#[derive(Debug, Default, Clone)]
pub struct Changes {
    pub email: Option<String>,
    pub name: Option<String>,
    pub email_verified: Option<bool>,
}

impl Changes {
    /// Checks the values as `user add` does.
    pub fn validate(&self) -> Result<(), CliError> {
        if self.email.is_none() && self.name.is_none() && self.email_verified.is_none() {
            return Err(CliError(
                "nothing to change: give --email, --name or --email-verified".into(),
            ));
        }
        if let Some(e) = self.email.as_deref().filter(|e| !e.is_empty()) {
            validate_email(e)?;
        }
        if let Some(n) = &self.name {
            validate_name(n)?;
        }
        Ok(())
    }
}

/// Applies `changes` to the user in one transaction, audited as `admin.user.set` with the
/// names of the fields that changed (never their values). A new email address is unverified
/// unless `email_verified` says otherwise. Returns the user as it is now and what changed.
pub fn set(
    conn: &mut DbConn,
    username: &str,
    changes: &Changes,
    now: NaiveDateTime,
) -> Result<(users::User, Vec<&'static str>), CliError> {
    changes.validate()?;
    tx(conn, |c| {
        let before = find(c, username)?;
        let mut after = before.clone();
        if let Some(e) = &changes.email {
            after.email = Some(e.clone()).filter(|e| !e.is_empty());
        }
        if let Some(n) = &changes.name {
            after.name = Some(n.clone()).filter(|n| !n.is_empty());
        }
        if after.email != before.email {
            after.email_verified = false;
        }
        if let Some(v) = changes.email_verified {
            after.email_verified = v;
        }
        if after.email_verified && after.email.is_none() {
            return Err(CliError(format!(
                "user {username:?} has no email address to mark verified"
            )));
        }
        let mut changed = Vec::new();
        if after.email != before.email {
            changed.push("email");
        }
        if after.name != before.name {
            changed.push("name");
        }
        if after.email_verified != before.email_verified {
            changed.push("email_verified");
        }
        if changed.is_empty() {
            return Ok((before, changed));
        }
        users::set_profile(
            c,
            &before.id,
            after.email.as_deref(),
            after.name.as_deref(),
            after.email_verified,
            now,
        )?;
        after.updated_at = now;
        audit_change(
            c,
            "admin.user.set",
            Some(&before.id),
            None,
            json!({"changed": changed, "email_verified": after.email_verified}),
        )?;
        Ok((after, changed))
    })
}

/// What went with a removed user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub user_id: String,
    pub sessions: usize,
    pub tokens: usize,
    pub consents: usize,
}

/// Removes a user with everything that hangs off them (sessions, tokens, codes, consents,
/// second factors, passkeys, recovery codes, password history) in one transaction, audited
/// as `admin.user.remove`. The last user holding the `admin` role is not removed: the next
/// start would otherwise create a new `admin` with a fresh password.
pub fn remove(conn: &mut DbConn, username: &str) -> Result<Removed, CliError> {
    tx(conn, |c| {
        let u = find(c, username)?;
        if u.role_list().iter().any(|r| r == ADMIN_ROLE) {
            let others = users::list(c)?
                .iter()
                .filter(|o| o.id != u.id && o.role_list().iter().any(|r| r == ADMIN_ROLE))
                .count();
            if others == 0 {
                return Err(CliError(format!(
                    "{username} is the last user holding the {ADMIN_ROLE} role: add another administrator first (portcullis user add NAME --role {ADMIN_ROLE})"
                )));
            }
        }
        let consents = consents::for_user(c, &u.id)?.len();
        let tokens = tokens::revoke_for_user(c, &u.id)?;
        let sessions = sessions::delete_for_user(c, &u.id)?;
        // Codes, tokens, consents, second factors, passkeys, recovery codes, ceremonies,
        // session links and the password history reference the user ON DELETE CASCADE.
        if users::delete(c, &u.id)? != 1 {
            return Err(CliError(format!("no user {username:?}")));
        }
        audit_change(
            c,
            "admin.user.remove",
            Some(&u.id),
            None,
            json!({"username": u.username, "sessions": sessions, "tokens": tokens, "consents": consents}),
        )?;
        Ok(Removed {
            user_id: u.id,
            sessions,
            tokens,
            consents,
        })
    })
}

fn find(c: &mut DbConn, username: &str) -> Result<users::User, CliError> {
    users::find_by_username(c, username)?.ok_or_else(|| CliError(format!("no user {username:?}")))
}

/// `portcullis user set`.
pub fn run_set(
    config: &Config,
    username: &str,
    changes: &Changes,
    json: bool,
) -> Result<(), CliError> {
    changes.validate()?;
    let mut conn = open(config)?;
    let (u, changed) = set(&mut conn, username, changes, clock().naive())?;
    let text = if changed.is_empty() {
        format!("user {username}: nothing changed")
    } else {
        format!("user {username}: changed {}", changed.join(", "))
    };
    output(
        json,
        &json!({
            "username": u.username,
            "changed": changed,
            "email_verified": u.email_verified,
        }),
        &text,
    );
    Ok(())
}

/// `portcullis user remove`.
pub fn run_remove(config: &Config, username: &str, json: bool) -> Result<(), CliError> {
    let mut conn = open(config)?;
    let r = remove(&mut conn, username)?;
    output(
        json,
        &json!({
            "username": username,
            "removed": true,
            "sessions": r.sessions,
            "tokens": r.tokens,
            "consents": r.consents,
        }),
        &format!(
            "user {username} removed with {} session(s), {} token(s) and {} consent(s)",
            r.sessions, r.tokens, r.consents
        ),
    );
    Ok(())
}
