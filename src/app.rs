//! Application state, the use-case runners and the server (routes in `web/routes.rs`,
//! background work in `jobs.rs`).

use actix_web::dev::Service;
use actix_web::{App, HttpServer, web};
use chrono::NaiveDateTime;
use std::net::TcpListener;
use std::sync::Arc;

use crate::clock::Clock;
use crate::config::Config;
use crate::context::{Ctx, RequestMeta};
use crate::db::{self, DbConn, Pool};
use crate::error::InternalError;
use crate::keys::signing::{self, KeySet};
use crate::oidc::discovery;
use crate::sign_in::password;

use crate::web::errors::WebError;

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
    /// Bounds concurrent Argon2 verifications (about one per core).
    pub argon2_permits: Arc<tokio::sync::Semaphore>,
    /// Request rate per client at the token-side endpoints.
    pub client_limiter: Arc<crate::web::rate_limit::ClientLimiter>,
    /// Request rate per client address.
    pub address_limiter: Arc<crate::web::rate_limit::AddressLimiter>,
    /// Origin of work that no request caused (background jobs, CLI).
    pub no_meta: RequestMeta,
    pub metrics: crate::metrics::Metrics,
    /// From the configuration, or a random one for this process when none was configured
    /// (embedding and tests; `serve` always has one).
    pub master: crate::keys::master::MasterKey,
    /// Passkey ceremonies for the issuer's host (shared by all workers).
    pub webauthn: Option<Arc<webauthn_rs::Webauthn>>,
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
        drop(conn);
        // reqwest uses the process-wide rustls provider; ring is the one already in the tree.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(5))
            .user_agent(concat!("portcullis/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| InternalError::new(format!("HTTP client: {e}")))?;
        let client_limiter = Arc::new(crate::web::rate_limit::client_limiter());
        let address_limiter = Arc::new(crate::web::rate_limit::address_limiter(&config.rate_limit));
        let webauthn = crate::sign_in::passkeys::relying_party(&config.issuer).map(Arc::new);
        Ok(AppState {
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

/// One of the few Argon2 verifications allowed at a time (waits for its turn).
pub async fn argon2_permit(
    state: &web_data::Data,
) -> Result<tokio::sync::OwnedSemaphorePermit, WebError> {
    state
        .argon2_permits
        .clone()
        .acquire_owned()
        .await
        .map_err(|e| WebError::Internal(InternalError::new(e.to_string())))
}

/// Runs a use case on the blocking pool inside one database transaction.
pub async fn run<T, F>(state: &web_data::Data, f: F) -> Result<T, WebError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, Ctx<'_>, NaiveDateTime) -> Result<T, InternalError> + Send + 'static,
{
    run_as(state, RequestMeta::default(), f).await
}

/// Like `run`, with the request's origin recorded by the audit trail.
pub async fn run_as<T, F>(state: &web_data::Data, meta: RequestMeta, f: F) -> Result<T, WebError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, Ctx<'_>, NaiveDateTime) -> Result<T, InternalError> + Send + 'static,
{
    run_conn_as(state, meta, |conn, ctx, now| {
        db::transaction(conn, |c| f(c, ctx, now))
    })
    .await
}

/// Runs blocking work that manages its own transactions (e.g. Argon2 between two of them).
pub async fn run_conn<T, F>(state: &web_data::Data, f: F) -> Result<T, WebError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, Ctx<'_>, NaiveDateTime) -> Result<T, InternalError> + Send + 'static,
{
    run_conn_as(state, RequestMeta::default(), f).await
}

/// `run_conn` with the request's origin.
pub async fn run_conn_as<T, F>(
    state: &web_data::Data,
    meta: RequestMeta,
    f: F,
) -> Result<T, WebError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConn, Ctx<'_>, NaiveDateTime) -> Result<T, InternalError> + Send + 'static,
{
    let st = state.clone();
    actix_web::web::block(move || {
        let now = st.clock.naive();
        let keys = st.published().keys;
        // The connection lives inside the guarded closure: a panic drops it while unwinding,
        // so the pool closes it (rolling back its transaction) instead of reusing it.
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let mut conn = st.pool.get()?;
            f(&mut conn, st.ctx_with(&keys, &meta), now)
        }))
        .unwrap_or_else(|panic| {
            st.metrics.use_case_panics.inc();
            Err(InternalError::new(format!(
                "a use case panicked: {}",
                panic_message(panic.as_ref())
            )))
        })
    })
    .await
    .map_err(|e| WebError::Internal(InternalError::new(format!("blocking task: {e}"))))?
    .map_err(WebError::Internal)
}

/// The message a panic carried, when it was a string.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

pub mod web_data {
    pub type Data = actix_web::web::Data<super::AppState>;
}

pub use crate::jobs::{deliver_due, delivery_loop, rotate_keys};
pub use crate::web::routes::{limited_routes, open_routes};

/// Builds the HTTP server on an already bound listener.
pub fn build_server(
    listener: TcpListener,
    state: web_data::Data,
) -> std::io::Result<actix_web::dev::Server> {
    build(listener, state, None)
}

/// Builds the HTTPS server on an already bound listener.
pub fn build_server_tls(
    listener: TcpListener,
    state: web_data::Data,
    tls: rustls::ServerConfig,
) -> std::io::Result<actix_web::dev::Server> {
    build(listener, state, Some(tls))
}

fn build(
    listener: TcpListener,
    state: web_data::Data,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<actix_web::dev::Server> {
    let hsts = !state.config.dev_mode;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(actix_web::web::FormConfig::default().limit(64 * 1024))
            .app_data(actix_web::web::PayloadConfig::new(64 * 1024))
            .wrap_fn(|req, srv| {
                let pending = crate::web::cors::pending(req.request());
                let fut = srv.call(req);
                async move { Ok(crate::web::cors::finish(pending, fut.await?).await) }
            })
            .wrap_fn(move |req, srv| {
                use actix_web::HttpMessage;
                use tracing::Instrument;
                let started = std::time::Instant::now();
                let route = req
                    .match_pattern()
                    .unwrap_or_else(|| "unmatched".to_string());
                let method = req.method().to_string();
                let st = req.app_data::<web_data::Data>().cloned();
                let request_id = crate::keys::secrets::random_id()[..16].to_string();
                req.extensions_mut()
                    .insert(crate::web::extractors::RequestId(request_id.clone()));
                // Only the route pattern is logged, never the path or query (codes, tokens).
                let span = tracing::info_span!(
                    "request",
                    request_id = %request_id,
                    method = %method,
                    route = %route
                );
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    crate::web::security_headers::apply(&mut res, hsts);
                    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&request_id) {
                        res.headers_mut().insert(
                            actix_web::http::header::HeaderName::from_static("x-request-id"),
                            v,
                        );
                    }
                    tracing::info!(
                        status = res.status().as_u16(),
                        ms = started.elapsed().as_millis() as u64,
                        "handled"
                    );
                    if let Some(st) = st {
                        st.metrics
                            .requests
                            .get_or_create(&crate::metrics::RequestLabels {
                                route: route.clone(),
                                method,
                                status: res.status().as_u16(),
                            })
                            .inc();
                        st.metrics
                            .latency
                            .get_or_create(&crate::metrics::RouteLabels { route })
                            .observe(started.elapsed().as_secs_f64());
                    }
                    Ok(res)
                }
                .instrument(span)
            })
            .configure(open_routes)
            .service(
                web::scope("")
                    .wrap_fn(|req, srv| {
                        use futures_util::future::{Either, ready};
                        let st = req.app_data::<web_data::Data>().cloned();
                        let over = st.and_then(|st| {
                            crate::web::rate_limit::address_over_limit(
                                &st.address_limiter,
                                &st.config.rate_limit,
                                req.request(),
                                &st.config.trusted_proxies,
                            )
                        });
                        match over {
                            Some(wait) => Either::Left(ready(Ok(req
                                .into_response(crate::web::rate_limit::address_too_many(wait))
                                .map_into_boxed_body()))),
                            None => {
                                let fut = srv.call(req);
                                Either::Right(
                                    async move { fut.await.map(|r| r.map_into_boxed_body()) },
                                )
                            }
                        }
                    })
                    .configure(limited_routes),
            )
            .default_service(actix_web::web::to(crate::web::pages::home::not_found))
    })
    .workers(workers)
    .client_request_timeout(std::time::Duration::from_secs(10))
    .client_disconnect_timeout(std::time::Duration::from_secs(2))
    .keep_alive(std::time::Duration::from_secs(30))
    .shutdown_timeout(10);
    let server = match tls {
        Some(cfg) => server.listen_rustls_0_23(listener, cfg)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}
