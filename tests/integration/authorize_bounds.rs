//! Authorization requests are bounded: numbers parse into bounded types, every string has a
//! length limit, and parked (`/authorize`) and pushed (`/par`) requests have a ceiling.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue};
use serde_json::Value;

use crate::flow::urlencode;
use crate::support::browser::{Browser, Landing};
use crate::support::{ClientSpec, Options, REDIRECT, TestApp, param};

async fn app_with(opts: Options) -> (TestApp, String) {
    let app = TestApp::spawn_with(opts).await;
    app.add_user("alice", None, None);
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    let secret = app.add_client(spec).unwrap();
    (app, secret)
}

fn url(app: &TestApp, extra: &str) -> String {
    format!(
        "{}/authorize?response_type=code&client_id=app&redirect_uri={}&scope=openid&state=st{extra}",
        app.base,
        urlencode(REDIRECT)
    )
}

/// The standard request with `name` set to `value` (replacing it if present).
fn with(app: &TestApp, name: &str, value: &str) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", "app"),
        ("redirect_uri", REDIRECT),
        ("scope", "openid"),
        ("state", "st"),
    ];
    pairs.retain(|(k, _)| *k != name);
    pairs.push((name, value));
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{}/authorize?{q}", app.base)
}

fn no_redirect(ip: Option<&str>) -> reqwest::Client {
    let mut h = HeaderMap::new();
    if let Some(ip) = ip {
        h.insert("x-forwarded-for", HeaderValue::from_str(ip).unwrap());
    }
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(h)
        .build()
        .unwrap()
}

#[tokio::test]
async fn extreme_max_age_values_get_an_answer_and_sign_in_keeps_working() {
    let (app, _) = app_with(Options::default()).await;
    let browser = Browser::new();
    let first = browser.authorize(&app, &url(&app, ""), "alice").await;
    assert!(param(&first, "code").is_some());
    // Signed in: the largest i64 is a long time, not an overflow.
    for huge in ["9223372036854775807", "315360000000"] {
        match browser
            .follow(&app, url(&app, &format!("&max_age={huge}")))
            .await
        {
            Landing::Client(_, q) => assert!(param(&q, "code").is_some(), "{huge}: {q:?}"),
            other => panic!("{huge}: {other:?}"),
        }
    }
    // Not a non-negative integer that fits: invalid_request at the client.
    for bad in [
        "9223372036854775808",
        "-9223372036854775808",
        "99999999999999999999999999",
        "-1",
        "1e3",
        "+5",
        " 5",
        "",
    ] {
        match browser
            .follow(&app, url(&app, &format!("&max_age={}", urlencode(bad))))
            .await
        {
            Landing::Client(_, q) => {
                assert_eq!(
                    param(&q, "error").as_deref(),
                    Some("invalid_request"),
                    "{bad:?}"
                );
                assert_eq!(param(&q, "state").as_deref(), Some("st"), "{bad:?}");
            }
            other => panic!("{bad:?}: {other:?}"),
        }
    }
    // max_age=0 still asks for a fresh sign-in once any time has passed.
    app.advance(1);
    match browser.follow(&app, url(&app, "&max_age=0")).await {
        Landing::Page(_, path, _) => assert_eq!(path, "/login"),
        other => panic!("{other:?}"),
    }
    // The server is healthy: a new browser signs in from scratch.
    let later = Browser::new()
        .authorize(&app, &url(&app, ""), "alice")
        .await;
    assert!(param(&later, "code").is_some(), "{later:?}");
}

/// Each bounded parameter with its limit, and a value of that length the request accepts.
fn at_limit() -> Vec<(&'static str, String)> {
    let claims = |n: usize| {
        let base = r#"{"userinfo":{"name":null}}"#;
        format!("{base}{}", " ".repeat(n - base.len()))
    };
    vec![
        ("state", "s".repeat(512)),
        ("nonce", "n".repeat(512)),
        ("login_hint", "h".repeat(256)),
        ("acr_values", "1".repeat(256)),
        ("ui_locales", "e".repeat(256)),
        ("claims_locales", "e".repeat(256)),
        ("display", "p".repeat(32)),
        ("claims", claims(4096)),
        ("scope", format!("openid{}", " x".repeat((1024 - 6) / 2))),
    ]
}

