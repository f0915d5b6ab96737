//! The CLI does no harm by accident: no database created by a read-only command, no restore
//! under a running server, and errors that say where the problem is.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::cli::Cli;
use portcullis::db::server_lock::{self, Mode};

const NO_DATABASE: &str =
    "no database at data/portcullis.db; run portcullis migrate or portcullis serve first";

#[test]
fn read_only_commands_on_a_missing_database_say_so_and_create_nothing() {
    let cli = Cli::new();
    let backup = cli.dir.path().join("b.db");
    let cases: &[&[&str]] = &[
        &["client", "list"],
        &["client", "show", "app"],
        &["user", "list"],
        &["user", "show", "alice"],
        &["audit", "tail"],
        &["audit", "verify"],
        &["audit", "export"],
        &["keys", "list"],
        &["backup", backup.to_str().unwrap()],
        &["user", "set", "alice", "--name", "A"],
        &["client", "rotate-secret", "app"],
    ];
    for args in cases {
        let o = cli.run(args, None);
        assert_eq!(o.code, 1, "{args:?}: {}", o.stderr);
        assert!(o.stderr.contains(NO_DATABASE), "{args:?}: {}", o.stderr);
        assert_eq!(o.stderr.trim().lines().count(), 1, "{args:?}: {}", o.stderr);
        assert!(
            !cli.dir.path().join("data").exists(),
            "{args:?} created data/"
        );
        assert!(!backup.exists());
    }
    // Commands that set things up still create them.
    assert_eq!(cli.run(&["migrate"], None).code, 0);
    assert!(cli.dir.path().join("data/portcullis.db").exists());
    assert!(cli.dir.path().join("data/master.key").exists());
    assert_eq!(cli.run(&["client", "list"], None).code, 0);
}

fn bytes(cli: &Cli) -> Vec<u8> {
    std::fs::read(cli.dir.path().join("data/portcullis.db")).unwrap()
}

/// A database with alice, a backup of it, then bob added after the backup.
fn with_backup(cli: &Cli) -> std::path::PathBuf {
    let add = |name: &str| {
        let o = cli.run(
            &["user", "add", name, "--password-stdin"],
            Some("violet tractor humming softly\n"),
        );
        assert_eq!(o.code, 0, "{}", o.stderr);
    };
    add("alice");
    let file = cli.dir.path().join("snapshot.db");
    assert_eq!(cli.run(&["backup", file.to_str().unwrap()], None).code, 0);
    add("bob");
    file
}

#[test]
fn restore_refuses_while_a_server_holds_the_database_lock() {
    let cli = Cli::new();
    let file = with_backup(&cli);
    let db = cli.dir.path().join("data/portcullis.db");
    // Held exactly as `serve` holds it.
    let lock = server_lock::try_acquire(db.to_str().unwrap(), Mode::Shared)
        .unwrap()
        .unwrap();
    let before = bytes(&cli);
    let o = cli.run(&["restore", file.to_str().unwrap()], None);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("a server is using the database"),
        "{}",
        o.stderr
    );
    assert!(
        o.stderr.contains("systemctl stop portcullis"),
        "{}",
        o.stderr
    );
    assert_eq!(bytes(&cli), before, "the database was touched");
    assert_eq!(cli.run(&["user", "show", "bob"], None).code, 0);
    drop(lock);
    let o = cli.run(&["restore", file.to_str().unwrap()], None);
    assert_eq!(o.code, 0, "{}", o.stderr);
    assert_eq!(cli.run(&["user", "show", "bob"], None).code, 1);
}

#[test]
fn restore_refuses_while_the_real_server_runs() {
    let cli = Cli::new();
    let file = with_backup(&cli);
    let mut child = Command::new(env!("CARGO_BIN_EXE_portcullis"))
        .args(["serve", "--bind", "127.0.0.1:0"])
        .current_dir(cli.dir.path())
        .env_remove("PORTCULLIS_DATABASE_URL")
        .env_remove("PORTCULLIS_CONFIG")
        .env_remove("PORTCULLIS_ISSUER")
        .env("PORTCULLIS_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if !sent && line.contains("listening") {
                let _ = tx.send(());
                sent = true;
            }
        }
    });
    let listening = rx.recv_timeout(std::time::Duration::from_secs(60));
    let o = cli.run(&["restore", file.to_str().unwrap()], None);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    assert!(listening.is_ok(), "the server did not start");
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(
        o.stderr.contains("a server is using the database"),
        "{}",
        o.stderr
    );
    assert_eq!(cli.run(&["user", "show", "bob"], None).code, 0);
    // Stopped, the restore goes through.
    assert_eq!(cli.run(&["restore", file.to_str().unwrap()], None).code, 0);
}

#[test]
fn config_file_errors_name_the_file_line_and_key() {
    let cli = Cli::new();
    std::fs::write(
        cli.dir.path().join("portcullis.toml"),
        "bind = \"127.0.0.1:8080\"\n# a comment\naccess_token_lifetime = \"soon\"\n",
    )
    .unwrap();
    let o = cli.run(&["migrate"], None);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("portcullis.toml:3:"), "{}", o.stderr);
    assert!(o.stderr.contains("access_token_lifetime"), "{}", o.stderr);
    std::fs::write(
        cli.dir.path().join("portcullis.toml"),
        "bind = \"127.0.0.1:8080\"\nbinds = \"x\"\n",
    )
    .unwrap();
    let o = cli.run(&["migrate"], None);
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("portcullis.toml:2:1:"), "{}", o.stderr);
    assert!(o.stderr.contains("binds"), "{}", o.stderr);
}

#[test]
fn a_data_folder_that_cannot_be_written_is_named_in_the_error() {
    let cli = Cli::new();
    // A regular file where the data folder should be: nobody, not even root, can write in it.
    std::fs::write(cli.dir.path().join("blocked"), "").unwrap();
    let o = cli.run(
        &[
            "--database-url",
            "sqlite://blocked/portcullis.db",
            "migrate",
        ],
        None,
    );
    assert_eq!(o.code, 1);
    assert!(o.stderr.contains("blocked"), "{}", o.stderr);
    // A database that exists in a folder SQLite cannot write its journal into.
    assert_eq!(cli.run(&["migrate"], None).code, 0);
    let wal = cli.dir.path().join("data/portcullis.db-wal");
    let _ = std::fs::remove_file(&wal);
    std::fs::create_dir(&wal).unwrap();
    let o = cli.run(&["client", "list"], None);
    assert_eq!(o.code, 1, "{}", o.stderr);
    assert!(o.stderr.contains("data/portcullis.db"), "{}", o.stderr);
}
