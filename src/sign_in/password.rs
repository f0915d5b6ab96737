//! Argon2id password hashing and the sign-in check that does equal work for unknown users.

use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::config::PasswordPolicy;
use crate::db::DbConn;
use crate::error::{InternalError, internal_error_sources};
use crate::store::password_history;
use crate::store::users::{self, User};

/// Parameters of new hashes (argon2's defaults: m=19456 KiB, t=2, p=1, OWASP's minimum).
const CURRENT_PARAMS: &str = "$argon2id$v=19$m=19456,t=2,p=1$";

/// Unicode NFKC, so the same password typed on different keyboards matches (NIST SP 800-63B).
pub fn normalize(password: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    password.nfkc().collect()
}

pub fn hash(password: &str) -> Result<String, InternalError> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use rand::RngCore;
    let (mut salt, mut output) = ([0u8; 16], [0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let params = Params::default();
    argon2_into(
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
        normalize(password).as_bytes(),
        &salt,
        &mut output,
    )
    .map_err(|e| InternalError::with("password hashing failed", e))?;
    Ok(format!(
        "{CURRENT_PARAMS}{}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(output)
    ))
}

pub fn verify(hash: &str, password: &str) -> bool {
    let Ok(stored) = PasswordHash::new(hash) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(version), Ok(params)) = (
        Algorithm::try_from(stored.algorithm.as_str()),
        stored
            .version
            .map_or(Ok(Version::default()), Version::try_from),
        Params::try_from(&stored),
    ) else {
        return false;
    };
    let mut output = vec![0u8; expected.as_bytes().len()];
    if argon2_into(
        Argon2::new(algorithm, version, params),
        normalize(password).as_bytes(),
        salt.as_ref(),
        &mut output,
    )
    .is_err()
    {
        return false;
    }
    // `Output`'s equality is constant-time.
    Output::try_from(output.as_slice()).is_ok_and(|computed| &computed == expected)
}

/// Argon2 working memory kept between checks: one buffer per check running at once (the
/// server bounds those to about one per core), given back to the system by
/// `release_idle_memory` once a minute has passed without a check.
static MEMORY: std::sync::Mutex<Vec<Vec<Block>>> = std::sync::Mutex::new(Vec::new());
/// Whether a check ran since the last `release_idle_memory`.
static USED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

fn memory_pool() -> std::sync::MutexGuard<'static, Vec<Vec<Block>>> {
    MEMORY
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Gives the kept Argon2 memory back to the system when no check ran since the last call
/// (the background jobs call it every minute); returns how many buffers it freed.
pub fn release_idle_memory() -> usize {
    if USED.swap(false, std::sync::atomic::Ordering::Relaxed) {
        return 0;
    }
    std::mem::take(&mut *memory_pool()).len()
}

/// Runs Argon2 in a kept buffer, or in a new one. A new buffer is reserved larger (33 MiB)
/// than glibc's allocator ever serves from its heaps (its mmap threshold grows to at most
/// 32 MiB), so it is a mapping of its own that freeing unmaps; only the blocks the parameters
/// use (19 MiB) are touched. Served from the heaps instead, every thread that had checked a
/// password kept its 19 MiB: sixteen concurrent sign-ins left the server at 447 MiB.
fn argon2_into(
    argon2: Argon2<'_>,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> Result<(), argon2::Error> {
    const RESERVED_BLOCKS: usize = 33 * 1024 * 1024 / Block::SIZE;
    USED.store(true, std::sync::atomic::Ordering::Relaxed);
    let used = argon2.params().block_count();
    let mut memory = memory_pool()
        .pop()
        .unwrap_or_else(|| Vec::with_capacity(used.max(RESERVED_BLOCKS)));
    memory.resize(used, Block::default());
    let result = argon2.hash_password_into_with_memory(password, salt, out, &mut memory[..]);
    // Kept only while it has the reserved size (a larger memory parameter from an old hash
    // would have grown it into the heap).
    if memory.capacity() == used.max(RESERVED_BLOCKS) {
        memory_pool().push(memory);
    }
    result
}

/// Longest password accepted, in characters (NIST asks that at least 64 be allowed).
pub const MAX_LENGTH: usize = 1024;

