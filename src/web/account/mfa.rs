//! `/account/totp` and `/account/recovery-codes`, and what the second-factor pages of the
//! account share (see `passkeys.rs` for `/account/passkeys`).

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::account::mfa::{self as uc, TotpConfirm, TotpView};
use chrono::NaiveDateTime;

use crate::account::mfa::{AccountUser, Removal};
use crate::app::{run, run_as, web_data::Data};
use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::sign_in::second_factor;
use crate::sign_in::sessions::BrowserSession;
use crate::web::account::reauth::reauth;
use crate::web::account::show_with_alert;
use crate::web::context::{ClientOrigin, Meta, SignedInForm, Visitor};
use crate::web::errors::WebError;
use crate::web::extractors::{self, form_pairs};
use crate::web::redirects::{see_other, signed_in, with_request};
use crate::web::webauthn::csp;

#[derive(Template)]
#[template(path = "pages/account_totp.html")]
struct TotpPage<'a> {
    view: &'a TotpView,
    csrf_token: &'a str,
    request: Option<&'a str>,
    alert: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "pages/account_recovery_codes.html")]
struct RecoveryCodesPage<'a> {
    codes: &'a [String],
}

pub(super) fn html(
    status: StatusCode,
    body: String,
    script: bool,
    targets: &[String],
) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::CONTENT_SECURITY_POLICY, csp(targets, script)))
        .body(body)
}

/// When enrolling on the way to an application, the form leads on to its redirect origin.
pub(super) fn targets_of(
    c: &mut crate::db::DbConn,
    ctx: crate::context::Ctx<'_>,
    request: Option<&str>,
    now: chrono::NaiveDateTime,
) -> Result<Vec<String>, crate::error::InternalError> {
    Ok(crate::oauth::authorize::view_of(c, ctx, request, now)?
        .form_target
        .into_iter()
        .collect())
}

/// Runs a use case for the session's user, audited with the request's origin; `None` when the
/// session has no (enabled) user any more.
pub(super) async fn as_user<T, F>(
    state: &Data,
    meta: &Meta,
    session: &BrowserSession,
    f: F,
) -> Result<Option<T>, WebError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, Ctx<'_>, &AccountUser, NaiveDateTime) -> Result<T, InternalError>
        + Send
        + 'static,
{
    let s = session.clone();
    Ok(run_as(
        state,
        meta.0.clone(),
        move |c, ctx, now| match uc::user_of(c, &s)? {
            Some(u) => f(c, ctx, &u, now).map(Some),
            None => Ok(None),
        },
    )
    .await?)
}

/// After enrolling on the way to an application: the session now has two factors.
pub(super) async fn continue_request(
    state: &Data,
    meta: Meta,
    origin: ClientOrigin,
    session: BrowserSession,
    method: &'static str,
    request: String,
) -> Result<HttpResponse, WebError> {
    let origin = origin.0;
    let done = run_as(state, meta.0, move |c, ctx, now| {
        let Some(user) = uc::user_of(c, &session)? else {
            return Ok(None);
        };
        second_factor::complete(
            c,
            ctx,
            Some(&session),
            &user,
            &[method],
            Some(&request),
            &origin,
            now,
        )
        .map(Some)
    })
    .await?;
    Ok(match done {
        Some(landing) => signed_in(state, &landing).await?,
        None => see_other("/login"),
    })
}

pub(super) async fn totp_page(
    state: &Data,
    session: BrowserSession,
    request: Option<String>,
    alert: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let csrf = session.csrf_token().to_string();
    let req_id = request.clone();
    let view = run(state, move |c, ctx, now| match uc::user_of(c, &session)? {
        Some(u) => Ok(Some((
            uc::totp_view(c, ctx, &u, &session, now)?,
            targets_of(c, ctx, req_id.as_deref(), now)?,
        ))),
        None => Ok(None),
    })
    .await?;
    let Some((view, targets)) = view else {
        return Ok(see_other("/login"));
    };
    let body = TotpPage {
        view: &view,
        csrf_token: &csrf,
        request: request.as_deref(),
        alert,
    }
    .render()
    .map_err(crate::web::errors::template_failed)?;
    Ok(html(status, body, false, &targets))
}

