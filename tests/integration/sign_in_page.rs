//! The sign-in page seen by anonymous visitors: looking at it writes nothing to the database,
//! its form is still protected against cross-site posts, and a passkey ceremony begins only
//! when the passkey button asks for one.

use diesel::prelude::*;
use reqwest::StatusCode;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::support::browser::{Browser, Landing};
use crate::support::mfa::page;
use crate::support::{Options, PASSWORD, TestApp, hidden};

/// Rows of the tables a visit could fill: sessions, ceremonies, the audit trail, throttles.
fn rows(app: &TestApp) -> [i64; 4] {
    use portcullis::db::schema::{audit_log, sessions, throttles, webauthn_ceremonies};
    let mut c = app.conn();
    let conn: &mut portcullis::db::DbConn = &mut c;
    [
        sessions::table.count().get_result(conn).unwrap(),
        webauthn_ceremonies::table.count().get_result(conn).unwrap(),
        audit_log::table.count().get_result(conn).unwrap(),
        throttles::table.count().get_result(conn).unwrap(),
    ]
}

async fn localhost_app() -> TestApp {
    TestApp::spawn_with(Options {
        host: "localhost",
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn viewing_the_sign_in_page_writes_nothing_to_the_database() {
    let app = localhost_app().await;
    app.add_user("alice", None, None);
    let before = rows(&app);
    // Fresh visitors without cookies, and one browser coming back with its cookies.
    let returning = Browser::new();
    for _ in 0..10 {
        let (status, _, body) = page(Browser::new().follow(&app, app.url("/login")).await);
        assert_eq!(status, StatusCode::OK);
        assert!(hidden(&body, "csrf_token").is_some_and(|t| !t.is_empty()));
        assert!(body.contains("id=\"passkey-login\""), "{body}");
        let (status, _, _) = page(returning.follow(&app, app.url("/login")).await);
        assert_eq!(status, StatusCode::OK);
    }
    assert_eq!(rows(&app), before, "sessions, ceremonies, audit, throttles");
    // The page still signs in.
    let (_, _, login) = page(returning.follow(&app, app.url("/login")).await);
    let (_, path, _) = page(
        returning
            .submit_login(&app, &login, "alice", PASSWORD)
            .await,
    );
    assert_eq!(path, "/account");
}

#[tokio::test]
async fn the_anonymous_form_token_only_works_with_the_cookie_it_was_made_for() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let a = Browser::new();
    let b = Browser::new();
    let (_, _, page_a) = page(a.follow(&app, app.url("/login")).await);
    let (_, _, page_b) = page(b.follow(&app, app.url("/login")).await);
    assert_ne!(hidden(&page_a, "csrf_token"), hidden(&page_b, "csrf_token"));
    // B's browser with A's token (a cross-site post cannot read B's token): refused.
    match b.submit_login(&app, &page_a, "alice", PASSWORD).await {
        Landing::Page(status, _, _) => assert_eq!(status, StatusCode::FORBIDDEN),
        other => panic!("{other:?}"),
    }
    // A cookie and a token the attacker made up are refused too.
    let r = reqwest::Client::new()
        .post(app.url("/login"))
        .header("cookie", "portcullis_csrf=attacker-chosen-value")
        .form(&[
            ("username", "alice"),
            ("password", PASSWORD),
            ("csrf_token", "attacker-chosen-value"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    // Each browser with its own token signs in.
    let (_, path, _) = page(a.submit_login(&app, &page_a, "alice", PASSWORD).await);
    assert_eq!(path, "/account");
    let (_, path, _) = page(b.submit_login(&app, &page_b, "alice", PASSWORD).await);
    assert_eq!(path, "/account");
}

/// Asks for the options of a passkey ceremony the way webauthn.js does.
pub async fn passkey_options(
    b: &Browser,
    app: &TestApp,
    from_page: &str,
    path: &str,
) -> (StatusCode, serde_json::Value) {
    let mut form = vec![(
        "csrf_token".to_string(),
        hidden(from_page, "csrf_token").expect("csrf token"),
    )];
    if let Some(r) = hidden(from_page, "request") {
        form.push(("request".into(), r));
    }
    let r = b.http.post(app.url(path)).form(&form).send().await.unwrap();
    let status = r.status();
    (status, r.json().await.unwrap())
}

#[tokio::test]
async fn a_passwordless_ceremony_begins_only_when_the_passkey_button_asks_for_it() {
    let app = localhost_app().await;
    app.add_user("alice", None, None);
    let mut key = SoftPasskey::new(true);
    crate::passkeys::register(
        &crate::passkeys::signed_in(&app, "alice").await,
        &app,
        &mut key,
        "Laptop",
    )
    .await;
    let b = Browser::new();
    let before = rows(&app);
    let (_, _, login) = page(b.follow(&app, app.url("/login")).await);
    assert_eq!(rows(&app), before);
    assert!(!login.contains("data-options"), "no ceremony in the page");
    // A forged token gets no ceremony.
    let forged = login.replace(&hidden(&login, "csrf_token").unwrap(), "forged");
    let (status, _) = passkey_options(&b, &app, &forged, "/login/passkey/options").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(rows(&app)[1], before[1]);
    // The button's request: one ceremony, answered by the passkey, signs in without a password.
    let (status, started) = passkey_options(&b, &app, &login, "/login/passkey/options").await;
    assert_eq!(status, StatusCode::OK, "{started}");
    assert!(started["options"]["publicKey"]["challenge"].is_string());
    assert_eq!(rows(&app)[1], before[1] + 1);
    let (_, path) = crate::passkeys::passwordless(&b, &app, &mut key).await;
    assert_eq!(path, "/account");
}
