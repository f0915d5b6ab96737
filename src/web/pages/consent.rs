//! The consent page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::app::{run_as, web_data::Data};
use crate::oauth::authorize::{self, Outcome};
use crate::oauth::redirect::origin;
use crate::oauth::scope;
use crate::oidc::claims;
use crate::sign_in::sessions;
use crate::web::csrf;
use crate::web::errors::{WebError, error_page};
use crate::web::extractors::{field, form_pairs, is_form};
use crate::web::oauth::authorize::respond;
use crate::web::security_headers::page_csp;
use crate::web::session_cookie;

#[derive(Template)]
#[template(path = "pages/consent.html")]
struct ConsentPage<'a> {
    client_name: &'a str,
    scopes: &'a [(String, &'static str)],
    claims: &'a [(String, &'static str)],
    csrf_token: &'a str,
    request: &'a str,
}

enum Shown {
    Page {
        client_name: String,
        scopes: Vec<(String, &'static str)>,
        claims: Vec<(String, &'static str)>,
        csrf: String,
        target: Option<String>,
    },
    Next(Outcome),
}

pub async fn show(state: Data, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let Some(request) = field(&pairs, "request").map(str::to_string) else {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "The request is missing.",
            None,
        ));
    };
    let cookie = session_cookie::read(&req, &state.config);
    let id = request.clone();
    let shown = run_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| {
            let session = match cookie {
                Some(v) => sessions::current(c, &v, now, &ctx.config.lifetimes)?,
                None => None,
            };
            let signed_in = session.as_ref().filter(|s| s.user_id.is_some());
            let Some(session) = signed_in else {
                return Ok(Shown::Next(authorize::resume(c, ctx, &id, None, now)?));
            };
            match authorize::load(c, ctx, &id, now)? {
                Some((_, v)) => Ok(Shown::Page {
                    client_name: v.client.name.clone(),
                    scopes: v
                        .scopes
                        .iter()
                        .map(|s| (s.clone(), scope::describe(s)))
                        .collect(),
                    claims: v
                        .claims_to_approve()
                        .into_iter()
                        .map(|c| {
                            let words = claims::describe(&c);
                            (c, words)
                        })
                        .collect(),
                    csrf: session.csrf_token.clone(),
                    target: origin(&v.redirect_uri),
                }),
                None => Ok(Shown::Next(authorize::resume(
                    c,
                    ctx,
                    &id,
                    Some(session),
                    now,
                )?)),
            }
        },
    )
    .await?;
    Ok(match shown {
        Shown::Next(o) => respond(&state.config, o),
        Shown::Page {
            client_name,
            scopes,
            claims,
            csrf,
            target,
        } => {
            let body = ConsentPage {
                client_name: &client_name,
                scopes: &scopes,
                claims: &claims,
                csrf_token: &csrf,
                request: &request,
            }
            .render()
            .map_err(crate::web::errors::template_failed)?;
            let targets: Vec<String> = target.into_iter().collect();
            HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .insert_header((header::CONTENT_SECURITY_POLICY, page_csp(&targets, None)))
                .body(body)
        }
    })
}

pub async fn submit(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    if !is_form(&req) || !csrf::origin_ok(&req, &state.config) {
        return Ok(error_page(
            StatusCode::FORBIDDEN,
            "This form submission was refused.",
            None,
        ));
    }
    let pairs = form_pairs(&body);
    let request = field(&pairs, "request").unwrap_or_default().to_string();
    let presented = field(&pairs, "csrf_token").map(str::to_string);
    let allow = match field(&pairs, "decision") {
        Some("allow") => true,
        Some("deny") => false,
        _ => {
            return Ok(error_page(
                StatusCode::BAD_REQUEST,
                "Choose Allow or Deny.",
                None,
            ));
        }
    };
    let cookie = session_cookie::read(&req, &state.config);
    let outcome = run_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| {
            let session = match cookie {
                Some(v) => sessions::current(c, &v, now, &ctx.config.lifetimes)?,
                None => None,
            };
            if !csrf::token_ok(session.as_ref(), presented.as_deref()) {
                return Ok(None);
            }
            match session {
                Some(s) if s.user_id.is_some() => {
                    Ok(Some(authorize::decide(c, ctx, &request, &s, allow, now)?))
                }
                _ => Ok(Some(authorize::resume(c, ctx, &request, None, now)?)),
            }
        },
    )
    .await?;
    Ok(match outcome {
        None => error_page(
            StatusCode::FORBIDDEN,
            "This form expired. Go back, reload the page and try again.",
            None,
        ),
        Some(o) => respond(&state.config, o),
    })
}
