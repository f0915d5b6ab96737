//! `/par`: pushed authorization requests (RFC 9126).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::web_data::Data;
use crate::oauth::par;
use crate::web::errors::WebError;
use crate::web::oauth::token::{Writes, token_side};

pub async fn push(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let pushed = token_side(&state, &req, &body, Writes::Always, par::push).await?;
    Ok(HttpResponse::build(StatusCode::CREATED)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({
            "request_uri": pushed.request_uri,
            "expires_in": pushed.expires_in,
        })))
}