/// Unicode's format characters (general category Cf, Unicode 16): invisible characters that
/// change how text is shown or joined (zero-width spaces and joiners, bidirectional marks,
/// soft hyphens, tag characters). NFKC leaves them in place.
fn is_format_character(c: char) -> bool {
    const CF: &[(u32, u32)] = &[
        (0x00AD, 0x00AD),
        (0x0600, 0x0605),
        (0x061C, 0x061C),
        (0x06DD, 0x06DD),
        (0x070F, 0x070F),
        (0x0890, 0x0891),
        (0x08E2, 0x08E2),
        (0x180E, 0x180E),
        (0x200B, 0x200F),
        (0x202A, 0x202E),
        (0x2060, 0x2064),
        (0x2066, 0x206F),
        (0xFEFF, 0xFEFF),
        (0xFFF9, 0xFFFB),
        (0x110BD, 0x110BD),
        (0x110CD, 0x110CD),
        (0x13430, 0x1343F),
        (0x1BCA0, 0x1BCA3),
        (0x1D173, 0x1D17A),
        (0xE0001, 0xE0001),
        (0xE0020, 0xE007F),
    ];
    let c = u32::from(c);
    CF.iter().any(|&(lo, hi)| (lo..=hi).contains(&c))
}

/// Checks a new password against the policy: length after NFKC, no control or invisible
/// formatting characters, and zxcvbn's estimate (its dictionaries hold the common and breached passwords) of at least 3,
/// with the user's own name, username and email counted as known to the attacker. No
/// composition rules.
pub fn check_policy(
    policy: &PasswordPolicy,
    password: &str,
    user_inputs: &[&str],
) -> Result<(), String> {
    let password = normalize(password);
    let n = password.chars().count();
    if n < policy.min_length {
        return Err(format!(
            "the password must be at least {} characters long",
            policy.min_length
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
    // Invisible characters would let a dictionary password pass the strength check below
    // (`pass\u{200D}word` is not in any list) and cannot be typed reliably anyway. Refusing
    // them when a password is set leaves verification unchanged.
    if password.chars().any(is_format_character) {
        return Err(
            "the password must not contain invisible formatting characters (such as zero-width joiners or spaces)"
                .into(),
        );
    }
    let estimate = zxcvbn::zxcvbn(&password, user_inputs);
    if u8::from(estimate.score()) < 3 {
        let why = estimate
            .feedback()
            .and_then(|f| f.warning())
            .map(|w| format!(" ({w})"))
            .unwrap_or_default();
        return Err(format!(
            "the password is too easy to guess{why}; a few unrelated words make a strong one"
        ));
    }
    Ok(())
}

/// Why a new password is refused, or the internal failure that stopped the change.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The policy refuses it; the message says why and is safe to show.
    #[error("{0}")]
    Policy(String),
    /// It is one of the account's last `history` passwords.
    #[error("the password was one of the last {history} passwords of this account")]
    Reused { history: i64 },
    #[error(transparent)]
    Internal(#[from] InternalError),
}

internal_error_sources!(PasswordError);

/// Sets a user's password after the policy and the history check; ends every session and
/// token of the user. A refused password changes nothing.
pub fn change(
    conn: &mut DbConn,
    policy: &PasswordPolicy,
    user: &User,
    new_password: &str,
    now: chrono::NaiveDateTime,
) -> Result<(), PasswordError> {
    let mut inputs: Vec<&str> = vec![user.username.as_str()];
    inputs.extend(user.email.as_deref());
    inputs.extend(user.name.as_deref());
    check_policy(policy, new_password, &inputs).map_err(PasswordError::Policy)?;
    let recent = password_history::recent(conn, &user.id, policy.history)?;
    let reused = user
        .password_hash
        .iter()
        .chain(recent.iter().map(|p| &p.password_hash))
        .any(|h| verify(h, new_password));
    if reused {
        return Err(PasswordError::Reused {
            history: policy.history,
        });
    }
    let hashed = hash(new_password)?;
    crate::db::transaction(conn, |c| {
        users::set_password(c, &user.id, &hashed, now)?;
        remember(c, &user.id, &hashed, policy.history, now)?;
        crate::store::sessions::delete_for_user(c, &user.id)?;
        crate::store::tokens::revoke_for_user(c, &user.id)?;
        Ok::<_, InternalError>(())
    })?;
    Ok(())
}

/// Whether the user's password is older than `max_age_days` (a user with no recorded password
/// counts as expired once a maximum age is set). `None` means passwords never expire.
pub fn expired(
    conn: &mut DbConn,
    max_age_days: Option<i64>,
    user_id: &str,
    now: chrono::NaiveDateTime,
) -> Result<bool, InternalError> {
    let Some(days) = max_age_days else {
        return Ok(false);
    };
    let newest = password_history::recent(conn, user_id, 1)?;
    Ok(newest.first().is_none_or(|p| {
        p.created_at
            .checked_add_signed(chrono::Duration::days(days))
            .is_none_or(|end| end <= now)
    }))
}

/// Adds a hash to the user's password history, keeping the newest `keep`.
pub fn remember(
    conn: &mut DbConn,
    user_id: &str,
    hash: &str,
    keep: i64,
    now: chrono::NaiveDateTime,
) -> Result<(), InternalError> {
    password_history::insert(
        conn,
        &password_history::PastPassword {
            id: crate::keys::secrets::random_id(),
            user_id: user_id.to_string(),
            password_hash: hash.to_string(),
            created_at: now,
        },
    )?;
    password_history::trim(conn, user_id, keep)?;
    Ok(())
}

/// What an unknown user's password is checked against: a stored hash in the current
/// parameters with a random salt and a random output, so checking it costs exactly what
/// checking a real one costs and never matches. Made without running Argon2 (no 19 MiB and
/// no tens of milliseconds at start).
pub fn dummy_hash() -> Result<String, InternalError> {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use rand::RngCore;
    let (mut salt, mut output) = ([0u8; 16], [0u8; 32]);
    rand::rngs::OsRng.fill_bytes(&mut salt);
    rand::rngs::OsRng.fill_bytes(&mut output);
    Ok(format!(
        "{CURRENT_PARAMS}{}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(output)
    ))
}

/// What a username and password prove.
#[derive(Debug)]
pub enum Checked {
    /// The password is the user's, and the account may sign in.
    Valid(User),
    /// The same answer for an unknown user, a wrong password and a disabled account.
    BadCredentials,
}

/// Checks a username and password. Unknown users cost one Argon2 verification too.
pub fn authenticate(
    conn: &mut DbConn,
    dummy_hash: &str,
    username: &str,
    password: &str,
    now: chrono::NaiveDateTime,
) -> Result<Checked, InternalError> {
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
            Ok(Checked::Valid(u))
        }
        _ => Ok(Checked::BadCredentials),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weak_common_and_personal_passwords_are_refused() {
        let p = PasswordPolicy::default();
        assert!(check_policy(&p, "short", &[]).is_err());
        assert!(check_policy(&p, "password1234", &[]).is_err());
        assert!(check_policy(&p, "aaaaaaaaaaaaaaaa", &[]).is_err());
        assert!(
            check_policy(
                &p,
                "alice.liddell@example.com",
                &["alice.liddell@example.com"]
            )
            .is_err()
        );
        assert!(check_policy(&p, "correct horse battery staple", &[]).is_ok());
        assert!(
            check_policy(&p, &"x1 wombat ".repeat(20), &[]).is_ok(),
            "long passwords are allowed"
        );
        assert!(check_policy(&p, "tab\tinside the password", &[]).is_err());
    }

    #[test]
    fn invisible_format_characters_cannot_smuggle_a_dictionary_password_past_the_policy() {
        let p = PasswordPolicy::default();
        assert!(check_policy(&p, "password1234", &[]).is_err());
        for hidden in [
            '\u{200D}',
            '\u{200B}',
            '\u{00AD}',
            '\u{2060}',
            '\u{FEFF}',
            '\u{E0041}',
        ] {
            let smuggled: String = "password1234password"
                .chars()
                .flat_map(|c| [c, hidden])
                .collect();
            let refused = check_policy(&p, &smuggled, &[]).unwrap_err();
            assert!(refused.contains("invisible"), "{hidden:?}: {refused}");
        }
        let refused = check_policy(&p, "correct\u{200D}horse battery staple", &[]).unwrap_err();
        assert!(refused.contains("invisible"), "{refused}");
        // Visible non-ASCII passwords are fine, and what was set before still verifies.
        assert!(check_policy(&p, "grüße aus köln am rhein", &[]).is_ok());
        let old = hash("correct\u{200D}horse battery staple").unwrap();
        assert!(verify(&old, "correct\u{200D}horse battery staple"));
    }

    #[test]
    fn a_new_password_the_policy_refuses_is_a_policy_error_and_changes_nothing() {
        let mut conn = crate::testkit::db();
        let now = crate::testkit::t0();
        let id = crate::testkit::user(&mut conn, "alice", now);
        let user = users::find(&mut conn, &id).unwrap().unwrap();
        let refused = change(
            &mut conn,
            &PasswordPolicy::default(),
            &user,
            "password1234",
            now,
        )
        .unwrap_err();
        assert!(matches!(refused, PasswordError::Policy(_)), "{refused:?}");
        let after = users::find(&mut conn, &id).unwrap().unwrap();
        assert_eq!(after.password_hash, None);
    }

    #[test]
    fn the_current_password_again_is_refused_as_reused_with_the_history_length() {
        let mut conn = crate::testkit::db();
        let now = crate::testkit::t0();
        let id = crate::testkit::user(&mut conn, "alice", now);
        let current = hash("correct horse battery staple").unwrap();
        users::set_password(&mut conn, &id, &current, now).unwrap();
        let user = users::find(&mut conn, &id).unwrap().unwrap();
        let policy = PasswordPolicy::default();
        let refused = change(
            &mut conn,
            &policy,
            &user,
            "correct horse battery staple",
            now,
        )
        .unwrap_err();
        assert!(
            matches!(refused, PasswordError::Reused { history } if history == policy.history),
            "{refused:?}"
        );
        let after = users::find(&mut conn, &id).unwrap().unwrap();
        assert_eq!(after.password_hash.as_deref(), Some(current.as_str()));
    }

    #[test]
    fn compatibility_forms_of_the_same_password_match() {
        // U+FB01 (ﬁ ligature) normalizes to "fi" under NFKC.
        let h = hash("ﬁsh and chips at noon").unwrap();
        assert!(verify(&h, "fish and chips at noon"));
    }

    #[test]
    fn hashes_are_argon2id_and_verify_only_the_right_password() {
        let h = hash("correct horse battery staple").unwrap();
        assert!(h.starts_with(CURRENT_PARAMS), "{h}");
        assert!(verify(&h, "correct horse battery staple"));
        assert!(!verify(&h, "correct horse battery stapl"));
        assert!(!verify("not a hash", "x"));
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_one_costs_and_matches_nothing() {
        use argon2::password_hash::phc::PasswordHash;
        let dummy = dummy_hash().unwrap();
        let real = hash("a real password").unwrap();
        let (d, r) = (
            PasswordHash::new(&dummy).unwrap(),
            PasswordHash::new(&real).unwrap(),
        );
        assert_eq!(d.algorithm, r.algorithm);
        assert_eq!(d.version, r.version);
        assert_eq!(d.params, r.params, "the same memory, time and lanes");
        assert_eq!(
            d.salt.map(|s| s.len()),
            r.salt.map(|s| s.len()),
            "a salt of the same length"
        );
        assert_eq!(d.hash.map(|h| h.len()), r.hash.map(|h| h.len()));
        assert!(!verify(&dummy, ""));
        assert!(!verify(&dummy, "a real password"));
        assert_ne!(dummy, dummy_hash().unwrap(), "a fresh salt each time");
    }

    #[test]
    fn hashes_made_by_the_argon2_crate_and_by_us_verify_both_ways() {
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery staple")
            .unwrap()
            .to_string();
        assert!(verify(&theirs, "correct horse battery staple"));
        assert!(!verify(&theirs, "correct horse battery stapler"));
        let ours = hash("correct horse battery staple").unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery staple", ours.as_str())
                .is_ok()
        );
        assert!(verify(&ours, "correct horse battery staple"));
        assert!(!verify("not a hash", ""));
    }
}
