//! Pushed authorization requests (RFC 9126): a client posts its authorization parameters
//! directly, authenticated, and sends the browser to `/authorize` with only `client_id` and
//! the `request_uri` it got back. The parameters never pass through the browser.

use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use crate::audit::{self, Event};
use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::secrets::{random_token, sha256_hex};
use crate::oauth::authorize::{self, Refused};
use crate::oauth::errors::OAuthError;
use crate::oauth::token;
use crate::protocol::params;
use crate::store::pushed_requests::{self, PushedRequest};

/// The form of every request_uri we issue (RFC 9126 §2.2).
pub const URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// How long a pushed request may wait for the browser, in seconds.
pub const LIFETIME: i64 = 60;

/// Client credentials are for this endpoint, never for the stored request.
const CREDENTIALS: &[&str] = &["client_secret", "client_assertion", "client_assertion_type"];

/// A stored pushed request: the reference the browser brings to `/authorize`, and for how
/// many seconds it is good.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub request_uri: String,
    pub expires_in: i64,
}

/// A pushed request `/authorize` would refuse is refused when it is pushed, with the same
/// code (an untrusted one is an `invalid_request`).
impl From<Refused> for OAuthError {
    fn from(refused: Refused) -> Self {
        match refused {
            Refused::Untrusted(m) => OAuthError::InvalidRequest(m.into()),
            Refused::AtRedirect {
                error, description, ..
            } => OAuthError::InvalidAuthorization { error, description },
            Refused::Internal(e) => OAuthError::Internal(e),
        }
    }
}

/// Authenticates the client, validates the request as `/authorize` would, and stores it.
pub fn push(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    pairs: &[(String, String)],
    authorization: Option<&str>,
    now: NaiveDateTime,
) -> Result<Pushed, OAuthError> {
    let (client, form) = token::authenticated_form(conn, ctx, "par", pairs, authorization, now)?;
    if form.contains_key("request_uri") {
        return Err(OAuthError::InvalidRequest(
            "request_uri cannot be pushed".into(),
        ));
    }
    let mut request: Vec<(String, String)> = form
        .into_iter()
        .filter(|(k, _)| !CREDENTIALS.contains(&k.as_str()) && k != "client_id")
        .collect();
    request.push(("client_id".into(), client.client_id.clone()));
    let valid = authorize::validate(conn, ctx, &request, now)?;
    let limit = i64::from(ctx.config.rate_limit.pushed_requests_per_client);
    if limit > 0 {
        let (live, soonest) = pushed_requests::live_for_client(conn, &client.client_id, now)?;
        if live >= limit {
            tracing::warn!(client_id = %client.client_id, live, "too many pushed authorization requests");
            let wait = soonest.map_or(1, |t| t.signed_duration_since(now).num_seconds());
            return Err(OAuthError::TooManyPushed {
                retry_after: wait.max(1),
            });
        }
    }
    let reference = random_token();
    pushed_requests::insert(
        conn,
        &PushedRequest {
            id: sha256_hex(&reference),
            client_id: client.client_id.clone(),
            params: serde_json::to_string(&valid.params)?,
            expires_at: params::after(now, LIFETIME),
        },
    )?;
    audit::record(
        conn,
        ctx.meta,
        now,
        Event::new("par.push", "success").client(&client.client_id),
    )?;
    Ok(Pushed {
        request_uri: format!("{URI_PREFIX}{reference}"),
        expires_in: LIFETIME,
    })
}

/// What an authorization request that names a pushed request stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    /// No pushed request: the parameters as received.
    NotPushed,
    /// The pushed parameters, which replace everything else the browser sent (RFC 9126 §4).
    Pushed(Vec<(String, String)>),
    /// Unknown, used, expired or another client's: an HTML error page.
    Refused(String),
}

/// Looks up (and uses up) the pushed request an authorization request names, if any.
pub fn resolve(
    conn: &mut DbConn,
    pairs: &[(String, String)],
    now: NaiveDateTime,
) -> Result<Resolved, InternalError> {
    let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let Some(uri) = get("request_uri") else {
        return Ok(Resolved::NotPushed);
    };
    let Some(reference) = uri.strip_prefix(URI_PREFIX) else {
        return Ok(Resolved::NotPushed);
    };
    const GONE: &str = "This sign-in request has expired or was already used. Return to the application and try again.";
    if !params::fits("request_uri", uri) {
        return Ok(Resolved::Refused(GONE.into()));
    }
    let id = sha256_hex(reference);
    let Some(row) = pushed_requests::find(conn, &id)?.filter(|r| r.expires_at > now) else {
        return Ok(Resolved::Refused(GONE.into()));
    };
    // Ownership first: presented with another client_id, the request stays usable by the
    // client that pushed it.
    if get("client_id") != Some(row.client_id.as_str()) {
        return Ok(Resolved::Refused(
            "This sign-in request belongs to another application.".into(),
        ));
    }
    if !pushed_requests::take(conn, &id, &row.client_id)? {
        return Ok(Resolved::Refused(GONE.into()));
    }
    let params: BTreeMap<String, String> = serde_json::from_str(&row.params)?;
    Ok(Resolved::Pushed(params.into_iter().collect()))
}
