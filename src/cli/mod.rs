//! The command line: parse, resolve configuration, run one subcommand.

pub mod audit;
pub mod backup;
pub mod client;
pub mod client_rules;
pub mod client_update;
pub mod keys;
pub mod masked;
pub mod serve;
pub mod user;
pub mod user_change;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::clock::Clock;
use crate::config::{Config, Creates, Overrides};
use crate::db::{self, DbConn};
use crate::error::InternalError;

#[derive(Debug, Parser)]
#[command(
    name = "portcullis",
    version,
    about = "An OAuth 2.0 / OpenID Connect identity provider"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Args, Clone)]
pub struct Global {
    /// Configuration file (TOML)
    #[arg(long, global = true, env = "PORTCULLIS_CONFIG")]
    pub config: Option<PathBuf>,
    /// Listen address, e.g. 127.0.0.1:8080
    #[arg(long, global = true, env = "PORTCULLIS_BIND")]
    pub bind: Option<String>,
    /// Issuer URL (https://, or http://localhost for development)
    #[arg(long, global = true, env = "PORTCULLIS_ISSUER")]
    pub issuer: Option<String>,
    /// postgres://… or sqlite://PATH
    #[arg(long, global = true, env = "PORTCULLIS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// PEM certificate chain: serve HTTPS directly (with --tls-key; reloaded on SIGHUP)
    #[arg(long, global = true, env = "PORTCULLIS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert
    #[arg(long, global = true, env = "PORTCULLIS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Print one JSON document instead of text
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default)
    Serve,
    /// Apply database migrations and exit
    Migrate,
    /// Manage users
    #[command(subcommand)]
    User(user::UserCommand),
    /// Manage client applications
    #[command(subcommand)]
    Client(client::ClientCommand),
    /// Signing keys
    #[command(subcommand)]
    Keys(keys::KeysCommand),
    /// The tamper-evident audit trail
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Write a consistent snapshot of the database (SQLite; pg_dump for PostgreSQL)
    Backup { file: PathBuf },
    /// Replace the database with a backup (stop the server first)
    Restore { file: PathBuf },
    /// Write a copy with personal data, credentials and secrets replaced by fakes
    Export {
        /// Required: exports are always masked
        #[arg(long)]
        masked: bool,
        file: PathBuf,
    },
}

/// A failure to report on one line with exit status 1.
#[derive(Debug)]
pub struct CliError(pub String);

impl From<InternalError> for CliError {
    fn from(e: InternalError) -> Self {
        CliError(crate::error::chain(&e).to_string())
    }
}

impl From<crate::sign_in::password::PasswordError> for CliError {
    fn from(e: crate::sign_in::password::PasswordError) -> Self {
        CliError(crate::error::chain(&e).to_string())
    }
}

impl From<diesel::result::Error> for CliError {
    fn from(e: diesel::result::Error) -> Self {
        CliError(format!("database: {e}"))
    }
}

pub fn run() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let code = match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => 0,
                _ => 1,
            };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError(m)) => {
            eprintln!("error: {}", m.lines().next().unwrap_or("failed"));
            ExitCode::from(1)
        }
    }
}

fn dispatch(cli: Cli) -> Result<(), CliError> {
    if let Some(Command::Keys(keys::KeysCommand::GenerateMaster)) = &cli.command {
        keys::generate_master(cli.global.json);
        return Ok(());
    }
    let config = load_config(&cli.global, creates(cli.command.as_ref()))?;
    let json = cli.global.json;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve::serve(config),
        Command::Migrate => {
            open(&config)?;
            output(
                json,
                &serde_json::json!({"migrated": true}),
                "migrations applied",
            );
            Ok(())
        }
        Command::User(c) => user::run(&config, c, json),
        Command::Client(c) => client::run(&config, c, json),
        Command::Keys(c) => keys::run(&config, c, json),
        Command::Audit(c) => audit::run(&config, c, json),
        Command::Backup { file } => backup::backup(&config, &file, json),
        Command::Restore { file } => backup::restore(&config, &file, json),
        Command::Export { masked, file } => {
            if !masked {
                return Err(CliError(
                    "only masked exports exist: portcullis export --masked FILE (use backup for a full copy)".into(),
                ));
            }
            masked::export_masked(&config, &file, json)
        }
    }
}

