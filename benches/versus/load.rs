//! The load: `clients` concurrent clients (tasks on the multi-threaded runtime, each with its
//! own HTTP client and so its own kept-alive connection), each sending a bounded number of
//! requests one after another. The same request shapes go to both servers, and every answer
//! is checked.

use serde_json::{Map, Value};
use std::time::Instant;

use crate::procfs;

pub const CLIENT_ID: &str = "bench";
/// The longest any one request may take.
const REQUEST_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);
pub const CLIENT_SECRET: &str = "secret";

/// One measurement: its name, how many operations, their latencies (ms), the wall-clock
/// seconds from the first start to the last end, and the CPU time the server and the load
/// generator spent meanwhile.
pub struct Measured {
    pub name: String,
    pub latencies: Vec<f64>,
    pub seconds: f64,
    pub server_cpu: f64,
    pub load_cpu: f64,
    /// How busy the servers' CPU was, whoever used it (when the servers are pinned).
    pub server_cpu_busy: Option<f64>,
}

impl Measured {
    pub fn ops_per_second(&self) -> f64 {
        self.latencies.len() as f64 / self.seconds
    }

    /// The `q` quantile (0..=1) of the latencies, as `support::report` computes it.
    pub fn quantile(&self, q: f64) -> f64 {
        let mut l = self.latencies.clone();
        l.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
        l[((l.len() as f64 - 1.0) * q) as usize]
    }
}

/// Per client: a refresh token chain and the access token its last refresh gave.
#[derive(Clone)]
pub struct Chain {
    pub refresh: String,
    pub access: String,
}

pub struct Load {
    pub clients: usize,
    pub per_client: usize,
    pub warmup: usize,
    /// The servers' processes, whose CPU time is measured.
    pub server_pids: Vec<u32>,
    /// The CPU the servers are pinned to.
    pub server_cpu: Option<usize>,
}

type Json = Map<String, Value>;

async fn json(r: reqwest::Response, what: &str) -> Json {
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "{what}: {status} {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {text}"))
}

fn field<'a>(body: &'a Json, name: &str) -> &'a str {
    body.get(name).and_then(Value::as_str).unwrap_or_default()
}

fn credentials(mut form: Vec<(&'static str, String)>) -> Vec<(&'static str, String)> {
    form.push(("client_id", CLIENT_ID.into()));
    form.push(("client_secret", CLIENT_SECRET.into()));
    form
}

/// `POST /token` with `grant_type=client_credentials&scope=api`: an access token.
pub async fn client_credentials(http: reqwest::Client, base: String) -> String {
    let form = credentials(vec![
        ("grant_type", "client_credentials".into()),
        ("scope", "api".into()),
    ]);
    let r = http.post(format!("{base}/token")).form(&form).send().await;
    let body = json(r.expect("token request"), "client_credentials").await;
    assert!(!field(&body, "access_token").is_empty(), "{body:?}");
    assert!(
        field(&body, "token_type").eq_ignore_ascii_case("bearer"),
        "{body:?}"
    );
    base
}

/// `POST /token` with `grant_type=refresh_token`: a rotated refresh token, an access token
/// and an ID token (a compact JWS).
pub async fn refresh(http: reqwest::Client, (base, chain): (String, Chain)) -> (String, Chain) {
    let form = credentials(vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", chain.refresh.clone()),
    ]);
    let r = http.post(format!("{base}/token")).form(&form).send().await;
    let body = json(r.expect("token request"), "refresh_token").await;
    let parts = field(&body, "id_token")
        .split('.')
        .filter(|p| !p.is_empty())
        .count();
    assert_eq!(
        parts, 3,
        "every refresh answer carries an ID token: {body:?}"
    );
    let next = field(&body, "refresh_token");
    assert!(
        !next.is_empty() && next != chain.refresh,
        "a new refresh token: {body:?}"
    );
    let access = field(&body, "access_token");
    assert!(!access.is_empty(), "{body:?}");
    let chain = Chain {
        refresh: next.to_string(),
        access: access.to_string(),
    };
    (base, chain)
}

