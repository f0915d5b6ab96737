//! The refresh-token reuse window: a page that sends the same refresh token several times at
//! once gets one successor, the same for every request; a rotated token that comes back later,
//! from another client, or after its successor was used is still reuse (family revoked, alert).

use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;

use crate::flow::urlencode;
use crate::support::browser::Browser;
use crate::support::{ClientSpec, Options, REDIRECT, TestApp, param};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

struct Setup {
    app: TestApp,
    secret: String,
    other_secret: String,
}

async fn setup(window: Option<i64>) -> Setup {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(move |c| {
            if let Some(w) = window {
                c.lifetimes.refresh_reuse_window = w;
            }
        }),
        ..Default::default()
    })
    .await;
    app.add_user("alice", Some("alice@example.com"), None);
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    let secret = app.add_client(spec).unwrap();
    let mut other = ClientSpec::confidential("other");
    other.skip_consent = true;
    let other_secret = app.add_client(other).unwrap();
    Setup {
        app,
        secret,
        other_secret,
    }
}

/// The first refresh token of a fresh sign-in of alice at `app`.
async fn first_refresh_token(s: &Setup) -> String {
    let url = s.app.url(&format!(
        "/authorize?response_type=code&client_id=app&redirect_uri={}\
         &scope=openid%20offline_access&state=s\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        urlencode(REDIRECT)
    ));
    let answer = Browser::new().authorize(&s.app, &url, "alice").await;
    let code = param(&answer, "code").unwrap();
    let body: Value = reqwest::Client::new()
        .post(s.app.url("/token"))
        .basic_auth("app", Some(&s.secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["refresh_token"].as_str().unwrap().to_string()
}

async fn refresh_as(
    base: &str,
    client: (&str, &str),
    token: &str,
    scope: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let r = reqwest::Client::new()
        .post(format!("{base}/token"))
        .basic_auth(client.0, Some(client.1))
        .form(&form)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

async fn refresh(s: &Setup, token: &str) -> (StatusCode, Value) {
    refresh_as(&s.app.base, ("app", &s.secret), token, None).await
}

fn events(app: &TestApp) -> Vec<String> {
    app.trail().into_iter().map(|e| e.event).collect()
}

fn count(app: &TestApp, event: &str) -> usize {
    events(app).iter().filter(|e| *e == event).count()
}

fn window(s: &Setup) -> i64 {
    s.app.state.config.lifetimes.refresh_reuse_window
}

/// Asserts the family of `newest` is revoked and the replay alert was raised.
async fn assert_family_revoked(s: &Setup, newest: &str) {
    let (status, body) = refresh(s, newest).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert!(
        events(&s.app).contains(&"alert.token_replay".to_string()),
        "{:?}",
        events(&s.app)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_concurrent_refreshes_with_one_token_get_one_successor_and_keep_the_family() {
    let s = setup(None).await;
    assert_eq!(window(&s), 30, "the default window");
    let r1 = first_refresh_token(&s).await;
    let barrier = Arc::new(tokio::sync::Barrier::new(6));
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let (barrier, base, secret, r1) = (
            barrier.clone(),
            s.app.base.clone(),
            s.secret.clone(),
            r1.clone(),
        );
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            refresh_as(&base, ("app", &secret), &r1, None).await
        }));
    }
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.unwrap());
    }
    for (status, body) in &answers {
        assert_eq!(*status, StatusCode::OK, "{body}");
    }
    let first = &answers[0].1;
    let r2 = first["refresh_token"].as_str().unwrap().to_string();
    let a2 = first["access_token"].as_str().unwrap().to_string();
    assert_ne!(r2, r1);
    for (_, body) in &answers {
        assert_eq!(
            body["refresh_token"], first["refresh_token"],
            "one successor"
        );
        assert_eq!(
            body["access_token"], first["access_token"],
            "one access token"
        );
        assert_eq!(body["id_token"], first["id_token"]);
        assert_eq!(body["scope"], first["scope"]);
    }
    assert_eq!(count(&s.app, "token.refresh"), 1);
    assert_eq!(count(&s.app, "token.refresh_retried"), 5);
    assert_eq!(count(&s.app, "alert.token_replay"), 0);
    assert_eq!(count(&s.app, "token.reuse"), 0);
    // The family lives on: the access token works and the successor rotates.
    let userinfo = reqwest::Client::new()
        .get(s.app.url("/userinfo"))
        .bearer_auth(&a2)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), StatusCode::OK);
    let (status, body) = refresh(&s, &r2).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(count(&s.app, "alert.token_replay"), 0);
}

