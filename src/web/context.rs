//! Who is asking, resolved once per request by extractors that handlers take as arguments:
//! the browser's live session (`Visitor`), a signed-in user (`SignedIn`), a form that user
//! posted from our pages with its CSRF token checked (`SignedInForm`), and where the request
//! comes from (`Meta`, `ClientOrigin`). No handler reads the session cookie or the store: the
//! domain hands these extractors its own types, and a refusal is a `WebError` that
//! `errors.rs` answers.

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::{LocalBoxFuture, Ready, ready};

use crate::app::{run, web_data::Data};
use crate::context::RequestMeta;
use crate::error::InternalError;
use crate::keys::secrets::ct_eq;
use crate::sign_in::sessions::{self, BrowserSession, FormSender, Origin};
use crate::web::errors::WebError;
use crate::web::extractors::{field, form_pairs, is_form, request_param};
use crate::web::{csrf, session_cookie};

fn state_of(req: &HttpRequest) -> Result<Data, WebError> {
    req.app_data::<Data>()
        .cloned()
        .ok_or_else(|| WebError::Internal(InternalError::new("no application state")))
}

/// The browser's live session, if it has one (signed in, half signed in, or neither).
#[derive(Debug, Clone)]
pub struct Visitor(pub Option<BrowserSession>);

impl Visitor {
    /// The session when a user is signed in on it.
    pub fn signed_in(&self) -> Option<&BrowserSession> {
        self.0.as_ref().filter(|s| s.user_id().is_some())
    }
}

impl FromRequest for Visitor {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = state_of(req);
        let cookie = state
            .as_ref()
            .ok()
            .and_then(|s| session_cookie::read(req, &s.config));
        Box::pin(async move {
            let state = state?;
            let Some(cookie) = cookie else {
                return Ok(Visitor(None));
            };
            let session = run(&state, move |c, ctx, now| {
                sessions::visit(c, &cookie, now, &ctx.config.lifetimes)
            })
            .await?;
            Ok(Visitor(session))
        })
    }
}

/// A browser with a signed-in user; anyone else is sent to the sign-in page.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// A session whose `user_id()` is set.
    pub session: BrowserSession,
}

impl FromRequest for SignedIn {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let visitor = Visitor::from_request(req, payload);
        Box::pin(async move {
            match visitor.await?.0 {
                Some(session) if session.user_id().is_some() => Ok(SignedIn { session }),
                _ => Err(WebError::SignInRequired),
            }
        })
    }
}

/// A form the signed-in user posted from one of our pages: same origin, form-encoded, and
/// carrying the session's CSRF token. Refused otherwise (403), or sent to sign in.
#[derive(Debug, Clone)]
pub struct SignedInForm {
    pub who: SignedIn,
    pub pairs: Vec<(String, String)>,
}

impl SignedInForm {
    /// A field sent once (a repeated field counts as absent).
    pub fn field(&self, name: &str) -> Option<&str> {
        field(&self.pairs, name)
    }

    /// The parked authorization request the form carries along, if any.
    pub fn request(&self) -> Option<String> {
        request_param(&self.pairs)
    }

    pub fn session(&self) -> &BrowserSession {
        &self.who.session
    }
}

impl FromRequest for SignedInForm {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let posted = PostedForm::from_request(req, payload);
        let who = SignedIn::from_request(req, &mut Payload::None);
        Box::pin(async move {
            let PostedForm(pairs) = posted.await?;
            let who = who.await?;
            let presented = field(&pairs, "csrf_token").unwrap_or_default();
            if !ct_eq(who.session.csrf_token(), presented) {
                return Err(WebError::ExpiredForm);
            }
            Ok(SignedInForm { who, pairs })
        })
    }
}

/// A form posted from one of our pages (same origin, form-encoded), before anything about the
/// sender is known. Refused (403) otherwise.
#[derive(Debug, Clone)]
pub struct PostedForm(pub Vec<(String, String)>);

impl FromRequest for PostedForm {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let allowed = state_of(req).map(|s| is_form(req) && csrf::origin_ok(req, &s.config));
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !allowed? {
                return Err(WebError::RefusedForm);
            }
            let body = body.await.map_err(|e| {
                let e: actix_web::Error = e;
                WebError::Page(
                    e.as_response_error().status_code(),
                    "This form could not be read.".into(),
                )
            })?;
            Ok(PostedForm(form_pairs(&body)))
        })
    }
}

/// A form of the sign-in pages, from a browser that may not be signed in yet: its session (if
/// any) and which of our form tokens it carried, the session's or the one signed for an
/// anonymous visitor's cookie (`csrf.rs`). Whether that suffices is the use case's decision.
#[derive(Debug, Clone)]
pub struct SignInForm {
    pub pairs: Vec<(String, String)>,
    pub sender: FormSender,
}

impl SignInForm {
    pub fn field(&self, name: &str) -> Option<&str> {
        field(&self.pairs, name)
    }

    /// The parked authorization request the form carries along, if any.
    pub fn request(&self) -> Option<String> {
        request_param(&self.pairs)
    }
}

impl FromRequest for SignInForm {
    type Error = WebError;
    type Future = LocalBoxFuture<'static, Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let posted = PostedForm::from_request(req, payload);
        let visitor = Visitor::from_request(req, &mut Payload::None);
        let req = req.clone();
        Box::pin(async move {
            let PostedForm(pairs) = posted.await?;
            let state = state_of(&req)?;
            let session = visitor.await?.0;
            let presented = field(&pairs, "csrf_token");
            let session_token = match (&session, presented) {
                (Some(s), Some(p)) => ct_eq(s.csrf_token(), p),
                _ => false,
            };
            let anonymous = csrf::anonymous_visitor(&req, &state.config, &state.master, presented);
            Ok(SignInForm {
                pairs,
                sender: FormSender {
                    session,
                    session_token,
                    anonymous,
                },
            })
        })
    }
}

/// The request's origin for the audit trail (address, user agent, request id).
#[derive(Debug, Clone, Default)]
pub struct Meta(pub RequestMeta);

impl FromRequest for Meta {
    type Error = WebError;
    type Future = Ready<Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state_of(req).map(|s| Meta(crate::web::extractors::meta(req, &s.config))))
    }
}

/// Where a sign-in comes from: address, user agent and device cookie.
#[derive(Debug, Clone, Default)]
pub struct ClientOrigin(pub Origin);

impl FromRequest for ClientOrigin {
    type Error = WebError;
    type Future = Ready<Result<Self, WebError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(state_of(req).map(|s| ClientOrigin(crate::web::extractors::origin(req, &s.config))))
    }
}
