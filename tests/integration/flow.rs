//! The whole flow as a relying party sees it, through the `openidconnect` crate.

use openidconnect::core::{CoreAuthenticationFlow, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    Scope, TokenResponse,
};

use crate::support::browser::Browser;
use crate::support::rp::{discover, http};
use crate::support::{ClientSpec, REDIRECT, TestApp, param};

#[tokio::test]
async fn relying_party_signs_in_verifies_the_id_token_calls_userinfo_and_refreshes() {
    eprintln!("database backend: {}", crate::support::backend());
    let app = TestApp::spawn().await;
    let sub = app.add_user("alice", Some("alice@example.com"), Some("Alice Liddell"));
    let secret = app.add_client(ClientSpec::confidential("app"));
    let rp = discover(&app.issuer, "app", secret, REDIRECT).await;

    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("offline_access".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = Browser::new();
    let answer = browser.authorize(&app, url.as_str(), "alice").await;
    assert_eq!(
        param(&answer, "state").as_deref(),
        Some(state.secret().as_str())
    );
    assert_eq!(param(&answer, "iss").as_deref(), Some(app.issuer.as_str()));
    let code = param(&answer, "code").expect("code");

    let tokens = rp
        .exchange_code(AuthorizationCode::new(code))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("token exchange");
    let id_token = tokens.id_token().expect("id_token");
    let verifier = rp.id_token_verifier();
    let claims = id_token.claims(&verifier, &nonce).expect("valid ID token");
    assert_eq!(claims.subject().as_str(), sub);
    assert!(claims.auth_time().is_some());
    assert_eq!(claims.authorized_party().map(|a| a.as_str()), Some("app"));
    let amr: Vec<String> = claims
        .auth_method_refs()
        .unwrap()
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(amr, vec!["pwd".to_string()]);
    let at_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&at_hash));
    let raw: serde_json::Value = jwt_payload(&id_token.to_string());
    assert!(raw["sid"].as_str().is_some_and(|s| !s.is_empty()), "{raw}");
    assert!(
        raw.get("email").is_none(),
        "profile claims belong to userinfo: {raw}"
    );

    let info: CoreUserInfoClaims = rp
        .user_info(tokens.access_token().clone(), None)
        .unwrap()
        .request_async(&http())
        .await
        .expect("userinfo");
    assert_eq!(info.subject().as_str(), sub);
    assert_eq!(info.email().map(|e| e.as_str()), Some("alice@example.com"));
    assert_eq!(info.preferred_username().map(|u| u.as_str()), Some("alice"));

    let refresh = tokens.refresh_token().expect("refresh token").clone();
    app.advance(60);
    let refreshed = rp
        .exchange_refresh_token(&refresh)
        .unwrap()
        .request_async(&http())
        .await
        .expect("refresh");
    assert_ne!(
        refreshed.access_token().secret(),
        tokens.access_token().secret()
    );
    let new_refresh = refreshed.refresh_token().expect("rotated refresh token");
    assert_ne!(new_refresh.secret(), refresh.secret());
    let new_id: serde_json::Value =
        jwt_payload(&refreshed.id_token().expect("id_token").to_string());
    assert_eq!(new_id["sub"], sub.as_str());
    assert_eq!(
        new_id["auth_time"], raw["auth_time"],
        "refresh keeps the original auth_time"
    );
    assert!(new_id["iat"].as_i64() > raw["iat"].as_i64());
}

