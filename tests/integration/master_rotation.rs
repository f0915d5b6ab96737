//! Master key rotation with instances serving throughout, and the restored-backup sign-in.

use portcullis::keys::master::{MasterKey, Source};
use portcullis::keys::signing;
use reqwest::StatusCode;

use crate::support::browser::{Browser, Landing};
use crate::support::{ClientSpec, Options, PASSWORD, TestApp};

fn with_keys(current: [u8; 32], previous: Option<[u8; 32]>) -> Options {
    Options {
        configure: Box::new(move |c| {
            c.master_key = Some((MasterKey::from_bytes(current), Source::Environment));
            c.previous_master_key = previous.map(MasterKey::from_bytes);
        }),
        ..Default::default()
    }
}

async fn signs_in(app: &TestApp) -> bool {
    let b = Browser::new();
    let Landing::Page(_, _, page) = b.follow(app, app.url("/login")).await else {
        return false;
    };
    matches!(b.submit_login(app, &page, "alice", PASSWORD).await, Landing::Page(_, p, _) if p == "/account")
}

async fn token_works(app: &TestApp, secret: &str) -> bool {
    reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("app", Some(secret))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .map(|r| r.status() == StatusCode::OK)
        .unwrap_or(false)
}

#[tokio::test]
async fn master_key_rotation_under_load_loses_nothing() {
    if crate::support::backend() == "postgres" {
        // The instances below share one database by URL; covered on SQLite.
        crate::support::skip("master key rotation across instances runs on SQLite");
        return;
    }
    let old = [1u8; 32];
    let new = [2u8; 32];
    let a = TestApp::spawn_with(with_keys(old, None)).await;
    a.add_user("alice", None, None);
    let mut spec = ClientSpec::confidential("app");
    spec.scopes = "api:read";
    spec.grant_types = vec!["client_credentials"];
    spec.redirect_uris = vec![];
    let secret = a.add_client(spec).unwrap();
    // A second instance already runs with the new key, reading with the old one.
    let b = TestApp::spawn_with(Options {
        database_url: Some(a.database_url.clone()),
        ..with_keys(new, Some(old))
    })
    .await;
    let load = {
        let (a_base, b_base, secret) = (a.base.clone(), b.base.clone(), secret.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut failures = 0;
            for i in 0..60 {
                let base = if i % 2 == 0 { &a_base } else { &b_base };
                let ok = http
                    .post(format!("{base}/token"))
                    .basic_auth("app", Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .map(|r| r.status() == StatusCode::OK)
                    .unwrap_or(false);
                if !ok {
                    failures += 1;
                }
            }
            failures
        })
    };
    let resealed = signing::reseal_all(
        &mut b.conn(),
        &MasterKey::from_bytes(old),
        &MasterKey::from_bytes(new),
    )
    .unwrap();
    assert_eq!(resealed, 3);
    assert_eq!(
        load.await.unwrap(),
        0,
        "no request failed during the rotation"
    );
    // Both running instances reread the keys and keep serving.
    portcullis::app::rotate_keys(&b.state).await.unwrap();
    assert!(token_works(&b, &secret).await);
    assert!(signs_in(&b).await);
    // A fresh instance with only the new key starts and serves.
    let c = TestApp::spawn_with(Options {
        database_url: Some(a.database_url.clone()),
        ..with_keys(new, None)
    })
    .await;
    assert!(token_works(&c, &secret).await);
    assert!(signs_in(&c).await);
}

#[tokio::test]
async fn a_restored_backup_serves_sign_ins_with_the_same_master_key() {
    if crate::support::backend() == "postgres" {
        crate::support::skip("backup and restore of the SQLite file; PostgreSQL uses pg_dump");
        return;
    }
    let key = [9u8; 32];
    let original = TestApp::spawn_with(with_keys(key, None)).await;
    original.add_user("alice", None, None);
    let snapshot = original.dir.path().join("snapshot.db");
    original.sql(&format!("VACUUM INTO '{}'", snapshot.display()));
    // A new home for it: the restored file and the same master key.
    let home = tempfile::tempdir().unwrap();
    let restored_path = home.path().join("restored.db");
    std::fs::copy(&snapshot, &restored_path).unwrap();
    let restored = TestApp::spawn_with(Options {
        database_url: Some(format!("sqlite://{}", restored_path.display())),
        ..with_keys(key, None)
    })
    .await;
    assert!(
        signs_in(&restored).await,
        "the restored database signs alice in"
    );
    let jwks = |app: &TestApp| {
        let url = app.url("/jwks");
        async move { reqwest::get(url).await.unwrap().text().await.unwrap() }
    };
    assert_eq!(jwks(&original).await, jwks(&restored).await, "same keys");
}
