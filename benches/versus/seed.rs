//! Portcullis's database before its binary starts: migrated and given a signing key (through
//! `AppState::new`), an admin (so the first start creates none), users, the bench client, one
//! refresh token per load client and, on request, a history of audit rows and tokens.

use chrono::{Duration, NaiveDateTime};
use rand::{Rng, SeedableRng};
use serde_json::json;

use portcullis::app::AppState;
use portcullis::audit::{self, Event};
use portcullis::clock::Clock;
use portcullis::config::{Config, Lifetimes};
use portcullis::context::RequestMeta;
use portcullis::db::{self, DbConn};
use portcullis::error::InternalError;
use portcullis::keys::master::{MasterKey, Source};
use portcullis::keys::secrets::{random_id, random_token, sha256_hex};
use portcullis::keys::signing::sign_jwt;
use portcullis::protocol::grant_data::GrantData;
use portcullis::store::{clients, tokens, users};

use crate::load::{CLIENT_ID, CLIENT_SECRET};

/// Users besides the admin: `u0` … `u999`.
pub const USERS: usize = 1000;
/// Other clients the history spreads over.
const APPS: usize = 20;
/// Rows per transaction while seeding the history.
const BATCH: usize = 10_000;
const SCOPE: &str = "openid offline_access";

/// Opens (creating and migrating) the database at `url` with `master` as master key, and
/// seeds what every run needs. Returns one refresh token per `chains`.
pub fn prepare(url: &str, master: &str, chains: usize) -> Vec<String> {
    let state = state(url, master);
    let mut c = state.pool.get().expect("a connection");
    let now = state.clock.naive();
    add_user(&mut c, "admin", "admin", "[\"admin\"]", now);
    for i in 0..USERS {
        add_user(&mut c, &format!("u{i}"), &format!("user{i}"), "[]", now);
    }
    add_client(
        &mut c,
        CLIENT_ID,
        Some(CLIENT_SECRET),
        "[\"authorization_code\",\"refresh_token\",\"client_credentials\"]",
        now,
    );
    for i in 0..APPS {
        add_client(
            &mut c,
            &format!("app-{i}"),
            None,
            "[\"authorization_code\",\"refresh_token\"]",
            now,
        );
    }
    // The accounts of the sign-in flows: one per load client, one Argon2id hash for all.
    let hash = portcullis::sign_in::password::hash(crate::flows::PASSWORD).expect("a hash");
    for i in 0..chains {
        let id = format!("flow{i}");
        add_user(&mut c, &id, &id, "[]", now);
        users::set_password(&mut c, &id, &hash, now).expect("a password");
    }
    (0..chains)
        .map(|i| {
            let value = random_token();
            insert_token(
                &mut c,
                &value,
                tokens::REFRESH,
                CLIENT_ID,
                &format!("u{}", i % USERS),
                now,
                now + Duration::days(30),
                false,
            );
            value
        })
        .collect()
}

/// Appends `n` audit rows over the last 30 days (as `audit::record` writes them, in
/// transactions of `BATCH`), then `n` tokens: four in five refresh tokens issued over the
/// last 29 days (a third of them rotated), one in five access tokens of the last minutes.
/// Every token is unexpired, so the purge leaves them all. Returns the seconds it took.
pub fn history(url: &str, master: &str, n: usize) -> f64 {
    let started = std::time::Instant::now();
    let state = state(url, master);
    let mut c = state.pool.get().expect("a connection");
    let now = state.clock.naive();
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let key = MasterKey::parse(master).expect("the master key");
    let accounts: Vec<String> = (0..USERS)
        .map(|i| audit::detect::account_ref(&key, &format!("user{i}")))
        .collect();
    let agents = [
        "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 Safari/605.1.15",
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36",
        "okhttp/4.12.0",
        "python-requests/2.32.3",
    ];
    let span = Duration::days(30).num_microseconds().unwrap_or(i64::MAX) as f64;
    let start = now - Duration::days(30);
    let mut done = 0;
    while done < n {
        let upto = (done + BATCH).min(n);
        db::transaction(&mut c, |c| -> Result<(), InternalError> {
            for i in done..upto {
                let at = start + Duration::microseconds((span * i as f64 / n as f64) as i64);
                // Documentation addresses (RFC 5737): data only, never contacted.
                let ip = format!(
                    "{}.{}",
                    ["192.0.2", "198.51.100", "203.0.113"][rng.gen_range(0..3)],
                    rng.gen_range(1..255)
                );
                let meta = RequestMeta {
                    ip: Some(ip),
                    user_agent: Some(agents[rng.gen_range(0..agents.len())].to_string()),
                    request_id: Some(random_id()[..16].to_string()),
                };
                let u = rng.gen_range(0..USERS);
                let user = format!("u{u}");
                let app = format!("app-{}", rng.gen_range(0..APPS));
                let sid = random_id();
                let roll = rng.gen_range(0..100);
                let event = match roll {
                    0..=39 => Event::new("token.refresh", "success")
                        .client(&app)
                        .details(json!({"grant_type": "refresh_token", "scope": SCOPE})),
                    40..=59 => Event::new("token.issue", "success")
                        .client(&app)
                        .details(json!({"grant_type": "authorization_code", "scope": SCOPE})),
                    60..=79 => Event::new("sign_in", "success")
                        .user(&user)
                        .details(json!({"amr": ["pwd"], "sid": sid})),
                    80..=91 => Event::new("sign_in", "failure").details(json!({
                        "reason": "bad_credentials",
                        "username": audit::mask(&format!("user{u}")),
                        "account": accounts[u],
                        "delay": 0,
                    })),
                    _ => Event::new("client.auth", "failure")
                        .client(&app)
                        .details(json!({"endpoint": "token", "reason": "wrong secret"})),
                };
                audit::record(c, &meta, at, event)?;
            }
            Ok(())
        })
        .expect("seeding audit rows");
        done = upto;
    }
    // Access tokens are minutes old when the load starts, however long the audit rows took.
    let now = state.clock.naive();
    let mut done = 0;
    while done < n {
        let upto = (done + BATCH).min(n);
        db::transaction(&mut c, |c| -> Result<(), InternalError> {
            for i in done..upto {
                let user = format!("u{}", rng.gen_range(0..USERS));
                let app = format!("app-{}", rng.gen_range(0..APPS));
                let value = random_token();
                if i % 5 == 0 {
                    let created = now - Duration::seconds(rng.gen_range(0..300));
                    let expires = created + Duration::minutes(10);
                    insert_token(
                        c,
                        &value,
                        tokens::ACCESS,
                        &app,
                        &user,
                        created,
                        expires,
                        false,
                    );
                } else {
                    let created = now - Duration::seconds(rng.gen_range(0..29 * 86_400));
                    let expires = created + Duration::days(30);
                    insert_token(
                        c,
                        &value,
                        tokens::REFRESH,
                        &app,
                        &user,
                        created,
                        expires,
                        i % 3 == 0,
                    );
                }
            }
            Ok(())
        })
        .expect("seeding tokens");
        done = upto;
    }
    started.elapsed().as_secs_f64()
}

