//! ID tokens (OpenID Connect Core §2), signed with the active key.

use chrono::{DateTime, NaiveDateTime, Utc};
use openidconnect::core::{
    CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm,
};
use openidconnect::{
    AccessToken, AdditionalClaims, Audience, AuthenticationContextClass,
    AuthenticationMethodReference, ClientId, IdToken, IdTokenClaims, IssuerUrl, Nonce,
    StandardClaims, SubjectIdentifier,
};
use serde::{Deserialize, Serialize};

use crate::context::Ctx;
use crate::error::InternalError;
use crate::protocol::grant_data::GrantData;

/// Claims OpenID Connect Core has no field for.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    /// Session id (Front-/Back-Channel Logout).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// User claims asked for through the `claims` request parameter.
    #[serde(flatten)]
    pub requested: serde_json::Map<String, serde_json::Value>,
}

impl AdditionalClaims for ExtraClaims {}

pub type PortcullisIdToken = IdToken<
    ExtraClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;

/// Signs an ID token for `sub` and `client_id` with the grant's facts; `at_hash` from `access_token`.
#[allow(clippy::too_many_arguments)]
pub fn mint(
    ctx: Ctx<'_>,
    sub: &str,
    client_id: &str,
    data: &GrantData,
    access_token: &str,
    requested: serde_json::Map<String, serde_json::Value>,
    alg: &str,
    now: NaiveDateTime,
) -> Result<String, InternalError> {
    let issuer = IssuerUrl::new(ctx.config.issuer.clone())
        .map_err(|e| InternalError::with("issuer URL", e))?;
    let iat = DateTime::<Utc>::from_naive_utc_and_offset(now, Utc);
    let exp = DateTime::<Utc>::from_naive_utc_and_offset(
        crate::protocol::params::after(now, ctx.config.lifetimes.id_token),
        Utc,
    );
    let mut claims = IdTokenClaims::new(
        issuer,
        vec![Audience::new(client_id.to_string())],
        exp,
        iat,
        StandardClaims::new(SubjectIdentifier::new(sub.to_string())),
        ExtraClaims {
            sid: data.sid.clone(),
            requested,
        },
    )
    .set_authorized_party(Some(ClientId::new(client_id.to_string())))
    .set_nonce(data.nonce.clone().map(Nonce::new));
    if let Some(t) = data.auth_time {
        claims = claims.set_auth_time(DateTime::from_timestamp(t, 0));
    }
    if !data.amr.is_empty() {
        claims = claims.set_auth_method_refs(Some(
            data.amr
                .iter()
                .map(|a| AuthenticationMethodReference::new(a.clone()))
                .collect(),
        ));
    }
    if let Some(acr) = &data.acr {
        claims = claims.set_auth_context_ref(Some(AuthenticationContextClass::new(acr.clone())));
    }
    let signer = ctx.keys.signer(alg);
    let jws = crate::keys::algs::jws_alg(&signer.alg)
        .ok_or_else(|| InternalError::new(format!("unsupported ID token algorithm {alg}")))?;
    let token = PortcullisIdToken::new(
        claims,
        &signer.key,
        jws,
        Some(&AccessToken::new(access_token.to_string())),
        None,
    )
    .map_err(|e| InternalError::with("signing the ID token", e))?;
    Ok(token.to_string())
}
