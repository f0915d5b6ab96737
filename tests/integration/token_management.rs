//! Client credentials, revocation (RFC 7009) and introspection (RFC 7662).

use reqwest::StatusCode;
use serde_json::Value;

use crate::flow::urlencode;
use crate::support::browser::Browser;
use crate::support::{ClientSpec, REDIRECT, TestApp, param};

struct Setup {
    app: TestApp,
    secret: String,
    other_secret: String,
}

async fn setup() -> Setup {
    let app = TestApp::spawn().await;
    app.add_user("alice", Some("alice@example.com"), None);
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    spec.scopes = "openid profile email offline_access api:read api:write";
    spec.grant_types = vec!["authorization_code", "refresh_token", "client_credentials"];
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

async fn post(
    s: &Setup,
    path: &str,
    who: (&str, &str),
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let r = reqwest::Client::new()
        .post(s.app.url(path))
        .basic_auth(who.0, Some(who.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = r.status();
    assert_eq!(r.headers()["cache-control"], "no-store", "{path}");
    let text = r.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Signs alice in for `client` and returns its token response.
async fn tokens(s: &Setup, client: &str, secret: &str, scope: &str) -> Value {
    let url = format!(
        "{}/authorize?response_type=code&client_id={client}&redirect_uri={}&scope={}&state=s",
        s.app.base,
        urlencode(REDIRECT),
        urlencode(scope)
    );
    let q = Browser::new().authorize(&s.app, &url, "alice").await;
    let code = param(&q, "code").unwrap();
    let (status, body) = post(
        s,
        "/token",
        (client, secret),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn client_credentials_issue_an_access_token_limited_to_registered_api_scopes() {
    let s = setup().await;
    let (status, body) = post(
        &s,
        "/token",
        ("app", &s.secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["scope"], "api:read api:write");
    assert!(body.get("refresh_token").is_none());
    assert!(body.get("id_token").is_none());
    let (status, body) = post(
        &s,
        "/token",
        ("app", &s.secret),
        &[("grant_type", "client_credentials"), ("scope", "api:read")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["scope"], "api:read");
    let (status, body) = post(
        &s,
        "/token",
        ("app", &s.secret),
        &[("grant_type", "client_credentials"), ("scope", "api:admin")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_scope");
    let (status, body) = post(
        &s,
        "/token",
        ("app", &s.secret),
        &[("grant_type", "client_credentials"), ("scope", "openid")],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_scope"))
    );
    // A client not registered for the grant.
    let (status, body) = post(
        &s,
        "/token",
        ("other", &s.other_secret),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unauthorized_client");
    // A wrong secret.
    let (status, body) = post(
        &s,
        "/token",
        ("app", "wrong"),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
}

#[tokio::test]
async fn introspection_describes_live_tokens_and_says_inactive_otherwise() {
    let s = setup().await;
    let t = tokens(&s, "app", &s.secret, "openid offline_access").await;
    let access = t["access_token"].as_str().unwrap();
    let (status, body) = post(&s, "/introspect", ("app", &s.secret), &[("token", access)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "app");
    assert_eq!(body["username"], "alice");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iss"], s.app.issuer.as_str());
    assert_eq!(body["aud"], "app");
    assert!(body["sub"].is_string());
    assert!(body["scope"].as_str().unwrap().contains("openid"));
    assert!(body["exp"].as_i64().unwrap() > body["iat"].as_i64().unwrap());
    // Another client's business: inactive.
    let (_, body) = post(
        &s,
        "/introspect",
        ("other", &s.other_secret),
        &[("token", access)],
    )
    .await;
    assert_eq!(body, serde_json::json!({"active": false}));
    // Unknown.
    let (_, body) = post(&s, "/introspect", ("app", &s.secret), &[("token", "nope")]).await;
    assert_eq!(body, serde_json::json!({"active": false}));
    // Expired.
    s.app.advance(601);
    let (_, body) = post(&s, "/introspect", ("app", &s.secret), &[("token", access)]).await;
    assert_eq!(body, serde_json::json!({"active": false}));
    // The refresh token is still live.
    let refresh = t["refresh_token"].as_str().unwrap();
    let (_, body) = post(&s, "/introspect", ("app", &s.secret), &[("token", refresh)]).await;
    assert_eq!(body["active"], true);
}

#[tokio::test]
async fn introspection_requires_client_authentication() {
    let s = setup().await;
    let (status, body) = post(&s, "/introspect", ("app", "wrong"), &[("token", "x")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    let r = reqwest::Client::new()
        .post(s.app.url("/introspect"))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = post(&s, "/introspect", ("app", &s.secret), &[]).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_the_access_tokens_of_its_family() {
    let s = setup().await;
    let t = tokens(&s, "app", &s.secret, "openid offline_access").await;
    let access = t["access_token"].as_str().unwrap();
    let refresh = t["refresh_token"].as_str().unwrap();
    let (status, _) = post(
        &s,
        "/revoke",
        ("app", &s.secret),
        &[("token", refresh), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    for token in [access, refresh] {
        let (_, body) = post(&s, "/introspect", ("app", &s.secret), &[("token", token)]).await;
        assert_eq!(body["active"], false);
    }
    let (_, body) = post(
        &s,
        "/token",
        ("app", &s.secret),
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_eq!(body["error"], "invalid_grant");
}

#[tokio::test]
async fn revoking_an_access_token_without_a_hint_leaves_the_refresh_token() {
    let s = setup().await;
    let t = tokens(&s, "app", &s.secret, "openid offline_access").await;
    let access = t["access_token"].as_str().unwrap();
    let (status, _) = post(&s, "/revoke", ("app", &s.secret), &[("token", access)]).await;
    assert_eq!(status, StatusCode::OK);
    let info = reqwest::Client::new()
        .get(s.app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::UNAUTHORIZED);
    let (_, body) = post(
        &s,
        "/introspect",
        ("app", &s.secret),
        &[("token", t["refresh_token"].as_str().unwrap())],
    )
    .await;
    assert_eq!(body["active"], true);
}

#[tokio::test]
async fn another_clients_token_is_not_revoked_and_the_answer_is_still_200() {
    let s = setup().await;
    let t = tokens(&s, "app", &s.secret, "openid").await;
    let access = t["access_token"].as_str().unwrap();
    let (status, _) = post(
        &s,
        "/revoke",
        ("other", &s.other_secret),
        &[("token", access)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (_, body) = post(&s, "/introspect", ("app", &s.secret), &[("token", access)]).await;
    assert_eq!(body["active"], true);
    // Unknown tokens: 200 as well.
    let (status, _) = post(&s, "/revoke", ("app", &s.secret), &[("token", "unknown")]).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn revocation_requires_client_authentication_and_a_token() {
    let s = setup().await;
    let (status, body) = post(&s, "/revoke", ("app", "wrong"), &[("token", "x")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    let (status, body) = post(&s, "/revoke", ("app", &s.secret), &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_request");
}
