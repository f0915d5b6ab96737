//! The account page's use cases: the user's sessions, connected applications and password.

use chrono::NaiveDateTime;

use crate::context::Ctx;
use crate::db::{self, DbConn};
use crate::error::InternalError;
use crate::oidc::logout;
use crate::protocol::scope;
use crate::sign_in::password;
use crate::sign_in::sessions::{self, Opened, Origin};
use crate::store::sessions::Session;
use crate::store::{clients, consents, tokens, users};

pub mod mfa;
pub mod reauth;
pub mod recent;

#[derive(Debug, Clone)]
pub struct SessionView {
    pub sid: String,
    pub current: bool,
    pub device: String,
    pub ip: String,
    pub signed_in: String,
    pub last_seen: String,
}

#[derive(Debug, Clone)]
pub struct AppView {
    pub client_id: String,
    pub name: String,
    pub scopes: Vec<&'static str>,
    pub since: String,
}

#[derive(Debug, Clone)]
pub struct Overview {
    pub username: String,
    pub sessions: Vec<SessionView>,
    pub apps: Vec<AppView>,
    pub factors: crate::sign_in::second_factor::Factors,
    /// Factors added recently, one sentence each (shown until mail can tell the user).
    pub recent: Vec<String>,
}

pub(crate) fn when(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

/// An address shown with its last part hidden (`203.0.113.x`): enough to recognise, no more.
pub fn mask_ip(ip: &str) -> String {
    if let Some((head, _)) = ip.rsplit_once('.') {
        return format!("{head}.x");
    }
    if let Some((head, _)) = ip.rsplit_once(':') {
        return format!("{head}:x");
    }
    "unknown".into()
}

fn device(ua: Option<&str>) -> String {
    let ua = ua.unwrap_or("");
    let browser = ["Firefox", "Edg", "Chrome", "Safari", "curl"]
        .into_iter()
        .find(|b| ua.contains(b))
        .map(|b| if b == "Edg" { "Edge" } else { b });
    let os = ["Windows", "Mac OS", "Android", "iPhone", "Linux"]
        .into_iter()
        .find(|o| ua.contains(o));
    match (browser, os) {
        (Some(b), Some(o)) => format!("{b} on {o}"),
        (Some(b), None) => b.to_string(),
        (None, Some(o)) => o.to_string(),
        (None, None) => "Unknown device".to_string(),
    }
}

pub fn overview(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    session: &Session,
    now: NaiveDateTime,
) -> Result<Option<Overview>, InternalError> {
    let Some(user_id) = &session.user_id else {
        return Ok(None);
    };
    let Some(user) = users::find(conn, user_id)? else {
        return Ok(None);
    };
    let sessions = crate::store::sessions::for_user(conn, user_id)?
        .into_iter()
        .map(|s| SessionView {
            current: s.sid == session.sid,
            device: device(s.user_agent.as_deref()),
            ip: s
                .ip
                .as_deref()
                .map(mask_ip)
                .unwrap_or_else(|| "unknown".into()),
            signed_in: when(s.auth_time.unwrap_or(s.created_at)),
            last_seen: when(s.last_seen_at),
            sid: s.sid,
        })
        .collect();
    let mut apps = Vec::new();
    for c in consents::for_user(conn, user_id)? {
        let name = clients::find(conn, &c.client_id)?
            .map(|cl| cl.name)
            .unwrap_or_else(|| c.client_id.clone());
        apps.push(AppView {
            name,
            scopes: c
                .scopes
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(scope::describe)
                .collect(),
            since: when(c.created_at),
            client_id: c.client_id,
        });
    }
    Ok(Some(Overview {
        factors: crate::sign_in::second_factor::factors(conn, user_id)?,
        recent: recent::recently_added(conn, ctx, user_id, now)?
            .iter()
            .map(recent::Added::describe)
            .collect(),
        username: user.username,
        sessions,
        apps,
    }))
}

/// Ends one of the user's sessions (the current one included), notifying its clients.
pub fn revoke_session(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    session: &Session,
    sid: &str,
    now: NaiveDateTime,
) -> Result<bool, InternalError> {
    let Some(user_id) = &session.user_id else {
        return Ok(false);
    };
    let target = crate::store::sessions::for_user(conn, user_id)?
        .into_iter()
        .find(|s| s.sid == sid);
    match target {
        Some(t) => logout::sign_out(conn, ctx, &t, now),
        None => Ok(false),
    }
}

/// Ends every session of the user but this one.
pub fn revoke_other_sessions(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    session: &Session,
    now: NaiveDateTime,
) -> Result<bool, InternalError> {
    let Some(user_id) = &session.user_id else {
        return Ok(false);
    };
    let mut notified = false;
    for s in crate::store::sessions::for_user(conn, user_id)? {
        if s.sid != session.sid {
            notified |= logout::sign_out(conn, ctx, &s, now)?;
        }
    }
    Ok(notified)
}

/// Disconnects an application: forgets the consent and revokes its tokens for this user.
pub fn revoke_app(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    session: &Session,
    client_id: &str,
    now: NaiveDateTime,
) -> Result<(), InternalError> {
    if let Some(user_id) = &session.user_id {
        consents::delete(conn, user_id, client_id)?;
        tokens::revoke_for_user_client(conn, user_id, client_id)?;
        crate::audit::record(
            conn,
            ctx.meta,
            now,
            crate::audit::Event::new("consent.revoke", "success")
                .user(user_id)
                .client(client_id),
        )?;
    }
    Ok(())
}

#[derive(Debug)]
pub enum PasswordOutcome {
    WrongCurrent,
    /// Too many wrong current passwords: wait this many seconds.
    Throttled(i64),
    Refused(String),
    /// Changed; every session and token of the user ended, this browser got a fresh session.
    /// `removed_recent` when factors added recently were removed as asked.
    Changed {
        opened: Box<Opened>,
        removed_recent: bool,
    },
}

/// A password change as the form asks for it.
#[derive(Debug, Clone, Copy)]
pub struct PasswordChange<'a> {
    pub current: &'a str,
    pub new: &'a str,
    /// Also remove the second factors added recently (someone else may have added them).
    pub remove_recent_factors: bool,
}

