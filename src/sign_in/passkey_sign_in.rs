//! Signing in with a passkey: without a password from the sign-in page, or as the second
//! step. A ceremony begins only when the browser asks for one (the passkey button), bound to
//! that browser: its session, or, for an anonymous visitor, its signed CSRF cookie.

use chrono::NaiveDateTime;
use serde_json::json;

use crate::audit::{self, Event, detect};
use crate::context::Ctx;
use crate::db::{self, DbConn};
use crate::error::InternalError;
use crate::sign_in::finish::Landing;
use crate::sign_in::passkeys::{self, Started};
use crate::sign_in::second_factor::{complete, subject, subject_user};
use crate::sign_in::sessions::{FormSender, Origin};
use crate::store::users;

/// Which ceremony the browser asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Any passkey of this site, from the sign-in page.
    Passwordless,
    /// One of the passkeys of the user whose second step is due.
    SecondStep,
}

#[derive(Debug, Clone)]
pub struct Begin {
    /// The browser, as its form token proved it (`web/context.rs`): a ceremony is bound to
    /// its session, or, for an anonymous visitor, to its signed CSRF cookie.
    pub sender: FormSender,
    pub purpose: Purpose,
}

#[derive(Debug, Clone)]
pub enum Begun {
    BadCsrf,
    Unavailable,
    /// No second step is due, or the user has no passkey.
    NothingToAnswer,
    Started(Started),
}

/// Begins a ceremony for the browser (the only write the passkey button causes).
pub fn begin(
    c: &mut DbConn,
    ctx: Ctx<'_>,
    a: Begin,
    now: NaiveDateTime,
) -> Result<Begun, InternalError> {
    let Some(wa) = ctx.webauthn else {
        return Ok(Begun::Unavailable);
    };
    db::transaction(c, |c| {
        let session = a.sender.previous();
        let bound = a.sender.binding();
        let Some(bound) = bound else {
            return Ok(Begun::BadCsrf);
        };
        match a.purpose {
            Purpose::Passwordless => Ok(Begun::Started(passkeys::begin_discoverable(
                c, wa, &bound, now,
            )?)),
            Purpose::SecondStep => {
                // The second step belongs to a session, never to an anonymous visitor.
                let Some(s) = session.filter(|s| s.sid == bound) else {
                    return Ok(Begun::BadCsrf);
                };
                let Some(user) = subject_user(c, s, now)? else {
                    return Ok(Begun::NothingToAnswer);
                };
                Ok(
                    match passkeys::begin_authentication(c, wa, &user.id, &s.sid, now)? {
                        Some(started) => Begun::Started(started),
                        None => Begun::NothingToAnswer,
                    },
                )
            }
        }
    })
}

#[derive(Debug, Clone)]
pub struct PasskeyAttempt {
    /// The browser, as its form token proved it (`web/context.rs`).
    pub sender: FormSender,
    pub ceremony: String,
    pub credential: String,
    pub request: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasskeyOutcome {
    BadCsrf,
    Unavailable,
    Refused(&'static str),
    Done(Landing),
}

/// A passkey answer: the second step after a password, a step-up, or a passwordless sign-in.
/// Passkeys are not subject to the password throttle: a guess cannot produce a signature.
pub fn submit_passkey(
    c: &mut DbConn,
    ctx: Ctx<'_>,
    a: PasskeyAttempt,
    now: NaiveDateTime,
) -> Result<PasskeyOutcome, InternalError> {
    let Some(wa) = ctx.webauthn else {
        return Ok(PasskeyOutcome::Unavailable);
    };
    db::transaction(c, |c| {
        let session = a.sender.previous();
        let bound = a.sender.binding();
        let Some(bound) = bound else {
            return Ok(PasskeyOutcome::BadCsrf);
        };
        let verified = match passkeys::finish_authentication(
            c,
            wa,
            &a.ceremony,
            &bound,
            &a.credential,
            now,
        )? {
            passkeys::Assertion::Verified(v) => v,
            passkeys::Assertion::Refused(refused) => {
                let mut ev =
                    Event::new("sign_in", "failure").details(json!({"reason": "passkey_refused"}));
                ev.user_id = refused.compromised.as_deref();
                audit::record(c, ctx.meta, now, ev)?;
                // A signature counter that went backwards: the key may have been copied.
                if let Some(user_id) = &refused.compromised {
                    detect::raise(
                        c,
                        ctx,
                        now,
                        "passkey_counter",
                        Some(user_id),
                        None,
                        json!({"reason": "signature counter went backwards"}),
                    )?;
                }
                return Ok(PasskeyOutcome::Refused(refused.why));
            }
        };
        // A second step must be answered by the user whose password was given.
        let subject_id = session.and_then(|s| subject(s, now));
        if !verified.passwordless && subject_id != Some(verified.user_id.as_str()) {
            return Ok(PasskeyOutcome::Refused("The passkey was not accepted."));
        }
        let Some(user) = users::find(c, &verified.user_id)?.filter(|u| !u.disabled) else {
            return Ok(PasskeyOutcome::Refused("The passkey was not accepted."));
        };
        let method = passkeys::method(&verified.passkey);
        let landing = complete(
            c,
            ctx,
            session,
            &user,
            &[method],
            a.request.as_deref(),
            &a.origin,
            now,
        )?;
        Ok(PasskeyOutcome::Done(landing))
    })
}
