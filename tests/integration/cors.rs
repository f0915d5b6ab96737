//! CORS for browser-based clients: preflight and response headers of the token-side
//! endpoints for a client's registered web origins; discovery and JWKS for any origin.

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::support::browser::Browser;
use crate::support::{ClientSpec, Options, REDIRECT, TestApp, param};

const SPA: &str = "https://spa.example";
const OTHER: &str = "https://other.example";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The comma-separated values of every `name` header, lower-cased.
fn list(h: &HeaderMap, name: &str) -> Vec<String> {
    h.get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .collect()
}

fn varies_on_origin(h: &HeaderMap) -> bool {
    list(h, "vary").iter().any(|v| v == "origin")
}

/// An app with a public client `spa` on SPA and a public client `other` on OTHER.
async fn app_with_two_spas() -> TestApp {
    app_with_two_spas_and(Options::default()).await
}

async fn app_with_two_spas_and(opts: Options) -> TestApp {
    let app = TestApp::spawn_with(opts).await;
    app.add_user("alice", Some("alice@example.com"), Some("Alice"));
    app.add_client(ClientSpec {
        web_origins: vec![SPA.into()],
        ..ClientSpec::public("spa")
    });
    app.add_client(ClientSpec {
        web_origins: vec![OTHER.into()],
        redirect_uris: vec!["https://other.example/cb".into()],
        ..ClientSpec::public("other")
    });
    app
}

async fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, app.url(path))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", method)
        .header(
            "Access-Control-Request-Headers",
            "authorization,content-type",
        )
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_preflight_from_a_registered_origin_echoes_it_with_methods_headers_and_a_bounded_max_age()
{
    let app = app_with_two_spas().await;
    for (path, method) in [
        ("/token", "POST"),
        ("/revoke", "POST"),
        ("/introspect", "POST"),
        ("/par", "POST"),
        ("/userinfo", "GET"),
    ] {
        let r = preflight(&app, path, SPA, method).await;
        assert!(r.status().is_success(), "{path}: {}", r.status());
        let h = r.headers();
        assert_eq!(
            header(h, "access-control-allow-origin"),
            Some(SPA),
            "{path}"
        );
        assert!(varies_on_origin(h), "{path}: {h:?}");
        assert!(
            list(h, "access-control-allow-methods").contains(&method.to_ascii_lowercase()),
            "{path}: {h:?}"
        );
        let allowed = list(h, "access-control-allow-headers");
        for needed in ["authorization", "content-type", "dpop"] {
            assert!(allowed.iter().any(|a| a == needed), "{path}: {h:?}");
        }
        let max_age: u64 = header(h, "access-control-max-age")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{path}: no max age in {h:?}"));
        assert!((1..=7200).contains(&max_age), "{path}: {max_age}");
        assert_eq!(
            header(h, "access-control-allow-credentials"),
            None,
            "{path}"
        );
    }
    let r = preflight(&app, "/userinfo", SPA, "POST").await;
    assert!(list(r.headers(), "access-control-allow-methods").contains(&"get".to_string()));
}

#[tokio::test]
async fn a_preflight_from_an_unregistered_origin_gets_no_allow_origin_but_varies_on_origin() {
    let app = app_with_two_spas().await;
    for origin in [
        "https://evil.example",
        "https://spa.example.evil",
        "http://spa.example",
        "null",
    ] {
        let r = preflight(&app, "/token", origin, "POST").await;
        let h = r.headers();
        assert_eq!(header(h, "access-control-allow-origin"), None, "{origin}");
        assert_eq!(header(h, "access-control-allow-methods"), None, "{origin}");
        assert!(varies_on_origin(h), "{origin}: {h:?}");
    }
}

#[tokio::test]
async fn a_failed_code_exchange_from_a_registered_origin_is_readable_json_with_allow_origin() {
    let app = app_with_two_spas().await;
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .header("Origin", SPA)
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", "not-a-code"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let h = r.headers().clone();
    assert_eq!(header(&h, "access-control-allow-origin"), Some(SPA));
    assert!(varies_on_origin(&h));
    assert_eq!(header(&h, "access-control-allow-credentials"), None);
    let exposed = list(&h, "access-control-expose-headers");
    assert!(exposed.contains(&"www-authenticate".to_string()), "{h:?}");
    assert!(exposed.contains(&"retry-after".to_string()), "{h:?}");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"], "invalid_grant");
}

#[tokio::test]
async fn a_token_request_for_another_client_than_the_one_that_registered_the_origin_gets_no_allow_origin()
 {
    let app = app_with_two_spas().await;
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .header("Origin", SPA)
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "other"),
            ("code", "not-a-code"),
            ("redirect_uri", "https://other.example/cb"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(header(r.headers(), "access-control-allow-origin"), None);
    assert!(varies_on_origin(r.headers()));
    let r = reqwest::Client::new()
        .post(app.url("/revoke"))
        .header("Origin", SPA)
        .form(&[("client_id", "other"), ("token", "whatever")])
        .send()
        .await
        .unwrap();
    assert_eq!(header(r.headers(), "access-control-allow-origin"), None);
}

#[tokio::test]
async fn discovery_and_jwks_are_readable_and_preflighted_from_any_origin() {
    let app = TestApp::spawn().await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
        "/jwks",
    ] {
        let r = reqwest::Client::new()
            .get(app.url(path))
            .header("Origin", "https://anyone.example")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
        assert_eq!(
            header(r.headers(), "access-control-allow-origin"),
            Some("*"),
            "{path}"
        );
        let r = preflight(&app, path, "https://anyone.example", "GET").await;
        assert!(r.status().is_success(), "{path}: {}", r.status());
        assert_eq!(
            header(r.headers(), "access-control-allow-origin"),
            Some("*"),
            "{path}"
        );
        assert!(list(r.headers(), "access-control-allow-methods").contains(&"get".to_string()));
    }
}

