//! Every error path of the token endpoint, as raw HTTP.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::flow::urlencode;
use crate::support::browser::Browser;
use crate::support::{ClientSpec, REDIRECT, TestApp, param};

struct Setup {
    app: TestApp,
    secret: String,
    browser: Browser,
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    app.add_user("alice", Some("alice@example.com"), None);
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    let secret = app.add_client(spec).unwrap();
    let mut other = ClientSpec::confidential("other");
    other.skip_consent = true;
    app.add_client(other);
    let mut spa = ClientSpec::public("spa");
    spa.skip_consent = true;
    app.add_client(spa);
    Setup {
        app,
        secret,
        browser: Browser::new(),
    }
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn challenge(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

async fn code(s: &Setup, client: &str, scope: &str) -> String {
    let url = format!(
        "{}/authorize?response_type=code&client_id={client}&redirect_uri={}&scope={}&state=s&code_challenge={}&code_challenge_method=S256",
        s.app.base,
        urlencode(REDIRECT),
        urlencode(scope),
        challenge(VERIFIER)
    );
    let q = s.browser.authorize(&s.app, &url, "alice").await;
    param(&q, "code").expect("code")
}

async fn post(
    s: &Setup,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = reqwest::Client::new().post(s.app.url("/token")).form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let body = r.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

async fn exchange(s: &Setup, code: &str) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    post(
        s,
        Some(("app", &s.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ],
    )
    .await
}

async fn userinfo_status(s: &Setup, token: &str) -> StatusCode {
    reqwest::Client::new()
        .get(s.app.url("/userinfo"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn replayed_code_is_rejected_with_invalid_grant_and_revokes_the_first_tokens() {
    let s = setup().await;
    let c = code(&s, "app", "openid offline_access").await;
    let (status, headers, first) = exchange(&s, &c).await;
    assert_eq!(status, StatusCode::OK, "{first}");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(first["token_type"], "Bearer");
    assert!(first["expires_in"].is_number());
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo_status(&s, access).await, StatusCode::OK);
    let (status, headers, replay) = exchange(&s, &c).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(replay["error"], "invalid_grant");
    assert_eq!(headers["cache-control"], "no-store");
    assert_eq!(userinfo_status(&s, access).await, StatusCode::UNAUTHORIZED);
    let refresh = first["refresh_token"].as_str().unwrap();
    let (status, _, body) = post(
        &s,
        Some(("app", &s.secret)),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn wrong_pkce_verifier_is_rejected_with_invalid_grant() {
    let s = setup().await;
    let c = code(&s, "app", "openid").await;
    let (status, _, body) = post(
        &s,
        Some(("app", &s.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", REDIRECT),
            ("code_verifier", "x".repeat(43).as_str()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    // A PKCE code without any verifier fails the same way.
    let c = code(&s, "app", "openid").await;
    let (status, _, body) = post(
        &s,
        Some(("app", &s.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn wrong_redirect_uri_is_rejected_with_invalid_grant() {
    let s = setup().await;
    let c = code(&s, "app", "openid").await;
    let (status, _, body) = post(
        &s,
        Some(("app", &s.secret)),
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", "http://localhost:7777/other"),
            ("code_verifier", VERIFIER),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn expired_code_is_rejected_with_invalid_grant() {
    let s = setup().await;
    let c = code(&s, "app", "openid").await;
    s.app.advance(61);
    let (status, _, body) = exchange(&s, &c).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn code_issued_to_another_client_is_rejected() {
    let s = setup().await;
    let c = code(&s, "other", "openid").await;
    let (status, _, body) = exchange(&s, &c).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn failed_client_authentication_is_401_with_www_authenticate() {
    let s = setup().await;
    let c = code(&s, "app", "openid").await;
    for basic in [("app", "wrong-secret"), ("nobody", "x")] {
        let (status, headers, body) = post(
            &s,
            Some(basic),
            &[
                ("grant_type", "authorization_code"),
                ("code", &c),
                ("redirect_uri", REDIRECT),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(body["error"], "invalid_client");
        assert!(
            headers["www-authenticate"]
                .to_str()
                .unwrap()
                .starts_with("Basic")
        );
    }
    // No credentials at all.
    let (status, _, body) = post(
        &s,
        None,
        &[("grant_type", "authorization_code"), ("code", &c)],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    // The code was not consumed by the failed attempts.
    let (status, _, body) = exchange(&s, &c).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn client_secret_post_works_for_code_and_refresh() {
    let s = setup().await;
    let mut poster = ClientSpec::confidential("poster");
    poster.skip_consent = true;
    poster.auth_method = Some("client_secret_post");
    let secret = s.app.add_client(poster).unwrap();
    let c = code(&s, "poster", "openid offline_access").await;
    let (status, _, body) = post(
        &s,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "poster"),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, body) = post(
        &s,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
            ("client_id", "poster"),
            ("client_secret", &secret),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["id_token"].is_string());
}

#[tokio::test]
async fn public_client_exchanges_with_pkce_and_refreshes_with_its_client_id() {
    let s = setup().await;
    let c = code(&s, "spa", "openid offline_access").await;
    let (status, _, body) = post(
        &s,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "spa"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    let (status, _, body) = post(
        &s,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", "spa"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn reused_refresh_token_revokes_the_whole_family() {
    let s = setup().await;
    let c = code(&s, "app", "openid offline_access").await;
    let (_, _, first) = exchange(&s, &c).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let refresh = |t: String| {
        let s = &s;
        async move {
            post(
                s,
                Some(("app", &s.secret)),
                &[("grant_type", "refresh_token"), ("refresh_token", &t)],
            )
            .await
        }
    };
    let (status, _, second) = refresh(r1.clone()).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    let a2 = second["access_token"].as_str().unwrap().to_string();
    assert_eq!(userinfo_status(&s, &a2).await, StatusCode::OK);
    // r1 again once the reuse window is over: reuse.
    s.app
        .advance(s.app.state.config.lifetimes.refresh_reuse_window);
    let (status, _, body) = refresh(r1).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    // The newest token of the family is dead too, and so is its access token.
    let (status, _, body) = refresh(r2).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
    assert_eq!(userinfo_status(&s, &a2).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_token_of_another_client_is_rejected_with_invalid_grant() {
    let s = setup().await;
    let c = code(&s, "spa", "openid offline_access").await;
    let (_, _, body) = post(
        &s,
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "spa"),
        ],
    )
    .await;
    let (status, _, body) = post(
        &s,
        Some(("app", &s.secret)),
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn no_refresh_token_without_offline_access() {
    let s = setup().await;
    let c = code(&s, "app", "openid").await;
    let (status, _, body) = exchange(&s, &c).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("refresh_token").is_none(), "{body}");
}

#[tokio::test]
async fn malformed_token_requests_get_the_right_errors() {
    let s = setup().await;
    let auth = Some(("app", s.secret.as_str()));
    let (status, h, body) = post(&s, auth, &[("code", "x")]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
    assert_eq!(h["cache-control"], "no-store");
    let (_, _, body) = post(&s, auth, &[("grant_type", "password"), ("username", "a")]).await;
    assert_eq!(body["error"], "unsupported_grant_type");
    let (_, _, body) = post(
        &s,
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("code", "nope"),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");
    let (_, _, body) = post(
        &s,
        auth,
        &[("grant_type", "refresh_token"), ("refresh_token", "nope")],
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");
    let (_, _, body) = post(
        &s,
        auth,
        &[
            ("grant_type", "authorization_code"),
            ("grant_type", "refresh_token"),
        ],
    )
    .await;
    assert_eq!(body["error"], "invalid_request");
    // Not a form.
    let r = reqwest::Client::new()
        .post(s.app.url("/token"))
        .basic_auth("app", Some(&s.secret))
        .json(&serde_json::json!({"grant_type": "authorization_code"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}
