//! `/revoke` (RFC 7009) and `/introspect` (RFC 7662).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::{run_as, web_data::Data};
use crate::oauth::{introspection, revocation};
use crate::web::errors::WebError;
use crate::web::oauth::token::{answer, preflight};

pub async fn revoke(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (pairs, auth) = match preflight(&state, &req, &body) {
        Ok(x) => x,
        Err(refused) => return Ok(*refused),
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
        Err(r) => answer(r),
    })
}

pub async fn introspect(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (pairs, auth) = match preflight(&state, &req, &body) {
        Ok(x) => x,
        Err(refused) => return Ok(*refused),
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
        Err(r) => answer(r),
    })
}