/// Changes the password after checking the current one (Argon2 outside any transaction).
pub fn change_password(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    session: &Session,
    change: PasswordChange<'_>,
    origin: &Origin,
    now: NaiveDateTime,
) -> Result<PasswordOutcome, InternalError> {
    let Some(user) = session
        .user_id
        .as_ref()
        .map(|id| users::find(conn, id))
        .transpose()?
        .flatten()
    else {
        return Ok(PasswordOutcome::WrongCurrent);
    };
    // Throttled, counted and audited like every other re-authentication (and sign-in).
    match reauth::reauthenticate(conn, ctx, &user, session, change.current, origin, now)? {
        reauth::Reauth::Ok => {}
        reauth::Reauth::Wrong => return Ok(PasswordOutcome::WrongCurrent),
        reauth::Reauth::Throttled(s) => return Ok(PasswordOutcome::Throttled(s)),
    }
    match password::change(conn, &ctx.config.password, &user, change.new, now) {
        Ok(()) => {}
        Err(password::PasswordError::Internal(e)) => return Err(e),
        Err(refused) => return Ok(PasswordOutcome::Refused(refused.to_string())),
    }
    let removed = db::transaction(conn, |c| {
        crate::audit::record(
            c,
            ctx.meta,
            now,
            crate::audit::Event::new("password.change", "success")
                .user(&user.id)
                .actor(&user.id),
        )?;
        match change.remove_recent_factors {
            true => recent::remove_recent(c, ctx, &user.id, now),
            false => Ok(recent::Removed::default()),
        }
    })?;
    // The factors this session proved may be among those removed: then only the password,
    // just typed, counts.
    let amr: Vec<String> = match removed.any() {
        true => vec!["pwd".to_string()],
        false => serde_json::from_str(&session.amr).unwrap_or_default(),
    };
    let amr: Vec<&str> = amr.iter().map(String::as_str).collect();
    let proof = sessions::Proof {
        amr: &amr,
        password_at: Some(now),
    };
    let opened = db::transaction(conn, |c| {
        sessions::sign_in(c, None, &user.id, proof, origin, now, &ctx.config.lifetimes)
    })?;
    Ok(PasswordOutcome::Changed {
        opened: Box::new(opened),
        removed_recent: removed.any(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_shown_masked() {
        assert_eq!(mask_ip("203.0.113.77"), "203.0.113.x");
        assert_eq!(mask_ip("2001:db8::1"), "2001:db8::x");
        assert_eq!(mask_ip(""), "unknown");
    }
}
