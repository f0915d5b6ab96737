//! `/revoke` (RFC 7009) and `/introspect` (RFC 7662).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::web_data::Data;
use crate::oauth::{introspection, revocation};
use crate::web::errors::WebError;
use crate::web::oauth::token::{answer, token_side};

pub async fn revoke(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let outcome = match token_side(&state, &req, &body, revocation::revoke).await? {
        Ok(o) => o,
        Err(refused) => return Ok(refused),
    };
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
    let outcome = match token_side(&state, &req, &body, introspection::introspect).await? {
        Ok(o) => o,
        Err(refused) => return Ok(refused),
    };
    Ok(match outcome {
        Ok(body) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(body),
        Err(r) => answer(r),
    })
}
