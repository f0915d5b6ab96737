//! An expired password (`password_max_age_days`) blocks every way to a code until it is
//! changed: the redirect after sign-in, resuming the parked request, `prompt=none`, and a
//! fresh request from a second tab.

use crate::flow::authorize_url;
use crate::support::browser::{Browser, Landing};
use crate::support::{ClientSpec, Options, PASSWORD, TestApp, hidden, param};

/// A server with `password_max_age_days = 90`, alice whose password was set 91 days ago, and
/// the client `app` (no consent page).
pub async fn app_with_an_expired_password() -> TestApp {
    let app = TestApp::spawn_with(Options {
        configure: Box::new(|c| c.password.max_age_days = Some(90)),
        ..Default::default()
    })
    .await;
    let id = app.add_user("alice", None, None);
    let old = app.clock.naive() - chrono::Duration::days(91);
    portcullis::sign_in::password::remember(
        &mut app.conn(),
        &id,
        &portcullis::sign_in::password::hash(PASSWORD).unwrap(),
        5,
        old,
    )
    .unwrap();
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    app.add_client(spec).unwrap();
    app
}

fn no_code(landing: &Landing, what: &str) {
    if let Landing::Client(_, q) = landing {
        assert_eq!(param(q, "code"), None, "{what}: a code was issued");
    }
}

#[tokio::test]
async fn an_expired_password_yields_no_code_by_resume_prompt_none_or_a_second_request() {
    let app = app_with_an_expired_password().await;
    let b = Browser::new();
    let url = authorize_url(&app, "openid", "");
    let Landing::Page(_, path, login) = b.follow(&app, url.clone()).await else {
        panic!("expected the sign-in page")
    };
    assert_eq!(path, "/login");
    let request = hidden(&login, "request").expect("the parked request");
    let after = b.submit_login(&app, &login, "alice", PASSWORD).await;
    let Landing::Page(_, path, page) = &after else {
        panic!("expected the account page, got {after:?}")
    };
    assert_eq!(path, "/account");
    assert!(page.contains("Your password has expired"));

    // Resuming the parked request by hand.
    let resumed = b
        .follow(
            &app,
            app.url(&format!("/authorize/resume?request={request}")),
        )
        .await;
    no_code(&resumed, "resume");
    assert!(
        matches!(&resumed, Landing::Page(_, p, body) if p == "/account" && body.contains("Your password has expired")),
        "resume: {resumed:?}"
    );

    // A fresh request from a second tab, signed in already.
    let again = b.follow(&app, url.clone()).await;
    no_code(&again, "second request");
    assert!(
        matches!(&again, Landing::Page(_, p, _) if p == "/account"),
        "second request: {again:?}"
    );

    // A silent request is answered with an error the client understands.
    let silent = b.follow(&app, format!("{url}&prompt=none")).await;
    let Landing::Client(_, q) = &silent else {
        panic!("prompt=none must answer the client: {silent:?}")
    };
    assert_eq!(param(q, "code"), None);
    assert_eq!(param(q, "error").as_deref(), Some("interaction_required"));
}

#[tokio::test]
async fn a_changed_password_lets_the_flow_go_on() {
    let app = app_with_an_expired_password().await;
    let b = Browser::new();
    let url = authorize_url(&app, "openid", "");
    let Landing::Page(_, _, login) = b.follow(&app, url.clone()).await else {
        panic!("expected the sign-in page")
    };
    b.submit_login(&app, &login, "alice", PASSWORD).await;
    // The password is changed (here directly, as the account page would).
    let id = portcullis::store::users::find_by_username(&mut app.conn(), "alice")
        .unwrap()
        .unwrap()
        .id;
    portcullis::sign_in::password::remember(
        &mut app.conn(),
        &id,
        &portcullis::sign_in::password::hash("a brand new passphrase 7").unwrap(),
        5,
        app.clock.naive(),
    )
    .unwrap();
    let Landing::Client(_, q) = b.follow(&app, url).await else {
        panic!("a changed password must let the request through")
    };
    assert!(param(&q, "code").is_some());
}
