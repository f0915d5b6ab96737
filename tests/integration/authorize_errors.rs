//! Every error path of the authorization endpoint and the sign-in page.

use reqwest::StatusCode;

use crate::flow::{authorize_url, jwt_payload, urlencode};
use crate::support::browser::{Browser, Landing};
use crate::support::{ClientSpec, PASSWORD, REDIRECT, TestApp, hidden, param, query_of};

async fn setup() -> TestApp {
    let app = TestApp::spawn().await;
    app.add_user("alice", Some("alice@example.com"), None);
    app.add_client(ClientSpec::confidential("app"));
    app.add_client(ClientSpec::public("spa"));
    app
}

fn no_redirect() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn redirect_params(app: &TestApp, url: &str) -> Vec<(String, String)> {
    let r = no_redirect().get(url).send().await.unwrap();
    assert_eq!(
        r.status(),
        StatusCode::FOUND,
        "expected a redirect for {url}"
    );
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with(REDIRECT), "redirected elsewhere: {loc}");
    let _ = app;
    query_of(&loc)
}

#[tokio::test]
async fn unknown_client_gets_an_html_error_page_and_no_redirect() {
    let app = setup().await;
    let url = format!(
        "{}/authorize?response_type=code&client_id=nobody&redirect_uri={}&scope=openid&state=s",
        app.base,
        urlencode(REDIRECT)
    );
    let r = no_redirect().get(&url).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(r.text().await.unwrap().contains("not registered"));
}

#[tokio::test]
async fn unregistered_redirect_uri_is_never_redirected_to() {
    let app = setup().await;
    for uri in [
        "https://evil.example/cb",
        "http://localhost:7777/callback/",
        "http://localhost:7777/callback?x=1",
    ] {
        let url = format!(
            "{}/authorize?response_type=code&client_id=app&redirect_uri={}&scope=openid&state=s",
            app.base,
            urlencode(uri)
        );
        let r = no_redirect().get(&url).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{uri}");
        assert!(r.headers().get("location").is_none(), "{uri}");
    }
}

