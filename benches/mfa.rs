//! Cost of the second step of sign-in, in process on SQLite, with a bounded number of rounds,
//! one after another:
//! - checking a TOTP code alone (pure computation), a wrong code (every step of the
//!   tolerance window computed) and the code of the current step;
//! - a TOTP code accepted on the second-factor page (`submit_code`: session, throttle,
//!   secret opened, step recorded once, new session, audit row, detection rules), each round
//!   30 s after the previous one because an accepted step cannot be used again;
//! - a recovery code accepted on the same page (single-use update instead of the TOTP step;
//!   the user has TOTP too, so its secret is opened first, as for such a user in service);
//! - a passkey sign-in on the server side (options and state stored, then the assertion
//!   verified and the counter updated), the software authenticator's signing left out.
//!
//! Only the use case itself is timed (a round's pending session is made before the clock
//! starts), so ops/s is that of the timed part.
//!
//! Run with `cargo bench --bench mfa`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::report_timed;

use std::time::Instant;

use chrono::NaiveDateTime;

use portcullis::app::AppState;
use portcullis::clock::Clock;
use portcullis::config::{Config, Lifetimes};
use portcullis::sign_in::second_factor::{self, CodeAttempt, CodeOutcome};
use portcullis::sign_in::sessions::{self, Origin};
use portcullis::sign_in::{passkeys, recovery_codes, totp};
use portcullis::store::{mfa, users};
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