/// `POST /introspect` of the client's access token: active.
pub async fn introspect(http: reqwest::Client, (base, chain): (String, Chain)) -> (String, Chain) {
    let form = credentials(vec![
        ("token", chain.access.clone()),
        ("token_type_hint", "access_token".into()),
    ]);
    let r = http
        .post(format!("{base}/introspect"))
        .form(&form)
        .send()
        .await;
    let body = json(r.expect("introspection request"), "introspect").await;
    assert_eq!(body.get("active"), Some(&Value::Bool(true)), "{body:?}");
    (base, chain)
}

/// `GET /userinfo` with the access token as bearer: the user's `sub`.
pub async fn userinfo(http: reqwest::Client, (base, chain): (String, Chain)) -> (String, Chain) {
    let r = http
        .get(format!("{base}/userinfo"))
        .bearer_auth(&chain.access)
        .send()
        .await;
    let body = json(r.expect("userinfo request"), "userinfo").await;
    assert!(!field(&body, "sub").is_empty(), "{body:?}");
    (base, chain)
}

impl Load {
    /// Runs `round` on every client state `warmup` times untimed, then `per_client` times
    /// timed; returns the measurement and the states.
    pub async fn run<S, F, Fut>(&self, name: &str, states: Vec<S>, round: F) -> (Measured, Vec<S>)
    where
        S: Send + 'static,
        F: Fn(reqwest::Client, S) -> Fut + Copy + Send + Sync + 'static,
        Fut: std::future::Future<Output = S> + Send,
    {
        assert_eq!(states.len(), self.clients);
        let (per_client, warmup) = (self.per_client, self.warmup);
        let servers: Vec<String> = self.server_pids.iter().map(u32::to_string).collect();
        let server_cpu = || servers.iter().map(|p| procfs::cpu_ns(p)).sum::<u64>();
        // The warm-up: each client opens its connection and does `warmup` rounds, untimed.
        let warming: Vec<_> = states
            .into_iter()
            .map(|mut state| {
                tokio::spawn(async move {
                    let http = reqwest::Client::builder()
                        .timeout(REQUEST_LIMIT)
                        .build()
                        .expect("an HTTP client");
                    for _ in 0..warmup {
                        state = round(http.clone(), state).await;
                    }
                    (http, state)
                })
            })
            .collect();
        let mut warm = Vec::with_capacity(self.clients);
        for t in warming {
            warm.push(t.await.expect("a client's warm-up"));
        }
        // Timed from here: the same clients on the same connections.
        let busy_cpu = || self.server_cpu.and_then(procfs::cpu_busy_seconds);
        let (server0, load0, cpu0) = (server_cpu(), procfs::cpu_ns("self"), busy_cpu());
        let started = Instant::now();
        let tasks: Vec<_> = warm
            .into_iter()
            .map(|(http, mut state)| {
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(per_client);
                    for _ in 0..per_client {
                        let t = Instant::now();
                        state = round(http.clone(), state).await;
                        lat.push(t.elapsed().as_secs_f64() * 1000.0);
                    }
                    (lat, state)
                })
            })
            .collect();
        let mut latencies = Vec::with_capacity(self.clients * per_client);
        let mut states = Vec::with_capacity(self.clients);
        for t in tasks {
            let (lat, state) = t.await.expect("a client's timed requests");
            latencies.extend(lat);
            states.push(state);
        }
        let seconds = started.elapsed().as_secs_f64();
        let busy = |before: u64, after: u64| (after.saturating_sub(before)) as f64 / 1e9 / seconds;
        let measured = Measured {
            name: name.to_string(),
            latencies,
            seconds,
            server_cpu: busy(server0, server_cpu()),
            load_cpu: busy(load0, procfs::cpu_ns("self")),
            server_cpu_busy: cpu0.zip(busy_cpu()).map(|(a, b)| (b - a) / seconds),
        };
        (measured, states)
    }
}
