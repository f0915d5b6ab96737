//! The consent page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::app::{run_as, web_data::Data};
use crate::oauth::authorize::{self, Outcome};
use crate::oauth::redirect::origin;
use crate::oidc::claims;
use crate::protocol::scope;
use crate::web::context::{Meta, PostedForm, Visitor};
use crate::web::csrf;
use crate::web::errors::{WebError, error_page};
use crate::web::extractors::{field, form_pairs};
use crate::web::oauth::authorize::respond;
use crate::web::security_headers::page_csp;

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

pub async fn show(
    state: Data,
    req: HttpRequest,
    visitor: Visitor,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let Some(request) = field(&pairs, "request").map(str::to_string) else {
        return Ok(error_page(
            StatusCode::BAD_REQUEST,
            "The request is missing.",
            None,
        ));
    };
    let id = request.clone();
    let shown = run_as(&state, meta.0, move |c, ctx, now| {
        let Some(session) = visitor.signed_in() else {
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
                csrf: session.csrf_token().to_string(),
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
    })
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
    form: PostedForm,
    visitor: Visitor,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    let pairs = form.0;
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
    if !csrf::token_ok(visitor.0.as_ref(), presented.as_deref()) {
        return Err(WebError::ExpiredForm);
    }
    let outcome = run_as(&state, meta.0, move |c, ctx, now| {
        match visitor.signed_in() {
            Some(s) => authorize::decide(c, ctx, &request, s, allow, now),
            None => authorize::resume(c, ctx, &request, None, now),
        }
    })
    .await?;
    Ok(respond(&state.config, outcome))
}
