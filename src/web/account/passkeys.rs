//! `/account/passkeys`: list, register and remove passkeys.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::account::mfa::{self as uc, PasskeyBegin, PasskeyView, Removal};
use crate::app::{run, web_data::Data};
use crate::sign_in::passkeys::{self, Registration};
use crate::sign_in::sessions::BrowserSession;
use crate::web::account::mfa::{as_user, continue_request, html, targets_of};
use crate::web::account::reauth::reauth;
use crate::web::context::{ClientOrigin, Meta, SignedInForm, Visitor};
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
    session: BrowserSession,
    request: Option<String>,
    notice: Option<&str>,
    alert: Option<&str>,
    status: StatusCode,
) -> Result<HttpResponse, WebError> {
    let csrf = session.csrf_token().to_string();
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

pub async fn show(
    state: Data,
    req: HttpRequest,
    visitor: Visitor,
) -> Result<HttpResponse, WebError> {
    let pairs = form_pairs(req.query_string().as_bytes());
    let request = crate::web::extractors::request_param(&pairs);
    let notice = match field(&pairs, "done") {
        Some("added") => Some("The passkey was added."),
        Some("removed") => Some("The passkey was removed."),
        _ => None,
    };
    match visitor.signed_in() {
        Some(s) => page(&state, s.clone(), request, notice, None, StatusCode::OK).await,
        None => Ok(see_other(&with_request("/login", request.as_deref()))),
    }
}

/// `/account/passkeys/options`: webauthn.js asks for a registration ceremony when the button
/// is used (a refused form is answered in JSON, which the script shows).
pub async fn options(
    state: Data,
    form: Result<SignedInForm, WebError>,
    meta: Meta,
) -> Result<HttpResponse, WebError> {
    let session = match form {
        Ok(form) => form.who.session,
        Err(WebError::Internal(e)) => return Err(WebError::Internal(e)),
        Err(_) => {
            return Ok(script_refusal(
                StatusCode::FORBIDDEN,
                "This page expired. Reload it and try again.",
            ));
        }
    };
    let s = session.clone();
    let begun = as_user(&state, &meta, &session, move |c, ctx, u, now| {
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
    form: SignedInForm,
    meta: Meta,
    origin: ClientOrigin,
) -> Result<HttpResponse, WebError> {
    let request = form.request();
    let ceremony = form.field("ceremony").unwrap_or_default().to_string();
    let credential = form.field("credential").unwrap_or_default().to_string();
    let name = form.field("name").unwrap_or_default().to_string();
    let session = form.who.session;
    let s = session.clone();
    let outcome = as_user(&state, &meta, &session, move |c, ctx, u, now| {
        let answer = passkeys::Answer {
            ceremony: &ceremony,
            credential: &credential,
        };
        uc::passkey_finish(c, ctx, u, &s, answer, &name, now)
    })
    .await?
    .unwrap_or(Registration::Refused("You are not signed in."));
    match (outcome, request) {
        (Registration::Added(row), Some(r)) => {
            let method = passkeys::method(&row);
            continue_request(&state, meta, origin, session, method, r).await
        }
        (Registration::Added(_), None) => Ok(see_other("/account/passkeys?done=added")),
        (Registration::Refused(why), request) => {
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
    form: SignedInForm,
    meta: Meta,
    origin: ClientOrigin,
) -> Result<HttpResponse, WebError> {
    let session = form.session().clone();
    if let Some(why) = reauth(&state, &meta, origin, &form).await? {
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
    let id = form.field("id").unwrap_or_default().to_string();
    let removed = as_user(&state, &meta, &session, move |c, ctx, u, now| {
        uc::passkey_remove(c, ctx, u, &id, now)
    })
    .await?
    .unwrap_or(Removal::Refused("You are not signed in."));
    match removed {
        Removal::Removed => Ok(see_other("/account/passkeys?done=removed")),
        Removal::Refused(why) => {
            page(&state, session, None, None, Some(why), StatusCode::CONFLICT).await
        }
    }
}
