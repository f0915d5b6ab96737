//! `/par`: pushed authorization requests (RFC 9126).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::web_data::Data;
use crate::oauth::par::{self, ParReply};
use crate::web::errors::{WebError, oauth_json_error_code, oauth_too_many};
use crate::web::oauth::token::token_side;

pub async fn push(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let reply = match token_side(&state, &req, &body, par::push).await? {
        Ok(r) => r,
        Err(refused) => return Ok(refused),
    };
    Ok(match reply {
        ParReply::Created {
            request_uri,
            expires_in,
        } => HttpResponse::build(StatusCode::CREATED)
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(serde_json::json!({"request_uri": request_uri, "expires_in": expires_in})),
        ParReply::Error {
            code,
            description,
            www_authenticate,
        } => oauth_json_error_code(&code, &description, www_authenticate.as_deref()),
        ParReply::Busy { retry_after } => oauth_too_many(
            "this client has too many pushed requests waiting",
            retry_after,
        ),
    })
}
