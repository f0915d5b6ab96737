//! The sign-in page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::app::{run_conn, run_conn_as, web_data::Data};
use crate::oauth::authorize::{RequestView, view_of};
use crate::sign_in::login::{self, Attempt, Outcome};
use crate::web::context::{ClientOrigin, Meta, SignInForm, Visitor};
use crate::web::csrf;
use crate::web::errors::{WebError, error_page, page_html};
use crate::web::extractors::{field, form_pairs};
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
pub async fn show(
    state: Data,
    req: HttpRequest,
    visitor: Visitor,
) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let request = field(&pairs, "request").map(str::to_string);
    let session_token = visitor.0.as_ref().map(|s| s.csrf_token().to_string());
    let req_id = request.clone();
    // Reads only (no transaction): what the page says about the request's client.
    let view = run_conn(&state, move |c, ctx, now| {
        view_of(c, ctx, req_id.as_deref(), now)
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
    form: SignInForm,
    meta: Meta,
    origin: ClientOrigin,
) -> Result<HttpResponse, WebError> {
    let anonymous = csrf::anonymous_form(&req, &state.config, &state.master);
    let attempt = Attempt {
        username: form.field("username").unwrap_or_default().to_string(),
        password: crate::keys::secrets::Secret::new(
            form.field("password").unwrap_or_default().to_string(),
        ),
        request: form.request(),
        sender: form.sender,
        origin: origin.0,
    };
    let username = attempt.username.clone();
    let request = attempt.request.clone();
    let request_id = request.clone();
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
    let (outcome, view) = run_conn_as(&state, meta.0, move |c, ctx, now| {
        let o = login::attempt(c, ctx, attempt, now);
        drop(permit);
        let o = o?;
        // A refused attempt shows the page again, with what it says about the request.
        let view = match &o {
            Outcome::Failed { .. } | Outcome::Throttled { .. } => {
                view_of(c, ctx, request_id.as_deref(), now)?
            }
            _ => RequestView::default(),
        };
        Ok((o, view))
    })
    .await?;
    Ok(match outcome {
        Outcome::BadCsrf => error_page(
            StatusCode::FORBIDDEN,
            "Your sign-in form expired. Go back, reload the page and try again.",
            None,
        ),
        Outcome::SignedIn(landing) => crate::web::redirects::signed_in(&state, &landing).await?,
        Outcome::Failed { csrf } => render(
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
        Outcome::Throttled { retry_after, csrf } => {
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
