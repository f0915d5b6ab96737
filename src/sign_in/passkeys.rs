//! Passkeys (WebAuthn) through webauthn-rs: registration, sign-in as a second factor, and
//! passwordless sign-in with discoverable credentials. Ceremony state lives in the database,
//! single use and short-lived, so any instance can finish what another began.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{Duration, NaiveDateTime};
use serde::de::DeserializeOwned;
use webauthn_rs::prelude::WebauthnError;
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Uuid,
};
use webauthn_rs::{Webauthn, WebauthnBuilder};

use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::secrets::{random_token, sha256_hex};
use crate::store::mfa::{self, Ceremony, PasskeyRow};
use crate::store::users::User;

/// How long a ceremony may take, from the options to the answer.
pub const CEREMONY_SECONDS: i64 = 300;
const REGISTER: &str = "register";
const AUTHENTICATE: &str = "authenticate";
const DISCOVER: &str = "discover";

/// The relying party for the issuer: its host is the RP id, its origin the only origin.
/// `None` for an issuer on an IP address, where browsers refuse WebAuthn: no passkey
/// buttons are shown then.
pub fn relying_party(issuer: &str) -> Option<Webauthn> {
    let url = Url::parse(issuer).ok()?;
    let host = url.domain()?.to_string();
    let origin = Url::parse(&url.origin().ascii_serialization()).ok()?;
    WebauthnBuilder::new(&host, &origin)
        .ok()?
        .rp_name("Portcullis")
        .build()
        .ok()
}

/// The WebAuthn user handle: the user id when it is a UUID, else derived from it.
pub fn user_handle(user_id: &str) -> Uuid {
    Uuid::try_parse(user_id).unwrap_or_else(|_| {
        let h = sha256_hex(user_id);
        Uuid::try_parse(&h[..32]).unwrap_or(Uuid::nil())
    })
}

/// What a started ceremony gives the page: its id (for the form) and the options (for the script).
#[derive(Debug, Clone)]
pub struct Started {
    pub ceremony: String,
    pub options: String,
}

fn store<S: serde::Serialize>(
    conn: &mut DbConn,
    kind: &str,
    sid: &str,
    user_id: Option<&str>,
    state: &S,
    options: String,
    now: NaiveDateTime,
) -> Result<Started, InternalError> {
    let id = random_token();
    mfa::ceremony_insert(
        conn,
        &Ceremony {
            id: sha256_hex(&id),
            kind: kind.to_string(),
            sid: sid.to_string(),
            user_id: user_id.map(str::to_string),
            state: serde_json::to_string(state)?,
            expires_at: now + Duration::seconds(CEREMONY_SECONDS),
        },
    )?;
    Ok(Started {
        ceremony: id,
        options,
    })
}

/// Takes a ceremony of `kind` begun by session `sid`, if it is still valid (single use).
fn take<S: DeserializeOwned>(
    conn: &mut DbConn,
    id: &str,
    kind: &str,
    sid: &str,
    now: NaiveDateTime,
) -> Result<Option<(Ceremony, S)>, InternalError> {
    let Some(c) = mfa::ceremony_take(conn, &sha256_hex(id))? else {
        return Ok(None);
    };
    if c.kind != kind || c.sid != sid || c.expires_at <= now {
        return Ok(None);
    }
    let state: S = serde_json::from_str(&c.state)?;
    Ok(Some((c, state)))
}

fn parse(row: &PasskeyRow) -> Option<Passkey> {
    serde_json::from_str(&row.passkey).ok()
}

/// The credential's stored flags, read from its serialized form.
fn flags(passkey: &Passkey) -> Result<(bool, bool, i64), InternalError> {
    let v = serde_json::to_value(passkey)?;
    let cred = &v["cred"];
    Ok((
        cred["backup_eligible"].as_bool().unwrap_or(false),
        cred["backup_state"].as_bool().unwrap_or(false),
        cred["counter"].as_i64().unwrap_or(0),
    ))
}

pub fn credential_id(p: &Passkey) -> String {
    URL_SAFE_NO_PAD.encode::<&[u8]>(p.cred_id().as_ref())
}

/// The `amr` value of a passkey: synced (backup-eligible) keys are software-held.
pub fn method(row: &PasskeyRow) -> &'static str {
    if row.backup_eligible { "swk" } else { "hwk" }
}

