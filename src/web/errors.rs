//! The only place that maps errors to HTTP: OAuth JSON, the HTML error page.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use askama::Template;
use std::borrow::Cow;

use crate::error::{InternalError, chain};
use crate::keys::secrets::random_id;
use crate::oauth::errors::OAuthError;
use crate::oidc::userinfo::UserinfoError;
use crate::web::rate_limit::too_many;

/// What a handler can fail with.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Logged once with a reference; the user sees a generic page.
    #[error("internal error")]
    Internal(#[source] InternalError),
    /// A page-level refusal with a message safe to show.
    #[error("{0}: {1}")]
    Page(StatusCode, String),
    /// A page for signed-in users, asked for by someone who is not: to the sign-in page.
    #[error("not signed in")]
    SignInRequired,
    /// A form that came from elsewhere or in the wrong encoding.
    #[error("form refused")]
    RefusedForm,
    /// A form whose CSRF token does not match the session's.
    #[error("form token does not match")]
    ExpiredForm,
    /// A refused token-side request (`/token`, `/revoke`, `/introspect`, `/par`): OAuth JSON.
    /// Never an internal error (those are `Internal`).
    #[error(transparent)]
    OAuth(OAuthError),
    /// A refused bearer token at `/userinfo`. Never an internal error.
    #[error(transparent)]
    Bearer(UserinfoError),
    /// The database did not answer in time (`InternalError::is_unavailable`): 503 with
    /// `Retry-After`, as OAuth JSON at the token side (`json`), as a page elsewhere.
    #[error("database unavailable")]
    Unavailable { json: bool },
}

/// Seconds a client is asked to wait while the database does not answer.
pub const UNAVAILABLE_RETRY_AFTER: i64 = 5;

fn unavailable(e: &InternalError, json: bool) -> WebError {
    tracing::warn!(error = %chain(e), "the database did not answer in time");
    WebError::Unavailable { json }
}

impl From<InternalError> for WebError {
    fn from(e: InternalError) -> Self {
        if e.is_unavailable() {
            return unavailable(&e, false);
        }
        WebError::Internal(e)
    }
}

impl From<OAuthError> for WebError {
    fn from(e: OAuthError) -> Self {
        match e {
            OAuthError::Internal(e) if e.is_unavailable() => unavailable(&e, true),
            OAuthError::Internal(e) => WebError::Internal(e),
            refused => WebError::OAuth(refused),
        }
    }
}

impl From<UserinfoError> for WebError {
    fn from(e: UserinfoError) -> Self {
        match e {
            UserinfoError::Internal(e) => WebError::Internal(e),
            refused => WebError::Bearer(refused),
        }
    }
}

#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage<'a> {
    title: &'a str,
    message: &'a str,
    reference: Option<&'a str>,
}

/// A form that came from elsewhere or in the wrong encoding.
pub fn refused_form() -> HttpResponse {
    error_page(
        StatusCode::FORBIDDEN,
        "This form submission was refused.",
        None,
    )
}

/// A form whose CSRF token does not match the session's.
pub fn expired_form() -> HttpResponse {
    error_page(
        StatusCode::FORBIDDEN,
        "This form expired. Go back, reload the page and try again.",
        None,
    )
}

/// A refusal answered to webauthn.js (which shows `error` next to the passkey button).
pub fn script_refusal(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(serde_json::json!({ "error": message }))
}

/// A page whose template failed to render: logged with a reference and answered with the
/// 500 page, never an empty 200.
pub fn template_failed(e: askama::Error) -> WebError {
    WebError::Internal(InternalError::with("a page template failed to render", e))
}

/// A page's HTML, or the error that answers 500 when its template fails.
pub fn page_html(page: &impl Template) -> Result<String, WebError> {
    page.render().map_err(template_failed)
}

/// The HTML error page.
pub fn error_page(status: StatusCode, message: &str, reference: Option<&str>) -> HttpResponse {
    let title = if status.is_server_error() {
        "Something went wrong"
    } else {
        "This request cannot be completed"
    };
    let body = ErrorPage {
        title,
        message,
        reference,
    }
    .render()
    .unwrap_or_else(|_| message.to_string());
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// The HTML error page for a browser that must wait (429 with Retry-After).
pub fn too_many_page(retry_after: i64) -> HttpResponse {
    let mut r = error_page(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many sign-in requests are waiting from your network. Finish or close the open ones, or try again later.",
        None,
    );
    if let Ok(v) = HeaderValue::from_str(&retry_after.max(1).to_string()) {
        r.headers_mut().insert(header::RETRY_AFTER, v);
    }
    r
}

/// The OAuth JSON answer of a token-side endpoint for a client that must wait (429 with
/// Retry-After), never cached. The code is RFC 6749's `temporarily_unavailable`, which
/// client libraries know (`slow_down` belongs to the device grant).
pub fn oauth_too_many(description: &str, retry_after: i64) -> HttpResponse {
    HttpResponse::TooManyRequests()
        .insert_header((header::RETRY_AFTER, retry_after.max(1).to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"))
        .json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": ascii_description(description),
        }))
}

