//! Client authentication at the token-side endpoints: failures leave a trail the detector
//! counts, and the per-client rate limit applies to the client as authentication sees it.

use reqwest::StatusCode;

use crate::support::{ClientSpec, Options, REDIRECT, TestApp};

fn audit(app: &TestApp) -> Vec<portcullis::store::audit_log::Entry> {
    app.trail()
}

fn detection_only(c: &mut portcullis::config::Config) {
    c.rate_limit.enabled = false;
}

/// A token-side POST with Basic credentials, from `ip` through the trusted proxy.
async fn post_as(
    app: &TestApp,
    path: &str,
    who: (&str, &str),
    ip: &str,
    form: &[(&str, &str)],
) -> StatusCode {
    reqwest::Client::new()
        .post(app.url(path))
        .header("x-forwarded-for", ip)
        .basic_auth(who.0, Some(who.1))
        .form(form)
        .send()
        .await
        .unwrap()
        .status()
}

const BAD_SECRET: &str = "not-the-secret-7f3a";

const REFRESH: &[(&str, &str)] = &[("grant_type", "refresh_token"), ("refresh_token", "x")];

#[tokio::test]
async fn failed_client_authentication_is_audited_and_counted_by_the_token_error_detector() {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(detection_only),
        ..Default::default()
    })
    .await;
    app.add_client(ClientSpec::confidential("app"));
    let burst = app.state.config.detection.token_error_burst;
    for _ in 0..burst {
        let s = post_as(&app, "/token", ("app", BAD_SECRET), "127.0.0.1", REFRESH).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let trail = audit(&app);
    let failures: Vec<_> = trail
        .iter()
        .filter(|e| e.event == "client.auth" && e.outcome == "failure")
        .collect();
    assert_eq!(failures.len(), burst);
    assert!(
        failures
            .iter()
            .all(|e| e.client_id.as_deref() == Some("app"))
    );
    assert!(
        failures.iter().all(|e| !e.details.contains(BAD_SECRET)),
        "no secret in the trail"
    );
    let alerts: Vec<_> = trail
        .iter()
        .filter(|e| e.event == "alert.token_errors")
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].client_id.as_deref(), Some("app"));
    // Every token-side endpoint, and clients we do not know, leave the same trail.
    let form = [("token", "x")];
    for path in ["/introspect", "/revoke", "/par"] {
        let s = post_as(&app, path, ("app", BAD_SECRET), "127.0.0.1", &form).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{path}");
    }
    let s = post_as(&app, "/token", ("nobody", "x"), "127.0.0.1", REFRESH).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let trail = audit(&app);
    let later: Vec<_> = trail
        .iter()
        .filter(|e| e.event == "client.auth")
        .skip(burst)
        .collect();
    let endpoints: Vec<String> = later
        .iter()
        .map(|e| {
            serde_json::from_str::<serde_json::Value>(&e.details).unwrap()["endpoint"].to_string()
        })
        .collect();
    assert_eq!(
        endpoints,
        vec!["\"introspect\"", "\"revoke\"", "\"par\"", "\"token\""]
    );
    assert_eq!(
        later[3].client_id, None,
        "an unknown client is not a client"
    );
}

fn tight_behind_proxy(c: &mut portcullis::config::Config) {
    c.rate_limit.per_second = 1;
    c.rate_limit.burst = 3;
    c.rate_limit.client_requests_per_minute = 3;
    c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

#[tokio::test]
async fn the_client_limit_counts_percent_encoded_client_ids_as_the_client_they_decode_to() {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(tight_behind_proxy),
        ..Default::default()
    })
    .await;
    let secret = app.add_client(ClientSpec::confidential("app")).unwrap();
    let mut statuses = Vec::new();
    for (i, user) in ["app", "app", "%61pp", "%61%70p"].iter().enumerate() {
        let ip = format!("198.51.100.{i}");
        statuses.push(post_as(&app, "/token", (user, &secret), &ip, REFRESH).await);
    }
    assert_eq!(
        statuses,
        vec![
            StatusCode::BAD_REQUEST,
            StatusCode::BAD_REQUEST,
            StatusCode::BAD_REQUEST,
            StatusCode::TOO_MANY_REQUESTS
        ]
    );
}