/// Milliseconds of each of `n` RS256 signatures of ID token claims with the database's key,
/// as the token endpoint signs them (in process, one after another).
pub fn signatures(url: &str, master: &str, n: usize) -> Vec<f64> {
    let state = state(url, master);
    let keys = state.published().keys;
    let now = state.clock.naive().and_utc().timestamp();
    let claims = json!({
        "iss": "http://127.0.0.1:8080", "sub": "u0", "aud": CLIENT_ID,
        "iat": now, "exp": now + 600, "auth_time": now, "amr": ["pwd"],
    });
    (0..n)
        .map(|_| {
            let t = std::time::Instant::now();
            sign_jwt(&keys, "RS256", None, &claims).expect("a signature");
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

/// `n` Argon2id checks of the flow users' password against its stored hash, in process one
/// after another: what a sign-in costs apart from the endpoint (on the load generator's CPU).
pub fn password_checks(n: usize) -> Vec<f64> {
    let hash = portcullis::sign_in::password::hash(crate::flows::PASSWORD).expect("a hash");
    (0..n)
        .map(|_| {
            let t = std::time::Instant::now();
            assert!(portcullis::sign_in::password::verify(
                &hash,
                crate::flows::PASSWORD
            ));
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect()
}

/// The application state on `url` with the given master key (what the binary will be given
/// too, so that it can open the signing key sealed here).
fn state(url: &str, master: &str) -> AppState {
    let mut config = Config::build(
        "127.0.0.1:0".into(),
        "http://127.0.0.1:8080",
        url,
        Lifetimes::default(),
        4,
    )
    .expect("a configuration");
    let key = MasterKey::parse(master).expect("the master key");
    config.master_key = Some((key, Source::Environment));
    AppState::new(config, Clock::System).expect("the database")
}

fn add_user(c: &mut DbConn, id: &str, username: &str, roles: &str, now: NaiveDateTime) {
    users::insert(
        c,
        &users::User {
            id: id.into(),
            username: username.into(),
            email: Some(format!("{username}@example.com")),
            name: None,
            groups: "[]".into(),
            roles: roles.into(),
            password_hash: None,
            disabled: false,
            created_at: now,
            updated_at: now,
            email_verified: false,
        },
    )
    .expect("a user");
}

fn add_client(
    c: &mut DbConn,
    id: &str,
    secret: Option<&str>,
    grant_types: &str,
    now: NaiveDateTime,
) {
    clients::insert(
        c,
        &clients::Client {
            client_id: id.into(),
            name: id.into(),
            secret_hash: Some(sha256_hex(secret.unwrap_or(&random_token()))),
            public: false,
            redirect_uris: "[\"https://rp.example/cb\"]".into(),
            post_logout_redirect_uris: "[]".into(),
            scopes: "openid offline_access api".into(),
            grant_types: grant_types.into(),
            // The load sends the secret in the form body.
            auth_method: "client_secret_post".into(),
            skip_consent: true,
            require_mfa: false,
            backchannel_logout_uri: None,
            id_token_alg: "RS256".into(),
            created_at: now,
            web_origins: "[]".into(),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            requests_per_minute: None,
            updated_at: None,
        },
    )
    .expect("a client");
}

#[allow(clippy::too_many_arguments)]
fn insert_token(
    c: &mut DbConn,
    value: &str,
    kind: &str,
    client_id: &str,
    user_id: &str,
    created: NaiveDateTime,
    expires: NaiveDateTime,
    rotated: bool,
) {
    let data = GrantData {
        auth_time: Some(created.and_utc().timestamp()),
        amr: vec!["pwd".into()],
        family_id: random_id(),
        ..Default::default()
    };
    tokens::insert(
        c,
        &tokens::Token {
            token_hash: sha256_hex(value),
            kind: kind.into(),
            family_id: data.family_id.clone(),
            client_id: client_id.into(),
            user_id: Some(user_id.into()),
            scope: SCOPE.into(),
            grant_data: data.to_json(),
            rotated,
            revoked: false,
            created_at: created,
            expires_at: expires,
            rotated_at: rotated.then_some(created + Duration::hours(1)),
            successor_sealed: None,
        },
    )
    .expect("a token");
}