pub fn begin_registration(
    conn: &mut DbConn,
    wa: &Webauthn,
    user: &User,
    sid: &str,
    now: NaiveDateTime,
) -> Result<Started, InternalError> {
    let exclude = mfa::passkeys_for(conn, &user.id)?
        .iter()
        .filter_map(parse)
        .map(|p| p.cred_id().clone())
        .collect();
    let display = user.name.clone().unwrap_or_else(|| user.username.clone());
    let (options, state) = wa
        .start_passkey_registration(
            user_handle(&user.id),
            &user.username,
            &display,
            Some(exclude),
        )
        .map_err(|e| InternalError::with("passkey registration", e))?;
    // Ask for a discoverable credential where the authenticator can make one, so the same
    // passkey also signs in without a password (webauthn-rs discourages them by default).
    let mut options = serde_json::to_value(&options)?;
    if let Some(sel) = options
        .get_mut("publicKey")
        .and_then(|p| p.get_mut("authenticatorSelection"))
        .and_then(|s| s.as_object_mut())
    {
        sel.insert("residentKey".into(), "preferred".into());
    }
    let options = serde_json::to_string(&options)?;
    store(conn, REGISTER, sid, Some(&user.id), &state, options, now)
}

/// Why a ceremony did not complete, in words for the page.
pub type Refusal = &'static str;

/// What the browser sends back: the ceremony it answers and its credential as JSON.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    pub ceremony: &'a str,
    pub credential: &'a str,
}

/// What a registration came to. A refusal is an outcome, not an error: its audit record
/// commits.
#[derive(Debug, Clone)]
pub enum Registration {
    Added(PasskeyRow),
    Refused(Refusal),
}

pub fn finish_registration(
    conn: &mut DbConn,
    wa: &Webauthn,
    answer: Answer<'_>,
    sid: &str,
    user_id: &str,
    name: &str,
    now: NaiveDateTime,
) -> Result<Registration, InternalError> {
    let Answer {
        ceremony,
        credential,
    } = answer;
    let Some((c, state)) = take::<PasskeyRegistration>(conn, ceremony, REGISTER, sid, now)? else {
        return Ok(Registration::Refused(
            "The passkey request expired. Reload the page and try again.",
        ));
    };
    if c.user_id.as_deref() != Some(user_id) {
        return Ok(Registration::Refused(
            "The passkey request expired. Reload the page and try again.",
        ));
    }
    let Ok(reg) = serde_json::from_str::<RegisterPublicKeyCredential>(credential) else {
        return Ok(Registration::Refused(
            "The browser's answer could not be read.",
        ));
    };
    let passkey = match wa.finish_passkey_registration(&reg, &state) {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(error = %e, "passkey registration refused");
            return Ok(Registration::Refused("The passkey could not be verified."));
        }
    };
    let id = credential_id(&passkey);
    if mfa::passkey_find(conn, &id)?.is_some() {
        return Ok(Registration::Refused("This passkey is already registered."));
    }
    let (backup_eligible, backup_state, sign_count) = flags(&passkey)?;
    let row = PasskeyRow {
        credential_id: id,
        user_id: user_id.to_string(),
        name: name.to_string(),
        passkey: serde_json::to_string(&passkey)?,
        backup_eligible,
        backup_state,
        sign_count,
        created_at: now,
        last_used_at: None,
    };
    mfa::passkey_insert(conn, &row)?;
    Ok(Registration::Added(row))
}

/// A second-factor ceremony for a user with passkeys (`None` without any).
pub fn begin_authentication(
    conn: &mut DbConn,
    wa: &Webauthn,
    user_id: &str,
    sid: &str,
    now: NaiveDateTime,
) -> Result<Option<Started>, InternalError> {
    let keys: Vec<Passkey> = mfa::passkeys_for(conn, user_id)?
        .iter()
        .filter_map(parse)
        .collect();
    if keys.is_empty() {
        return Ok(None);
    }
    let (options, state) = wa
        .start_passkey_authentication(&keys)
        .map_err(|e| InternalError::with("passkey authentication", e))?;
    let options = serde_json::to_string(&options)?;
    store(conn, AUTHENTICATE, sid, Some(user_id), &state, options, now).map(Some)
}

/// A passwordless ceremony: any discoverable credential of this RP may answer.
pub fn begin_discoverable(
    conn: &mut DbConn,
    wa: &Webauthn,
    sid: &str,
    now: NaiveDateTime,
) -> Result<Started, InternalError> {
    let (options, state) = wa
        .start_discoverable_authentication()
        .map_err(|e| InternalError::with("passkey authentication", e))?;
    let options = serde_json::to_string(&options)?;
    store(conn, DISCOVER, sid, None, &state, options, now)
}

