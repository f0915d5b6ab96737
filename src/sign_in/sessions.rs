//! Server-side browser sessions: the cookie holds a random id, the database holds everything else.

use chrono::{Duration, NaiveDateTime};

use crate::config::Lifetimes;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::secrets::{random_id, random_token, sha256_hex};
use crate::store::sessions::{self, Session};

/// Where a session comes from, for the account page and the audit trail.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The device cookie the browser sent, unchecked (see `device.rs`); never stored.
    pub device: Option<String>,
}

/// A session and the cookie value that names it (only its hash is stored).
#[derive(Debug, Clone)]
pub struct Opened {
    pub cookie: String,
    pub session: Session,
}

fn new_row(
    user_id: Option<String>,
    amr: &[&str],
    origin: &Origin,
    now: NaiveDateTime,
    lifetimes: &Lifetimes,
) -> Opened {
    let cookie = random_token();
    let session = Session {
        id_hash: sha256_hex(&cookie),
        sid: random_id(),
        auth_time: user_id.as_ref().map(|_| now),
        user_id,
        csrf_token: random_token(),
        amr: serde_json::to_string(amr).unwrap_or_else(|_| "[]".into()),
        ip: origin.ip.clone(),
        user_agent: origin
            .user_agent
            .clone()
            .map(|u| u.chars().take(256).collect()),
        created_at: now,
        last_seen_at: now,
        expires_at: now + Duration::seconds(lifetimes.session_absolute),
        pending_user_id: None,
        password_at: None,
    };
    Opened { cookie, session }
}

/// How the browser signs in: its methods, and when the password was last typed for it
/// (`None` when it never was, as with a passkey alone).
#[derive(Debug, Clone, Copy)]
pub struct Proof<'a> {
    pub amr: &'a [&'a str],
    pub password_at: Option<NaiveDateTime>,
}

/// Signs the browser in: the old session (if any) is deleted and a new id issued (no fixation).
pub fn sign_in(
    conn: &mut DbConn,
    previous: Option<&Session>,
    user_id: &str,
    proof: Proof<'_>,
    origin: &Origin,
    now: NaiveDateTime,
    lifetimes: &Lifetimes,
) -> Result<Opened, InternalError> {
    if let Some(p) = previous {
        sessions::delete(conn, &p.id_hash)?;
    }
    let mut o = new_row(Some(user_id.to_string()), proof.amr, origin, now, lifetimes);
    o.session.password_at = proof.password_at;
    sessions::insert(conn, &o.session)?;
    Ok(o)
}

/// True when the password was typed for this session within `window` seconds: what adding a
/// second factor requires.
pub fn password_recent(session: &Session, now: NaiveDateTime, window: i64) -> bool {
    session
        .password_at
        .is_some_and(|t| t <= now && now - t <= Duration::seconds(window))
}

/// How long the second factor may take after the password.
pub const PENDING_SECONDS: i64 = 300;

/// The password was right and a second factor is due: a new session id (no fixation) that
/// names the user but does not sign them in, and expires if the second step never comes.
pub fn begin_second_factor(
    conn: &mut DbConn,
    previous: Option<&Session>,
    user_id: &str,
    origin: &Origin,
    now: NaiveDateTime,
    lifetimes: &Lifetimes,
) -> Result<Opened, InternalError> {
    if let Some(p) = previous {
        sessions::delete(conn, &p.id_hash)?;
    }
    let mut o = new_row(None, &["pwd"], origin, now, lifetimes);
    o.session.pending_user_id = Some(user_id.to_string());
    o.session.auth_time = Some(now);
    o.session.password_at = Some(now);
    o.session.expires_at = now + Duration::seconds(PENDING_SECONDS);
    sessions::insert(conn, &o.session)?;
    Ok(o)
}

/// The authentication methods a session records.
pub fn amr(session: &Session) -> Vec<String> {
    serde_json::from_str(&session.amr).unwrap_or_default()
}

/// True when the session was signed in with more than one factor.
pub fn is_multi_factor(session: &Session) -> bool {
    session.user_id.is_some() && amr(session).iter().any(|m| m == "mfa")
}

/// The live session named by a cookie: not past its absolute expiry nor idle too long.
/// Sliding: seeing it again moves the idle deadline (written at most once a minute).
pub fn current(
    conn: &mut DbConn,
    cookie: &str,
    now: NaiveDateTime,
    lifetimes: &Lifetimes,
) -> Result<Option<Session>, InternalError> {
    let Some(s) = sessions::find(conn, &sha256_hex(cookie))? else {
        return Ok(None);
    };
    let idle_deadline = s.last_seen_at + Duration::seconds(lifetimes.session_idle);
    if s.expires_at <= now || idle_deadline <= now {
        sessions::delete(conn, &s.id_hash)?;
        return Ok(None);
    }
    if now - s.last_seen_at >= Duration::seconds(60) {
        sessions::touch(conn, &s.id_hash, now)?;
    }
    Ok(Some(s))
}

/// A browser's live session as the domain hands it to the web layer: who is signed in (or half
/// signed in), the form token, the public id. Use cases take it as they would the row.
#[derive(Debug, Clone)]
pub struct BrowserSession(Session);

impl BrowserSession {
    /// The form token every page form of this browser carries.
    pub fn csrf_token(&self) -> &str {
        &self.0.csrf_token
    }

    /// The public session id (`sid` in ID tokens, the account page's list).
    pub fn sid(&self) -> &str {
        &self.0.sid
    }

    /// The signed-in user, once every factor due was proven.
    pub fn user_id(&self) -> Option<&str> {
        self.0.user_id.as_deref()
    }
}

impl std::ops::Deref for BrowserSession {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.0
    }
}

