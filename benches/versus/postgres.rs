//! Portcullis on PostgreSQL: a fresh database per run (created through the given URL, dropped
//! at the end), one instance under the load, then three instances on the same database
//! loaded round-robin; meanwhile the wait events of the database's backends are sampled from
//! `pg_stat_activity` every 50 ms.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::pg::PgConnection;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use crate::load::Measured;
use crate::server::{self, Server};
use crate::{Settings, seed};

const INSTANCES: usize = 3;
const SAMPLE_EVERY: Duration = Duration::from_millis(50);
/// The sampler stops by itself after this long.
const SAMPLE_LIMIT: Duration = Duration::from_secs(600);

#[derive(QueryableByName)]
struct Activity {
    #[diesel(sql_type = Nullable<Text>)]
    state: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    wait_event_type: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    wait_event: Option<String>,
    /// The advisory lock key a backend waits for (`classid << 32 | objid`).
    #[diesel(sql_type = Nullable<BigInt>)]
    advisory: Option<i64>,
}

pub fn run(settings: &Settings, admin_url: &str, dir: &Path, runtime: &tokio::runtime::Runtime) {
    let mut admin = match PgConnection::establish(admin_url) {
        Ok(c) => c,
        Err(e) => {
            println!("postgres: SKIPPED, cannot connect to PORTCULLIS_BENCH_DATABASE_URL: {e}");
            return;
        }
    };
    let name = format!(
        "portcullis_bench_{}_{}",
        std::process::id(),
        portcullis::clock::Clock::System
            .naive()
            .and_utc()
            .timestamp()
    );
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .expect("CREATE DATABASE");
    let mut url = url::Url::parse(admin_url).expect("PORTCULLIS_BENCH_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    let url = url.to_string();
    println!(
        "postgres: fresh database {name}; instances pinned like the SQLite run (PostgreSQL itself is not)"
    );
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        compare(settings, &url, &name, dir, runtime)
    }));
    let dropped = diesel::sql_query(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .execute(&mut admin)
        .or_else(|_| {
            diesel::sql_query(format!("DROP DATABASE IF EXISTS {name}")).execute(&mut admin)
        });
    if let Err(e) = dropped {
        println!("postgres: could not drop {name}: {e}");
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}

fn compare(
    settings: &Settings,
    url: &str,
    name: &str,
    dir: &Path,
    runtime: &tokio::runtime::Runtime,
) {
    let master = portcullis::keys::master::MasterKey::generate_encoded().to_string();
    let chains = seed::prepare(url, &master, settings.clients * (1 + INSTANCES));
    if settings.seed > 0 {
        let secs = seed::history(url, &master, settings.seed);
        println!(
            "postgres: seeded {n} audit rows and {n} tokens in {secs:.1} s",
            n = settings.seed
        );
    }
    let (one_chains, three_chains) = chains.split_at(settings.clients);
    let cpu = settings.cpus.map(|(s, _)| s);
    let start = |i: usize| {
        let addr = server::free_addr();
        let log = format!("portcullis-pg-{i}.log");
        crate::portcullis_launch(addr, url, &master, dir, &log, cpu)
            .start(addr)
            .0
    };

    let one = vec![start(0)];
    let (single, waits_one) = loaded(settings, &one, one_chains.to_vec(), url, name, runtime);
    drop(one);
    let three: Vec<Server> = (1..=INSTANCES).map(start).collect();
    let (multi, waits_three) = loaded(settings, &three, three_chains.to_vec(), url, name, runtime);
    drop(three);

    for m in &single {
        crate::print_measured("portcullis-pg x1", settings, m);
    }
    print_waits("1 instance", &waits_one);
    for m in &multi {
        crate::print_measured(&format!("portcullis-pg x{INSTANCES}"), settings, m);
    }
    print_waits(&format!("{INSTANCES} instances"), &waits_three);
    for (a, b) in multi.iter().zip(&single) {
        println!(
            "{:<58} ops/s {:>5.2}x  p50 {:>5.2}x  p99 {:>5.2}x",
            format!("postgres x{INSTANCES}/x1 {}", a.name),
            a.ops_per_second() / b.ops_per_second(),
            a.quantile(0.50) / b.quantile(0.50),
            a.quantile(0.99) / b.quantile(0.99),
        );
    }
}

/// The four measurements against `servers` (client `i` on server `i % n`), with the wait
/// events sampled meanwhile.
fn loaded(
    settings: &Settings,
    servers: &[Server],
    chains: Vec<String>,
    url: &str,
    name: &str,
    runtime: &tokio::runtime::Runtime,
) -> (Vec<Measured>, BTreeMap<String, usize>) {
    let load = settings.load(servers.iter().map(|s| s.pid).collect());
    let bases: Vec<String> = (0..settings.clients)
        .map(|i| servers[i % servers.len()].base())
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (stop, url, name) = (stop.clone(), url.to_string(), name.to_string());
        std::thread::spawn(move || sample(&url, &name, &stop))
    };
    let measured = runtime.block_on(crate::phases(&load, bases, chains));
    stop.store(true, Ordering::Relaxed);
    let waits = sampler.join().expect("the sampler");
    (measured, waits)
}

