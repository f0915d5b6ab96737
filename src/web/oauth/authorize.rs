//! `/authorize` (GET and POST) and `/authorize/resume`.

use actix_web::http::StatusCode;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest, Sha256};

use crate::app::{run_as, web_data::Data};
use crate::config::Config;
use crate::oauth::authorize::{self, Outcome};
use crate::oauth::redirect::{AuthResponse, origin};
use crate::web::context::{Meta, Visitor};
use crate::web::errors::{WebError, error_page, page_html, too_many_page};
use crate::web::extractors::{field, form_pairs, is_form};
use crate::web::security_headers::page_csp;

pub async fn get(
    state: Data,
    req: HttpRequest,
    visitor: Visitor,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    start(state, visitor, meta, pairs).await
}

pub async fn post(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
    visitor: Visitor,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    if !is_form(&req) {
        return Ok(error_page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Authorization requests by POST must be sent as a form.",
            None,
        ));
    }
    let pairs = form_pairs(&body);
    start(state, visitor, meta, pairs).await
}

async fn start(
    state: Data,
    visitor: Visitor,
    meta: Meta,
    pairs: Vec<(String, String)>,
) -> Result<HttpResponse, WebError> {
    let outcome = run_as(&state, meta.0, move |c, ctx, now| {
        authorize::start(c, ctx, &pairs, visitor.0.as_deref(), now)
    })
    .await?;
    Ok(respond(&state.config, outcome))
}

/// Continues a parked request after the sign-in page.
pub async fn resume(
    state: Data,
    req: HttpRequest,
    visitor: Visitor,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let Some(request_id) = field(&pairs, "request").map(str::to_string) else {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "The request is missing.",
            None,
        ));
    };
    let outcome = run_as(&state, meta.0, move |c, ctx, now| {
        authorize::resume(c, ctx, &request_id, visitor.0.as_deref(), now)
    })
    .await?;
    Ok(respond(&state.config, outcome))
}

/// Turns the use case's decision into HTTP.
pub fn respond(config: &Config, outcome: Outcome) -> HttpResponse {
    match outcome {
        Outcome::ErrorPage(m) => error_page(StatusCode::BAD_REQUEST, &m, None),
        Outcome::Respond(r) if r.form_post => form_post(&r),
        Outcome::Respond(r) => HttpResponse::Found()
            .insert_header((header::LOCATION, r.location()))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Outcome::Login { request_id } => redirect_local(config, "/login", &request_id),
        Outcome::Consent { request_id } => redirect_local(config, "/consent", &request_id),
        Outcome::SecondFactor { request_id } => {
            redirect_local(config, "/login/second-factor", &request_id)
        }
        Outcome::Enrol { request_id } => redirect_local(config, "/account/totp", &request_id),
        Outcome::Busy { retry_after } => too_many_page(retry_after),
        Outcome::PasswordExpired => HttpResponse::Found()
            .insert_header((header::LOCATION, "/account?done=expired"))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
    }
}

fn redirect_local(_config: &Config, path: &str, request_id: &str) -> HttpResponse {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("request", request_id)
        .finish();
    HttpResponse::Found()
        .insert_header((header::LOCATION, format!("{path}?{q}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

const FORM_POST_SCRIPT: &str = "document.forms[0].submit();";

#[derive(Template)]
#[template(path = "pages/form_post.html")]
struct FormPost<'a> {
    action: &'a str,
    params: &'a [(String, String)],
    script: &'a str,
}

/// `response_mode=form_post`: an auto-submitting form (its one inline script allowed by hash).
fn form_post(r: &AuthResponse) -> HttpResponse {
    let hash = format!(
        "sha256-{}",
        STANDARD.encode(Sha256::digest(FORM_POST_SCRIPT.as_bytes()))
    );
    let targets: Vec<String> = origin(&r.redirect_uri).into_iter().collect();
    let csp = page_csp(&targets, Some(&hash));
    let body = match page_html(&FormPost {
        action: &r.redirect_uri,
        params: &r.params,
        script: FORM_POST_SCRIPT,
    }) {
        Ok(b) => b,
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .body(body)
}
