//! `/account`: the signed-in user's sessions, connected applications and password.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::account::{self, Overview, PasswordOutcome};
use crate::app::{run, run_as, run_conn_as, web_data::Data};
use crate::keys::secrets::Secret;
use crate::sign_in::sessions;
use crate::store::sessions::Session;
use crate::web::csrf;
use crate::web::errors::{WebError, error_page, page_html};
use crate::web::extractors::{self, field, form_pairs, is_form};
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

pub async fn show(state: Data, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let notice = notice_text(field(&pairs, "done"));
    let cookie = session_cookie::read(&req, &state.config);
    let found = run_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| {
            let Some(v) = cookie else { return Ok(None) };
            let Some(s) = sessions::current(c, &v, now, &ctx.config.lifetimes)? else {
                return Ok(None);
            };
            Ok(account::overview(c, ctx, &s, now)?.map(|o| (o, s.csrf_token)))
        },
    )
    .await?;
    Ok(match found {
        Some((o, csrf)) => page(&o, &csrf, notice, None, StatusCode::OK),
        None => to_login(),
    })
}

/// The account page again, with an alert (after a refused change).
pub(crate) async fn show_with_alert(
    state: &Data,
    req: &HttpRequest,
    session: Session,
    alert: &str,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let csrf = session.csrf_token.clone();
    let o = run_as(
        state,
        crate::web::extractors::meta(req, &state.config),
        move |c, ctx, now| account::overview(c, ctx, &session, now),
    )
    .await?;
    Ok(match o {
        Some(o) => page(&o, &csrf, None, Some(alert), status),
        None => to_login(),
    })
}

/// Checks origin, form and CSRF token; returns the signed-in session and the form.
pub(crate) async fn guarded(
    state: &Data,
    req: &HttpRequest,
    body: &web::Bytes,
) -> Result<Result<(Session, Vec<(String, String)>), HttpResponse>, WebError> {
    if !is_form(req) || !csrf::origin_ok(req, &state.config) {
        return Ok(Err(error_page(
            StatusCode::FORBIDDEN,
            "This form submission was refused.",
            None,
        )));
    }
    let pairs = form_pairs(body);
    let presented = field(&pairs, "csrf_token").map(str::to_string);
    let cookie = session_cookie::read(req, &state.config);
    let session = run(state, move |c, ctx, now| match cookie {
        Some(v) => sessions::current(c, &v, now, &ctx.config.lifetimes),
        None => Ok(None),
    })
    .await?;
    let Some(session) = session.filter(|s| s.user_id.is_some()) else {
        return Ok(Err(to_login()));
    };
    if !csrf::token_ok(Some(&session), presented.as_deref()) {
        return Ok(Err(error_page(
            StatusCode::FORBIDDEN,
            "This form expired. Go back, reload the page and try again.",
            None,
        )));
    }
    Ok(Ok((session, pairs)))
}

pub async fn password(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (session, pairs) = match guarded(&state, &req, &body).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    // Redacted in Debug, wiped when dropped.
    let current = Secret::new(
        field(&pairs, "current_password")
            .unwrap_or_default()
            .to_string(),
    );
    let new = Secret::new(
        field(&pairs, "new_password")
            .unwrap_or_default()
            .to_string(),
    );
    let remove_recent_factors = field(&pairs, "remove_recent_factors").is_some();
    let origin = extractors::origin(&req, &state.config);
    let permit = crate::app::argon2_permit(&state).await?;
    let s = session.clone();
    let outcome = run_conn_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| {
            let change = account::PasswordChange {
                current: current.expose(),
                new: new.expose(),
                remove_recent_factors,
            };
            let o = account::change_password(c, ctx, &s, change, &origin, now);
            drop(permit);
            o
        },
    )
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
    let csrf = session.csrf_token.clone();
    let o = run_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| account::overview(c, ctx, &session, now),
    )
    .await?;
    Ok(match o {
        Some(o) => alert.answer(page(&o, &csrf, None, Some(&alert.message), alert.status())),
        None => to_login(),
    })
}

pub async fn revoke_session(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (session, pairs) = match guarded(&state, &req, &body).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let sid = field(&pairs, "sid").unwrap_or_default().to_string();
    let current = sid == session.sid;
    let notified = run_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| account::revoke_session(c, ctx, &session, &sid, now),
    )
    .await?;
    if notified {
        state.wakeup.notify_one();
    }
    Ok(if current { to_login() } else { back("session") })
}

pub async fn revoke_others(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (session, _) = match guarded(&state, &req, &body).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let notified = run_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| account::revoke_other_sessions(c, ctx, &session, now),
    )
    .await?;
    if notified {
        state.wakeup.notify_one();
    }
    Ok(back("others"))
}

pub async fn revoke_app(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (session, pairs) = match guarded(&state, &req, &body).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let client_id = field(&pairs, "client_id").unwrap_or_default().to_string();
    run_as(
        &state,
        crate::web::extractors::meta(&req, &state.config),
        move |c, ctx, now| account::revoke_app(c, ctx, &session, &client_id, now),
    )
    .await?;
    Ok(back("app"))
}
