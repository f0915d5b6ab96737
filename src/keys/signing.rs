//! Signing keys: generation, the in-memory key set used to sign, and the published JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use openidconnect::core::CoreRsaPrivateSigningKey;
use openidconnect::{JsonWebKeyId, PrivateSigningKey};
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use rsa::traits::PublicKeyParts;
use serde_json::json;
use std::fmt;
use std::sync::Arc;

use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::at_rest;
use crate::keys::master::MasterKey;
use crate::keys::secrets::random_id;
use crate::store::signing_keys::{self, SigningKey};

pub const STATE_ACTIVE: &str = "active";
/// Published in the JWKS, not yet signing.
pub const STATE_NEXT: &str = "next";
/// No longer signing, still published until what it signed has expired.
pub const STATE_RETIRED: &str = "retired";
pub const RS256: &str = "RS256";

/// The key that signs, parsed once.
pub struct ActiveKey {
    pub kid: String,
    pub alg: String,
    pub key: CoreRsaPrivateSigningKey,
}

impl fmt::Debug for ActiveKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ActiveKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("key", &"[redacted]")
            .finish()
    }
}

/// The keys this instance signs with and publishes.
#[derive(Debug, Clone)]
pub struct KeySet {
    pub active: Arc<ActiveKey>,
    /// Every published key, to verify tokens we issued (`kid` → key).
    pub verifiers: Arc<Vec<(String, rsa::RsaPublicKey)>>,
    /// `{"keys":[…]}`, serialized once.
    pub jwks_json: Arc<String>,
    /// The `alg` values of the published keys, for discovery.
    pub algs: Vec<String>,
}

/// Purpose of the at-rest key that seals private signing keys.
pub const SEAL_PURPOSE: &str = "signing-key";

/// Makes a new RSA-2048 key row (active); the private key is sealed under the master key.
pub fn generate_rsa(master: &MasterKey, now: NaiveDateTime) -> Result<SigningKey, InternalError> {
    let mut rng = rand::rngs::OsRng;
    let private = rsa::RsaPrivateKey::new(&mut rng, 2048)
        .map_err(|e| InternalError::new(format!("RSA key generation failed: {e}")))?;
    let pem = private
        .to_pkcs1_pem(LineEnding::LF)
        .map_err(|e| InternalError::new(format!("RSA key encoding failed: {e}")))?;
    let kid = random_id();
    let public = private.to_public_key();
    let jwk = json!({
        "kty": "RSA",
        "use": "sig",
        "alg": RS256,
        "kid": kid,
        "n": URL_SAFE_NO_PAD.encode(public.n().to_bytes_be()),
        "e": URL_SAFE_NO_PAD.encode(public.e().to_bytes_be()),
    });
    let sealed = at_rest::seal(master, SEAL_PURPOSE, &kid, pem.as_bytes())
        .ok_or_else(|| InternalError::new("sealing the signing key failed"))?;
    Ok(SigningKey {
        kid,
        alg: RS256.to_string(),
        private_pem: sealed,
        public_jwk: jwk.to_string(),
        state: STATE_ACTIVE.to_string(),
        created_at: now,
        activated_at: Some(now),
        retired_at: None,
    })
}

/// Generates the first signing key when there is none. Returns true when it made one.
pub fn ensure_signing_key(
    conn: &mut DbConn,
    master: &MasterKey,
    now: NaiveDateTime,
) -> Result<bool, InternalError> {
    let keys = signing_keys::list(conn)?;
    if keys.iter().any(|k| k.state == STATE_ACTIVE) {
        return Ok(false);
    }
    let key = generate_rsa(master, now)?;
    signing_keys::insert(conn, &key)?;
    Ok(true)
}

