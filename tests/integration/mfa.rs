//! Second factors over HTTP: TOTP enrolment and sign-in with computed codes on a fixed clock,
//! replay refusal, recovery codes, throttling, step-up through `acr_values`, clients that
//! require MFA, and `amr`/`acr` in ID tokens.

use reqwest::StatusCode;

use crate::flow::{authorize_url, jwt_payload};
use crate::support::browser::{Browser, Landing};
use crate::support::mfa::{
    enrol_totp, exchange, page, password_step, post_with_csrf, recovery_codes, totp_code,
};
use crate::support::{ClientSpec, PASSWORD, TestApp, param};

async fn signed_in_browser(app: &TestApp, username: &str) -> Browser {
    let b = Browser::new();
    let (_, path, _) = page(password_step(&b, app, username).await);
    assert_eq!(path, "/account");
    b
}

/// Password, then lands on the second-factor page; returns its body.
async fn to_second_factor(b: &Browser, app: &TestApp, username: &str) -> String {
    let (status, path, body) = page(password_step(b, app, username).await);
    assert_eq!(
        (status, path.as_str()),
        (StatusCode::OK, "/login/second-factor")
    );
    body
}

async fn submit_code(b: &Browser, app: &TestApp, page_body: &str, code: &str) -> Landing {
    post_with_csrf(b, app, page_body, "/login/second-factor", &[("code", code)]).await
}

#[tokio::test]
async fn totp_enrolment_shows_secret_uri_and_qr_and_is_confirmed_by_a_current_code() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let b = signed_in_browser(&app, "alice").await;
    let (status, _, body) = page(b.follow(&app, app.url("/account/totp")).await);
    assert_eq!(status, StatusCode::OK);
    let secret = crate::support::mfa::text_of(&body, "totp-secret").unwrap();
    assert_eq!(secret.len(), 32, "160-bit base32 secret");
    assert!(body.contains("otpauth://totp/"), "{body}");
    assert!(body.contains("<svg"), "QR code rendered server-side");
    assert!(body.contains("name=\"code\""));
    // Reloading keeps the same pending secret (the app may already have scanned it).
    let (_, _, again) = page(b.follow(&app, app.url("/account/totp")).await);
    assert_eq!(
        crate::support::mfa::text_of(&again, "totp-secret").unwrap(),
        secret
    );
    // A wrong code does not enrol.
    let (status, _, wrong) =
        page(post_with_csrf(&b, &app, &body, "/account/totp", &[("code", "000000")]).await);
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(wrong.contains("role=\"alert\""));
    let (_, _, account) = page(b.follow(&app, app.url("/account")).await);
    assert!(account.contains("Authenticator app: off"));
    // The secret is sealed at rest.
    let stored: Vec<String> = {
        use diesel::prelude::*;
        use portcullis::db::schema::totp_credentials::dsl::*;
        let mut c = app.conn();
        let conn: &mut portcullis::db::DbConn = &mut c;
        totp_credentials.select(secret).load(conn).unwrap()
    };
    assert_eq!(stored.len(), 1);
    assert!(stored[0].starts_with("v1:"), "sealed form");
    assert!(!stored[0].contains(&secret));
    let code = totp_code(&secret, app.clock.naive());
    let (status, path, done) =
        page(post_with_csrf(&b, &app, &body, "/account/totp", &[("code", &code)]).await);
    assert_eq!((status, path.as_str()), (StatusCode::OK, "/account"));
    assert!(done.contains("Authenticator app: on"));
}