impl ResponseError for WebError {
    fn status_code(&self) -> StatusCode {
        match self {
            WebError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            WebError::Page(s, _) => *s,
            WebError::SignInRequired => StatusCode::SEE_OTHER,
            WebError::RefusedForm | WebError::ExpiredForm => StatusCode::FORBIDDEN,
            WebError::OAuth(e) => oauth_refusal(e).0,
            WebError::Bearer(e) => bearer_refusal(e).0,
            WebError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            WebError::Internal(e) => internal_error_page(e),
            WebError::Unavailable { json: true } => {
                let mut r = oauth_json_error(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "temporarily_unavailable",
                    "the service is briefly unavailable; retry later",
                    None,
                );
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(UNAVAILABLE_RETRY_AFTER),
                );
                r
            }
            WebError::Unavailable { json: false } => {
                let mut r = error_page(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is briefly unavailable. Please try again in a few seconds.",
                    None,
                );
                r.headers_mut().insert(
                    header::RETRY_AFTER,
                    HeaderValue::from(UNAVAILABLE_RETRY_AFTER),
                );
                r
            }
            WebError::Page(status, message) => error_page(*status, message, None),
            WebError::SignInRequired => HttpResponse::SeeOther()
                .insert_header((header::LOCATION, "/login"))
                .insert_header((header::CACHE_CONTROL, "no-store"))
                .finish(),
            WebError::RefusedForm => refused_form(),
            WebError::ExpiredForm => expired_form(),
            WebError::OAuth(OAuthError::Internal(e)) => internal_error_page(e),
            WebError::OAuth(e) => {
                let (status, description) = oauth_refusal(e);
                match e {
                    OAuthError::RateLimited { retry_after } => too_many(*retry_after),
                    OAuthError::TooManyPushed { retry_after } => {
                        oauth_too_many(&description, *retry_after)
                    }
                    // 401 with a Basic challenge whichever way the client tried: RFC 6749 §5.2
                    // asks for it after a Basic header and allows it otherwise.
                    OAuthError::InvalidClient { .. } => {
                        oauth_json_error(status, e.code(), &description, Some(BASIC_CHALLENGE))
                    }
                    _ => oauth_json_error(status, e.code(), &description, None),
                }
            }
            WebError::Bearer(UserinfoError::Internal(e)) => internal_error_page(e),
            WebError::Bearer(e) => {
                let (status, code, description) = bearer_refusal(e);
                bearer_error(status, code, description)
            }
        }
    }
}

/// The challenge of a refused client.
const BASIC_CHALLENGE: &str = "Basic realm=\"portcullis\"";

/// An internal error, logged once with its whole source chain and a reference that the 500
/// page shows.
fn internal_error_page(e: &InternalError) -> HttpResponse {
    let reference = random_id();
    tracing::error!(reference = %reference, error = %chain(e), "internal error");
    error_page(
        StatusCode::INTERNAL_SERVER_ERROR,
        "The server could not complete your request. Please try again later.",
        Some(&reference),
    )
}

/// The status and `error_description` of a refused token-side request.
fn oauth_refusal(e: &OAuthError) -> (StatusCode, Cow<'_, str>) {
    let bad = StatusCode::BAD_REQUEST;
    match e {
        OAuthError::InvalidRequest(d) | OAuthError::InvalidScope(d) => (bad, Cow::Borrowed(d)),
        OAuthError::InvalidClient { .. } => (
            StatusCode::UNAUTHORIZED,
            "client authentication failed".into(),
        ),
        OAuthError::InvalidGrant(d) | OAuthError::UnauthorizedClient(d) => (bad, (*d).into()),
        OAuthError::UnsupportedGrantType => (bad, "this grant type is not supported".into()),
        OAuthError::InvalidAuthorization { description, .. } => (bad, description.into()),
        OAuthError::RateLimited { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "too many requests for this client".into(),
        ),
        OAuthError::TooManyPushed { .. } => (
            StatusCode::TOO_MANY_REQUESTS,
            "this client has too many pushed requests waiting".into(),
        ),
        OAuthError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal error".into()),
    }
}

