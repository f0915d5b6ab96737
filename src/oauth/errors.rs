//! OAuth error codes (RFC 6749 §4.1.2.1, §5.2; OpenID Connect Core §3.1.2.6) and the error
//! of the token-side endpoints.

use std::borrow::Cow;

use crate::db::{self, DbConn};
use crate::error::{InternalError, internal_error_sources};

/// Errors returned to the client through the redirect URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthorizeError {
    InvalidRequest,
    UnauthorizedClient,
    AccessDenied,
    UnsupportedResponseType,
    InvalidScope,
    ServerError,
    LoginRequired,
    ConsentRequired,
    RequestNotSupported,
    RequestUriNotSupported,
    InteractionRequired,
    /// OpenID Connect Core (errata 2) §3.1.2.6: the requested `acr` cannot be met.
    UnmetAuthenticationRequirements,
}

impl AuthorizeError {
    pub fn code(self) -> &'static str {
        match self {
            AuthorizeError::InvalidRequest => "invalid_request",
            AuthorizeError::UnauthorizedClient => "unauthorized_client",
            AuthorizeError::AccessDenied => "access_denied",
            AuthorizeError::UnsupportedResponseType => "unsupported_response_type",
            AuthorizeError::InvalidScope => "invalid_scope",
            AuthorizeError::ServerError => "server_error",
            AuthorizeError::LoginRequired => "login_required",
            AuthorizeError::ConsentRequired => "consent_required",
            AuthorizeError::RequestNotSupported => "request_not_supported",
            AuthorizeError::RequestUriNotSupported => "request_uri_not_supported",
            AuthorizeError::InteractionRequired => "interaction_required",
            AuthorizeError::UnmetAuthenticationRequirements => "unmet_authentication_requirements",
        }
    }
}

/// Errors of the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenError {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
}

impl TokenError {
    pub fn code(self) -> &'static str {
        match self {
            TokenError::InvalidRequest => "invalid_request",
            TokenError::InvalidClient => "invalid_client",
            TokenError::InvalidGrant => "invalid_grant",
            TokenError::UnauthorizedClient => "unauthorized_client",
            TokenError::UnsupportedGrantType => "unsupported_grant_type",
            TokenError::InvalidScope => "invalid_scope",
        }
    }

    pub fn from_code(code: &str) -> Option<TokenError> {
        Some(match code {
            "invalid_request" => TokenError::InvalidRequest,
            "invalid_client" => TokenError::InvalidClient,
            "invalid_grant" => TokenError::InvalidGrant,
            "unauthorized_client" => TokenError::UnauthorizedClient,
            "unsupported_grant_type" => TokenError::UnsupportedGrantType,
            "invalid_scope" => TokenError::InvalidScope,
            _ => return None,
        })
    }
}

