//! Signing keys: generation, the in-memory key set used to sign, and the published JWKS.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::NaiveDateTime;
use openidconnect::PrivateSigningKey;
use serde_json::json;
use std::fmt;
use std::sync::Arc;

use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::algs::{self, AnyKey, PublicKey};
use crate::keys::at_rest;
use crate::keys::master::MasterKey;
use crate::keys::secrets::random_id;
use crate::store::signing_keys::{self, SigningKey};

pub const STATE_ACTIVE: &str = "active";
/// Published in the JWKS, not yet signing.
pub const STATE_NEXT: &str = "next";
/// No longer signing, still published until what it signed has expired.
pub const STATE_RETIRED: &str = "retired";
pub const RS256: &str = algs::RS256;

/// A key that signs, opened once.
pub struct ActiveKey {
    pub kid: String,
    pub alg: String,
    pub key: AnyKey,
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

/// How long clients may cache the JWKS (its `Cache-Control: max-age`).
pub const JWKS_MAX_AGE: i64 = 300;
/// How soon every instance serves keys another one published: each looks at most once a
/// second when asked for them (`AppState::refresh_keys`), with room for slow requests.
pub const KEY_PROPAGATION: i64 = 5;
/// The shortest `key_publish_delay`.
pub const MIN_PUBLISH_DELAY: i64 = JWKS_MAX_AGE + KEY_PROPAGATION;

/// What identifies a set of key rows: each key's id and state. Another instance's rotation
/// changes it.
pub fn fingerprint_of<'a>(rows: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut v: Vec<String> = rows.map(|(kid, state)| format!("{kid}:{state}")).collect();
    v.sort();
    v.join(",")
}

/// The keys this instance signs with and publishes.
#[derive(Debug, Clone)]
pub struct KeySet {
    /// The RS256 key (the default for clients that did not choose).
    pub active: Arc<ActiveKey>,
    /// The active key of every algorithm.
    pub signers: Arc<Vec<Arc<ActiveKey>>>,
    /// Every published key, to verify tokens we issued: (`kid`, `alg`, key).
    pub verifiers: Arc<Vec<(String, String, PublicKey)>>,
    /// `{"keys":[…]}`, serialized once.
    pub jwks_json: Arc<String>,
    /// The `alg` values of the active keys, for discovery.
    pub algs: Vec<String>,
    /// The key rows this set was built from (`fingerprint_of`).
    pub fingerprint: String,
}

impl KeySet {
    /// The active key for `alg` (RS256 when the algorithm has none).
    pub fn signer(&self, alg: &str) -> &ActiveKey {
        self.signers
            .iter()
            .find(|k| k.alg == alg)
            .map(|k| k.as_ref())
            .unwrap_or(&self.active)
    }
}

/// Purpose of the at-rest key that seals private signing keys.
pub const SEAL_PURPOSE: &str = "signing-key";

/// Makes a new key row (active) for `alg`; the private part is sealed under the master key.
pub fn generate(
    master: &MasterKey,
    alg: &str,
    now: NaiveDateTime,
) -> Result<SigningKey, InternalError> {
    let kid = random_id();
    let material = algs::generate(alg).map_err(InternalError::new)?;
    let key = AnyKey::from_material(alg, &kid, &material).map_err(InternalError::new)?;
    let jwk = key.public_jwk(alg, &kid);
    let sealed = at_rest::seal(master, SEAL_PURPOSE, &kid, &material)
        .ok_or_else(|| InternalError::new("sealing the signing key failed"))?;
    Ok(SigningKey {
        kid,
        alg: alg.to_string(),
        private_pem: sealed,
        public_jwk: jwk.to_string(),
        state: STATE_ACTIVE.to_string(),
        created_at: now,
        activated_at: Some(now),
        retired_at: None,
    })
}