#[tokio::test]
async fn sign_in_needs_a_current_code_which_is_accepted_once() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let secret = enrol_totp(&signed_in_browser(&app, "alice").await, &app).await;

    // The password alone does not sign in: the browser is held at the second step.
    let b = Browser::new();
    let body = to_second_factor(&b, &app, "alice").await;
    assert!(body.contains("autocomplete=\"one-time-code\""));
    assert!(body.contains("name=\"code\""));
    assert!(
        !body.contains("passkey-signin"),
        "no passkey, no passkey button"
    );
    assert!(
        !body.contains("webauthn.js"),
        "no script where no ceremony can run (an IP-address issuer)"
    );
    let (_, path, _) = page(b.follow(&app, app.url("/account")).await);
    assert_eq!(path, "/login", "not signed in before the second factor");

    // The code used to confirm the enrolment was for this time step: replay is refused.
    let body = to_second_factor(&b, &app, "alice").await;
    let same_step = totp_code(&secret, app.clock.naive());
    let (status, path, refused) = page(submit_code(&b, &app, &body, &same_step).await);
    assert_eq!(
        (status, path.as_str()),
        (StatusCode::OK, "/login/second-factor")
    );
    assert!(refused.contains("role=\"alert\""));

    // Thirty seconds later the next code signs in.
    app.advance(30);
    let code = totp_code(&secret, app.clock.naive());
    let (_, path, account) = page(submit_code(&b, &app, &refused, &code).await);
    assert_eq!(path, "/account", "{account}");

    // The same code again, in the same window, from another browser: refused.
    let other = Browser::new();
    let body = to_second_factor(&other, &app, "alice").await;
    let (_, path, _) = page(submit_code(&other, &app, &body, &code).await);
    assert_eq!(path, "/login/second-factor");

    // One step of tolerance: a minute later, the code of 30 seconds ago still works, once.
    app.advance(60);
    let late = totp_code(&secret, app.clock.naive() - chrono::Duration::seconds(30));
    let (_, path, _) = page(submit_code(&other, &app, &body, &late).await);
    assert_eq!(path, "/account");
    // Two steps back is too old.
    let third = Browser::new();
    let body = to_second_factor(&third, &app, "alice").await;
    app.advance(30);
    let stale = totp_code(&secret, app.clock.naive() - chrono::Duration::seconds(60));
    let (_, path, _) = page(submit_code(&third, &app, &body, &stale).await);
    assert_eq!(path, "/login/second-factor");
}

#[tokio::test]
async fn recovery_codes_work_once_and_a_new_set_replaces_the_old() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let b = signed_in_browser(&app, "alice").await;
    let codes = recovery_codes(&b, &app).await;
    assert_eq!(codes.len(), 10);
    let (_, _, account) = page(b.follow(&app, app.url("/account")).await);
    assert!(
        account.contains("id=\"recovery-remaining\">10<"),
        "{account}"
    );

    // A user with recovery codes gets the second step; a code works once, in any case.
    let b2 = Browser::new();
    let body = to_second_factor(&b2, &app, "alice").await;
    let (_, path, _) = page(submit_code(&b2, &app, &body, &codes[0].to_uppercase()).await);
    assert_eq!(path, "/account");
    let (_, _, account) = page(b2.follow(&app, app.url("/account")).await);
    assert!(account.contains("id=\"recovery-remaining\">9<"));
    let b3 = Browser::new();
    let body = to_second_factor(&b3, &app, "alice").await;
    let (_, path, _) = page(submit_code(&b3, &app, &body, &codes[0]).await);
    assert_eq!(path, "/login/second-factor", "a used code is refused");

    // Regenerating (password required) invalidates every old code.
    let (_, _, account) = page(b2.follow(&app, app.url("/account")).await);
    let (status, _, _) = page(
        post_with_csrf(
            &b2,
            &app,
            &account,
            "/account/recovery-codes",
            &[("current_password", "not the password")],
        )
        .await,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let fresh = recovery_codes(&b2, &app).await;
    assert_eq!(fresh.len(), 10);
    assert!(fresh.iter().all(|c| !codes.contains(c)));
    let body = to_second_factor(&b3, &app, "alice").await;
    let (_, path, _) = page(submit_code(&b3, &app, &body, &codes[1]).await);
    assert_eq!(path, "/login/second-factor");
    let (_, path, _) = page(submit_code(&b3, &app, &body, &fresh[3]).await);
    assert_eq!(path, "/account");

    // Removing them (password required) ends the second step for a user with nothing else.
    let (_, _, account) = page(b3.follow(&app, app.url("/account")).await);
    let (_, path, done) = page(
        post_with_csrf(
            &b3,
            &app,
            &account,
            "/account/recovery-codes/remove",
            &[("current_password", PASSWORD)],
        )
        .await,
    );
    assert_eq!(path, "/account");
    assert!(done.contains("id=\"recovery-remaining\">0<"));
    let (_, path, _) = page(password_step(&Browser::new(), &app, "alice").await);
    assert_eq!(path, "/account");
}

