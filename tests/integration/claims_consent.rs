//! The `claims` request parameter (OpenID Connect Core §5.5) obeys the same rules as scopes:
//! only what the client is registered for, shown on the consent page and remembered by it.

use serde_json::Value;

use crate::flow::{authorize_url, jwt_payload, urlencode};
use crate::support::browser::{Browser, Landing};
use crate::support::mfa::exchange;
use crate::support::{ClientSpec, TestApp, param};

const ALL: &str = r#"{"id_token":{"email":null,"name":null,"groups":null,"preferred_username":null},"userinfo":{"email":null,"name":null,"groups":null,"email_verified":null}}"#;

async fn app_with(scopes: &'static str) -> (TestApp, String) {
    let app = TestApp::spawn().await;
    app.add_user("alice", Some("alice@example.com"), Some("Alice Liddell"));
    let mut spec = ClientSpec::confidential("app");
    spec.scopes = scopes;
    let secret = app.add_client(spec).unwrap();
    (app, secret)
}

fn claims(json: &str) -> String {
    format!("&claims={}", urlencode(json))
}

async fn userinfo(app: &TestApp, access: &str) -> Value {
    reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Signs in on `browser` and stops at the consent page; returns its HTML.
async fn consent_page(app: &TestApp, browser: &Browser, url: String) -> String {
    let mut landing = browser.follow(app, url).await;
    if let Landing::Page(_, path, body) = &landing
        && path == "/login"
    {
        landing = browser
            .submit_login(app, body, "alice", crate::support::PASSWORD)
            .await;
    }
    match landing {
        Landing::Page(_, path, body) if path == "/consent" => body,
        other => panic!("expected the consent page, got {other:?}"),
    }
}

async fn code_after_allow(app: &TestApp, browser: &Browser, page: &str) -> String {
    match browser.submit_consent(app, page, "allow").await {
        Landing::Client(_, q) => param(&q, "code").expect("code"),
        other => panic!("expected the client, got {other:?}"),
    }
}

#[tokio::test]
async fn claims_beyond_the_clients_registered_scopes_are_never_released() {
    let (app, secret) = app_with("openid").await;
    let browser = Browser::new();
    let page = consent_page(&app, &browser, authorize_url(&app, "openid", &claims(ALL))).await;
    for name in ["email", "name", "groups", "preferred_username"] {
        assert!(
            !page.contains(&format!("data-claim=\"{name}\"")),
            "{name} offered on the consent page: {page}"
        );
    }
    let code = code_after_allow(&app, &browser, &page).await;
    let t = exchange(&app, &secret, &code).await;
    let id = jwt_payload(t["id_token"].as_str().unwrap());
    for name in ["email", "name", "groups", "preferred_username"] {
        assert!(id.get(name).is_none(), "{name} in the ID token: {id}");
    }
    let info = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    let keys: Vec<&String> = info.as_object().unwrap().keys().collect();
    assert_eq!(keys, vec!["sub"], "{info}");
}

#[tokio::test]
async fn claims_asked_for_are_listed_on_the_consent_page_and_released_once_allowed() {
    let (app, secret) = app_with("openid profile email groups").await;
    let browser = Browser::new();
    let asked = r#"{"id_token":{"email":null},"userinfo":{"name":null}}"#;
    let page = consent_page(
        &app,
        &browser,
        authorize_url(&app, "openid", &claims(asked)),
    )
    .await;
    assert!(page.contains("data-claim=\"email\""), "{page}");
    assert!(page.contains("data-claim=\"name\""), "{page}");
    assert!(!page.contains("data-claim=\"groups\""), "{page}");
    let code = code_after_allow(&app, &browser, &page).await;
    let t = exchange(&app, &secret, &code).await;
    let id = jwt_payload(t["id_token"].as_str().unwrap());
    assert_eq!(id["email"], "alice@example.com");
    let info = userinfo(&app, t["access_token"].as_str().unwrap()).await;
    assert_eq!(info["name"], "Alice Liddell");
}

#[tokio::test]
async fn a_consent_remembered_for_fewer_claims_does_not_cover_a_request_for_more() {
    let (app, secret) = app_with("openid profile email groups").await;
    let browser = Browser::new();
    let email = claims(r#"{"id_token":{"email":null}}"#);
    let page = consent_page(&app, &browser, authorize_url(&app, "openid", &email)).await;
    code_after_allow(&app, &browser, &page).await;

    // The same claims again: remembered, even silently.
    let again = format!("{email}&prompt=none");
    let code = match browser
        .follow(&app, authorize_url(&app, "openid", &again))
        .await
    {
        Landing::Client(_, q) => param(&q, "code").expect("code"),
        other => panic!("{other:?}"),
    };
    let id = jwt_payload(
        exchange(&app, &secret, &code).await["id_token"]
            .as_str()
            .unwrap(),
    );
    assert_eq!(id["email"], "alice@example.com");

    // One claim more: prompt=none cannot release it.
    let more = claims(r#"{"id_token":{"email":null,"groups":null}}"#);
    match browser
        .follow(
            &app,
            authorize_url(&app, "openid", &format!("{more}&prompt=none")),
        )
        .await
    {
        Landing::Client(_, q) => {
            assert_eq!(param(&q, "error").as_deref(), Some("consent_required"));
            assert!(param(&q, "code").is_none());
        }
        other => panic!("{other:?}"),
    }
    // Interactively, the consent page asks for it.
    let page = consent_page(&app, &browser, authorize_url(&app, "openid", &more)).await;
    assert!(page.contains("data-claim=\"groups\""), "{page}");
}

#[tokio::test]
async fn prompt_none_after_a_consent_for_scopes_only_refuses_claims_with_consent_required() {
    let (app, _) = app_with("openid profile email groups").await;
    let browser = Browser::new();
    let page = consent_page(&app, &browser, authorize_url(&app, "openid", "")).await;
    code_after_allow(&app, &browser, &page).await;
    match browser
        .follow(
            &app,
            authorize_url(&app, "openid", &format!("{}&prompt=none", claims(ALL))),
        )
        .await
    {
        Landing::Client(_, q) => {
            assert_eq!(param(&q, "error").as_deref(), Some("consent_required"))
        }
        other => panic!("{other:?}"),
    }
}
