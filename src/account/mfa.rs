//! Second factors on the account page: TOTP enrolment, passkeys, recovery codes. Removing any
//! of them needs the password typed with the request; adding one needs it typed within the
//! last few minutes (`reauth.rs`), and is announced (`recent.rs`).

use chrono::NaiveDateTime;
use serde_json::json;

use crate::account::{reauth, recent, when};
use crate::audit::{self, Event};
use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::sign_in::passkeys::{self, Registration, Started};
use crate::sign_in::second_factor::{self, Factors};
use crate::sign_in::{recovery_codes, totp};
use crate::store::mfa::{self, Totp};
use crate::store::sessions::Session;
use crate::store::users::{self, User};
use crate::store::{clients, consents, tokens};

/// The user an account-page use case acts for (the enabled user signed in on the session).
pub type AccountUser = User;

/// The signed-in user of a session.
pub fn user_of(conn: &mut DbConn, session: &Session) -> Result<Option<User>, InternalError> {
    match &session.user_id {
        Some(id) => Ok(users::find(conn, id)?.filter(|u| !u.disabled)),
        None => Ok(None),
    }
}

#[derive(Debug, Clone)]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
    pub synced: bool,
}

pub fn passkey_views(conn: &mut DbConn, user_id: &str) -> Result<Vec<PasskeyView>, InternalError> {
    Ok(mfa::passkeys_for(conn, user_id)?
        .into_iter()
        .map(|p| PasskeyView {
            id: p.credential_id,
            name: p.name,
            created: when(p.created_at),
            last_used: p.last_used_at.map(when).unwrap_or_else(|| "never".into()),
            synced: p.backup_eligible,
        })
        .collect())
}

/// The TOTP section: enrolled, a pending secret to add to an app, or the password to type
/// first.
#[derive(Debug, Clone)]
pub enum TotpView {
    Enrolled {
        since: String,
    },
    NeedsPassword,
    Pending {
        secret: String,
        uri: String,
        qr_svg: String,
    },
}

fn issuer_label(ctx: Ctx<'_>) -> String {
    url::Url::parse(&ctx.config.issuer)
        .ok()
        .and_then(|u| u.host_str().map(|h| format!("Portcullis {h}")))
        .unwrap_or_else(|| "Portcullis".into())
}

/// Shows the enrolled state, or begins (or continues) an enrolment with a sealed secret once
/// the password was typed recently.
pub fn totp_view(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    user: &User,
    session: &Session,
    now: NaiveDateTime,
) -> Result<TotpView, InternalError> {
    let existing = mfa::totp_find(conn, &user.id)?;
    if let Some(t) = existing.as_ref().filter(|t| t.confirmed) {
        return Ok(TotpView::Enrolled {
            since: when(t.confirmed_at.unwrap_or(t.created_at)),
        });
    }
    if !reauth::recent(ctx, session, now) {
        return Ok(TotpView::NeedsPassword);
    }
    let opened = existing.as_ref().and_then(|t| {
        totp::open(
            ctx.master,
            ctx.config.previous_master_key.as_ref(),
            &user.id,
            &t.secret,
        )
    });
    let secret = match opened {
        Some(s) => s.to_vec(),
        None => {
            let s = totp::new_secret();
            let sealed = totp::seal(ctx.master, &user.id, &s)
                .ok_or_else(|| InternalError::new("TOTP secret cannot be sealed"))?;
            mfa::totp_begin(
                conn,
                &Totp {
                    user_id: user.id.clone(),
                    secret: sealed,
                    confirmed: false,
                    last_step: None,
                    created_at: now,
                    confirmed_at: None,
                    last_used_at: None,
                },
            )?;
            s
        }
    };
    let (b32, uri) = totp::provisioning(&secret, &user.username, &issuer_label(ctx))
        .ok_or_else(|| InternalError::new("TOTP provisioning failed"))?;
    let qr_svg = totp::qr_svg(&uri).ok_or_else(|| InternalError::new("QR code failed"))?;
    Ok(TotpView::Pending {
        secret: b32,
        uri,
        qr_svg,
    })
}

