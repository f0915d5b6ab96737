//! The operator CLI, run as a real process on a fresh SQLite database.

use std::io::Write;
use std::process::{Command, Stdio};

pub(crate) struct Cli {
    pub(crate) dir: tempfile::TempDir,
}

pub(crate) struct Out {
    pub(crate) code: i32,
    pub(crate) stdout: String,
    pub(crate) stderr: String,
}

impl Cli {
    pub(crate) fn new() -> Cli {
        crate::support::init();
        Cli {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub(crate) fn run(&self, args: &[&str], stdin: Option<&str>) -> Out {
        self.run_env(args, stdin, &[])
    }

    /// Runs with extra environment variables (e.g. another database).
    pub(crate) fn run_env(&self, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Out {
        let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(args)
            .current_dir(self.dir.path())
            .env_remove("PORTCULLIS_DATABASE_URL")
            .env_remove("PORTCULLIS_CONFIG")
            .env_remove("PORTCULLIS_ISSUER")
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        if let Some(s) = stdin {
            child
                .stdin
                .as_mut()
                .unwrap()
                .write_all(s.as_bytes())
                .unwrap();
        }
        drop(child.stdin.take());
        let o = child.wait_with_output().unwrap();
        Out {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into(),
            stderr: String::from_utf8_lossy(&o.stderr).into(),
        }
    }
}

#[test]
fn client_add_prints_the_secret_once_and_stores_only_its_hash() {
    let cli = Cli::new();
    let o = cli.run(
        &[
            "client",
            "add",
            "app",
            "--redirect-uri",
            "https://rp.example/cb",
            "--name",
            "My App",
            "--json",
        ],
        None,
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let v: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(v["client_id"], "app");
    let secret = v["client_secret"].as_str().unwrap().to_string();
    assert!(secret.len() >= 43);
    let show = cli.run(&["client", "show", "app", "--json"], None);
    assert_eq!(show.code, 0);
    assert!(!show.stdout.contains(&secret));
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(v["name"], "My App");
    assert_eq!(
        v["redirect_uris"],
        serde_json::json!(["https://rp.example/cb"])
    );
    let db = std::fs::read(cli.dir.path().join("data/portcullis.db")).unwrap();
    let hay = String::from_utf8_lossy(&db);
    assert!(!hay.contains(&secret), "the secret is stored in the clear");
    // A duplicate is refused with one line and exit 1.
    let dup = cli.run(
        &[
            "client",
            "add",
            "app",
            "--redirect-uri",
            "https://rp.example/cb",
        ],
        None,
    );
    assert_eq!(dup.code, 1);
    assert_eq!(dup.stderr.trim().lines().count(), 1, "{}", dup.stderr);
    assert!(dup.stderr.contains("already exists"));
}

#[test]
fn bad_input_exits_1_with_one_line_and_writes_nothing() {
    let cli = Cli::new();
    assert_eq!(cli.run(&["migrate"], None).code, 0);
    let cases: &[&[&str]] = &[
        &[
            "client",
            "add",
            "bad",
            "--redirect-uri",
            "http://evil.example/cb",
        ],
        &["client", "add", "bad", "--redirect-uri", "not a url"],
        &[
            "client",
            "add",
            "bad id",
            "--redirect-uri",
            "https://rp.example/cb",
        ],
        &[
            "client",
            "add",
            "bad",
            "--redirect-uri",
            "https://rp.example/cb",
            "--grant-type",
            "password",
        ],
        &[
            "client",
            "add",
            "bad",
            "--redirect-uri",
            "https://rp.example/cb",
            "--scope",
            "bad\"scope",
        ],
        &[
            "client",
            "add",
            "bad",
            "--redirect-uri",
            "https://rp.example/cb",
            "--auth-method",
            "none",
        ],
        &["client", "add", "bad"],
        &["client", "show", "missing"],
        &["client", "remove", "missing"],
        &["user", "show", "missing"],
        &["user", "add", "bad user"],
        &["user", "add", "bob", "--email", "not-an-email"],
        &["nonsense"],
        &["--issuer", "http://example.com", "user", "list"],
        &["--database-url", "mysql://x", "user", "list"],
    ];
    for args in cases {
        let o = cli.run(args, None);
        assert_eq!(o.code, 1, "{args:?}: {}", o.stderr);
        assert!(!o.stderr.contains("panicked"), "{args:?}: {}", o.stderr);
        if args[0] != "nonsense" {
            assert_eq!(o.stderr.trim().lines().count(), 1, "{args:?}: {}", o.stderr);
        }
    }
    let list = cli.run(&["client", "list", "--json"], None);
    assert_eq!(list.stdout.trim(), "[]");
    let short = cli.run(&["user", "add", "bob", "--password-stdin"], Some("short\n"));
    assert_eq!(short.code, 1);
    let users = cli.run(&["user", "list", "--json"], None);
    assert_eq!(users.stdout.trim(), "[]");
}

#[test]
fn an_issuer_with_a_path_is_refused_at_start_with_what_to_do_instead() {
    let cli = Cli::new();
    for cmd in [&["serve"][..], &["user", "list"][..]] {
        let mut args = vec!["--issuer", "https://example.com/idp"];
        args.extend_from_slice(cmd);
        let o = cli.run(&args, None);
        assert_eq!(o.code, 1, "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains("/idp"), "{}", o.stderr);
        assert!(o.stderr.contains("host of its own"), "{}", o.stderr);
    }
}

#[test]
fn users_are_added_shown_disabled_and_listed() {
    let cli = Cli::new();
    let o = cli.run(
        &[
            "user",
            "add",
            "alice",
            "--email",
            "alice@example.com",
            "--name",
            "Alice",
            "--group",
            "staff",
            "--role",
            "admin",
            "--password-stdin",
        ],
        Some("correct horse battery staple\n"),
    );
    assert_eq!(o.code, 0, "{}", o.stderr);
    let show = cli.run(&["user", "show", "alice", "--json"], None);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(v["groups"], serde_json::json!(["staff"]));
    assert_eq!(v["roles"], serde_json::json!(["admin"]));
    assert_eq!(v["disabled"], false);
    assert!(!show.stdout.contains("argon2"));
    assert_eq!(cli.run(&["user", "disable", "alice"], None).code, 0);
    let v: serde_json::Value =
        serde_json::from_str(&cli.run(&["user", "show", "alice", "--json"], None).stdout).unwrap();
    assert_eq!(v["disabled"], true);
    assert_eq!(cli.run(&["user", "enable", "alice"], None).code, 0);
    let set = cli.run(
        &["user", "set-password", "alice", "--password-stdin"],
        Some("another long passphrase\n"),
    );
    assert_eq!(set.code, 0, "{}", set.stderr);
    let list = cli.run(&["user", "list", "--json"], None);
    let v: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(v.as_array().unwrap().len(), 1);
    let keys = cli.run(&["keys", "list", "--json"], None);
    let v: serde_json::Value = serde_json::from_str(&keys.stdout).unwrap();
    assert_eq!(v[0]["state"], "active");
    assert_eq!(v[0]["alg"], "RS256");
}

fn sqlite_conn(cli: &Cli) -> portcullis::db::DbConn {
    use diesel::Connection;
    let db = cli.dir.path().join("data/portcullis.db");
    portcullis::db::DbConn::Sqlite(
        diesel::sqlite::SqliteConnection::establish(db.to_str().unwrap()).unwrap(),
    )
}

/// Gives `username` a TOTP secret sealed under the dev master key, a passkey and two
/// recovery codes, as the account pages would.
fn give_factors(cli: &Cli, username: &str, secret: &[u8]) {
    let master = portcullis::keys::master::MasterKey::parse(
        &std::fs::read_to_string(cli.dir.path().join("data/master.key")).unwrap(),
    )
    .unwrap();
    let mut conn = sqlite_conn(cli);
    let user = portcullis::store::users::find_by_username(&mut conn, username)
        .unwrap()
        .unwrap();
    let now = portcullis::clock::Clock::System.naive();
    use portcullis::store::mfa;
    mfa::totp_begin(
        &mut conn,
        &mfa::Totp {
            user_id: user.id.clone(),
            secret: portcullis::sign_in::totp::seal(&master, &user.id, secret).unwrap(),
            confirmed: true,
            last_step: None,
            created_at: now,
            confirmed_at: Some(now),
            last_used_at: None,
        },
    )
    .unwrap();
    mfa::passkey_insert(
        &mut conn,
        &mfa::PasskeyRow {
            credential_id: "cred-1".into(),
            user_id: user.id.clone(),
            name: "Work laptop".into(),
            passkey: "{}".into(),
            backup_eligible: false,
            backup_state: false,
            sign_count: 0,
            created_at: now,
            last_used_at: None,
        },
    )
    .unwrap();
    let (_, rows) = portcullis::sign_in::recovery_codes::new_set(&user.id, now);
    mfa::recovery_replace(&mut conn, &user.id, &rows[..2]).unwrap();
}

#[test]
fn user_show_lists_factors_without_secrets_and_reset_mfa_removes_them_audited() {
    let cli = Cli::new();
    let add = cli.run(
        &["user", "add", "alice", "--password-stdin"],
        Some("correct horse battery staple\n"),
    );
    assert_eq!(add.code, 0, "{}", add.stderr);
    let secret = b"12345678901234567890";
    give_factors(&cli, "alice", secret);
    let show = cli.run(&["user", "show", "alice", "--json"], None);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(v["mfa"]["totp"], true);
    assert_eq!(
        v["mfa"]["passkeys"][0]["name"], "W****",
        "masked like a name"
    );
    assert_eq!(v["mfa"]["recovery_codes_remaining"], 2);
    let text = cli.run(&["user", "show", "alice"], None).stdout;
    assert!(
        text.contains("totp: on") && text.contains("passkeys: 1 (W****)"),
        "{text}"
    );
    let revealed = cli.run(&["user", "show", "alice", "--reveal"], None).stdout;
    assert!(revealed.contains("passkeys: 1 (Work laptop)"), "{revealed}");
    for out in [&show.stdout, &text, &revealed] {
        assert!(
            !out.contains("v1:") && !out.contains("GEZDGNBVGY3TQOJQ"),
            "no secret: {out}"
        );
    }

    let missing = cli.run(&["user", "reset-mfa", "nobody"], None);
    assert_eq!(missing.code, 1);
    assert_eq!(missing.stderr.lines().count(), 1);
    let reset = cli.run(&["user", "reset-mfa", "alice", "--json"], None);
    assert_eq!(reset.code, 0, "{}", reset.stderr);
    let v: serde_json::Value = serde_json::from_str(&reset.stdout).unwrap();
    assert_eq!(v["removed"]["passkeys"], 1);
    let v: serde_json::Value =
        serde_json::from_str(&cli.run(&["user", "show", "alice", "--json"], None).stdout).unwrap();
    assert_eq!(v["mfa"]["totp"], false);
    assert_eq!(v["mfa"]["passkeys"], serde_json::json!([]));
    assert_eq!(v["mfa"]["recovery_codes_remaining"], 0);
    let tail = cli.run(&["audit", "tail", "-n", "5"], None).stdout;
    assert!(tail.contains("admin.user.reset_mfa"), "{tail}");
    assert_eq!(cli.run(&["audit", "verify"], None).code, 0);
}

#[test]
fn migrate_creates_the_database_under_data() {
    let cli = Cli::new();
    let o = cli.run(&["migrate", "--json"], None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert!(cli.dir.path().join("data/portcullis.db").exists());
}

#[tokio::test]
async fn serve_bootstraps_an_admin_once_serves_discovery_and_stops_cleanly_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let start = || {
        Command::new(env!("CARGO_BIN_EXE_portcullis"))
            .args(["serve", "--bind", "127.0.0.1:0"])
            .current_dir(dir.path())
            .env_remove("PORTCULLIS_DATABASE_URL")
            .env_remove("PORTCULLIS_CONFIG")
            .env_remove("PORTCULLIS_ISSUER")
            .env_remove("PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD")
            .env("PORTCULLIS_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Reads stderr until the listening line (at most 60 s); returns the address and what came before.
    let wait_listening = |child: &mut std::process::Child| {
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = String::new();
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                // Keep draining after the listening line so the server never blocks on a full pipe.
                if sent {
                    continue;
                }
                seen.push_str(&line);
                seen.push('\n');
                if let Some(i) = line.find("addr=") {
                    let addr = line[i + 5..].split_whitespace().next().unwrap().to_string();
                    let _ = tx.send(Ok((addr, seen.clone())));
                    sent = true;
                }
            }
            if !sent {
                let _ = tx.send(Err(seen));
            }
        });
        match rx.recv_timeout(std::time::Duration::from_secs(60)) {
            Ok(Ok(found)) => found,
            Ok(Err(seen)) => panic!("server exited before listening:\n{seen}"),
            Err(_) => {
                let _ = child.kill();
                panic!("server did not report listening within 60 s");
            }
        }
    };
    let mut child = start();
    let (addr, first_output) = wait_listening(&mut child);
    // stderr is a pipe here, as under a log collector: the password goes to a 0600 file
    // whose place is logged, never into the stream.
    assert!(
        first_output.contains(portcullis::cli::serve::BOOTSTRAP_PASSWORD_FILE),
        "{first_output}"
    );
    let password_file = dir
        .path()
        .join(portcullis::cli::serve::BOOTSTRAP_PASSWORD_FILE);
    let generated = std::fs::read_to_string(&password_file).unwrap();
    let generated = generated.trim_end();
    assert!(generated.len() >= 32, "a generated password: {generated:?}");
    assert!(!first_output.contains(generated), "{first_output}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&password_file)
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(dir.path().join("data/portcullis.db").exists());
    let doc: serde_json::Value =
        reqwest::get(format!("http://{addr}/.well-known/openid-configuration"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(doc["issuer"], "http://localhost:8080");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = child.wait().unwrap();
    assert!(exit.success(), "exit status {exit:?}");
    // Second start: the admin exists, no password is printed again.
    let mut child = start();
    let (addr, second_output) = wait_listening(&mut child);
    assert!(!second_output.contains("password"), "{second_output}");
    let r = reqwest::get(format!("http://{addr}/healthz"))
        .await
        .unwrap();
    assert!(r.status().is_success());
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn the_password_policy_applies_to_the_cli() {
    let cli = Cli::new();
    for weak in [
        "password123456",
        "alice@example.com",
        "qwertyuiopasdf",
        "short",
    ] {
        let o = cli.run(
            &[
                "user",
                "add",
                "alice",
                "--email",
                "alice@example.com",
                "--password-stdin",
            ],
            Some(&format!("{weak}\n")),
        );
        assert_eq!(o.code, 1, "{weak} was accepted");
        assert_eq!(o.stderr.trim().lines().count(), 1, "{}", o.stderr);
    }
    let ok = cli.run(
        &[
            "user",
            "add",
            "alice",
            "--email",
            "alice@example.com",
            "--password-stdin",
        ],
        Some("violet tractor humming softly\n"),
    );
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    // The current password cannot be set again; a new one can, and then the first is history.
    let same = cli.run(
        &["user", "set-password", "alice", "--password-stdin"],
        Some("violet tractor humming softly\n"),
    );
    assert_eq!(same.code, 1);
    assert!(same.stderr.contains("last 5 passwords"), "{}", same.stderr);
    let new = cli.run(
        &["user", "set-password", "alice", "--password-stdin"],
        Some("marble canyon whispers at dawn\n"),
    );
    assert_eq!(new.code, 0, "{}", new.stderr);
    let back = cli.run(
        &["user", "set-password", "alice", "--password-stdin"],
        Some("violet tractor humming softly\n"),
    );
    assert_eq!(back.code, 1, "an old password came back");
}

#[test]
fn audit_verify_reports_an_intact_trail_and_names_the_first_altered_entry() {
    use diesel::{Connection, RunQueryDsl};
    let cli = Cli::new();
    assert_eq!(
        cli.run(
            &[
                "client",
                "add",
                "app",
                "--redirect-uri",
                "https://rp.example/cb"
            ],
            None
        )
        .code,
        0
    );
    assert_eq!(cli.run(&["user", "disable", "missing"], None).code, 1);
    assert_eq!(
        cli.run(
            &[
                "client",
                "add",
                "two",
                "--redirect-uri",
                "https://rp.example/cb"
            ],
            None
        )
        .code,
        0
    );
    let ok = cli.run(&["audit", "verify"], None);
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    assert!(ok.stdout.contains("intact: 2 entries"), "{}", ok.stdout);
    let export = cli.run(&["audit", "export", "--since", "2000-01-01"], None);
    let lines: Vec<serde_json::Value> = export
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["event"], "admin.client.add");
    assert!(lines[0]["actor"].as_str().unwrap().starts_with("cli:"));
    let db = cli.dir.path().join("data/portcullis.db");
    let mut c = diesel::sqlite::SqliteConnection::establish(db.to_str().unwrap()).unwrap();
    diesel::sql_query("UPDATE audit_log SET client_id = 'evil' WHERE seq = 1")
        .execute(&mut c)
        .unwrap();
    let broken = cli.run(&["audit", "verify"], None);
    assert_eq!(broken.code, 1);
    assert!(
        broken.stderr.contains("broken at entry 1"),
        "{}",
        broken.stderr
    );
}

#[tokio::test]
async fn logs_through_a_full_flow_carry_request_ids_and_no_secret() {
    use std::io::{BufRead, BufReader};
    use std::sync::{Arc, Mutex};
    let cli = Cli::new();
    let redirect = "http://localhost:7777/callback";
    let client = cli.run(
        &["client", "add", "app", "--redirect-uri", redirect, "--json"],
        None,
    );
    let secret =
        serde_json::from_str::<serde_json::Value>(&client.stdout).unwrap()["client_secret"]
            .as_str()
            .unwrap()
            .to_string();
    let password = "harbour lights over quiet water";
    assert_eq!(
        cli.run(
            &["user", "add", "alice", "--password-stdin"],
            Some(&format!("{password}\n"))
        )
        .code,
        0
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(cli.dir.path())
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_ISSUER")
        .env("PORTCULLIS_LOG", "debug")
        .env("PORTCULLIS_LOG_FORMAT", "json")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = Arc::new(Mutex::new(Vec::<String>::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let collected = lines.clone();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(i) = line.find("\"addr\":\"") {
                let rest = &line[i + 8..];
                let _ = tx.send(rest[..rest.find('"').unwrap()].to_string());
            }
            collected.lock().unwrap().push(line);
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("server did not start");
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let loc = |r: &reqwest::Response| r.headers()["location"].to_str().unwrap().to_string();
    let hidden = |page: &str, name: &str| crate::support::hidden(page, name).unwrap();
    let r = http
        .get(format!(
            "{base}/authorize?response_type=code&client_id=app&redirect_uri={}&scope=openid%20offline_access&state=st&nonce=n",
            crate::flow::urlencode(redirect)
        ))
        .send()
        .await
        .unwrap();
    let login_page = http
        .get(format!("{base}{}", loc(&r)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = http
        .post(format!("{base}/login"))
        .form(&[
            ("username", "alice"),
            ("password", password),
            ("csrf_token", &hidden(&login_page, "csrf_token")),
            ("request", &hidden(&login_page, "request")),
        ])
        .send()
        .await
        .unwrap();
    let session_cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .to_string();
    let r = http.get(format!("{base}{}", loc(&r))).send().await.unwrap();
    let consent = http
        .get(format!("{base}{}", loc(&r)))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let r = http
        .post(format!("{base}/consent"))
        .form(&[
            ("decision", "allow"),
            ("csrf_token", &hidden(&consent, "csrf_token")),
            ("request", &hidden(&consent, "request")),
        ])
        .send()
        .await
        .unwrap();
    let code = crate::support::param(&crate::support::query_of(&loc(&r)), "code").unwrap();
    let tokens: serde_json::Value = http
        .post(format!("{base}/token"))
        .basic_auth("app", Some(&secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", redirect),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let id_token = tokens["id_token"].as_str().unwrap().to_string();
    let r = http
        .get(format!("{base}/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert!(r.headers().contains_key("x-request-id"));
    http.get(format!("{base}/logout?id_token_hint={id_token}"))
        .send()
        .await
        .unwrap();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
    let all = lines.lock().unwrap().join("\n");
    assert!(all.contains("\"request_id\""), "request ids in the logs");
    for (what, secret) in [
        ("password", password.to_string()),
        ("client secret", secret),
        ("code", code),
        ("access token", access),
        ("refresh token", refresh),
        ("ID token", id_token),
        ("session cookie", session_cookie),
    ] {
        assert!(!all.contains(&secret), "the {what} reached the logs");
    }
    // Every line is JSON: the bootstrap password never enters the log stream.
    for line in lines.lock().unwrap().iter() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "not JSON: {line}"
        );
    }
}

#[test]
fn personal_data_is_masked_unless_revealed_and_revealing_is_recorded() {
    let cli = Cli::new();
    cli.run(
        &[
            "user",
            "add",
            "alice",
            "--email",
            "alice@example.com",
            "--name",
            "Alice Liddell",
            "--password-stdin",
        ],
        Some("violet tractor humming softly\n"),
    );
    let masked = cli.run(&["user", "show", "alice", "--json"], None);
    let v: serde_json::Value = serde_json::from_str(&masked.stdout).unwrap();
    assert_eq!(v["email"], "a****@example.com");
    assert_eq!(v["name"], "A****");
    let list = cli.run(&["user", "list", "--json"], None);
    assert!(!list.stdout.contains("alice@example.com"));
    let shown = cli.run(&["user", "show", "alice", "--reveal", "--json"], None);
    let v: serde_json::Value = serde_json::from_str(&shown.stdout).unwrap();
    assert_eq!(v["email"], "alice@example.com");
    let trail = cli.run(&["audit", "export"], None);
    assert!(
        trail.stdout.contains("\"admin.reveal\""),
        "{}",
        trail.stdout
    );
}

#[test]
fn a_backup_restored_with_the_master_key_gives_the_same_users_clients_and_keys() {
    let a = Cli::new();
    a.run(
        &[
            "client",
            "add",
            "app",
            "--redirect-uri",
            "https://rp.example/cb",
        ],
        None,
    );
    a.run(
        &["user", "add", "alice", "--password-stdin"],
        Some("violet tractor humming softly\n"),
    );
    let keys_a = a.run(&["keys", "list", "--json"], None).stdout;
    let file = a.dir.path().join("snapshot.db");
    let b = a.run(&["backup", file.to_str().unwrap()], None);
    assert_eq!(b.code, 0, "{}", b.stderr);
    assert_eq!(
        a.run(&["backup", file.to_str().unwrap()], None).code,
        1,
        "never overwrites"
    );
    // A fresh machine with the same master key.
    let fresh = Cli::new();
    std::fs::create_dir_all(fresh.dir.path().join("data")).unwrap();
    std::fs::copy(
        a.dir.path().join("data/master.key"),
        fresh.dir.path().join("data/master.key"),
    )
    .unwrap();
    let r = fresh.run(&["restore", file.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(fresh.run(&["user", "show", "alice"], None).code, 0);
    assert_eq!(fresh.run(&["client", "show", "app"], None).code, 0);
    assert_eq!(fresh.run(&["keys", "list", "--json"], None).stdout, keys_a);
    assert_eq!(fresh.run(&["audit", "verify"], None).code, 0);
    // Not a backup: refused, nothing replaced.
    let junk = fresh.dir.path().join("junk.db");
    std::fs::write(&junk, "not a database").unwrap();
    let bad = fresh.run(&["restore", junk.to_str().unwrap()], None);
    assert_eq!(bad.code, 1);
    assert_eq!(fresh.run(&["user", "show", "alice"], None).code, 0);
}

#[test]
fn keys_rotate_publishes_a_next_key_once() {
    let cli = Cli::new();
    assert_eq!(cli.run(&["migrate"], None).code, 0);
    let r = cli.run(&["keys", "rotate", "--json"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["state"], "next");
    let again = cli.run(&["keys", "rotate"], None);
    assert_eq!(again.code, 1);
    assert!(again.stderr.contains("already pending"));
    let list: serde_json::Value =
        serde_json::from_str(&cli.run(&["keys", "list", "--json"], None).stdout).unwrap();
    let count = |state: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .filter(|k| k["state"] == state)
            .count()
    };
    assert_eq!(
        (count("active"), count("next")),
        (3, 3),
        "one of each per algorithm"
    );
}

#[test]
fn rotate_master_reseals_the_signing_keys_under_the_new_key() {
    use base64::Engine;
    use diesel::Connection;
    let cli = Cli::new();
    assert_eq!(cli.run(&["migrate"], None).code, 0);
    assert_eq!(cli.run(&["keys", "list"], None).code, 0);
    let add = cli.run(
        &["user", "add", "alice", "--password-stdin"],
        Some("correct horse battery staple\n"),
    );
    assert_eq!(add.code, 0, "{}", add.stderr);
    give_factors(&cli, "alice", b"12345678901234567890");
    let old_text = std::fs::read_to_string(cli.dir.path().join("data/master.key")).unwrap();
    let new_text = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let run = |args: &[&str], previous: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_portcullis"));
        c.args(args)
            .current_dir(cli.dir.path())
            .env_remove("PORTCULLIS_DATABASE_URL")
            .env_remove("PORTCULLIS_ISSUER")
            .env("PORTCULLIS_MASTER_KEY", &new_text);
        if previous {
            c.env("PORTCULLIS_PREVIOUS_MASTER_KEY", old_text.trim());
        } else {
            c.env_remove("PORTCULLIS_PREVIOUS_MASTER_KEY");
        }
        c.output().unwrap()
    };
    let missing = run(&["keys", "rotate-master"], false);
    assert_eq!(missing.status.code(), Some(1));
    let done = run(&["keys", "rotate-master", "--json"], true);
    assert!(
        done.status.success(),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert_eq!(v["signing_keys"], 3, "RS256, ES256 and EdDSA");
    assert_eq!(v["totp_secrets"], 1);
    // Idempotent: nothing left under the old key.
    let again = run(&["keys", "rotate-master", "--json"], true);
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["signing_keys"], 0);
    let db = cli.dir.path().join("data/portcullis.db");
    let mut conn = portcullis::db::DbConn::Sqlite(
        diesel::sqlite::SqliteConnection::establish(db.to_str().unwrap()).unwrap(),
    );
    let key = portcullis::store::signing_keys::list(&mut conn)
        .unwrap()
        .into_iter()
        .find(|k| k.alg == "ES256")
        .unwrap();
    let new = portcullis::keys::master::MasterKey::parse(&new_text).unwrap();
    let old = portcullis::keys::master::MasterKey::parse(&old_text).unwrap();
    let purpose = portcullis::keys::signing::SEAL_PURPOSE;
    assert!(portcullis::keys::at_rest::open(&new, purpose, &key.kid, &key.private_pem).is_ok());
    assert!(portcullis::keys::at_rest::open(&old, purpose, &key.kid, &key.private_pem).is_err());
    let totp = portcullis::store::mfa::totp_all(&mut conn).unwrap();
    let opened =
        portcullis::sign_in::totp::open(&new, None, &totp[0].user_id, &totp[0].secret).unwrap();
    assert_eq!(opened.as_slice(), b"12345678901234567890");
}

#[tokio::test]
async fn https_is_served_with_hsts_and_the_certificate_reloads_on_sighup() {
    use std::io::{BufRead, BufReader};
    if Command::new("openssl").arg("version").output().is_err() {
        crate::support::unavailable(
            "PORTCULLIS_REQUIRE_OPENSSL",
            "TLS test: the openssl command (used to make test certificates) is not installed",
        );
        return;
    }
    let cli = Cli::new();
    let dir = cli.dir.path();
    let make_cert = |name: &str| {
        let ok = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
            ])
            .args(["-keyout", "key.pem", "-out", "cert.pem", "-days", "2"])
            .args([
                "-subj",
                &format!("/CN={name}"),
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ])
            .args(["-addext", "basicConstraints=critical,CA:FALSE"])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stderr)
        );
        std::fs::read(dir.join("cert.pem")).unwrap()
    };
    let first = make_cert("first");
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--issuer",
            "https://localhost:8443",
        ])
        .args(["--tls-cert", "cert.pem", "--tls-key", "key.pem"])
        .current_dir(dir)
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env(
            "PORTCULLIS_MASTER_KEY",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        )
        .env(
            "PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD",
            "violet tractor humming softly",
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(i) = line.find("addr=") {
                let _ = tx.send(line[i + 5..].split_whitespace().next().unwrap().to_string());
            }
        }
    });
    let addr = rx
        .recv_timeout(std::time::Duration::from_secs(60))
        .expect("server did not start");
    let served_cert = |trusted: Vec<u8>| {
        let addr = addr.clone();
        async move {
            let client = reqwest::Client::builder()
                .add_root_certificate(reqwest::Certificate::from_pem(&trusted).unwrap())
                .tls_info(true)
                .build()
                .unwrap();
            let r = match client.get(format!("https://{addr}/healthz")).send().await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("https request failed: {e:?}");
                    return None;
                }
            };
            let hsts = r.headers().get("strict-transport-security").is_some();
            let der = r
                .extensions()
                .get::<reqwest::tls::TlsInfo>()?
                .peer_certificate()?
                .to_vec();
            Some((r.status(), hsts, der))
        }
    };
    let (status, hsts, _) = served_cert(first.clone()).await.expect("HTTPS works");
    assert_eq!(status, reqwest::StatusCode::OK);
    assert!(hsts, "HSTS with an https issuer");
    // Plain http on the same port is not served.
    assert!(
        !reqwest::get(format!("http://{addr}/healthz"))
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    );
    let second = make_cert("second");
    Command::new("kill")
        .args(["-HUP", &child.id().to_string()])
        .status()
        .unwrap();
    // The reload is asynchronous: poll for at most ten seconds.
    let mut reloaded = false;
    for _ in 0..100 {
        if served_cert(second.clone()).await.is_some() {
            reloaded = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(reloaded, "the new certificate is served after SIGHUP");
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn export_masked_replaces_personal_data_credentials_and_secrets() {
    let cli = Cli::new();
    let client = cli.run(
        &[
            "client",
            "add",
            "app",
            "--redirect-uri",
            "https://rp.example/cb",
            "--json",
        ],
        None,
    );
    let secret =
        serde_json::from_str::<serde_json::Value>(&client.stdout).unwrap()["client_secret"]
            .as_str()
            .unwrap()
            .to_string();
    cli.run(
        &[
            "user",
            "add",
            "alice",
            "--email",
            "alice@corp.example",
            "--name",
            "Alice Liddell",
            "--password-stdin",
        ],
        Some("violet tractor humming softly\n"),
    );
    give_factors(&cli, "alice", b"a totp seed of twenty");
    let sealed_seed = {
        use diesel::RunQueryDsl;
        #[derive(diesel::QueryableByName)]
        struct Seed {
            #[diesel(sql_type = diesel::sql_types::Text)]
            secret: String,
        }
        let rows: Vec<Seed> = diesel::sql_query("SELECT secret FROM totp_credentials")
            .load(&mut sqlite_conn(&cli))
            .unwrap();
        rows[0].secret.clone()
    };
    let original_key = cli.run(&["keys", "list", "--json"], None).stdout;
    let file = cli.dir.path().join("masked.db");
    assert_eq!(
        cli.run(&["export", file.to_str().unwrap()], None).code,
        1,
        "--masked is required"
    );
    let r = cli.run(&["export", "--masked", file.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let bytes = std::fs::read(&file).unwrap();
    let dump = String::from_utf8_lossy(&bytes);
    for real in [
        "alice",
        "alice@corp.example",
        "Alice Liddell",
        &portcullis::keys::secrets::sha256_hex(&secret),
        &sealed_seed,
        "cred-1",
        "Work laptop",
    ] {
        assert!(!dump.contains(real), "{real} survived the masking");
    }
    assert!(dump.contains("@example.invalid"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the export is readable by its owner only");
    }
    {
        use diesel::Connection;
        let mut copy = portcullis::db::DbConn::Sqlite(
            diesel::sqlite::SqliteConnection::establish(file.to_str().unwrap()).unwrap(),
        );
        for (table, rule) in portcullis::cli::masked::RULES {
            if *rule == portcullis::cli::masked::Rule::Empty {
                #[derive(diesel::QueryableByName)]
                struct Count {
                    #[diesel(sql_type = diesel::sql_types::BigInt)]
                    n: i64,
                }
                use diesel::RunQueryDsl;
                let c: Vec<Count> = diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
                    .load(&mut copy)
                    .unwrap();
                assert_eq!(c[0].n, 0, "{table} is emptied in a masked copy");
            }
        }
    }
    // The copy is a working database for a test environment.
    let test_env = Cli::new();
    let restored = test_env.run(&["restore", file.to_str().unwrap()], None);
    assert_eq!(restored.code, 0, "{}", restored.stderr);
    assert_eq!(test_env.run(&["user", "show", "user1"], None).code, 0);
    assert_ne!(
        test_env.run(&["keys", "list", "--json"], None).stdout,
        original_key
    );
}

#[cfg(unix)]
#[test]
fn the_data_folder_and_database_files_are_private_to_the_service_user() {
    use std::os::unix::fs::PermissionsExt;
    let cli = Cli::new();
    let r = cli.run(&["user", "add", "alice"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let data = cli.dir.path().join("data");
    assert_eq!(mode(&data), 0o700, "data/");
    let mut files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        files += 1;
    }
    assert!(files >= 2, "the database and the master key are there");
    let backup = cli.dir.path().join("backup.db");
    let r = cli.run(&["backup", backup.to_str().unwrap()], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(mode(&backup), 0o600, "backup file");
}

#[test]
fn a_reader_that_closes_early_ends_the_command_quietly_instead_of_a_panic() {
    let cli = Cli::new();
    for name in ["alice", "bob", "carol"] {
        assert_eq!(cli.run(&["user", "add", name], None).code, 0);
    }
    // The reading end is closed before the command writes anything.
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["audit", "tail", "-n", "50"])
        .current_dir(cli.dir.path())
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_ISSUER")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn audit_tail_with_zero_lines_prints_nothing() {
    let cli = Cli::new();
    assert_eq!(cli.run(&["user", "add", "alice"], None).code, 0);
    let r = cli.run(&["audit", "tail", "-n", "0"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.stdout, "");
}

#[test]
fn keys_generate_master_prints_a_fresh_key_without_touching_any_database() {
    let cli = Cli::new();
    let a = cli.run(&["keys", "generate-master"], None);
    assert_eq!(a.code, 0, "{}", a.stderr);
    let key = a.stdout.trim();
    assert!(
        portcullis::keys::master::MasterKey::parse(key).is_ok(),
        "{key}"
    );
    let b = cli.run(&["keys", "generate-master", "--json"], None);
    let v: serde_json::Value = serde_json::from_str(&b.stdout).unwrap();
    assert_ne!(
        v["master_key"].as_str().unwrap(),
        key,
        "a new key every time"
    );
    assert!(
        !cli.dir.path().join("data").exists(),
        "no database and no development key were created"
    );
}

#[test]
fn audit_verify_reports_the_entries_no_signed_checkpoint_anchors_yet() {
    let cli = Cli::new();
    for name in ["alice", "bob"] {
        assert_eq!(cli.run(&["user", "add", name], None).code, 0);
    }
    let r = cli.run(&["audit", "verify", "--json"], None);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert!(v["entries"].as_i64().unwrap() >= 2);
    assert_eq!(
        v["unanchored"], v["entries"],
        "no checkpoint was signed yet: {v}"
    );
    let text = cli.run(&["audit", "verify"], None).stdout;
    assert!(text.contains("not yet anchored"), "{text}");
}
