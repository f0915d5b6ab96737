//! `/token`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use chrono::NaiveDateTime;

use crate::app::{execute, run_conn_as, web_data::Data};
use crate::context::Ctx;
use crate::db::DbConn;
use crate::oauth::client_auth;
use crate::oauth::errors::{OAuthError, read_only_unless_refused, transaction_keeping_refusals};
use crate::oauth::token;
use crate::oauth::web_origin;
use crate::rate_limit;
use crate::web::cors;
use crate::web::errors::WebError;
use crate::web::extractors::{authorization, form_pairs, is_form};

/// A token-side use case: the form pairs and the Authorization header in, an answer or a
/// refusal out.
pub trait UseCase<T>:
    Fn(
        &mut DbConn,
        Ctx<'_>,
        &[(String, String)],
        Option<&str>,
        NaiveDateTime,
    ) -> Result<T, OAuthError>
    + Send
    + 'static
{
}

impl<T, F> UseCase<T> for F where
    F: Fn(
            &mut DbConn,
            Ctx<'_>,
            &[(String, String)],
            Option<&str>,
            NaiveDateTime,
        ) -> Result<T, OAuthError>
        + Send
        + 'static
{
}

/// A token-side request's form pairs and Authorization header.
pub type TokenRequest = (Vec<(String, String)>, Option<String>);

/// What every token-side endpoint checks first: a form body. Gives the form pairs and the
/// Authorization header.
pub fn preflight(req: &HttpRequest, body: &web::Bytes) -> Result<TokenRequest, OAuthError> {
    if !is_form(req) {
        return Err(OAuthError::InvalidRequest(
            "the body must be application/x-www-form-urlencoded".into(),
        ));
    }
    Ok((form_pairs(body), authorization(req)))
}

/// When a token-side use case writes.
#[derive(Clone, Copy)]
pub enum Writes {
    /// Whenever it answers (grants, revocation, pushed requests).
    Always,
    /// Only when it refuses (introspection audits a failed client authentication).
    OnRefusal,
}

/// Runs a token-side use case (form pairs, Authorization header) after the preflight and the
/// per-client rate limit, in one transaction that a refusal keeps
/// (`transaction_keeping_refusals`), or, for a use case that writes only when it refuses,
/// read-only first (`read_only_unless_refused`); audited with the request's origin. The CORS
/// verdict for a presented `Origin` (the named client's web origins) is recorded on the
/// request first, for whatever answer goes out. The limit is keyed on the client as
/// authentication reads it, and only registered clients get a bucket of their own: every
/// other request shares one.
pub async fn token_side<T, F>(
    state: &Data,
    req: &HttpRequest,
    body: &web::Bytes,
    writes: Writes,
    f: F,
) -> Result<T, WebError>
where
    T: Send + 'static,
    F: UseCase<T>,
{
    let (pairs, auth) = preflight(req, body)?;
    let meta = crate::web::extractors::meta(req, &state.config);
    if let Some(origin) = cors::origin(req) {
        let (pairs, auth) = (pairs.clone(), auth.clone());
        let verdict = run_conn_as(state, meta.clone(), move |c, _ctx, _now| {
            web_origin::for_token_request(c, &origin, auth.as_deref(), &pairs)
        })
        .await?;
        cors::record(req, verdict);
    }
    let limiter = state.client_limiter.clone();
    let enabled = state.config.rate_limit.enabled;
    let default_budget = state.config.rate_limit.client_requests_per_minute;
    let instances = state.share.instances();
    let answer = execute(state, meta, move |c, ctx, now| {
        if enabled {
            let named = client_auth::named_client(c, auth.as_deref(), &pairs)?;
            let budget = named
                .as_ref()
                .and_then(|c| c.requests_per_minute)
                .and_then(|n| u32::try_from(n).ok())
                .unwrap_or(default_budget);
            let key = rate_limit::client_key(named.map(|c| c.client_id));
            if let Some(retry_after) =
                rate_limit::client_over_limit(&limiter, enabled, Some(key), budget, instances)
            {
                return Err(OAuthError::RateLimited { retry_after });
            }
        }
        let use_case = |c: &mut DbConn| f(c, ctx, &pairs, auth.as_deref(), now);
        match writes {
            Writes::Always => transaction_keeping_refusals(c, use_case),
            Writes::OnRefusal => read_only_unless_refused(c, use_case),
        }
    })
    .await?;
    Ok(answer)
}

pub async fn token(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let tokens = token_side(&state, &req, &body, Writes::Always, token::token).await?;
    Ok(json_answer(&tokens))
}

/// A token-side answer as HTTP: JSON, never cached.
pub fn json_answer(body: &impl serde::Serialize) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(body)
}
