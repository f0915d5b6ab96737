//! Argon2id password hashing and the sign-in check that does equal work for unknown users.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};

use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::secrets::random_token;
use crate::store::users::{self, User};

/// Parameters of new hashes (argon2's defaults: m=19456 KiB, t=2, p=1, OWASP's minimum).
const CURRENT_PARAMS: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

pub fn hash(password: &str) -> Result<String, InternalError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| InternalError::new(format!("password hashing failed: {e}")))
}

pub fn verify(hash: &str, password: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), hash)
        .is_ok()
}

/// Minimum length of a new password (NIST SP 800-63B asks for at least 8; we ask for 12).
pub const MIN_LENGTH: usize = 12;
/// Longest password accepted, in characters.
pub const MAX_LENGTH: usize = 1024;

/// Checks a new password: length only here; strength and breach checks come with the policy.
pub fn check_policy(password: &str) -> Result<(), String> {
    let n = password.chars().count();
    if n < MIN_LENGTH {
        return Err(format!(
            "the password must be at least {MIN_LENGTH} characters long"
        ));
    }
    if n > MAX_LENGTH {
        return Err(format!(
            "the password must be at most {MAX_LENGTH} characters long"
        ));
    }
    if password.chars().any(|c| c.is_control()) {
        return Err("the password must not contain control characters".into());
    }
    Ok(())
}

/// A hash of a random password, checked when the user does not exist.
pub fn dummy_hash() -> Result<String, InternalError> {
    hash(&random_token())
}

/// The same answer for an unknown user, a wrong password and a disabled account.
#[derive(Debug, PartialEq, Eq)]
pub struct BadCredentials;

/// Checks a username and password. Unknown users cost one Argon2 verification too.
pub fn authenticate(
    conn: &mut DbConn,
    dummy_hash: &str,
    username: &str,
    password: &str,
    now: chrono::NaiveDateTime,
) -> Result<Result<User, BadCredentials>, InternalError> {
    let user = users::find_by_username(conn, username.trim())?;
    let stored = user
        .as_ref()
        .and_then(|u| u.password_hash.clone())
        .unwrap_or_else(|| dummy_hash.to_string());
    let ok = verify(&stored, password);
    match user {
        Some(u) if ok && !u.disabled && u.password_hash.is_some() => {
            if !stored.starts_with(CURRENT_PARAMS) {
                users::set_password(conn, &u.id, &hash(password)?, now)?;
            }
            Ok(Ok(u))
        }
        _ => Ok(Err(BadCredentials)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_and_verify_only_the_right_password() {
        let h = hash("correct horse battery staple").unwrap();
        assert!(h.starts_with(CURRENT_PARAMS), "{h}");
        assert!(verify(&h, "correct horse battery staple"));
        assert!(!verify(&h, "correct horse battery stapl"));
        assert!(!verify("not a hash", "x"));
    }
}
