//! The authorization endpoint's use cases: validate a request, park it while the user signs in
//! and consents, then issue a code through oxide-auth's authorization flow.

use chrono::NaiveDateTime;
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::endpoint::AuthorizationFlow;
use oxide_auth::frontends::simple::request::Request;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::{InternalError, internal_error_sources};
use crate::keys::secrets::random_token;
use crate::oauth::errors::AuthorizeError;
use crate::oauth::primitives::{
    Approved, DbAuthorizer, Flags, FlowEndpoint, OidcExtension, OneClient,
};
use crate::oauth::redirect::AuthResponse;
use crate::oidc::{claims, logout};
use crate::protocol::grant_data::GrantData;
use crate::protocol::{params, scope};
use crate::sign_in::finish::Next;
use crate::store::auth_requests::{self, AuthRequest};
use crate::store::clients::{self, Client};
use crate::store::sessions::Session;
use crate::store::{consents, session_clients, users};

mod consent;
mod issue;
#[cfg(test)]
mod tests;
mod validate;

use issue::issue_code;
pub use validate::validate;

/// What the endpoint does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The client or redirect URI cannot be trusted: an HTML error page, never a redirect.
    ErrorPage(String),
    /// Answer the client (code or error) at its redirect URI.
    Respond(AuthResponse),
    /// The user must sign in first.
    Login { request_id: String },
    /// The user must approve the requested scopes.
    Consent { request_id: String },
    /// The user must prove a second factor (after a password, or to step up).
    SecondFactor { request_id: String },
    /// The client requires a second factor the user has not set up yet.
    Enrol { request_id: String },
    /// Too many requests from this address are waiting already: try again in this many seconds.
    Busy { retry_after: i64 },
    /// The user's password has expired: no code until it is changed on the account page.
    PasswordExpired,
}

/// Why an authorization request as received is refused, or the internal failure that stopped
/// its validation.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The client or redirect URI cannot be trusted: an HTML error page, never a redirect.
    #[error("untrusted authorization request: {0}")]
    Untrusted(String),
    /// The redirect URI is trusted: the client is answered `error` there (`answer`).
    #[error("{}: {description}", error.code())]
    AtRedirect {
        error: AuthorizeError,
        description: String,
        answer: AuthResponse,
    },
    #[error(transparent)]
    Internal(#[from] InternalError),
}

internal_error_sources!(Refused);

impl Refused {
    /// What the endpoint does with a refused request; an internal error stays one.
    pub fn into_outcome(self) -> Result<Outcome, InternalError> {
        match self {
            Refused::Untrusted(m) => Ok(Outcome::ErrorPage(m)),
            Refused::AtRedirect { answer, .. } => Ok(Outcome::Respond(answer)),
            Refused::Internal(e) => Err(e),
        }
    }
}

/// A request that passed validation.
#[derive(Debug, Clone)]
pub struct Valid {
    pub client: Client,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub form_post: bool,
    /// Granted scopes: requested ∩ registered ∩ supported.
    pub scopes: Vec<String>,
    pub prompt: Vec<String>,
    pub max_age: Option<crate::protocol::params::MaxAge>,
    pub login_hint: Option<String>,
    /// `sub` of a valid `id_token_hint`: the user the client expects.
    pub hint_sub: Option<String>,
    /// Claims asked for through `claims`: (userinfo, id_token).
    pub claims: (Vec<String>, Vec<String>),
    /// The parameters as received (single values), for the flow.
    pub params: BTreeMap<String, String>,
}

impl Valid {
    /// The answer `e` at the request's redirect URI.
    pub fn error(&self, ctx: Ctx<'_>, e: AuthorizeError, description: &str) -> Outcome {
        Outcome::Respond(self.error_answer(ctx, e, description))
    }

    /// The refusal of this request with `e`, answered at its redirect URI.
    pub fn refuse(&self, ctx: Ctx<'_>, e: AuthorizeError, description: &str) -> Refused {
        Refused::AtRedirect {
            error: e,
            description: description.to_string(),
            answer: self.error_answer(ctx, e, description),
        }
    }

    fn error_answer(&self, ctx: Ctx<'_>, e: AuthorizeError, description: &str) -> AuthResponse {
        error_response(
            ctx,
            &self.redirect_uri,
            self.form_post,
            self.state.as_deref(),
            e,
            description,
        )
    }
}

/// An error answer at a trusted redirect URI: only `error`, `error_description`, `state`, `iss`.
pub fn error_response(
    ctx: Ctx<'_>,
    redirect_uri: &str,
    form_post: bool,
    state: Option<&str>,
    e: AuthorizeError,
    description: &str,
) -> AuthResponse {
    // error_description: printable ASCII without `"` and `\\` (RFC 6749 §4.1.2.1).
    let clean: String = description
        .chars()
        .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect();
    let mut params = vec![
        ("error".to_string(), e.code().to_string()),
        ("error_description".to_string(), clean),
    ];
    if let Some(s) = state {
        params.push(("state".into(), s.to_string()));
    }
    params.push(("iss".into(), ctx.config.issuer.clone()));
    AuthResponse {
        redirect_uri: redirect_uri.to_string(),
        params,
        form_post,
    }
}

