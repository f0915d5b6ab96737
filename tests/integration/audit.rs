//! The audit trail: events after each flow, tamper evidence, concurrent writers.

use portcullis::audit::{self, Verdict};
use portcullis::store::audit_log;
use serde_json::Value;

use crate::flow::urlencode;
use crate::support::browser::{Browser, Landing};
use crate::support::{ClientSpec, PASSWORD, REDIRECT, TestApp, param};

fn events(app: &TestApp) -> Vec<audit_log::Entry> {
    app.trail()
}

fn verdict(app: &TestApp) -> Verdict {
    audit::verify(&mut app.conn(), Some(&app.state.master)).unwrap()
}

/// Runs sign-in, consent, code, token, refresh, replay, revocation and logout; returns the
/// secrets that went over the wire.
pub async fn busy_app() -> (TestApp, Vec<String>) {
    let app = TestApp::spawn().await;
    app.add_user("alice", Some("alice@example.com"), None);
    let secret = app.add_client(ClientSpec::confidential("app")).unwrap();
    let b = Browser::new();
    let Landing::Page(_, _, login) = b.follow(&app, app.url("/login")).await else {
        panic!()
    };
    b.submit_login(&app, &login, "alice", "not the password")
        .await;
    let url = format!(
        "{}/authorize?response_type=code&client_id=app&redirect_uri={}&scope=openid%20offline_access&state=s",
        app.base,
        urlencode(REDIRECT)
    );
    let q = b.authorize(&app, &url, "alice").await;
    let code = param(&q, "code").unwrap();
    let token = |form: Vec<(&'static str, String)>| {
        let app = &app;
        let secret = secret.clone();
        async move {
            reqwest::Client::new()
                .post(app.url("/token"))
                .basic_auth("app", Some(secret))
                .form(&form)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let first = token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", REDIRECT.into()),
    ])
    .await;
    let refresh = first["refresh_token"].as_str().unwrap().to_string();
    let second = token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh.clone()),
    ])
    .await;
    // The same refresh again within the reuse window: the same successor (kept sealed).
    token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh.clone()),
    ])
    .await;
    // And once more after the window: reuse.
    app.advance(app.state.config.lifetimes.refresh_reuse_window);
    token(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", refresh.clone()),
    ])
    .await;
    token(vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.clone()),
        ("redirect_uri", REDIRECT.into()),
    ])
    .await;
    reqwest::Client::new()
        .post(app.url("/revoke"))
        .basic_auth("app", Some(&secret))
        .form(&[("token", first["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    let id_token = first["id_token"].as_str().unwrap().to_string();
    b.http
        .get(format!("{}/logout?id_token_hint={id_token}", app.base))
        .send()
        .await
        .unwrap();
    let secrets = vec![
        PASSWORD.to_string(),
        "not the password".to_string(),
        secret,
        code,
        refresh,
        first["access_token"].as_str().unwrap().to_string(),
        second["access_token"].as_str().unwrap().to_string(),
        second["refresh_token"].as_str().unwrap().to_string(),
        id_token,
    ];
    // Everything committed is chained (on PostgreSQL entries are linked after they commit),
    // so the tests below tamper with linked entries.
    app.trail();
    (app, secrets)
}

#[tokio::test]
async fn every_flow_leaves_its_events_and_no_secret_in_the_trail() {
    let (app, secrets) = busy_app().await;
    let all = events(&app);
    let names: Vec<(&str, &str)> = all
        .iter()
        .map(|e| (e.event.as_str(), e.outcome.as_str()))
        .collect();
    for expected in [
        ("sign_in", "failure"),
        ("sign_in", "success"),
        ("consent.grant", "success"),
        ("code.issue", "success"),
        ("token.issue", "success"),
        ("token.refresh", "success"),
        ("token.refresh_retried", "success"),
        ("token.reuse", "attack"),
        ("code.replay", "attack"),
        ("token.revoke", "success"),
        ("session.end", "success"),
    ] {
        assert!(
            names.contains(&expected),
            "{expected:?} missing from {names:?}"
        );
    }
    let success = all
        .iter()
        .find(|e| e.event == "sign_in" && e.outcome == "success")
        .unwrap();
    assert!(success.user_id.is_some());
    assert_eq!(success.ip.as_deref(), Some("127.0.0.1"));
    assert!(success.request_id.is_some());
    let failure = all
        .iter()
        .find(|e| e.event == "sign_in" && e.outcome == "failure")
        .unwrap();
    assert!(
        failure.details.contains("a****"),
        "usernames are masked: {}",
        failure.details
    );
    let dump = serde_json::to_string(&all).unwrap();
    for s in secrets {
        assert!(!dump.contains(&s), "a secret reached the audit trail");
    }
    assert_eq!(
        verdict(&app),
        Verdict::Intact {
            entries: all.len() as i64
        }
    );
}

#[tokio::test]
async fn editing_deleting_or_reordering_an_entry_is_detected_at_that_entry() {
    let (app, _) = busy_app().await;
    let n = events(&app).len() as i64;
    assert!(n >= 8);
    // Edit entry 3.
    app.sql("UPDATE audit_log SET outcome = 'success' WHERE seq = 3 AND outcome <> 'success'");
    app.sql("UPDATE audit_log SET details = '{\"edited\":true}' WHERE seq = 3");
    match verdict(&app) {
        Verdict::Broken { seq, .. } => assert_eq!(seq, 3),
        v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn deleting_an_entry_is_detected() {
    let (app, _) = busy_app().await;
    app.sql("DELETE FROM audit_log WHERE seq = 4");
    match verdict(&app) {
        Verdict::Broken { seq, reason } => {
            assert_eq!(seq, 5);
            assert!(reason.contains("entry 4 is missing"), "{reason}");
        }
        v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn reordering_entries_is_detected() {
    let (app, _) = busy_app().await;
    app.sql("UPDATE audit_log SET seq = -1 WHERE seq = 2");
    app.sql("UPDATE audit_log SET seq = 2 WHERE seq = 3");
    app.sql("UPDATE audit_log SET seq = 3 WHERE seq = -1");
    match verdict(&app) {
        Verdict::Broken { seq, .. } => assert_eq!(seq, 2),
        v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn concurrent_writers_keep_a_valid_chain() {
    let app = TestApp::spawn_with(crate::support::Options {
        configure: Box::new(|c| c.throttle.enabled = false),
        ..Default::default()
    })
    .await;
    app.add_user("alice", None, None);
    let mut handles = Vec::new();
    for _ in 0..12 {
        let base = app.base.clone();
        handles.push(tokio::spawn(async move {
            let http = reqwest::Client::builder()
                .cookie_store(true)
                .build()
                .unwrap();
            let page = http
                .get(format!("{base}/login"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let csrf = crate::support::hidden(&page, "csrf_token").unwrap();
            http.post(format!("{base}/login"))
                .form(&[
                    ("username", "alice"),
                    ("password", "wrong wrong wrong"),
                    ("csrf_token", &csrf),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }));
    }
    for h in handles {
        assert!(h.await.unwrap().is_success());
    }
    let all = events(&app);
    assert_eq!(all.iter().filter(|e| e.event == "sign_in").count(), 12);
    assert_eq!(
        verdict(&app),
        Verdict::Intact {
            entries: all.len() as i64
        }
    );
}

#[tokio::test]
async fn truncating_the_tail_is_detected_by_a_signed_checkpoint() {
    let (app, _) = busy_app().await;
    let n = events(&app).len() as i64;
    let now = app.clock.naive();
    assert_eq!(
        audit::link_and_checkpoint(&mut app.conn(), &app.state.master, now, true).unwrap(),
        Some(n)
    );
    assert_eq!(verdict(&app), Verdict::Intact { entries: n });
    app.sql(&format!("DELETE FROM audit_log WHERE seq > {}", n - 2));
    match verdict(&app) {
        Verdict::Broken { seq, reason } => {
            assert_eq!(seq, n - 1);
            assert!(reason.contains("deleted"), "{reason}");
        }
        v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn a_forged_checkpoint_or_a_rewritten_chain_is_detected() {
    let (app, _) = busy_app().await;
    let now = app.clock.naive();
    audit::link_and_checkpoint(&mut app.conn(), &app.state.master, now, true).unwrap();
    // Rewriting the newest entry and its hash consistently defeats the chain alone, not the
    // checkpoint.
    let n = events(&app).len() as i64;
    app.sql(&format!(
        "UPDATE audit_log SET hash = 'f00d' WHERE seq = {n}"
    ));
    match verdict(&app) {
        Verdict::Broken { seq, .. } => assert_eq!(seq, n),
        v => panic!("{v:?}"),
    }
    app.sql("UPDATE audit_checkpoints SET mac = 'forged'");
    match verdict(&app) {
        Verdict::Broken { reason, .. } => assert!(reason.contains("forged"), "{reason}"),
        v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn pruning_keeps_the_rest_verifiable_from_a_signed_checkpoint() {
    let (app, _) = busy_app().await;
    let now = app.clock.naive();
    let anchor = audit::link_and_checkpoint(&mut app.conn(), &app.state.master, now, true)
        .unwrap()
        .unwrap();
    app.advance(86_400);
    // Newer activity after the checkpoint.
    let b = Browser::new();
    let Landing::Page(_, _, login) = b.follow(&app, app.url("/login")).await else {
        panic!()
    };
    b.submit_login(&app, &login, "alice", PASSWORD).await;
    let total = events(&app).len() as i64;
    let removed = audit::prune(&mut app.conn(), app.clock.naive(), 1_000).unwrap();
    assert_eq!(removed as i64, anchor);
    assert_eq!(events(&app).first().unwrap().seq, anchor + 1);
    assert_eq!(verdict(&app), Verdict::Intact { entries: total });
    // Without the anchor, the gap is reported.
    app.sql("DELETE FROM audit_checkpoints");
    match verdict(&app) {
        Verdict::Broken { seq, .. } => assert_eq!(seq, anchor + 1),
        v => panic!("{v:?}"),
    }
}

#[tokio::test]
async fn a_password_typed_as_the_username_cannot_be_recovered_from_the_trail_by_guessing() {
    use portcullis::keys::secrets::sha256_hex;
    let app = TestApp::spawn().await;
    app.add_user("alice", None, None);
    let b = Browser::new();
    let Landing::Page(_, _, login) = b.follow(&app, app.url("/login")).await else {
        panic!()
    };
    b.submit_login(&app, &login, "hunter2", "alice").await;
    let failure = events(&app)
        .into_iter()
        .find(|e| e.event == "sign_in" && e.outcome == "failure")
        .unwrap();
    let details: Value = serde_json::from_str(&failure.details).unwrap();
    let account = details["account"].as_str().unwrap().to_string();
    assert!(!account.is_empty());
    let dump = serde_json::to_string(&events(&app)).unwrap();
    for guess in [
        "hunter2".to_string(),
        sha256_hex("hunter2"),
        sha256_hex("account:hunter2"),
        sha256_hex("account:hunter2")[..16].to_string(),
    ] {
        assert!(!dump.contains(&guess), "{guess} found in {dump}");
    }
    // Nor do the throttle counters keep the typed name.
    let keys: Vec<String> = {
        use diesel::prelude::*;
        use portcullis::db::schema::throttles::dsl::*;
        let mut c = app.conn();
        let conn: &mut portcullis::db::DbConn = &mut c;
        throttles.select(key).load(conn).unwrap()
    };
    assert!(!keys.is_empty());
    assert!(keys.iter().all(|k| !k.contains("hunter2")), "{keys:?}");
    // The same name typed again is grouped under the same reference (the detectors count it).
    b.submit_login(&app, &login, " HUNTER2 ", "alice").await;
    let refs: Vec<String> = events(&app)
        .into_iter()
        .filter(|e| e.event == "sign_in" && e.outcome == "failure")
        .map(|e| serde_json::from_str::<Value>(&e.details).unwrap()["account"].to_string())
        .collect();
    assert_eq!(refs.len(), 2);
    assert_eq!(refs[0], refs[1]);
}

#[tokio::test]
async fn an_unregistered_redirect_uri_is_audited_with_the_client_and_the_reason() {
    let app = TestApp::spawn().await;
    app.add_client(ClientSpec::confidential("app"));
    let r = reqwest::get(app.url(
        "/authorize?response_type=code&client_id=app&scope=openid&state=s\
         &redirect_uri=https%3A%2F%2Fevil.example%2Fsteal%3Cscript%3E",
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::BAD_REQUEST);
    let refused: Vec<_> = events(&app)
        .into_iter()
        .filter(|e| e.event == "authorize.refused")
        .collect();
    assert_eq!(refused.len(), 1);
    let e = &refused[0];
    assert_eq!(e.client_id.as_deref(), Some("app"));
    assert_eq!(e.outcome, "failure");
    assert!(
        e.details.contains("redirect_uri not registered"),
        "{}",
        e.details
    );
    assert!(e.details.contains("https://evil.example"), "{}", e.details);
    assert!(
        !e.details.contains("steal"),
        "only the origin is kept: {}",
        e.details
    );
}