#[tokio::test]
async fn protocol_errors_redirect_with_error_state_and_iss() {
    let app = setup().await;
    let cases = [
        ("&response_type=token", "unsupported_response_type"),
        ("&request=eyJhbGciOiJub25lIn0.e30.", "request_not_supported"),
        (
            "&request_uri=https%3A%2F%2Frp.example%2Fr",
            "request_uri_not_supported",
        ),
        (
            "&code_challenge=abc&code_challenge_method=plain",
            "invalid_request",
        ),
        ("&prompt=none%20login", "invalid_request"),
        ("&max_age=-1", "invalid_request"),
        ("&response_mode=fragment", "invalid_request"),
    ];
    for (extra, expected) in cases {
        let url = format!(
            "{}/authorize?client_id=app&redirect_uri={}&scope=openid&state=s%20t{}{}",
            app.base,
            urlencode(REDIRECT),
            if extra.contains("response_type") {
                ""
            } else {
                "&response_type=code"
            },
            extra
        );
        let q = redirect_params(&app, &url).await;
        assert_eq!(param(&q, "error").as_deref(), Some(expected), "{extra}");
        assert_eq!(param(&q, "state").as_deref(), Some("s t"), "{extra}");
        assert_eq!(
            param(&q, "iss").as_deref(),
            Some(app.issuer.as_str()),
            "{extra}"
        );
        assert!(param(&q, "code").is_none());
    }
    // Missing response_type.
    let url = format!(
        "{}/authorize?client_id=app&redirect_uri={}&scope=openid&state=s",
        app.base,
        urlencode(REDIRECT)
    );
    let q = redirect_params(&app, &url).await;
    assert_eq!(param(&q, "error").as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn public_clients_must_use_pkce_s256() {
    let app = setup().await;
    let url = format!(
        "{}/authorize?response_type=code&client_id=spa&redirect_uri={}&scope=openid&state=s",
        app.base,
        urlencode(REDIRECT)
    );
    let q = redirect_params(&app, &url).await;
    assert_eq!(param(&q, "error").as_deref(), Some("invalid_request"));
    assert!(param(&q, "error_description").unwrap().contains("PKCE"));
}

#[tokio::test]
async fn prompt_none_without_a_session_answers_login_required() {
    let app = setup().await;
    let q = redirect_params(&app, &authorize_url(&app, "openid", "&prompt=none")).await;
    assert_eq!(param(&q, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&q, "state").as_deref(), Some("st"));
}

#[tokio::test]
async fn prompt_none_without_consent_answers_consent_required() {
    let app = setup().await;
    let browser = Browser::new();
    // Sign in without consenting.
    let Landing::Page(_, _, login) = browser.follow(&app, app.url("/login")).await else {
        panic!()
    };
    browser.submit_login(&app, &login, "alice", PASSWORD).await;
    match browser
        .follow(&app, authorize_url(&app, "openid", "&prompt=none"))
        .await
    {
        Landing::Client(_, q) => {
            assert_eq!(param(&q, "error").as_deref(), Some("consent_required"))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn denying_consent_answers_access_denied() {
    let app = setup().await;
    let browser = Browser::new();
    let Landing::Page(_, _, login) = browser
        .follow(&app, authorize_url(&app, "openid", ""))
        .await
    else {
        panic!()
    };
    let Landing::Page(_, path, consent) =
        browser.submit_login(&app, &login, "alice", PASSWORD).await
    else {
        panic!()
    };
    assert_eq!(path, "/consent");
    match browser.submit_consent(&app, &consent, "deny").await {
        Landing::Client(_, q) => {
            assert_eq!(param(&q, "error").as_deref(), Some("access_denied"));
            assert_eq!(param(&q, "state").as_deref(), Some("st"));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_get_the_same_generic_alert() {
    let app = setup().await;
    let browser = Browser::new();
    let Landing::Page(_, _, login) = browser
        .follow(&app, authorize_url(&app, "openid", ""))
        .await
    else {
        panic!()
    };
    let a = browser
        .submit_login(&app, &login, "alice", "wrong password!!")
        .await;
    let b = browser
        .submit_login(&app, &login, "nobody-here", "wrong password!!")
        .await;
    let (Landing::Page(sa, _, ba), Landing::Page(sb, _, bb)) = (a, b) else {
        panic!("expected pages")
    };
    assert_eq!(sa, sb);
    let alert = |b: &str| {
        let i = b.find("role=\"alert\"").expect("alert");
        b[i..i + 60].to_string()
    };
    assert_eq!(alert(&ba), alert(&bb));
    assert!(ba.contains("Incorrect username or password"));
    // The page keeps working: the right password still signs in.
    match browser.submit_login(&app, &ba, "alice", PASSWORD).await {
        Landing::Page(_, path, _) => assert_eq!(path, "/consent"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn sign_in_without_a_valid_csrf_token_is_refused() {
    let app = setup().await;
    let browser = Browser::new();
    let Landing::Page(_, _, login) = browser.follow(&app, app.url("/login")).await else {
        panic!()
    };
    let forged = login.replace(&hidden(&login, "csrf_token").unwrap(), "forged");
    match browser.submit_login(&app, &forged, "alice", PASSWORD).await {
        Landing::Page(status, _, _) => assert_eq!(status, StatusCode::FORBIDDEN),
        other => panic!("{other:?}"),
    }
    // A fresh browser without any session cookie is refused too.
    let other = Browser::new();
    match other.submit_login(&app, &login, "alice", PASSWORD).await {
        Landing::Page(status, _, _) => assert_eq!(status, StatusCode::FORBIDDEN),
        x => panic!("{x:?}"),
    }
}

#[tokio::test]
async fn sign_in_rotates_the_session_id() {
    let app = setup().await;
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = browser.get(app.url("/login")).send().await.unwrap();
    let before = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = r.text().await.unwrap();
    let r = browser
        .post(app.url("/login"))
        .header("cookie", &before)
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &hidden(&page, "csrf_token").unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let after = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(before, after);
    // The pre-sign-in id is gone.
    let home = browser
        .get(app.url("/"))
        .header("cookie", &before)
        .send()
        .await
        .unwrap();
    assert!(!home.text().await.unwrap().contains("signed in as"));
    let home = browser
        .get(app.url("/"))
        .header("cookie", &after)
        .send()
        .await
        .unwrap();
    assert!(home.text().await.unwrap().contains("signed in as"));
}

#[tokio::test]
async fn prompt_login_and_max_age_force_a_fresh_sign_in_with_a_later_auth_time() {
    let app = setup().await;
    let secret = {
        let mut s = ClientSpec::confidential("fast");
        s.skip_consent = true;
        app.add_client(s).unwrap()
    };
    let browser = Browser::new();
    let url = |extra: &str| {
        format!(
            "{}/authorize?response_type=code&client_id=fast&redirect_uri={}&scope=openid&state=s{}",
            app.base,
            urlencode(REDIRECT),
            extra
        )
    };
    let first = browser.authorize(&app, &url(""), "alice").await;
    let t1 = auth_time(&app, &secret, &param(&first, "code").unwrap()).await;
    app.advance(30);
    // Silent: same auth_time.
    let silent = browser.authorize(&app, &url(""), "alice").await;
    assert_eq!(
        auth_time(&app, &secret, &param(&silent, "code").unwrap()).await,
        t1
    );
    // prompt=login shows the sign-in page again.
    match browser.follow(&app, url("&prompt=login")).await {
        Landing::Page(_, path, _) => assert_eq!(path, "/login"),
        other => panic!("{other:?}"),
    }
    let forced = browser
        .authorize(&app, &url("&prompt=login"), "alice")
        .await;
    let t2 = auth_time(&app, &secret, &param(&forced, "code").unwrap()).await;
    assert!(t2 > t1);
    app.advance(30);
    // max_age=10 is exceeded after 30 s.
    match browser.follow(&app, url("&max_age=10")).await {
        Landing::Page(_, path, _) => assert_eq!(path, "/login"),
        other => panic!("{other:?}"),
    }
    let aged = browser.authorize(&app, &url("&max_age=10"), "alice").await;
    let t3 = auth_time(&app, &secret, &param(&aged, "code").unwrap()).await;
    assert!(t3 > t2);
}

async fn auth_time(app: &TestApp, secret: &str, code: &str) -> i64 {
    let r: serde_json::Value = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("fast", Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    jwt_payload(r["id_token"].as_str().expect("id_token"))["auth_time"]
        .as_i64()
        .expect("auth_time")
}

#[tokio::test]
async fn cross_site_form_posts_are_refused() {
    let app = setup().await;
    let r = reqwest::Client::new()
        .post(app.url("/login"))
        .header("sec-fetch-site", "cross-site")
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = reqwest::Client::new()
        .post(app.url("/consent"))
        .header("origin", "https://evil.example")
        .form(&[("decision", "allow"), ("request", "x"), ("csrf_token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
