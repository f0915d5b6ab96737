//! `/token`.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use chrono::NaiveDateTime;

use crate::app::{run_as, web_data::Data};
use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::oauth::client_auth;
use crate::oauth::errors::TokenError;
use crate::oauth::token::{self, TokenReply};
use crate::oauth::web_origin;
use crate::rate_limit;
use crate::web::cors;
use crate::web::errors::{WebError, oauth_json_error};
use crate::web::extractors::{authorization, form_pairs, is_form};
use crate::web::rate_limit::too_many;

/// A token-side request's form pairs and Authorization header.
pub type TokenRequest = (Vec<(String, String)>, Option<String>);

/// What every token-side endpoint checks first: a form body. Gives the form pairs and the
/// Authorization header, or the answer.
pub fn preflight(req: &HttpRequest, body: &web::Bytes) -> Result<TokenRequest, Box<HttpResponse>> {
    if !is_form(req) {
        return Err(Box::new(oauth_json_error(
            TokenError::InvalidRequest,
            "the body must be application/x-www-form-urlencoded",
            None,
        )));
    }
    Ok((form_pairs(body), authorization(req)))
}

/// Runs a token-side use case (form pairs, Authorization header) after the preflight and the
/// per-client rate limit, in one transaction, audited with the request's origin; `Err` is the
/// refusal. The CORS verdict for a presented `Origin` (the named client's web origins) is
/// recorded on the request for whatever answer goes out. The limit is keyed on the client as authentication reads it, and only registered
/// clients get a bucket of their own: every other request shares one.
pub async fn token_side<T, F>(
    state: &Data,
    req: &HttpRequest,
    body: &web::Bytes,
    f: F,
) -> Result<Result<T, HttpResponse>, WebError>
where
    T: Send + 'static,
    F: FnOnce(
            &mut DbConn,
            Ctx<'_>,
            &[(String, String)],
            Option<&str>,
            NaiveDateTime,
        ) -> Result<T, InternalError>
        + Send
        + 'static,
{
    let (pairs, auth) = match preflight(req, body) {
        Ok(x) => x,
        Err(refused) => return Ok(Err(*refused)),
    };
    let limiter = state.client_limiter.clone();
    let enabled = state.config.rate_limit.enabled;
    let default_budget = state.config.rate_limit.client_requests_per_minute;
    let origin = cors::origin(req);
    let (verdict, outcome) = run_as(
        state,
        crate::web::extractors::meta(req, &state.config),
        move |c, ctx, now| {
            let verdict = match &origin {
                Some(o) => Some(web_origin::for_token_request(
                    c,
                    o,
                    auth.as_deref(),
                    &pairs,
                )?),
                None => None,
            };
            if enabled {
                let named = client_auth::named_client(c, auth.as_deref(), &pairs)?;
                let budget = named
                    .as_ref()
                    .and_then(|c| c.requests_per_minute)
                    .and_then(|n| u32::try_from(n).ok())
                    .unwrap_or(default_budget);
                let key = rate_limit::client_key(named.map(|c| c.client_id));
                if let Some(wait) =
                    rate_limit::client_over_limit(&limiter, enabled, Some(key), budget)
                {
                    return Ok((verdict, Err(wait)));
                }
            }
            f(c, ctx, &pairs, auth.as_deref(), now).map(|t| (verdict, Ok(t)))
        },
    )
    .await?;
    if let Some(v) = verdict {
        cors::record(req, v);
    }
    Ok(outcome.map_err(too_many))
}

pub async fn token(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    Ok(match token_side(&state, &req, &body, token::token).await? {
        Ok(reply) => answer(reply),
        Err(refused) => refused,
    })
}

/// A token-side answer as HTTP: JSON, never cached; errors per RFC 6749 §5.2.
pub fn answer(reply: TokenReply) -> HttpResponse {
    match reply {
        TokenReply::Success(body) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((header::PRAGMA, "no-cache"))
            .json(body),
        TokenReply::Error {
            error,
            description,
            www_authenticate,
        } => oauth_json_error(error, &description, www_authenticate.as_deref()),
    }
}
