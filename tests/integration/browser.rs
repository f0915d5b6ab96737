//! Signing in through the real pages in headless Chromium.

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, Scope, TokenResponse};

use crate::support::rp::{discover, http};
use crate::support::webdriver::Driver;
use crate::support::{ClientSpec, Options, PASSWORD, TestApp, param, query_of};

#[tokio::test]
async fn user_signs_in_and_consents_through_the_real_pages_in_chromium() {
    if crate::support::webdriver::browser_missing() {
        return;
    }
    let app = TestApp::spawn_with(Options {
        host: "localhost",
        ..Default::default()
    })
    .await;
    let sub = app.add_user("alice", Some("alice@example.com"), Some("Alice"));
    // The client lives on another origin than the provider (127.0.0.1 vs localhost), so the
    // pages' form-action policy must let the sign-in and consent posts lead there.
    let redirect = format!("{}/", app.base);
    let mut spec = ClientSpec::confidential("app");
    spec.redirect_uris = vec![redirect.clone()];
    let secret = app.add_client(spec);
    let rp = discover(&app.issuer, "app", secret, &redirect).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, state, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();

    let driver = Driver::start().await;
    driver.goto(url.as_str()).await;
    driver
        .must("form input[name=csrf_token][type=hidden]")
        .await;
    // A wrong password first: the page comes back with a generic alert.
    driver
        .type_into("input[name=username][autocomplete=username]", "alice")
        .await;
    driver
        .type_into(
            "input[name=password][autocomplete=current-password]",
            "not the password",
        )
        .await;
    driver.click("button[type=submit]").await;
    driver.must("[role=alert]").await;
    assert!(
        driver
            .source()
            .await
            .contains("Incorrect username or password")
    );
    driver
        .type_into("input[name=username][autocomplete=username]", "alice")
        .await;
    driver
        .type_into(
            "input[name=password][autocomplete=current-password]",
            PASSWORD,
        )
        .await;
    driver.click("button[type=submit]").await;
    driver.must("button[name=decision][value=deny]").await;
    let consent = driver.source().await;
    assert!(consent.contains("Example App"), "{consent}");
    assert!(consent.contains("Your name and username"), "{consent}");
    driver.click("button[name=decision][value=allow]").await;
    driver.must("h1#home").await;
    let landed = driver.url().await;
    driver.quit().await;

    let q = query_of(&landed);
    assert_eq!(
        param(&q, "state").as_deref(),
        Some(state.secret().as_str()),
        "{landed}"
    );
    assert_eq!(param(&q, "iss").as_deref(), Some(app.issuer.as_str()));
    let tokens = rp
        .exchange_code(AuthorizationCode::new(param(&q, "code").expect("code")))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("token exchange");
    let claims = tokens
        .id_token()
        .unwrap()
        .claims(&rp.id_token_verifier(), &nonce)
        .expect("valid ID token");
    assert_eq!(claims.subject().as_str(), sub);
}