#[tokio::test]
async fn oversized_parameters_are_refused_and_parameters_at_their_limit_are_not() {
    let (app, _) = app_with(Options::default()).await;
    let browser = Browser::new();
    browser.authorize(&app, &url(&app, ""), "alice").await;
    for (name, value) in at_limit() {
        match browser.follow(&app, with(&app, name, &value)).await {
            Landing::Client(_, q) => assert!(param(&q, "code").is_some(), "{name}: {q:?}"),
            other => panic!("{name} at its limit: {other:?}"),
        }
        let bad_url = with(&app, name, &format!("{value}x"));
        match browser.follow(&app, bad_url).await {
            Landing::Client(_, q) => {
                assert_eq!(
                    param(&q, "error").as_deref(),
                    Some("invalid_request"),
                    "{name}"
                );
                assert!(param(&q, "code").is_none(), "{name}");
                // An oversized state is not echoed back; any other state is.
                let echoed = param(&q, "state");
                if name == "state" {
                    assert_eq!(echoed, None);
                } else {
                    assert_eq!(echoed.as_deref(), Some("st"), "{name}");
                }
            }
            other => panic!("{name} over its limit: {other:?}"),
        }
    }
    // Before the client and redirect URI are trusted: the HTML error page, never a redirect.
    for extra in [
        format!("&client_id={}", "c".repeat(257)),
        format!(
            "&redirect_uri={}",
            urlencode(&format!("{REDIRECT}{}", "x".repeat(2048)))
        ),
    ] {
        let u = format!(
            "{}/authorize?response_type=code&scope=openid{extra}",
            app.base
        );
        let r = no_redirect(None).get(&u).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{extra:.40}");
        assert!(r.headers().get("location").is_none());
    }
}

#[tokio::test]
async fn oversized_pushed_parameters_are_refused_with_invalid_request() {
    let (app, secret) = app_with(Options::default()).await;
    let big_state = "s".repeat(513);
    let r = reqwest::Client::new()
        .post(app.url("/par"))
        .basic_auth("app", Some(&secret))
        .form(&[
            ("response_type", "code"),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", big_state.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
}

fn behind_proxy_with_three_parked(c: &mut portcullis::config::Config) {
    c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    c.rate_limit.parked_requests_per_address = 3;
}

#[tokio::test]
async fn parked_requests_per_address_are_bounded_with_429_and_retry_after() {
    let (app, _) = app_with(Options {
        configure: Box::new(behind_proxy_with_three_parked),
        ..Default::default()
    })
    .await;
    let flood = no_redirect(Some("198.51.100.7"));
    for _ in 0..3 {
        let r = flood.get(url(&app, "")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
        assert!(
            r.headers()["location"]
                .to_str()
                .unwrap()
                .starts_with("/login")
        );
    }
    let r = flood.get(url(&app, "")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=1800).contains(&wait), "{wait}");
    assert!(r.text().await.unwrap().contains("<html"));
    // The same network of an IPv6 attacker counts as one address.
    let v6 = |host: u8| no_redirect(Some(&format!("2001:db8:1:2::{host}")));
    for host in 1..=3 {
        let r = v6(host).get(url(&app, "")).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FOUND);
    }
    let r = v6(9).get(url(&app, "")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Other addresses go on signing in.
    let mut h = HeaderMap::new();
    h.insert("x-forwarded-for", HeaderValue::from_static("203.0.113.5"));
    let user = Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(h)
            .build()
            .unwrap(),
    };
    let q = user.authorize(&app, &url(&app, ""), "alice").await;
    assert!(param(&q, "code").is_some());
    // Once the parked requests expire, the address may park again.
    app.advance(wait);
    let r = flood.get(url(&app, "")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FOUND);
}

fn two_pushed(c: &mut portcullis::config::Config) {
    c.rate_limit.pushed_requests_per_client = 2;
}

#[tokio::test]
async fn pushed_requests_per_client_are_bounded_with_429_and_retry_after() {
    let (app, secret) = app_with(Options {
        configure: Box::new(two_pushed),
        ..Default::default()
    })
    .await;
    let push = || {
        reqwest::Client::new()
            .post(app.url("/par"))
            .basic_auth("app", Some(&secret))
            .form(&[
                ("response_type", "code"),
                ("redirect_uri", REDIRECT),
                ("scope", "openid"),
            ])
            .send()
    };
    for _ in 0..2 {
        assert_eq!(push().await.unwrap().status(), StatusCode::CREATED);
    }
    let r = push().await.unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(r.headers()["cache-control"], "no-store");
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    app.advance(wait);
    assert_eq!(push().await.unwrap().status(), StatusCode::CREATED);
}
