//! Second factors through the real pages in headless Chromium: a passkey registered on the
//! account page with Chromium's virtual authenticator, then used without a password and as a
//! second factor; and TOTP enrolled and used with a computed code.

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, Scope, TokenResponse};

use crate::support::mfa::totp_code;
use crate::support::rp::{discover, http};
use crate::support::webdriver::{Driver, browser_missing};
use crate::support::{ClientSpec, Options, PASSWORD, TestApp, param, query_of};

async fn sign_in_with_password(driver: &Driver, app: &TestApp, username: &str) {
    driver.goto(&format!("{}/login", app.issuer)).await;
    driver
        .type_into("input[name=username][autocomplete=username]", username)
        .await;
    driver
        .type_into(
            "input[name=password][autocomplete=current-password]",
            PASSWORD,
        )
        .await;
    driver.click("button[type=submit]").await;
}

#[tokio::test]
async fn a_passkey_registered_in_chromium_signs_in_without_a_password_and_as_second_factor() {
    if browser_missing() {
        return;
    }
    let app = TestApp::spawn_with(Options {
        host: "localhost",
        ..Default::default()
    })
    .await;
    let sub = app.add_user("alice", None, Some("Alice"));
    let redirect = format!("{}/", app.base);
    let mut spec = ClientSpec::confidential("app");
    spec.redirect_uris = vec![redirect.clone()];
    spec.skip_consent = true;
    let secret = app.add_client(spec);
    let rp = discover(&app.issuer, "app", secret, &redirect).await;

    let driver = Driver::start().await;
    let authenticator = driver.add_virtual_authenticator().await;
    sign_in_with_password(&driver, &app, "alice").await;
    driver.must("form[action='/account/password']").await;
    driver
        .goto(&format!("{}/account/passkeys", app.issuer))
        .await;
    driver.type_into("input[name=name]", "This computer").await;
    driver.click("button#passkey-register").await;
    driver.must("li[data-passkey]").await;
    assert!(driver.source().await.contains("This computer"));
    let creds = driver.credentials(&authenticator).await;
    assert_eq!(creds.len(), 1, "{creds:?}");
    assert_eq!(creds[0]["isResidentCredential"], true, "{creds:?}");

    // A new visitor on the same device: passwordless sign-in to the client.
    driver.delete_cookies().await;
    let (url, state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .url();
    driver.goto(url.as_str()).await;
    driver.click("button#passkey-login").await;
    driver.must("h1#home").await;
    let q = query_of(&driver.url().await);
    assert_eq!(param(&q, "state").as_deref(), Some(state.secret().as_str()));
    let tokens = rp
        .exchange_code(AuthorizationCode::new(param(&q, "code").expect("code")))
        .unwrap()
        .request_async(&http())
        .await
        .expect("token exchange");
    let id_token = tokens.id_token().unwrap();
    let claims = id_token
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("valid ID token");
    assert_eq!(claims.subject().as_str(), sub);
    let raw = crate::flow::jwt_payload(&id_token.to_string());
    assert_eq!(raw["acr"], "2");
    let amr = raw["amr"].to_string();
    assert!(amr.contains("mfa") && !amr.contains("pwd"), "{amr}");

    // And as the second factor after the password.
    driver.delete_cookies().await;
    sign_in_with_password(&driver, &app, "alice").await;
    driver
        .must("input[name=code][autocomplete=one-time-code]")
        .await;
    driver.click("button#passkey-signin").await;
    driver.must("form[action='/account/password']").await;
    assert!(driver.url().await.ends_with("/account"));
    let creds = driver.credentials(&authenticator).await;
    assert!(
        creds[0]["signCount"].as_i64().unwrap_or(0) >= 2,
        "{creds:?}"
    );
    driver.quit().await;
}

#[tokio::test]
async fn totp_enrolled_in_chromium_signs_in_with_a_code() {
    if browser_missing() {
        return;
    }
    let app = TestApp::spawn_with(Options {
        host: "localhost",
        ..Default::default()
    })
    .await;
    app.add_user("bob", None, None);
    let driver = Driver::start().await;
    sign_in_with_password(&driver, &app, "bob").await;
    driver.must("form[action='/account/password']").await;
    driver.goto(&format!("{}/account/totp", app.issuer)).await;
    driver.must(".qr svg").await;
    let secret = driver.text("#totp-secret").await;
    assert_eq!(secret.len(), 32);
    driver
        .type_into("input[name=code]", &totp_code(&secret, app.clock.naive()))
        .await;
    driver.click("button[type=submit]").await;
    driver.must("#factor-totp").await;
    assert!(driver.text("#factor-totp").await.contains("on"));

    driver.delete_cookies().await;
    app.advance(30);
    sign_in_with_password(&driver, &app, "bob").await;
    driver
        .type_into(
            "input[name=code][autocomplete=one-time-code]",
            &totp_code(&secret, app.clock.naive()),
        )
        .await;
    driver.click("button[type=submit]").await;
    driver.must("form[action='/account/password']").await;
    assert!(driver.url().await.ends_with("/account"));
    driver.quit().await;
}