#[tokio::test]
async fn wrong_second_factor_codes_are_throttled_with_retry_after_and_audited() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    enrol_totp(&signed_in_browser(&app, "alice").await, &app).await;
    let b = Browser::new();
    let body = to_second_factor(&b, &app, "alice").await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let r = b
            .http
            .post(app.url("/login/second-factor"))
            .form(&[
                ("code", "123456"),
                (
                    "csrf_token",
                    &crate::support::hidden(&body, "csrf_token").unwrap(),
                ),
            ])
            .send()
            .await
            .unwrap();
        statuses.push(r.status());
        if let Some(v) = r.headers().get("retry-after") {
            retry_after = Some(v.to_str().unwrap().to_string());
        }
    }
    assert_eq!(&statuses[..3], &[StatusCode::OK; 3], "three free tries");
    assert_eq!(statuses[3], StatusCode::TOO_MANY_REQUESTS);
    assert!(retry_after.is_some_and(|s| s.parse::<i64>().unwrap() >= 1));
    // Even the right code waits while blocked.
    let failures = {
        use diesel::prelude::*;
        use portcullis::db::schema::audit_log::dsl::*;
        let mut c = app.conn();
        let conn: &mut portcullis::db::DbConn = &mut c;
        audit_log
            .filter(event.eq("sign_in"))
            .filter(outcome.eq("failure"))
            .select(details)
            .load::<String>(conn)
            .unwrap()
    };
    assert!(
        failures
            .iter()
            .filter(|d| d.contains("bad_second_factor"))
            .count()
            >= 4
    );
}

fn mfa_app_client(app: &TestApp, require_mfa: bool) -> String {
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    spec.require_mfa = require_mfa;
    app.add_client(spec).unwrap()
}

#[tokio::test]
async fn id_tokens_carry_amr_and_acr_of_the_factors_used() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    app.add_user("bob", None, None);
    let secret = mfa_app_client(&app, false);
    let totp = enrol_totp(&signed_in_browser(&app, "alice").await, &app).await;
    app.advance(30);

    let b = Browser::new();
    let (_, path, body) = page(
        b.follow(&app, authorize_url(&app, "openid", "&nonce=n1"))
            .await,
    );
    assert_eq!(path, "/login");
    let (_, path, second) = page(b.submit_login(&app, &body, "alice", PASSWORD).await);
    assert_eq!(path, "/login/second-factor");
    assert!(
        second.contains("name=\"request\""),
        "the request travels along"
    );
    let code = totp_code(&totp, app.clock.naive());
    let q = match submit_code(&b, &app, &second, &code).await {
        Landing::Client(_, q) => q,
        other => panic!("{other:?}"),
    };
    let tokens = exchange(&app, &secret, &param(&q, "code").unwrap()).await;
    let claims = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "2");
    let amr: Vec<&str> = claims["amr"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        amr.contains(&"pwd") && amr.contains(&"otp") && amr.contains(&"mfa"),
        "{amr:?}"
    );

    // Password only.
    let q = Browser::new()
        .authorize(&app, &authorize_url(&app, "openid", "&nonce=n2"), "bob")
        .await;
    let tokens = exchange(&app, &secret, &param(&q, "code").unwrap()).await;
    let claims = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "1");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));

    let meta: serde_json::Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["acr_values_supported"], serde_json::json!(["1", "2"]));
}

#[tokio::test]
async fn acr_values_2_steps_up_a_password_session_or_is_answered_with_an_error() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    app.add_user("bob", None, None);
    let secret = mfa_app_client(&app, false);
    // Alice signs in with her password, then enrols: her session has one factor.
    let b = signed_in_browser(&app, "alice").await;
    let totp = enrol_totp(&b, &app).await;
    app.advance(30);

    // A request that accepts "1" goes straight through.
    let q = match b
        .follow(&app, authorize_url(&app, "openid", "&acr_values=2%201"))
        .await
    {
        Landing::Client(_, q) => q,
        other => panic!("{other:?}"),
    };
    let tokens = exchange(&app, &secret, &param(&q, "code").unwrap()).await;
    assert_eq!(
        jwt_payload(tokens["id_token"].as_str().unwrap())["acr"],
        "1"
    );

    // prompt=none cannot step up.
    let q = match b
        .follow(
            &app,
            authorize_url(&app, "openid", "&acr_values=2&prompt=none"),
        )
        .await
    {
        Landing::Client(_, q) => q,
        other => panic!("{other:?}"),
    };
    assert_eq!(param(&q, "error").as_deref(), Some("interaction_required"));

    // acr_values=2 asks for the second factor only (no password again).
    let (_, path, second) = page(
        b.follow(&app, authorize_url(&app, "openid", "&acr_values=2"))
            .await,
    );
    assert_eq!(path, "/login/second-factor");
    let code = totp_code(&totp, app.clock.naive());
    let q = match submit_code(&b, &app, &second, &code).await {
        Landing::Client(_, q) => q,
        other => panic!("{other:?}"),
    };
    let tokens = exchange(&app, &secret, &param(&q, "code").unwrap()).await;
    assert_eq!(
        jwt_payload(tokens["id_token"].as_str().unwrap())["acr"],
        "2"
    );

    // Bob has no second factor: the client is told its requirement cannot be met.
    let bob = signed_in_browser(&app, "bob").await;
    let q = match bob
        .follow(&app, authorize_url(&app, "openid", "&acr_values=2"))
        .await
    {
        Landing::Client(_, q) => q,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        param(&q, "error").as_deref(),
        Some("unmet_authentication_requirements")
    );
    assert_eq!(param(&q, "state").as_deref(), Some("st"));
    // An essential acr claim with values we do not offer fails the same way.
    let claims =
        crate::flow::urlencode(r#"{"id_token":{"acr":{"essential":true,"values":["urn:gold"]}}}"#);
    let q = match bob
        .follow(
            &app,
            authorize_url(&app, "openid", &format!("&claims={claims}")),
        )
        .await
    {
        Landing::Client(_, q) => q,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        param(&q, "error").as_deref(),
        Some("unmet_authentication_requirements")
    );
}