#[tokio::test]
async fn unknown_client_ids_share_one_limit_and_never_hold_back_a_known_client() {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(tight_behind_proxy),
        ..Default::default()
    })
    .await;
    let secret = app.add_client(ClientSpec::confidential("app")).unwrap();
    let mut statuses = Vec::new();
    for i in 0..10 {
        let who = format!("stranger-{i}");
        let ip = format!("198.51.100.{i}");
        statuses.push(post_as(&app, "/token", (&who, "x"), &ip, REFRESH).await);
    }
    assert_eq!(statuses[..3], [StatusCode::UNAUTHORIZED; 3]);
    assert_eq!(statuses[3..], [StatusCode::TOO_MANY_REQUESTS; 7]);
    assert_eq!(
        app.state.client_limiter.len(),
        1,
        "one bucket for all of them"
    );
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "x"),
        ("redirect_uri", REDIRECT),
    ];
    let s = post_as(&app, "/token", ("app", &secret), "203.0.113.1", &form).await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "the known client has its own limit"
    );
    assert_eq!(app.state.client_limiter.len(), 2);
}

#[tokio::test]
async fn a_client_with_its_own_budget_is_limited_by_it_and_others_by_the_default() {
    use diesel::prelude::*;
    use portcullis::db::schema::clients::dsl::*;
    let app = TestApp::spawn_with(Options {
        configure: Box::new(|c| {
            c.rate_limit.client_requests_per_minute = 4;
            c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        }),
        ..Default::default()
    })
    .await;
    let small = app.add_client(ClientSpec::confidential("small")).unwrap();
    let normal = app.add_client(ClientSpec::confidential("normal")).unwrap();
    {
        let mut c = app.conn();
        let conn: &mut portcullis::db::DbConn = &mut c;
        diesel::update(clients.filter(client_id.eq("small")))
            .set(requests_per_minute.eq(Some(2)))
            .execute(conn)
            .unwrap();
    }
    let seen = |who: &'static str, secret: String| {
        let app = &app;
        async move {
            let mut statuses = Vec::new();
            for i in 0..5 {
                let ip = format!("198.51.100.{i}");
                statuses.push(post_as(app, "/token", (who, &secret), &ip, REFRESH).await);
            }
            statuses
        }
    };
    let bad = StatusCode::BAD_REQUEST;
    let many = StatusCode::TOO_MANY_REQUESTS;
    assert_eq!(seen("small", small).await, [bad, bad, many, many, many]);
    assert_eq!(seen("normal", normal).await, [bad, bad, bad, bad, many]);
}

const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A code for `client` after alice signs in (PKCE S256 with `VERIFIER`).
async fn code_for(app: &TestApp, client: &str) -> String {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(VERIFIER.as_bytes()));
    let url = format!(
        "{}/authorize?response_type=code&client_id={client}&redirect_uri={}&scope=openid&state=s&code_challenge={challenge}&code_challenge_method=S256",
        app.base,
        crate::flow::urlencode(REDIRECT)
    );
    let q = crate::support::browser::Browser::new()
        .authorize(app, &url, "alice")
        .await;
    crate::support::param(&q, "code").expect("code")
}

/// A token-side POST: Basic credentials or none, and the form.
async fn post(
    app: &TestApp,
    path: &str,
    basic: Option<(&str, &str)>,
    form: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, serde_json::Value) {
    let mut r = reqwest::Client::new().post(app.url(path)).form(form);
    if let Some((id, secret)) = basic {
        r = r.basic_auth(id, Some(secret));
    }
    let r = r.send().await.unwrap();
    let (status, headers) = (r.status(), r.headers().clone());
    (status, headers, r.json().await.unwrap_or_default())
}

