//! Second factors added recently. Until mail exists, the account page lists them with their
//! time (and each addition is an `account.factor_added` audit event), and a password change
//! can remove them all at once: what a user does who finds one they did not add.

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use crate::account::when;
use crate::audit::{self, Event};
use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::store::mfa;

/// One factor added within the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    Totp { at: NaiveDateTime },
    Passkey { name: String, at: NaiveDateTime },
    RecoveryCodes { at: NaiveDateTime },
}

impl Added {
    fn at(&self) -> NaiveDateTime {
        match self {
            Added::Totp { at } | Added::Passkey { at, .. } | Added::RecoveryCodes { at } => *at,
        }
    }

    /// One line of the account page's notice.
    pub fn describe(&self) -> String {
        match self {
            Added::Totp { at } => format!("An authenticator app was added on {}.", when(*at)),
            Added::Passkey { name, at } => {
                format!("A passkey “{name}” was added on {}.", when(*at))
            }
            Added::RecoveryCodes { at } => {
                format!("Recovery codes were created on {}.", when(*at))
            }
        }
    }
}

/// The user's factors added since `now - lifetimes.recent_factor`, oldest first.
pub fn recently_added(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<Vec<Added>, InternalError> {
    let since = now - Duration::seconds(ctx.config.lifetimes.recent_factor);
    let mut added = Vec::new();
    if let Some(t) = mfa::totp_find(conn, user_id)?.filter(|t| t.confirmed) {
        let at = t.confirmed_at.unwrap_or(t.created_at);
        if at >= since {
            added.push(Added::Totp { at });
        }
    }
    for p in mfa::passkeys_for(conn, user_id)? {
        if p.created_at >= since {
            added.push(Added::Passkey {
                name: p.name,
                at: p.created_at,
            });
        }
    }
    if let Some(at) = mfa::recovery_created_at(conn, user_id)?.filter(|at| *at >= since) {
        added.push(Added::RecoveryCodes { at });
    }
    added.sort_by_key(Added::at);
    Ok(added)
}

/// Records a new factor for the user to be told about (`kind`: totp, passkey, recovery_codes).
pub fn announce(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    user_id: &str,
    kind: &str,
    name: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), InternalError> {
    audit::record(
        conn,
        ctx.meta,
        now,
        Event::new("account.factor_added", "success")
            .user(user_id)
            .actor(user_id)
            .details(json!({"kind": kind, "name": name})),
    )
}

/// What a password change removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Removed {
    pub totp: bool,
    pub passkeys: usize,
    pub recovery_codes: bool,
}

impl Removed {
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0 || self.recovery_codes
    }
}

/// Removes every factor added within the window (audited). The user asked for it while
/// proving the password, so the last factor of an MFA client goes too: the next sign-in to
/// that client asks to enrol again.
pub fn remove_recent(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<Removed, InternalError> {
    let since = now - Duration::seconds(ctx.config.lifetimes.recent_factor);
    let mut removed = Removed::default();
    if let Some(t) = mfa::totp_find(conn, user_id)?.filter(|t| t.confirmed)
        && t.confirmed_at.unwrap_or(t.created_at) >= since
    {
        removed.totp = mfa::totp_delete(conn, user_id)? > 0;
    }
    for p in mfa::passkeys_for(conn, user_id)? {
        if p.created_at >= since {
            removed.passkeys += mfa::passkey_delete(conn, user_id, &p.credential_id)?;
        }
    }
    if mfa::recovery_created_at(conn, user_id)?.is_some_and(|at| at >= since) {
        removed.recovery_codes = mfa::recovery_delete_for(conn, user_id)? > 0;
    }
    audit::record(
        conn,
        ctx.meta,
        now,
        Event::new("account.recent_factors_removed", "success")
            .user(user_id)
            .actor(user_id)
            .details(json!({
                "totp": removed.totp,
                "passkeys": removed.passkeys,
                "recovery_codes": removed.recovery_codes,
            })),
    )?;
    Ok(removed)
}
