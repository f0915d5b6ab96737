//! `/userinfo` (GET and POST, RFC 6750 bearer token in the header or the form body).

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::{execute, run_conn, web_data::Data};
use crate::context::RequestMeta;
use crate::oauth::web_origin;
use crate::oidc::userinfo::{self, UserinfoError};
use crate::web::cors;
use crate::web::errors::WebError;
use crate::web::extractors::{authorization, field, form_pairs, is_form};

pub async fn get(state: Data, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let token = bearer(&req);
    answer(state, &req, token).await
}

pub async fn post(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let header_token = bearer(&req);
    let body_token = if is_form(&req) {
        field(&form_pairs(&body), "access_token").map(str::to_string)
    } else {
        None
    };
    if header_token.is_some() && body_token.is_some() {
        return Err(UserinfoError::TokenRepeated.into());
    }
    answer(state, &req, header_token.or(body_token)).await
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let h = authorization(req)?;
    let (scheme, value) = h.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| value.trim().to_string())
        .filter(|v| !v.is_empty())
}

/// The claims, readable cross-origin only by the origins the token's client registered (the
/// verdict is recorded first, for whatever answer goes out).
async fn answer(
    state: Data,
    req: &HttpRequest,
    token: Option<String>,
) -> Result<HttpResponse, WebError> {
    let token = token.ok_or(UserinfoError::TokenMissing)?;
    if let Some(origin) = cors::origin(req) {
        let presented = token.clone();
        let verdict = run_conn(&state, move |c, _ctx, now| {
            web_origin::for_access_token(c, &origin, &presented, now)
        })
        .await?;
        cors::record(req, verdict);
    }
    let claims = execute(&state, RequestMeta::default(), move |c, _ctx, now| {
        userinfo::userinfo(c, &token, now)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(claims))
}
