use reqwest::StatusCode;

use crate::support::TestApp;

#[tokio::test]
async fn bad_bearer_token_gets_401_with_invalid_token_challenge() {
    let app = TestApp::spawn().await;
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        r.headers()["www-authenticate"],
        "Bearer realm=\"portcullis\""
    );
    let r = reqwest::Client::new()
        .post(app.url("/userinfo"))
        .form(&[("access_token", "nope")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}
