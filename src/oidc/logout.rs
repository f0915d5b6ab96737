//! RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) and the sign-out it triggers.

use chrono::NaiveDateTime;
use std::collections::BTreeMap;
use url::Url;

use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::signing::verify_jwt;
use crate::oidc::backchannel;
use crate::store::clients::{self, Client};
use crate::store::session_clients;
use crate::store::sessions::Session;

/// What the `id_token_hint` told us, once its signature and issuer checked out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub sub: String,
    pub aud: Vec<String>,
}

/// Verifies an ID token we issued. Expired tokens are accepted (a hint, not a credential);
/// `alg: none`, foreign keys, tampering and another issuer are not.
pub fn parse_hint(ctx: Ctx<'_>, token: &str) -> Option<Hint> {
    let claims = verify_jwt(ctx.keys, token).ok()?;
    if claims["iss"].as_str() != Some(ctx.config.issuer.as_str()) {
        return None;
    }
    let sub = claims["sub"].as_str()?.to_string();
    let aud = match &claims["aud"] {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(a) => a
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        _ => return None,
    };
    Some(Hint { sub, aud })
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    /// Ask the user first; the fields go back in the confirmation form.
    Confirm {
        client_name: Option<String>,
        fields: Vec<(String, String)>,
    },
    /// Signed out (or nobody was signed in). Redirect to the validated URI, or show a page.
    Done {
        redirect: Option<String>,
        /// Back-channel notifications were queued.
        notified: bool,
    },
    ErrorPage(String),
}

/// Handles a logout request (GET or POST), or its confirmation when `confirmed`.
pub fn end_session(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    pairs: &[(String, String)],
    session: Option<&Session>,
    confirmed: bool,
    now: NaiveDateTime,
) -> Result<LogoutOutcome, InternalError> {
    let mut p: BTreeMap<String, String> = BTreeMap::new();
    for (k, v) in pairs {
        if p.insert(k.clone(), v.clone()).is_some() {
            return Ok(LogoutOutcome::ErrorPage(format!(
                "The logout request repeats {k}."
            )));
        }
    }
    if crate::protocol::params::out_of_bounds(&p).is_some() {
        return Ok(LogoutOutcome::ErrorPage(
            "The logout request has a parameter that is too long.".into(),
        ));
    }
    let hint = match p.get("id_token_hint").filter(|h| !h.is_empty()) {
        Some(h) => match parse_hint(ctx, h) {
            Some(hint) => Some(hint),
            None => {
                return Ok(LogoutOutcome::ErrorPage(
                    "The logout request carries an ID token that was not issued here.".into(),
                ));
            }
        },
        None => None,
    };
    let client_id = match (p.get("client_id").filter(|c| !c.is_empty()), &hint) {
        (Some(c), Some(h)) if !h.aud.contains(c) => {
            return Ok(LogoutOutcome::ErrorPage(
                "The client_id does not match the ID token of the logout request.".into(),
            ));
        }
        (Some(c), _) => Some(c.clone()),
        (None, Some(h)) => h.aud.first().cloned(),
        (None, None) => None,
    };
    let client: Option<Client> = match &client_id {
        Some(id) => clients::find(conn, id)?,
        None => None,
    };
    let redirect = match p.get("post_logout_redirect_uri").filter(|u| !u.is_empty()) {
        Some(uri) => {
            let Some(c) = &client else {
                return Ok(LogoutOutcome::ErrorPage(
                    "A post-logout redirect needs id_token_hint or client_id.".into(),
                ));
            };
            if !c.post_logout_redirect_uri_list().iter().any(|r| r == uri) {
                return Ok(LogoutOutcome::ErrorPage(
                    "The post-logout redirect URI is not registered for this application.".into(),
                ));
            }
            let mut url = Url::parse(uri)
                .map_err(|e| InternalError::with("a registered post-logout redirect URI", e))?;
            if let Some(state) = p.get("state") {
                url.query_pairs_mut().append_pair("state", state);
            }
            Some(url.to_string())
        }
        None => None,
    };
    let signed_in = session.filter(|s| s.user_id.is_some());
    let Some(session) = signed_in else {
        return Ok(LogoutOutcome::Done {
            redirect,
            notified: false,
        });
    };
    let trusted = hint
        .as_ref()
        .is_some_and(|h| session.user_id.as_deref() == Some(h.sub.as_str()));
    if !trusted && !confirmed {
        let mut fields = Vec::new();
        for key in [
            "id_token_hint",
            "post_logout_redirect_uri",
            "state",
            "client_id",
        ] {
            if let Some(v) = p.get(key) {
                fields.push((key.to_string(), v.clone()));
            }
        }
        return Ok(LogoutOutcome::Confirm {
            client_name: client.map(|c| c.name),
            fields,
        });
    }
    let notified = sign_out(conn, ctx, session, now)?;
    Ok(LogoutOutcome::Done { redirect, notified })
}

/// Ends the browser session and queues a back-channel logout for every client it signed into.
/// Returns true when notifications were queued.
pub fn sign_out(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    session: &Session,
    now: NaiveDateTime,
) -> Result<bool, InternalError> {
    let mut queued = false;
    if let Some(user_id) = &session.user_id {
        for sc in session_clients::for_session(conn, &session.sid)? {
            let Some(client) = clients::find(conn, &sc.client_id)? else {
                continue;
            };
            if let Some(uri) = &client.backchannel_logout_uri {
                backchannel::enqueue(
                    conn,
                    ctx,
                    &client.client_id,
                    &client.id_token_alg,
                    uri,
                    user_id,
                    &session.sid,
                    now,
                )?;
                queued = true;
            }
        }
    }
    session_clients::delete_session(conn, &session.sid)?;
    crate::store::sessions::delete(conn, &session.id_hash)?;
    if let Some(user_id) = &session.user_id {
        crate::audit::record(
            conn,
            ctx.meta,
            now,
            crate::audit::Event::new("session.end", "success")
                .user(user_id)
                .details(serde_json::json!({"sid": session.sid, "backchannel": queued})),
        )?;
    }
    Ok(queued)
}