/// A verified assertion: whose passkey it was, and which.
#[derive(Debug, Clone)]
pub struct Verified {
    pub user_id: String,
    pub passkey: PasskeyRow,
    /// True for a passwordless (discoverable) ceremony.
    pub passwordless: bool,
}

/// A refused assertion, and whose passkey looks copied when its signature counter went back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub why: Refusal,
    pub compromised: Option<String>,
}

impl From<Refusal> for Refused {
    fn from(why: Refusal) -> Refused {
        Refused {
            why,
            compromised: None,
        }
    }
}

/// What an assertion came to: verified, or refused (an outcome the caller audits and commits).
#[derive(Debug, Clone)]
pub enum Assertion {
    Verified(Verified),
    Refused(Refused),
}

/// Finishes either kind of authentication ceremony; updates the counter and backup flags.
pub fn finish_authentication(
    conn: &mut DbConn,
    wa: &Webauthn,
    ceremony: &str,
    sid: &str,
    credential: &str,
    now: NaiveDateTime,
) -> Result<Assertion, InternalError> {
    const EXPIRED: Refusal = "The passkey request expired. Reload the page and try again.";
    const REFUSED: Refusal = "The passkey was not accepted.";
    let Ok(cred) = serde_json::from_str::<PublicKeyCredential>(credential) else {
        return Ok(Assertion::Refused(
            "The browser's answer could not be read.".into(),
        ));
    };
    let id = URL_SAFE_NO_PAD.encode(cred.get_credential_id());
    // Taken first, whatever follows: a ceremony is answered at most once.
    let Some(c) = mfa::ceremony_take(conn, &sha256_hex(ceremony))? else {
        return Ok(Assertion::Refused(EXPIRED.into()));
    };
    if c.sid != sid || c.expires_at <= now {
        return Ok(Assertion::Refused(EXPIRED.into()));
    }
    let Some(mut row) = mfa::passkey_find(conn, &id)? else {
        return Ok(Assertion::Refused(REFUSED.into()));
    };
    let Some(mut passkey) = parse(&row) else {
        return Err(InternalError::new("stored passkey unreadable"));
    };
    let result = match c.kind.as_str() {
        DISCOVER => {
            let state: DiscoverableAuthentication = serde_json::from_str(&c.state)?;
            match wa.identify_discoverable_authentication(&cred) {
                Ok((handle, _)) if handle == user_handle(&row.user_id) => {}
                _ => return Ok(Assertion::Refused(REFUSED.into())),
            }
            wa.finish_discoverable_authentication_v2(&cred, state, &passkey)
        }
        AUTHENTICATE => {
            let state: PasskeyAuthentication = serde_json::from_str(&c.state)?;
            if c.user_id.as_deref() != Some(row.user_id.as_str()) {
                return Ok(Assertion::Refused(REFUSED.into()));
            }
            wa.finish_passkey_authentication(&cred, &state)
        }
        _ => return Ok(Assertion::Refused(EXPIRED.into())),
    };
    let result = match result {
        Ok(r) if r.user_verified() => r,
        Ok(_) => return Ok(Assertion::Refused(REFUSED.into())),
        Err(WebauthnError::CredentialPossibleCompromise) => {
            return Ok(Assertion::Refused(Refused {
                why: REFUSED,
                compromised: Some(row.user_id.clone()),
            }));
        }
        Err(e) => {
            tracing::info!(error = %e, "passkey assertion refused");
            return Ok(Assertion::Refused(REFUSED.into()));
        }
    };
    passkey.update_credential(&result);
    row.passkey = serde_json::to_string(&passkey)?;
    row.sign_count = i64::from(result.counter());
    row.backup_eligible = result.backup_eligible();
    row.backup_state = result.backup_state();
    row.last_used_at = Some(now);
    mfa::passkey_used(conn, &row)?;
    Ok(Assertion::Verified(Verified {
        user_id: row.user_id.clone(),
        passwordless: c.kind == DISCOVER,
        passkey: row,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn relying_party_follows_the_issuer_host() {
        assert!(relying_party("http://localhost:8080").is_some());
        assert!(relying_party("https://id.example.com").is_some());
        assert!(relying_party("not a url").is_none());
        assert!(relying_party("http://127.0.0.1:8080").is_none());
    }

    #[test]
    fn user_handle_is_stable_and_uses_uuid_ids_as_they_are() {
        let id = "0123456789abcdef0123456789abcdef";
        assert_eq!(user_handle(id).simple().to_string(), id);
        assert_eq!(
            user_handle("bootstrap-admin"),
            user_handle("bootstrap-admin")
        );
        assert_ne!(user_handle("a"), user_handle("b"));
    }
}
