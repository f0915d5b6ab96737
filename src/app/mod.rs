//! Application state shared by the server, the background jobs and the CLI, and the runner
//! that executes use cases on it (`runner.rs`). Nothing here knows HTTP: the server is wired
//! in `web/server.rs`, background work lives in `jobs.rs`.

use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::context::{Ctx, RequestMeta};
use crate::db::{self, DbConn, Pool};
use crate::error::InternalError;
use crate::keys::signing::{self, KeySet};
use crate::oidc::discovery;
use crate::sign_in::password;

/// What rotation changes together: the keys and the discovery document listing their algorithms.
#[derive(Clone, Debug)]
pub struct Published {
    pub keys: KeySet,
    /// The discovery document, serialized once per key change.
    pub discovery_json: Arc<String>,
}

impl Published {
    fn build(config: &Config, keys: KeySet) -> Result<Published, InternalError> {
        let discovery_json = Arc::new(serde_json::to_string(&discovery::metadata(
            config, &keys.algs,
        ))?);
        Ok(Published {
            keys,
            discovery_json,
        })
    }
}

/// Everything handlers share. Built once.
pub struct AppState {
    pub config: Config,
    pub pool: Pool,
    pub clock: Clock,
    /// The signing keys and the documents that depend on them, swapped whole on rotation.
    published: std::sync::RwLock<Published>,
    pub dummy_hash: String,
    /// Outgoing HTTP (back-channel logout): no redirects, short timeouts.
    pub http: reqwest::Client,
    /// Wakes the delivery loop when work was queued.
    pub wakeup: Arc<tokio::sync::Notify>,
    /// One per pooled connection: a use case waits for its turn here, as a task, before it
    /// takes a thread of the blocking pool (so no more threads block on the database than
    /// there are connections for them).
    pub db_permits: Arc<tokio::sync::Semaphore>,
    /// Bounds concurrent Argon2 verifications (about one per core).
    pub argon2_permits: Arc<tokio::sync::Semaphore>,
    /// Request rate per client at the token-side endpoints.
    pub client_limiter: Arc<crate::rate_limit::ClientLimiter>,
    /// Request rate per client address.
    pub address_limiter: Arc<crate::rate_limit::AddressLimiter>,
    /// This instance among those serving the database: the limiters enforce its share.
    pub share: crate::rate_limit::Share,
    /// Origin of work that no request caused (background jobs, CLI).
    pub no_meta: RequestMeta,
    pub metrics: crate::metrics::Metrics,
    /// From the configuration, or a random one for this process when none was configured
    /// (embedding and tests; `serve` always has one).
    pub master: crate::keys::master::MasterKey,
    /// Passkey ceremonies for the issuer's host (shared by all workers).
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
    /// Write transactions on SQLite take turns here (`db::writer`); none on PostgreSQL.
    pub writer: Option<db::writer::Gate>,
    /// When this instance last compared its keys with the database (`refresh_keys`).
    keys_checked_at: std::sync::Mutex<chrono::NaiveDateTime>,
}

impl AppState {
    /// Opens the database (migrating it), ensures a signing key and loads it.
    pub fn new(config: Config, clock: Clock) -> Result<AppState, InternalError> {
        let pool = db::connect(&config.database_url, config.db_pool_size)?;
        let mut conn = pool.get()?;
        let now = clock.naive();
        let master = config
            .master_key
            .as_ref()
            .map(|(k, _)| k.clone())
            .unwrap_or_else(crate::keys::master::MasterKey::random);
        db::transaction(&mut conn, |c| {
            signing::ensure_signing_key(c, &master, now).map(|_| ())
        })?;
        let keys = signing::load(&mut conn, &master, config.previous_master_key.as_ref())?;
        let published = Published::build(&config, keys)?;
        let share = crate::rate_limit::Share::default();
        share.heartbeat(&mut conn, now)?;
        drop(conn);
        // reqwest uses the process-wide rustls provider; ring is the one already in the tree.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(5))
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| InternalError::with("building the HTTP client", e))?;
        let client_limiter = Arc::new(crate::rate_limit::client_limiter());
        let address_limiter = Arc::new(crate::rate_limit::address_limiter(&config.rate_limit));
        let webauthn = crate::sign_in::passkeys::relying_party(&config.issuer).map(Arc::new);
        let writer = match &config.database_url {
            db::DbUrl::Sqlite(path) => Some(db::writer::Gate::for_file(path)),
            db::DbUrl::Postgres(_) => None,
        };
        let db_permits = Arc::new(tokio::sync::Semaphore::new(
            usize::try_from(pool.max_size()).unwrap_or(1).max(1),
        ));
        Ok(AppState {
            db_permits,
            share,
            writer,
            keys_checked_at: std::sync::Mutex::new(now),
            webauthn,
            no_meta: RequestMeta::default(),
            metrics: crate::metrics::Metrics::new(),
            master,
            client_limiter,
            address_limiter,
            config,
            pool,
            clock,
            published: std::sync::RwLock::new(published),
            dummy_hash: password::dummy_hash()?,
            http,
            wakeup: Arc::new(tokio::sync::Notify::new()),
            argon2_permits: Arc::new(tokio::sync::Semaphore::new(
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2),
            )),
        })
    }

    /// The keys and documents in force now.
    pub fn published(&self) -> Published {
        match self.published.read() {
            Ok(p) => p.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Rereads the keys from the database (after a rotation here or on another instance).
    pub fn reload_keys(&self, conn: &mut DbConn) -> Result<(), InternalError> {
        let keys = signing::load(conn, &self.master, self.config.previous_master_key.as_ref())?;
        let fresh = Published::build(&self.config, keys)?;
        match self.published.write() {
            Ok(mut p) => *p = fresh,
            Err(poisoned) => *poisoned.into_inner() = fresh,
        }
        Ok(())
    }

    /// True when the keys were last compared with the database a second or more ago (by the
    /// state's clock); marks them as compared now.
    pub fn keys_due_for_check(&self) -> bool {
        let now = self.clock.naive();
        let mut at = match self.keys_checked_at.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        if now - *at < chrono::Duration::seconds(1) {
            return false;
        }
        *at = now;
        true
    }

    /// Rereads the keys when another instance changed them (a cheap look at each key's id and
    /// state first). True when they changed.
    pub fn refresh_keys(&self, conn: &mut DbConn) -> Result<bool, InternalError> {
        let rows = crate::store::signing_keys::states(conn)?;
        let now = signing::fingerprint_of(rows.iter().map(|(k, s)| (k.as_str(), s.as_str())));
        if now == self.published().keys.fingerprint {
            return Ok(false);
        }
        self.reload_keys(conn)?;
        Ok(true)
    }

    /// The context of a use case, with the keys it was handed.
    pub fn ctx_with<'a>(&'a self, keys: &'a KeySet, meta: &'a RequestMeta) -> Ctx<'a> {
        Ctx {
            config: &self.config,
            keys,
            dummy_hash: &self.dummy_hash,
            meta,
            metrics: &self.metrics,
            master: &self.master,
            webauthn: self.webauthn.as_deref(),
        }
    }
}

mod runner;

pub use runner::{argon2_permit, execute, run, run_as, run_conn, run_conn_as};

pub mod web_data {
    pub type Data = actix_web::web::Data<super::AppState>;
}