/// Counts, every `SAMPLE_EVERY` until `stop`, what each busy backend of database `name` waits
/// for ("CPU" when it waits for nothing).
fn sample(url: &str, name: &str, stop: &AtomicBool) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    let Ok(mut conn) = PgConnection::establish(url) else {
        return counts;
    };
    let query = format!(
        "SELECT a.state, a.wait_event_type, a.wait_event, \
           (SELECT (l.classid::bigint << 32) | l.objid::bigint FROM pg_locks l \
             WHERE l.pid = a.pid AND NOT l.granted AND l.locktype = 'advisory' LIMIT 1) AS advisory \
         FROM pg_stat_activity a \
         WHERE a.datname = '{name}' AND a.pid <> pg_backend_pid() AND a.state <> 'idle' \
         AND a.backend_type = 'client backend'"
    );
    let started = Instant::now();
    while !stop.load(Ordering::Relaxed) && started.elapsed() < SAMPLE_LIMIT {
        if let Ok(rows) = diesel::sql_query(&query).load::<Activity>(&mut conn) {
            for r in rows {
                let what = match (r.wait_event_type, r.wait_event, r.advisory) {
                    (Some(t), Some(e), Some(key)) => format!("{t}/{e} ({})", lock_name(key)),
                    (Some(t), Some(e), None) => format!("{t}/{e}"),
                    _ => "CPU (no wait event)".to_string(),
                };
                let key = match r.state.as_deref() {
                    Some("active") | None => what,
                    Some(state) => format!("{what} [{state}]"),
                };
                *counts.entry(key).or_insert(0) += 1;
            }
        }
        server::pause(SAMPLE_EVERY);
    }
    counts
}

/// The project's name for an advisory lock key.
fn lock_name(key: i64) -> String {
    use portcullis::db::{LOCK_AUDIT, LOCK_MIGRATIONS, LOCK_SIGNING_KEYS};
    match key {
        LOCK_AUDIT => "LOCK_AUDIT, the audit chain".into(),
        LOCK_SIGNING_KEYS => "LOCK_SIGNING_KEYS".into(),
        LOCK_MIGRATIONS => "LOCK_MIGRATIONS".into(),
        other => format!("key {other}"),
    }
}

fn print_waits(label: &str, counts: &BTreeMap<String, usize>) {
    let total: usize = counts.values().sum();
    let mut by_count: Vec<(&String, &usize)> = counts.iter().collect();
    by_count.sort_by(|a, b| b.1.cmp(a.1));
    let parts: Vec<String> = by_count
        .iter()
        .take(8)
        .map(|(k, n)| format!("{k} {n} ({:.0}%)", **n as f64 * 100.0 / total.max(1) as f64))
        .collect();
    println!(
        "pg_stat_activity, {label}: {total} busy-backend samples every {} ms: {}",
        SAMPLE_EVERY.as_millis(),
        if parts.is_empty() {
            "none".to_string()
        } else {
            parts.join(", ")
        }
    );
}