/// Signs alice in for `spa` and redeems the code from SPA; gives the token answer.
async fn tokens_for_spa(app: &TestApp) -> Value {
    let url = app.url(&format!(
        "/authorize?response_type=code&client_id=spa&redirect_uri={}\
         &scope=openid%20profile%20offline_access&state=s\
         &code_challenge={CHALLENGE}&code_challenge_method=S256",
        crate::flow::urlencode(REDIRECT)
    ));
    let answer = Browser::new().authorize(app, &url, "alice").await;
    let code = param(&answer, "code").unwrap();
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .header("Origin", SPA)
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", "spa"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        Some(SPA)
    );
    r.json().await.unwrap()
}

#[tokio::test]
async fn userinfo_is_readable_from_the_origin_of_the_token_s_client_only() {
    let app = app_with_two_spas().await;
    let tokens = tokens_for_spa(&app).await;
    let at = tokens["access_token"].as_str().unwrap();
    let get = |origin: &'static str| {
        reqwest::Client::new()
            .get(app.url("/userinfo"))
            .header("Origin", origin)
            .bearer_auth(at)
            .send()
    };
    let r = get(SPA).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        Some(SPA)
    );
    assert!(varies_on_origin(r.headers()));
    let r = get(OTHER).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(header(r.headers(), "access-control-allow-origin"), None);
    let r = get("https://evil.example").await.unwrap();
    assert_eq!(header(r.headers(), "access-control-allow-origin"), None);
    // A refused token is still readable by a registered origin, challenge included.
    let r = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .header("Origin", SPA)
        .bearer_auth("not-a-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        Some(SPA)
    );
    assert!(
        list(r.headers(), "access-control-expose-headers").contains(&"www-authenticate".into())
    );
}

#[tokio::test]
async fn a_rate_limited_request_from_a_registered_origin_carries_the_cors_headers_and_preflight_still_answers()
 {
    let app = app_with_two_spas_and(Options {
        configure: Box::new(|c| {
            c.rate_limit.per_second = 1;
            c.rate_limit.burst = 2;
        }),
        ..Default::default()
    })
    .await;
    let mut limited = None;
    for _ in 0..5 {
        let r = reqwest::Client::new()
            .post(app.url("/token"))
            .header("Origin", SPA)
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", "spa"),
                ("code", "not-a-code"),
            ])
            .send()
            .await
            .unwrap();
        if r.status() == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the limit is reached within five requests");
    let h = r.headers();
    assert_eq!(header(h, "access-control-allow-origin"), Some(SPA));
    assert!(header(h, "retry-after").is_some());
    assert!(list(h, "access-control-expose-headers").contains(&"retry-after".to_string()));
    let r = preflight(&app, "/token", SPA, "POST").await;
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(
        header(r.headers(), "access-control-allow-origin"),
        Some(SPA)
    );
}

/// Runs the CLI on a fresh SQLite database in `dir`; gives the exit code, stdout and stderr.
fn cli(dir: &std::path::Path, args: &[&str]) -> (i32, String, String) {
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(args)
        .current_dir(dir)
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_ISSUER")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into(),
        String::from_utf8_lossy(&o.stderr).into(),
    )
}

#[test]
fn client_add_refuses_a_plain_http_public_origin_and_an_origin_with_a_path() {
    let dir = tempfile::tempdir().unwrap();
    assert_eq!(cli(dir.path(), &["migrate"]).0, 0);
    for bad in [
        "http://evil.example",
        "https://a.example/path",
        "https://*.a.example",
    ] {
        let (code, _, err) = cli(
            dir.path(),
            &[
                "client",
                "add",
                "spa",
                "--public",
                "--redirect-uri",
                "https://a.example/cb",
                "--web-origin",
                bad,
            ],
        );
        assert_eq!(code, 1, "{bad}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("web origin"), "{err}");
        let (code, _, _) = cli(dir.path(), &["client", "show", "spa"]);
        assert_eq!(code, 1, "{bad}: nothing was written");
    }
}

#[test]
fn client_add_stores_the_web_origins_given_and_those_derived_from_redirect_uris() {
    let dir = tempfile::tempdir().unwrap();
    let (code, _, err) = cli(
        dir.path(),
        &[
            "client",
            "add",
            "spa",
            "--public",
            "--redirect-uri",
            "https://App.example/cb",
            "--redirect-uri",
            "http://127.0.0.1:5173/cb",
            "--redirect-uri",
            "com.example.app:/cb",
            "--web-origin",
            "https://extra.example:8443",
            "--web-origins-from-redirect-uris",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = cli(dir.path(), &["client", "show", "spa", "--json"]);
    assert_eq!(code, 0, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["web_origins"],
        serde_json::json!([
            "https://extra.example:8443",
            "https://app.example",
            "http://127.0.0.1:5173"
        ])
    );
    let (code, out, _) = cli(dir.path(), &["audit", "tail", "--json"]);
    assert_eq!(code, 0);
    assert!(out.contains("admin.client.add"), "{out}");
    assert!(out.contains("https://extra.example:8443"), "{out}");
    // Without the flag, only the origins given are registered.
    let (code, _, err) = cli(
        dir.path(),
        &[
            "client",
            "add",
            "plain",
            "--public",
            "--redirect-uri",
            "https://b.example/cb",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let (_, out, _) = cli(dir.path(), &["client", "show", "plain", "--json"]);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["web_origins"], serde_json::json!([]));
}
