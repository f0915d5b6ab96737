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

use crate::protocol::acr::{ACR_MULTI_FACTOR, ACR_SINGLE_FACTOR};

/// The `acr` a session earns.
pub fn acr_of(session: &Session) -> &'static str {
    if crate::sign_in::sessions::is_multi_factor(session) {
        ACR_MULTI_FACTOR
    } else {
        ACR_SINGLE_FACTOR
    }
}

/// What a request asks of the authentication context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Demand {
    /// One factor is acceptable (or nothing was asked).
    Any,
    /// Two factors.
    MultiFactor,
    /// Essential values of which we support none (OpenID Connect Core §5.5.1.1): the request
    /// must fail.
    Unsupported,
}

fn demand_of(values: &[String]) -> Demand {
    let has = |v: &str| values.iter().any(|x| x == v);
    if has(ACR_SINGLE_FACTOR) {
        Demand::Any
    } else if has(ACR_MULTI_FACTOR) {
        Demand::MultiFactor
    } else {
        Demand::Unsupported
    }
}

/// The essential `acr` values of a `claims` request parameter, if any.
fn essential_acr(params: &BTreeMap<String, String>) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(params.get("claims")?).ok()?;
    let acr = v.get("id_token")?.get("acr")?;
    if acr.get("essential")?.as_bool() != Some(true) {
        return None;
    }
    let mut values: Vec<String> = acr
        .get("values")
        .and_then(|v| v.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    if let Some(one) = acr.get("value").and_then(|v| v.as_str()) {
        values.push(one.to_string());
    }
    (!values.is_empty()).then_some(values)
}

/// `acr_values` (voluntary: unknown values are ignored) and an essential `acr` claim
/// (binding). Two factors are demanded when "2" is asked for and "1" is not acceptable.
pub fn demand(params: &BTreeMap<String, String>) -> Demand {
    if let Some(values) = essential_acr(params) {
        return demand_of(&values);
    }
    let values: Vec<String> = params
        .get("acr_values")
        .map(|v| {
            v.split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    match demand_of(&values) {
        Demand::Unsupported => Demand::Any,
        d => d,
    }
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
    let demand = demand(&valid.params);
    if demand == Demand::Unsupported {
        auth_requests::delete(conn, &row.id)?;
        return Ok(Some(valid.error(
            ctx,
            AuthorizeError::UnmetAuthenticationRequirements,
            "none of the essential acr values is supported",
        )));
    }
    if !(client_requires || demand == Demand::MultiFactor)
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

    fn params(name: &str, value: &str) -> BTreeMap<String, String> {
        BTreeMap::from([(name.to_string(), value.to_string())])
    }

    #[test]
    fn acr_values_demand_two_factors_only_when_one_is_not_acceptable() {
        assert_eq!(demand(&params("acr_values", "2")), Demand::MultiFactor);
        assert_eq!(demand(&params("acr_values", "2 1")), Demand::Any);
        assert_eq!(demand(&params("acr_values", "1")), Demand::Any);
        assert_eq!(demand(&params("acr_values", "urn:unknown")), Demand::Any);
        assert_eq!(demand(&BTreeMap::new()), Demand::Any);
    }

    #[test]
    fn an_essential_acr_claim_binds() {
        let c = |j: &str| demand(&params("claims", j));
        assert_eq!(
            c(r#"{"id_token":{"acr":{"essential":true,"values":["2"]}}}"#),
            Demand::MultiFactor
        );
        assert_eq!(
            c(r#"{"id_token":{"acr":{"essential":true,"value":"1"}}}"#),
            Demand::Any
        );
        assert_eq!(
            c(r#"{"id_token":{"acr":{"essential":true,"values":["urn:gold"]}}}"#),
            Demand::Unsupported
        );
        assert_eq!(
            c(r#"{"id_token":{"acr":{"values":["urn:gold"]}}}"#),
            Demand::Any,
            "voluntary"
        );
    }
}