/// Generates an active key for every algorithm that has none. Returns true when it made one.
pub fn ensure_signing_key(
    conn: &mut DbConn,
    master: &MasterKey,
    now: NaiveDateTime,
) -> Result<bool, InternalError> {
    crate::db::lock(conn, crate::db::LOCK_SIGNING_KEYS)?;
    let keys = signing_keys::list(conn)?;
    let mut made = false;
    for alg in algs::ALL {
        if !keys
            .iter()
            .any(|k| k.state == STATE_ACTIVE && k.alg == *alg)
        {
            signing_keys::insert(conn, &generate(master, alg, now)?)?;
            made = true;
        }
    }
    Ok(made)
}

fn open_key(
    master: &MasterKey,
    previous: Option<&MasterKey>,
    row: &SigningKey,
) -> Result<AnyKey, InternalError> {
    let material = at_rest::open_current_or_previous(
        master,
        previous,
        SEAL_PURPOSE,
        &row.kid,
        &row.private_pem,
    )
    .map_err(|e| {
        InternalError::with(
            format!(
                "signing key {} cannot be opened (is this the master key it was sealed with?)",
                row.kid
            ),
            e,
        )
    })?;
    AnyKey::from_material(&row.alg, &row.kid, &material).map_err(InternalError::new)
}

/// Loads the published keys and opens the active one of each algorithm.
pub fn load(
    conn: &mut DbConn,
    master: &MasterKey,
    previous: Option<&MasterKey>,
) -> Result<KeySet, InternalError> {
    let rows = signing_keys::list(conn)?;
    let mut signers = Vec::new();
    for alg in algs::ALL {
        if let Some(row) = rows
            .iter()
            .rev()
            .find(|k| k.state == STATE_ACTIVE && k.alg == *alg)
        {
            signers.push(Arc::new(ActiveKey {
                kid: row.kid.clone(),
                alg: row.alg.clone(),
                key: open_key(master, previous, row)?,
            }));
        }
    }
    let active = signers
        .iter()
        .find(|k| k.alg == RS256)
        .cloned()
        .ok_or_else(|| InternalError::new("no active RS256 signing key"))?;
    let mut published = Vec::new();
    let mut verifiers = Vec::new();
    for k in &rows {
        let jwk: serde_json::Value = serde_json::from_str(&k.public_jwk)?;
        if let Some(p) = PublicKey::from_jwk(&jwk) {
            verifiers.push((k.kid.clone(), k.alg.clone(), p));
        }
        published.push(jwk);
    }
    let algs = signers.iter().map(|k| k.alg.clone()).collect();
    let jwks_json = serde_json::to_string(&json!({ "keys": published }))?;
    let fingerprint = fingerprint_of(rows.iter().map(|k| (k.kid.as_str(), k.state.as_str())));
    Ok(KeySet {
        fingerprint,
        active,
        signers: Arc::new(signers),
        verifiers: Arc::new(verifiers),
        jwks_json: Arc::new(jwks_json),
        algs,
    })
}

/// Why a JWT we are asked to trust was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    /// `alg` is not one we sign with (this covers `none`).
    Algorithm,
    /// No published key has this `kid`.
    UnknownKey,
    BadSignature,
}

/// Verifies a compact JWS signed by one of our published keys; returns its claims.
/// Expiry and issuer are for the caller to judge.
pub fn verify_jwt(set: &KeySet, token: &str) -> Result<serde_json::Value, JwtError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(JwtError::Malformed);
    };
    let decode = |s: &str| URL_SAFE_NO_PAD.decode(s).map_err(|_| JwtError::Malformed);
    let header: serde_json::Value =
        serde_json::from_slice(&decode(h)?).map_err(|_| JwtError::Malformed)?;
    let alg = header["alg"].as_str().ok_or(JwtError::Algorithm)?;
    if !algs::ALL.contains(&alg) {
        return Err(JwtError::Algorithm);
    }
    let kid = header["kid"].as_str().ok_or(JwtError::UnknownKey)?;
    let (_, key_alg, key) = set
        .verifiers
        .iter()
        .find(|(k, _, _)| k == kid)
        .ok_or(JwtError::UnknownKey)?;
    if key_alg != alg {
        return Err(JwtError::Algorithm);
    }
    if !key.verify(alg, format!("{h}.{p}").as_bytes(), &decode(sig)?) {
        return Err(JwtError::BadSignature);
    }
    serde_json::from_slice(&decode(p)?).map_err(|_| JwtError::Malformed)
}

