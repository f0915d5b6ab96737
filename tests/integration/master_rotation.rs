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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn master_key_rotation_under_load_loses_nothing() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let old = [1u8; 32];
    let new = [2u8; 32];
    let a = TestApp::spawn_with(with_keys(old, None)).await;
    a.add_user("alice", None, None);
    let mut spec = ClientSpec::confidential("app");
    spec.scopes = "api:read";
    spec.grant_types = vec!["client_credentials"];
    spec.redirect_uris = vec![];
    let secret = a.add_client(spec).unwrap();
    // A second instance on the same database already runs with the new key, reading with
    // the old one.
    let b = TestApp::spawn_with(Options {
        database_url: Some(a.database_url.clone()),
        ..with_keys(new, Some(old))
    })
    .await;
    // Four clients keep asking both instances for tokens until the reseal is over and each
    // has made ten more requests after it (at most 500 each).
    let resealed_flag = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let started = Arc::new(tokio::sync::Barrier::new(5));
    let mut load = Vec::new();
    for worker in 0..4 {
        let (a_base, b_base, secret) = (a.base.clone(), b.base.clone(), secret.clone());
        let (resealed_flag, sent, started) = (resealed_flag.clone(), sent.clone(), started.clone());
        load.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let (mut failures, mut after) = (0, 0);
            for i in 0..500 {
                if i == 5 {
                    started.wait().await;
                }
                let base = if (i + worker) % 2 == 0 {
                    &a_base
                } else {
                    &b_base
                };
                let status = http
                    .post(format!("{base}/token"))
                    .basic_auth("app", Some(&secret))
                    .form(&[("grant_type", "client_credentials")])
                    .send()
                    .await
                    .map(|r| r.status());
                if status.as_ref().ok() != Some(&StatusCode::OK) {
                    failures += 1;
                }
                sent.fetch_add(1, Ordering::SeqCst);
                if resealed_flag.load(Ordering::SeqCst) {
                    after += 1;
                    if after >= 10 {
                        break;
                    }
                }
            }
            (failures, after)
        }));
    }
    // The reseal starts once every client is under way, and runs on a blocking thread
    // while they go on.
    started.wait().await;
    let before = sent.load(Ordering::SeqCst);
    let pool = b.state.pool.clone();
    let resealed = tokio::task::spawn_blocking(move || {
        signing::reseal_all(
            &mut pool.get().unwrap(),
            &MasterKey::from_bytes(old),
            &MasterKey::from_bytes(new),
        )
    })
    .await
    .unwrap()
    .unwrap();
    resealed_flag.store(true, Ordering::SeqCst);
    assert_eq!(resealed, 3);
    let during = sent.load(Ordering::SeqCst) - before;
    for worker in load {
        let (failures, after) = worker.await.unwrap();
        assert_eq!(failures, 0, "no request failed around the rotation");
        assert_eq!(after, 10, "each client went on after the reseal");
    }
    assert!(before >= 20, "the load ran before the reseal");
    // Not asserted (timing-dependent), but reported: requests answered while resealing.
    eprintln!("{during} token requests were answered while the keys were resealed");
    // Both running instances reread the keys and keep serving.
    portcullis::jobs::rotate_keys(&b.state).await.unwrap();
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
