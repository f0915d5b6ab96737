//! Authentication context classes: what a session earns (`acr` 1 or 2) and what a request
//! demands (`acr_values`, a client's `--require-mfa`).

use std::collections::BTreeMap;

use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::oauth::authorize::{Outcome, Valid};
use crate::oauth::errors::AuthorizeError;
use crate::store::auth_requests::{self, AuthRequest};
use crate::store::sessions::Session;

/// The authentication context class of a password sign-in (discovery `acr_values_supported`).
pub const ACR_SINGLE_FACTOR: &str = "1";
/// Two factors: a password and a second factor, or a passkey with user verification.
pub const ACR_MULTI_FACTOR: &str = "2";

/// The `acr` a session earns.
pub fn acr_of(session: &Session) -> &'static str {
    if crate::sign_in::sessions::is_multi_factor(session) {
        ACR_MULTI_FACTOR
    } else {
        ACR_SINGLE_FACTOR
    }
}

/// `acr_values` asks for two factors when it names "2" and does not also accept "1".
pub fn acr_values_require_mfa(params: &BTreeMap<String, String>) -> bool {
    params.get("acr_values").is_some_and(|v| {
        let values: Vec<&str> = v.split(' ').filter(|s| !s.is_empty()).collect();
        values.contains(&ACR_MULTI_FACTOR) && !values.contains(&ACR_SINGLE_FACTOR)
    })
}

/// When the request needs two factors and the session has one: the second step, enrolment,
/// or an error for the client. `None` lets the request go on.
pub fn step_up(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    row: &AuthRequest,
    valid: &Valid,
    session: &Session,
    user_id: &str,
) -> Result<Option<Outcome>, InternalError> {
    let prompt_none = valid.prompt.iter().any(|p| p == "none");
    let client_requires = valid.client.require_mfa;
    if !(client_requires || acr_values_require_mfa(&valid.params))
        || crate::sign_in::sessions::is_multi_factor(session)
    {
        return Ok(None);
    }
    let has_factor = crate::sign_in::second_factor::factors(conn, user_id)?.any();
    if prompt_none {
        auth_requests::delete(conn, &row.id)?;
        return Ok(Some(valid.error(
            ctx,
            AuthorizeError::InteractionRequired,
            "a second factor is required",
        )));
    }
    if has_factor {
        return Ok(Some(Outcome::SecondFactor {
            request_id: row.id.clone(),
        }));
    }
    if client_requires {
        return Ok(Some(Outcome::Enrol {
            request_id: row.id.clone(),
        }));
    }
    auth_requests::delete(conn, &row.id)?;
    Ok(Some(valid.error(
        ctx,
        AuthorizeError::UnmetAuthenticationRequirements,
        "the user has no second factor",
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(acr: &str) -> BTreeMap<String, String> {
        BTreeMap::from([("acr_values".to_string(), acr.to_string())])
    }

    #[test]
    fn acr_values_demand_two_factors_only_when_one_is_not_acceptable() {
        assert!(acr_values_require_mfa(&params("2")));
        assert!(!acr_values_require_mfa(&params("2 1")));
        assert!(!acr_values_require_mfa(&params("1")));
        assert!(!acr_values_require_mfa(&params("urn:unknown")));
        assert!(!acr_values_require_mfa(&BTreeMap::new()));
    }
}