#[tokio::test]
async fn a_client_that_requires_mfa_sends_a_user_without_one_to_enrol_then_continues() {
    let app = TestApp::spawn().await;
    app.add_user("bob", None, None);
    let secret = mfa_app_client(&app, true);
    let b = Browser::new();
    let (_, _, login) = page(b.follow(&app, authorize_url(&app, "openid", "")).await);
    let (status, path, enrol) = page(b.submit_login(&app, &login, "bob", PASSWORD).await);
    assert_eq!((status, path.as_str()), (StatusCode::OK, "/account/totp"));
    assert!(enrol.contains("requires a second factor"));
    assert!(enrol.contains("name=\"request\""));
    let totp = crate::support::mfa::text_of(&enrol, "totp-secret").unwrap();
    let code = totp_code(&totp, app.clock.naive());
    let q = match post_with_csrf(&b, &app, &enrol, "/account/totp", &[("code", &code)]).await {
        Landing::Client(_, q) => q,
        other => panic!("{other:?}"),
    };
    let tokens = exchange(&app, &secret, &param(&q, "code").unwrap()).await;
    let claims = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "2");

    // Next time the client asks, bob's password alone is not enough.
    app.advance(30);
    let b = Browser::new();
    let (_, _, login) = page(b.follow(&app, authorize_url(&app, "openid", "")).await);
    let (_, path, _) = page(b.submit_login(&app, &login, "bob", PASSWORD).await);
    assert_eq!(path, "/login/second-factor");
}

#[tokio::test]
async fn prompt_login_and_max_age_run_the_second_factor_again() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let secret = mfa_app_client(&app, false);
    let b = signed_in_browser(&app, "alice").await;
    let totp = enrol_totp(&b, &app).await;
    for extra in ["&prompt=login", "&max_age=1"] {
        app.advance(30);
        let (_, path, login) = page(b.follow(&app, authorize_url(&app, "openid", extra)).await);
        assert_eq!(path, "/login", "{extra}");
        let (_, path, second) = page(b.submit_login(&app, &login, "alice", PASSWORD).await);
        assert_eq!(path, "/login/second-factor", "{extra}");
        let code = totp_code(&totp, app.clock.naive());
        let q = match submit_code(&b, &app, &second, &code).await {
            Landing::Client(_, q) => q,
            other => panic!("{extra}: {other:?}"),
        };
        let tokens = exchange(&app, &secret, &param(&q, "code").unwrap()).await;
        let claims = jwt_payload(tokens["id_token"].as_str().unwrap());
        assert_eq!(claims["acr"], "2");
        assert_eq!(
            claims["auth_time"].as_i64().unwrap(),
            app.clock.naive().and_utc().timestamp()
        );
    }
}

