//! The second step of sign-in (and of step-up): a TOTP code or a recovery code (passkeys
//! answer in `passkey_sign_in.rs`). Wrong codes are throttled and audited like wrong passwords.

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use crate::audit::{self, Event, detect};
use crate::context::Ctx;
use crate::db::{self, DbConn};
use crate::error::InternalError;
use crate::keys::secrets::Secret;
use crate::sign_in::finish::{Landing, finish};
use crate::sign_in::sessions::{self, FormSender, Origin, PENDING_SECONDS};
use crate::sign_in::{recovery_codes, throttle, totp};
use crate::store::mfa;
use crate::store::sessions::Session;
use crate::store::users::{self, User};

/// The second factors a user has.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Factors {
    pub totp: bool,
    pub passkeys: usize,
    pub recovery_remaining: i64,
}

impl Factors {
    /// Any of them makes the second step mandatory at every sign-in.
    pub fn any(&self) -> bool {
        self.totp || self.passkeys > 0 || self.recovery_remaining > 0
    }
}

pub fn factors(conn: &mut DbConn, user_id: &str) -> Result<Factors, InternalError> {
    Ok(Factors {
        totp: mfa::totp_find(conn, user_id)?.is_some_and(|t| t.confirmed),
        passkeys: mfa::passkeys_for(conn, user_id)?.len(),
        recovery_remaining: mfa::recovery_remaining(conn, user_id)?,
    })
}

/// Whom the second step is for: a browser between password and second factor, or a signed-in
/// one stepping up.
pub fn subject(session: &Session, now: NaiveDateTime) -> Option<&str> {
    if let Some(p) = session.pending_user_id.as_deref() {
        let started = session.auth_time.unwrap_or(session.created_at);
        return (started + Duration::seconds(PENDING_SECONDS) > now).then_some(p);
    }
    session.user_id.as_deref()
}

/// The enabled user a session's second step is for.
pub fn subject_user(
    conn: &mut DbConn,
    session: &Session,
    now: NaiveDateTime,
) -> Result<Option<User>, InternalError> {
    match subject(session, now) {
        Some(id) => Ok(users::find(conn, id)?.filter(|u| !u.disabled)),
        None => Ok(None),
    }
}

fn throttle_keys(ctx: Ctx<'_>, user_id: &str, ip: Option<&str>) -> throttle::Keys {
    throttle::keys(ctx.master, &format!("mfa:{user_id}"), ip)
}

/// Signs the browser in with the factors proven so far plus `methods` (`finish.rs`).
#[allow(clippy::too_many_arguments)]
pub fn complete(
    c: &mut DbConn,
    ctx: Ctx<'_>,
    previous: Option<&Session>,
    user: &User,
    methods: &[&str],
    request: Option<&str>,
    origin: &Origin,
    now: NaiveDateTime,
) -> Result<Landing, InternalError> {
    // What the same user proved before in this browser carries over; another user's does not.
    let same_user = previous.filter(|p| {
        p.pending_user_id.as_deref() == Some(user.id.as_str())
            || p.user_id.as_deref() == Some(user.id.as_str())
    });
    let mut amr: Vec<String> = same_user.map(sessions::amr).unwrap_or_default();
    for m in methods.iter().chain(std::iter::once(&"mfa")) {
        if !amr.iter().any(|a| a == m) {
            amr.push((*m).to_string());
        }
    }
    let amr_refs: Vec<&str> = amr.iter().map(String::as_str).collect();
    let proof = sessions::Proof {
        amr: &amr_refs,
        password_at: same_user.and_then(|p| p.password_at),
    };
    throttle::succeeded(c, &throttle_keys(ctx, &user.id, origin.ip.as_deref()))?;
    finish(c, ctx, previous, &user.id, proof, request, origin, now)
}