/// What a command may create when it is missing: only the commands that set things up create
/// a database (and a development master key); the others need an existing one.
fn creates(command: Option<&Command>) -> Creates {
    match command {
        None
        | Some(Command::Serve)
        | Some(Command::Migrate)
        | Some(Command::User(user::UserCommand::Add { .. }))
        | Some(Command::Client(client::ClientCommand::Add { .. })) => Creates::Everything,
        Some(Command::Restore { .. }) => Creates::Database,
        Some(_) => Creates::Nothing,
    }
}

pub fn load_config(g: &Global, creates: Creates) -> Result<Config, CliError> {
    let o = Overrides {
        config: g.config.clone(),
        bind: g.bind.clone(),
        issuer: g.issuer.clone(),
        database_url: g.database_url.clone(),
        tls_cert: g.tls_cert.clone(),
        tls_key: g.tls_key.clone(),
    };
    Config::load_for(&o, &|k| std::env::var(k).ok(), creates).map_err(CliError)
}

/// Opens (and migrates) the database for a one-shot command.
pub fn open(config: &Config) -> Result<db::PooledConn, CliError> {
    let pool = db::connect(&config.database_url, 1)?;
    pool.get()
        .map_err(|e| CliError(format!("cannot open the database: {e}")))
}

pub fn clock() -> Clock {
    Clock::System
}

/// Prints the JSON document or the text.
pub fn output(json: bool, value: &serde_json::Value, text: &str) {
    if json {
        say(value);
    } else {
        say(text);
    }
}

/// Writes one line to stdout. When the reader has gone (`head`, a closed pager), the command
/// ends quietly with status 0, as Unix tools do, instead of panicking on the broken pipe.
pub fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = writeln!(out, "{line}").and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write the output: {e}");
        std::process::exit(1);
    }
}

/// Reads one line from stdin, without its trailing newline.
pub fn read_password_stdin() -> Result<String, CliError> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| CliError(format!("cannot read the password from stdin: {e}")))?;
    while line.ends_with('\n') || line.ends_with('\r') {
        line.pop();
    }
    if line.is_empty() {
        return Err(CliError("no password on stdin".into()));
    }
    Ok(line)
}

/// Records an operator's change in the audit trail (inside the change's transaction).
pub fn audit_change(
    conn: &mut DbConn,
    event: &str,
    user_id: Option<&str>,
    client_id: Option<&str>,
    details: serde_json::Value,
) -> Result<(), CliError> {
    let operator = std::env::var("USER").unwrap_or_else(|_| "operator".into());
    let actor = format!("cli:{}", operator.chars().take(64).collect::<String>());
    let mut ev = crate::audit::Event::new(event, "success")
        .actor(&actor)
        .details(details);
    ev.user_id = user_id;
    ev.client_id = client_id;
    crate::audit::record(
        conn,
        &crate::context::RequestMeta::default(),
        clock().naive(),
        ev,
    )?;
    Ok(())
}

/// Runs a change in one transaction.
pub fn tx<T>(
    conn: &mut DbConn,
    f: impl FnOnce(&mut DbConn) -> Result<T, CliError>,
) -> Result<T, CliError> {
    db::transaction(conn, |c| f(c).map_err(TxError::from)).map_err(|e: TxError| e.0)
}

/// Carries a CLI error through a transaction (which also needs to wrap diesel errors).
pub struct TxError(pub CliError);

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError(CliError(format!("database: {e}")))
    }
}

impl From<CliError> for TxError {
    fn from(e: CliError) -> Self {
        TxError(e)
    }
}