const TOTP_CHECKS: usize = 20_000;
/// Wall-clock seconds between two rounds of TOTP sign-in (one time step).
const STEP: i64 = 30;
const ROUNDS: usize = 300;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let issuer = "http://localhost:8080";
    let config = Config::build(
        "127.0.0.1:8080".into(),
        issuer,
        &format!("sqlite://{}", dir.path().join("bench.db").display()),
        Lifetimes::default(),
        8,
    )
    .unwrap();
    let state = AppState::new(config, Clock::System).unwrap();
    let now = state.clock.naive();
    let user = users::User {
        id: "0123456789abcdef0123456789abcdef".into(),
        username: "bench".into(),
        email: None,
        name: None,
        groups: "[]".into(),
        roles: "[]".into(),
        password_hash: None,
        disabled: false,
        created_at: now,
        updated_at: now,
        email_verified: false,
    };
    users::insert(&mut state.pool.get().unwrap(), &user).unwrap();

    // TOTP: the check alone, a wrong code and the right one.
    let secret = totp::new_secret();
    let right = totp_code(&secret, now);
    let wrong: Vec<String> = (0..TOTP_CHECKS)
        .map(|i| format!("{:06}", i % 1_000_000))
        .filter(|c| totp::check(&secret, c, now).is_none())
        .collect();
    let mut lat = Vec::with_capacity(wrong.len());
    for code in &wrong {
        let t = Instant::now();
        let step = std::hint::black_box(totp::check(&secret, code, now));
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(step.is_none());
    }
    report_timed("TOTP check alone, wrong code", lat);
    let mut lat = Vec::with_capacity(TOTP_CHECKS);
    for _ in 0..TOTP_CHECKS {
        let t = Instant::now();
        let step = std::hint::black_box(totp::check(&secret, &right, now));
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(step.is_some());
    }
    report_timed("TOTP check alone, code of the current step", lat);

    let origin = Origin {
        ip: Some("127.0.0.1".into()),
        user_agent: Some("bench".into()),
        ..Default::default()
    };
    let keys = state.published().keys;
    // One round on the second-factor page: a pending session made at `at` (not timed), then
    // `code` typed in it; returns the time `submit_code` took.
    let second_step = |code: &str, at: NaiveDateTime| -> f64 {
        let mut conn = state.pool.get().unwrap();
        let lifetimes = &state.config.lifetimes;
        let pending =
            sessions::begin_second_factor(&mut conn, None, &user.id, &origin, at, lifetimes)
                .unwrap();
        let session = sessions::visit(&mut conn, &pending.cookie, at, lifetimes).unwrap();
        let t = Instant::now();
        let outcome = second_factor::submit_code(
            &mut conn,
            state.ctx_with(&keys, &state.no_meta),
            CodeAttempt {
                sender: sessions::FormSender {
                    session,
                    session_token: true,
                    anonymous: None,
                },
                code: portcullis::keys::secrets::Secret::new(code.to_string()),
                request: None,
                origin: origin.clone(),
            },
            at,
        )
        .unwrap();
        let took = t.elapsed().as_secs_f64() * 1000.0;
        assert!(matches!(outcome, CodeOutcome::Done(_)), "{outcome:?}");
        took
    };

    // TOTP through the second-factor use case: a confirmed credential, then one accepted
    // code per round, each for a time step later than the last.
    {
        let mut conn = state.pool.get().unwrap();
        mfa::totp_begin(
            &mut conn,
            &mfa::Totp {
                user_id: user.id.clone(),
                secret: totp::seal(&state.master, &user.id, &secret).unwrap(),
                confirmed: true,
                last_step: None,
                created_at: now,
                confirmed_at: Some(now),
                last_used_at: None,
            },
        )
        .unwrap();
    }
    let lat: Vec<f64> = (1..=ROUNDS as i64)
        .map(|round| {
            let at = now + chrono::Duration::seconds(STEP * round);
            second_step(&totp_code(&secret, at), at)
        })
        .collect();
    report_timed("second step with a TOTP code (accepted)", lat);

    // Recovery codes through the same use case, after the TOTP rounds.
    let mut codes = Vec::new();
    let mut rows = Vec::new();
    while codes.len() < ROUNDS {
        let (c, r) = recovery_codes::new_set(&user.id, now);
        codes.extend(c);
        rows.extend(r);
    }
    mfa::recovery_replace(&mut state.pool.get().unwrap(), &user.id, &rows).unwrap();
    let after = now + chrono::Duration::seconds(STEP * (ROUNDS as i64 + 1));
    let lat: Vec<f64> = codes
        .iter()
        .take(ROUNDS)
        .map(|code| second_step(code, after))
        .collect();
    report_timed("second step with a recovery code (accepted)", lat);

    // Passkeys: register one software key, then full authentication ceremonies.
    let wa = state.webauthn.clone().expect("relying party for localhost");
    let origin_url = Url::parse(issuer).unwrap();
    let mut key = SoftPasskey::new(true);
    let mut conn = state.pool.get().unwrap();
    let started_reg = passkeys::begin_registration(&mut conn, &wa, &user, "sid", now).unwrap();
    let options: CreationChallengeResponse = serde_json::from_str(&started_reg.options).unwrap();
    let reg = key.do_registration(origin_url.clone(), options).unwrap();
    let added = passkeys::finish_registration(
        &mut conn,
        &wa,
        passkeys::Answer {
            ceremony: &started_reg.ceremony,
            credential: &serde_json::to_string(&reg).unwrap(),
        },
        "sid",
        &user.id,
        "bench key",
        now,
    )
    .unwrap();
    assert!(matches!(added, passkeys::Registration::Added(_)));
    let mut server_side = Vec::with_capacity(ROUNDS);
    for _ in 0..ROUNDS {
        let t = Instant::now();
        let st = passkeys::begin_authentication(&mut conn, &wa, &user.id, "sid", now)
            .unwrap()
            .unwrap();
        let begin = t.elapsed();
        let options: RequestChallengeResponse = serde_json::from_str(&st.options).unwrap();
        let answer = key.do_authentication(origin_url.clone(), options).unwrap();
        let answer = serde_json::to_string(&answer).unwrap();
        let t = Instant::now();
        let verified =
            passkeys::finish_authentication(&mut conn, &wa, &st.ceremony, "sid", &answer, now)
                .unwrap();
        server_side.push((begin + t.elapsed()).as_secs_f64() * 1000.0);
        assert!(matches!(verified, passkeys::Assertion::Verified(_)));
    }
    report_timed(
        "passkey sign-in, server side (options + verification)",
        server_side,
    );
}

/// The code an authenticator app shows at `at`, computed with the library the server checks
/// codes with (RFC 6238: SHA-1, six digits, 30 s steps).
fn totp_code(secret: &[u8], at: NaiveDateTime) -> String {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(STEP as u64)
        .with_secret(totp_rs::Secret::from(secret))
        .with_account_name("bench".to_string())
        .build()
        .unwrap()
        .generate(u64::try_from(at.and_utc().timestamp()).unwrap())
        .to_string()
}
