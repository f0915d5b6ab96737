//! Behaviour certified OpenID providers get exactly right (OpenID Connect Core, Discovery,
//! RFC 6749), as a relying party sees it.

use reqwest::StatusCode;
use serde_json::Value;

use crate::flow::{jwt_payload, urlencode};
use crate::support::browser::{Browser, Landing};
use crate::support::{ClientSpec, REDIRECT, TestApp, param};

struct Rp {
    app: TestApp,
    secret: String,
    browser: Browser,
}

async fn rp() -> Rp {
    let app = TestApp::spawn().await;
    app.add_user("alice", Some("alice@example.com"), Some("Alice Liddell"));
    app.add_user("bob", None, None);
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    let secret = app.add_client(spec).unwrap();
    Rp {
        app,
        secret,
        browser: Browser::new(),
    }
}

impl Rp {
    fn url(&self, extra: &str) -> String {
        format!(
            "{}/authorize?response_type=code&client_id=app&redirect_uri={}&state=s{extra}",
            self.app.base,
            urlencode(REDIRECT)
        )
    }

    async fn exchange(&self, code: &str) -> Value {
        let r = reqwest::Client::new()
            .post(self.app.url("/token"))
            .basic_auth("app", Some(&self.secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        r.json().await.unwrap()
    }

    async fn tokens(&self, extra: &str, user: &str) -> Value {
        let q = self
            .browser
            .authorize(&self.app, &self.url(extra), user)
            .await;
        self.exchange(&param(&q, "code").expect("code")).await
    }

    async fn userinfo(&self, access: &str) -> Value {
        reqwest::Client::new()
            .get(self.app.url("/userinfo"))
            .bearer_auth(access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn id_token_hint_on_authorize_allows_silent_reauthentication_with_the_same_sub_and_auth_time()
{
    let rp = rp().await;
    let first = rp.tokens("&scope=openid", "alice").await;
    let first_id = jwt_payload(first["id_token"].as_str().unwrap());
    rp.app.advance(5);
    let hint = first["id_token"].as_str().unwrap();
    match rp
        .browser
        .follow(
            &rp.app,
            rp.url(&format!("&scope=openid&prompt=none&id_token_hint={hint}")),
        )
        .await
    {
        Landing::Client(_, q) => {
            let second = rp.exchange(&param(&q, "code").expect("code")).await;
            let second_id = jwt_payload(second["id_token"].as_str().unwrap());
            assert_eq!(second_id["sub"], first_id["sub"]);
            assert_eq!(second_id["auth_time"], first_id["auth_time"]);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn id_token_hint_for_another_user_gives_login_required() {
    let rp = rp().await;
    // Bob's ID token, then Alice signs in on the same browser.
    let bob_browser = Browser::new();
    let q = bob_browser
        .authorize(&rp.app, &rp.url("&scope=openid"), "bob")
        .await;
    let bob = rp.exchange(&param(&q, "code").unwrap()).await;
    rp.tokens("&scope=openid", "alice").await;
    let hint = bob["id_token"].as_str().unwrap();
    match rp
        .browser
        .follow(
            &rp.app,
            rp.url(&format!("&scope=openid&prompt=none&id_token_hint={hint}")),
        )
        .await
    {
        Landing::Client(_, q) => assert_eq!(param(&q, "error").as_deref(), Some("login_required")),
        other => panic!("{other:?}"),
    }
    // A hint that is not ours at all is refused outright.
    match rp
        .browser
        .follow(&rp.app, rp.url("&scope=openid&id_token_hint=e30.e30.e30"))
        .await
    {
        Landing::Client(_, q) => assert_eq!(param(&q, "error").as_deref(), Some("invalid_request")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn claims_parameter_releases_requested_claims_where_asked() {
    let rp = rp().await;
    let claims = r#"{"userinfo":{"name":{"essential":true}},"id_token":{"email":null}}"#;
    let t = rp
        .tokens(
            &format!("&scope=openid&claims={}", urlencode(claims)),
            "alice",
        )
        .await;
    let id = jwt_payload(t["id_token"].as_str().unwrap());
    assert_eq!(id["email"], "alice@example.com");
    assert!(
        id.get("name").is_none(),
        "name was asked for userinfo only: {id}"
    );
    let info = rp.userinfo(t["access_token"].as_str().unwrap()).await;
    assert_eq!(info["name"], "Alice Liddell");
    assert!(
        info.get("email").is_none(),
        "email scope not granted: {info}"
    );
    // Malformed claims: invalid_request.
    match rp
        .browser
        .follow(&rp.app, rp.url("&scope=openid&claims=%7Bnope"))
        .await
    {
        Landing::Client(_, q) => assert_eq!(param(&q, "error").as_deref(), Some("invalid_request")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn claims_are_typed_as_the_spec_says_and_name_stays_out_of_the_id_token() {
    let rp = rp().await;
    let t = rp
        .tokens("&scope=openid%20profile%20email%20groups", "alice")
        .await;
    let id = jwt_payload(t["id_token"].as_str().unwrap());
    for absent in ["name", "email", "preferred_username"] {
        assert!(id.get(absent).is_none(), "{absent} in the ID token: {id}");
    }
    assert_eq!(id["acr"], "1");
    assert!(id["auth_time"].is_i64());
    let sub = id["sub"].as_str().unwrap();
    assert!(sub.len() <= 255 && sub.bytes().all(|b| (0x20..=0x7e).contains(&b)));
    let info = rp.userinfo(t["access_token"].as_str().unwrap()).await;
    assert_eq!(info["sub"], id["sub"]);
    assert!(info["email_verified"].is_boolean());
    assert!(info["updated_at"].is_i64());
    assert!(info["groups"].is_array());
    // Bob has no name or email: the claims are absent, never empty strings.
    let bob = Browser::new();
    let q = bob
        .authorize(&rp.app, &rp.url("&scope=openid%20profile%20email"), "bob")
        .await;
    let t = rp.exchange(&param(&q, "code").unwrap()).await;
    let info = rp.userinfo(t["access_token"].as_str().unwrap()).await;
    assert!(
        info.get("name").is_none() && info.get("email").is_none(),
        "{info}"
    );
}

#[tokio::test]
async fn error_description_is_printable_ascii_without_quotes_or_backslashes() {
    let rp = rp().await;
    let url = format!(
        "{}&scope=openid&response_type=code&{}=1&{}=2",
        rp.url(""),
        urlencode("wé\"ird\\"),
        urlencode("wé\"ird\\")
    );
    match rp.browser.follow(&rp.app, url).await {
        Landing::Client(_, q) => {
            assert_eq!(param(&q, "error").as_deref(), Some("invalid_request"));
            let d = param(&q, "error_description").unwrap();
            assert!(
                d.chars()
                    .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\'),
                "{d}"
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn authorization_requests_by_post_and_with_extra_parameters_succeed() {
    let rp = rp().await;
    rp.tokens("&scope=openid", "alice").await;
    let form = [
        ("response_type", "code"),
        ("client_id", "app"),
        ("redirect_uri", REDIRECT),
        ("scope", "email openid"),
        ("state", "posted"),
        ("display", "popup"),
        ("ui_locales", "se"),
        ("claims_locales", "se"),
        ("acr_values", "1 2"),
        ("login_hint", "alice"),
        ("extra", "foobar"),
    ];
    let r = rp
        .browser
        .http
        .post(rp.app.url("/authorize"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    let q = crate::support::query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(param(&q, "state").as_deref(), Some("posted"));
    let t = rp.exchange(&param(&q, "code").expect("code")).await;
    assert_eq!(jwt_payload(t["id_token"].as_str().unwrap())["acr"], "1");
}

#[tokio::test]
async fn discovery_lists_the_token_management_and_logout_endpoints() {
    let app = TestApp::spawn().await;
    let d: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for (key, path) in [
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
        ("end_session_endpoint", "/logout"),
    ] {
        assert_eq!(d[key], format!("{}{path}", app.issuer), "{key}");
    }
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
    assert_eq!(d["claims_parameter_supported"], true);
    assert_eq!(d["request_uri_parameter_supported"], false);
    assert!(
        d["acr_values_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("1"))
    );
    assert!(
        d["grant_types_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("client_credentials"))
    );
    assert!(
        d["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .contains(&Value::from("client_secret_post"))
    );
}
