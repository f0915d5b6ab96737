//! Encryption at rest: AES-256-GCM under a key derived per purpose from the master key, a
//! fresh nonce per value, the master key's id stored with the value, and associated data that
//! binds each ciphertext to its row and purpose (a ciphertext copied elsewhere does not open).

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use rand::RngCore;
use zeroize::Zeroizing;

use crate::keys::master::MasterKey;

/// Values written by this version start with this tag.
const VERSION: &str = "v1";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    /// Not a value this version wrote.
    #[error("not a value this version sealed")]
    Malformed,
    /// Sealed under another master key (its id is given).
    #[error("sealed under another master key ({0})")]
    OtherKey(String),
    /// Wrong purpose or row, or the ciphertext was altered.
    #[error("refused: sealed for another purpose or row, or altered")]
    Rejected,
}

fn cipher(master: &MasterKey, purpose: &str) -> Option<Aes256Gcm> {
    let key = master.derive(&format!("at-rest:{purpose}"));
    Aes256Gcm::new_from_slice(key.as_ref()).ok()
}

fn aad(purpose: &str, row: &str) -> Vec<u8> {
    format!("portcullis|{purpose}|{row}").into_bytes()
}

/// `v1:<master key id>:<base64(nonce ‖ ciphertext)>`.
pub fn seal(master: &MasterKey, purpose: &str, row: &str, plaintext: &[u8]) -> Option<String> {
    let c = cipher(master, purpose)?;
    let mut nonce = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut nonce);
    let ct = c
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext,
                aad: &aad(purpose, row),
            },
        )
        .ok()?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Some(format!("{VERSION}:{}:{}", master.id, STANDARD.encode(out)))
}

pub fn open(
    master: &MasterKey,
    purpose: &str,
    row: &str,
    sealed: &str,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let mut parts = sealed.splitn(3, ':');
    let (Some(VERSION), Some(key_id), Some(body)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(OpenError::Malformed);
    };
    if key_id != master.id {
        return Err(OpenError::OtherKey(key_id.to_string()));
    }
    let raw = STANDARD.decode(body).map_err(|_| OpenError::Malformed)?;
    if raw.len() < 12 + 16 {
        return Err(OpenError::Malformed);
    }
    let (nonce, ct) = raw.split_at(12);
    let c = cipher(master, purpose).ok_or(OpenError::Rejected)?;
    c.decrypt(
        Nonce::from_slice(nonce),
        Payload {
            msg: ct,
            aad: &aad(purpose, row),
        },
    )
    .map(Zeroizing::new)
    .map_err(|_| OpenError::Rejected)
}

/// Opens with the current master key or, during a master key rotation, the previous one
/// (values not yet resealed still name it).
pub fn open_current_or_previous(
    master: &MasterKey,
    previous: Option<&MasterKey>,
    purpose: &str,
    row: &str,
    sealed: &str,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    match open(master, purpose, row, sealed) {
        Err(OpenError::OtherKey(id)) => match previous.filter(|p| p.id == id) {
            Some(p) => open(p, purpose, row, sealed),
            None => Err(OpenError::OtherKey(id)),
        },
        other => other,
    }
}

/// A value sealed under `old`, sealed again under `new`; `None` when it already is.
pub fn reseal(
    old: &MasterKey,
    new: &MasterKey,
    purpose: &str,
    row: &str,
    sealed: &str,
) -> Result<Option<String>, OpenError> {
    let opened = match open(old, purpose, row, sealed) {
        Ok(p) => p,
        Err(OpenError::OtherKey(id)) if id == new.id => return Ok(None),
        Err(e) => return Err(e),
    };
    seal(new, purpose, row, &opened)
        .map(Some)
        .ok_or(OpenError::Rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_row_purpose_and_key() {
        let k = MasterKey::from_bytes([3u8; 32]);
        let s = seal(&k, "signing-key", "kid-1", b"secret material").unwrap();
        assert!(!s.contains("secret"));
        assert_eq!(
            open(&k, "signing-key", "kid-1", &s).unwrap().as_slice(),
            b"secret material"
        );
        assert_eq!(
            open(&k, "signing-key", "kid-2", &s),
            Err(OpenError::Rejected)
        );
        assert_eq!(open(&k, "totp", "kid-1", &s), Err(OpenError::Rejected));
        let other = MasterKey::from_bytes([4u8; 32]);
        assert!(matches!(
            open(&other, "signing-key", "kid-1", &s),
            Err(OpenError::OtherKey(_))
        ));
        let mut tampered = s.clone();
        tampered.pop();
        tampered.push(if s.ends_with('A') { 'B' } else { 'A' });
        assert!(open(&k, "signing-key", "kid-1", &tampered).is_err());
        assert_ne!(
            seal(&k, "p", "r", b"x"),
            seal(&k, "p", "r", b"x"),
            "fresh nonce each time"
        );
    }

    #[test]
    fn values_reseal_once_and_open_with_either_key_meanwhile() {
        let old = MasterKey::from_bytes([1u8; 32]);
        let new = MasterKey::from_bytes([2u8; 32]);
        let s = seal(&old, "totp", "u1", b"k").unwrap();
        let during = open_current_or_previous(&new, Some(&old), "totp", "u1", &s).unwrap();
        assert_eq!(during.as_slice(), b"k");
        assert!(open_current_or_previous(&new, None, "totp", "u1", &s).is_err());
        let resealed = reseal(&old, &new, "totp", "u1", &s).unwrap().unwrap();
        assert_eq!(
            open(&new, "totp", "u1", &resealed).unwrap().as_slice(),
            b"k"
        );
        assert_eq!(reseal(&old, &new, "totp", "u1", &resealed).unwrap(), None);
    }
}
