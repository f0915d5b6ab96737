//! Portcullis against a reference, per core: the write-heavy hot paths side by side with
//! node-oidc-provider (`benches/reference/node-oidc-provider`), plus memory and cold start.
//!
//! What one run prints (one line per measurement, `support::report`):
//! - `POST /token` with `client_credentials`;
//! - `POST /token` with `refresh_token`: rotation on every use and an ID token (scope
//!   `openid offline_access`);
//! - `POST /introspect` of an access token, and `GET /userinfo` with it as bearer;
//! - Portcullis only: full sign-in flows (`flows.rs`: a fresh browser each, `/authorize`,
//!   the sign-in page, the password, the code back at the client, the code exchange);
//! - with the reference: the ratio Portcullis/reference of each (ops/s and percentiles);
//! - each server's resident memory (VmRSS) idle after start and its peak (VmHWM) after the
//!   load, and its cold start: milliseconds from spawning it on an existing, migrated
//!   database to its first 200 from `/.well-known/openid-configuration` (median of 3).
//!
//! Method. Each server is its own process pinned to one CPU (`taskset -c`), the load
//! generator (this process) to another, so the figures are per core; without taskset or
//! with fewer than two CPUs the run says pinning was SKIPPED. Portcullis is the release
//! binary (`portcullis serve`), one actix worker since it follows the CPUs it may use, rate
//! limits off, log filter `warn` (`PORTCULLIS_LOG` and `PORTCULLIS_DB_POOL_SIZE` are passed
//! on when set; nothing else of the environment is), on SQLite seeded
//! beforehand through the library (users, a confidential `client_secret_post` client allowed
//! `client_credentials` and `refresh_token`, one refresh token per load client). The
//! reference is configured alike (`server.mjs`: RS256, the same client, opaque access tokens,
//! refresh rotation on every use, SQLite through its own adapter, no rate limits) and seeds
//! its refresh tokens before it serves. The load is `CLIENTS` concurrent clients (tasks on a
//! multi-threaded runtime, each with its own kept-alive connection), each sending its share
//! of the requests one after another after a short untimed warm-up; both servers get the
//! same request shapes, and every answer is checked (200; refresh answers carry an ID token
//! and a new refresh token; introspection says active). Below each measurement, the CPU time
//! the server and the load generator used meanwhile, and how busy the server's CPU was in
//! all: a server well under 100% of a core that nothing else used was waiting (for a lock,
//! for the load generator), and a core busy with other processes' work makes every figure
//! of that run lower than the machine can do. The cold start includes `taskset`'s exec.
//!
//! Run:
//!
//! ```text
//! cargo bench --bench versus
//! PORTCULLIS_BENCH_REFERENCE=1 PORTCULLIS_BENCH_SEED=1000000 cargo bench --bench versus
//! ```
//!
//! Settings (environment):
//! - `PORTCULLIS_BENCH_REQUESTS`: requests per measurement (default 2000);
//! - `PORTCULLIS_BENCH_CLIENTS`: concurrent clients (default 16);
//! - `PORTCULLIS_BENCH_FLOWS`: full sign-in flows (default 320);
//! - `PORTCULLIS_BENCH_REFERENCE=1`: run the reference too (needs node and npm; `npm ci`
//!   runs in its folder when `node_modules` is missing);
//! - `PORTCULLIS_BENCH_SEED=N`: first seed N audit rows (over the last 30 days, a mix of
//!   sign-ins, token issues and refreshes and failed client authentications) and N live
//!   tokens into Portcullis's database, and N token rows into the reference's, to check that
//!   the figures stay flat with data;
//! - `PORTCULLIS_BENCH_DATABASE_URL=postgres://USER@127.0.0.1:5432/DB`: also run Portcullis on
//!   PostgreSQL (a fresh database per run, created through that URL and dropped after): one
//!   instance, then three on the same database loaded round-robin, with the wait events of
//!   `pg_stat_activity` sampled every 50 ms during the load.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "versus/flows.rs"]
mod flows;
#[path = "versus/load.rs"]
mod load;
#[path = "versus/postgres.rs"]
mod postgres;
#[path = "versus/procfs.rs"]
mod procfs;
#[path = "versus/reference.rs"]
mod reference;
#[path = "versus/seed.rs"]
mod seed;
#[path = "versus/server.rs"]
mod server;
mod support;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use load::{Chain, Load, Measured};
use server::{Launch, Server};

