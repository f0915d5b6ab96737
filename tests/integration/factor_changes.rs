//! Adding a second factor: only within minutes of typing the password, announced on the
//! account page and in the audit trail, and undone by a password change that asks for it.

use diesel::prelude::*;
use reqwest::StatusCode;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::support::browser::Browser;
use crate::support::mfa::{
    enrol_totp, page, password_step, post_with_csrf, recovery_codes, text_of, totp_code,
};
use crate::support::{Options, PASSWORD, TestApp};

const NEW_PASSWORD: &str = "purple elephant marches quietly";

async fn signed_in(app: &TestApp, username: &str) -> Browser {
    let b = Browser::new();
    let (_, path, _) = page(password_step(&b, app, username).await);
    assert_eq!(path, "/account");
    b
}

/// Signs in `b` with the password and a code from the authenticator app.
async fn sign_in_with_totp(b: &Browser, app: &TestApp, username: &str, secret: &str) {
    let (_, path, second) = page(password_step(b, app, username).await);
    assert_eq!(path, "/login/second-factor");
    let code = totp_code(secret, app.clock.naive());
    let (_, path, _) =
        page(post_with_csrf(b, app, &second, "/login/second-factor", &[("code", &code)]).await);
    assert_eq!(path, "/account");
}

fn events(app: &TestApp, name: &str) -> Vec<String> {
    app.trail()
        .into_iter()
        .filter(|e| e.event == name)
        .map(|e| e.details)
        .collect()
}