/// A new authorization request: validate, remember it, then decide.
pub fn start(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    pairs: &[(String, String)],
    session: Option<&Session>,
    now: NaiveDateTime,
) -> Result<Outcome, InternalError> {
    let pushed;
    let pairs = match crate::oauth::par::resolve(conn, pairs, now)? {
        crate::oauth::par::Resolved::NotPushed => pairs,
        crate::oauth::par::Resolved::Pushed(p) => {
            pushed = p;
            &pushed
        }
        crate::oauth::par::Resolved::Refused(m) => return Ok(Outcome::ErrorPage(m)),
    };
    let valid = match validate(conn, ctx, pairs, now) {
        Ok(v) => v,
        Err(refused) => return refused.into_outcome(),
    };
    let row = AuthRequest {
        id: random_token(),
        client_id: valid.client.client_id.clone(),
        params: serde_json::to_string(&valid.params)?,
        login_sid: None,
        consented: false,
        created_at: now,
        expires_at: params::after(now, ctx.config.lifetimes.auth_request),
        client_ip: params::address_key(ctx.meta.ip.as_deref()),
    };
    auth_requests::insert(conn, &row)?;
    let outcome = evaluate(conn, ctx, &row, &valid, session, now)?;
    let parked = matches!(
        outcome,
        Outcome::Login { .. }
            | Outcome::Consent { .. }
            | Outcome::SecondFactor { .. }
            | Outcome::Enrol { .. }
    );
    if parked && let Some(retry_after) = over_parking_bound(conn, ctx, &row, now)? {
        auth_requests::delete(conn, &row.id)?;
        return Ok(Outcome::Busy { retry_after });
    }
    Ok(outcome)
}

/// Seconds until the address of `row` may park another request, when it already has more
/// than its share waiting (`rate_limit.parked_requests_per_address`, counted across
/// instances in the database).
fn over_parking_bound(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    row: &AuthRequest,
    now: NaiveDateTime,
) -> Result<Option<i64>, InternalError> {
    let limit = i64::from(ctx.config.rate_limit.parked_requests_per_address);
    if limit == 0 {
        return Ok(None);
    }
    let (live, soonest) = auth_requests::live_from(conn, row.client_ip.as_deref(), now)?;
    if live <= limit {
        return Ok(None);
    }
    tracing::warn!(address = ?row.client_ip, live, "too many parked authorization requests from one address");
    let wait = soonest.map_or(1, |t| t.signed_duration_since(now).num_seconds());
    Ok(Some(wait.max(1)))
}

/// A parked request and its validated form, if it still exists.
pub fn load(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    request_id: &str,
    now: NaiveDateTime,
) -> Result<Option<(AuthRequest, Valid)>, InternalError> {
    let Some(row) = auth_requests::find(conn, request_id)?.filter(|r| r.expires_at > now) else {
        return Ok(None);
    };
    let params: BTreeMap<String, String> = serde_json::from_str(&row.params)?;
    let pairs: Vec<(String, String)> = params.into_iter().collect();
    match validate(conn, ctx, &pairs, now) {
        Ok(v) => Ok(Some((row, v))),
        Err(Refused::Internal(e)) => Err(e),
        Err(Refused::Untrusted(_) | Refused::AtRedirect { .. }) => Ok(None),
    }
}

/// Continues a parked request after sign-in or consent.
pub fn resume(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    request_id: &str,
    session: Option<&Session>,
    now: NaiveDateTime,
) -> Result<Outcome, InternalError> {
    match load(conn, ctx, request_id, now)? {
        Some((row, valid)) => evaluate(conn, ctx, &row, &valid, session, now),
        None => Ok(Outcome::ErrorPage(
            "This sign-in request has expired or was already completed. Return to the application and try again.".into(),
        )),
    }
}

/// After a sign-in step: when it signed the browser in for a parked request, marks the request
/// as answered by that session (so `prompt=login` and `max_age` count the sign-in as fresh).
pub fn after_sign_in(conn: &mut DbConn, next: &Next) -> Result<(), InternalError> {
    if let Next::Authorize { request, sid } = next {
        auth_requests::set_login_sid(conn, request, sid)?;
    }
    Ok(())
}

/// What the sign-in and second-factor pages show about the request they belong to.
#[derive(Debug, Clone, Default)]
pub struct RequestView {
    pub client_name: Option<String>,
    pub login_hint: Option<String>,
    /// Where the form may lead after sign-in (the client's redirect origin).
    pub form_target: Option<String>,
}

/// The page view of a parked request (an unknown or expired one shows nothing).
pub fn view_of(
    c: &mut DbConn,
    ctx: Ctx<'_>,
    request: Option<&str>,
    now: NaiveDateTime,
) -> Result<RequestView, InternalError> {
    let Some(id) = request else {
        return Ok(RequestView::default());
    };
    Ok(match load(c, ctx, id, now)? {
        Some((_, v)) => RequestView {
            client_name: Some(v.client.name.clone()),
            login_hint: v.login_hint.clone(),
            form_target: crate::oauth::redirect::origin(&v.redirect_uri),
        },
        None => RequestView::default(),
    })
}

