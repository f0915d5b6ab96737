//! The sign-in page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::app::{run, run_conn_as, web_data::Data};
use crate::sign_in::login::{self, Attempt, Outcome, RequestView, view_of};
use crate::sign_in::{passkeys, sessions};
use crate::web::csrf;
use crate::web::errors::{WebError, error_page};
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
    let body = LoginPage {
        csrf_token: r.csrf_token,
        request: r.request,
        client_name: r.view.client_name.as_deref(),
        username: r.username,
        alert: r.alert,
        passkey: r.passkey,
    }
    .render()
    .unwrap_or_default();
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

pub async fn show(state: Data, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let request = field(&pairs, "request").map(str::to_string);
    let cookie = session_cookie::read(&req, &state.config);
    let origin_info = extractors::origin(&req, &state.config);
    let req_id = request.clone();
    let (session, new_cookie, view, passkey) = run(&state, move |c, ctx, now| {
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
        // Passwordless sign-in: any passkey of this site may answer.
        let passkey = match ctx.webauthn {
            Some(wa) => Some(PasskeyForm::sign_in(
                passkeys::begin_discoverable(c, wa, &session.sid, now)?,
                "passkey-login",
                "Sign in with a passkey",
            )),
            None => None,
        };
        Ok((session, new_cookie, view, passkey))
    })
    .await?;
    let cookie = new_cookie.map(|v| session_cookie::set(&state.config, &v));
    let username = view.login_hint.clone().unwrap_or_default();
    Ok(render(
        Render {
            view: &view,
            csrf_token: &session.csrf_token,
            request: request.as_deref(),
            username: &username,
            alert: None,
            status: StatusCode::OK,
            passkey,
        },
        cookie,
    ))
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
    let attempt = Attempt {
        cookie: session_cookie::read(&req, &state.config),
        csrf_token: field(&pairs, "csrf_token").map(str::to_string),
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
        Outcome::SignedIn { cookie, next } => {
            crate::web::redirects::signed_in(&state.config, &cookie, &next)
        }
        Outcome::Failed { view, csrf } => render(
            Render {
                view: &view,
                csrf_token: &csrf,
                request: request.as_deref(),
                username: &username,
                alert: Some("Incorrect username or password."),
                status: StatusCode::OK,
                passkey: None,
            },
            None,
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
                    csrf_token: &csrf,
                    request: request.as_deref(),
                    username: &username,
                    alert: Some(&alert),
                    status: StatusCode::TOO_MANY_REQUESTS,
                    passkey: None,
                },
                None,
            );
            if let Ok(v) = header::HeaderValue::from_str(&retry_after.to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
            r
        }
    })
}
