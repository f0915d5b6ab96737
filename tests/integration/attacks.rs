//! The attacker's view: guessing, stuffing, lockout attempts, floods, forged requests and
//! hostile input. Each test asserts the exact defended behaviour.

use reqwest::StatusCode;

use crate::flow::{authorize_url, urlencode};
use crate::support::browser::{Browser, Landing};
use crate::support::{
    ClientSpec, Options, PASSWORD, REDIRECT, TestApp, behind_proxy, hidden, retry_after,
};

async fn app_behind_proxy() -> TestApp {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(behind_proxy),
        ..Default::default()
    })
    .await;
    app.add_user("alice", Some("alice@example.com"), None);
    app.add_client(ClientSpec::confidential("app"));
    app
}

/// One sign-in attempt; returns (status, Retry-After, body).
async fn attempt(
    app: &TestApp,
    b: &Browser,
    user: &str,
    password: &str,
) -> (StatusCode, Option<i64>, String) {
    let r = b.try_sign_in(app, user, password).await;
    (r.status(), retry_after(&r), r.text().await.unwrap())
}

#[tokio::test]
async fn brute_force_from_one_address_is_slowed_and_even_the_right_password_waits() {
    let app = app_behind_proxy().await;
    let b = Browser::from_address("203.0.113.7");
    for _ in 0..3 {
        let (status, retry, body) = attempt(&app, &b, "alice", "guess guess guess").await;
        assert_eq!(status, StatusCode::OK);
        assert!(retry.is_none());
        assert!(body.contains("Incorrect username or password"));
    }
    let (status, retry, body) = attempt(&app, &b, "alice", "guess guess guess").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(retry, Some(1));
    assert!(
        body.contains("Too many attempts. Try again in 1 second."),
        "{body}"
    );
    // The right password does not get through while the delay is in force.
    let (status, _, _) = attempt(&app, &b, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    app.advance(1);
    // The next failure waits longer (graded).
    let (status, retry, _) = attempt(&app, &b, "alice", "guess guess guess").await;
    assert_eq!((status, retry), (StatusCode::TOO_MANY_REQUESTS, Some(5)));
    app.advance(5);
    let (status, _, _) = attempt(&app, &b, "alice", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "the real password works once the delay is over"
    );
}

#[tokio::test]
async fn attackers_on_many_addresses_cannot_lock_the_real_user_out_for_long() {
    let app = app_behind_proxy().await;
    for i in 0..40 {
        let b = Browser::from_address(&format!("198.51.100.{i}"));
        attempt(&app, &b, "alice", "guess guess guess").await;
    }
    // The real user, from a fresh address: at most the short per-account delay.
    let user = Browser::from_address("192.0.2.10");
    let (status, retry, _) = attempt(&app, &user, "alice", PASSWORD).await;
    if status == StatusCode::TOO_MANY_REQUESTS {
        let wait = retry.expect("Retry-After");
        assert!(wait <= 30, "per-account delay must stay short, got {wait}");
        app.advance(wait);
        let (status, _, _) = attempt(&app, &user, "alice", PASSWORD).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
    } else {
        assert_eq!(status, StatusCode::SEE_OTHER);
    }
}

#[tokio::test]
async fn credential_stuffing_across_accounts_throttles_the_address() {
    let app = app_behind_proxy().await;
    let attacker = Browser::from_address("203.0.113.99");
    let mut throttled_at = None;
    for i in 0..30 {
        let (status, retry, _) =
            attempt(&app, &attacker, &format!("user{i}"), "Summer2024!!").await;
        if status == StatusCode::TOO_MANY_REQUESTS {
            assert!(retry.unwrap() >= 5);
            throttled_at = Some(i);
            break;
        }
    }
    assert_eq!(
        throttled_at,
        Some(20),
        "the 21st failure from one address is held back"
    );
    // Unknown and known accounts are throttled alike from there (no enumeration).
    let (status, _, _) = attempt(&app, &attacker, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // Another address is not affected.
    let (status, _, _) = attempt(
        &app,
        &Browser::from_address("192.0.2.55"),
        "alice",
        PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    // Rotating the header must not give a fresh address to a direct client.
    for i in 0..4 {
        attempt(
            &app,
            &Browser::from_address(&format!("10.9.9.{i}")),
            "alice",
            "guess guess guess",
        )
        .await;
    }
    let (status, _, _) = attempt(
        &app,
        &Browser::from_address("10.9.9.200"),
        "alice",
        "guess guess guess",
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

fn tight_rate_limit(config: &mut portcullis::config::Config) {
    config.rate_limit.per_second = 1;
    config.rate_limit.burst = 3;
}

#[tokio::test]
async fn request_floods_get_429_with_retry_after_and_metadata_stays_reachable() {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(tight_rate_limit),
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let r = http.get(app.url("/userinfo")).send().await.unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            assert!(r.headers().contains_key("retry-after"));
            let body: serde_json::Value = r.json().await.unwrap();
            assert_eq!(body["error"], "temporarily_unavailable");
            statuses.push(429);
        } else {
            statuses.push(r.status().as_u16());
        }
    }
    assert_eq!(statuses, vec![401, 401, 401, 429, 429]);
    for _ in 0..10 {
        let r = http
            .get(app.url("/.well-known/openid-configuration"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn xss_payloads_are_escaped_wherever_they_are_reflected() {
    let app = TestApp::spawn().await;
    app.add_client(ClientSpec::confidential("app"));
    let payload = "\"><script>alert(1)</script><img src=x onerror=alert(1)>";
    let browser = Browser::new();
    // login_hint is reflected into the username field.
    let url = authorize_url(
        &app,
        "openid",
        &format!("&login_hint={}", urlencode(payload)),
    );
    let Landing::Page(_, _, page) = browser.follow(&app, url).await else {
        panic!("expected the sign-in page")
    };
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    // The username is reflected after a failed attempt.
    let (_, _, body) = attempt(&app, &browser, payload, "whatever whatever").await;
    assert!(
        !body.contains("<script>alert") && !body.contains("<img src=x"),
        "{body}"
    );
    assert!(
        body.contains("&#34;&#62;&#60;script&#62;") || body.contains("&quot;&gt;&lt;script&gt;"),
        "{body}"
    );
}

#[tokio::test]
async fn sql_injection_strings_are_just_data() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    app.add_client(ClientSpec::confidential("app"));
    let injections = [
        "' OR '1'='1",
        "alice'--",
        "\"; DROP TABLE users; --",
        "' UNION SELECT * FROM clients --",
    ];
    let browser = Browser::new();
    for inj in injections {
        let (status, _, body) = attempt(&app, &browser, inj, inj).await;
        // Four failures for four different names stay under every throttle's free count.
        assert_eq!(status, StatusCode::OK, "{inj}");
        assert!(body.contains("role=\"alert\""));
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth(inj, Some(inj))
            .form(&[("grant_type", "authorization_code"), ("code", inj)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{inj}");
        let r = reqwest::Client::new()
            .get(app.url("/userinfo"))
            .bearer_auth(inj.replace(' ', "+"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{inj}");
        let url = format!(
            "{}/authorize?response_type=code&client_id={}&redirect_uri={}&scope=openid",
            app.base,
            urlencode(inj),
            urlencode(REDIRECT)
        );
        let r = reqwest::get(url).await.unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    }
    // The tables are intact and alice still signs in.
    let (status, _, _) = attempt(&app, &Browser::new(), "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn oversized_malformed_and_invalid_utf8_input_gets_4xx_never_5xx() {
    let app = TestApp::spawn().await;
    app.add_client(ClientSpec::confidential("app"));
    let http = reqwest::Client::new();
    // An oversized form body.
    let big = "a".repeat(200 * 1024);
    let r = http
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("grant_type=authorization_code&code={big}"))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_client_error(), "{}", r.status());
    // Invalid UTF-8 and broken percent-encoding.
    for body in [
        &b"grant_type=\xff\xfe&code=\xc3"[..],
        b"%zz=%%&&==",
        b"\x00\x01\x02",
    ] {
        let r = http
            .post(app.url("/token"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.to_vec())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{:?}: {}", body, r.status());
    }
    let r = http
        .get(format!(
            "{}/authorize?client_id=%ff%fe&redirect_uri=%c3",
            app.base
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // An overlong query string.
    let r = http
        .get(format!(
            "{}/authorize?client_id=app&state={}",
            app.base,
            "s".repeat(40 * 1024)
        ))
        .send()
        .await;
    refused_or_cut_off(&app, r, "an overlong query string").await;
    // A huge header.
    let r = http
        .get(app.url("/userinfo"))
        .header(
            "authorization",
            format!("Bearer {}", "t".repeat(100 * 1024)),
        )
        .send()
        .await;
    refused_or_cut_off(&app, r, "a huge header").await;
}

/// An oversized request is refused: a 4xx answer, or (when the server stops reading past its
/// buffer limit and closes) a connection the client sees cut off; never a 5xx, and the
/// server keeps serving afterwards.
async fn refused_or_cut_off(app: &TestApp, r: reqwest::Result<reqwest::Response>, what: &str) {
    match r {
        Ok(r) => assert!(r.status().is_client_error(), "{what}: {}", r.status()),
        Err(e) => assert!(
            !e.is_timeout() && !e.is_status() && !e.is_decode() && !e.is_builder(),
            "{what}: {e}"
        ),
    }
    let health = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(
        health.status(),
        StatusCode::OK,
        "{what}: the server still answers"
    );
}

#[tokio::test]
async fn a_session_id_chosen_by_the_attacker_is_never_adopted() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let fixed = "attacker-chosen-session-id";
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(app.url("/login"))
        .header("cookie", format!("portcullis_session={fixed}"))
        .send()
        .await
        .unwrap();
    let set = r.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(!set.contains(fixed), "{set}");
}

#[tokio::test]
async fn request_parameters_cannot_turn_the_sign_in_into_an_open_redirect() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let b = Browser::new();
    let page = b
        .http
        .get(app.url("/login?request=https%3A%2F%2Fevil.example%2F"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = b
        .http
        .post(app.url("/login"))
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", &hidden(&page, "csrf_token").unwrap()),
            ("request", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("/authorize/resume?"), "{loc}");
    let r = b.http.get(app.url(&loc)).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.headers().get("location").is_none());
}

#[tokio::test]
async fn a_forged_host_header_changes_no_url_we_emit() {
    let app = TestApp::spawn().await;
    app.add_client(ClientSpec::confidential("app"));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let d: serde_json::Value = http
        .get(app.url("/.well-known/openid-configuration"))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!d.to_string().contains("evil.example"));
    let r = http
        .get(authorize_url(&app, "openid", ""))
        .header("host", "evil.example")
        .send()
        .await
        .unwrap();
    let loc = r.headers()["location"].to_str().unwrap();
    assert!(!loc.contains("evil.example"), "{loc}");
}

#[tokio::test]
async fn every_page_sends_the_security_headers() {
    let app = TestApp::spawn().await;
    app.add_client(ClientSpec::confidential("app"));
    let http = reqwest::Client::new();
    for path in [
        "/",
        "/login",
        "/consent?request=nope",
        "/authorize?client_id=nobody",
        "/logout",
        "/no-such-page",
        "/token",
        "/jwks",
    ] {
        let r = http.get(app.url(path)).send().await.unwrap();
        let h = r.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
            "{path}: {csp}"
        );
        assert!(
            !csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"),
            "{path}: {csp}"
        );
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        assert!(h.contains_key("permissions-policy"), "{path}");
        assert!(
            !h.contains_key("strict-transport-security"),
            "{path}: no HSTS over plain http"
        );
    }
}

fn tight_limits_behind_proxy(config: &mut portcullis::config::Config) {
    tight_rate_limit(config);
    config.rate_limit.client_requests_per_minute = 3;
    behind_proxy(config);
}

#[tokio::test]
async fn one_client_flooding_the_token_endpoint_from_many_addresses_is_limited() {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(tight_limits_behind_proxy),
        ..Default::default()
    })
    .await;
    let secret = app.add_client(ClientSpec::confidential("app")).unwrap();
    let mut last = None;
    for i in 0..4 {
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .header("x-forwarded-for", format!("198.51.100.{i}"))
            .basic_auth("app", Some(&secret))
            .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
            .send()
            .await
            .unwrap();
        last = Some((
            r.status(),
            r.headers().contains_key("retry-after"),
            r.text().await.unwrap(),
        ));
    }
    let (status, retry_after, body) = last.unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after);
    assert!(body.contains("for this client"), "{body}");
}
