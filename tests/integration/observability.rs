//! Threat detection, the alert webhook, metrics and readiness.

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use reqwest::StatusCode;
use std::time::Duration;
use tokio::sync::mpsc;

use crate::flow::urlencode;
use crate::support::browser::Browser;
use crate::support::{ClientSpec, Options, PASSWORD, REDIRECT, TestApp, param};

fn alerts(app: &TestApp) -> Vec<String> {
    app.trail()
        .into_iter()
        .filter(|e| e.event.starts_with("alert."))
        .map(|e| e.event)
        .collect()
}

fn no_throttle(c: &mut portcullis::config::Config) {
    c.throttle.enabled = false;
    c.rate_limit.enabled = false;
    c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

async fn app() -> TestApp {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(no_throttle),
        ..Default::default()
    })
    .await;
    app.add_user("alice", None, None);
    app
}

fn browser(ip: &str, agent: &str) -> Browser {
    Browser::with_headers(&[("x-forwarded-for", ip), ("user-agent", agent)])
}

async fn sign_in(app: &TestApp, b: &Browser, user: &str, password: &str) -> StatusCode {
    b.try_sign_in(app, user, password).await.status()
}

const LAPTOP: &str = "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0";

#[tokio::test]
async fn normal_traffic_raises_no_alert() {
    let app = app().await;
    app.add_client(ClientSpec::confidential("app"));
    let b = browser("192.0.2.1", LAPTOP);
    assert_eq!(
        sign_in(&app, &b, "alice", "one typo here").await,
        StatusCode::OK
    );
    for _ in 0..3 {
        assert_eq!(
            sign_in(&app, &b, "alice", PASSWORD).await,
            StatusCode::SEE_OTHER
        );
        app.advance(3600);
    }
    assert!(alerts(&app).is_empty(), "{:?}", alerts(&app));
}

#[tokio::test]
async fn repeated_failures_against_one_account_raise_guessing_once() {
    let app = app().await;
    for i in 0..8 {
        sign_in(
            &app,
            &browser(&format!("198.51.100.{i}"), LAPTOP),
            "alice",
            "guess guess",
        )
        .await;
    }
    assert_eq!(alerts(&app), vec!["alert.guessing"]);
}

#[tokio::test]
async fn failures_across_many_accounts_from_one_address_raise_stuffing() {
    let app = app().await;
    let b = browser("203.0.113.5", LAPTOP);
    for i in 0..12 {
        sign_in(&app, &b, &format!("user{i}"), "Summer2024!!").await;
    }
    assert_eq!(alerts(&app), vec!["alert.stuffing"]);
}

#[tokio::test]
async fn a_new_address_and_device_raise_new_device() {
    let app = app().await;
    assert_eq!(
        sign_in(&app, &browser("192.0.2.1", LAPTOP), "alice", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        sign_in(&app, &browser("192.0.2.1", LAPTOP), "alice", PASSWORD).await,
        StatusCode::SEE_OTHER
    );
    assert!(
        alerts(&app).is_empty(),
        "the first device and its return are normal"
    );
    sign_in(
        &app,
        &browser("203.0.113.77", "curl/8.0"),
        "alice",
        PASSWORD,
    )
    .await;
    assert_eq!(alerts(&app), vec!["alert.new_device"]);
}

#[tokio::test]
async fn a_sign_in_far_from_the_usual_hours_raises_unusual_hour() {
    let app = app().await;
    let b = browser("192.0.2.1", LAPTOP);
    for _ in 0..10 {
        assert_eq!(
            sign_in(&app, &b, "alice", PASSWORD).await,
            StatusCode::SEE_OTHER
        );
        app.advance(24 * 3600);
    }
    assert!(alerts(&app).is_empty(), "{:?}", alerts(&app));
    app.advance(12 * 3600);
    sign_in(&app, &b, "alice", PASSWORD).await;
    assert_eq!(alerts(&app), vec!["alert.unusual_hour"]);
}

#[tokio::test]
async fn token_errors_in_bursts_and_token_replay_raise_alerts() {
    let app = app().await;
    let secret = app.add_client(ClientSpec::confidential("app")).unwrap();
    for _ in 0..20 {
        reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth("app", Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", "nope"),
                ("redirect_uri", REDIRECT),
            ])
            .send()
            .await
            .unwrap();
    }
    assert_eq!(alerts(&app), vec!["alert.token_errors"]);
    let code = code_for(&app).await;
    for _ in 0..2 {
        reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth("app", Some(&secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
            ])
            .send()
            .await
            .unwrap();
    }
    assert!(
        alerts(&app).contains(&"alert.token_replay".to_string()),
        "{:?}",
        alerts(&app)
    );
}

async fn code_for(app: &TestApp) -> String {
    let url = format!(
        "{}/authorize?response_type=code&client_id=app&redirect_uri={}&scope=openid&state=s",
        app.base,
        urlencode(REDIRECT)
    );
    let q = Browser::new().authorize(app, &url, "alice").await;
    param(&q, "code").unwrap()
}

