//! The end-session endpoint (`/logout`, GET and POST) and its confirmation page.

use actix_web::cookie::Cookie;
use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::app::{run_as, web_data::Data};
use crate::config::Config;
use crate::oidc::logout::{self, LogoutOutcome};
use crate::sign_in::sessions;
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

pub async fn get(state: Data, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    handle(state, req, pairs, false).await
}

pub async fn post(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
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
        return confirmed(state, req, pairs, presented).await;
    }
    handle(state, req, pairs, false).await
}

async fn confirmed(
    state: Data,
    req: HttpRequest,
    pairs: Vec<(String, String)>,
    presented: Option<String>,
) -> Result<HttpResponse, WebError> {
    let cookie = session_cookie::read(&req, &state.config);
    let outcome = run_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| {
            let session = match cookie {
                Some(v) => sessions::current(c, &v, now, &ctx.config.lifetimes)?,
                None => None,
            };
            if session.is_some() && !csrf::token_ok(session.as_ref(), presented.as_deref()) {
                return Ok(None);
            }
            Ok(Some(logout::end_session(
                c,
                ctx,
                &pairs,
                session.as_ref(),
                true,
                now,
            )?))
        },
    )
    .await?;
    match outcome {
        None => Ok(error_page(
            StatusCode::FORBIDDEN,
            "This form expired. Go back, reload the page and try again.",
            None,
        )),
        Some(o) => Ok(respond(&state, o, None)),
    }
}

async fn handle(
    state: Data,
    req: HttpRequest,
    pairs: Vec<(String, String)>,
    confirmed: bool,
) -> Result<HttpResponse, WebError> {
    let cookie = session_cookie::read(&req, &state.config);
    let (outcome, csrf) = run_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| {
            let session = match cookie {
                Some(v) => sessions::current(c, &v, now, &ctx.config.lifetimes)?,
                None => None,
            };
            let csrf = session.as_ref().map(|s| s.csrf_token.clone());
            let o = logout::end_session(c, ctx, &pairs, session.as_ref(), confirmed, now)?;
            Ok((o, csrf))
        },
    )
    .await?;
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
