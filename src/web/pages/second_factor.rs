//! The second-factor page (`/login/second-factor`) and passkey answers (`/login/passkey`).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::app::{run, run_conn_as, web_data::Data};
use crate::oauth::authorize::{RequestView, view_of};
use crate::sign_in::passkey_sign_in::{
    self, Begin, Begun, PasskeyAttempt, PasskeyOutcome, Purpose,
};
use crate::sign_in::second_factor::{self, CodeAttempt, CodeOutcome};
use crate::web::context::{ClientOrigin, Meta, SignInForm, Visitor};
use crate::web::errors::{WebError, error_page, expired_form, page_html, script_refusal};
use crate::web::extractors::{self, form_pairs};
use crate::web::redirects::{see_other, signed_in, with_request};
use crate::web::webauthn::{PasskeyForm, csp};

#[derive(Template)]
#[template(path = "pages/second_factor.html")]
struct SecondFactorPage<'a> {
    csrf_token: &'a str,
    request: Option<&'a str>,
    client_name: Option<&'a str>,
    totp: bool,
    passkey: Option<PasskeyForm>,
    alert: Option<&'a str>,
}

struct Shown {
    csrf: String,
    view: RequestView,
    totp: bool,
    passkey: Option<PasskeyForm>,
}

/// Everything the page needs, with a passkey button when the user has passkeys.
async fn prepare(
    state: &Data,
    visitor: Visitor,
    request: Option<String>,
) -> Result<Option<Shown>, WebError> {
    let Some(s) = visitor.0 else {
        return Ok(None);
    };
    Ok(run(state, move |c, ctx, now| {
        let Some(user) = second_factor::subject_user(c, &s, now)? else {
            return Ok(None);
        };
        let factors = second_factor::factors(c, &user.id)?;
        let passkey =
            (ctx.webauthn.is_some() && factors.passkeys > 0).then(PasskeyForm::second_factor);
        Ok(Some(Shown {
            csrf: s.csrf_token().to_string(),
            view: view_of(c, ctx, request.as_deref(), now)?,
            totp: factors.totp,
            passkey,
        }))
    })
    .await?)
}

fn render(
    shown: Shown,
    request: Option<&str>,
    alert: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let script = shown.passkey.is_some();
    let targets: Vec<String> = shown.view.form_target.iter().cloned().collect();
    let body = match page_html(&SecondFactorPage {
        csrf_token: &shown.csrf,
        request,
        client_name: shown.view.client_name.as_deref(),
        totp: shown.totp,
        passkey: shown.passkey,
        alert,
    }) {
        Ok(b) => b,
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp(&targets, script)))
        .body(body)
}

pub async fn show(
    state: Data,
    req: HttpRequest,
    visitor: Visitor,
) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let request = extractors::request_param(&pairs);
    Ok(match prepare(&state, visitor, request.clone()).await? {
        Some(shown) => render(shown, request.as_deref(), None, StatusCode::OK),
        None => see_other(&with_request("/login", request.as_deref())),
    })
}

