//! What a stolen database gives away: no private key, password, token, code or secret.

use portcullis::store::signing_keys;

#[tokio::test]
async fn a_database_dump_holds_no_private_key_token_code_or_secret_in_the_clear() {
    let (app, secrets) = crate::audit::busy_app().await;
    let keys = signing_keys::list(&mut app.conn()).unwrap();
    assert!(!keys.is_empty());
    for k in &keys {
        assert!(
            k.private_pem.starts_with("v1:"),
            "signing key {} is not sealed",
            k.kid
        );
        assert!(!k.private_pem.contains("PRIVATE KEY"));
    }
    if crate::support::backend() == "sqlite" {
        let path = app.database_url.trim_start_matches("sqlite://").to_string();
        // Everything the database holds, checkpointed or still in the write-ahead log.
        let mut bytes = std::fs::read(&path).unwrap();
        if let Ok(wal) = std::fs::read(format!("{path}-wal")) {
            bytes.extend(wal);
        }
        let dump = String::from_utf8_lossy(&bytes);
        assert!(!dump.contains("PRIVATE KEY"), "a private key in the clear");
        for s in &secrets {
            assert!(!dump.contains(s.as_str()), "a secret in the clear");
        }
    } else {
        crate::support::skip(
            "raw database file scan runs on SQLite; on PostgreSQL only the key rows are checked",
        );
    }
}

#[tokio::test]
async fn a_copied_ciphertext_does_not_open_for_another_key_row() {
    let app = crate::support::TestApp::spawn().await;
    let k = signing_keys::list(&mut app.conn()).unwrap().remove(0);
    let opened = portcullis::keys::at_rest::open(
        &app.state.master,
        portcullis::keys::signing::SEAL_PURPOSE,
        "another-kid",
        &k.private_pem,
    );
    assert!(opened.is_err());
    assert!(
        portcullis::keys::at_rest::open(
            &app.state.master,
            portcullis::keys::signing::SEAL_PURPOSE,
            &k.kid,
            &k.private_pem
        )
        .is_ok()
    );
}
