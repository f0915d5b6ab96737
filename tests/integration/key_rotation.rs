//! Signing key rotation: published before signing, kept after, removed when nothing it signed
//! can still be valid.

use portcullis::keys::signing;
use serde_json::Value;

use crate::flow::{jwt_payload, urlencode};
use crate::support::browser::Browser;
use crate::support::{ClientSpec, REDIRECT, TestApp, param};

async fn kids(app: &TestApp) -> Vec<String> {
    let jwks: Value = reqwest::get(app.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

fn header_kid(jwt: &str) -> String {
    use base64::Engine;
    let h = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(jwt.split('.').next().unwrap())
        .unwrap();
    serde_json::from_slice::<Value>(&h).unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn id_token(app: &TestApp, secret: &str) -> String {
    let url = format!(
        "{}/authorize?response_type=code&client_id=app&redirect_uri={}&scope=openid&state=s",
        app.base,
        urlencode(REDIRECT)
    );
    let q = Browser::new().authorize(app, &url, "alice").await;
    let r: Value = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("app", Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &param(&q, "code").unwrap()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["id_token"].as_str().unwrap().to_string()
}

async fn tick(app: &TestApp) {
    portcullis::jobs::rotate_keys(&app.state).await.unwrap();
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_and_the_old_one_stays_until_its_tokens_expire()
{
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    let secret = app.add_client(spec).unwrap();
    let first_id = id_token(&app, &secret).await;
    let old = [header_kid(&first_id)];
    assert_eq!(kids(&app).await.len(), 3, "one key per algorithm");
    let now = app.clock.naive();
    let next = signing::rotate(&mut app.conn(), &app.state.master, now)
        .unwrap()
        .unwrap();
    assert!(
        signing::rotate(&mut app.conn(), &app.state.master, now)
            .unwrap()
            .is_none(),
        "one pending rotation at a time"
    );
    tick(&app).await;
    let published = kids(&app).await;
    assert!(published.contains(&next.kid) && published.contains(&old[0]));
    // Not signing yet.
    assert_eq!(header_kid(&id_token(&app, &secret).await), old[0]);
    app.advance(app.state.config.key_publish_delay);
    tick(&app).await;
    let fresh = id_token(&app, &secret).await;
    assert_eq!(header_kid(&fresh), next.kid);
    assert!(
        kids(&app).await.contains(&old[0]),
        "the retired key stays published"
    );
    // Tokens of the new key verify with the openidconnect RP as before.
    assert_eq!(jwt_payload(&fresh)["aud"][0], "app");
    // A client that refetches the JWKS still verifies the token the retired key signed.
    let rp = crate::support::rp::discover(&app.issuer, "app", Some(secret.clone()), REDIRECT).await;
    for token in [&first_id, &fresh] {
        let parsed: openidconnect::core::CoreIdToken = token.parse().unwrap();
        parsed
            .claims(
                &rp.id_token_verifier(),
                |_: Option<&openidconnect::Nonce>| Ok(()),
            )
            .expect("verifiable after rotation");
    }
    app.advance(app.state.config.rotation().retire_after);
    tick(&app).await;
    let left = kids(&app).await;
    assert_eq!(left.len(), 3, "the retired keys are gone");
    assert!(left.contains(&next.kid) && !left.contains(&old[0]));
}

#[tokio::test]
async fn keys_are_rotated_on_schedule() {
    let app = TestApp::spawn().await;
    assert_eq!(kids(&app).await.len(), 3);
    app.advance(91 * 86_400);
    tick(&app).await;
    assert_eq!(
        kids(&app).await.len(),
        6,
        "next keys were published by the schedule"
    );
    assert_eq!(
        schedule_events(&app, "keys.rotate"),
        1,
        "the scheduled rotation is audited as the key schedule's doing"
    );
    app.advance(app.state.config.key_publish_delay);
    tick(&app).await;
    assert_eq!(
        schedule_events(&app, "keys.activate"),
        3,
        "one activation per algorithm"
    );
}

/// Audit entries of `event` made by the key schedule.
fn schedule_events(app: &TestApp, name: &str) -> i64 {
    use diesel::prelude::*;
    use portcullis::db::schema::audit_log::dsl::*;
    let mut c = app.conn();
    let conn: &mut portcullis::db::DbConn = &mut c;
    audit_log
        .filter(event.eq(name))
        .filter(actor.eq("key-schedule"))
        .count()
        .get_result(conn)
        .unwrap()
}

fn set_alg(app: &TestApp, client: &str, alg: &str) {
    app.sql(&format!(
        "UPDATE clients SET id_token_alg = '{alg}' WHERE client_id = '{client}'"
    ));
}

#[tokio::test]
async fn es256_and_eddsa_id_tokens_verify_with_the_relying_party() {
    use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm};
    use openidconnect::{AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, TokenResponse};
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    for (client, alg, jws) in [
        ("ec-app", "ES256", CoreJwsSigningAlgorithm::EcdsaP256Sha256),
        ("ed-app", "EdDSA", CoreJwsSigningAlgorithm::EdDsa),
    ] {
        let mut spec = ClientSpec::confidential(client);
        spec.skip_consent = true;
        let secret = app.add_client(spec).unwrap();
        set_alg(&app, client, alg);
        let rp = crate::support::rp::discover(&app.issuer, client, Some(secret), REDIRECT).await;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _, nonce) = rp
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .set_pkce_challenge(challenge)
            .url();
        let q = Browser::new().authorize(&app, url.as_str(), "alice").await;
        let tokens = rp
            .exchange_code(AuthorizationCode::new(param(&q, "code").unwrap()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&crate::support::rp::http())
            .await
            .unwrap();
        let id = tokens.id_token().unwrap();
        let v = rp.id_token_verifier().set_allowed_algs(vec![jws]);
        let claims = id.claims(&v, &nonce).expect("verifies against the JWKS");
        assert!(claims.access_token_hash().is_some());
        let raw = id.to_string();
        let header: Value = {
            use base64::Engine;
            serde_json::from_slice(
                &base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .decode(raw.split('.').next().unwrap())
                    .unwrap(),
            )
            .unwrap()
        };
        assert_eq!(header["alg"], alg);
        // The same token is a valid hint for logout.
        let r = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{}/logout?id_token_hint={raw}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), reqwest::StatusCode::OK, "{alg} hint accepted");
    }
    let d: Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut algs: Vec<String> =
        serde_json::from_value(d["id_token_signing_alg_values_supported"].clone()).unwrap();
    algs.sort();
    assert_eq!(algs, vec!["ES256", "EdDSA", "RS256"]);
}

#[tokio::test]
async fn a_key_published_by_one_instance_is_in_the_jwks_of_another_within_seconds() {
    fn one_master_key(c: &mut portcullis::config::Config) {
        c.master_key = Some((
            portcullis::keys::master::MasterKey::from_bytes([9u8; 32]),
            portcullis::keys::master::Source::Environment,
        ));
    }
    let a = TestApp::spawn_with(crate::support::Options {
        configure: Box::new(one_master_key),
        ..Default::default()
    })
    .await;
    let b = TestApp::spawn_with(crate::support::Options {
        database_url: Some(a.database_url.clone()),
        configure: Box::new(one_master_key),
        ..Default::default()
    })
    .await;
    assert_eq!(kids(&b).await.len(), 3);
    let next = signing::rotate(&mut a.conn(), &a.state.master, a.clock.naive())
        .unwrap()
        .unwrap();
    tick(&a).await;
    assert!(kids(&a).await.contains(&next.kid));
    // Instance b runs no key schedule of its own here; it looks again once a second.
    b.advance(2);
    assert!(
        kids(&b).await.contains(&next.kid),
        "the other instance publishes the new key without waiting for its own schedule"
    );
}
