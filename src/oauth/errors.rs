//! OAuth error codes (RFC 6749 §4.1.2.1, §5.2; OpenID Connect Core §3.1.2.6).

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