async fn app_with_methods() -> (TestApp, String, String) {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let mut basic = ClientSpec::confidential("basic");
    basic.skip_consent = true;
    let basic_secret = app.add_client(basic).unwrap();
    let mut post = ClientSpec::confidential("poster");
    post.skip_consent = true;
    post.auth_method = Some("client_secret_post");
    let post_secret = app.add_client(post).unwrap();
    let mut spa = ClientSpec::public("spa");
    spa.skip_consent = true;
    app.add_client(spa);
    (app, basic_secret, post_secret)
}

fn assert_invalid_client(
    status: StatusCode,
    h: &reqwest::header::HeaderMap,
    body: &serde_json::Value,
) {
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"], "invalid_client");
    assert!(h["www-authenticate"].to_str().unwrap().starts_with("Basic"));
}

fn exchange_form(code: &str, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.to_string()),
        ("redirect_uri", REDIRECT.to_string()),
        ("code_verifier", VERIFIER.to_string()),
    ];
    form.extend(extra.iter().map(|(k, v)| (*k, v.to_string())));
    form
}

fn refs<'a>(form: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test]
async fn clients_must_authenticate_with_the_method_they_registered() {
    let (app, basic_secret, post_secret) = app_with_methods().await;
    // client_secret_basic, presented in the body: refused, and the code is still good.
    let code = code_for(&app, "basic").await;
    let in_body = [
        ("client_id", "basic"),
        ("client_secret", basic_secret.as_str()),
    ];
    let form = exchange_form(&code, &in_body);
    let (status, h, body) = post(&app, "/token", None, &refs(&form)).await;
    assert_invalid_client(status, &h, &body);
    let form = exchange_form(&code, &[]);
    let (status, _, body) =
        post(&app, "/token", Some(("basic", &basic_secret)), &refs(&form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // client_secret_post, presented with Basic: refused; in the body: accepted.
    let code = code_for(&app, "poster").await;
    let form = exchange_form(&code, &[]);
    let (status, h, body) =
        post(&app, "/token", Some(("poster", &post_secret)), &refs(&form)).await;
    assert_invalid_client(status, &h, &body);
    let in_body = [
        ("client_id", "poster"),
        ("client_secret", post_secret.as_str()),
    ];
    let form = exchange_form(&code, &in_body);
    let (status, _, body) = post(&app, "/token", None, &refs(&form)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = body["access_token"].as_str().unwrap().to_string();

    // The same rule at the other token-side endpoints.
    let (status, h, body) = post(
        &app,
        "/introspect",
        Some(("poster", &post_secret)),
        &[("token", &access)],
    )
    .await;
    assert_invalid_client(status, &h, &body);
    let mut form = vec![("token", access.as_str())];
    form.extend(in_body);
    let (status, _, body) = post(&app, "/introspect", None, &form).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["active"], true);
    let (status, h, body) = post(
        &app,
        "/revoke",
        None,
        &[
            ("token", &access),
            ("client_id", "basic"),
            ("client_secret", &basic_secret),
        ],
    )
    .await;
    assert_invalid_client(status, &h, &body);
    let reasons: Vec<String> = audit(&app)
        .into_iter()
        .filter(|e| e.event == "client.auth")
        .map(|e| e.details)
        .collect();
    assert_eq!(reasons.len(), 4);
    assert!(reasons.iter().all(|d| d.contains("method")), "{reasons:?}");
}

#[tokio::test]
async fn public_clients_cannot_introspect_but_may_revoke_their_own_tokens() {
    let (app, _, _) = app_with_methods().await;
    let code = code_for(&app, "spa").await;
    let (status, _, tokens) = post(
        &app,
        "/token",
        None,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
            ("client_id", "spa"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap();
    let (status, h, body) = post(
        &app,
        "/introspect",
        None,
        &[("token", access), ("client_id", "spa")],
    )
    .await;
    assert_invalid_client(status, &h, &body);
    assert!(body.get("username").is_none() && body.get("active").is_none());
    let (status, _, _) = post(
        &app,
        "/revoke",
        None,
        &[("token", access), ("client_id", "spa")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let info = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(info.status(), StatusCode::UNAUTHORIZED);
}
