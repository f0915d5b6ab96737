//! Recovery codes: ten single-use codes of 80 random bits each, shown once and stored as
//! SHA-256 hashes (their entropy makes a slow hash unnecessary).

use chrono::NaiveDateTime;
use rand::RngCore;

use crate::keys::secrets::sha256_hex;
use crate::store::mfa::RecoveryCode;

pub const COUNT: usize = 10;
/// Crockford's base32: no I, L, O or U to misread.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const LEN: usize = 16;

/// A code as shown: four groups of four characters.
pub fn generate() -> String {
    let mut raw = [0u8; LEN];
    rand::rngs::OsRng.fill_bytes(&mut raw);
    let chars: Vec<char> = raw
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b & 31)]))
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// The canonical form of what a user typed, if it can be a recovery code at all.
pub fn normalize(input: &str) -> Option<String> {
    let mut out = String::with_capacity(LEN);
    for c in input.chars() {
        let c = match c.to_ascii_lowercase() {
            '-' | ' ' => continue,
            'i' | 'l' => '1',
            'o' => '0',
            c if ALPHABET.contains(&(c as u8)) && c.is_ascii() => c,
            _ => return None,
        };
        out.push(c);
    }
    (out.len() == LEN).then_some(out)
}

/// The stored form: bound to the user, so one user's hash says nothing about another's.
pub fn hash(user_id: &str, normalized: &str) -> String {
    sha256_hex(&format!("{user_id}:{normalized}"))
}

/// A fresh set: the codes to show once, and the rows to store.
pub fn new_set(user_id: &str, now: NaiveDateTime) -> (Vec<String>, Vec<RecoveryCode>) {
    let codes: Vec<String> = (0..COUNT).map(|_| generate()).collect();
    let rows = codes
        .iter()
        .filter_map(|c| normalize(c))
        .map(|n| RecoveryCode {
            code_hash: hash(user_id, &n),
            user_id: user_id.to_string(),
            used_at: None,
            created_at: now,
        })
        .collect();
    (codes, rows)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn codes_are_distinct_and_normalize_forgivingly() {
        let (codes, rows) = new_set("u1", chrono::NaiveDateTime::default());
        assert_eq!(codes.len(), COUNT);
        assert_eq!(rows.len(), COUNT);
        let c = &codes[0];
        assert_eq!(c.len(), 19);
        let n = normalize(c).unwrap();
        assert_eq!(normalize(&c.to_uppercase()).unwrap(), n);
        assert_eq!(normalize(&c.replace('-', " ")).unwrap(), n);
        assert!(normalize("123456").is_none());
        assert!(normalize("zzzz-zzzz-zzzz-zzz!").is_none());
        assert_ne!(hash("u1", &n), hash("u2", &n));
    }
}