/// Starts per server for the cold start figure (the last one serves the load).
const COLD_STARTS: usize = 3;
/// RS256 signatures timed in process: what an ID token costs apart from the endpoint.
pub const SIGNATURES: usize = 200;
/// Argon2id checks timed in process: what a sign-in costs apart from the endpoint.
pub const PASSWORD_CHECKS: usize = 40;
/// Pause after the start before the idle memory is read.
const SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// What the environment asks of this run.
pub struct Settings {
    pub requests: usize,
    /// Full sign-in flows (Portcullis only).
    pub flows: usize,
    pub clients: usize,
    pub seed: usize,
    pub reference: bool,
    pub database_url: Option<String>,
    /// The CPUs of the servers and of the load generator, when pinning is on.
    pub cpus: Option<(usize, usize)>,
}

impl Settings {
    fn from_env() -> Settings {
        let number = |name: &str, default: usize| match std::env::var(name) {
            Ok(v) => v
                .trim()
                .replace('_', "")
                .parse()
                .unwrap_or_else(|_| panic!("{name} must be a whole number, got {v:?}")),
            Err(_) => default,
        };
        Settings {
            requests: number("PORTCULLIS_BENCH_REQUESTS", 2000),
            flows: number("PORTCULLIS_BENCH_FLOWS", 320),
            clients: number("PORTCULLIS_BENCH_CLIENTS", 16).max(1),
            seed: number("PORTCULLIS_BENCH_SEED", 0),
            reference: std::env::var("PORTCULLIS_BENCH_REFERENCE").is_ok_and(|v| v == "1"),
            database_url: std::env::var("PORTCULLIS_BENCH_DATABASE_URL")
                .ok()
                .filter(|v| !v.is_empty()),
            cpus: None,
        }
    }

    pub fn per_client(&self) -> usize {
        (self.requests / self.clients).max(1)
    }

    pub fn warmup(&self) -> usize {
        // Enough for node's JIT to settle too: at least 10 per client (160 with 16 clients).
        (self.per_client() / 5).clamp(10, 50)
    }

    pub fn load(&self, server_pids: Vec<u32>) -> Load {
        Load {
            clients: self.clients,
            per_client: self.per_client(),
            warmup: self.warmup(),
            server_pids,
            server_cpu: self.cpus.map(|(s, _)| s),
        }
    }
}

/// One server's figures.
pub struct Outcome {
    pub measured: Vec<Measured>,
    pub rss_idle_kib: Option<u64>,
    pub hwm_kib: Option<u64>,
    pub cold_ms: Vec<f64>,
}

