//! The end-session endpoint (`/logout`, GET and POST) and its confirmation page.

use actix_web::cookie::Cookie;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::app::{run_as, web_data::Data};
use crate::config::Config;
use crate::oidc::logout::{self, LogoutOutcome};
use crate::web::context::{Meta, Visitor};
use crate::web::csrf;
use crate::web::errors::{WebError, error_page, page_html};
use crate::web::extractors::{field, form_pairs, is_form};
use crate::web::session_cookie;

#[derive(Template)]
#[template(path = "pages/logout.html")]
struct ConfirmPage<'a> {
    client_name: Option<&'a str>,
    fields: &'a [(String, String)],
    csrf_token: &'a str,
}

#[derive(Template)]
#[template(path = "pages/signed_out.html")]
struct SignedOutPage;

pub async fn get(
    state: Data,
    req: HttpRequest,
    visitor: Visitor,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    handle(state, visitor, meta, pairs, false).await
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
            "Logout requests by POST must be sent as a form.",
            None,
        ));
    }
    let mut pairs = form_pairs(&body);
    // Our own confirmation form carries `decision` and a CSRF token; an RP's POST does not.
    if pairs.iter().any(|(k, _)| k == "decision") {
        if !csrf::origin_ok(&req, &state.config) {
            return Ok(error_page(
                StatusCode::FORBIDDEN,
                "This form submission was refused.",
                None,
            ));
        }
        if field(&pairs, "decision") != Some("logout") {
            return Ok(error_page(StatusCode::OK, "You are still signed in.", None));
        }
        let presented = field(&pairs, "csrf_token").map(str::to_string);
        pairs.retain(|(k, _)| k != "decision" && k != "csrf_token");
        // A signed-in browser's confirmation must carry its session's token.
        if visitor.0.is_some() && !csrf::token_ok(visitor.0.as_ref(), presented.as_deref()) {
            return Err(WebError::ExpiredForm);
        }
        return handle(state, visitor, meta, pairs, true).await;
    }
    handle(state, visitor, meta, pairs, false).await
}

async fn handle(
    state: Data,
    visitor: Visitor,
    meta: Meta,
    pairs: Vec<(String, String)>,
    confirmed: bool,
) -> Result<HttpResponse, WebError> {
    let csrf = visitor.0.as_ref().map(|s| s.csrf_token().to_string());
    // An `id_token_hint` may be signed by a key another instance just activated.
    crate::web::oidc::discovery::fresh_keys(&state).await?;
    let outcome = run_as(&state, meta.0, move |c, ctx, now| {
        logout::end_session(c, ctx, &pairs, visitor.0.as_deref(), confirmed, now)
    })
    .await?;
    // The confirmation page's form carries the session's token; after it, none is needed.
    let csrf = if confirmed { None } else { csrf };
    Ok(respond(&state, outcome, csrf.as_deref()))
}

fn respond(state: &Data, outcome: LogoutOutcome, csrf: Option<&str>) -> HttpResponse {
    match outcome {
        LogoutOutcome::ErrorPage(m) => error_page(StatusCode::BAD_REQUEST, &m, None),
        LogoutOutcome::Confirm {
            client_name,
            fields,
        } => {
            let body = match page_html(&ConfirmPage {
                client_name: client_name.as_deref(),
                fields: &fields,
                csrf_token: csrf.unwrap_or_default(),
            }) {
                Ok(b) => b,
                Err(e) => return actix_web::ResponseError::error_response(&e),
            };
            HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .body(body)
        }
        LogoutOutcome::Done { redirect, notified } => {
            let signed_out = match redirect {
                Some(_) => String::new(),
                None => match page_html(&SignedOutPage) {
                    Ok(b) => b,
                    Err(e) => return actix_web::ResponseError::error_response(&e),
                },
            };
            if notified {
                state.wakeup.notify_one();
            }
            let mut b = match &redirect {
                Some(uri) => {
                    let mut b = HttpResponse::Found();
                    b.insert_header((header::LOCATION, uri.as_str()));
                    b
                }
                None => HttpResponse::Ok(),
            };
            b.insert_header((header::CACHE_CONTROL, "no-store"))
                .cookie(expired_cookie(&state.config));
            match redirect {
                Some(_) => b.finish(),
                None => b.content_type("text/html; charset=utf-8").body(signed_out),
            }
        }
    }
}

fn expired_cookie(config: &Config) -> Cookie<'static> {
    let mut c = session_cookie::set(config, "");
    c.make_removal();
    c
}