pub async fn submit(
    state: Data,
    form: SignInForm,
    meta: Meta,
    origin: ClientOrigin,
) -> Result<HttpResponse, WebError> {
    let request = form.request();
    let visitor = Visitor(form.sender.session.clone());
    let attempt = CodeAttempt {
        code: crate::keys::secrets::Secret::new(form.field("code").unwrap_or_default().to_string()),
        sender: form.sender,
        request: request.clone(),
        origin: origin.0,
    };
    let outcome = run_conn_as(&state, meta.0, move |c, ctx, now| {
        second_factor::submit_code(c, ctx, attempt, now)
    })
    .await?;
    let (alert, status, retry_after) = match outcome {
        CodeOutcome::BadCsrf => return Err(WebError::ExpiredForm),
        CodeOutcome::NoSubject => {
            return Ok(see_other(&with_request("/login", request.as_deref())));
        }
        CodeOutcome::Done(landing) => {
            return signed_in(&state, &landing).await;
        }
        CodeOutcome::Failed => (
            "That code is not valid. Check it and try again.".to_string(),
            StatusCode::OK,
            None,
        ),
        CodeOutcome::Throttled { retry_after } => (
            format!(
                "Too many attempts. Try again in {retry_after} second{}.",
                if retry_after == 1 { "" } else { "s" }
            ),
            StatusCode::TOO_MANY_REQUESTS,
            Some(retry_after),
        ),
    };
    let Some(shown) = prepare(&state, visitor, request.clone()).await? else {
        return Ok(see_other(&with_request("/login", request.as_deref())));
    };
    let mut r = render(shown, request.as_deref(), Some(&alert), status);
    if let Some(v) = retry_after.and_then(|s| header::HeaderValue::from_str(&s.to_string()).ok()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    Ok(r)
}

/// A passkey's answer, from the second-factor page or the sign-in page (passwordless).
pub async fn passkey(
    state: Data,
    form: SignInForm,
    meta: Meta,
    origin: ClientOrigin,
) -> Result<HttpResponse, WebError> {
    let request = form.request();
    let visitor = Visitor(form.sender.session.clone());
    let attempt = PasskeyAttempt {
        ceremony: form.field("ceremony").unwrap_or_default().to_string(),
        credential: form.field("credential").unwrap_or_default().to_string(),
        sender: form.sender,
        request: request.clone(),
        origin: origin.0,
    };
    let outcome = run_conn_as(&state, meta.0, move |c, ctx, now| {
        passkey_sign_in::submit_passkey(c, ctx, attempt, now)
    })
    .await?;
    Ok(match outcome {
        PasskeyOutcome::BadCsrf => expired_form(),
        PasskeyOutcome::Unavailable => error_page(
            StatusCode::NOT_FOUND,
            "Passkeys are not available on this server.",
            None,
        ),
        PasskeyOutcome::Done(landing) => signed_in(&state, &landing).await?,
        PasskeyOutcome::Refused(why) => {
            // Back to the page the ceremony came from, with a fresh ceremony and the reason.
            match prepare(&state, visitor, request.clone()).await? {
                Some(shown) => render(
                    shown,
                    request.as_deref(),
                    Some(why),
                    StatusCode::BAD_REQUEST,
                ),
                None => error_page(StatusCode::BAD_REQUEST, why, None),
            }
        }
    })
}

/// webauthn.js asks for a ceremony when the passkey button is used (never earlier).
async fn options(
    state: Data,
    form: Result<SignInForm, WebError>,
    meta: Meta,
    purpose: Purpose,
) -> Result<HttpResponse, WebError> {
    let form = match form {
        Ok(f) => f,
        Err(WebError::Internal(e)) => return Err(WebError::Internal(e)),
        Err(_) => {
            return Ok(script_refusal(
                StatusCode::FORBIDDEN,
                "This request was refused.",
            ));
        }
    };
    let begin = Begin {
        sender: form.sender,
        purpose,
    };
    let begun = run_conn_as(&state, meta.0, move |c, ctx, now| {
        passkey_sign_in::begin(c, ctx, begin, now)
    })
    .await?;
    Ok(match begun {
        Begun::Started(s) => crate::web::webauthn::started(&s)?,
        Begun::BadCsrf => script_refusal(
            StatusCode::FORBIDDEN,
            "This page expired. Reload it and try again.",
        ),
        Begun::Unavailable => script_refusal(
            StatusCode::NOT_FOUND,
            "Passkeys are not available on this server.",
        ),
        Begun::NothingToAnswer => script_refusal(
            StatusCode::CONFLICT,
            "There is no passkey to use here. Sign in again.",
        ),
    })
}

/// `/login/passkey/options`: a passwordless ceremony for the sign-in page.
pub async fn passwordless_options(
    state: Data,
    form: Result<SignInForm, WebError>,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    options(state, form, meta, Purpose::Passwordless).await
}

/// `/login/second-factor/options`: a ceremony for the passkeys of the user at the second step.
pub async fn second_factor_options(
    state: Data,
    form: Result<SignInForm, WebError>,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    options(state, form, meta, Purpose::SecondStep).await
}
