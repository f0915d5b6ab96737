//! Several instances on one database (PostgreSQL in CI, SQLite otherwise): they start together,
//! and what one user does at the same moment in two browsers is answered, never a 500.

use crate::flow::authorize_url;
use crate::support::browser::{Browser, Landing};
use crate::support::{ClientSpec, Options, PASSWORD, TestApp, fresh_database};

#[test]
fn instances_started_together_on_an_empty_database_all_start_and_migrate_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _guard) = fresh_database(dir.path());
    let parsed = portcullis::db::DbUrl::parse(&url).unwrap();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
    let starts: Vec<_> = (0..3)
        .map(|_| {
            let (parsed, barrier) = (parsed.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                portcullis::db::connect(&parsed, 2).map(|_| ())
            })
        })
        .collect();
    for s in starts {
        s.join()
            .expect("the start did not panic")
            .expect("every instance starts");
    }
    let pool = portcullis::db::connect(&parsed, 1).unwrap();
    let mut c = pool.get().unwrap();
    assert!(!portcullis::db::pending_migrations(&mut c).unwrap());
}

/// A browser signed in as `user`, at the consent page of a fresh request; returns the page.
async fn at_consent(app: &TestApp, b: &Browser, user: &str) -> String {
    let Landing::Page(_, path, page) = b
        .follow(app, authorize_url(app, "openid profile", ""))
        .await
    else {
        panic!("expected the sign-in page");
    };
    assert_eq!(path, "/login");
    match b.submit_login(app, &page, user, PASSWORD).await {
        Landing::Page(status, path, body) if path == "/consent" => {
            assert_eq!(status, 200);
            body
        }
        other => panic!("expected the consent page, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_user_approving_in_two_browsers_at_once_gets_a_code_in_both() {
    let app = TestApp::spawn_with(Options::default()).await;
    app.add_client(ClientSpec::confidential("app"));
    for round in 0..6 {
        let user = format!("user{round}");
        app.add_user(&user, None, None);
        let (a, b) = (Browser::new(), Browser::new());
        let page_a = at_consent(&app, &a, &user).await;
        let page_b = at_consent(&app, &b, &user).await;
        let (la, lb) = tokio::join!(
            a.submit_consent(&app, &page_a, "allow"),
            b.submit_consent(&app, &page_b, "allow")
        );
        for landing in [la, lb] {
            match landing {
                Landing::Client(_, q) => assert!(
                    q.iter().any(|(k, _)| k == "code"),
                    "round {round}: no code in {q:?}"
                ),
                other => panic!("round {round}: expected a code at the client, got {other:?}"),
            }
        }
    }
}

#[test]
fn the_readiness_check_for_pending_migrations_runs_on_a_read_only_connection() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _guard) = fresh_database(dir.path());
    let parsed = portcullis::db::DbUrl::parse(&url).unwrap();
    drop(portcullis::db::connect(&parsed, 1).unwrap());
    // A connection on which the database refuses every write, DDL included.
    let mut c = match &parsed {
        portcullis::db::DbUrl::Postgres(u) => {
            let mut c = portcullis::db::DbConn::Pg(
                <diesel::pg::PgConnection as diesel::Connection>::establish(u).unwrap(),
            );
            diesel::RunQueryDsl::execute(
                diesel::sql_query("SET default_transaction_read_only = on"),
                &mut c,
            )
            .unwrap();
            c
        }
        portcullis::db::DbUrl::Sqlite(p) => {
            let mut c = portcullis::db::DbConn::Sqlite(
                <diesel::sqlite::SqliteConnection as diesel::Connection>::establish(p).unwrap(),
            );
            diesel::RunQueryDsl::execute(diesel::sql_query("PRAGMA query_only = ON"), &mut c)
                .unwrap();
            c
        }
    };
    assert!(!portcullis::db::pending_migrations(&mut c).unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_wrong_passwords_get_no_more_password_checks_than_one_after_another() {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(|c| c.rate_limit.enabled = false),
        ..Default::default()
    })
    .await;
    app.add_user("alice", None, None);
    // Default schedule for one account from one address: 3 free failures, and the 4th sets
    // a delay. One after another, 4 attempts are checked and the rest wait.
    let free = app.state.config.throttle.account_ip.free;
    let browsers: Vec<Browser> = (0..12).map(|_| Browser::new()).collect();
    let answers = futures_util::future::join_all(
        browsers
            .iter()
            .map(|b| b.try_sign_in(&app, "alice", "wrong password")),
    )
    .await;
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    let checked = app
        .trail()
        .into_iter()
        .filter(|e| e.event == "sign_in" && e.outcome == "failure")
        .count();
    assert_eq!(
        checked,
        usize::try_from(free).unwrap() + 1,
        "password checks made (answers {statuses:?})"
    );
    // The checked ones within the free attempts are told they failed; the rest wait.
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        usize::try_from(free).unwrap(),
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        12 - usize::try_from(free).unwrap(),
        "{statuses:?}"
    );
}

