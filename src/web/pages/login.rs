//! The sign-in page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::app::{run_conn, run_conn_as, web_data::Data};
use crate::sign_in::login::{self, Attempt, Outcome, RequestView, view_of};
use crate::sign_in::sessions;
use crate::web::csrf;
use crate::web::errors::{WebError, error_page, page_html};
use crate::web::extractors::{self, field, form_pairs, is_form};
use crate::web::session_cookie;
use crate::web::webauthn::{PasskeyForm, csp};

#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage<'a> {
    csrf_token: &'a str,
    request: Option<&'a str>,
    client_name: Option<&'a str>,
    username: &'a str,
    alert: Option<&'a str>,
    passkey: Option<PasskeyForm>,
}

struct Render<'a> {
    view: &'a RequestView,
    csrf_token: &'a str,
    request: Option<&'a str>,
    username: &'a str,
    alert: Option<&'a str>,
    status: StatusCode,
    passkey: Option<PasskeyForm>,
}

fn render(r: Render<'_>, new_cookie: Option<actix_web::cookie::Cookie<'static>>) -> HttpResponse {
    let script = r.passkey.is_some();
    let body = match page_html(&LoginPage {
        csrf_token: r.csrf_token,
        request: r.request,
        client_name: r.view.client_name.as_deref(),
        username: r.username,
        alert: r.alert,
        passkey: r.passkey,
    }) {
        Ok(b) => b,
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    let targets: Vec<String> = r.view.form_target.iter().cloned().collect();
    let mut b = HttpResponse::build(r.status);
    b.content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp(&targets, script)));
    if let Some(c) = new_cookie {
        b.cookie(c);
    }
    b.body(body)
}

/// The sign-in page. Viewing it writes nothing: an anonymous visitor's form token is signed
/// and tied to a cookie rather than stored, and no passkey ceremony begins until its button
/// asks for one.
pub async fn show(state: Data, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let request = field(&pairs, "request").map(str::to_string);
    let cookie = session_cookie::read(&req, &state.config);
    let req_id = request.clone();
    // Reads only (no transaction): a live session's token, and the request's client.
    let (session_token, view) = run_conn(&state, move |c, ctx, now| {
        let session_token = match cookie {
            Some(v) => sessions::current(c, &v, now, &ctx.config.lifetimes)?.map(|s| s.csrf_token),
            None => None,
        };
        Ok((session_token, view_of(c, ctx, req_id.as_deref(), now)?))
    })
    .await?;
    let anonymous = csrf::anonymous_form(&req, &state.config, &state.master);
    let username = view.login_hint.clone().unwrap_or_default();
    Ok(render(
        Render {
            view: &view,
            csrf_token: session_token.as_deref().unwrap_or(&anonymous.token),
            request: request.as_deref(),
            username: &username,
            alert: None,
            status: StatusCode::OK,
            passkey: passkey_button(&state),
        },
        anonymous.new_cookie,
    ))
}

/// Passwordless sign-in: any passkey of this site may answer (when the issuer can be an RP).
fn passkey_button(state: &Data) -> Option<PasskeyForm> {
    state.webauthn.is_some().then(PasskeyForm::passwordless)
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
    let csrf_token = field(&pairs, "csrf_token").map(str::to_string);
    let anonymous = csrf::anonymous_form(&req, &state.config, &state.master);
    let attempt = Attempt {
        cookie: session_cookie::read(&req, &state.config),
        anonymous_ok: csrf::anonymous_visitor(
            &req,
            &state.config,
            &state.master,
            csrf_token.as_deref(),
        )
        .is_some(),
        csrf_token,
        username: field(&pairs, "username").unwrap_or_default().to_string(),
        password: crate::keys::secrets::Secret::new(
            field(&pairs, "password").unwrap_or_default().to_string(),
        ),
        request: extractors::request_param(&pairs),
        origin: extractors::origin(&req, &state.config),
    };
    let username = attempt.username.clone();
    let request = attempt.request.clone();
    // Each Argon2 verification needs ~19 MiB and a core for tens of milliseconds: run about one
    // per core, and let a flood wait briefly, then answer 503 rather than queue without bound.
    let permit = match tokio::time::timeout(
        std::time::Duration::from_secs(2),
        state.argon2_permits.clone().acquire_owned(),
    )
    .await
    {
        Ok(Ok(p)) => p,
        _ => {
            let mut r = error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The sign-in service is busy. Please try again in a moment.",
                None,
            );
            r.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return Ok(r);
        }
    };
    let outcome = run_conn_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| {
            let o = login::attempt(c, ctx, attempt, now);
            drop(permit);
            o
        },
    )
    .await?;
    Ok(match outcome {
        Outcome::BadCsrf => error_page(
            StatusCode::FORBIDDEN,
            "Your sign-in form expired. Go back, reload the page and try again.",
            None,
        ),
        Outcome::SignedIn(landing) => crate::web::redirects::signed_in(&state.config, &landing),
        Outcome::Failed { view, csrf } => render(
            Render {
                view: &view,
                csrf_token: csrf.as_deref().unwrap_or(&anonymous.token),
                request: request.as_deref(),
                username: &username,
                alert: Some("Incorrect username or password."),
                status: StatusCode::OK,
                passkey: passkey_button(&state),
            },
            anonymous.new_cookie,
        ),
        Outcome::Throttled {
            retry_after,
            view,
            csrf,
        } => {
            let alert = format!(
                "Too many attempts. Try again in {retry_after} second{}.",
                if retry_after == 1 { "" } else { "s" }
            );
            let mut r = render(
                Render {
                    view: &view,
                    csrf_token: csrf.as_deref().unwrap_or(&anonymous.token),
                    request: request.as_deref(),
                    username: &username,
                    alert: Some(&alert),
                    status: StatusCode::TOO_MANY_REQUESTS,
                    passkey: passkey_button(&state),
                },
                anonymous.new_cookie,
            );
            if let Ok(v) = header::HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    })
}
