//! `portcullis serve`: first-start bootstrap, then the HTTP server until SIGINT/SIGTERM.

use std::net::TcpListener;

use crate::app::AppState;
use crate::bootstrap::{self, Bootstrap};
use crate::cli::CliError;
use crate::clock::Clock;
use crate::config::Config;

pub fn serve(config: Config) -> Result<(), CliError> {
    init_tracing();
    if config.dev_mode {
        tracing::warn!(issuer = %config.issuer, "development mode: plain http on localhost, cookies without Secure");
    }
    match config.master_key.as_ref().map(|(_, s)| s) {
        Some(crate::keys::master::Source::Generated(path)) => tracing::warn!(
            path = %path,
            "generated a master key for development; set PORTCULLIS_MASTER_KEY or PORTCULLIS_MASTER_KEY_FILE in production and keep it away from the database"
        ),
        Some(crate::keys::master::Source::File(path)) => {
            tracing::info!(path = %path, "master key read from file")
        }
        _ => {}
    }
    // Held until the server stops: `restore` refuses while any server holds it.
    let _lock = lock_database(&config)?;
    let state = AppState::new(config, Clock::System)?;
    let mut conn = state
        .pool
        .get()
        .map_err(|e| CliError(format!("cannot open the database: {e}")))?;
    let given = match (
        std::env::var("PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD").ok(),
        std::env::var("PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD_FILE").ok(),
    ) {
        (Some(p), _) => Some(p),
        (None, Some(path)) => Some(
            std::fs::read_to_string(&path)
                .map_err(|e| {
                    CliError(format!(
                        "cannot read PORTCULLIS_BOOTSTRAP_ADMIN_PASSWORD_FILE {path}: {e}"
                    ))
                })?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        ),
        (None, None) => None,
    };
    match bootstrap::ensure_admin(
        &mut conn,
        &state.config.password,
        given,
        state.clock.naive(),
    )? {
        Bootstrap::Created {
            generated_password: Some(pw),
        } => announce_bootstrap_password(&pw)?,
        Bootstrap::Created { .. } => {
            tracing::info!("created the bootstrap user 'admin' with the configured password")
        }
        Bootstrap::NameTaken => tracing::warn!(
            "no user holds the admin role, and a user named 'admin' already exists; nothing was created"
        ),
        Bootstrap::NotNeeded => {}
    }
    let start_details = serde_json::json!({
        "issuer": state.config.issuer,
        "bind": state.config.bind,
        "database": if state.config.database_url.is_postgres() { "postgres" } else { "sqlite" },
        "dev_mode": state.config.dev_mode,
        "throttle": state.config.throttle.enabled,
        "rate_limit": state.config.rate_limit.enabled,
        "version": env!("CARGO_PKG_VERSION"),
    });
    crate::cli::tx(&mut conn, |c| {
        crate::cli::audit_change(c, "server.start", None, None, start_details)
    })?;
    drop(conn);
    let listener = TcpListener::bind(&state.config.bind)
        .map_err(|e| CliError(format!("cannot listen on {}: {e}", state.config.bind)))?;
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| state.config.bind.clone());
    tracing::info!(addr = %addr, issuer = %state.config.issuer, "listening");
    let tls = match state.config.tls.clone() {
        Some((cert, key)) => {
            let reloadable = std::sync::Arc::new(
                crate::web::tls::Reloadable::open(cert, key).map_err(CliError)?,
            );
            let config = crate::web::tls::server_config(reloadable.clone()).map_err(CliError)?;
            Some((reloadable, config))
        }
        None => None,
    };
    let data = actix_web::web::Data::new(state);
    let system = actix_web::rt::System::new();
    system
        .block_on(async move {
            let server = match tls {
                Some((reloadable, config)) => {
                    actix_web::rt::spawn(reload_on_sighup(reloadable));
                    crate::web::server::build_server_tls(listener, data.clone(), config)?
                }
                None => crate::web::server::build_server(listener, data.clone())?,
            };
            if let Some(addr) = data.config.metrics_bind.clone() {
                let d = data.clone();
                let metrics = actix_web::HttpServer::new(move || {
                    actix_web::App::new().app_data(d.clone()).route(
                        "/metrics",
                        actix_web::web::get().to(|st: crate::app::web_data::Data| async move {
                            crate::web::pages::home::metrics_text(&st)
                        }),
                    )
                })
                .workers(1)
                .bind(&addr)?
                .run();
                actix_web::rt::spawn(metrics);
                tracing::info!(addr = %addr, "metrics listening");
            }
            let deliveries = actix_web::rt::spawn(crate::jobs::delivery_loop(data.clone()));
            let result = server.await;
            deliveries.abort();
            // A clean stop anchors the tail of the audit trail with a signed checkpoint.
            let st = data.clone();
            let anchored = crate::app::run_conn(&data, move |c, _ctx, now| {
                crate::audit::link_and_checkpoint(c, &st.master, now, true)
            })
            .await;
            if let Err(e) = anchored {
                tracing::error!(error = %crate::error::chain(&e), "the checkpoint at stop failed");
            }
            let st = data.clone();
            let left =
                crate::app::run_conn(&data, move |c, _ctx, _now| st.share.leave(c)).await;
            if let Err(e) = left {
                tracing::error!(error = %crate::error::chain(&e), "leaving the instance count failed");
            }
            result
        })
        .map_err(|e| CliError(format!("server error: {e}")))?;
    tracing::info!("stopped");
    Ok(())
}

