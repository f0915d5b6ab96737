//! Device cookies: a browser that signed in to an account recently gets past that account's
//! lock.
//!
//! The per-account throttle counter stops guessing spread over many addresses, but it is
//! also a lever: an attacker rotating addresses can keep it in force and so keep the real
//! user out. A successful sign-in therefore gives the browser a signed device cookie
//! (HMAC-SHA256 under a key derived from the master key, over the user id, an expiry and a
//! random device id). While the per-account counter blocks, a request carrying a valid
//! device cookie for that very account is judged by the per-address and per-(account,
//! address) counters instead, plus a counter of its own per (account, device) on the strict
//! per-(account, address) schedule.
//!
//! The trade-off: a stolen device cookie (it is HttpOnly, so this takes malware or the
//! disk) lets its holder guess that one account from many addresses without meeting the
//! per-account counter; the per-(account, device) counter still slows those guesses as if
//! they came from one address, and the cookie is worth nothing without the password. A
//! user signing in from a new browser during such an attack still waits. A passkey is
//! never subject to the password lock: a guess cannot produce its signature.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, NaiveDateTime};
use rand::RngCore;

use crate::context::Ctx;
use crate::keys::master::MasterKey;
use crate::keys::secrets::ct_eq;
use crate::sign_in::sessions::Origin;
use crate::sign_in::throttle;

/// Purpose of the key that signs device cookies.
pub const PURPOSE: &str = "device-cookie";
const VERSION: &str = "v1";

fn mac(master: &MasterKey, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let key = master.derive(PURPOSE);
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key.as_ref()) else {
        return String::new();
    };
    mac.update(body.as_bytes());
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// A device cookie for `user_id`, valid for `lifetime` seconds:
/// `v1.<user id>.<expiry>.<device id>.<mac>` (base64url where needed).
pub fn issue(master: &MasterKey, user_id: &str, now: NaiveDateTime, lifetime: i64) -> String {
    let mut id = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut id);
    let body = format!(
        "{VERSION}.{}.{}.{}",
        URL_SAFE_NO_PAD.encode(user_id),
        now.and_utc().timestamp().saturating_add(lifetime),
        URL_SAFE_NO_PAD.encode(id)
    );
    let tag = mac(master, &body);
    format!("{body}.{tag}")
}

/// A device that signed in before, as its cookie says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    pub user_id: String,
    /// Random, per cookie: names the device's own throttle counter.
    pub id: String,
}

/// The device a cookie names, if the cookie is ours, unaltered and not expired.
pub fn verify(master: &MasterKey, value: &str, now: NaiveDateTime) -> Option<Device> {
    if value.len() > 512 {
        return None;
    }
    let (body, tag) = value.rsplit_once('.')?;
    if !ct_eq(&mac(master, body), tag) {
        return None;
    }
    let mut parts = body.split('.');
    let (Some(VERSION), Some(user), Some(expiry), Some(id), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let expiry = DateTime::from_timestamp(expiry.parse().ok()?, 0)?.naive_utc();
    if expiry <= now {
        return None;
    }
    let user_id = String::from_utf8(URL_SAFE_NO_PAD.decode(user).ok()?).ok()?;
    Some(Device {
        user_id,
        id: id.to_string(),
    })
}

/// The throttle keys of a password attempt on `username` (the account `user_id`, when it
/// exists) from `origin`: with the device's own counter in place of the per-account one when
/// the browser holds a valid device cookie for that account.
pub fn throttle_keys(
    ctx: Ctx<'_>,
    username: &str,
    user_id: Option<&str>,
    origin: &Origin,
    now: NaiveDateTime,
) -> throttle::Keys {
    let keys = throttle::keys(ctx.master, username, origin.ip.as_deref());
    let device = origin
        .device
        .as_deref()
        .and_then(|v| verify(ctx.master, v, now));
    match (device, user_id) {
        (Some(d), Some(u)) if d.user_id == u => keys.with_device(&d.id),
        _ => keys,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> NaiveDateTime {
        DateTime::from_timestamp(1_800_000_000 + s, 0)
            .map(|d| d.naive_utc())
            .unwrap_or_default()
    }

    #[test]
    fn a_device_cookie_names_its_user_until_it_expires() {
        let k = MasterKey::from_bytes([5u8; 32]);
        let c = issue(&k, "user-1", at(0), 100);
        let d = verify(&k, &c, at(99)).map(|d| d.user_id);
        assert_eq!(d.as_deref(), Some("user-1"));
        assert_eq!(verify(&k, &c, at(100)), None, "expired");
        assert_ne!(issue(&k, "user-1", at(0), 100), c, "each device its own id");
    }

    #[test]
    fn a_device_cookie_cannot_be_altered_or_made_without_the_key() {
        let k = MasterKey::from_bytes([5u8; 32]);
        let c = issue(&k, "user-1", at(0), 100);
        let other = issue(&k, "user-2", at(0), 100);
        let (body, _) = c.rsplit_once('.').unwrap_or_default();
        let (_, other_tag) = other.rsplit_once('.').unwrap_or_default();
        assert_eq!(verify(&k, &format!("{body}.{other_tag}"), at(1)), None);
        let swapped = c.replacen(
            &URL_SAFE_NO_PAD.encode("user-1"),
            &URL_SAFE_NO_PAD.encode("user-2"),
            1,
        );
        assert_eq!(verify(&k, &swapped, at(1)), None);
        assert_eq!(verify(&MasterKey::from_bytes([6u8; 32]), &c, at(1)), None);
        assert_eq!(verify(&k, "v1.x.y.z", at(1)), None);
        assert_eq!(verify(&k, "", at(1)), None);
    }
}
