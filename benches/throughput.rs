//! Throughput of the hot paths, with a bounded number of requests: refresh-token rotation
//! (hash lookups, two inserts, an RS256 ID token) in process, one rotation after another;
//! then discovery, JWKS and the refresh grant over HTTP on loopback, driven by `CLIENTS`
//! concurrent clients (tasks on a multi-threaded runtime, each with its own connection and,
//! for refresh, its own token chain). Every refresh answer must carry an ID token. The load
//! generator and the server share the machine's cores.
//!
//! Run with `cargo bench --bench throughput`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::report;

use std::net::TcpListener;
use std::time::Instant;

use portcullis::app::AppState;
use portcullis::clock::Clock;
use portcullis::config::{Config, Lifetimes};
use portcullis::keys::secrets::{random_id, random_token, sha256_hex};
use portcullis::oauth::errors::transaction_keeping_refusals;
use portcullis::oauth::token::token;
use portcullis::protocol::grant_data::GrantData;
use portcullis::store::{clients, tokens, users};
use portcullis::web::server::build_server;

const ROTATIONS: usize = 500;
/// Concurrent HTTP clients.
const CLIENTS: usize = 16;
/// GET requests per client and path.
const GETS_PER_CLIENT: usize = 250;
/// Refresh grants per client (each rotates that client's own token).
const REFRESHES_PER_CLIENT: usize = 50;

