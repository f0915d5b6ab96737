//! The userinfo endpoint's use case: a bearer token in, the user's claims out.

use chrono::NaiveDateTime;
use serde_json::{Map, Value};

use crate::db::DbConn;
use crate::error::{InternalError, internal_error_sources};
use crate::keys::secrets::sha256_hex;
use crate::oidc::claims;
use crate::protocol::scope;
use crate::store::{tokens, users};

/// Why the userinfo endpoint refuses a bearer token, or the internal failure that stopped it.
#[derive(Debug, thiserror::Error)]
pub enum UserinfoError {
    /// No access token was presented.
    #[error("no access token")]
    TokenMissing,
    /// An access token was presented both in the header and in the body.
    #[error("more than one access token")]
    TokenRepeated,
    /// Unknown, expired or revoked token, or the user is gone or disabled.
    #[error("invalid_token")]
    InvalidToken,
    /// The token was not issued with the `openid` scope.
    #[error("insufficient_scope")]
    InsufficientScope,
    #[error(transparent)]
    Internal(#[from] InternalError),
}

internal_error_sources!(UserinfoError);

pub fn userinfo(
    conn: &mut DbConn,
    access_token: &str,
    now: NaiveDateTime,
) -> Result<Map<String, Value>, UserinfoError> {
    let token = tokens::find(conn, &sha256_hex(access_token))?
        .filter(|t| t.kind == tokens::ACCESS && !t.revoked && t.expires_at > now)
        .ok_or(UserinfoError::InvalidToken)?;
    if !scope::contains(&token.scope, scope::OPENID) {
        return Err(UserinfoError::InsufficientScope);
    }
    let user_id = token.user_id.ok_or(UserinfoError::InsufficientScope)?;
    let user = users::find(conn, &user_id)?
        .filter(|u| !u.disabled)
        .ok_or(UserinfoError::InvalidToken)?;
    let requested = crate::protocol::grant_data::GrantData::from_json(&token.grant_data)
        .map(|d| d.claims_userinfo)
        .unwrap_or_default();
    Ok(claims::for_request(&user, &token.scope, &requested))
}
