//! `/userinfo` (GET and POST, RFC 6750 bearer token in the header or the form body).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::{run_conn, web_data::Data};
use crate::oauth::web_origin;
use crate::oidc::userinfo::{self, UserinfoError};
use crate::web::cors;
use crate::web::errors::{WebError, bearer_error};
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
        return Ok(bearer_error(
            StatusCode::BAD_REQUEST,
            Some("invalid_request"),
            "more than one access token was sent",
        ));
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

/// The claims, readable cross-origin only by the origins the token's client registered.
async fn answer(
    state: Data,
    req: &HttpRequest,
    token: Option<String>,
) -> Result<HttpResponse, WebError> {
    let Some(token) = token else {
        return Ok(bearer_error(StatusCode::UNAUTHORIZED, None, ""));
    };
    let origin = cors::origin(req);
    let (verdict, result) = run_conn(&state, move |c, _ctx, now| {
        let verdict = match &origin {
            Some(o) => Some(web_origin::for_access_token(c, o, &token, now)?),
            None => None,
        };
        Ok((verdict, userinfo::userinfo(c, &token, now)))
    })
    .await?;
    if let Some(v) = verdict {
        cors::record(req, v);
    }
    Ok(match result {
        Ok(claims) => HttpResponse::Ok()
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .json(claims),
        Err(UserinfoError::InvalidToken) => bearer_error(
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "the access token is invalid, expired or revoked",
        ),
        Err(UserinfoError::InsufficientScope) => bearer_error(
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "the access token was not issued for openid",
        ),
        Err(UserinfoError::Internal(e)) => return Err(WebError::Internal(e)),
    })
}
