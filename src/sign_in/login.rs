//! The sign-in use case: CSRF, throttling, the password check, and a fresh session.

use chrono::NaiveDateTime;

use serde_json::json;

use crate::audit::{self, Event, detect};
use crate::context::Ctx;
use crate::db::{self, DbConn};
use crate::error::InternalError;
use crate::keys::secrets::Secret;
use crate::sign_in::finish::{Landing, Next, finish};
use crate::sign_in::sessions::{self, FormSender, Origin};
use crate::sign_in::{device, password, second_factor, throttle};
use crate::store::users;

#[derive(Debug, Clone)]
pub struct Attempt {
    /// The browser, as its form token proved it (`web/context.rs`).
    pub sender: FormSender,
    pub username: String,
    /// Redacted in `Debug`, wiped when dropped.
    pub password: Secret,
    pub request: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    BadCsrf,
    /// Too many failures: wait this many seconds. `csrf` is the session's form token, if the
    /// browser has a session (else the page keeps its anonymous token).
    Throttled {
        retry_after: i64,
        csrf: Option<String>,
    },
    Failed {
        csrf: Option<String>,
    },
    SignedIn(Landing),
}

/// One sign-in attempt. Argon2 runs between two short transactions, never inside one.
pub fn attempt(
    c: &mut DbConn,
    ctx: Ctx<'_>,
    a: Attempt,
    now: NaiveDateTime,
) -> Result<Outcome, InternalError> {
    let lt = ctx.config.lifetimes.clone();
    let tcfg = &ctx.config.throttle;
    let session = a.sender.previous().cloned();
    if !a.sender.verified() {
        return Ok(Outcome::BadCsrf);
    }
    // The account a device cookie must name (looked up only when one was sent).
    let account = match &a.origin.device {
        Some(_) => users::find_by_username(c, a.username.trim())?.map(|u| u.id),
        None => None,
    };
    let keys = device::throttle_keys(ctx, &a.username, account.as_deref(), &a.origin, now);
    let csrf = session.as_ref().map(|s| s.csrf_token.clone());
    // Counted before the password is checked, so parallel guesses see each other.
    let claimed_wait = match throttle::claim(c, tcfg, &keys, now)? {
        throttle::Claim::Granted { wait } => wait,
        throttle::Claim::Blocked(retry_after) => {
            ctx.metrics.sign_in("blocked");
            db::transaction(c, |c| {
                audit::record(
                    c,
                    ctx.meta,
                    now,
                    Event::new("sign_in", "blocked").details(json!({
                        "username": audit::mask(&a.username),
                        "retry_after": retry_after,
                    })),
                )
            })?;
            return Ok(Outcome::Throttled { retry_after, csrf });
        }
    };
    let too_long = a.username.len() > 256 || a.password.expose().len() > 4096;
    let checked = if too_long {
        password::Checked::BadCredentials
    } else {
        password::authenticate(c, ctx.dummy_hash, &a.username, a.password.expose(), now)?
    };
    db::transaction(c, |c| match checked {
        password::Checked::Valid(user) if second_factor::factors(c, &user.id)?.any() => {
            throttle::succeeded_claimed(c, tcfg, &keys)?;
            let opened =
                sessions::begin_second_factor(c, session.as_ref(), &user.id, &a.origin, now, &lt)?;
            audit::record(
                c,
                ctx.meta,
                now,
                Event::new("sign_in.password", "success")
                    .user(&user.id)
                    .details(json!({"next": "second_factor"})),
            )?;
            Ok(Outcome::SignedIn(Landing {
                cookie: opened.cookie,
                next: Next::SecondFactor {
                    request: a.request.clone(),
                },
                device: None,
            }))
        }
        password::Checked::Valid(user) => {
            throttle::succeeded_claimed(c, tcfg, &keys)?;
            let proof = sessions::Proof {
                amr: &["pwd"],
                password_at: Some(now),
            };
            let landing = finish(
                c,
                ctx,
                session.as_ref(),
                &user.id,
                proof,
                a.request.as_deref(),
                &a.origin,
                now,
            )?;
            Ok(Outcome::SignedIn(landing))
        }
        password::Checked::BadCredentials => {
            let wait = throttle::failed_claimed(c, tcfg, &keys, claimed_wait, now)?;
            ctx.metrics.sign_in("failure");
            audit::record(
                c,
                ctx.meta,
                now,
                Event::new("sign_in", "failure").details(json!({
                    "reason": "bad_credentials",
                    "username": audit::mask(&a.username),
                    "account": detect::account_ref(ctx.master, &a.username),
                    "delay": wait.unwrap_or(0),
                })),
            )?;
            detect::after_failed_sign_in(
                c,
                ctx,
                now,
                &detect::account_ref(ctx.master, &a.username),
            )?;
            tracing::info!(
                ip = a.origin.ip.as_deref().unwrap_or("unknown"),
                "failed sign-in"
            );
            Ok(match wait {
                Some(retry_after) => Outcome::Throttled { retry_after, csrf },
                None => Outcome::Failed { csrf },
            })
        }
    })
}
