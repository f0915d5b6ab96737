//! The test application: a real server on a random loopback port over a fresh database.

#![allow(dead_code)]

pub mod browser;
pub mod mfa;
pub mod rp;
pub mod webdriver;

use chrono::Duration;
use diesel::{Connection, RunQueryDsl};
use std::net::TcpListener;

use portcullis::app::AppState;
use portcullis::clock::Clock;
use portcullis::config::{Config, Lifetimes};
use portcullis::db::{self, DbConn};
use portcullis::keys::secrets::{random_id, random_token, sha256_hex};
use portcullis::sign_in::password;
use portcullis::store::{clients, users};
use portcullis::web::server::build_server;

pub const PASSWORD: &str = "correct horse battery staple";

/// Announces a skipped test on the real stderr (past the test harness's output capture), so
/// a run without PostgreSQL or Chromium says so loudly.
pub fn skip(message: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {message}");
}

/// A test whose outside part (Chromium, the openssl command, …) is missing here: it fails when
/// the environment variable `require` is set (CI sets it: nothing may pass there by being
/// skipped), else it says SKIPPED loudly. The caller returns right after.
pub fn unavailable(require: &str, message: &str) {
    if std::env::var(require).is_ok() {
        panic!("{message}, and {require} says this test is required here");
    }
    skip(message);
}

/// Installs the process-wide TLS provider that reqwest (built without its own) expects.
pub fn init() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// A fresh PostgreSQL database, dropped when the test ends.
pub struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if let Ok(mut c) = diesel::pg::PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut c);
        }
    }
}

/// The PostgreSQL server tests create their databases on, from
/// `PORTCULLIS_TEST_DATABASE_URL`. On loopback, TLS is switched off unless the URL says
/// otherwise: libpq's OpenSSL state is torn down at process exit while server threads of
/// finished tests may still be talking to the database, which can crash the test binary
/// after every test has passed.
pub fn admin_database_url() -> Option<String> {
    let raw = std::env::var("PORTCULLIS_TEST_DATABASE_URL").ok()?;
    let Ok(mut url) = url::Url::parse(&raw) else {
        return Some(raw);
    };
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if loopback && !url.query_pairs().any(|(k, _)| k == "sslmode") {
        url.query_pairs_mut().append_pair("sslmode", "disable");
    }
    Some(url.to_string())
}

/// A new, empty database on the suite's backend: a PostgreSQL database dropped with the
/// returned guard, or a SQLite file in `dir`.
pub fn fresh_database(dir: &std::path::Path) -> (String, Option<PgDatabase>) {
    let Some(admin_url) = admin_database_url() else {
        return (
            format!("sqlite://{}", dir.join("portcullis.db").display()),
            None,
        );
    };
    let name = format!("portcullis_test_{}", random_id());
    let mut c = diesel::pg::PgConnection::establish(&admin_url)
        .expect("PORTCULLIS_TEST_DATABASE_URL must point at a reachable PostgreSQL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .expect("create test database");
    let mut url = url::Url::parse(&admin_url).expect("postgres URL");
    url.set_path(&name);
    (url.to_string(), Some(PgDatabase { admin_url, name }))
}

/// Where the test database lives, announced once per run.
pub fn backend() -> &'static str {
    if std::env::var("PORTCULLIS_TEST_DATABASE_URL").is_ok() {
        "postgres"
    } else {
        "sqlite"
    }
}

pub struct TestApp {
    pub base: String,
    pub issuer: String,
    pub clock: Clock,
    pub database_url: String,
    pub state: actix_web::web::Data<AppState>,
    pub dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
    server: actix_web::dev::ServerHandle,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let h = self.server.clone();
        std::mem::drop(h.stop(false));
    }
}