/// The browser a sign-in form came from, as the web layer checked the form's token: its live
/// session (if any), and whether the form carried that session's token or the token signed
/// for an anonymous visitor's cookie.
#[derive(Debug, Clone, Default)]
pub struct FormSender {
    pub session: Option<BrowserSession>,
    /// The form carried the session's token.
    pub session_token: bool,
    /// The anonymous visitor's id, when the form carried the token signed for its cookie.
    pub anonymous: Option<String>,
}

impl FormSender {
    /// The form's token was one we issued to this browser.
    pub fn verified(&self) -> bool {
        self.session_token || self.anonymous.is_some()
    }

    /// What a passkey ceremony is bound to: the session when its token was carried, else the
    /// anonymous visitor.
    pub fn binding(&self) -> Option<String> {
        match &self.session {
            Some(s) if self.session_token => Some(s.sid().to_string()),
            _ => self.anonymous.clone(),
        }
    }

    /// The session as a row, for the use cases that replace it.
    pub fn previous(&self) -> Option<&Session> {
        self.session.as_deref()
    }
}

/// The live session a browser's cookie names, if any (`current`).
pub fn visit(
    conn: &mut DbConn,
    cookie: &str,
    now: NaiveDateTime,
    lifetimes: &Lifetimes,
) -> Result<Option<BrowserSession>, InternalError> {
    Ok(current(conn, cookie, now, lifetimes)?.map(BrowserSession))
}

/// Ends a session.
pub fn end(conn: &mut DbConn, session: &Session) -> Result<(), InternalError> {
    sessions::delete(conn, &session.id_hash)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testkit::{db, t0, user};

    fn signed_in(conn: &mut DbConn, lifetimes: &Lifetimes) -> Opened {
        let uid = user(conn, "alice", t0());
        let proof = Proof {
            amr: &["pwd"],
            password_at: Some(t0()),
        };
        sign_in(conn, None, &uid, proof, &Origin::default(), t0(), lifetimes).unwrap()
    }

    fn at(seconds: i64) -> NaiveDateTime {
        t0() + Duration::seconds(seconds)
    }

    #[test]
    fn a_session_slides_while_used_and_ends_after_the_idle_timeout() {
        let mut c = db();
        let l = Lifetimes::default();
        let o = signed_in(&mut c, &l);
        let idle = l.session_idle;
        // Used at 1000 s: the idle deadline moves to 1000 s + idle.
        assert!(current(&mut c, &o.cookie, at(1000), &l).unwrap().is_some());
        assert!(
            current(&mut c, &o.cookie, at(1000 + idle - 1), &l)
                .unwrap()
                .is_some()
        );
        // Now idle for exactly the timeout since that last use.
        let last = 1000 + idle - 1;
        assert!(
            current(&mut c, &o.cookie, at(last + idle), &l)
                .unwrap()
                .is_none()
        );
        assert!(
            sessions::find(&mut c, &o.session.id_hash)
                .unwrap()
                .is_none(),
            "an idled-out session is deleted when seen"
        );
    }

    #[test]
    fn use_never_carries_a_session_past_its_absolute_lifetime() {
        let mut c = db();
        let l = Lifetimes::default();
        let o = signed_in(&mut c, &l);
        let mut t = 0;
        while t + 600 < l.session_absolute {
            t += 600;
            assert!(
                current(&mut c, &o.cookie, at(t), &l).unwrap().is_some(),
                "at {t}"
            );
        }
        assert!(
            current(&mut c, &o.cookie, at(l.session_absolute), &l)
                .unwrap()
                .is_none(),
            "used every ten minutes, it still ends at the absolute lifetime"
        );
    }

    #[test]
    fn last_use_is_written_at_most_once_a_minute() {
        let mut c = db();
        let l = Lifetimes::default();
        let o = signed_in(&mut c, &l);
        let seen = |c: &mut DbConn| {
            sessions::find(c, &o.session.id_hash)
                .unwrap()
                .unwrap()
                .last_seen_at
        };
        current(&mut c, &o.cookie, at(59), &l).unwrap();
        assert_eq!(seen(&mut c), t0());
        current(&mut c, &o.cookie, at(60), &l).unwrap();
        assert_eq!(seen(&mut c), at(60));
    }

    #[test]
    fn signing_in_again_replaces_the_previous_session() {
        let mut c = db();
        let l = Lifetimes::default();
        let first = signed_in(&mut c, &l);
        let uid = first.session.user_id.clone().unwrap();
        let proof = Proof {
            amr: &["pwd"],
            password_at: Some(at(10)),
        };
        let second = sign_in(
            &mut c,
            Some(&first.session),
            &uid,
            proof,
            &Origin::default(),
            at(10),
            &l,
        )
        .unwrap();
        assert_ne!(first.cookie, second.cookie);
        assert!(
            current(&mut c, &first.cookie, at(11), &l)
                .unwrap()
                .is_none()
        );
        assert!(
            current(&mut c, &second.cookie, at(11), &l)
                .unwrap()
                .is_some()
        );
    }
}

/// What in-process tests of other modules start from (the test fixture itself knows no
/// domain module).
#[cfg(test)]
pub(crate) mod fixture {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// Signs `user_id` in with the methods `amr` (e.g. `["pwd"]`, or `["pwd", "otp", "mfa"]`):
    /// the session and its cookie.
    pub(crate) fn signed_in(
        conn: &mut DbConn,
        user_id: &str,
        amr: &[&str],
        now: NaiveDateTime,
    ) -> Opened {
        let proof = Proof {
            amr,
            password_at: Some(now),
        };
        let lifetimes = crate::config::Lifetimes::default();
        sign_in(
            conn,
            None,
            user_id,
            proof,
            &Origin::default(),
            now,
            &lifetimes,
        )
        .unwrap()
    }
}