/// Loads the published keys and parses the newest active one for signing.
pub fn load(
    conn: &mut DbConn,
    master: &MasterKey,
    previous: Option<&MasterKey>,
) -> Result<KeySet, InternalError> {
    let rows = signing_keys::list(conn)?;
    let active_row = rows
        .iter()
        .rev()
        .find(|k| k.state == STATE_ACTIVE)
        .ok_or_else(|| InternalError::new("no active signing key"))?;
    // During a master key rotation, keys not yet resealed open with the previous key.
    let pem = match at_rest::open(
        master,
        SEAL_PURPOSE,
        &active_row.kid,
        &active_row.private_pem,
    ) {
        Err(at_rest::OpenError::OtherKey(id)) if previous.is_some_and(|p| p.id == id) => {
            match previous {
                Some(p) => at_rest::open(p, SEAL_PURPOSE, &active_row.kid, &active_row.private_pem),
                None => Err(at_rest::OpenError::OtherKey(id)),
            }
        }
        other => other,
    }
    .map_err(|e| {
        InternalError::new(format!(
            "signing key {} cannot be opened ({e:?}): is this the master key it was sealed with?",
            active_row.kid
        ))
    })?;
    let pem =
        std::str::from_utf8(&pem).map_err(|_| InternalError::new("signing key is not PEM"))?;
    let key =
        CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(active_row.kid.clone())))
            .map_err(|e| {
                InternalError::new(format!("signing key {} unreadable: {e}", active_row.kid))
            })?;
    let mut published = Vec::new();
    let mut algs = Vec::new();
    let mut verifiers = Vec::new();
    for k in &rows {
        let jwk: serde_json::Value = serde_json::from_str(&k.public_jwk)?;
        let part = |name: &str| {
            jwk[name]
                .as_str()
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .map(|b| rsa::BigUint::from_bytes_be(&b))
        };
        if let (Some(n), Some(e)) = (part("n"), part("e")) {
            let key = rsa::RsaPublicKey::new(n, e).map_err(|e| {
                InternalError::new(format!("published key {} unreadable: {e}", k.kid))
            })?;
            verifiers.push((k.kid.clone(), key));
        }
        published.push(jwk);
        if !algs.contains(&k.alg) {
            algs.push(k.alg.clone());
        }
    }
    let jwks_json = serde_json::to_string(&json!({ "keys": published }))?;
    Ok(KeySet {
        active: Arc::new(ActiveKey {
            kid: active_row.kid.clone(),
            alg: active_row.alg.clone(),
            key,
        }),
        jwks_json: Arc::new(jwks_json),
        verifiers: Arc::new(verifiers),
        algs,
    })
}

/// The public JWK the active key would publish, for checks.
pub fn active_public_jwk(set: &KeySet) -> serde_json::Value {
    serde_json::to_value(set.active.key.as_verification_key()).unwrap_or_default()
}

/// Why a JWT we are asked to trust was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    /// `alg` is not RS256 (this covers `none`).
    Algorithm,
    /// No published key has this `kid`.
    UnknownKey,
    BadSignature,
}

/// Verifies a compact JWS signed by one of our published keys; returns its claims.
/// Expiry and issuer are for the caller to judge.
pub fn verify_jwt(set: &KeySet, token: &str) -> Result<serde_json::Value, JwtError> {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed);
    let header: serde_json::Value =
        serde_json::from_slice(&decode(h)?).map_err(|_| JwtError::Malformed)?;
    if header["alg"] != RS256 {
        return Err(JwtError::Algorithm);
    }
    let kid = header["kid"].as_str().ok_or(JwtError::UnknownKey)?;
    let key = set
        .verifiers
        .iter()
        .find(|(k, _)| k == kid)
        .map(|(_, key)| key.clone())
        .ok_or(JwtError::UnknownKey)?;
    let signature =
        Signature::try_from(decode(sig)?.as_slice()).map_err(|_| JwtError::Malformed)?;
    VerifyingKey::<sha2::Sha256>::new(key)
        .verify(format!("{h}.{p}").as_bytes(), &signature)
        .map_err(|_| JwtError::BadSignature)?;
    serde_json::from_slice(&decode(p)?).map_err(|_| JwtError::Malformed)
}