/// The status, error code and `error_description` of a refused bearer token (RFC 6750 §3.1):
/// no code when no token was presented.
fn bearer_refusal(e: &UserinfoError) -> (StatusCode, Option<&'static str>, &'static str) {
    match e {
        UserinfoError::TokenMissing => (StatusCode::UNAUTHORIZED, None, ""),
        UserinfoError::TokenRepeated => (
            StatusCode::BAD_REQUEST,
            Some("invalid_request"),
            "more than one access token was sent",
        ),
        UserinfoError::InvalidToken => (
            StatusCode::UNAUTHORIZED,
            Some("invalid_token"),
            "the access token is invalid, expired or revoked",
        ),
        UserinfoError::InsufficientScope => (
            StatusCode::FORBIDDEN,
            Some("insufficient_scope"),
            "the access token was not issued for openid",
        ),
        UserinfoError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, None, ""),
    }
}

/// The OAuth JSON error of the token-side endpoints (RFC 6749 §5.2), never cached.
fn oauth_json_error(
    status: StatusCode,
    code: &str,
    description: &str,
    www_authenticate: Option<&str>,
) -> HttpResponse {
    let mut b = HttpResponse::build(status);
    b.insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((header::PRAGMA, "no-cache"));
    if let Some(w) = www_authenticate
        && let Ok(v) = HeaderValue::from_str(w)
    {
        b.insert_header((header::WWW_AUTHENTICATE, v));
    }
    b.json(serde_json::json!({
        "error": code,
        "error_description": ascii_description(description),
    }))
}

/// `error_description` may only hold printable ASCII without `"` and `\` (RFC 6749 §5.2).
pub fn ascii_description(s: &str) -> String {
    s.chars()
        .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect()
}

/// A bearer-token failure at a protected resource (RFC 6750 §3).
fn bearer_error(status: StatusCode, error: Option<&str>, description: &str) -> HttpResponse {
    let challenge = match error {
        Some(e) => format!(
            "Bearer realm=\"portcullis\", error=\"{e}\", error_description=\"{}\"",
            ascii_description(description)
        ),
        None => "Bearer realm=\"portcullis\"".to_string(),
    };
    let mut b = HttpResponse::build(status);
    b.insert_header((header::CACHE_CONTROL, "no-store"));
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        b.insert_header((header::WWW_AUTHENTICATE, v));
    }
    match error {
        Some(e) => b.json(
            serde_json::json!({"error": e, "error_description": ascii_description(description)}),
        ),
        None => b.finish(),
    }
}

#[cfg(test)]
mod page_tests {
    use super::*;
    use std::fmt;

    /// A value whose formatting fails, as a broken template would.
    struct Unprintable;

    impl fmt::Display for Unprintable {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            Err(fmt::Error)
        }
    }

    #[derive(Template)]
    #[template(source = "<p>{{ value }}</p>", ext = "html")]
    struct Broken {
        value: Unprintable,
    }

    #[test]
    fn a_page_whose_template_fails_is_a_500_never_an_empty_200() {
        let Err(e) = page_html(&Broken { value: Unprintable }) else {
            panic!("a failing template must not give a page");
        };
        assert_eq!(
            e.error_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}

#[cfg(test)]
mod oauth_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn answer(e: OAuthError) -> HttpResponse {
        WebError::from(e).error_response()
    }

    fn header_of(r: &HttpResponse, name: header::HeaderName) -> Option<&str> {
        r.headers().get(name).map(|v| v.to_str().unwrap())
    }

    #[test]
    fn a_refused_client_is_answered_401_with_a_basic_challenge_however_it_presented_itself() {
        for basic in [true, false] {
            let r = answer(OAuthError::InvalidClient { basic });
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
            assert_eq!(
                header_of(&r, header::WWW_AUTHENTICATE),
                Some("Basic realm=\"portcullis\"")
            );
            assert_eq!(header_of(&r, header::CACHE_CONTROL), Some("no-store"));
        }
    }

    #[test]
    fn other_refusals_are_400_without_a_challenge() {
        for e in [
            OAuthError::InvalidGrant(crate::oauth::errors::GRANT_INVALID),
            OAuthError::InvalidRequest("token is required".into()),
            OAuthError::UnsupportedGrantType,
            OAuthError::UnauthorizedClient("the client may not use this grant type"),
            OAuthError::InvalidScope("scope x is not registered for this client".into()),
        ] {
            let r = answer(e);
            assert_eq!(r.status(), StatusCode::BAD_REQUEST);
            assert_eq!(header_of(&r, header::WWW_AUTHENTICATE), None);
        }
    }

    #[test]
    fn a_client_over_its_budget_is_told_when_to_come_back() {
        let r = answer(OAuthError::RateLimited { retry_after: 7 });
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(header_of(&r, header::RETRY_AFTER), Some("7"));
    }

    #[test]
    fn an_internal_error_inside_an_oauth_error_is_the_500_page() {
        let e = WebError::from(OAuthError::Internal(InternalError::new("broken")));
        assert!(matches!(e, WebError::Internal(_)));
        assert_eq!(
            e.error_response().status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