fn setup(dir: &std::path::Path, port: u16) -> AppState {
    let mut config = Config::build(
        format!("127.0.0.1:{port}"),
        &format!("http://127.0.0.1:{port}"),
        &format!("sqlite://{}", dir.join("bench.db").display()),
        Lifetimes::default(),
        8,
    )
    .unwrap();
    // Raw throughput: the per-address and per-client limits would cap the load.
    config.rate_limit.enabled = false;
    let state = AppState::new(config, Clock::System).unwrap();
    let mut c = state.pool.get().unwrap();
    let now = state.clock.naive();
    users::insert(
        &mut c,
        &users::User {
            id: "u1".into(),
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
        },
    )
    .unwrap();
    clients::insert(
        &mut c,
        &clients::Client {
            client_id: "bench".into(),
            name: "Bench".into(),
            secret_hash: Some(sha256_hex("secret")),
            public: false,
            redirect_uris: "[\"http://localhost/cb\"]".into(),
            post_logout_redirect_uris: "[]".into(),
            scopes: "openid offline_access".into(),
            grant_types: "[\"authorization_code\",\"refresh_token\"]".into(),
            // The form below sends the secret in the body.
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
    .unwrap();
    drop(c);
    state
}

fn seed_refresh(state: &AppState) -> String {
    let now = state.clock.naive();
    let value = random_token();
    let data = GrantData {
        auth_time: Some(now.and_utc().timestamp()),
        amr: vec!["pwd".into()],
        family_id: random_id(),
        ..Default::default()
    };
    tokens::insert(
        &mut state.pool.get().unwrap(),
        &tokens::Token {
            token_hash: sha256_hex(&value),
            kind: tokens::REFRESH.into(),
            family_id: data.family_id.clone(),
            client_id: "bench".into(),
            user_id: Some("u1".into()),
            scope: "openid offline_access".into(),
            grant_data: data.to_json(),
            rotated: false,
            revoked: false,
            created_at: now,
            expires_at: now + chrono::Duration::days(1),
            rotated_at: None,
            successor_sealed: None,
        },
    )
    .unwrap();
    value
}

fn refresh_form(refresh: &str) -> Vec<(String, String)> {
    vec![
        ("grant_type".into(), "refresh_token".into()),
        ("refresh_token".into(), refresh.into()),
        ("client_id".into(), "bench".into()),
        ("client_secret".into(), "secret".into()),
    ]
}

/// The rotated refresh token of a refresh answer, after checking the answer has an ID token
/// (the token's scope includes `openid`).
fn rotated(body: &serde_json::Map<String, serde_json::Value>) -> String {
    let field = |name: &str| body.get(name).and_then(|v| v.as_str()).unwrap_or_default();
    assert_eq!(
        field("id_token")
            .split('.')
            .filter(|p| !p.is_empty())
            .count(),
        3,
        "every refresh answer carries an ID token (a compact JWS): {body:?}"
    );
    let next = field("refresh_token");
    assert!(!next.is_empty(), "a rotated refresh token: {body:?}");
    next.to_string()
}

/// Runs `CLIENTS` tasks at once, each doing `per_client` requests with `round`, which takes
/// the task's HTTP client and its state and returns the next state. Returns every request's
/// latency (ms) and the wall-clock seconds from the first start to the last end.
async fn concurrent<S, F, Fut>(states: Vec<S>, per_client: usize, round: F) -> (Vec<f64>, f64)
where
    S: Send + 'static,
    F: Fn(reqwest::Client, S) -> Fut + Copy + Send + 'static,
    Fut: std::future::Future<Output = S> + Send,
{
    assert_eq!(states.len(), CLIENTS);
    let started = Instant::now();
    let tasks: Vec<_> = states
        .into_iter()
        .map(|mut state| {
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut lat = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    let t = Instant::now();
                    state = round(http.clone(), state).await;
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                lat
            })
        })
        .collect();
    let mut all = Vec::with_capacity(CLIENTS * per_client);
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    (all, started.elapsed().as_secs_f64())
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = setup(dir.path(), port);

    // In process: one rotation = one transaction, as the handler does it.
    let mut refresh = seed_refresh(&state);
    let mut lat = Vec::with_capacity(ROTATIONS);
    let started = Instant::now();
    for _ in 0..ROTATIONS {
        let t = Instant::now();
        let mut conn = state.pool.get().unwrap();
        let now = state.clock.naive();
        let keys = state.published().keys;
        let body = transaction_keeping_refusals(&mut conn, |c| {
            token(
                c,
                state.ctx_with(&keys, &state.no_meta),
                &refresh_form(&refresh),
                None,
                now,
            )
        })
        .unwrap_or_else(|e| panic!("refresh failed: {e:?}"));
        refresh = rotated(&body);
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    report(
        "refresh rotation with ID token (in process, serial)",
        ROTATIONS,
        lat,
        started.elapsed().as_secs_f64(),
    );

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let data = actix_web::web::Data::new(state);
        let server = build_server(listener, data.clone()).unwrap();
        let handle = server.handle();
        tokio::spawn(server);
        let base = format!("http://127.0.0.1:{port}");
        for path in ["/.well-known/openid-configuration", "/jwks"] {
            let url = format!("{base}{path}");
            let (lat, total) = concurrent(
                vec![url; CLIENTS],
                GETS_PER_CLIENT,
                |http, url| async move {
                    let r = http.get(&url).send().await.unwrap();
                    assert!(r.status().is_success(), "{}", r.status());
                    r.bytes().await.unwrap();
                    url
                },
            )
            .await;
            report(
                &format!("GET {path} (http, {CLIENTS} clients)"),
                CLIENTS * GETS_PER_CLIENT,
                lat,
                total,
            );
        }
        let url = format!("{base}/token");
        let chains: Vec<(String, String)> = (0..CLIENTS)
            .map(|_| (url.clone(), seed_refresh(&data)))
            .collect();
        let (lat, total) = concurrent(
            chains,
            REFRESHES_PER_CLIENT,
            |http, (url, refresh)| async move {
                let r = http
                    .post(&url)
                    .form(&refresh_form(&refresh))
                    .send()
                    .await
                    .unwrap();
                assert!(r.status().is_success(), "{}", r.status());
                let body: serde_json::Map<String, serde_json::Value> = r.json().await.unwrap();
                let next = rotated(&body);
                (url, next)
            },
        )
        .await;
        report(
            &format!("POST /token refresh with ID token (http, {CLIENTS} clients)"),
            CLIENTS * REFRESHES_PER_CLIENT,
            lat,
            total,
        );
        handle.stop(true).await;
    });
}
