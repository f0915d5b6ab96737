//! `/revoke` (RFC 7009) and `/introspect` (RFC 7662).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::{run_as, web_data::Data};
use crate::oauth::errors::TokenError;
use crate::oauth::token::TokenReply;
use crate::oauth::{introspection, revocation};
use crate::web::errors::{WebError, oauth_json_error};
use crate::web::oauth::token::preflight;

fn reply_error(r: TokenReply) -> HttpResponse {
    match r {
        TokenReply::Error {
            error,
            description,
            www_authenticate,
        } => oauth_json_error(error, &description, www_authenticate.as_deref()),
        TokenReply::Success(_) => {
            oauth_json_error(TokenError::InvalidRequest, "unexpected answer", None)
        }
    }
}

pub async fn revoke(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (pairs, auth) = match preflight(&state, &req, &body) {
        Ok(x) => x,
        Err(answer) => return Ok(*answer),
    };
    let outcome = run_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| revocation::revoke(c, ctx, &pairs, auth.as_deref(), now),
    )
    .await?;
    Ok(match outcome {
        Ok(()) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Err(r) => reply_error(r),
    })
}

pub async fn introspect(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (pairs, auth) = match preflight(&state, &req, &body) {
        Ok(x) => x,
        Err(answer) => return Ok(*answer),
    };
    let outcome = run_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| introspection::introspect(c, ctx, &pairs, auth.as_deref(), now),
    )
    .await?;
    Ok(match outcome {
        Ok(body) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body),
        Err(r) => reply_error(r),
    })
}