/// Why a token-side request (`/token`, `/revoke`, `/introspect`, `/par`) is refused, or the
/// internal failure that stopped it. The domain says what failed; `web::errors` alone decides
/// the status, the headers (the `WWW-Authenticate` challenge, `Retry-After`) and the body.
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    /// A missing, repeated or malformed parameter, or malformed client credentials.
    #[error("invalid_request: {0}")]
    InvalidRequest(Cow<'static, str>),
    /// Client authentication failed: an unknown client, a wrong or missing secret, or a way
    /// of presenting credentials the client did not register. `basic`: the credentials came
    /// in a Basic Authorization header.
    #[error("invalid_client: client authentication failed")]
    InvalidClient { basic: bool },
    /// The code or refresh token is unknown, expired, used, another client's or its user's
    /// no more, or the PKCE verifier does not match.
    #[error("invalid_grant: {0}")]
    InvalidGrant(&'static str),
    /// The client may not use what it asked for.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(&'static str),
    #[error("unsupported_grant_type")]
    UnsupportedGrantType,
    #[error("invalid_scope: {0}")]
    InvalidScope(Cow<'static, str>),
    /// A pushed authorization request that `/authorize` would refuse, with its code.
    #[error("{}: {description}", error.code())]
    InvalidAuthorization {
        error: AuthorizeError,
        description: String,
    },
    /// The client is over its request budget: it may try again in this many seconds.
    #[error("too many requests for this client")]
    RateLimited { retry_after: u64 },
    /// The client has too many pushed requests waiting: it may push again in this many seconds.
    #[error("too many pushed requests waiting")]
    TooManyPushed { retry_after: i64 },
    #[error(transparent)]
    Internal(#[from] InternalError),
}

internal_error_sources!(OAuthError);

/// What every refused grant is told (which of the reasons it was stays in the audit trail).
pub const GRANT_INVALID: &str = "the grant is invalid, expired or already used";

impl OAuthError {
    /// The error code the client is answered with.
    pub fn code(&self) -> &'static str {
        let token = match self {
            OAuthError::InvalidRequest(_) => TokenError::InvalidRequest,
            OAuthError::InvalidClient { .. } => TokenError::InvalidClient,
            OAuthError::InvalidGrant(_) => TokenError::InvalidGrant,
            OAuthError::UnauthorizedClient(_) => TokenError::UnauthorizedClient,
            OAuthError::UnsupportedGrantType => TokenError::UnsupportedGrantType,
            OAuthError::InvalidScope(_) => TokenError::InvalidScope,
            OAuthError::InvalidAuthorization { error, .. } => return error.code(),
            // RFC 6749's code for "try later", which client libraries know.
            OAuthError::RateLimited { .. } | OAuthError::TooManyPushed { .. } => {
                return "temporarily_unavailable";
            }
            OAuthError::Internal(_) => return "server_error",
        };
        token.code()
    }
}

/// Runs a token-side use case in one transaction that is kept whenever the request is
/// answered, with tokens or with a refusal: a refusal may have recorded why (a failed client
/// authentication is audited, a replayed code revokes what its first exchange issued, a reused
/// refresh token revokes its family), and that must stay. Only an internal error rolls back.
pub fn transaction_keeping_refusals<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, OAuthError>,
) -> Result<T, OAuthError> {
    enum Answer<T> {
        Given(T),
        Refused(OAuthError),
    }
    let answer = db::transaction(conn, |c| match f(c) {
        Ok(v) => Ok(Answer::Given(v)),
        Err(OAuthError::Internal(e)) => Err(e),
        Err(refused) => Ok(Answer::Refused(refused)),
    })?;
    match answer {
        Answer::Given(v) => Ok(v),
        Answer::Refused(e) => Err(e),
    }
}

/// For a use case that writes only when it refuses (introspection audits a failed client
/// authentication): first in a read-only transaction, which on SQLite waits for no writer and
/// on PostgreSQL takes no row lock; on a refusal or any failure there, once more in a write
/// transaction that keeps refusals, so the refusal's record commits as before.
pub fn read_only_unless_refused<T>(
    conn: &mut DbConn,
    f: impl Fn(&mut DbConn) -> Result<T, OAuthError>,
) -> Result<T, OAuthError> {
    match db::read_only(conn, &f) {
        Ok(v) => Ok(v),
        Err(_) => transaction_keeping_refusals(conn, f),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::audit::{self, Event};
    use crate::context::RequestMeta;
    use crate::store::audit_log;
    use crate::testkit::{db, t0};

    /// Writes one audit entry, then answers `answer`.
    fn audited_then(c: &mut DbConn, answer: OAuthError) -> Result<(), OAuthError> {
        audit::record(c, &RequestMeta::default(), t0(), Event::new("x", "y"))?;
        Err(answer)
    }

    #[test]
    fn a_read_only_use_case_that_refuses_still_records_why() {
        let mut conn = db();
        let before = audit_log::tail(&mut conn, 10).unwrap().len();
        let refused = read_only_unless_refused(&mut conn, |c| {
            audited_then(c, OAuthError::InvalidClient { basic: false })
        });
        assert!(matches!(refused, Err(OAuthError::InvalidClient { .. })));
        assert_eq!(audit_log::tail(&mut conn, 10).unwrap().len(), before + 1);
    }

    #[test]
    fn a_read_only_use_case_that_answers_runs_once() {
        let mut conn = db();
        let runs = std::cell::Cell::new(0);
        let answer = read_only_unless_refused(&mut conn, |_| {
            runs.set(runs.get() + 1);
            Ok(5)
        });
        assert_eq!(answer.unwrap(), 5);
        assert_eq!(runs.get(), 1);
    }

    #[test]
    fn a_refusal_keeps_what_the_use_case_wrote() {
        let mut conn = db();
        let refused = transaction_keeping_refusals(&mut conn, |c| {
            audited_then(c, OAuthError::InvalidClient { basic: true })
        })
        .unwrap_err();
        assert!(matches!(refused, OAuthError::InvalidClient { basic: true }));
        assert_eq!(audit_log::tail(&mut conn, 10).unwrap().len(), 1);
    }

    #[test]
    fn an_internal_error_rolls_back_what_the_use_case_wrote() {
        let mut conn = db();
        let failed = transaction_keeping_refusals(&mut conn, |c| {
            audited_then(c, InternalError::new("broken").into())
        })
        .unwrap_err();
        assert!(matches!(failed, OAuthError::Internal(_)));
        assert!(audit_log::tail(&mut conn, 10).unwrap().is_empty());
    }
}
