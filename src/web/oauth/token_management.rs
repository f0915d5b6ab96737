//! `/revoke` (RFC 7009) and `/introspect` (RFC 7662).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::web_data::Data;
use crate::oauth::{introspection, revocation};
use crate::web::errors::WebError;
use crate::web::oauth::token::{Writes, token_side};

pub async fn revoke(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    token_side(&state, &req, &body, Writes::Always, revocation::revoke).await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

pub async fn introspect(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let answer = token_side(
        &state,
        &req,
        &body,
        Writes::OnRefusal,
        introspection::introspect,
    )
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(answer))
}
