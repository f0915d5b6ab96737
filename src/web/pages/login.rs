//! The sign-in page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::app::{run, run_conn, web_data::Data};
use crate::db;
use crate::oauth::authorize;
use crate::oauth::redirect::origin;
use crate::sign_in::{password, sessions};
use crate::web::csrf;
use crate::web::errors::{WebError, error_page};
use crate::web::extractors::{self, field, form_pairs, is_form};
use crate::web::security_headers::page_csp;
use crate::web::session_cookie;

#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage<'a> {
    csrf_token: &'a str,
    request: Option<&'a str>,
    client_name: Option<&'a str>,
    username: &'a str,
    alert: Option<&'a str>,
}

/// What the page shows about the request it belongs to.
#[derive(Debug, Clone, Default)]
struct RequestView {
    client_name: Option<String>,
    login_hint: Option<String>,
    /// Where the form may lead after sign-in (the client's redirect origin).
    form_target: Option<String>,
}

fn view_of(
    c: &mut db::DbConn,
    ctx: crate::context::Ctx<'_>,
    request: Option<&str>,
    now: chrono::NaiveDateTime,
) -> Result<RequestView, crate::error::InternalError> {
    let Some(id) = request else {
        return Ok(RequestView::default());
    };
    Ok(match authorize::load(c, ctx, id, now)? {
        Some((_, v)) => RequestView {
            client_name: Some(v.client.name.clone()),
            login_hint: v.login_hint.clone(),
            form_target: origin(&v.redirect_uri),
        },
        None => RequestView::default(),
    })
}

fn render(
    view: &RequestView,
    csrf_token: &str,
    request: Option<&str>,
    username: &str,
    alert: Option<&str>,
    status: StatusCode,
    new_cookie: Option<actix_web::cookie::Cookie<'static>>,
) -> HttpResponse {
    let body = LoginPage {
        csrf_token,
        request,
        client_name: view.client_name.as_deref(),
        username,
        alert,
    }
    .render()
    .unwrap_or_default();
    let targets: Vec<String> = view.form_target.iter().cloned().collect();
    let mut b = HttpResponse::build(status);
    b.content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, page_csp(&targets, None)));
    if let Some(c) = new_cookie {
        b.cookie(c);
    }
    b.body(body)
}

pub async fn show(state: Data, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let request = field(&pairs, "request").map(str::to_string);
    let cookie = session_cookie::read(&req, &state.config);
    let origin_info = extractors::origin(&req);
    let req_id = request.clone();
    let (session, new_cookie, view) = run(&state, move |c, ctx, now| {
        let lt = &ctx.config.lifetimes;
        let existing = match cookie {
            Some(v) => sessions::current(c, &v, now, lt)?,
            None => None,
        };
        let (session, new_cookie) = match existing {
            Some(s) => (s, None),
            None => {
                let o = sessions::open_anonymous(c, &origin_info, now, lt)?;
                (o.session, Some(o.cookie))
            }
        };
        let view = view_of(c, ctx, req_id.as_deref(), now)?;
        Ok((session, new_cookie, view))
    })
    .await?;
    let cookie = new_cookie.map(|v| session_cookie::set(&state.config, &v));
    let username = view.login_hint.clone().unwrap_or_default();
    Ok(render(
        &view,
        &session.csrf_token,
        request.as_deref(),
        &username,
        None,
        StatusCode::OK,
        cookie,
    ))
}

enum Submitted {
    SignedIn { cookie: String, next: String },
    Failed { view: RequestView, csrf: String },
    BadCsrf,
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
    let username = field(&pairs, "username").unwrap_or_default().to_string();
    let password_value = field(&pairs, "password").unwrap_or_default().to_string();
    let presented = field(&pairs, "csrf_token").map(str::to_string);
    let request = field(&pairs, "request")
        .map(str::to_string)
        .filter(|r| !r.is_empty());
    let cookie = session_cookie::read(&req, &state.config);
    let origin_info = extractors::origin(&req);
    let user_for_closure = username.clone();
    let req_id = request.clone();
    let outcome = run_conn(&state, move |c, ctx, now| {
        let lt = ctx.config.lifetimes.clone();
        let session = match cookie {
            Some(v) => db::transaction(c, |c| sessions::current(c, &v, now, &lt))?,
            None => None,
        };
        if !csrf::token_ok(session.as_ref(), presented.as_deref()) {
            return Ok(Submitted::BadCsrf);
        }
        let too_long = user_for_closure.len() > 256 || password_value.len() > 4096;
        let checked = if too_long {
            Err(password::BadCredentials)
        } else {
            password::authenticate(c, ctx.dummy_hash, &user_for_closure, &password_value, now)?
        };
        db::transaction(c, |c| match checked {
            Ok(user) => {
                let opened = sessions::sign_in(
                    c,
                    session.as_ref(),
                    &user.id,
                    &["pwd"],
                    &origin_info,
                    now,
                    &lt,
                )?;
                if let Some(id) = &req_id {
                    authorize::signed_in_for(c, id, &opened.session.sid)?;
                }
                let next = match &req_id {
                    Some(id) => format!(
                        "/authorize/resume?{}",
                        url::form_urlencoded::Serializer::new(String::new())
                            .append_pair("request", id)
                            .finish()
                    ),
                    None => "/".to_string(),
                };
                Ok(Submitted::SignedIn {
                    cookie: opened.cookie,
                    next,
                })
            }
            Err(password::BadCredentials) => {
                let view = view_of(c, ctx, req_id.as_deref(), now)?;
                let csrf = session
                    .as_ref()
                    .map(|s| s.csrf_token.clone())
                    .unwrap_or_default();
                Ok(Submitted::Failed { view, csrf })
            }
        })
    })
    .await?;
    Ok(match outcome {
        Submitted::BadCsrf => error_page(
            StatusCode::FORBIDDEN,
            "Your sign-in form expired. Go back, reload the page and try again.",
            None,
        ),
        Submitted::SignedIn { cookie, next } => HttpResponse::SeeOther()
            .cookie(session_cookie::set(&state.config, &cookie))
            .insert_header((header::LOCATION, next))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .finish(),
        Submitted::Failed { view, csrf } => render(
            &view,
            &csrf,
            request.as_deref(),
            &username,
            Some("Incorrect username or password."),
            StatusCode::OK,
            None,
        ),
    })
}
