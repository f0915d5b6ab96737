//! RP-initiated logout and back-channel logout.

use actix_web::{App, HttpResponse, HttpServer, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::flow::{jwt_payload, urlencode};
use crate::support::browser::{Browser, Landing};
use crate::support::{ClientSpec, REDIRECT, TestApp, hidden, param, query_of};

const AFTER_LOGOUT: &str = "http://localhost:7777/signed-out";

/// A relying party's back-channel endpoint: records every POST body; the first `fail_first`
/// answers are 500.
struct Receiver {
    url: String,
    bodies: mpsc::UnboundedReceiver<String>,
}

async fn receiver(fail_first: usize) -> Receiver {
    let (tx, rx) = mpsc::unbounded_channel::<String>();
    let count = Arc::new(AtomicUsize::new(0));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let tx = tx.clone();
        let count = count.clone();
        App::new().route(
            "/backchannel",
            web::post().to(move |body: web::Bytes| {
                let tx = tx.clone();
                let n = count.fetch_add(1, Ordering::SeqCst);
                async move {
                    let _ = tx.send(String::from_utf8_lossy(&body).into_owned());
                    if n < fail_first {
                        HttpResponse::InternalServerError().finish()
                    } else {
                        HttpResponse::Ok().finish()
                    }
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    Receiver {
        url: format!("http://localhost:{port}/backchannel"),
        bodies: rx,
    }
}

impl Receiver {
    /// The next logout token received (bounded wait).
    async fn next_token(&mut self) -> String {
        let body = tokio::time::timeout(Duration::from_secs(20), self.bodies.recv())
            .await
            .expect("no back-channel logout arrived within 20 s")
            .unwrap();
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(body.as_bytes())
            .into_owned()
            .collect();
        param(&pairs, "logout_token").expect("logout_token")
    }
}

struct Signed {
    app: TestApp,
    browser: Browser,
    id_token: String,
}

async fn signed_in(backchannel: Option<String>) -> Signed {
    signed_in_with(backchannel, true).await
}

async fn signed_in_with(backchannel: Option<String>, delivery_loop: bool) -> Signed {
    let app = TestApp::spawn_with(crate::support::Options {
        delivery_loop,
        ..Default::default()
    })
    .await;
    app.add_user("alice", None, None);
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    spec.post_logout_redirect_uris = vec![AFTER_LOGOUT.into()];
    spec.backchannel_logout_uri = backchannel;
    let secret = app.add_client(spec).unwrap();
    let other = ClientSpec::confidential("other");
    app.add_client(other);
    let browser = Browser::new();
    let url = format!(
        "{}/authorize?response_type=code&client_id=app&redirect_uri={}&scope=openid&state=s&nonce=n",
        app.base,
        urlencode(REDIRECT)
    );
    let q = browser.authorize(&app, &url, "alice").await;
    let r: Value = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("app", Some(&secret))
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
    Signed {
        app,
        browser,
        id_token: r["id_token"].as_str().unwrap().to_string(),
    }
}

impl Signed {
    async fn still_signed_in(&self) -> bool {
        let url = format!(
            "{}/authorize?response_type=code&client_id=app&redirect_uri={}&scope=openid&state=s&prompt=none",
            self.app.base,
            urlencode(REDIRECT)
        );
        match self.browser.follow(&self.app, url).await {
            Landing::Client(_, q) => param(&q, "code").is_some(),
            other => panic!("{other:?}"),
        }
    }

    async fn logout(&self, query: &str) -> reqwest::Response {
        self.browser
            .http
            .get(format!("{}/logout?{query}", self.app.base))
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test]
async fn valid_id_token_hint_signs_out_and_redirects_with_the_exact_state() {
    let s = signed_in(None).await;
    assert!(s.still_signed_in().await);
    let state = "a b&c=d/é";
    let r = s
        .logout(&format!(
            "id_token_hint={}&post_logout_redirect_uri={}&state={}",
            s.id_token,
            urlencode(AFTER_LOGOUT),
            urlencode(state)
        ))
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(AFTER_LOGOUT), "{loc}");
    assert_eq!(param(&query_of(&loc), "state").as_deref(), Some(state));
    assert!(!s.still_signed_in().await);
}

#[tokio::test]
async fn state_is_omitted_when_not_sent_and_post_works_like_get() {
    let s = signed_in(None).await;
    let r = s
        .browser
        .http
        .post(s.app.url("/logout"))
        .form(&[
            ("id_token_hint", s.id_token.as_str()),
            ("post_logout_redirect_uri", AFTER_LOGOUT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
    assert_eq!(r.headers()["location"].to_str().unwrap(), AFTER_LOGOUT);
    assert!(!s.still_signed_in().await);
}

#[tokio::test]
async fn expired_id_token_hint_is_still_accepted_for_logout() {
    let s = signed_in(None).await;
    s.app.advance(3600);
    let r = s
        .logout(&format!(
            "id_token_hint={}&post_logout_redirect_uri={}",
            s.id_token,
            urlencode(AFTER_LOGOUT)
        ))
        .await;
    assert_eq!(r.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn unregistered_or_unattributable_post_logout_redirect_is_refused() {
    let s = signed_in(None).await;
    for query in [
        format!(
            "id_token_hint={}&post_logout_redirect_uri={}",
            s.id_token,
            urlencode("https://evil.example/")
        ),
        format!("post_logout_redirect_uri={}", urlencode(AFTER_LOGOUT)),
        format!(
            "client_id=other&post_logout_redirect_uri={}",
            urlencode(AFTER_LOGOUT)
        ),
        format!("client_id=other&id_token_hint={}", s.id_token),
    ] {
        let r = s.logout(&query).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{query}");
        assert!(r.headers().get("location").is_none(), "{query}");
    }
    assert!(
        s.still_signed_in().await,
        "a refused request signs nobody out"
    );
}

#[tokio::test]
async fn forged_tampered_and_unsigned_hints_are_refused() {
    let s = signed_in(None).await;
    let parts: Vec<&str> = s.id_token.split('.').collect();
    let mut claims = jwt_payload(&s.id_token);
    claims["sub"] = Value::String("someone-else".into());
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap()),
        parts[2]
    );
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#),
        parts[1]
    );
    let foreign_kid = format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","kid":"not-ours"}"#),
        parts[1],
        parts[2]
    );
    for hint in [tampered, none, foreign_kid, "garbage".to_string()] {
        let r = s
            .logout(&format!(
                "id_token_hint={hint}&post_logout_redirect_uri={}",
                urlencode(AFTER_LOGOUT)
            ))
            .await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        assert!(r.headers().get("location").is_none());
    }
    assert!(s.still_signed_in().await);
}

#[tokio::test]
async fn oversized_logout_parameters_are_refused_without_signing_out() {
    let s = signed_in(None).await;
    let r = s
        .logout(&format!(
            "id_token_hint={}&post_logout_redirect_uri={}&state={}",
            s.id_token,
            urlencode(AFTER_LOGOUT),
            "s".repeat(513)
        ))
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    assert!(s.still_signed_in().await);
}

#[tokio::test]
async fn logout_without_a_hint_asks_for_confirmation_first() {
    let s = signed_in(None).await;
    let r = s.logout("client_id=app&state=x").await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.unwrap();
    assert!(
        page.contains("name=\"decision\" value=\"logout\""),
        "{page}"
    );
    assert!(
        s.still_signed_in().await,
        "showing the page signs nobody out"
    );
    // A forged confirmation is refused.
    let r = s
        .browser
        .http
        .post(s.app.url("/logout"))
        .form(&[("decision", "logout"), ("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(s.still_signed_in().await);
    let r = s
        .browser
        .http
        .post(s.app.url("/logout"))
        .form(&[
            ("decision", "logout"),
            ("csrf_token", hidden(&page, "csrf_token").unwrap().as_str()),
            ("client_id", "app"),
            ("state", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.unwrap().contains("signed out"));
    assert!(!s.still_signed_in().await);
}

#[tokio::test]
async fn back_channel_logout_token_is_signed_and_well_formed() {
    let mut rx = receiver(0).await;
    let s = signed_in(Some(rx.url.clone())).await;
    let id_claims = jwt_payload(&s.id_token);
    let r = s.logout(&format!("id_token_hint={}", s.id_token)).await;
    assert_eq!(r.status(), StatusCode::OK, "signed-out page, no redirect");
    let token = rx.next_token().await;
    let claims = verify_against_jwks(&s.app, &token).await;
    assert_eq!(claims["iss"], s.app.issuer.as_str());
    assert_eq!(claims["aud"], "app");
    assert_eq!(claims["sub"], id_claims["sub"]);
    assert_eq!(claims["sid"], id_claims["sid"]);
    assert!(claims["iat"].is_i64());
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));
    assert!(claims.get("nonce").is_none());
    let events = claims["events"].as_object().unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(
        events["http://schemas.openid.net/event/backchannel-logout"],
        serde_json::json!({})
    );
}

#[tokio::test]
async fn back_channel_delivery_is_retried_after_a_failure() {
    let mut rx = receiver(1).await;
    // No background loop: the test drives each delivery pass itself.
    let s = signed_in_with(Some(rx.url.clone()), false).await;
    let r = s.logout(&format!("id_token_hint={}", s.id_token)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        portcullis::jobs::deliver_due(&s.app.state).await.unwrap(),
        1
    );
    let first = rx.next_token().await;
    // Not due again before the backoff has passed on the application's clock.
    assert_eq!(
        portcullis::jobs::deliver_due(&s.app.state).await.unwrap(),
        0
    );
    s.app.advance(3);
    assert_eq!(
        portcullis::jobs::deliver_due(&s.app.state).await.unwrap(),
        1
    );
    let second = rx.next_token().await;
    assert_eq!(first, second);
    // Delivered: nothing is due any more, however long we wait.
    s.app.advance(7200);
    assert_eq!(
        portcullis::jobs::deliver_due(&s.app.state).await.unwrap(),
        0
    );
}

/// Verifies a JWT against the published JWKS with the rsa crate, independently of the server.
async fn verify_against_jwks(app: &TestApp, jwt: &str) -> Value {
    use rsa::pkcs1v15::{Signature, VerifyingKey};
    use rsa::signature::Verifier;
    let jwks: Value = reqwest::get(app.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let parts: Vec<&str> = jwt.split('.').collect();
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[0]).unwrap()).unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "logout+jwt");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .expect("signing key published");
    let n =
        rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap());
    let e =
        rsa::BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap());
    let key = VerifyingKey::<sha2::Sha256>::new(rsa::RsaPublicKey::new(n, e).unwrap());
    let sig = Signature::try_from(URL_SAFE_NO_PAD.decode(parts[2]).unwrap().as_slice()).unwrap();
    key.verify(format!("{}.{}", parts[0], parts[1]).as_bytes(), &sig)
        .expect("logout token signature");
    jwt_payload(jwt)
}
