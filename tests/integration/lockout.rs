//! Attackers who rotate addresses to keep an account locked: a device that signed in to the
//! account before still gets through, a fresh one waits.

use reqwest::StatusCode;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::support::browser::Browser;
use crate::support::{ClientSpec, Options, PASSWORD, TestApp, behind_proxy, hidden, retry_after};

/// One sign-in attempt from the sign-in page; returns the status and Retry-After.
async fn attempt(
    app: &TestApp,
    b: &Browser,
    user: &str,
    password: &str,
) -> (StatusCode, Option<i64>) {
    let r = b.try_sign_in(app, user, password).await;
    (r.status(), retry_after(&r))
}

async fn locked_app() -> TestApp {
    let app = TestApp::spawn_with(Options {
        host: "localhost",
        configure: Box::new(behind_proxy),
        ..Default::default()
    })
    .await;
    app.add_user("alice", None, None);
    app.add_user("bob", None, None);
    app.add_client(ClientSpec::confidential("app"));
    app
}

/// Failures on `user` from forty addresses: more than the per-account counter allows.
async fn lock_from_many_addresses(app: &TestApp, user: &str) {
    for i in 0..40 {
        attempt(
            app,
            &Browser::from_address(&format!("198.51.100.{i}")),
            user,
            "guess guess",
        )
        .await;
    }
}

#[tokio::test]
async fn a_device_that_signed_in_before_gets_through_a_lock_kept_up_from_many_addresses() {
    let app = locked_app().await;
    let device = Browser::from_address("192.0.2.10");
    let device_cookie = device_cookie_of(&app, &device, "alice").await;
    // The session ends; the device cookie stays.
    app.advance(3600);
    lock_from_many_addresses(&app, "alice").await;
    let (status, retry) = attempt(
        &app,
        &Browser::from_address("192.0.2.11"),
        "alice",
        PASSWORD,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a fresh device waits"
    );
    assert!(retry.is_some());
    assert_eq!(
        attempt(&app, &device, "alice", PASSWORD).await.0,
        StatusCode::SEE_OTHER,
        "the device that signed in before is let through"
    );
    // The same from another address, with nothing but the device cookie.
    lock_from_many_addresses(&app, "alice").await;
    let (status, _) = attempt(
        &app,
        &Browser::from_address("192.0.2.11"),
        "alice",
        PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let (status, _) =
        attempt_with_cookie(&app, "192.0.2.12", &device_cookie, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_device_cookie_does_not_lift_the_limits_of_its_address_or_help_another_account() {
    let app = locked_app().await;
    let device = Browser::from_address("192.0.2.10");
    let device_cookie = device_cookie_of(&app, &device, "alice").await;
    app.advance(3600);
    // Bob's account is locked from many addresses: alice's device cookie does not open it.
    lock_from_many_addresses(&app, "bob").await;
    assert_eq!(
        attempt(&app, &device, "bob", PASSWORD).await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // Guessing alice's password from the device is still slowed.
    for _ in 0..3 {
        assert_eq!(
            attempt(&app, &device, "alice", "guess guess").await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        attempt(&app, &device, "alice", "guess guess").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    // A forged device cookie is worth nothing.
    lock_from_many_addresses(&app, "alice").await;
    let forged = device_cookie.replace("v1.", "v1.x");
    let (status, _) = attempt_with_cookie(&app, "192.0.2.40", &forged, "alice", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn a_passkey_signs_in_while_the_password_is_locked() {
    let app = locked_app().await;
    let mut key = SoftPasskey::new(true);
    crate::passkeys::register(
        &crate::passkeys::signed_in(&app, "alice").await,
        &app,
        &mut key,
        "Laptop",
    )
    .await;
    lock_from_many_addresses(&app, "alice").await;
    let (status, _) = attempt(
        &app,
        &Browser::from_address("192.0.2.20"),
        "alice",
        PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let b = Browser::from_address("192.0.2.20");
    let (_, path) = crate::passkeys::passwordless(&b, &app, &mut key).await;
    assert_eq!(path, "/account");
}

/// Signs `b` in as `user`; returns the device cookie it got (`name=value`).
async fn device_cookie_of(app: &TestApp, b: &Browser, user: &str) -> String {
    let r = b.try_sign_in(app, user, PASSWORD).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("portcullis_device="))
        .and_then(|v| v.split(';').next())
        .expect("a device cookie")
        .to_string()
}

/// A sign-in attempt from a browser holding only `cookie`, from `ip`.
async fn attempt_with_cookie(
    app: &TestApp,
    ip: &str,
    cookie: &str,
    user: &str,
    password: &str,
) -> (StatusCode, Option<i64>) {
    let b = Browser::from_address(ip);
    let login = b.http.get(app.url("/login")).send().await.unwrap();
    let csrf_cookie = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("portcullis_csrf="))
        .and_then(|v| v.split(';').next())
        .unwrap_or_default()
        .to_string();
    let body = login.text().await.unwrap();
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(app.url("/login"))
        .header("x-forwarded-for", ip)
        .header("cookie", format!("{csrf_cookie}; {cookie}"))
        .form(&[
            ("username", user),
            ("password", password),
            ("csrf_token", &hidden(&body, "csrf_token").unwrap()),
        ])
        .send()
        .await
        .unwrap();
    (r.status(), retry_after(&r))
}
