//! Cost of the second step of sign-in, in process on SQLite, with a bounded number of rounds:
//! checking a TOTP code (pure computation), a recovery code accepted on the second-factor
//! page (session lookup, throttle, single-use update, new session, audit row), and a passkey
//! ceremony (options, state stored, assertion verified, counter updated).
//!
//! Run with `cargo bench --bench mfa`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::report;

use std::time::Instant;

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

    // TOTP: the check alone (three HMAC-SHA1 at most).
    let secret = totp::new_secret();
    let mut lat = Vec::with_capacity(TOTP_CHECKS);
    let started = Instant::now();
    for i in 0..TOTP_CHECKS {
        let t = Instant::now();
        std::hint::black_box(totp::check(&secret, &format!("{:06}", i % 1_000_000), now));
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    report(
        "TOTP code check",
        TOTP_CHECKS,
        lat,
        started.elapsed().as_secs_f64(),
    );

    // Recovery codes through the second-factor use case, one pending session each.
    let mut codes = Vec::new();
    let mut rows = Vec::new();
    while codes.len() < ROUNDS {
        let (c, r) = recovery_codes::new_set(&user.id, now);
        codes.extend(c);
        rows.extend(r);
    }
    mfa::recovery_replace(&mut state.pool.get().unwrap(), &user.id, &rows).unwrap();
    let origin = Origin {
        ip: Some("127.0.0.1".into()),
        user_agent: Some("bench".into()),
        ..Default::default()
    };
    let keys = state.published().keys;
    let mut lat = Vec::with_capacity(ROUNDS);
    let started = Instant::now();
    for code in codes.iter().take(ROUNDS) {
        let mut conn = state.pool.get().unwrap();
        let pending = sessions::begin_second_factor(
            &mut conn,
            None,
            &user.id,
            &origin,
            now,
            &state.config.lifetimes,
        )
        .unwrap();
        let session =
            sessions::visit(&mut conn, &pending.cookie, now, &state.config.lifetimes).unwrap();
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
                code: portcullis::keys::secrets::Secret::new(code.clone()),
                request: None,
                origin: origin.clone(),
            },
            now,
        )
        .unwrap();
        assert!(matches!(outcome, CodeOutcome::Done(_)), "{outcome:?}");
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    report(
        "second step with a recovery code",
        ROUNDS,
        lat,
        started.elapsed().as_secs_f64(),
    );

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
    let started = Instant::now();
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
        assert!(matches!(verified, passkeys::Assertion::Verified(_)));
        server_side.push((begin + t.elapsed()).as_secs_f64() * 1000.0);
    }
    report(
        "passkey ceremony (p = server side)",
        ROUNDS,
        server_side,
        started.elapsed().as_secs_f64(),
    );
}