/// Signs `claims` as a compact JWS with the active key (`typ` in the header when given).
pub fn sign_jwt(
    set: &KeySet,
    typ: Option<&str>,
    claims: &serde_json::Value,
) -> Result<String, InternalError> {
    use openidconnect::core::CoreJwsSigningAlgorithm;
    let mut header = json!({"alg": RS256, "kid": set.active.kid});
    if let Some(t) = typ {
        header["typ"] = json!(t);
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
    );
    let signature = set
        .active
        .key
        .sign(
            &CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
            signing_input.as_bytes(),
        )
        .map_err(|e| InternalError::new(format!("signing failed: {e}")))?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// When keys change: published before they sign, kept after they stop until what they signed
/// has expired, rotated on a schedule.
#[derive(Debug, Clone)]
pub struct Rotation {
    /// Seconds a `next` key is published before it signs (longer than JWKS caching).
    pub publish_delay: i64,
    /// Seconds a retired key stays published.
    pub retire_after: i64,
    /// Days between automatic rotations; `None` turns them off.
    pub period_days: Option<i64>,
}

/// Adds a `next` key, published at once and signing after the publish delay. Returns `None`
/// when a rotation is already pending.
pub fn rotate(
    conn: &mut DbConn,
    master: &MasterKey,
    now: NaiveDateTime,
) -> Result<Option<SigningKey>, InternalError> {
    if signing_keys::list(conn)?
        .iter()
        .any(|k| k.state == STATE_NEXT)
    {
        return Ok(None);
    }
    let mut key = generate_rsa(master, now)?;
    key.state = STATE_NEXT.to_string();
    key.activated_at = None;
    signing_keys::insert(conn, &key)?;
    Ok(Some(key))
}

/// Moves the schedule on: promotes a `next` key whose publish delay has passed (retiring the
/// old active one), removes retired keys past their time, starts a scheduled rotation.
/// Returns true when anything changed. Safe to run on every instance at once.
pub fn advance(
    conn: &mut DbConn,
    master: &MasterKey,
    rotation: &Rotation,
    now: NaiveDateTime,
) -> Result<bool, InternalError> {
    use chrono::Duration;
    let mut changed = false;
    let rows = signing_keys::list(conn)?;
    if let Some(next) = rows.iter().find(|k| {
        k.state == STATE_NEXT && k.created_at + Duration::seconds(rotation.publish_delay) <= now
    }) && signing_keys::promote(conn, &next.kid, now)? == 1
    {
        signing_keys::retire_others(conn, &next.kid, now)?;
        tracing::info!(kid = %next.kid, "signing key activated");
        changed = true;
    }
    for k in &rows {
        let expired = k.state == STATE_RETIRED
            && k.retired_at
                .is_some_and(|t| t + Duration::seconds(rotation.retire_after) <= now);
        if expired && signing_keys::delete(conn, &k.kid)? == 1 {
            tracing::info!(kid = %k.kid, "retired signing key removed");
            changed = true;
        }
    }
    if let Some(days) = rotation.period_days {
        let rows = signing_keys::list(conn)?;
        let due = rows.iter().any(|k| {
            k.state == STATE_ACTIVE
                && k.activated_at.unwrap_or(k.created_at) + Duration::days(days) <= now
        });
        if due && rotate(conn, master, now)?.is_some() {
            tracing::info!("scheduled signing key rotation started");
            changed = true;
        }
    }
    Ok(changed)
}

/// Reseals every private key still sealed under `old` with `new`, one transaction per key.
/// Returns how many were resealed.
pub fn reseal_all(
    conn: &mut DbConn,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<usize, InternalError> {
    let mut n = 0;
    for k in signing_keys::list(conn)? {
        let opened = match at_rest::open(old, SEAL_PURPOSE, &k.kid, &k.private_pem) {
            Ok(p) => p,
            Err(at_rest::OpenError::OtherKey(id)) if id == new.id => continue,
            Err(e) => {
                return Err(InternalError::new(format!(
                    "signing key {} does not open with the previous master key ({e:?})",
                    k.kid
                )));
            }
        };
        let sealed = at_rest::seal(new, SEAL_PURPOSE, &k.kid, &opened)
            .ok_or_else(|| InternalError::new("sealing failed"))?;
        crate::db::transaction(conn, |c| signing_keys::reseal(c, &k.kid, &sealed))?;
        n += 1;
    }
    Ok(n)
}