#[tokio::test]
async fn the_webhook_receives_a_correctly_signed_alert() {
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, String)>();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = HttpServer::new(move || {
        let tx = tx.clone();
        App::new().route(
            "/alerts",
            web::post().to(move |req: HttpRequest, body: web::Bytes| {
                let tx = tx.clone();
                async move {
                    let sig = req
                        .headers()
                        .get("x-portcullis-signature")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_string();
                    let _ = tx.send((sig, String::from_utf8_lossy(&body).into_owned()));
                    HttpResponse::Ok().finish()
                }
            }),
        )
    })
    .workers(1)
    .listen(listener)
    .unwrap()
    .run();
    tokio::spawn(server);
    let app = TestApp::spawn_with(Options {
        configure: Box::new(move |c| {
            no_throttle(c);
            c.detection.webhook_url = Some(format!("http://127.0.0.1:{port}/alerts"));
            c.webhook_secret = Some(portcullis::keys::secrets::Secret::new("hook-secret".into()));
        }),
        delivery_loop: false,
        ..Default::default()
    })
    .await;
    app.add_user("alice", None, None);
    for i in 0..5 {
        sign_in(
            &app,
            &browser(&format!("198.51.100.{i}"), LAPTOP),
            "alice",
            "guess guess",
        )
        .await;
    }
    assert_eq!(portcullis::jobs::deliver_due(&app.state).await.unwrap(), 1);
    let (sig, body) = tokio::time::timeout(Duration::from_secs(20), rx.recv())
        .await
        .expect("no webhook within 20 s")
        .unwrap();
    assert_eq!(
        sig,
        portcullis::audit::detect::signature("hook-secret", &body)
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["rule"], "guessing");
    assert_eq!(v["issuer"], app.issuer.as_str());
}

#[tokio::test]
async fn metrics_count_requests_sign_ins_and_tokens() {
    let app = app().await;
    let secret = app.add_client(ClientSpec::confidential("app")).unwrap();
    let code = code_for(&app).await;
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("app", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains("portcullis_sign_ins_total{outcome=\"success\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("portcullis_tokens_issued_total{grant_type=\"authorization_code\"} 1"),
        "{text}"
    );
    assert!(text.contains("route=\"/token\""), "{text}");
    assert!(
        text.contains("portcullis_http_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("portcullis_db_pool_connections"), "{text}");
}

#[tokio::test]
async fn readyz_turns_unhealthy_when_migrations_are_not_current() {
    let app = TestApp::spawn().await;
    let r = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    app.sql("DELETE FROM __diesel_schema_migrations");
    let r = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn readyz_turns_unhealthy_when_the_database_is_unreachable() {
    if crate::support::backend() != "postgres" {
        crate::support::skip(
            "readyz with an unreachable database needs PostgreSQL (set PORTCULLIS_TEST_DATABASE_URL)",
        );
        return;
    }
    let app = TestApp::spawn().await;
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        StatusCode::OK
    );
    let name = url::Url::parse(&app.database_url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string();
    let admin = crate::support::admin_database_url().unwrap();
    {
        use diesel::{Connection, RunQueryDsl};
        let mut c = diesel::pg::PgConnection::establish(&admin).unwrap();
        diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"))
            .execute(&mut c)
            .unwrap();
        diesel::sql_query(format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"
        ))
        .execute(&mut c)
        .unwrap();
    }
    let r = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        StatusCode::OK
    );
    {
        use diesel::{Connection, RunQueryDsl};
        let mut c = diesel::pg::PgConnection::establish(&admin).unwrap();
        diesel::sql_query(format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"))
            .execute(&mut c)
            .unwrap();
    }
}

#[tokio::test]
async fn metrics_are_refused_to_requests_relayed_by_a_same_host_proxy() {
    // A reverse proxy on this host connects from loopback, listed in trusted_proxies or not.
    for trusted in [false, true] {
        let app = TestApp::spawn_with(Options {
            configure: Box::new(move |c| {
                if trusted {
                    c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
                }
            }),
            ..Default::default()
        })
        .await;
        let direct = reqwest::get(app.url("/metrics")).await.unwrap();
        assert_eq!(direct.status(), StatusCode::OK);
        for (header, value) in [
            ("x-forwarded-for", "203.0.113.9"),
            ("x-forwarded-for", "127.0.0.1"),
            ("forwarded", "for=203.0.113.9"),
            ("x-real-ip", "203.0.113.9"),
        ] {
            let relayed = reqwest::Client::new()
                .get(app.url("/metrics"))
                .header(header, value)
                .send()
                .await
                .unwrap();
            assert_eq!(
                relayed.status(),
                StatusCode::NOT_FOUND,
                "{header}: {value} (trusted proxy: {trusted})"
            );
        }
    }
}
