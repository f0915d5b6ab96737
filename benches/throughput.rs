//! Throughput of the hot paths, measured on loopback with a bounded number of requests:
//! refresh-token rotation (hash lookups, two inserts, an RS256 ID token) in process, and
//! discovery, JWKS and the refresh grant over HTTP.
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
const HTTP_REQUESTS: usize = 2000;

fn setup(dir: &std::path::Path, port: u16) -> AppState {
    let mut config = Config::build(
        format!("127.0.0.1:{port}"),
        &format!("http://127.0.0.1:{port}"),
        &format!("sqlite://{}", dir.join("bench.db").display()),
        Lifetimes::default(),
        8,
    )
    .unwrap();
    // Raw throughput: the per-address and per-client limits would cap a serial loop.
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
            auth_method: "client_secret_basic".into(),
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
        refresh = body["refresh_token"].as_str().unwrap().to_string();
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    report(
        "refresh rotation (in process)",
        ROTATIONS,
        lat,
        started.elapsed().as_secs_f64(),
    );

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let data = actix_web::web::Data::new(state);
        let server = build_server(listener, data.clone()).unwrap();
        let handle = server.handle();
        tokio::spawn(server);
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        for path in ["/.well-known/openid-configuration", "/jwks"] {
            let mut lat = Vec::with_capacity(HTTP_REQUESTS);
            let started = Instant::now();
            for _ in 0..HTTP_REQUESTS {
                let t = Instant::now();
                let r = http.get(format!("{base}{path}")).send().await.unwrap();
                assert!(r.status().is_success());
                r.bytes().await.unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            report(
                &format!("GET {path} (http, serial)"),
                HTTP_REQUESTS,
                lat,
                started.elapsed().as_secs_f64(),
            );
        }
        let mut refresh = seed_refresh(&data);
        let mut lat = Vec::with_capacity(ROTATIONS);
        let started = Instant::now();
        for _ in 0..ROTATIONS {
            let t = Instant::now();
            let r = http
                .post(format!("{base}/token"))
                .form(&refresh_form(&refresh))
                .send()
                .await
                .unwrap();
            let body: serde_json::Value = r.json().await.unwrap();
            refresh = body["refresh_token"].as_str().expect("rotated").to_string();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        report(
            "POST /token refresh (http, serial)",
            ROTATIONS,
            lat,
            started.elapsed().as_secs_f64(),
        );
        handle.stop(true).await;
    });
}
