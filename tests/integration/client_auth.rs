//! Client authentication at the token-side endpoints: failures leave a trail the detector
//! counts, and the per-client rate limit applies to the client as authentication sees it.

use reqwest::StatusCode;

use crate::support::{ClientSpec, Options, REDIRECT, TestApp};

fn audit(app: &TestApp) -> Vec<portcullis::store::audit_log::Entry> {
    portcullis::store::audit_log::page(&mut app.conn(), 0, 100_000).unwrap()
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