/// How a TOTP confirmation ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TotpConfirm {
    Enrolled,
    WrongCode,
    /// The password was not typed recently: nothing is added.
    NeedsPassword,
}

/// Confirms an enrolment with a current code, if the password was typed recently.
pub fn totp_confirm(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    user: &User,
    session: &Session,
    code: &str,
    now: NaiveDateTime,
) -> Result<TotpConfirm, InternalError> {
    if !reauth::recent(ctx, session, now) {
        return Ok(TotpConfirm::NeedsPassword);
    }
    let Some(t) = mfa::totp_find(conn, &user.id)?.filter(|t| !t.confirmed) else {
        return Ok(TotpConfirm::WrongCode);
    };
    let Some(secret) = totp::open(
        ctx.master,
        ctx.config.previous_master_key.as_ref(),
        &user.id,
        &t.secret,
    ) else {
        return Ok(TotpConfirm::WrongCode);
    };
    let Some(step) = totp::check(&secret, code, now) else {
        audit::record(
            conn,
            ctx.meta,
            now,
            Event::new("mfa.totp.enrol", "failure")
                .user(&user.id)
                .actor(&user.id),
        )?;
        return Ok(TotpConfirm::WrongCode);
    };
    if mfa::totp_accept(conn, &user.id, step, true, now)? != 1 {
        return Ok(TotpConfirm::WrongCode);
    }
    audit::record(
        conn,
        ctx.meta,
        now,
        Event::new("mfa.totp.enrol", "success")
            .user(&user.id)
            .actor(&user.id),
    )?;
    recent::announce(conn, ctx, &user.id, "totp", None, now)?;
    Ok(TotpConfirm::Enrolled)
}

/// Refuses a removal (`remove` applied to the user's factors) that would leave no TOTP or
/// passkey while one of the user's applications (consented to, or holding live tokens)
/// requires a second factor.
fn removal_refused(
    conn: &mut DbConn,
    user_id: &str,
    now: NaiveDateTime,
    remove: impl FnOnce(&mut Factors),
) -> Result<Option<&'static str>, InternalError> {
    let mut after = second_factor::factors(conn, user_id)?;
    remove(&mut after);
    if after.totp || after.passkeys > 0 {
        return Ok(None);
    }
    let mut used: Vec<String> = consents::for_user(conn, user_id)?
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    used.extend(tokens::clients_of_user(conn, user_id, now)?);
    for client_id in used {
        if clients::find(conn, &client_id)?.is_some_and(|cl| cl.require_mfa) {
            return Ok(Some(
                "This is your last second factor, and an application you use requires one. Add another factor first.",
            ));
        }
    }
    Ok(None)
}

pub fn totp_remove(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    user: &User,
    now: NaiveDateTime,
) -> Result<Removal, InternalError> {
    if let Some(why) = removal_refused(conn, &user.id, now, |f| f.totp = false)? {
        return Ok(Removal::Refused(why));
    }
    mfa::totp_delete(conn, &user.id)?;
    audit::record(
        conn,
        ctx.meta,
        now,
        Event::new("mfa.totp.remove", "success")
            .user(&user.id)
            .actor(&user.id),
    )?;
    Ok(Removal::Removed)
}

/// What a removal came to. A refusal is an outcome, not an error: the transaction commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Removal {
    Removed,
    /// Refused, with the reason in words for the page.
    Refused(&'static str),
}

/// Whether a passkey registration may begin.
#[derive(Debug, Clone)]
pub enum PasskeyBegin {
    Started(Started),
    Unavailable,
    /// The password was not typed recently: no ceremony.
    NeedsPassword,
}

/// Begins a registration ceremony, if the password was typed recently. The ceremony is
/// single-use, bound to the session and short-lived, so its answer comes within minutes.
pub fn passkey_begin(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    user: &User,
    session: &Session,
    now: NaiveDateTime,
) -> Result<PasskeyBegin, InternalError> {
    let Some(wa) = ctx.webauthn else {
        return Ok(PasskeyBegin::Unavailable);
    };
    if !reauth::recent(ctx, session, now) {
        return Ok(PasskeyBegin::NeedsPassword);
    }
    passkeys::begin_registration(conn, wa, user, &session.sid, now).map(PasskeyBegin::Started)
}

