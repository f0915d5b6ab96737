//! The reference: node-oidc-provider from `benches/reference/node-oidc-provider`, installed
//! with `npm ci` when its `node_modules` is missing, seeded by `node server.mjs seed`, then
//! served by `node server.mjs` pinned like Portcullis.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server::{self, Launch};
use crate::{Outcome, Settings};

/// Runs the reference; `None` (with a SKIPPED line) when node or its packages are missing.
pub fn run(settings: &Settings, dir: &Path, runtime: &tokio::runtime::Runtime) -> Option<Outcome> {
    let folder = server::reference_dir();
    let version = Command::new("node").arg("--version").output();
    let Some(version) = version.ok().filter(|o| o.status.success()) else {
        println!("reference: SKIPPED, no node on PATH (install Node.js 20.19 or later with npm)");
        return None;
    };
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    if !folder.join("node_modules").exists() && !npm_ci(folder) {
        println!(
            "reference: SKIPPED, npm ci failed in {} (see its output above)",
            folder.display()
        );
        return None;
    }
    println!("reference: node-oidc-provider (package-lock.json) on node {version}");
    let db = dir.join("reference.db");
    let seeded = Command::new("node")
        .arg(folder.join("server.mjs"))
        .arg("seed")
        .current_dir(folder)
        .env("REF_DB", &db)
        .env("REF_ISSUER", "http://127.0.0.1")
        .env("REF_CHAINS", settings.clients.to_string())
        .env("REF_SEED_ROWS", settings.seed.to_string())
        .env("REF_SIGNATURES", crate::SIGNATURES.to_string())
        .output()
        .expect("node server.mjs seed");
    assert!(
        seeded.status.success(),
        "node server.mjs seed failed: {}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let out: serde_json::Value = serde_json::from_slice(&seeded.stdout).unwrap_or_else(|e| {
        panic!(
            "seed output ({e}): {}",
            String::from_utf8_lossy(&seeded.stdout)
        )
    });
    let refresh: Vec<String> = out["refresh_tokens"]
        .as_array()
        .expect("refresh_tokens")
        .iter()
        .map(|v| v.as_str().expect("a refresh token").to_string())
        .collect();
    assert_eq!(refresh.len(), settings.clients);
    if settings.seed > 0 {
        println!("reference: seeded {} token rows", settings.seed);
    }
    let signatures: Vec<f64> = out["sign_ms"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
        .unwrap_or_default();
    if !signatures.is_empty() {
        crate::support::report_timed(
            "reference RS256 signature (node:crypto, serial)",
            signatures,
        );
    }
    let cpu = settings.cpus.map(|(s, _)| s);
    let (srv, cold) = server::start_repeatedly(crate::COLD_STARTS, |addr| Launch {
        program: PathBuf::from("node"),
        args: vec![folder.join("server.mjs").display().to_string()],
        env: vec![
            ("REF_DB".into(), db.display().to_string()),
            ("REF_ISSUER".into(), format!("http://{addr}")),
            ("REF_PORT".into(), addr.port().to_string()),
            ("NODE_ENV".into(), "production".into()),
        ],
        dir: folder.to_path_buf(),
        log: dir.join("reference.log"),
        cpu,
    });
    Some(crate::measure(
        "reference",
        settings,
        srv,
        cold,
        refresh,
        runtime,
        false,
    ))
}

/// `npm ci` in `folder`. better-sqlite3 compiles from source where its prebuilt binary
/// cannot be downloaded: it is pointed at the headers of the installed node when those exist.
fn npm_ci(folder: &Path) -> bool {
    println!("reference: npm ci in {} (once)", folder.display());
    let mut cmd = Command::new("npm");
    cmd.args(["ci", "--no-audit", "--no-fund"])
        .current_dir(folder);
    if std::env::var_os("npm_config_nodedir").is_none()
        && let Some(prefix) = node_prefix()
        && prefix.join("include/node/common.gypi").exists()
    {
        cmd.env("npm_config_nodedir", prefix);
    }
    cmd.status().is_ok_and(|s| s.success())
}

/// The installation prefix of `node` (`/usr` for `/usr/bin/node`).
fn node_prefix() -> Option<PathBuf> {
    let out = Command::new("node")
        .args(["-p", "process.execPath"])
        .output()
        .ok()?;
    let exe = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    Some(exe.parent()?.parent()?.to_path_buf())
}
