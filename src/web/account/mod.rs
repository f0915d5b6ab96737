//! `/account`: the signed-in user's sessions, connected applications and password.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::account::{self, Overview, PasswordOutcome};
use crate::app::{run_as, run_conn_as, web_data::Data};
use crate::keys::secrets::Secret;
use crate::sign_in::sessions::BrowserSession;
use crate::web::context::{ClientOrigin, Meta, SignedIn, SignedInForm};
use crate::web::errors::{WebError, page_html};
use crate::web::extractors::{field, form_pairs};
use crate::web::session_cookie;

pub mod mfa;
pub mod passkeys;
pub mod reauth;

#[derive(Template)]
#[template(path = "pages/account.html")]
struct AccountPage<'a> {
    o: &'a Overview,
    csrf_token: &'a str,
    notice: Option<&'a str>,
    alert: Option<&'a str>,
}

fn page(
    o: &Overview,
    csrf: &str,
    notice: Option<&str>,
    alert: Option<&str>,
    status: StatusCode,
) -> HttpResponse {
    let body = match page_html(&AccountPage {
        o,
        csrf_token: csrf,
        notice,
        alert,
    }) {
        Ok(b) => b,
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

fn to_login() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, "/login"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn back(notice: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, format!("/account?done={notice}")))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

fn notice_text(code: Option<&str>) -> Option<&'static str> {
    match code? {
        "password" => Some("Your password was changed. Every other session was signed out."),
        "password-factors" => Some(
            "Your password was changed, every other session was signed out, and the second factors recently added were removed.",
        ),
        "session" => Some("The session was signed out."),
        "others" => Some("Every other session was signed out."),
        "app" => Some("The application was disconnected."),
        "totp" => Some("Your authenticator app is set up. Consider creating recovery codes too."),
        "totp-removed" => Some("The authenticator app was removed."),
        "recovery-removed" => Some("Your recovery codes were removed."),
        "expired" => Some(
            "Your password has expired. Choose a new one below, then return to the application.",
        ),
        _ => None,
    }
}

pub async fn show(
    state: Data,
    req: HttpRequest,
    who: SignedIn,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let notice = notice_text(field(&pairs, "done"));
    let session = who.session;
    let csrf = session.csrf_token().to_string();
    let o = run_as(&state, meta.0, move |c, ctx, now| {
        account::overview(c, ctx, &session, now)
    })
    .await?;
    Ok(match o {
        Some(o) => page(&o, &csrf, notice, None, StatusCode::OK),
        None => to_login(),
    })
}

/// The account page again, with an alert (after a refused change).
pub(crate) async fn show_with_alert(
    state: &Data,
    meta: Meta,
    session: BrowserSession,
    alert: &str,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let csrf = session.csrf_token().to_string();
    let o = run_as(state, meta.0, move |c, ctx, now| {
        account::overview(c, ctx, &session, now)
    })
    .await?;
    Ok(match o {
        Some(o) => page(&o, &csrf, None, Some(alert), status),
        None => to_login(),
    })
}

pub async fn password(
    state: Data,
    form: SignedInForm,
    meta: Meta,
    origin: ClientOrigin,
) -> Result<HttpResponse, WebError> {
    // Redacted in Debug, wiped when dropped.
    let current = Secret::new(
        form.field("current_password")
            .unwrap_or_default()
            .to_string(),
    );
    let new = Secret::new(form.field("new_password").unwrap_or_default().to_string());
    let remove_recent_factors = form.field("remove_recent_factors").is_some();
    let origin = origin.0;
    let permit = crate::app::argon2_permit(&state).await?;
    let session = form.who.session;
    let s = session.clone();
    let outcome = run_conn_as(&state, meta.0.clone(), move |c, ctx, now| {
        let change = account::PasswordChange {
            current: current.expose(),
            new: new.expose(),
            remove_recent_factors,
        };
        let o = account::change_password(c, ctx, &s, change, &origin, now);
        drop(permit);
        o
    })
    .await?;
    let alert = match outcome {
        PasswordOutcome::Changed {
            opened,
            removed_recent,
        } => {
            let done = match removed_recent {
                true => "/account?done=password-factors",
                false => "/account?done=password",
            };
            return Ok(HttpResponse::SeeOther()
                .cookie(session_cookie::set(&state.config, &opened.cookie))
                .insert_header((header::LOCATION, done))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish());
        }
        PasswordOutcome::WrongCurrent => reauth::Refused::wrong(),
        PasswordOutcome::Throttled(s) => reauth::Refused::throttled(s),
        PasswordOutcome::Refused(m) => reauth::Refused {
            message: format!("The new password was refused: {m}."),
            retry_after: None,
        },
    };
    let page = show_with_alert(&state, meta, session, &alert.message, alert.status()).await?;
    Ok(alert.answer(page))
}

pub async fn revoke_session(
    state: Data,
    form: SignedInForm,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    let sid = form.field("sid").unwrap_or_default().to_string();
    let session = form.who.session;
    let current = sid == session.sid();
    let notified = run_as(&state, meta.0, move |c, ctx, now| {
        account::revoke_session(c, ctx, &session, &sid, now)
    })
    .await?;
    if notified {
        state.wakeup.notify_one();
    }
    Ok(if current { to_login() } else { back("session") })
}

pub async fn revoke_others(
    state: Data,
    form: SignedInForm,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    let session = form.who.session;
    let notified = run_as(&state, meta.0, move |c, ctx, now| {
        account::revoke_other_sessions(c, ctx, &session, now)
    })
    .await?;
    if notified {
        state.wakeup.notify_one();
    }
    Ok(back("others"))
}

pub async fn revoke_app(
    state: Data,
    form: SignedInForm,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    let client_id = form.field("client_id").unwrap_or_default().to_string();
    let session = form.who.session;
    run_as(&state, meta.0, move |c, ctx, now| {
        account::revoke_app(c, ctx, &session, &client_id, now)
    })
    .await?;
    Ok(back("app"))
}