#[tokio::test]
async fn removing_totp_needs_the_password_and_keeps_the_last_factor_of_an_mfa_client_user() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let secret = mfa_app_client(&app, true);
    let b = signed_in_browser(&app, "alice").await;
    let totp = enrol_totp(&b, &app).await;
    // Alice uses the client that requires MFA.
    app.advance(30);
    let (_, path, second) = page(b.follow(&app, authorize_url(&app, "openid", "")).await);
    assert_eq!(path, "/login/second-factor");
    let code = totp_code(&totp, app.clock.naive());
    let q = match submit_code(&b, &app, &second, &code).await {
        Landing::Client(_, q) => q,
        other => panic!("{other:?}"),
    };
    // The client skips consent: its live tokens make it one of alice's applications.
    exchange(&app, &secret, &param(&q, "code").unwrap()).await;

    let (_, _, page_body) = page(b.follow(&app, app.url("/account/totp")).await);
    let (status, _, wrong) = page(
        post_with_csrf(
            &b,
            &app,
            &page_body,
            "/account/totp/remove",
            &[("current_password", "wrong password!")],
        )
        .await,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(wrong.contains("not correct"));
    let (status, _, refused) = page(
        post_with_csrf(
            &b,
            &app,
            &page_body,
            "/account/totp/remove",
            &[("current_password", PASSWORD)],
        )
        .await,
    );
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(refused.contains("last second factor"), "{refused}");

    // Once disconnected from that application, the factor can go.
    let (_, _, account) = page(b.follow(&app, app.url("/account")).await);
    post_with_csrf(
        &b,
        &app,
        &account,
        "/account/apps/revoke",
        &[("client_id", "app")],
    )
    .await;
    let (_, path, done) = page(
        post_with_csrf(
            &b,
            &app,
            &page_body,
            "/account/totp/remove",
            &[("current_password", PASSWORD)],
        )
        .await,
    );
    assert_eq!(path, "/account");
    assert!(done.contains("Authenticator app: off"));
    let (_, path, _) = page(password_step(&Browser::new(), &app, "alice").await);
    assert_eq!(path, "/account", "no second step any more");
}

#[tokio::test]
async fn a_pending_second_step_expires_and_its_form_refuses_a_forged_csrf_token() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let totp = enrol_totp(&signed_in_browser(&app, "alice").await, &app).await;
    let b = Browser::new();
    let body = to_second_factor(&b, &app, "alice").await;
    app.advance(301);
    let code = totp_code(&totp, app.clock.naive());
    let (_, path, _) = page(submit_code(&b, &app, &body, &code).await);
    assert_eq!(
        path, "/login",
        "after five minutes the password must be given again"
    );
    // A forged or missing CSRF token is refused.
    let body = to_second_factor(&b, &app, "alice").await;
    let r = b
        .http
        .post(app.url("/login/second-factor"))
        .form(&[("code", code.as_str()), ("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, path, _) = page(submit_code(&b, &app, &body, &code).await);
    assert_eq!(path, "/account", "the real form still works");
}

#[tokio::test]
async fn a_pending_second_step_is_not_completed_by_another_users_code() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    app.add_user("bob", None, None);
    let alice = enrol_totp(&signed_in_browser(&app, "alice").await, &app).await;
    let bob = enrol_totp(&signed_in_browser(&app, "bob").await, &app).await;
    // The enrolment codes' time step is spent; a fresh step for both.
    app.advance(30);
    let now = app.clock.naive();
    let (alices, bobs) = (totp_code(&alice, now), totp_code(&bob, now));
    assert_ne!(alices, bobs, "two users, two secrets");

    let b = Browser::new();
    let body = to_second_factor(&b, &app, "alice").await;
    let (_, path, refused) = page(submit_code(&b, &app, &body, &bobs).await);
    assert_eq!(
        path, "/login/second-factor",
        "bob's code does not finish alice's sign-in"
    );
    assert!(refused.contains("role=\"alert\""));
    let (_, path, _) = page(b.follow(&app, app.url("/account")).await);
    assert_eq!(path, "/login", "nobody is signed in on this browser");

    // Bob's code was not spent by the attempt: it still signs bob in elsewhere.
    let other = Browser::new();
    let bobs_page = to_second_factor(&other, &app, "bob").await;
    let (_, path, account) = page(submit_code(&other, &app, &bobs_page, &bobs).await);
    assert_eq!(path, "/account");
    assert!(account.contains("<strong>bob</strong>"));

    // Alice's own code finishes her sign-in, as alice.
    let body = to_second_factor(&b, &app, "alice").await;
    let (_, path, account) = page(submit_code(&b, &app, &body, &alices).await);
    assert_eq!(path, "/account");
    assert!(account.contains("<strong>alice</strong>"));
}
