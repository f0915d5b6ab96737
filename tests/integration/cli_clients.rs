//! `client update` and `client rotate-secret`: changing a client without losing it.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::cli::Cli;
use crate::flow::authorize_url;
use crate::support::browser::Browser;
use crate::support::mfa::exchange;
use crate::support::{ClientSpec, TestApp, param};
use portcullis::cli::client_update::{self, UpdateArgs};

fn json_of(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

fn add_app(cli: &Cli) {
    let o = cli.run(
        &[
            "client",
            "add",
            "app",
            "--redirect-uri",
            "https://rp.example/cb",
            "--name",
            "App",
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
}

#[test]
fn client_update_edits_redirect_uris_replaces_the_lists_given_and_is_audited() {
    let cli = Cli::new();
    add_app(&cli);
    let o = cli.run(
        &[
            "client",
            "update",
            "app",
            "--add-redirect-uri",
            "https://rp.example/cb2",
            "--remove-redirect-uri",
            "https://rp.example/cb",
            "--web-origin",
            "https://rp.example",
            "--name",
            "Renamed",
            "--scope",
            "openid",
            "--scope",
            "email",
            "--requests-per-minute",
            "600",
            "--json",
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v = json_of(&o.stdout);
    assert_eq!(v["redirect_uris"], json!(["https://rp.example/cb2"]));
    let show = json_of(&cli.run(&["client", "show", "app", "--json"], None).stdout);
    assert_eq!(show["redirect_uris"], json!(["https://rp.example/cb2"]));
    assert_eq!(show["web_origins"], json!(["https://rp.example"]));
    assert_eq!(show["name"], "Renamed");
    assert_eq!(show["scopes"], json!(["openid", "email"]));
    assert_eq!(show["requests_per_minute"], 600);
    assert!(show["updated_at"].is_string(), "{show}");
    // Lists not given stay as they are.
    assert_eq!(
        show["grant_types"],
        json!(["authorization_code", "refresh_token"])
    );
    let trail = cli.run(&["audit", "export"], None).stdout;
    let line = trail
        .lines()
        .find(|l| l.contains("\"admin.client.update\""))
        .unwrap_or_else(|| panic!("{trail}"));
    assert!(line.contains("https://rp.example/cb2"), "{line}");
    assert!(line.contains("\"name\""), "{line}");
    assert_eq!(cli.run(&["audit", "verify"], None).code, 0);
}

#[test]
fn client_update_refuses_what_client_add_refuses_and_changes_nothing() {
    let cli = Cli::new();
    add_app(&cli);
    let before = cli.run(&["client", "show", "app", "--json"], None).stdout;
    let cases: &[(&[&str], &str)] = &[
        (
            &["--add-redirect-uri", "https://*.rp.example/cb"],
            "wildcard",
        ),
        (&["--add-redirect-uri", "http://rp.example/cb"], "https"),
        (
            &["--remove-redirect-uri", "https://rp.example/cb"],
            "last redirect URI",
        ),
        (
            &["--remove-redirect-uri", "https://other.example/cb"],
            "not a registered redirect URI",
        ),
        (&["--web-origin", "https://rp.example/path"], "web origin"),
        (&["--web-origin", "*"], "wildcard"),
        (&["--scope", "bad\"scope"], "scope"),
        (&["--grant-type", "password"], "grant type"),
        (&["--name", ""], "--name"),
        (&["--requests-per-minute", "0"], "requests-per-minute"),
        (&["--requests-per-minute", "100001"], "requests-per-minute"),
        (&[], "nothing to change"),
    ];
    for (flags, says) in cases {
        let mut args = vec!["client", "update", "app"];
        args.extend_from_slice(flags);
        let o = cli.run(&args, None);
        assert_eq!(o.code, 1, "{flags:?}: {}", o.stderr);
        assert_eq!(
            o.stderr.trim().lines().count(),
            1,
            "{flags:?}: {}",
            o.stderr
        );
        assert!(o.stderr.contains(says), "{flags:?}: {}", o.stderr);
    }
    let missing = cli.run(&["client", "update", "nope", "--name", "X"], None);
    assert_eq!(missing.code, 1);
    assert_eq!(
        cli.run(&["client", "show", "app", "--json"], None).stdout,
        before
    );
}

#[test]
fn client_add_takes_a_request_budget_within_bounds() {
    let cli = Cli::new();
    let base = [
        "client",
        "add",
        "app",
        "--redirect-uri",
        "https://rp.example/cb",
    ];
    for bad in ["0", "100001", "lots"] {
        let mut args = base.to_vec();
        args.extend_from_slice(&["--requests-per-minute", bad]);
        assert_eq!(cli.run(&args, None).code, 1, "{bad}");
    }
    let mut args = base.to_vec();
    args.extend_from_slice(&["--requests-per-minute", "1200"]);
    let o = cli.run(&args, None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let show = json_of(&cli.run(&["client", "show", "app", "--json"], None).stdout);
    assert_eq!(show["requests_per_minute"], 1200);
}

fn count(app: &TestApp, q: &str) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = app.conn();
    let conn: &mut portcullis::db::DbConn = &mut c;
    diesel::sql_query(q).get_result::<N>(conn).unwrap().n
}

#[tokio::test]
async fn taking_a_scope_away_narrows_consents_and_revokes_tokens_that_hold_it() {
    let app = TestApp::spawn().await;
    app.add_user("alice", Some("alice@example.com"), None);
    let secret = app.add_client(ClientSpec::confidential("app")).unwrap();
    let browser = Browser::new();
    let q = browser
        .authorize(
            &app,
            &authorize_url(&app, "openid email offline_access", ""),
            "alice",
        )
        .await;
    let t = exchange(&app, &secret, &param(&q, "code").unwrap()).await;
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    let args = UpdateArgs {
        client_id: "app".into(),
        scopes: vec!["openid profile offline_access".into()],
        ..UpdateArgs::default()
    };
    let u = client_update::update(&mut app.conn(), &args, app.clock.naive()).unwrap();
    assert_eq!(u.consents_narrowed, 1);
    assert!(u.tokens_revoked >= 2, "{}", u.tokens_revoked);
    let consents = "SELECT COUNT(*) AS n FROM consents WHERE client_id = 'app'";
    assert_eq!(count(&app, consents), 1);
    assert_eq!(
        count(&app, &format!("{consents} AND scopes LIKE '%email%'")),
        0,
        "the consent still holds the scope taken away"
    );
    assert_eq!(
        count(&app, &format!("{consents} AND scopes LIKE '%openid%'")),
        1
    );
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("app", Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // The user is asked again before a scope that was taken away comes back.
    let back = UpdateArgs {
        client_id: "app".into(),
        scopes: vec!["openid email offline_access".into()],
        ..UpdateArgs::default()
    };
    client_update::update(&mut app.conn(), &back, app.clock.naive()).unwrap();
    let landing = browser
        .follow(&app, authorize_url(&app, "openid email", ""))
        .await;
    match landing {
        crate::support::browser::Landing::Page(_, path, _) => assert_eq!(path, "/consent"),
        other => panic!("expected the consent page: {other:?}"),
    }
}

async fn client_credentials(app: &TestApp, id: &str, secret: &str, post: bool) -> StatusCode {
    let mut req = reqwest::Client::new().post(app.url("/token"));
    let mut form = vec![("grant_type", "client_credentials")];
    if post {
        form.push(("client_id", id));
        form.push(("client_secret", secret));
    } else {
        req = req.basic_auth(id, Some(secret));
    }
    req.form(&form).send().await.unwrap().status()
}

fn machine(id: &'static str, method: &'static str) -> ClientSpec {
    ClientSpec {
        redirect_uris: vec![],
        scopes: "api:read",
        grant_types: vec!["client_credentials"],
        auth_method: Some(method),
        ..ClientSpec::confidential(id)
    }
}

/// Runs the real command against the app's database.
fn rotate(app: &TestApp, cli: &Cli, id: &str, keep: Option<&str>) -> String {
    let mut args = vec!["client", "rotate-secret", id, "--json"];
    if let Some(k) = keep {
        args.extend_from_slice(&["--keep-old-for", k]);
    }
    let o = cli.run_env(
        &args,
        None,
        &[("PORTCULLIS_DATABASE_URL", &app.database_url)],
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v = json_of(&o.stdout);
    assert_eq!(v["client_id"], id);
    v["client_secret"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_rotated_secret_keeps_the_old_one_working_for_the_overlap_only() {
    let app = TestApp::spawn().await;
    let cli = Cli::new();
    let mut rotated = Vec::new();
    for (id, method, post) in [
        ("basic-app", "client_secret_basic", false),
        ("post-app", "client_secret_post", true),
    ] {
        let old = app.add_client(machine(id, method)).unwrap();
        assert_eq!(
            client_credentials(&app, id, &old, post).await,
            StatusCode::OK
        );
        let new = rotate(&app, &cli, id, Some("3600"));
        assert_ne!(old, new);
        assert_eq!(
            client_credentials(&app, id, &old, post).await,
            StatusCode::OK
        );
        assert_eq!(
            client_credentials(&app, id, &new, post).await,
            StatusCode::OK
        );
        assert_eq!(
            client_credentials(&app, id, "wrong", post).await,
            StatusCode::UNAUTHORIZED
        );
        rotated.push((id, post, old, new));
    }
    // The rotation ran on the wall clock; the overlap has surely ended two minutes later.
    app.advance(3600 + 120);
    for (id, post, old, new) in &rotated {
        assert_eq!(
            client_credentials(&app, id, old, *post).await,
            StatusCode::UNAUTHORIZED,
            "{id}: the old secret after the overlap"
        );
        assert_eq!(
            client_credentials(&app, id, new, *post).await,
            StatusCode::OK
        );
    }
    // Without --keep-old-for the old secret stops at once.
    let old = app
        .add_client(machine("now-app", "client_secret_basic"))
        .unwrap();
    let new = rotate(&app, &cli, "now-app", None);
    assert_eq!(
        client_credentials(&app, "now-app", &old, false).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        client_credentials(&app, "now-app", &new, false).await,
        StatusCode::OK
    );
    let trail = app.trail();
    let rotations: Vec<_> = trail
        .iter()
        .filter(|e| e.event == "admin.client.rotate_secret")
        .collect();
    assert_eq!(rotations.len(), 3);
    for e in rotations {
        for (_, _, old, new) in &rotated {
            assert!(!e.details.contains(old.as_str()) && !e.details.contains(new.as_str()));
        }
    }
}

#[test]
fn rotate_secret_refuses_public_clients_and_overlaps_beyond_thirty_days() {
    let cli = Cli::new();
    let o = cli.run(
        &[
            "client",
            "add",
            "spa",
            "--public",
            "--redirect-uri",
            "https://spa.example/cb",
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let o = cli.run(&["client", "rotate-secret", "spa"], None);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("public"), "{}", o.stderr);
    add_app(&cli);
    for bad in ["-1", "2592001"] {
        let o = cli.run(
            &["client", "rotate-secret", "app", "--keep-old-for", bad],
            None,
        );
        assert_eq!(o.code, 1, "{bad}: {}", o.stderr);
    }
    assert_eq!(cli.run(&["client", "rotate-secret", "nope"], None).code, 1);
    let o = cli.run(
        &[
            "client",
            "rotate-secret",
            "app",
            "--keep-old-for",
            "2592000",
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(o.stdout.contains("client_secret: "), "{}", o.stdout);
}