#[tokio::test]
async fn adding_a_factor_needs_the_password_typed_within_the_last_five_minutes() {
    let app = TestApp::spawn_with(Options {
        host: "localhost",
        ..Default::default()
    })
    .await;
    app.add_user("alice", None, None);
    let b = signed_in(&app, "alice").await;
    // Five minutes after the password, the session alone adds nothing.
    app.advance(301);
    let (status, _, totp) = page(b.follow(&app, app.url("/account/totp")).await);
    assert_eq!(status, StatusCode::OK);
    assert!(text_of(&totp, "totp-secret").is_none(), "{totp}");
    assert!(totp.contains("name=\"current_password\""), "{totp}");
    let (status, _, refused) =
        page(post_with_csrf(&b, &app, &totp, "/account/totp", &[("code", "123456")]).await);
    assert_eq!(status, StatusCode::FORBIDDEN, "{refused}");
    let (_, _, passkeys) = page(b.follow(&app, app.url("/account/passkeys")).await);
    assert!(!passkeys.contains("id=\"passkey-register\""), "{passkeys}");
    let (status, _) =
        crate::sign_in_page::passkey_options(&b, &app, &passkeys, "/account/passkeys/options")
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = page(
        post_with_csrf(
            &b,
            &app,
            &totp,
            "/account/recovery-codes",
            &[("current_password", "")],
        )
        .await,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // A wrong password is refused; the right one opens the window again.
    let (status, _, wrong) = page(
        post_with_csrf(
            &b,
            &app,
            &totp,
            "/account/reauthenticate",
            &[("current_password", "not my password"), ("next", "totp")],
        )
        .await,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(wrong.contains("not correct"), "{wrong}");
    assert!(text_of(&wrong, "totp-secret").is_none());
    let (status, path, totp) = page(
        post_with_csrf(
            &b,
            &app,
            &totp,
            "/account/reauthenticate",
            &[("current_password", PASSWORD), ("next", "totp")],
        )
        .await,
    );
    assert_eq!((status, path.as_str()), (StatusCode::OK, "/account/totp"));
    let secret = text_of(&totp, "totp-secret").expect("the key once the password is typed");
    let code = totp_code(&secret, app.clock.naive());
    let (_, path, _) =
        page(post_with_csrf(&b, &app, &totp, "/account/totp", &[("code", &code)]).await);
    assert_eq!(path, "/account");
    let (_, _, passkeys) = page(b.follow(&app, app.url("/account/passkeys")).await);
    assert!(passkeys.contains("id=\"passkey-register\""));
    assert_eq!(
        events(&app, "reauthenticate").len(),
        2,
        "the empty and the wrong password"
    );
}

#[tokio::test]
async fn a_passkey_alone_cannot_add_another_factor() {
    let app = TestApp::spawn_with(Options {
        host: "localhost",
        ..Default::default()
    })
    .await;
    app.add_user("alice", None, None);
    let mut key = SoftPasskey::new(true);
    let owner = signed_in(&app, "alice").await;
    crate::passkeys::register(&owner, &app, &mut key, "Laptop").await;
    // Someone holding only the passkey signs in without the password: two factors by acr,
    // yet no new factor without the password.
    let b = Browser::new();
    let (_, path) = crate::passkeys::passwordless(&b, &app, &mut key).await;
    assert_eq!(path, "/account");
    let (_, _, totp) = page(b.follow(&app, app.url("/account/totp")).await);
    assert!(text_of(&totp, "totp-secret").is_none(), "{totp}");
    let (_, _, passkeys) = page(b.follow(&app, app.url("/account/passkeys")).await);
    let (status, _) =
        crate::sign_in_page::passkey_options(&b, &app, &passkeys, "/account/passkeys/options")
            .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_factor_added_recently_is_announced_on_the_account_page_and_in_the_audit_trail() {
    let app = TestApp::spawn_with(Options {
        host: "localhost",
        ..Default::default()
    })
    .await;
    app.add_user("alice", None, None);
    let b = signed_in(&app, "alice").await;
    let (_, _, quiet) = page(b.follow(&app, app.url("/account")).await);
    assert!(!quiet.contains("id=\"recent-factors\""), "{quiet}");
    let mut key = SoftPasskey::new(true);
    crate::passkeys::register(&b, &app, &mut key, "Work laptop").await;
    let secret = enrol_totp(&b, &app).await;
    let (_, _, account) = page(b.follow(&app, app.url("/account")).await);
    let notice = text_of(&account, "recent-factors").expect("#recent-factors");
    assert!(notice.contains("if this was not you"), "{notice}");
    assert!(
        account.contains("A passkey “Work laptop” was added on"),
        "{account}"
    );
    assert!(
        account.contains("An authenticator app was added on"),
        "{account}"
    );
    assert!(account.contains("name=\"remove_recent_factors\""));
    let added = events(&app, "account.factor_added");
    assert_eq!(added.len(), 2, "{added:?}");
    assert!(added[0].contains("passkey") && added[1].contains("totp"));
    // A week later the notice is gone.
    app.advance(7 * 24 * 3600 + 1);
    let b = Browser::new();
    sign_in_with_totp(&b, &app, "alice", &secret).await;
    let (_, _, account) = page(b.follow(&app, app.url("/account")).await);
    assert!(!account.contains("id=\"recent-factors\""));
}

fn factor_counts(app: &TestApp) -> (i64, i64, i64) {
    use portcullis::db::schema::{passkeys, recovery_codes, totp_credentials};
    let mut c = app.conn();
    let conn: &mut portcullis::db::DbConn = &mut c;
    (
        totp_credentials::table.count().get_result(conn).unwrap(),
        passkeys::table.count().get_result(conn).unwrap(),
        recovery_codes::table.count().get_result(conn).unwrap(),
    )
}

#[tokio::test]
async fn a_password_change_can_remove_the_factors_added_recently_and_only_those() {
    let app = TestApp::spawn_with(Options {
        host: "localhost",
        ..Default::default()
    })
    .await;
    app.add_user("alice", None, None);
    let b = signed_in(&app, "alice").await;
    let secret = enrol_totp(&b, &app).await;
    // Eight days later someone with the password (and the app) adds a passkey and codes.
    app.advance(8 * 24 * 3600);
    sign_in_with_totp(&b, &app, "alice", &secret).await;
    let mut key = SoftPasskey::new(true);
    crate::passkeys::register(&b, &app, &mut key, "Unknown").await;
    recovery_codes(&b, &app).await;
    assert_eq!(factor_counts(&app), (1, 1, 10));

    // Without the box ticked a password change keeps every factor.
    let (_, _, account) = page(b.follow(&app, app.url("/account")).await);
    let (_, path, _) = page(
        post_with_csrf(
            &b,
            &app,
            &account,
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", NEW_PASSWORD),
            ],
        )
        .await,
    );
    assert_eq!(path, "/account");
    assert_eq!(factor_counts(&app), (1, 1, 10));
    // With it, the passkey and codes of the last week go; the older app stays.
    let (_, _, account) = page(b.follow(&app, app.url("/account")).await);
    let (_, path, done) = page(
        post_with_csrf(
            &b,
            &app,
            &account,
            "/account/password",
            &[
                ("current_password", NEW_PASSWORD),
                ("new_password", "seven quiet rivers under glass"),
                ("remove_recent_factors", "on"),
            ],
        )
        .await,
    );
    assert_eq!(path, "/account");
    assert_eq!(factor_counts(&app), (1, 0, 0));
    assert!(done.contains("recently added"), "{done}");
    let removed = events(&app, "account.recent_factors_removed");
    assert_eq!(removed.len(), 1);
    assert!(removed[0].contains("\"passkeys\":1"), "{removed:?}");
}