/// Takes the SQLite database's lock shared (other servers may share it; `restore` may not).
fn lock_database(
    config: &Config,
) -> Result<Option<crate::db::server_lock::DatabaseLock>, CliError> {
    use crate::db::server_lock::{self, Mode};
    let crate::db::DbUrl::Sqlite(path) = &config.database_url else {
        return Ok(None);
    };
    if path == ":memory:" {
        return Ok(None);
    }
    server_lock::ensure_folder(path).map_err(|e| CliError(e.to_string()))?;
    match server_lock::try_acquire(path, Mode::Shared).map_err(|e| CliError(e.to_string()))? {
        Some(lock) => Ok(Some(lock)),
        None => Err(CliError(format!(
            "a restore is replacing the database at {path}: start the server when it is done"
        ))),
    }
}

/// Human-readable logs by default; JSON lines with `PORTCULLIS_LOG_FORMAT=json`.
/// Rereads the certificate on every SIGHUP; open connections keep theirs.
async fn reload_on_sighup(cert: std::sync::Arc<crate::web::tls::Reloadable>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        tracing::warn!("SIGHUP cannot be watched; the certificate will not be reloaded");
        return;
    };
    while hup.recv().await.is_some() {
        match cert.reload() {
            Ok(()) => tracing::info!("TLS certificate reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "TLS certificate reload failed; the previous one stays")
            }
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PORTCULLIS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = std::env::var("PORTCULLIS_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().with_current_span(true).try_init()
    } else {
        builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init()
    };
}

/// Where the generated bootstrap password goes when stderr is not a terminal (a log stream).
pub const BOOTSTRAP_PASSWORD_FILE: &str = "data/bootstrap-admin-password";

/// Shows the generated bootstrap password once: on the terminal when stderr is one; otherwise
/// (a log collector) in a new 0600 file whose place is logged, never in the log stream.
fn announce_bootstrap_password(pw: &str) -> Result<(), CliError> {
    use std::io::IsTerminal;
    if std::io::stderr().is_terminal() {
        eprintln!(
            "Created the bootstrap user 'admin' with password: {pw}\n(shown once: store it now, then change it)"
        );
        return Ok(());
    }
    let path = std::path::Path::new(BOOTSTRAP_PASSWORD_FILE);
    if let Some(dir) = path.parent() {
        crate::private_files::create_dir_all(dir)
            .map_err(|e| CliError(format!("cannot create {}: {e}", dir.display())))?;
    }
    crate::private_files::write_new(path, pw).map_err(|e| {
        CliError(format!(
            "cannot write the bootstrap password to {BOOTSTRAP_PASSWORD_FILE}: {e}"
        ))
    })?;
    tracing::warn!(
        file = BOOTSTRAP_PASSWORD_FILE,
        "created the bootstrap user 'admin'; its generated password is in this file (mode 0600): read it, delete the file, then change the password"
    );
    Ok(())
}
