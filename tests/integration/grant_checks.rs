//! What every grant checks before it yields tokens: the PKCE binding of the code, the user
//! behind it, and the client it belongs to (checked before anything is used up).

use base64::Engine;
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::flow::urlencode;
use crate::support::browser::{Browser, Landing};
use crate::support::{ClientSpec, REDIRECT, TestApp, param};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

struct Setup {
    app: TestApp,
    alice: String,
    secret: String,
    other_secret: String,
    browser: Browser,
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    let alice = app.add_user("alice", Some("alice@example.com"), None);
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    let secret = app.add_client(spec).unwrap();
    let mut other = ClientSpec::confidential("other");
    other.skip_consent = true;
    let other_secret = app.add_client(other).unwrap();
    Setup {
        app,
        alice,
        secret,
        other_secret,
        browser: Browser::new(),
    }
}

fn authorize(s: &Setup, scope: &str, extra: &str) -> String {
    format!(
        "{}/authorize?response_type=code&client_id=app&redirect_uri={}&scope={}&state=s{extra}",
        s.app.base,
        urlencode(REDIRECT),
        urlencode(scope)
    )
}

async fn code(s: &Setup, scope: &str, extra: &str) -> String {
    let q = s
        .browser
        .authorize(&s.app, &authorize(s, scope, extra), "alice")
        .await;
    param(&q, "code").expect("code")
}

async fn token(s: &Setup, who: (&str, &str), form: &[(&str, &str)]) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(s.app.url("/token"))
        .basic_auth(who.0, Some(who.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn exchange(s: &Setup, code: &str, verifier: Option<&str>) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        form.push(("code_verifier", v));
    }
    token(s, ("app", &s.secret), &form).await
}

fn disable_alice(s: &Setup) {
    let now = s.app.clock.naive();
    let n = portcullis::store::users::set_disabled(&mut s.app.conn(), &s.alice, true, now)
        .expect("disable");
    assert_eq!(n, 1);
}

async fn introspect(s: &Setup, token: &str) -> Value {
    reqwest::Client::new()
        .post(s.app.url("/introspect"))
        .basic_auth("app", Some(&s.secret))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn code_verifier_for_a_code_without_challenge_is_rejected() {
    let s = setup().await;
    let c = code(&s, "openid", "").await;
    let (status, body) = exchange(&s, &c, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    // With a challenge, the matching verifier still works.
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(VERIFIER.as_bytes()));
    let c = code(
        &s,
        "openid",
        &format!("&code_challenge={challenge}&code_challenge_method=S256"),
    )
    .await;
    let (status, body) = exchange(&s, &c, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn a_user_disabled_between_code_and_redemption_gets_no_tokens() {
    let s = setup().await;
    let c = code(&s, "openid offline_access", "").await;
    disable_alice(&s);
    let (status, body) = exchange(&s, &c, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("access_token").is_none());
}

#[tokio::test]
async fn a_disabled_users_refresh_is_refused_and_their_tokens_are_inactive() {
    let s = setup().await;
    let c = code(&s, "openid offline_access", "").await;
    let (status, tokens) = exchange(&s, &c, None).await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let refresh = tokens["refresh_token"].as_str().unwrap();
    disable_alice(&s);
    let (status, body) = token(
        &s,
        ("app", &s.secret),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    assert!(body.get("id_token").is_none());
    for t in [access, refresh] {
        assert_eq!(
            introspect(&s, t).await,
            serde_json::json!({"active": false})
        );
    }
    let info = reqwest::Client::new()
        .get(s.app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_code_presented_by_another_client_stays_usable_by_its_owner() {
    let s = setup().await;
    let c = code(&s, "openid", "").await;
    let (status, body) = token(
        &s,
        ("other", &s.other_secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", &c),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_grant");
    let (status, body) = exchange(&s, &c, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["id_token"].is_string());
}

#[tokio::test]
async fn a_request_uri_presented_with_another_client_id_stays_usable_by_its_owner() {
    let s = setup().await;
    let r = reqwest::Client::new()
        .post(s.app.url("/par"))
        .basic_auth("app", Some(&s.secret))
        .form(&[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", "pushed"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let body: Value = r.json().await.unwrap();
    let request_uri = urlencode(body["request_uri"].as_str().unwrap());
    let stolen = format!(
        "{}/authorize?client_id=other&request_uri={request_uri}",
        s.app.base
    );
    match Browser::new().follow(&s.app, stolen).await {
        Landing::Page(status, _, body) => {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(body.contains("another application"), "{body}");
        }
        other => panic!("never a redirect: {other:?}"),
    }
    let own = format!(
        "{}/authorize?client_id=app&request_uri={request_uri}",
        s.app.base
    );
    let q = s.browser.authorize(&s.app, &own, "alice").await;
    assert_eq!(param(&q, "state").as_deref(), Some("pushed"));
    assert!(param(&q, "code").is_some(), "{q:?}");
}
