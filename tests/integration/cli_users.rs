//! `user set`, `user remove`, and what the user lists show and record.

use diesel::RunQueryDsl;
use serde_json::Value;

use crate::cli::Cli;
use crate::flow::authorize_url;
use crate::support::browser::Browser;
use crate::support::mfa::exchange;
use crate::support::{ClientSpec, TestApp, param};
use portcullis::cli::user_change::{self, Changes};

fn add(cli: &Cli, args: &[&str]) {
    let mut all = vec!["user", "add"];
    all.extend_from_slice(args);
    all.push("--password-stdin");
    let o = cli.run(&all, Some("violet tractor humming softly\n"));
    assert_eq!(o.code, 0, "{}", o.stderr);
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn user_set_changes_email_name_and_verification_and_audits_the_fields_not_the_values() {
    let cli = Cli::new();
    add(
        &cli,
        &["alice", "--email", "alice@example.com", "--name", "Alice"],
    );
    let o = cli.run(
        &[
            "user",
            "set",
            "alice",
            "--email",
            "liddell@example.org",
            "--name",
            "Alice Liddell",
            "--email-verified",
            "true",
            "--json",
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v = json(&o.stdout);
    assert_eq!(
        v["changed"],
        serde_json::json!(["email", "name", "email_verified"])
    );
    let shown = json(
        &cli.run(&["user", "show", "alice", "--reveal", "--json"], None)
            .stdout,
    );
    assert_eq!(shown["email"], "liddell@example.org");
    assert_eq!(shown["name"], "Alice Liddell");
    assert_eq!(shown["email_verified"], true);
    // A new address is unverified unless the operator says otherwise.
    let o = cli.run(&["user", "set", "alice", "--email", "a@example.net"], None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let shown = json(&cli.run(&["user", "show", "alice", "--json"], None).stdout);
    assert_eq!(shown["email_verified"], false);
    let trail = cli.run(&["audit", "export"], None).stdout;
    assert!(trail.contains("\"admin.user.set\""), "{trail}");
    for personal in ["liddell@example.org", "Alice Liddell", "a@example.net"] {
        assert!(
            !trail.contains(personal),
            "{personal} in the trail: {trail}"
        );
    }
    assert_eq!(cli.run(&["audit", "verify"], None).code, 0);
}

#[test]
fn user_set_refuses_bad_values_unknown_users_and_empty_changes_with_one_line() {
    let cli = Cli::new();
    add(&cli, &["alice"]);
    let cases: &[&[&str]] = &[
        &["user", "set", "alice", "--email", "not-an-email"],
        &["user", "set", "alice", "--name", "bad\u{7}name"],
        &["user", "set", "alice"],
        &["user", "set", "nobody", "--name", "X"],
        &["user", "set", "alice", "--email-verified", "true"],
        &["user", "set", "alice", "--email-verified", "maybe"],
        &["user", "remove", "nobody"],
    ];
    for args in cases {
        let o = cli.run(args, None);
        assert_eq!(o.code, 1, "{args:?}: {}", o.stderr);
        assert!(!o.stderr.contains("panicked"), "{args:?}: {}", o.stderr);
    }
    let shown = json(&cli.run(&["user", "show", "alice", "--json"], None).stdout);
    assert_eq!(shown["email"], Value::Null);
    assert_eq!(shown["email_verified"], false);
}

#[test]
fn user_remove_is_audited_and_the_last_admin_is_kept() {
    let cli = Cli::new();
    add(&cli, &["root", "--role", "admin"]);
    add(&cli, &["bob"]);
    let last = cli.run(&["user", "remove", "root"], None);
    assert_eq!(last.code, 1);
    assert!(
        last.stderr.contains("last user holding the admin role"),
        "{}",
        last.stderr
    );
    assert_eq!(cli.run(&["user", "show", "root"], None).code, 0);
    let o = cli.run(&["user", "remove", "bob", "--json"], None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v = json(&o.stdout);
    assert_eq!(v["username"], "bob");
    assert_eq!(v["removed"], true);
    assert_eq!(cli.run(&["user", "show", "bob"], None).code, 1);
    // With a second administrator, the first may go.
    add(&cli, &["carol", "--role", "admin"]);
    assert_eq!(cli.run(&["user", "remove", "root"], None).code, 0);
    let trail = cli.run(&["audit", "export"], None).stdout;
    assert_eq!(trail.matches("\"admin.user.remove\"").count(), 2, "{trail}");
}

fn count(app: &TestApp, table: &str, column: &str, id: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut c = app.conn();
    let conn: &mut portcullis::db::DbConn = &mut c;
    // Table and column names come from this test, never from input.
    diesel::sql_query(format!(
        "SELECT COUNT(*) AS n FROM {table} WHERE {column} = '{id}'"
    ))
    .get_result::<N>(conn)
    .unwrap()
    .n
}

const HANGING: &[(&str, &str)] = &[
    ("sessions", "user_id"),
    ("tokens", "user_id"),
    ("auth_codes", "user_id"),
    ("consents", "user_id"),
    ("session_clients", "user_id"),
    ("password_history", "user_id"),
    ("totp_credentials", "user_id"),
    ("passkeys", "user_id"),
    ("recovery_codes", "user_id"),
];

#[tokio::test]
async fn removing_a_user_removes_their_sessions_tokens_consents_and_factors_on_this_backend() {
    let app = TestApp::spawn().await;
    let id = app.add_user("alice", Some("alice@example.com"), None);
    let secret = app.add_client(ClientSpec::confidential("app")).unwrap();
    let q = Browser::new()
        .authorize(
            &app,
            &authorize_url(&app, "openid offline_access", ""),
            "alice",
        )
        .await;
    let code = param(&q, "code").unwrap();
    let t = exchange(&app, &secret, &code).await;
    let refresh = t["refresh_token"].as_str().unwrap().to_string();
    // One more code, not yet exchanged, and the second factors.
    Browser::new()
        .authorize(&app, &authorize_url(&app, "openid", ""), "alice")
        .await;
    let now = app.clock.naive();
    {
        use portcullis::store::mfa;
        let mut c = app.conn();
        mfa::passkey_insert(
            &mut c,
            &mfa::PasskeyRow {
                credential_id: "cred-1".into(),
                user_id: id.clone(),
                name: "Laptop".into(),
                passkey: "{}".into(),
                backup_eligible: false,
                backup_state: false,
                sign_count: 0,
                created_at: now,
                last_used_at: None,
            },
        )
        .unwrap();
        let (_, rows) = portcullis::sign_in::recovery_codes::new_set(&id, now);
        mfa::recovery_replace(&mut c, &id, &rows[..2]).unwrap();
        portcullis::sign_in::password::remember(&mut c, &id, "argon2-placeholder", 5, now).unwrap();
    }
    for (table, column) in [
        ("sessions", "user_id"),
        ("tokens", "user_id"),
        ("consents", "user_id"),
        ("passkeys", "user_id"),
        ("recovery_codes", "user_id"),
    ] {
        assert!(count(&app, table, column, &id) > 0, "{table} before");
    }
    let removed = user_change::remove(&mut app.conn(), "alice").unwrap();
    assert!(removed.sessions >= 1 && removed.tokens >= 2 && removed.consents == 1);
    for (table, column) in HANGING {
        assert_eq!(count(&app, table, column, &id), 0, "{table} after");
    }
    assert_eq!(count(&app, "sessions", "pending_user_id", &id), 0);
    // What was issued stops working at once.
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("app", Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", &refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    let trail = app.trail();
    assert!(trail.iter().any(|e| e.event == "admin.user.remove"));
}

#[tokio::test]
async fn the_email_verified_claim_is_what_the_operator_set() {
    let app = TestApp::spawn().await;
    app.add_user("alice", Some("alice@example.com"), None);
    let secret = app.add_client(ClientSpec::confidential("app")).unwrap();
    let changes = Changes {
        email_verified: Some(true),
        ..Changes::default()
    };
    user_change::set(&mut app.conn(), "alice", &changes, app.clock.naive()).unwrap();
    let q = Browser::new()
        .authorize(&app, &authorize_url(&app, "openid email", ""), "alice")
        .await;
    let t = exchange(&app, &secret, &param(&q, "code").unwrap()).await;
    let info: Value = reqwest::Client::new()
        .get(app.url("/userinfo"))
        .bearer_auth(t["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["email_verified"], true);
}

#[test]
fn user_list_reveal_is_recorded_only_when_it_reveals_something() {
    let cli = Cli::new();
    add(&cli, &["plain"]);
    let o = cli.run(&["user", "list", "--reveal"], None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    let trail = cli.run(&["audit", "export"], None).stdout;
    assert!(!trail.contains("\"admin.reveal\""), "{trail}");
    add(&cli, &["alice", "--email", "alice@example.com"]);
    cli.run(&["user", "list", "--reveal"], None);
    let trail = cli.run(&["audit", "export"], None).stdout;
    assert_eq!(trail.matches("\"admin.reveal\"").count(), 1, "{trail}");
}

#[test]
fn lists_print_a_header_row_in_text_but_not_in_json() {
    let cli = Cli::new();
    add(&cli, &["alice"]);
    let c = cli.run(
        &[
            "client",
            "add",
            "app",
            "--redirect-uri",
            "https://rp.example/cb",
        ],
        None,
    );
    assert_eq!(c.code, 0, "{}", c.stderr);
    for (args, header) in [
        (&["user", "list"][..], "USERNAME"),
        (&["client", "list"][..], "CLIENT_ID"),
        (&["keys", "list"][..], "KID"),
    ] {
        let o = cli.run(args, None);
        assert_eq!(o.code, 0, "{args:?}: {}", o.stderr);
        let first = o.stdout.lines().next().unwrap_or_default();
        assert!(first.starts_with(header), "{args:?}: {}", o.stdout);
        let mut with_json = args.to_vec();
        with_json.push("--json");
        let j = json(&cli.run(&with_json, None).stdout);
        let rows = j.as_array().unwrap().len();
        assert!(rows >= 1, "{args:?}");
        assert_eq!(o.stdout.lines().count(), rows + 1, "{args:?}: {}", o.stdout);
    }
}