fn main() {
    let mut settings = Settings::from_env();
    settings.cpus = pin();
    match settings.cpus {
        Some((server, load)) => println!(
            "pinning: each server on CPU {server}, the load generator on CPU {load} (taskset)"
        ),
        None => println!(
            "pinning: SKIPPED (taskset missing or fewer than two CPUs): servers and load share the CPUs, the figures are not per core"
        ),
    }
    println!(
        "load: {} clients, {} requests per measurement ({} per client after {} untimed)",
        settings.clients,
        settings.clients * settings.per_client(),
        settings.per_client(),
        settings.warmup()
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();

    let ours = portcullis_sqlite(&settings, dir.path(), &runtime);
    let theirs = if settings.reference {
        reference::run(&settings, dir.path(), &runtime)
    } else {
        println!(
            "reference (node-oidc-provider): not run; PORTCULLIS_BENCH_REFERENCE=1 cargo bench --bench versus runs it too (needs node and npm)"
        );
        None
    };
    if let Some(theirs) = &theirs {
        ratios(&ours, theirs);
    }
    if let Some(url) = &settings.database_url {
        postgres::run(&settings, url, dir.path(), &runtime);
    }
}

/// Pins this process to the second allowed CPU and returns (server CPU, load CPU).
fn pin() -> Option<(usize, usize)> {
    let cpus = procfs::allowed_cpus()?;
    let (&server, &load) = (cpus.first()?, cpus.get(1)?);
    procfs::pin_self(load).then_some((server, load))
}

/// How the Portcullis binary is started on `database_url`, listening on `addr`.
pub fn portcullis_launch(
    addr: SocketAddr,
    database_url: &str,
    master: &str,
    dir: &Path,
    log: &str,
    cpu: Option<usize>,
) -> Launch {
    let filter = std::env::var("PORTCULLIS_LOG").unwrap_or_else(|_| "warn".into());
    let mut env: Vec<(String, String)> = vec![
        ("PORTCULLIS_BIND".into(), addr.to_string()),
        ("PORTCULLIS_ISSUER".into(), format!("http://{addr}")),
        ("PORTCULLIS_DATABASE_URL".into(), database_url.into()),
        ("PORTCULLIS_MASTER_KEY".into(), master.into()),
        ("PORTCULLIS_RATE_LIMIT_ENABLED".into(), "false".into()),
        ("PORTCULLIS_LOG".into(), filter),
    ];
    if let Ok(size) = std::env::var("PORTCULLIS_DB_POOL_SIZE") {
        env.push(("PORTCULLIS_DB_POOL_SIZE".into(), size));
    }
    Launch {
        program: PathBuf::from(env!("CARGO_BIN_EXE_portcullis")),
        args: vec!["serve".into()],
        env,
        dir: dir.to_path_buf(),
        log: dir.join(log),
        cpu,
    }
}

/// Portcullis on SQLite: seed, cold starts, idle memory, the load, peak memory.
fn portcullis_sqlite(
    settings: &Settings,
    dir: &Path,
    runtime: &tokio::runtime::Runtime,
) -> Outcome {
    let url = format!("sqlite://{}", dir.join("portcullis.db").display());
    let master = portcullis::keys::master::MasterKey::generate_encoded().to_string();
    let refresh = seed::prepare(&url, &master, settings.clients);
    if settings.seed > 0 {
        let secs = seed::history(&url, &master, settings.seed);
        println!(
            "portcullis: seeded {n} audit rows and {n} tokens in {secs:.1} s",
            n = settings.seed
        );
    }
    support::report_timed(
        "portcullis RS256 signature (in process, serial)",
        seed::signatures(&url, &master, SIGNATURES),
    );
    support::report_timed(
        "portcullis Argon2id password check (in process, serial)",
        seed::password_checks(PASSWORD_CHECKS),
    );
    let server_cpu = settings.cpus.map(|(s, _)| s);
    let (server, cold) = server::start_repeatedly(COLD_STARTS, |addr| {
        portcullis_launch(addr, &url, &master, dir, "portcullis.log", server_cpu)
    });
    measure("portcullis", settings, server, cold, refresh, runtime, true)
}

/// Idle memory, the four measurements, peak memory; prints them and stops the server.
pub fn measure(
    label: &str,
    settings: &Settings,
    mut server: Server,
    cold_ms: Vec<f64>,
    refresh: Vec<String>,
    runtime: &tokio::runtime::Runtime,
    sign_ins: bool,
) -> Outcome {
    server::pause(SETTLE);
    let rss_idle_kib = procfs::status_kib(server.pid, "VmRSS");
    let load = settings.load(vec![server.pid]);
    let bases = vec![server.base(); settings.clients];
    let mut measured = runtime.block_on(phases(&load, bases, refresh));
    if sign_ins {
        let flows = Load {
            per_client: (settings.flows / settings.clients).max(1),
            warmup: 1,
            ..settings.load(vec![server.pid])
        };
        let states = (0..settings.clients)
            .map(|i| {
                std::sync::Arc::new(flows::Flow {
                    base: server.base(),
                    user: format!("flow{i}"),
                })
            })
            .collect();
        let (m, _) = runtime.block_on(flows.run(
            "full sign-in flow (authorize, password, code, token)",
            states,
            flows::sign_in,
        ));
        measured.push(m);
    }
    let hwm_kib = procfs::status_kib(server.pid, "VmHWM");
    let rss_after = procfs::status_kib(server.pid, "VmRSS");
    server.stop();
    for m in &measured {
        print_measured(label, settings, m);
    }
    let mib =
        |k: Option<u64>| k.map_or("n/a".to_string(), |k| format!("{:.1} MiB", procfs::mib(k)));
    println!(
        "{label} memory: VmRSS idle after start {}, VmHWM (peak) after the load {}, VmRSS after the load {}",
        mib(rss_idle_kib),
        mib(hwm_kib),
        mib(rss_after)
    );
    print_cold(label, &cold_ms);
    Outcome {
        measured,
        rss_idle_kib,
        hwm_kib,
        cold_ms,
    }
}

/// The four measurements, one after another, on the same clients: client `i` talks to
/// `bases[i]` and refreshes `refresh[i]`.
pub async fn phases(load: &Load, bases: Vec<String>, refresh: Vec<String>) -> Vec<Measured> {
    let (cc, _) = load
        .run(
            "POST /token client_credentials",
            bases.clone(),
            load::client_credentials,
        )
        .await;
    let chains: Vec<(String, Chain)> = bases
        .into_iter()
        .zip(refresh)
        .map(|(base, r)| {
            let chain = Chain {
                refresh: r,
                access: String::new(),
            };
            (base, chain)
        })
        .collect();
    let (rt, chains) = load
        .run(
            "POST /token refresh_token + ID token",
            chains,
            load::refresh,
        )
        .await;
    let (intro, chains) = load.run("POST /introspect", chains, load::introspect).await;
    let (info, _) = load.run("GET /userinfo", chains, load::userinfo).await;
    vec![cc, rt, intro, info]
}

pub fn print_measured(label: &str, settings: &Settings, m: &Measured) {
    support::report(
        &format!("{label} {}", m.name),
        m.latencies.len(),
        m.latencies.clone(),
        m.seconds,
    );
    let cpu = match (settings.cpus, m.server_cpu_busy) {
        (Some((server, load)), Some(busy)) => format!(
            "server {:.0}% of CPU {server} (busy {:.0}% counting other processes), load generator {:.0}% of CPU {load}",
            m.server_cpu * 100.0,
            busy.min(1.0) * 100.0,
            m.load_cpu * 100.0
        ),
        _ => format!(
            "server {:.0}% of a core, load generator {:.0}%",
            m.server_cpu * 100.0,
            m.load_cpu * 100.0
        ),
    };
    println!("{:<58}   cpu: {cpu}", "");
}

pub fn print_cold(label: &str, ms: &[f64]) {
    let mut sorted = ms.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let Some((first, last)) = sorted.first().zip(sorted.last()) else {
        return;
    };
    println!(
        "{label} cold start: {:.0} ms median (min {:.0}, max {:.0}, {} starts) from spawn to the first 200 of discovery",
        sorted[sorted.len() / 2],
        first,
        last,
        sorted.len()
    );
}

/// Portcullis divided by the reference, for every measurement both have.
fn ratios(ours: &Outcome, theirs: &Outcome) {
    println!(
        "ratios Portcullis/reference (ops/s above 1 and latencies below 1: Portcullis ahead):"
    );
    for (a, b) in ours.measured.iter().zip(&theirs.measured) {
        println!(
            "{:<58} ops/s {:>5.2}x  p50 {:>5.2}x  p90 {:>5.2}x  p99 {:>5.2}x",
            format!("ratio {}", a.name),
            a.ops_per_second() / b.ops_per_second(),
            a.quantile(0.50) / b.quantile(0.50),
            a.quantile(0.90) / b.quantile(0.90),
            a.quantile(0.99) / b.quantile(0.99),
        );
    }
    let ratio = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) if b > 0 => format!("{:.2}x", a as f64 / b as f64),
        _ => "n/a".into(),
    };
    println!(
        "{:<58} idle RSS {}  peak RSS {}",
        "ratio memory",
        ratio(ours.rss_idle_kib, theirs.rss_idle_kib),
        ratio(ours.hwm_kib, theirs.hwm_kib)
    );
    let median = |v: &[f64]| {
        let mut s = v.to_vec();
        s.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        s.get(s.len() / 2).copied()
    };
    if let (Some(a), Some(b)) = (median(&ours.cold_ms), median(&theirs.cold_ms)) {
        println!("{:<58} {:.2}x", "ratio cold start (median)", a / b);
    }
}