#[derive(Debug, Clone)]
pub struct CodeAttempt {
    /// The browser, as its form token proved it (`web/context.rs`).
    pub sender: FormSender,
    /// Redacted in `Debug` (a recovery code is a credential), wiped when dropped.
    pub code: Secret,
    pub request: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeOutcome {
    BadCsrf,
    /// No second step is due (never signed in, or the pending step timed out).
    NoSubject,
    Throttled {
        retry_after: i64,
    },
    Failed,
    Done(Landing),
}

/// Which kind of code was accepted.
enum Accepted {
    Totp,
    Recovery,
}

fn check_code(
    c: &mut DbConn,
    ctx: Ctx<'_>,
    user_id: &str,
    code: &str,
    now: NaiveDateTime,
) -> Result<Option<Accepted>, InternalError> {
    if code.len() > 64 {
        return Ok(None);
    }
    if let Some(t) = mfa::totp_find(c, user_id)?.filter(|t| t.confirmed) {
        let secret = totp::open(
            ctx.master,
            ctx.config.previous_master_key.as_ref(),
            user_id,
            &t.secret,
        )
        .ok_or_else(|| InternalError::new("TOTP secret cannot be opened"))?;
        if let Some(step) = totp::check(&secret, code, now) {
            // A step accepted before (replay, or an older code after a newer) is refused.
            return Ok(
                (mfa::totp_accept(c, user_id, step, false, now)? == 1).then_some(Accepted::Totp)
            );
        }
    }
    if let Some(n) = recovery_codes::normalize(code) {
        let hash = recovery_codes::hash(user_id, &n);
        if mfa::recovery_use(c, user_id, &hash, now)? == 1 {
            return Ok(Some(Accepted::Recovery));
        }
    }
    Ok(None)
}

/// A code typed on the second-factor page.
pub fn submit_code(
    c: &mut DbConn,
    ctx: Ctx<'_>,
    a: CodeAttempt,
    now: NaiveDateTime,
) -> Result<CodeOutcome, InternalError> {
    db::transaction(c, |c| {
        // No session at all (it expired): nothing to protect, start again at the password.
        let Some(session) = a.sender.previous() else {
            return Ok(CodeOutcome::NoSubject);
        };
        if !a.sender.session_token {
            return Ok(CodeOutcome::BadCsrf);
        }
        let Some(user) = subject_user(c, session, now)? else {
            return Ok(CodeOutcome::NoSubject);
        };
        let keys = throttle_keys(ctx, &user.id, a.origin.ip.as_deref());
        if let Some(retry_after) = throttle::blocked(
            c,
            &throttle::for_second_factor(&ctx.config.throttle),
            &keys,
            now,
        )? {
            ctx.metrics.sign_in("blocked");
            audit::record(
                c,
                ctx.meta,
                now,
                Event::new("sign_in", "blocked")
                    .user(&user.id)
                    .details(json!({"step": "second_factor", "retry_after": retry_after})),
            )?;
            return Ok(CodeOutcome::Throttled { retry_after });
        }
        match check_code(c, ctx, &user.id, a.code.expose(), now)? {
            Some(kind) => {
                if let Accepted::Recovery = kind {
                    let remaining = mfa::recovery_remaining(c, &user.id)?;
                    audit::record(
                        c,
                        ctx.meta,
                        now,
                        Event::new("mfa.recovery_code.use", "success")
                            .user(&user.id)
                            .details(json!({"remaining": remaining})),
                    )?;
                }
                let landing = complete(
                    c,
                    ctx,
                    Some(session),
                    &user,
                    &["otp"],
                    a.request.as_deref(),
                    &a.origin,
                    now,
                )?;
                Ok(CodeOutcome::Done(landing))
            }
            None => {
                let wait = throttle::failed(
                    c,
                    &throttle::for_second_factor(&ctx.config.throttle),
                    &keys,
                    now,
                )?;
                ctx.metrics.sign_in("failure");
                let account = detect::account_ref(ctx.master, &user.username);
                audit::record(
                    c,
                    ctx.meta,
                    now,
                    Event::new("sign_in", "failure")
                        .user(&user.id)
                        .details(json!({
                            "reason": "bad_second_factor",
                            "account": account,
                            "delay": wait.unwrap_or(0),
                        })),
                )?;
                detect::after_failed_sign_in(c, ctx, now, &account)?;
                Ok(match wait {
                    Some(retry_after) => CodeOutcome::Throttled { retry_after },
                    None => CodeOutcome::Failed,
                })
            }
        }
    })
}

#[cfg(test)]
mod tests;