pub struct Options {
    /// `localhost` (browser tests, WebAuthn) or `127.0.0.1`.
    pub host: &'static str,
    pub lifetimes: Lifetimes,
    /// Share another app's database (a second instance).
    pub database_url: Option<String>,
    /// Run the back-channel delivery loop (off: the test drives `deliver_due` itself).
    pub delivery_loop: bool,
    /// Adjusts the configuration before the server starts.
    pub configure: Box<dyn Fn(&mut Config) + Send>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            host: "127.0.0.1",
            lifetimes: Lifetimes::default(),
            database_url: None,
            delivery_loop: true,
            configure: Box::new(|_| {}),
        }
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(Options::default()).await
    }

    pub async fn spawn_with(opts: Options) -> TestApp {
        init();
        static ANNOUNCE: std::sync::Once = std::sync::Once::new();
        ANNOUNCE.call_once(|| {
            if backend() == "sqlite" {
                skip("this run uses SQLite only; set PORTCULLIS_TEST_DATABASE_URL=postgres://… to run the suite on PostgreSQL too");
            }
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let (database_url, pg) = match &opts.database_url {
            Some(u) => (u.clone(), None),
            None => fresh_database(dir.path()),
        };
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let issuer = format!("http://{}:{port}", opts.host);
        let mut config = Config::build(
            format!("127.0.0.1:{port}"),
            &issuer,
            &database_url,
            opts.lifetimes,
            4,
        )
        .expect("config");
        (opts.configure)(&mut config);
        let clock = Clock::fixed_at_now();
        let state = actix_web::web::Data::new(AppState::new(config, clock.clone()).expect("state"));
        let server = build_server(listener, state.clone()).expect("server");
        let handle = server.handle();
        tokio::spawn(server);
        if opts.delivery_loop {
            tokio::spawn(portcullis::jobs::delivery_loop(state.clone()));
        }
        TestApp {
            base: format!("http://127.0.0.1:{port}"),
            issuer,
            clock,
            database_url,
            state,
            dir,
            _pg: pg,
            server: handle,
        }
    }

    pub fn conn(&self) -> db::PooledConn {
        self.state.pool.get().expect("connection")
    }

    /// The whole audit trail, oldest first, after chaining every committed entry (on
    /// PostgreSQL entries are linked shortly after they commit).
    pub fn trail(&self) -> Vec<portcullis::store::audit_log::Entry> {
        let mut c = self.conn();
        portcullis::audit::link(&mut c, true).expect("linking the trail");
        portcullis::store::audit_log::page(&mut c, 0, i64::MAX).expect("the trail")
    }

    pub fn advance(&self, seconds: i64) {
        self.clock.advance(Duration::seconds(seconds));
    }

    /// Creates a user with `PASSWORD`; returns its id (the `sub`).
    pub fn add_user(&self, username: &str, email: Option<&str>, name: Option<&str>) -> String {
        let now = self.clock.naive();
        let id = random_id();
        let u = users::User {
            id: id.clone(),
            username: username.into(),
            email: email.map(str::to_string),
            name: name.map(str::to_string),
            groups: "[\"staff\"]".into(),
            roles: "[]".into(),
            password_hash: Some(password::hash(PASSWORD).expect("hash")),
            disabled: false,
            created_at: now,
            updated_at: now,
            email_verified: false,
        };
        users::insert(&mut self.conn(), &u).expect("insert user");
        id
    }

    /// Registers a client; returns its secret (None for public clients).
    pub fn add_client(&self, spec: ClientSpec) -> Option<String> {
        let secret = (!spec.public).then(random_token);
        let c = clients::Client {
            client_id: spec.id.into(),
            name: spec.name.into(),
            secret_hash: secret.as_deref().map(sha256_hex),
            public: spec.public,
            redirect_uris: serde_json::to_string(&spec.redirect_uris).expect("json"),
            post_logout_redirect_uris: serde_json::to_string(&spec.post_logout_redirect_uris)
                .expect("json"),
            scopes: spec.scopes.into(),
            grant_types: serde_json::to_string(&spec.grant_types).expect("json"),
            auth_method: spec
                .auth_method
                .unwrap_or(if spec.public {
                    "none"
                } else {
                    "client_secret_basic"
                })
                .into(),
            skip_consent: spec.skip_consent,
            require_mfa: spec.require_mfa,
            backchannel_logout_uri: spec.backchannel_logout_uri.clone(),
            id_token_alg: "RS256".into(),
            created_at: self.clock.naive(),
            web_origins: serde_json::to_string(&spec.web_origins).expect("json"),
            previous_secret_hash: None,
            previous_secret_expires_at: None,
            requests_per_minute: None,
            updated_at: None,
        };
        clients::insert(&mut self.conn(), &c).expect("insert client");
        secret
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Runs raw SQL against the app's database (for checks the API cannot make).
    pub fn sql(&self, q: &str) {
        let mut c: db::PooledConn = self.conn();
        let conn: &mut DbConn = &mut c;
        diesel::sql_query(q).execute(conn).expect("sql");
    }
}

pub struct ClientSpec {
    pub id: &'static str,
    pub name: &'static str,
    pub public: bool,
    pub redirect_uris: Vec<String>,
    pub scopes: &'static str,
    pub grant_types: Vec<&'static str>,
    pub skip_consent: bool,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub require_mfa: bool,
    /// The registered `token_endpoint_auth_method`; by default `client_secret_basic`, or
    /// `none` for public clients.
    pub auth_method: Option<&'static str>,
    /// Origins whose pages may call the token-side endpoints (CORS).
    pub web_origins: Vec<String>,
}

pub const REDIRECT: &str = "http://localhost:7777/callback";

impl ClientSpec {
    pub fn confidential(id: &'static str) -> ClientSpec {
        ClientSpec {
            id,
            name: "Example App",
            public: false,
            redirect_uris: vec![REDIRECT.into()],
            scopes: "openid profile email groups offline_access",
            grant_types: vec!["authorization_code", "refresh_token"],
            skip_consent: false,
            post_logout_redirect_uris: vec![],
            backchannel_logout_uri: None,
            require_mfa: false,
            auth_method: None,
            web_origins: vec![],
        }
    }
    pub fn public(id: &'static str) -> ClientSpec {
        ClientSpec {
            public: true,
            ..ClientSpec::confidential(id)
        }
    }
}

/// Extracts the value of a hidden input from a page.
/// Trusts the loopback peer as a proxy, so tests can send `X-Forwarded-For` as attackers on
/// other addresses would appear.
pub fn behind_proxy(config: &mut Config) {
    config.trusted_proxies = vec!["127.0.0.1".parse().expect("address")];
}

/// The `Retry-After` seconds of an answer, if it has them.
pub fn retry_after(r: &reqwest::Response) -> Option<i64> {
    r.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&#34;", "\"")
            .replace("&amp;", "&"),
    )
}

/// The query parameters of a URL, as pairs.
pub fn query_of(location: &str) -> Vec<(String, String)> {
    url::Url::parse(location)
        .map(|u| u.query_pairs().into_owned().collect())
        .unwrap_or_default()
}

pub fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}
