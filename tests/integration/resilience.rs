//! A panic inside a use case must not leave shared state broken: its transaction is rolled
//! back, its connection is closed, and the server keeps serving.

use diesel::RunQueryDsl;
use reqwest::StatusCode;

use crate::support::browser::Browser;
use crate::support::{ClientSpec, REDIRECT, TestApp, param};

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn users_named(app: &TestApp, name: &str) -> i64 {
    let rows: Vec<Count> = diesel::sql_query(format!(
        "SELECT COUNT(*) AS n FROM users WHERE username = '{name}'"
    ))
    .load(&mut *app.conn())
    .unwrap();
    rows[0].n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_inside_a_use_case_rolls_back_and_sign_in_still_works() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let secret = app.add_client(ClientSpec::confidential("app"));
    assert!(secret.is_some());

    // More panics than the pool has connections: every one of them would be poisoned if a
    // connection inside an open transaction went back to the pool.
    for i in 0..(app.state.config.db_pool_size + 2) {
        let id = format!("ghost-{i}");
        let outcome: Result<(), _> = portcullis::app::run(&app.state, move |c, _ctx, now| {
            diesel::sql_query(
                "INSERT INTO users (id, username, groups, roles, disabled, created_at, updated_at) \
                 VALUES ($1, 'ghost', '[]', '[]', false, $2, $2)",
            )
            .bind::<diesel::sql_types::Text, _>(id)
            .bind::<diesel::sql_types::Timestamp, _>(now)
            .execute(c)?;
            panic!("injected failure inside a use case");
        })
        .await;
        assert!(
            outcome.is_err(),
            "a panicking use case must answer an error"
        );
    }
    assert_eq!(users_named(&app, "ghost"), 0, "the writes were rolled back");

    let ready = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(ready.status(), StatusCode::OK);

    let browser = Browser::new();
    let answer = browser
        .authorize(
            &app,
            &app.url(&format!(
                "/authorize?response_type=code&client_id=app&redirect_uri={REDIRECT}\
                 &scope=openid&state=s1&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
                 &code_challenge_method=S256"
            )),
            "alice",
        )
        .await;
    assert!(
        param(&answer, "code").is_some(),
        "signed in after the panics: {answer:?}"
    );
    let metrics = app.state.metrics.render();
    assert!(
        metrics.contains(&format!(
            "portcullis_use_case_panics_total {}",
            app.state.config.db_pool_size + 2
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn readyz_fails_while_the_pool_cannot_run_a_trivial_transaction() {
    if crate::support::backend() != "sqlite" {
        // PostgreSQL answers a BEGIN inside a transaction with a warning, not an error, so
        // this way of leaving a connection unable to open a transaction exists on SQLite only.
        crate::support::skip("the stuck-transaction readiness case is SQLite's");
        return;
    }
    let app = TestApp::spawn_with(crate::support::Options {
        configure: Box::new(|c| c.db_pool_size = 1),
        ..Default::default()
    })
    .await;
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        StatusCode::OK
    );
    // A transaction opened behind the transaction manager's back: a plain query still
    // answers on this connection, but no transaction can start.
    {
        use diesel::connection::SimpleConnection;
        app.conn().batch_execute("BEGIN").unwrap();
    }
    let r = reqwest::get(app.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
}
