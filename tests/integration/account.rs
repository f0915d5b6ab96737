//! The account page: sessions, connected applications, password change.

use reqwest::StatusCode;

use crate::flow::authorize_url;
use crate::support::browser::{Browser, Landing};
use crate::support::{ClientSpec, PASSWORD, TestApp, hidden};

async fn signed_in(app: &TestApp, user: &str) -> Browser {
    let b = Browser::new();
    let Landing::Page(_, _, page) = b.follow(app, app.url("/login")).await else {
        panic!()
    };
    match b.submit_login(app, &page, user, PASSWORD).await {
        Landing::Page(_, path, _) => assert_eq!(path, "/account"),
        other => panic!("{other:?}"),
    }
    b
}

async fn account(app: &TestApp, b: &Browser) -> Option<String> {
    let r = b.http.get(app.url("/account")).send().await.unwrap();
    if r.status() == StatusCode::SEE_OTHER {
        assert_eq!(r.headers()["location"], "/login");
        return None;
    }
    assert_eq!(r.status(), StatusCode::OK);
    Some(r.text().await.unwrap())
}

async fn post(
    app: &TestApp,
    b: &Browser,
    path: &str,
    page: &str,
    extra: &[(&str, &str)],
) -> reqwest::Response {
    let mut form = vec![(
        "csrf_token".to_string(),
        hidden(page, "csrf_token").unwrap(),
    )];
    form.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    b.http.post(app.url(path)).form(&form).send().await.unwrap()
}

fn sids(page: &str) -> Vec<String> {
    page.match_indices("data-sid=\"")
        .map(|(i, m)| {
            let rest = &page[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_string()
        })
        .collect()
}

#[tokio::test]
async fn the_account_page_requires_a_signed_in_session() {
    let app = TestApp::spawn().await;
    assert!(account(&app, &Browser::new()).await.is_none());
}

#[tokio::test]
async fn sessions_are_listed_and_each_can_be_signed_out() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let laptop = signed_in(&app, "alice").await;
    let phone = signed_in(&app, "alice").await;
    let page = account(&app, &laptop).await.unwrap();
    let listed = sids(&page);
    assert_eq!(listed.len(), 2, "{page}");
    assert!(page.contains("(this device)"));
    assert!(page.contains("127.0.0.x"), "addresses are masked: {page}");
    // The phone's session is the one not marked as this device.
    let phone_page = account(&app, &phone).await.unwrap();
    let this = |p: &str| {
        let i = p.find("(this device)").unwrap();
        let start = p[..i].rfind("data-sid=\"").unwrap() + 10;
        p[start..start + p[start..].find('"').unwrap()].to_string()
    };
    let phone_sid = this(&phone_page);
    let r = post(
        &app,
        &laptop,
        "/account/sessions/revoke",
        &page,
        &[("sid", &phone_sid)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        account(&app, &phone).await.is_none(),
        "the phone was signed out"
    );
    assert!(account(&app, &laptop).await.is_some());
    // Another user's session id cannot be revoked from here.
    app.add_user("bob", None, None);
    let bob = signed_in(&app, "bob").await;
    let bob_sid = this(&account(&app, &bob).await.unwrap());
    let page = account(&app, &laptop).await.unwrap();
    post(
        &app,
        &laptop,
        "/account/sessions/revoke",
        &page,
        &[("sid", &bob_sid)],
    )
    .await;
    assert!(account(&app, &bob).await.is_some());
}

#[tokio::test]
async fn sign_out_everywhere_else_keeps_only_this_session() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let a = signed_in(&app, "alice").await;
    let b = signed_in(&app, "alice").await;
    let c = signed_in(&app, "alice").await;
    let page = account(&app, &a).await.unwrap();
    post(&app, &a, "/account/sessions/revoke-others", &page, &[]).await;
    assert!(account(&app, &b).await.is_none());
    assert!(account(&app, &c).await.is_none());
    let page = account(&app, &a).await.unwrap();
    assert_eq!(sids(&page).len(), 1);
}