#[tokio::test]
async fn consent_is_remembered_and_the_second_request_skips_the_page() {
    let app = TestApp::spawn().await;
    app.add_user("bob", None, None);
    app.add_client(ClientSpec::confidential("app"));
    let browser = Browser::new();
    let url = authorize_url(&app, "openid profile", "");
    let first = browser.authorize(&app, &url, "bob").await;
    assert!(param(&first, "code").is_some());
    // Same browser, same scopes: no sign-in, no consent page, straight back with a code.
    let second = browser.follow(&app, url.clone()).await;
    match second {
        crate::support::browser::Landing::Client(_, q) => assert!(param(&q, "code").is_some()),
        other => panic!("expected a redirect to the client, got {other:?}"),
    }
    // prompt=consent shows the page again.
    let forced = browser
        .follow(
            &app,
            authorize_url(&app, "openid profile", "&prompt=consent"),
        )
        .await;
    match forced {
        crate::support::browser::Landing::Page(_, path, body) => {
            assert_eq!(path, "/consent");
            assert!(body.contains("Example App"));
            assert!(body.contains("Your name and username"));
            assert!(body.contains("name=\"decision\" value=\"allow\""));
            assert!(body.contains("name=\"decision\" value=\"deny\""));
        }
        other => panic!("expected the consent page, got {other:?}"),
    }
}

#[tokio::test]
async fn skip_consent_clients_never_show_the_consent_page() {
    let app = TestApp::spawn().await;
    app.add_user("carol", None, None);
    let mut spec = ClientSpec::confidential("trusted");
    spec.skip_consent = true;
    app.add_client(spec);
    let browser = Browser::new();
    let url = format!(
        "{}/authorize?response_type=code&client_id=trusted&redirect_uri={}&scope=openid&state=s1",
        app.base,
        urlencode(REDIRECT)
    );
    let login = browser.follow(&app, url).await;
    let crate::support::browser::Landing::Page(_, path, body) = login else {
        panic!("expected the sign-in page")
    };
    assert_eq!(path, "/login");
    match browser
        .submit_login(&app, &body, "carol", crate::support::PASSWORD)
        .await
    {
        crate::support::browser::Landing::Client(_, q) => {
            assert!(param(&q, "code").is_some());
            assert_eq!(param(&q, "state").as_deref(), Some("s1"));
        }
        other => panic!("expected the client, got {other:?}"),
    }
}

#[tokio::test]
async fn form_post_response_mode_renders_an_auto_submitting_form_to_the_client() {
    let app = TestApp::spawn().await;
    app.add_user("dave", None, None);
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    app.add_client(spec);
    let browser = Browser::new();
    let url = authorize_url(&app, "openid", "&response_mode=form_post");
    let crate::support::browser::Landing::Page(_, _, login) = browser.follow(&app, url).await
    else {
        panic!("expected sign-in")
    };
    let form = vec![
        ("username".to_string(), "dave".to_string()),
        ("password".to_string(), crate::support::PASSWORD.to_string()),
        (
            "csrf_token".to_string(),
            crate::support::hidden(&login, "csrf_token").unwrap(),
        ),
        (
            "request".to_string(),
            crate::support::hidden(&login, "request").unwrap(),
        ),
    ];
    let r = browser
        .http
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let next = r.headers()["location"].to_str().unwrap().to_string();
    let page = browser.http.get(app.url(&next)).send().await.unwrap();
    let csp = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("form-action 'self' http://localhost:7777"),
        "{csp}"
    );
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    let body = page.text().await.unwrap();
    assert!(body.contains(&format!("action=\"{REDIRECT}\"")), "{body}");
    assert!(crate::support::hidden(&body, "code").is_some());
    assert_eq!(
        crate::support::hidden(&body, "state").as_deref(),
        Some("st")
    );
    assert_eq!(
        crate::support::hidden(&body, "iss").as_deref(),
        Some(app.issuer.as_str())
    );
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// An authorization URL for client `app` with PKCE off (confidential client) and extra parameters.
pub fn authorize_url(app: &TestApp, scope: &str, extra: &str) -> String {
    format!(
        "{}/authorize?response_type=code&client_id=app&redirect_uri={}&scope={}&state=st{}",
        app.base,
        urlencode(REDIRECT),
        urlencode(scope),
        extra
    )
}

pub fn jwt_payload(jwt: &str) -> serde_json::Value {
    use base64::Engine;
    let part = jwt.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
