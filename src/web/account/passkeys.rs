//! `/account/passkeys`: list, register and remove passkeys.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;

use crate::account::mfa::{self as uc, PasskeyBegin, PasskeyView};
use crate::app::{run, web_data::Data};
use crate::sign_in::passkeys;
use crate::store::sessions::Session;
use crate::web::account::guarded;
use crate::web::account::mfa::{as_user, continue_request, html, session_of, targets_of};
use crate::web::account::reauth::reauth;
use crate::web::errors::{WebError, script_refusal};
use crate::web::extractors::{field, form_pairs};
use crate::web::redirects::{see_other, with_request};
use crate::web::webauthn::PasskeyForm;

#[derive(Template)]
#[template(path = "pages/account_passkeys.html")]
struct PasskeysPage<'a> {
    passkeys: &'a [PasskeyView],
    register: Option<PasskeyForm>,
    /// Passkeys are available, but the password must be typed again before adding one.
    needs_password: bool,
    csrf_token: &'a str,
    request: Option<&'a str>,
    notice: Option<&'a str>,
    alert: Option<&'a str>,
}

pub(super) async fn page(
    state: &Data,
    session: Session,
    request: Option<String>,
    notice: Option<&str>,
    alert: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let csrf = session.csrf_token.clone();
    let req_id = request.clone();
    let found = run(state, move |c, ctx, now| {
        let Some(u) = uc::user_of(c, &session)? else {
            return Ok(None);
        };
        let list = uc::passkey_views(c, &u.id)?;
        let targets = targets_of(c, ctx, req_id.as_deref(), now)?;
        let recent = crate::account::reauth::recent(ctx, &session, now);
        Ok(Some((list, ctx.webauthn.is_some(), recent, targets)))
    })
    .await?;
    let Some((list, available, recent, targets)) = found else {
        return Ok(see_other("/login"));
    };
    let register = (available && recent).then(PasskeyForm::register);
    let needs_password = available && !recent;
    let script = register.is_some();
    let body = PasskeysPage {
        passkeys: &list,
        register,
        needs_password,
        csrf_token: &csrf,
        request: request.as_deref(),
        notice,
        alert,
    }
    .render()
    .map_err(crate::web::errors::template_failed)?;
    Ok(html(status, body, script, &targets))
}

pub async fn show(state: Data, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let request = crate::web::extractors::request_param(&pairs);
    let notice = match field(&pairs, "done") {
        Some("added") => Some("The passkey was added."),
        Some("removed") => Some("The passkey was removed."),
        _ => None,
    };
    match session_of(&state, &req).await? {
        Some(s) => page(&state, s, request, notice, None, StatusCode::OK).await,
        None => Ok(see_other(&with_request("/login", request.as_deref()))),
    }
}

/// `/account/passkeys/options`: webauthn.js asks for a registration ceremony when the button
/// is used.
pub async fn options(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let session = match guarded(&state, &req, &body).await? {
        Ok((session, _)) => session,
        Err(_) => {
            return Ok(script_refusal(
                StatusCode::FORBIDDEN,
                "This page expired. Reload it and try again.",
            ));
        }
    };
    let s = session.clone();
    let begun = as_user(&state, &req, &session, move |c, ctx, u, now| {
        uc::passkey_begin(c, ctx, u, &s, now)
    })
    .await?;
    Ok(match begun {
        Some(PasskeyBegin::Started(started)) => crate::web::webauthn::started(&started)?,
        Some(PasskeyBegin::Unavailable) => script_refusal(
            StatusCode::NOT_FOUND,
            "Passkeys are not available on this server.",
        ),
        Some(PasskeyBegin::NeedsPassword) => script_refusal(
            StatusCode::FORBIDDEN,
            "Type your password again first: reload the page.",
        ),
        None => script_refusal(StatusCode::FORBIDDEN, "You are not signed in."),
    })
}

pub async fn register(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (session, pairs) = match guarded(&state, &req, &body).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    let request = crate::web::extractors::request_param(&pairs);
    let ceremony = field(&pairs, "ceremony").unwrap_or_default().to_string();
    let credential = field(&pairs, "credential").unwrap_or_default().to_string();
    let name = field(&pairs, "name").unwrap_or_default().to_string();
    let s = session.clone();
    let outcome = as_user(&state, &req, &session, move |c, ctx, u, now| {
        let answer = passkeys::Answer {
            ceremony: &ceremony,
            credential: &credential,
        };
        uc::passkey_finish(c, ctx, u, &s, answer, &name, now)
    })
    .await?
    .unwrap_or(Err("You are not signed in."));
    match (outcome, request) {
        (Ok(row), Some(r)) => {
            continue_request(&state, &req, session, passkeys::method(&row), r).await
        }
        (Ok(_), None) => Ok(see_other("/account/passkeys?done=added")),
        (Err(why), request) => {
            page(
                &state,
                session,
                request,
                None,
                Some(why),
                StatusCode::BAD_REQUEST,
            )
            .await
        }
    }
}

pub async fn remove(
    state: Data,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, WebError> {
    let (session, pairs) = match guarded(&state, &req, &body).await? {
        Ok(x) => x,
        Err(r) => return Ok(r),
    };
    if let Err(why) = reauth(&state, &req, &session, &pairs).await? {
        let answer = page(
            &state,
            session,
            None,
            None,
            Some(&why.message),
            why.status(),
        )
        .await?;
        return Ok(why.answer(answer));
    }
    let id = field(&pairs, "id").unwrap_or_default().to_string();
    let removed = as_user(&state, &req, &session, move |c, ctx, u, now| {
        uc::passkey_remove(c, ctx, u, &id, now)
    })
    .await?
    .unwrap_or(Err("You are not signed in."));
    match removed {
        Ok(()) => Ok(see_other("/account/passkeys?done=removed")),
        Err(why) => page(&state, session, None, None, Some(why), StatusCode::CONFLICT).await,
    }
}