/// Signs `claims` as a compact JWS with the active key of `alg` (`typ` in the header when given).
pub fn sign_jwt(
    set: &KeySet,
    alg: &str,
    typ: Option<&str>,
    claims: &serde_json::Value,
) -> Result<String, InternalError> {
    let signer = set.signer(alg);
    let jws = algs::jws_alg(&signer.alg).ok_or_else(|| InternalError::new("unknown algorithm"))?;
    let mut header = json!({"alg": signer.alg, "kid": signer.kid});
    if let Some(t) = typ {
        header["typ"] = json!(t);
    }
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?)
    );
    let signature = signer
        .key
        .sign(&jws, signing_input.as_bytes())
        .map_err(|e| InternalError::with("signing failed", e))?;
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

/// Adds a `next` key for every algorithm, published at once and signing after the publish
/// delay. Returns the new RS256 key, or `None` when a rotation is already pending.
pub fn rotate(
    conn: &mut DbConn,
    master: &MasterKey,
    now: NaiveDateTime,
) -> Result<Option<SigningKey>, InternalError> {
    crate::db::lock(conn, crate::db::LOCK_SIGNING_KEYS)?;
    if signing_keys::list(conn)?
        .iter()
        .any(|k| k.state == STATE_NEXT)
    {
        return Ok(None);
    }
    let mut rs256 = None;
    for alg in algs::ALL {
        let mut key = generate(master, alg, now)?;
        key.state = STATE_NEXT.to_string();
        key.activated_at = None;
        signing_keys::insert(conn, &key)?;
        if *alg == RS256 {
            rs256 = Some(key);
        }
    }
    Ok(rs256)
}

/// A change the key schedule made on its own, for the caller to audit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    /// `keys.activate`, `keys.remove` or `keys.rotate`.
    pub event: &'static str,
    pub kid: String,
}

