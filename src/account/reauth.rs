//! Typing the password again before a sensitive change (removing or adding a factor,
//! changing the password), throttled like sign-in. A success is remembered on the session:
//! for a few minutes afterwards the user may add factors without typing it once more.

use chrono::NaiveDateTime;
use serde_json::json;

use crate::audit::{self, Event};
use crate::context::Ctx;
use crate::db::{self, DbConn};
use crate::error::InternalError;
use crate::sign_in::sessions::Origin;
use crate::sign_in::{device, password, throttle};
use crate::store::sessions::{self, Session};
use crate::store::users::User;

/// The answer to a re-authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reauth {
    Ok,
    Wrong,
    Throttled(i64),
}

/// Checks the current password typed for `session`, throttled like sign-in (the same
/// counters). Argon2 runs outside any transaction.
pub fn reauthenticate(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    user: &User,
    session: &Session,
    presented: &str,
    origin: &Origin,
    now: NaiveDateTime,
) -> Result<Reauth, InternalError> {
    let keys = device::throttle_keys(ctx, &user.username, Some(&user.id), origin, now);
    // Counted before the password is checked, so parallel guesses see each other.
    let claimed_wait = match throttle::claim(conn, &ctx.config.throttle, &keys, now)? {
        throttle::Claim::Granted { wait } => wait,
        throttle::Claim::Blocked(retry_after) => {
            db::transaction(conn, |c| {
                audit::record(
                    c,
                    ctx.meta,
                    now,
                    Event::new("reauthenticate", "blocked")
                        .user(&user.id)
                        .actor(&user.id)
                        .details(json!({"retry_after": retry_after})),
                )
            })?;
            return Ok(Reauth::Throttled(retry_after));
        }
    };
    let stored = user
        .password_hash
        .clone()
        .unwrap_or_else(|| ctx.dummy_hash.to_string());
    let ok = presented.len() <= 4096 && password::verify(&stored, presented);
    db::transaction(conn, |c| {
        if ok {
            throttle::succeeded_claimed(c, &ctx.config.throttle, &keys)?;
            sessions::set_password_at(c, &session.id_hash, now)?;
            return Ok(Reauth::Ok);
        }
        let wait = throttle::failed_claimed(c, &ctx.config.throttle, &keys, claimed_wait, now)?;
        audit::record(
            c,
            ctx.meta,
            now,
            Event::new("reauthenticate", "failure")
                .user(&user.id)
                .actor(&user.id)
                .details(json!({"delay": wait.unwrap_or(0)})),
        )?;
        Ok(wait.map(Reauth::Throttled).unwrap_or(Reauth::Wrong))
    })
}

/// True when the password was typed for this session recently enough to add a factor.
pub fn recent(ctx: Ctx<'_>, session: &Session, now: NaiveDateTime) -> bool {
    crate::sign_in::sessions::password_recent(session, now, ctx.config.lifetimes.reauth)
}
