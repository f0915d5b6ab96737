//! The one step that completes every sign-in (password alone, password and second factor,
//! passkey, enrolment on the way to an application): a fresh session, the audit record, the
//! detection rules, and where the browser goes next. Where it goes is a value (`Next`) that the
//! caller acts on; sign-in itself knows nothing of authorization requests.

use chrono::NaiveDateTime;
use serde_json::json;

use crate::audit::{self, Event, detect};
use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::sign_in::sessions::{self, Origin, Proof};
use crate::sign_in::{device, password};
use crate::store::sessions::Session;

/// Where a browser goes after a sign-in step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    /// The password was right; a second factor is due (the request, if any, carried along).
    SecondFactor { request: Option<String> },
    /// Signed in for a parked authorization request: mark it answered by session `sid`,
    /// then continue it.
    Authorize { request: String, sid: String },
    /// Signed in, but the password has expired: the account page asks for a new one first.
    PasswordExpired,
    /// Signed in without an application waiting: the account page.
    Account,
}

/// A browser through a sign-in step: its new session cookie, where it goes next, and, once
/// the sign-in is complete, a new device cookie (`device.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landing {
    pub cookie: String,
    pub next: Next,
    pub device: Option<String>,
}

/// Signs the browser in as `user_id` with `proof` (replacing `previous`, so the session id
/// changes), records it, runs the detection rules and decides where the browser goes.
#[allow(clippy::too_many_arguments)]
pub fn finish(
    c: &mut DbConn,
    ctx: Ctx<'_>,
    previous: Option<&Session>,
    user_id: &str,
    proof: Proof<'_>,
    request: Option<&str>,
    origin: &Origin,
    now: NaiveDateTime,
) -> Result<Landing, InternalError> {
    let amr = proof.amr.to_vec();
    let opened = sessions::sign_in(
        c,
        previous,
        user_id,
        proof,
        origin,
        now,
        &ctx.config.lifetimes,
    )?;
    ctx.metrics.sign_in("success");
    audit::record(
        c,
        ctx.meta,
        now,
        Event::new("sign_in", "success")
            .user(user_id)
            .details(json!({"amr": amr, "sid": opened.session.sid})),
    )?;
    detect::after_sign_in(c, ctx, now, user_id)?;
    let next = if password::expired(c, ctx.config.password.max_age_days, user_id, now)? {
        Next::PasswordExpired
    } else {
        match request {
            Some(r) => Next::Authorize {
                request: r.to_string(),
                sid: opened.session.sid.clone(),
            },
            None => Next::Account,
        }
    };
    Ok(Landing {
        cookie: opened.cookie,
        next,
        device: Some(device::issue(
            ctx.master,
            user_id,
            now,
            ctx.config.lifetimes.device,
        )),
    })
}