#[tokio::test]
async fn a_rotated_token_is_answered_with_its_successor_until_the_window_ends_then_revokes() {
    let s = setup(None).await;
    let r1 = first_refresh_token(&s).await;
    let (status, first) = refresh(&s, &r1).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    s.app.advance(window(&s) - 1);
    let (status, again) = refresh(&s, &r1).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["refresh_token"], first["refresh_token"]);
    assert_eq!(again["access_token"], first["access_token"]);
    // The access token's remaining lifetime, not a fresh one.
    assert_eq!(
        again["expires_in"].as_i64().unwrap(),
        first["expires_in"].as_i64().unwrap() - (window(&s) - 1)
    );
    s.app.advance(1);
    let (status, late) = refresh(&s, &r1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{late}");
    assert_eq!(late["error"], "invalid_grant");
    assert!(late.get("refresh_token").is_none());
    assert_eq!(count(&s.app, "token.reuse"), 1);
    assert_family_revoked(&s, first["refresh_token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn with_the_window_off_a_second_use_revokes_the_family() {
    let s = setup(Some(0)).await;
    let r1 = first_refresh_token(&s).await;
    let (status, first) = refresh(&s, &r1).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, again) = refresh(&s, &r1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{again}");
    assert_eq!(again["error"], "invalid_grant");
    assert_eq!(count(&s.app, "token.refresh_retried"), 0);
    assert_family_revoked(&s, first["refresh_token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn another_client_presenting_a_rotated_token_within_the_window_gets_invalid_grant_and_no_successor()
 {
    let s = setup(None).await;
    let r1 = first_refresh_token(&s).await;
    let (status, first) = refresh(&s, &r1).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, body) = refresh_as(&s.app.base, ("other", &s.other_secret), &r1, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("access_token").is_none(), "{body}");
    assert!(body.get("refresh_token").is_none(), "{body}");
    assert_eq!(count(&s.app, "token.refresh_retried"), 0);
    // As before the window existed: a token in another client's hands has leaked.
    assert_family_revoked(&s, first["refresh_token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn a_rotated_token_whose_successor_was_already_used_is_reuse_even_within_the_window() {
    let s = setup(None).await;
    let r1 = first_refresh_token(&s).await;
    let (_, second) = refresh(&s, &r1).await;
    let (status, third) = refresh(&s, second["refresh_token"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{third}");
    let (status, body) = refresh(&s, &r1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_family_revoked(&s, third["refresh_token"].as_str().unwrap()).await;
}

#[tokio::test]
async fn a_retry_asking_for_another_scope_is_not_the_same_request_and_counts_as_reuse() {
    let s = setup(None).await;
    let r1 = first_refresh_token(&s).await;
    let (status, first) = refresh_as(&s.app.base, ("app", &s.secret), &r1, Some("openid")).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let (status, same) = refresh_as(&s.app.base, ("app", &s.secret), &r1, Some("openid")).await;
    assert_eq!(status, StatusCode::OK, "{same}");
    assert_eq!(same["refresh_token"], first["refresh_token"]);
    let (status, body) = refresh(&s, &r1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert_family_revoked(&s, first["refresh_token"].as_str().unwrap()).await;
}