/// The user's answer on the consent page.
pub fn decide(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    request_id: &str,
    session: &Session,
    allow: bool,
    now: NaiveDateTime,
) -> Result<Outcome, InternalError> {
    let Some((row, valid)) = load(conn, ctx, request_id, now)? else {
        return resume(conn, ctx, request_id, Some(session), now);
    };
    let Some(user_id) = session.user_id.clone() else {
        return evaluate(conn, ctx, &row, &valid, Some(session), now);
    };
    if !allow {
        auth_requests::delete(conn, &row.id)?;
        crate::audit::record(
            conn,
            ctx.meta,
            now,
            crate::audit::Event::new("consent.deny", "success")
                .user(&user_id)
                .client(&valid.client.client_id),
        )?;
        return Ok(valid.error(
            ctx,
            AuthorizeError::AccessDenied,
            "the user denied the request",
        ));
    }
    consent::remember(conn, &user_id, &valid, now)?;
    auth_requests::set_consented(conn, &row.id)?;
    crate::audit::record(
        conn,
        ctx.meta,
        now,
        crate::audit::Event::new("consent.grant", "success")
            .user(session.user_id.as_deref().unwrap_or_default())
            .client(&valid.client.client_id)
            .details(serde_json::json!({
                "scopes": valid.scopes,
                "claims": valid.claims_to_approve(),
            })),
    )?;
    let row = AuthRequest {
        consented: true,
        ..row
    };
    evaluate(conn, ctx, &row, &valid, Some(session), now)
}

/// Decides between sign-in, consent and issuing a code.
fn evaluate(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    row: &AuthRequest,
    valid: &Valid,
    session: Option<&Session>,
    now: NaiveDateTime,
) -> Result<Outcome, InternalError> {
    let prompt_none = valid.prompt.iter().any(|p| p == "none");
    let signed_in = match session.and_then(|s| s.user_id.as_ref().map(|u| (s, u))) {
        Some((s, uid)) => match users::find(conn, uid)? {
            Some(u) if !u.disabled => Some((s, u)),
            _ => None,
        },
        None => None,
    };
    let needs_login = match &signed_in {
        None => true,
        Some((s, _)) => {
            let auth_time = s.auth_time.unwrap_or(s.created_at);
            let fresh = row.login_sid.as_deref() == Some(s.sid.as_str());
            // `select_account`: the sign-in page is where another account can be chosen.
            let forced = valid
                .prompt
                .iter()
                .any(|p| p == "login" || p == "select_account");
            let too_old = valid.max_age.is_some_and(|m| m.exceeded(auth_time, now));
            // The client expects another user than the one signed in.
            let other_user = valid
                .hint_sub
                .as_ref()
                .is_some_and(|sub| s.user_id.as_ref() != Some(sub));
            other_user || (!fresh && (forced || too_old))
        }
    };
    if needs_login {
        if prompt_none {
            auth_requests::delete(conn, &row.id)?;
            return Ok(valid.error(
                ctx,
                AuthorizeError::LoginRequired,
                "the user is not signed in",
            ));
        }
        return Ok(Outcome::Login {
            request_id: row.id.clone(),
        });
    }
    let Some((session, user)) = signed_in else {
        return Ok(Outcome::Login {
            request_id: row.id.clone(),
        });
    };
    if crate::sign_in::password::expired(conn, ctx.config.password.max_age_days, &user.id, now)? {
        if prompt_none {
            auth_requests::delete(conn, &row.id)?;
            return Ok(valid.error(
                ctx,
                AuthorizeError::InteractionRequired,
                "the user must change an expired password",
            ));
        }
        return Ok(Outcome::PasswordExpired);
    }
    if let Some(outcome) = crate::oauth::acr::step_up(conn, ctx, row, valid, session, &user.id)? {
        return Ok(outcome);
    }
    if !valid.client.skip_consent {
        let consent = consents::find(conn, &user.id, &valid.client.client_id)?;
        let covered = consent.as_ref().is_some_and(|c| consent::covers(c, valid));
        let fresh = row.consented;
        let forced = valid.prompt.iter().any(|p| p == "consent");
        if !covered || (forced && !fresh) {
            if prompt_none {
                auth_requests::delete(conn, &row.id)?;
                return Ok(valid.error(
                    ctx,
                    AuthorizeError::ConsentRequired,
                    "the user has not approved this application",
                ));
            }
            return Ok(Outcome::Consent {
                request_id: row.id.clone(),
            });
        }
    }
    if auth_requests::delete(conn, &row.id)? != 1 {
        return Ok(Outcome::ErrorPage(
            "This sign-in request was already completed.".into(),
        ));
    }
    issue_code(conn, ctx, valid, session, &user.id, now)
}
