//! In-process fixtures for the domain's unit tests: an in-memory SQLite database with every
//! migration applied, a fixed starting time, and the rows most decisions start from.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::NaiveDateTime;

use crate::config::Config;
use crate::db::DbConn;

/// A fresh in-memory database with the whole schema.
pub fn db() -> DbConn {
    use diesel::Connection;
    let mut conn = DbConn::Sqlite(diesel::SqliteConnection::establish(":memory:").unwrap());
    crate::db::run_migrations(&mut conn).unwrap();
    conn
}

/// A fixed moment to count from (tests advance it by adding durations).
pub fn t0() -> NaiveDateTime {
    chrono::DateTime::from_timestamp(1_790_000_000, 0)
        .unwrap()
        .naive_utc()
}

/// The default configuration (nothing is read from the environment or a file).
pub fn config() -> Config {
    Config::build(
        "127.0.0.1:8080".into(),
        "http://localhost:8080",
        "sqlite://unused.db",
        crate::config::Lifetimes::default(),
        1,
    )
    .unwrap()
}

/// Adds an enabled user without a password; returns its id.
pub fn user(conn: &mut DbConn, username: &str, now: NaiveDateTime) -> String {
    let id = crate::keys::secrets::random_id();
    crate::store::users::insert(
        conn,
        &crate::store::users::User {
            id: id.clone(),
            username: username.into(),
            email: None,
            name: None,
            groups: "[]".into(),
            roles: "[]".into(),
            password_hash: None,
            disabled: false,
            created_at: now,
            updated_at: now,
            email_verified: false,
        },
    )
    .unwrap();
    id
}

/// Signing keys of every algorithm, made once per test run (RSA key generation is slow) and
/// valid in any database.
pub fn keys() -> crate::keys::signing::KeySet {
    static KEYS: std::sync::OnceLock<crate::keys::signing::KeySet> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut conn = db();
        let master = master();
        crate::keys::signing::ensure_signing_key(&mut conn, &master, t0()).unwrap();
        crate::keys::signing::load(&mut conn, &master, None).unwrap()
    })
    .clone()
}

/// The master key of the test runs.
pub fn master() -> crate::keys::master::MasterKey {
    crate::keys::master::MasterKey::from_bytes([7; 32])
}

/// What a use case's context borrows: the default configuration, the test keys, no request
/// origin, fresh metrics.
pub struct Env {
    pub config: Config,
    pub keys: crate::keys::signing::KeySet,
    pub meta: crate::context::RequestMeta,
    pub metrics: crate::metrics::Metrics,
    pub master: crate::keys::master::MasterKey,
}

impl Env {
    pub fn new() -> Env {
        Env {
            config: config(),
            keys: keys(),
            meta: crate::context::RequestMeta::default(),
            metrics: crate::metrics::Metrics::new(),
            master: master(),
        }
    }

    /// The context of a use case. No Argon2 hash for unknown users: password checks do not
    /// belong on these paths.
    pub fn ctx(&self) -> crate::context::Ctx<'_> {
        crate::context::Ctx {
            config: &self.config,
            keys: &self.keys,
            dummy_hash: "",
            meta: &self.meta,
            metrics: &self.metrics,
            master: &self.master,
            webauthn: None,
        }
    }
}

/// A client row with nothing beyond `openid`: public, no secret, no redirect URI, no grant
/// type, no web origin. Tests set what they need (`Client { public: false, ..client("app") }`).
pub fn client(client_id: &str) -> crate::store::clients::Client {
    crate::store::clients::Client {
        client_id: client_id.into(),
        name: client_id.into(),
        secret_hash: None,
        public: true,
        redirect_uris: "[]".into(),
        post_logout_redirect_uris: "[]".into(),
        scopes: "openid".into(),
        grant_types: "[]".into(),
        auth_method: "none".into(),
        skip_consent: false,
        require_mfa: false,
        backchannel_logout_uri: None,
        id_token_alg: "RS256".into(),
        created_at: t0(),
        web_origins: "[]".into(),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        requests_per_minute: None,
        updated_at: None,
    }
}