/// A name as given, trimmed and bounded; a default when empty.
pub fn passkey_name(raw: &str) -> String {
    let n: String = raw
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(64)
        .collect();
    if n.is_empty() { "Passkey".into() } else { n }
}

pub fn passkey_finish(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    user: &User,
    session: &Session,
    answer: passkeys::Answer<'_>,
    name: &str,
    now: NaiveDateTime,
) -> Result<Registration, InternalError> {
    let Some(wa) = ctx.webauthn else {
        return Ok(Registration::Refused(
            "Passkeys are not available on this server.",
        ));
    };
    let name = passkey_name(name);
    let row = passkeys::finish_registration(conn, wa, answer, &session.sid, &user.id, &name, now)?;
    let outcome = match row {
        Registration::Added(_) => "success",
        Registration::Refused(_) => "failure",
    };
    audit::record(
        conn,
        ctx.meta,
        now,
        Event::new("mfa.passkey.register", outcome)
            .user(&user.id)
            .actor(&user.id)
            .details(json!({"name": name})),
    )?;
    if let Registration::Added(_) = row {
        recent::announce(conn, ctx, &user.id, "passkey", Some(&name), now)?;
    }
    Ok(row)
}

pub fn passkey_remove(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    user: &User,
    credential_id: &str,
    now: NaiveDateTime,
) -> Result<Removal, InternalError> {
    if mfa::passkey_find(conn, credential_id)?.is_none_or(|p| p.user_id != user.id) {
        return Ok(Removal::Refused("That passkey does not exist."));
    }
    if let Some(why) = removal_refused(conn, &user.id, now, |f| {
        f.passkeys = f.passkeys.saturating_sub(1)
    })? {
        return Ok(Removal::Refused(why));
    }
    mfa::passkey_delete(conn, &user.id, credential_id)?;
    audit::record(
        conn,
        ctx.meta,
        now,
        Event::new("mfa.passkey.remove", "success")
            .user(&user.id)
            .actor(&user.id),
    )?;
    Ok(Removal::Removed)
}

/// A new set of recovery codes, replacing any old set; the codes are returned to show once.
pub fn recovery_regenerate(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    user: &User,
    now: NaiveDateTime,
) -> Result<Vec<String>, InternalError> {
    let (codes, rows) = recovery_codes::new_set(&user.id, now);
    mfa::recovery_replace(conn, &user.id, &rows)?;
    audit::record(
        conn,
        ctx.meta,
        now,
        Event::new("mfa.recovery_codes.generate", "success")
            .user(&user.id)
            .actor(&user.id)
            .details(json!({"count": codes.len()})),
    )?;
    recent::announce(conn, ctx, &user.id, "recovery_codes", None, now)?;
    Ok(codes)
}

/// Removes the user's recovery codes (kept while they are all that satisfies an MFA client).
pub fn recovery_remove(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    user: &User,
    now: NaiveDateTime,
) -> Result<Removal, InternalError> {
    if let Some(why) = removal_refused(conn, &user.id, now, |f| f.recovery_remaining = 0)? {
        return Ok(Removal::Refused(why));
    }
    let removed = mfa::recovery_delete_for(conn, &user.id)?;
    audit::record(
        conn,
        ctx.meta,
        now,
        Event::new("mfa.recovery_codes.remove", "success")
            .user(&user.id)
            .actor(&user.id)
            .details(json!({"count": removed})),
    )?;
    Ok(Removal::Removed)
}

/// Every factor of a user, removed by an operator (`portcullis user reset-mfa`, which audits).
pub fn reset(conn: &mut DbConn, user_id: &str) -> Result<Factors, InternalError> {
    let before = second_factor::factors(conn, user_id)?;
    mfa::totp_delete(conn, user_id)?;
    mfa::passkeys_delete_for(conn, user_id)?;
    mfa::recovery_delete_for(conn, user_id)?;
    Ok(before)
}
