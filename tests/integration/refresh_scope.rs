//! Refresh with a narrower scope (RFC 6749 §6): only the new access token is narrowed.

use reqwest::StatusCode;
use serde_json::Value;

use crate::support::browser::Browser;
use crate::support::{ClientSpec, REDIRECT, TestApp, param};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

async fn refresh(
    app: &TestApp,
    secret: &str,
    token: &str,
    scope: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![("grant_type", "refresh_token"), ("refresh_token", token)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("app", Some(secret))
        .form(&form)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

fn scopes(v: &Value) -> Vec<String> {
    let mut s: Vec<String> = v["scope"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .map(str::to_string)
        .collect();
    s.sort();
    s
}

#[tokio::test]
async fn a_narrower_refresh_narrows_the_access_token_and_keeps_the_grant() {
    let app = TestApp::spawn().await;
    app.add_user("alice", Some("alice@example.com"), Some("Alice"));
    let secret = app.add_client(ClientSpec::confidential("app")).unwrap();
    let url = app.url(&format!(
        "/authorize?response_type=code&client_id=app&redirect_uri={}\
         &scope=openid%20profile%20offline_access&state=s\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        crate::flow::urlencode(REDIRECT)
    ));
    let answer = Browser::new().authorize(&app, &url, "alice").await;
    let code = param(&answer, "code").unwrap();
    let first: Value = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("app", Some(&secret))
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
    let token = first["refresh_token"].as_str().unwrap().to_string();

    // Without offline_access: a narrower access token, and still a successor refresh token.
    let (status, narrowed) = refresh(&app, &secret, &token, Some("openid")).await;
    assert_eq!(status, StatusCode::OK, "{narrowed}");
    assert_eq!(scopes(&narrowed), vec!["openid"]);
    let successor = narrowed["refresh_token"]
        .as_str()
        .expect("leaving out offline_access must not burn the refresh token")
        .to_string();

    // The successor still carries the whole grant.
    let (status, full) = refresh(&app, &secret, &successor, None).await;
    assert_eq!(status, StatusCode::OK, "{full}");
    assert_eq!(scopes(&full), vec!["offline_access", "openid", "profile"]);
    let (status, wider) = refresh(
        &app,
        &secret,
        full["refresh_token"].as_str().unwrap(),
        Some("openid profile email"),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "never wider than granted: {wider}"
    );
    assert_eq!(wider["error"], "invalid_scope");
}