/// Moves the schedule on: promotes a `next` key whose publish delay has passed (retiring the
/// old active one), removes retired keys past their time, starts a scheduled rotation.
/// Returns what changed (nothing: an empty list). Safe to run on every instance at once.
pub fn advance(
    conn: &mut DbConn,
    master: &MasterKey,
    rotation: &Rotation,
    now: NaiveDateTime,
) -> Result<Vec<Scheduled>, InternalError> {
    use chrono::Duration;
    crate::db::lock(conn, crate::db::LOCK_SIGNING_KEYS)?;
    let mut changed = Vec::new();
    let mut scheduled = |event: &'static str, kid: &str| {
        changed.push(Scheduled {
            event,
            kid: kid.to_string(),
        })
    };
    let rows = signing_keys::list(conn)?;
    for next in rows.iter().filter(|k| {
        k.state == STATE_NEXT && k.created_at + Duration::seconds(rotation.publish_delay) <= now
    }) {
        if signing_keys::promote(conn, &next.kid, now)? == 1 {
            signing_keys::retire_others(conn, &next.kid, &next.alg, now)?;
            tracing::info!(kid = %next.kid, alg = %next.alg, "signing key activated");
            scheduled("keys.activate", &next.kid);
        }
    }
    for k in &rows {
        let expired = k.state == STATE_RETIRED
            && k.retired_at
                .is_some_and(|t| t + Duration::seconds(rotation.retire_after) <= now);
        if expired && signing_keys::delete(conn, &k.kid)? == 1 {
            tracing::info!(kid = %k.kid, "retired signing key removed");
            scheduled("keys.remove", &k.kid);
        }
    }
    if let Some(days) = rotation.period_days {
        let rows = signing_keys::list(conn)?;
        let due = rows.iter().any(|k| {
            k.state == STATE_ACTIVE
                && k.activated_at.unwrap_or(k.created_at) + Duration::days(days) <= now
        });
        if due && let Some(k) = rotate(conn, master, now)? {
            tracing::info!("scheduled signing key rotation started");
            scheduled("keys.rotate", &k.kid);
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
        let Some(sealed) = at_rest::reseal(old, new, SEAL_PURPOSE, &k.kid, &k.private_pem)
            .map_err(|e| {
                InternalError::with(
                    format!(
                        "signing key {} does not open with the previous master key",
                        k.kid
                    ),
                    e,
                )
            })?
        else {
            continue;
        };
        crate::db::transaction(conn, |c| signing_keys::reseal(c, &k.kid, &sealed))?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod schedule_tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testkit::{db, t0};
    use chrono::Duration;

    fn events(changes: &[Scheduled]) -> Vec<&'static str> {
        changes.iter().map(|c| c.event).collect()
    }

    fn count(conn: &mut DbConn, state: &str) -> usize {
        signing_keys::list(conn)
            .unwrap()
            .iter()
            .filter(|k| k.state == state)
            .count()
    }

    #[test]
    fn the_schedule_publishes_then_activates_then_removes_keys_in_order() {
        let mut c = db();
        let master = MasterKey::from_bytes([7; 32]);
        let r = Rotation {
            publish_delay: 900,
            retire_after: 1200,
            period_days: Some(90),
        };
        ensure_signing_key(&mut c, &master, t0()).unwrap();
        let algs = algs::ALL.len();
        let before = advance(
            &mut c,
            &master,
            &r,
            t0() + Duration::days(90) - Duration::seconds(1),
        );
        assert!(
            before.unwrap().is_empty(),
            "nothing is due within the period"
        );

        // The period is over: a next key of every algorithm is published, none signs yet.
        let at = t0() + Duration::days(90);
        assert_eq!(
            events(&advance(&mut c, &master, &r, at).unwrap()),
            ["keys.rotate"]
        );
        assert_eq!(
            (count(&mut c, STATE_ACTIVE), count(&mut c, STATE_NEXT)),
            (algs, algs)
        );
        let waiting = advance(&mut c, &master, &r, at + Duration::seconds(899)).unwrap();
        assert!(waiting.is_empty(), "a next key waits out the publish delay");

        // After the publish delay the next keys sign and the old ones retire.
        let promoted = advance(&mut c, &master, &r, at + Duration::seconds(900)).unwrap();
        assert_eq!(events(&promoted), vec!["keys.activate"; algs]);
        assert_eq!(
            (
                count(&mut c, STATE_ACTIVE),
                count(&mut c, STATE_NEXT),
                count(&mut c, STATE_RETIRED)
            ),
            (algs, 0, algs)
        );
        let kept = advance(&mut c, &master, &r, at + Duration::seconds(900 + 1199)).unwrap();
        assert!(
            kept.is_empty(),
            "retired keys stay published for their tokens"
        );

        // Then the retired keys go, and the new ones are not due for another period.
        let removed = advance(&mut c, &master, &r, at + Duration::seconds(900 + 1200)).unwrap();
        assert_eq!(events(&removed), vec!["keys.remove"; algs]);
        assert_eq!(signing_keys::list(&mut c).unwrap().len(), algs);
    }

    #[test]
    fn without_a_period_nothing_rotates_on_its_own() {
        let mut c = db();
        let master = MasterKey::from_bytes([7; 32]);
        let r = Rotation {
            publish_delay: 900,
            retire_after: 1200,
            period_days: None,
        };
        ensure_signing_key(&mut c, &master, t0()).unwrap();
        let later = advance(&mut c, &master, &r, t0() + Duration::days(3650)).unwrap();
        assert!(later.is_empty());
        assert_eq!(count(&mut c, STATE_NEXT), 0);
    }
}