#[test]
fn a_new_pool_opens_one_connection_not_its_maximum() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _guard) = fresh_database(dir.path());
    let pool = portcullis::db::connect(&portcullis::db::DbUrl::parse(&url).unwrap(), 8).unwrap();
    // Idle, it keeps one; more are opened as load needs them (and closed after a minute idle).
    assert_eq!(pool.state().connections, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_that_stops_answering_gives_json_503_with_retry_after_and_then_recovers() {
    use diesel::{Connection, RunQueryDsl};
    let app = TestApp::spawn_with(Options {
        configure: Box::new(|c| c.rate_limit.enabled = false),
        ..Default::default()
    })
    .await;
    let mut spec = ClientSpec::confidential("svc");
    spec.scopes = "api:read";
    spec.grant_types = vec!["client_credentials"];
    let secret = app.add_client(spec).unwrap();
    let ask = || async {
        reqwest::Client::new()
            .post(app.url("/token"))
            .basic_auth("svc", Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
    };
    assert_eq!(ask().await.status(), 200);
    // Another connection holds what every token write needs, as a frozen database would.
    let mut blocker = match portcullis::db::DbUrl::parse(&app.database_url).unwrap() {
        portcullis::db::DbUrl::Postgres(u) => {
            let mut c = diesel::pg::PgConnection::establish(&u).unwrap();
            diesel::sql_query("BEGIN").execute(&mut c).unwrap();
            diesel::sql_query("LOCK TABLE tokens IN ACCESS EXCLUSIVE MODE")
                .execute(&mut c)
                .unwrap();
            portcullis::db::DbConn::Pg(c)
        }
        portcullis::db::DbUrl::Sqlite(p) => {
            let mut c = diesel::sqlite::SqliteConnection::establish(&p).unwrap();
            // The server may be writing at this moment (its background jobs): wait our turn.
            diesel::sql_query("PRAGMA busy_timeout = 10000")
                .execute(&mut c)
                .unwrap();
            diesel::sql_query("BEGIN IMMEDIATE")
                .execute(&mut c)
                .unwrap();
            portcullis::db::DbConn::Sqlite(c)
        }
    };
    let r = ask().await;
    assert_eq!(r.status(), 503);
    let retry: i64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    diesel::sql_query("ROLLBACK").execute(&mut blocker).unwrap();
    assert_eq!(ask().await.status(), 200, "it recovers by itself");
}

/// Three instances on one database, with a per-client budget of `budget` requests a minute.
async fn three_instances(budget: u32) -> Vec<TestApp> {
    let tight = move |c: &mut portcullis::config::Config| {
        c.rate_limit.per_second = 1000;
        c.rate_limit.burst = 1000;
        c.rate_limit.client_requests_per_minute = budget;
        // One master key, as instances of one deployment have.
        c.master_key = Some((
            portcullis::keys::master::MasterKey::from_bytes([9u8; 32]),
            portcullis::keys::master::Source::Environment,
        ));
    };
    let first = TestApp::spawn_with(Options {
        configure: Box::new(tight),
        ..Default::default()
    })
    .await;
    let url = first.database_url.clone();
    let mut apps = vec![first];
    for _ in 0..2 {
        apps.push(
            TestApp::spawn_with(Options {
                database_url: Some(url.clone()),
                configure: Box::new(tight),
                ..Default::default()
            })
            .await,
        );
    }
    // Each counts the others (as its next heartbeat would).
    for app in &apps {
        let live = app
            .state
            .share
            .heartbeat(&mut app.conn(), app.clock.naive())
            .unwrap();
        assert_eq!(live, 3);
    }
    apps
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_instances_together_allow_a_client_its_budget_not_three_times_it() {
    let apps = three_instances(30).await;
    let secret = apps[0]
        .add_client(crate::support::ClientSpec {
            redirect_uris: vec![],
            scopes: "api:read",
            grant_types: vec!["client_credentials"],
            ..crate::support::ClientSpec::confidential("machine")
        })
        .unwrap();
    let http = reqwest::Client::new();
    let mut granted = 0;
    // 90 requests, spread evenly as a load balancer would.
    for round in 0..90 {
        let app = &apps[round % 3];
        let status = http
            .post(app.url("/token"))
            .basic_auth("machine", Some(&secret))
            .form(&[("grant_type", "client_credentials")])
            .send()
            .await
            .unwrap()
            .status();
        assert!(
            status == 200 || status == 429,
            "a grant or a refusal for the rate: {status}"
        );
        granted += usize::from(status == 200);
    }
    // The budget of 30, plus at most one request each instance's share refills while the
    // test runs (one every 6 s at 10 a minute).
    assert!(
        (30..=33).contains(&granted),
        "the cluster granted {granted} of 90; its budget is 30 a minute"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn audit_entries_written_by_three_instances_at_once_form_one_intact_chain() {
    let apps = three_instances(6000).await;
    apps[0].add_client(crate::support::ClientSpec {
        redirect_uris: vec![],
        scopes: "api:read",
        grant_types: vec!["client_credentials"],
        ..crate::support::ClientSpec::confidential("machine")
    });
    // 60 failed client authentications at once, 20 on each instance: each is audited.
    let requests: Vec<_> = (0..60)
        .map(|i| {
            let url = apps[i % 3].url("/token");
            tokio::spawn(async move {
                reqwest::Client::new()
                    .post(url)
                    .basic_auth("machine", Some("wrong"))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        })
        .collect();
    for r in requests {
        assert_eq!(r.await.unwrap(), 401);
    }
    let mut c = apps[1].conn();
    let verdict = portcullis::audit::verify(&mut c, Some(&apps[1].state.master)).unwrap();
    let failures = apps[1]
        .trail()
        .into_iter()
        .filter(|e| e.event == "client.auth" && e.outcome == "failure")
        .count();
    assert_eq!(failures, 60, "every failure is in the chain");
    let rows: i64 = {
        use diesel::prelude::*;
        portcullis::db::schema::audit_log::table
            .count()
            .get_result(&mut *c)
            .unwrap()
    };
    assert_eq!(
        verdict,
        portcullis::audit::Verdict::Intact { entries: rows },
        "one chain through every entry of every instance"
    );
}

#[test]
fn every_hot_path_and_purge_query_finds_its_rows_through_an_index() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _guard) = fresh_database(dir.path());
    let pool = portcullis::db::connect(&portcullis::db::DbUrl::parse(&url).unwrap(), 1).unwrap();
    let scans = portcullis::db::plans::full_scans(&mut pool.get().unwrap()).unwrap();
    assert!(
        scans.is_empty(),
        "queries that read a whole table: {scans:#?}"
    );
}