#[tokio::test]
async fn connected_applications_can_be_disconnected() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    app.add_client(ClientSpec::confidential("app"));
    let b = Browser::new();
    b.authorize(&app, &authorize_url(&app, "openid profile", ""), "alice")
        .await;
    let page = account(&app, &b).await.unwrap();
    assert!(
        page.contains("Example App") && page.contains("Your name and username"),
        "{page}"
    );
    let r = post(
        &app,
        &b,
        "/account/apps/revoke",
        &page,
        &[("client_id", "app")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let page = account(&app, &b).await.unwrap();
    assert!(page.contains("No application has access"), "{page}");
    // The consent is gone: the next request shows the consent page again.
    match b
        .follow(&app, authorize_url(&app, "openid profile", ""))
        .await
    {
        Landing::Page(_, path, _) => assert_eq!(path, "/consent"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions_and_keeps_this_one() {
    let app = TestApp::spawn().await;
    app.add_user("alice", Some("alice@example.com"), None);
    let here = signed_in(&app, "alice").await;
    let elsewhere = signed_in(&app, "alice").await;
    let page = account(&app, &here).await.unwrap();
    let r = post(
        &app,
        &here,
        "/account/password",
        &page,
        &[
            ("current_password", "wrong one"),
            ("new_password", "quiet lantern over the bay"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(
        r.text()
            .await
            .unwrap()
            .contains("current password is not correct")
    );
    let r = post(
        &app,
        &here,
        "/account/password",
        &page,
        &[
            ("current_password", PASSWORD),
            ("new_password", "password1234"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("too easy to guess"));
    let r = post(
        &app,
        &here,
        "/account/password",
        &page,
        &[
            ("current_password", PASSWORD),
            ("new_password", "quiet lantern over the bay"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/account?done=password");
    let page = here
        .http
        .get(app.url("/account?done=password"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Your password was changed"),
        "still signed in here: {page}"
    );
    assert!(
        account(&app, &elsewhere).await.is_none(),
        "the other session ended"
    );
    // Old password fails, new one works.
    let fresh = Browser::new();
    let Landing::Page(_, _, login) = fresh.follow(&app, app.url("/login")).await else {
        panic!()
    };
    match fresh.submit_login(&app, &login, "alice", PASSWORD).await {
        Landing::Page(_, _, body) => assert!(body.contains("Incorrect username or password")),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn account_forms_refuse_a_forged_csrf_token() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let b = signed_in(&app, "alice").await;
    let forged = "<input type=\"hidden\" name=\"csrf_token\" value=\"forged\">";
    for path in [
        "/account/sessions/revoke-others",
        "/account/apps/revoke",
        "/account/password",
    ] {
        let r = post(&app, &b, path, forged, &[]).await;
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test]
async fn an_expired_password_must_be_changed_before_going_on() {
    let app = crate::password_expiry::app_with_an_expired_password().await;
    let b = Browser::new();
    let Landing::Page(_, _, page) = b.follow(&app, app.url("/login")).await else {
        panic!()
    };
    let form = vec![
        ("username".to_string(), "alice".to_string()),
        ("password".to_string(), PASSWORD.to_string()),
        (
            "csrf_token".to_string(),
            hidden(&page, "csrf_token").unwrap(),
        ),
    ];
    let r = b
        .http
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["location"], "/account?done=expired");
    let page = b
        .http
        .get(app.url("/account?done=expired"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Your password has expired"));
}

fn audited(app: &TestApp, name: &str, result: &str) -> usize {
    use diesel::prelude::*;
    use portcullis::db::schema::audit_log::dsl::*;
    let mut c = app.conn();
    let conn: &mut portcullis::db::DbConn = &mut c;
    audit_log
        .filter(event.eq(name))
        .filter(outcome.eq(result))
        .count()
        .get_result::<i64>(conn)
        .unwrap() as usize
}

#[tokio::test]
async fn wrong_current_passwords_on_the_password_form_are_throttled_with_retry_after_and_audited() {
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let b = Browser::new();
    let (_, path, account) =
        crate::support::mfa::page(crate::support::mfa::password_step(&b, &app, "alice").await);
    assert_eq!(path, "/account");
    let change = |current: &'static str| {
        let (b, app, account) = (&b, &app, account.clone());
        async move {
            let r = b
                .http
                .post(app.url("/account/password"))
                .form(&[
                    (
                        "csrf_token",
                        hidden(&account, "csrf_token").unwrap().as_str(),
                    ),
                    ("current_password", current),
                    ("new_password", "purple elephant marches quietly"),
                ])
                .send()
                .await
                .unwrap();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<i64>().unwrap());
            (r.status(), retry)
        }
    };
    for _ in 0..3 {
        assert_eq!(
            change("guess guess guess").await,
            (StatusCode::BAD_REQUEST, None)
        );
    }
    let (status, retry) = change("guess guess guess").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(retry.is_some_and(|s| s >= 1), "{retry:?}");
    // While the delay lasts even the right password waits, and nothing changes.
    let (status, _) = change(PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(audited(&app, "password.change", "success"), 0);
    assert_eq!(audited(&app, "reauthenticate", "failure"), 4);
    assert_eq!(audited(&app, "reauthenticate", "blocked"), 1);
    app.advance(retry.unwrap());
    let (status, _) = change(PASSWORD).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
}
