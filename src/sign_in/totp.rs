//! TOTP (RFC 6238): secrets sealed under the master key, codes checked with one step of
//! tolerance either side, each time step accepted at most once.

use chrono::NaiveDateTime;
use rand::RngCore;
use totp_rs::{Algorithm, Builder, Secret, Totp};

use crate::keys::at_rest;
use crate::keys::master::MasterKey;

/// What the sealed secrets are encrypted for (the AAD also names the user).
pub const SEAL_PURPOSE: &str = "totp";
/// 160-bit secrets, as RFC 4226 recommends.
const SECRET_BYTES: usize = 20;

/// A fresh random secret.
pub fn new_secret() -> Vec<u8> {
    let mut b = vec![0u8; SECRET_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut b);
    b
}

pub fn seal(master: &MasterKey, user_id: &str, secret: &[u8]) -> Option<String> {
    at_rest::seal(master, SEAL_PURPOSE, user_id, secret)
}

/// Opens a sealed secret with the current master key or, during a rotation, the previous one.
pub fn open(
    master: &MasterKey,
    previous: Option<&MasterKey>,
    user_id: &str,
    sealed: &str,
) -> Option<zeroize::Zeroizing<Vec<u8>>> {
    at_rest::open_current_or_previous(master, previous, SEAL_PURPOSE, user_id, sealed).ok()
}

/// Reseals every TOTP secret still sealed under `old` with `new` (master key rotation).
pub fn reseal_all(
    conn: &mut crate::db::DbConn,
    old: &MasterKey,
    new: &MasterKey,
) -> Result<usize, crate::error::InternalError> {
    let mut n = 0;
    for t in crate::store::mfa::totp_all(conn)? {
        let Some(sealed) =
            at_rest::reseal(old, new, SEAL_PURPOSE, &t.user_id, &t.secret).map_err(|e| {
                crate::error::InternalError::with(
                    "a TOTP secret does not open with the previous master key",
                    e,
                )
            })?
        else {
            continue;
        };
        crate::db::transaction(conn, |c| {
            crate::store::mfa::totp_reseal(c, &t.user_id, &sealed)
        })?;
        n += 1;
    }
    Ok(n)
}

fn totp(secret: &[u8], account: &str, issuer: &str) -> Option<Totp> {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_digits(6)
        .with_skew(1)
        .with_step_duration(30)
        .with_secret(Secret::from(secret))
        .with_account_name(account.replace(':', "_"))
        .with_issuer(Some(issuer.replace(':', "_")))
        .build()
        .ok()
}

/// The time step a code belongs to, if it matches `now` within ±1 step.
pub fn check(secret: &[u8], code: &str, now: NaiveDateTime) -> Option<i64> {
    let code: String = code.chars().filter(|c| !c.is_whitespace()).collect();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let t = totp(secret, "user", "portcullis")?;
    let time = u64::try_from(now.and_utc().timestamp()).ok()?;
    t.check(&code, time)
        .and_then(|step| i64::try_from(step).ok())
}

/// The base32 secret and `otpauth://` URI an authenticator app is given.
pub fn provisioning(secret: &[u8], account: &str, issuer: &str) -> Option<(String, String)> {
    let t = totp(secret, account, issuer)?;
    let b32 = Secret::from(secret).to_base32();
    Some((b32, t.to_url().ok()?))
}

/// The URI as a QR code: an SVG rendered here, no image request and no script.
pub fn qr_svg(uri: &str) -> Option<String> {
    let code = qrcode::QrCode::new(uri.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn at(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(secs, 0)
            .unwrap()
            .naive_utc()
    }

    /// RFC 6238 appendix B, SHA-1, truncated to 6 digits.
    #[test]
    fn rfc_6238_vectors_pass_with_one_step_of_tolerance() {
        let secret = b"12345678901234567890";
        assert_eq!(check(secret, "287082", at(59)), Some(1));
        assert_eq!(check(secret, "081804", at(1_111_111_109)), Some(37_037_036));
        // One step early or late is still accepted; two steps are not.
        assert_eq!(check(secret, "287082", at(89)), Some(1));
        assert_eq!(check(secret, "287082", at(95)), None);
        assert_eq!(check(secret, "28708", at(59)), None);
        assert_eq!(check(secret, "abcdef", at(59)), None);
    }

    #[test]
    fn provisioning_gives_base32_secret_and_otpauth_uri_and_svg() {
        let secret = new_secret();
        let (b32, uri) = provisioning(&secret, "alice", "Portcullis").unwrap();
        assert_eq!(b32.len(), 32);
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        assert!(uri.contains(&format!("secret={b32}")), "{uri}");
        let svg = qr_svg(&uri).unwrap();
        assert!(svg.contains("<svg"));
    }
}
