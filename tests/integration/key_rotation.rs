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
    portcullis::app::rotate_keys(&app.state).await.unwrap();
}

#[tokio::test]
async fn a_rotated_key_is_published_before_it_signs_and_the_old_one_stays_until_its_tokens_expire()
{
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    let secret = app.add_client(spec).unwrap();
    let old = kids(&app).await;
    assert_eq!(old.len(), 1);
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
    app.advance(app.state.config.rotation().retire_after);
    tick(&app).await;
    assert_eq!(kids(&app).await, vec![next.kid.clone()]);
}

#[tokio::test]
async fn keys_are_rotated_on_schedule() {
    let app = TestApp::spawn().await;
    assert_eq!(kids(&app).await.len(), 1);
    app.advance(91 * 86_400);
    tick(&app).await;
    assert_eq!(
        kids(&app).await.len(),
        2,
        "a next key was published by the schedule"
    );
}
