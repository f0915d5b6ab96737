//! Native apps (RFC 8252): a loopback redirect URI registered without a port matches the
//! port the app listens on; everything else stays exact.

use reqwest::StatusCode;

use crate::support::browser::{Browser, Landing};
use crate::support::{ClientSpec, TestApp, param};

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn authorize_url(app: &TestApp, redirect: &str) -> String {
    app.url(&format!(
        "/authorize?response_type=code&client_id=cli&redirect_uri={}&scope=openid\
         &state=s&code_challenge={CHALLENGE}&code_challenge_method=S256",
        crate::flow::urlencode(redirect)
    ))
}

#[tokio::test]
async fn a_native_app_on_an_ephemeral_loopback_port_signs_in_and_redeems_its_code() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    app.add_client(ClientSpec {
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        ..ClientSpec::public("cli")
    });
    let redirect = "http://127.0.0.1:49152/callback";
    let answer = Browser::new()
        .authorize(&app, &authorize_url(&app, redirect), "alice")
        .await;
    let code = param(&answer, "code").expect("a code at the app's own port");
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "cli"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["id_token"].is_string());
}

#[tokio::test]
async fn a_loopback_uri_with_another_path_or_host_is_refused_with_the_error_page() {
    let app = TestApp::spawn().await;
    app.add_client(ClientSpec {
        redirect_uris: vec!["http://127.0.0.1/callback".into()],
        ..ClientSpec::public("cli")
    });
    for wrong in [
        "http://127.0.0.1:49152/elsewhere",
        "http://localhost:49152/callback",
        "https://127.0.0.1:49152/callback",
    ] {
        match Browser::new()
            .follow(&app, authorize_url(&app, wrong))
            .await
        {
            Landing::Page(status, _, _) => assert_eq!(status, StatusCode::BAD_REQUEST, "{wrong}"),
            other => panic!("{wrong} was redirected to: {other:?}"),
        }
    }
}