pub async fn totp_show(
    state: Data,
    req: HttpRequest,
    visitor: Visitor,
) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let request = extractors::request_param(&pairs);
    match visitor.signed_in() {
        Some(s) => totp_page(&state, s.clone(), request, None, StatusCode::OK).await,
        None => Ok(see_other(&with_request("/login", request.as_deref()))),
    }
}

pub async fn totp_confirm(
    state: Data,
    form: SignedInForm,
    meta: Meta,
    origin: ClientOrigin,
) -> Result<HttpResponse, WebError> {
    let request = form.request();
    let code = form.field("code").unwrap_or_default().to_string();
    let session = form.who.session;
    let s = session.clone();
    let confirmed = as_user(&state, &meta, &session, move |c, ctx, u, now| {
        uc::totp_confirm(c, ctx, u, &s, &code, now)
    })
    .await?;
    let (alert, status) = match confirmed {
        Some(TotpConfirm::Enrolled) => {
            return match request {
                Some(r) => continue_request(&state, meta, origin, session, "otp", r).await,
                None => Ok(see_other("/account?done=totp")),
            };
        }
        Some(TotpConfirm::NeedsPassword) => (
            "Type your password again to finish setting up the app.",
            StatusCode::FORBIDDEN,
        ),
        Some(TotpConfirm::WrongCode) | None => (
            "That code is not valid. Enter the current code from your app.",
            StatusCode::BAD_REQUEST,
        ),
    };
    totp_page(&state, session, request, Some(alert), status).await
}

pub async fn totp_remove(
    state: Data,
    form: SignedInForm,
    meta: Meta,
    origin: ClientOrigin,
) -> Result<HttpResponse, WebError> {
    let session = form.session().clone();
    if let Some(why) = reauth(&state, &meta, origin, &form).await? {
        let page = totp_page(&state, session, None, Some(&why.message), why.status()).await?;
        return Ok(why.answer(page));
    }
    match as_user(&state, &meta, &session, uc::totp_remove).await? {
        None => Ok(see_other("/login")),
        Some(Removal::Removed) => Ok(see_other("/account?done=totp-removed")),
        Some(Removal::Refused(why)) => {
            totp_page(&state, session, None, Some(why), StatusCode::CONFLICT).await
        }
    }
}

pub async fn recovery_codes(
    state: Data,
    form: SignedInForm,
    meta: Meta,
    origin: ClientOrigin,
) -> Result<HttpResponse, WebError> {
    let session = form.session().clone();
    if let Some(why) = reauth(&state, &meta, origin, &form).await? {
        let page = show_with_alert(&state, meta, session, &why.message, why.status()).await?;
        return Ok(why.answer(page));
    }
    let codes = as_user(&state, &meta, &session, uc::recovery_regenerate).await?;
    let Some(codes) = codes else {
        return Ok(see_other("/login"));
    };
    let body = RecoveryCodesPage { codes: &codes }
        .render()
        .map_err(crate::web::errors::template_failed)?;
    Ok(html(StatusCode::OK, body, false, &[]))
}

pub async fn recovery_codes_remove(
    state: Data,
    form: SignedInForm,
    meta: Meta,
    origin: ClientOrigin,
) -> Result<HttpResponse, WebError> {
    let session = form.session().clone();
    if let Some(why) = reauth(&state, &meta, origin, &form).await? {
        let page = show_with_alert(&state, meta, session, &why.message, why.status()).await?;
        return Ok(why.answer(page));
    }
    match as_user(&state, &meta, &session, uc::recovery_remove).await? {
        None => Ok(see_other("/login")),
        Some(Removal::Removed) => Ok(see_other("/account?done=recovery-removed")),
        Some(Removal::Refused(why)) => {
            show_with_alert(&state, meta, session, why, StatusCode::BAD_REQUEST).await
        }
    }
}
