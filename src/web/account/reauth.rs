//! The password typed again: inside a removal form (checked with the request), or on its own
//! (`/account/reauthenticate`) before adding a factor, which it then allows for a few minutes.

use actix_web::HttpResponse;
use actix_web::http::{StatusCode, header};

use crate::account::mfa as uc;
use crate::account::reauth::{Reauth, reauthenticate};
use crate::app::{run_conn_as, web_data::Data};
use crate::keys::secrets::Secret;
use crate::web::context::{ClientOrigin, Meta, SignedInForm};
use crate::web::errors::WebError;
use crate::web::redirects::{see_other, with_request};

/// Why the password typed again was not accepted: wrong (400), or too many attempts (429
/// with `Retry-After`, like sign-in).
#[derive(Debug, Clone)]
pub(crate) struct Refused {
    pub message: String,
    pub retry_after: Option<i64>,
}

impl Refused {
    pub fn wrong() -> Refused {
        Refused {
            message: "The current password is not correct.".into(),
            retry_after: None,
        }
    }

    pub fn throttled(seconds: i64) -> Refused {
        Refused {
            message: format!(
                "Too many attempts. Try again in {seconds} second{}.",
                if seconds == 1 { "" } else { "s" }
            ),
            retry_after: Some(seconds),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self.retry_after {
            Some(_) => StatusCode::TOO_MANY_REQUESTS,
            None => StatusCode::BAD_REQUEST,
        }
    }

    /// The page that answers the refusal, with `Retry-After` when throttled.
    pub fn answer(&self, mut page: HttpResponse) -> HttpResponse {
        if let Some(v) = self
            .retry_after
            .and_then(|s| header::HeaderValue::from_str(&s.to_string()).ok())
        {
            page.headers_mut().insert(header::RETRY_AFTER, v);
        }
        page
    }
}

/// Checks the `current_password` of a form for its session (and remembers a success on it):
/// `Some` refusal when it was not accepted.
pub(super) async fn reauth(
    state: &Data,
    meta: &Meta,
    origin: ClientOrigin,
    form: &SignedInForm,
) -> Result<Option<Refused>, WebError> {
    let presented = Secret::new(
        form.field("current_password")
            .unwrap_or_default()
            .to_string(),
    );
    let origin = origin.0;
    let permit = crate::app::argon2_permit(state).await?;
    let s = form.session().clone();
    let answer = run_conn_as(state, meta.0.clone(), move |c, ctx, now| {
        let Some(u) = uc::user_of(c, &s)? else {
            return Ok(Reauth::Wrong);
        };
        let r = reauthenticate(c, ctx, &u, &s, presented.expose(), &origin, now);
        drop(permit);
        r
    })
    .await?;
    Ok(match answer {
        Reauth::Ok => None,
        Reauth::Wrong => Some(Refused::wrong()),
        Reauth::Throttled(s) => Some(Refused::throttled(s)),
    })
}

/// `/account/reauthenticate`: back to the page that asked (`next`: `totp` or `passkeys`),
/// which may now add a factor.
pub async fn reauthenticate_form(
    state: Data,
    form: SignedInForm,
    meta: Meta,
    origin: ClientOrigin,
) -> Result<HttpResponse, WebError> {
    let request = form.request();
    let passkeys = form.field("next") == Some("passkeys");
    let session = form.session().clone();
    match reauth(&state, &meta, origin, &form).await? {
        None => {
            let path = if passkeys {
                "/account/passkeys"
            } else {
                "/account/totp"
            };
            Ok(see_other(&with_request(path, request.as_deref())))
        }
        Some(why) if passkeys => Ok(why.answer(
            crate::web::account::passkeys::page(
                &state,
                session,
                request,
                None,
                Some(&why.message),
                why.status(),
            )
            .await?,
        )),
        Some(why) => Ok(why.answer(
            crate::web::account::mfa::totp_page(
                &state,
                session,
                request,
                Some(&why.message),
                why.status(),
            )
            .await?,
        )),
    }
}
