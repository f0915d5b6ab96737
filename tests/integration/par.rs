//! Pushed authorization requests (RFC 9126): the client posts its parameters, authenticated,
//! and the browser carries only `client_id` and `request_uri`.

use reqwest::StatusCode;
use serde_json::Value;

use crate::flow::{jwt_payload, urlencode};
use crate::support::browser::{Browser, Landing};
use crate::support::mfa::exchange;
use crate::support::{ClientSpec, REDIRECT, TestApp, param};

async fn push(app: &TestApp, secret: Option<&str>, form: &[(&str, &str)]) -> (StatusCode, Value) {
    let mut r = reqwest::Client::new().post(app.url("/par")).form(form);
    if let Some(s) = secret {
        r = r.basic_auth("app", Some(s));
    }
    let r = r.send().await.unwrap();
    let status = r.status();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    (status, r.json().await.unwrap())
}

fn standard<'a>() -> Vec<(&'a str, &'a str)> {
    vec![
        ("response_type", "code"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid profile"),
        ("state", "pushed-state"),
        ("nonce", "pushed-nonce"),
    ]
}

async fn app_with_client() -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    let secret = app.add_client(spec).unwrap();
    (app, secret)
}

fn authorize_with(app: &TestApp, request_uri: &str, extra: &str) -> String {
    format!(
        "{}/authorize?client_id=app&request_uri={}{extra}",
        app.base,
        urlencode(request_uri)
    )
}

#[tokio::test]
async fn a_pushed_request_signs_in_with_only_client_id_and_request_uri_in_the_browser() {
    let (app, secret) = app_with_client().await;
    let meta: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        meta["pushed_authorization_request_endpoint"],
        format!("{}/par", app.issuer)
    );
    let (status, body) = push(&app, Some(&secret), &standard()).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let request_uri = body["request_uri"].as_str().unwrap();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));
    assert_eq!(body["expires_in"], 60);

    // Parameters outside the pushed request are ignored (RFC 9126 §4).
    let q = Browser::new()
        .authorize(
            &app,
            &authorize_with(&app, request_uri, "&state=forged"),
            "alice",
        )
        .await;
    assert_eq!(param(&q, "state").as_deref(), Some("pushed-state"));
    let tokens = exchange(&app, &secret, &param(&q, "code").unwrap()).await;
    let claims = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["nonce"], "pushed-nonce");

    // Used once.
    match Browser::new()
        .follow(&app, authorize_with(&app, request_uri, ""))
        .await
    {
        Landing::Page(status, _, body) => {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(body.contains("expired or was already used"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_pushed_request_expires_after_a_minute_and_belongs_to_its_client() {
    let (app, secret) = app_with_client().await;
    let mut other = ClientSpec::confidential("other");
    other.skip_consent = true;
    app.add_client(other);
    let (_, body) = push(&app, Some(&secret), &standard()).await;
    let stolen = body["request_uri"].as_str().unwrap().to_string();
    let url = format!(
        "{}/authorize?client_id=other&request_uri={}",
        app.base,
        urlencode(&stolen)
    );
    match Browser::new().follow(&app, url).await {
        Landing::Page(status, _, body) => {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(body.contains("another application"), "{body}");
        }
        other => panic!("never a redirect: {other:?}"),
    }

    let (_, body) = push(&app, Some(&secret), &standard()).await;
    let late = body["request_uri"].as_str().unwrap().to_string();
    app.advance(61);
    match Browser::new()
        .follow(&app, authorize_with(&app, &late, ""))
        .await
    {
        Landing::Page(status, _, body) => {
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(body.contains("expired"));
        }
        other => panic!("{other:?}"),
    }
    // A request_uri we never issued.
    match Browser::new()
        .follow(
            &app,
            authorize_with(&app, "urn:ietf:params:oauth:request_uri:nothing", ""),
        )
        .await
    {
        Landing::Page(status, _, _) => assert_eq!(status, StatusCode::BAD_REQUEST),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn bad_pushed_requests_get_oauth_json_errors_and_store_nothing() {
    let (app, secret) = app_with_client().await;
    let (status, body) = push(&app, Some("wrong secret"), &standard()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"], "invalid_client");
    let (status, body) = push(&app, None, &standard()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    let mut unregistered = standard();
    unregistered[1] = ("redirect_uri", "https://evil.example/cb");
    let (status, body) = push(&app, Some(&secret), &unregistered).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    let mut token_type = standard();
    token_type[0] = ("response_type", "token");
    let (status, body) = push(&app, Some(&secret), &token_type).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "unsupported_response_type");

    let mut nested = standard();
    nested.push(("request_uri", "urn:ietf:params:oauth:request_uri:x"));
    let (status, body) = push(&app, Some(&secret), &nested).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_request"))
    );

    let mut with_object = standard();
    with_object.push(("request", "eyJhbGciOiJub25lIn0.e30."));
    let (_, body) = push(&app, Some(&secret), &with_object).await;
    assert_eq!(body["error"], "request_not_supported");

    let stored: i64 = {
        use diesel::prelude::*;
        use portcullis::db::schema::pushed_requests::dsl::*;
        let mut c = app.conn();
        let conn: &mut portcullis::db::DbConn = &mut c;
        pushed_requests.count().get_result(conn).unwrap()
    };
    assert_eq!(stored, 0);
    // Credentials in the body (client_secret_post) never land in the stored request.
    let mut poster = ClientSpec::confidential("poster");
    poster.auth_method = Some("client_secret_post");
    let secret = app.add_client(poster).unwrap();
    let mut in_body = standard();
    in_body.push(("client_id", "poster"));
    in_body.push(("client_secret", &secret));
    let (status, body) = push(&app, None, &in_body).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let params: Vec<String> = {
        use diesel::prelude::*;
        use portcullis::db::schema::pushed_requests::dsl::*;
        let mut c = app.conn();
        let conn: &mut portcullis::db::DbConn = &mut c;
        pushed_requests.select(params).load(conn).unwrap()
    };
    assert!(!params[0].contains(&secret));
}
