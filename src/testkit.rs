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

/// The redirect URI of the clients made here.
pub const REDIRECT_URI: &str = "https://app.example/cb";

/// The address requests of the fixture's context come from.
pub const IP: &str = "192.0.2.10";

/// A confidential client (secret "secret") allowed the code and refresh grants and the scopes
/// `openid profile email offline_access`, asking for consent, not yet stored.
pub fn client_row(client_id: &str, now: NaiveDateTime) -> crate::store::clients::Client {
    crate::store::clients::Client {
        client_id: client_id.into(),
        name: format!("App {client_id}"),
        secret_hash: Some(crate::keys::secrets::sha256_hex("secret")),
        public: false,
        redirect_uris: serde_json::json!([REDIRECT_URI]).to_string(),
        post_logout_redirect_uris: "[]".into(),
        scopes: "openid profile email offline_access".into(),
        grant_types: r#"["authorization_code","refresh_token"]"#.into(),
        auth_method: "client_secret_basic".into(),
        skip_consent: false,
        require_mfa: false,
        backchannel_logout_uri: None,
        id_token_alg: crate::keys::signing::RS256.into(),
        created_at: now,
        web_origins: "[]".into(),
        previous_secret_hash: None,
        previous_secret_expires_at: None,
        requests_per_minute: None,
        updated_at: None,
    }
}

/// Stores `client_row(client_id)`; returns it.
pub fn client(
    conn: &mut DbConn,
    client_id: &str,
    now: NaiveDateTime,
) -> crate::store::clients::Client {
    let row = client_row(client_id, now);
    crate::store::clients::insert(conn, &row).unwrap();
    row
}

/// The entries of `event` in the audit trail, oldest first.
pub fn audited(conn: &mut DbConn, event: &str) -> Vec<crate::store::audit_log::Entry> {
    let mut all = crate::store::audit_log::matching(
        conn,
        event,
        NaiveDateTime::MIN,
        &Default::default(),
        10_000,
    )
    .unwrap();
    all.reverse();
    all
}

/// One set of signing keys for the whole test run (generating RSA keys is slow).
pub fn keys() -> &'static crate::keys::signing::KeySet {
    static KEYS: std::sync::OnceLock<crate::keys::signing::KeySet> = std::sync::OnceLock::new();
    KEYS.get_or_init(|| {
        let mut conn = db();
        let master = crate::keys::master::MasterKey::from_bytes([1; 32]);
        crate::keys::signing::ensure_signing_key(&mut conn, &master, t0()).unwrap();
        crate::keys::signing::load(&mut conn, &master, None).unwrap()
    })
}

/// What a use case is handed besides the connection and the time, owned by the test so it
/// can change the configuration or the request's origin before building the context.
pub struct Env {
    pub config: Config,
    pub master: crate::keys::master::MasterKey,
    pub metrics: crate::metrics::Metrics,
    /// Requests come from `IP` unless a test says otherwise.
    pub meta: crate::context::RequestMeta,
}

impl Env {
    pub fn new() -> Env {
        Env {
            config: config(),
            master: crate::keys::master::MasterKey::from_bytes([1; 32]),
            metrics: crate::metrics::Metrics::new(),
            meta: crate::context::RequestMeta {
                ip: Some(IP.into()),
                user_agent: Some("test-agent".into()),
                request_id: None,
            },
        }
    }

    /// The context as the server builds it (`AppState::ctx_with`), without WebAuthn.
    pub fn ctx(&self) -> crate::context::Ctx<'_> {
        crate::context::Ctx {
            config: &self.config,
            keys: keys(),
            // No Argon2 on these paths: a password check against it simply fails.
            dummy_hash: "",
            meta: &self.meta,
            metrics: &self.metrics,
            master: &self.master,
            webauthn: None,
        }
    }
}

/// A client row with nothing beyond `openid`: public, no secret, no redirect URI, no grant
/// type, no web origin. Tests set what they need (`Client { public: false, ..public_client("app") }`).
pub fn public_client(client_id: &str) -> crate::store::clients::Client {
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
