//! Configuration: flag > environment > file > default. Unknown file keys are rejected.

use serde::Deserialize;
use std::path::{Path, PathBuf};
use url::Url;

use crate::db::DbUrl;

pub const DEFAULT_BIND: &str = "127.0.0.1:8080";
pub const DEFAULT_ISSUER: &str = "http://localhost:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://data/portcullis.db";
pub const DEFAULT_CONFIG_FILE: &str = "portcullis.toml";

/// Settings given on the command line (already merged with the environment by clap).
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub bind: Option<String>,
    pub issuer: Option<String>,
    pub database_url: Option<String>,
}

/// What may appear in `portcullis.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    bind: Option<String>,
    issuer: Option<String>,
    database_url: Option<String>,
    access_token_lifetime: Option<i64>,
    refresh_token_lifetime: Option<i64>,
    id_token_lifetime: Option<i64>,
    code_lifetime: Option<i64>,
    session_idle_timeout: Option<i64>,
    session_lifetime: Option<i64>,
    db_pool_size: Option<u32>,
}

/// Lifetimes in seconds.
#[derive(Debug, Clone)]
pub struct Lifetimes {
    pub access_token: i64,
    pub refresh_token: i64,
    pub id_token: i64,
    pub code: i64,
    pub session_idle: i64,
    pub session_absolute: i64,
    pub auth_request: i64,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Lifetimes {
            access_token: 600,
            refresh_token: 30 * 24 * 3600,
            id_token: 600,
            code: 60,
            session_idle: 30 * 60,
            session_absolute: 12 * 3600,
            auth_request: 30 * 60,
        }
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub bind: String,
    /// The issuer exactly as emitted in `iss` (no trailing slash).
    pub issuer: String,
    pub database_url: DbUrl,
    /// True when the issuer's host is `localhost` or `127.0.0.1` over plain http.
    pub dev_mode: bool,
    pub lifetimes: Lifetimes,
    pub db_pool_size: u32,
}

impl Config {
    /// Resolves the configuration from flags (and environment, through clap), the file and defaults.
    pub fn load(o: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
        let explicit = o.config.clone();
        let path = explicit
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG_FILE));
        let file = read_file(&path, explicit.is_some())?;
        let num = |name: &str, file_value: Option<i64>, default: i64| -> Result<i64, String> {
            let v = match env(name) {
                Some(s) => s
                    .trim()
                    .parse::<i64>()
                    .map_err(|_| format!("{name} must be a whole number of seconds"))?,
                None => file_value.unwrap_or(default),
            };
            if v <= 0 {
                return Err(format!("{name} must be positive"));
            }
            Ok(v)
        };
        let d = Lifetimes::default();
        let lifetimes = Lifetimes {
            access_token: num(
                "PORTCULLIS_ACCESS_TOKEN_LIFETIME",
                file.access_token_lifetime,
                d.access_token,
            )?,
            refresh_token: num(
                "PORTCULLIS_REFRESH_TOKEN_LIFETIME",
                file.refresh_token_lifetime,
                d.refresh_token,
            )?,
            id_token: num(
                "PORTCULLIS_ID_TOKEN_LIFETIME",
                file.id_token_lifetime,
                d.id_token,
            )?,
            code: num("PORTCULLIS_CODE_LIFETIME", file.code_lifetime, d.code)?,
            session_idle: num(
                "PORTCULLIS_SESSION_IDLE_TIMEOUT",
                file.session_idle_timeout,
                d.session_idle,
            )?,
            session_absolute: num(
                "PORTCULLIS_SESSION_LIFETIME",
                file.session_lifetime,
                d.session_absolute,
            )?,
            auth_request: d.auth_request,
        };
        if lifetimes.code > 600 {
            return Err("PORTCULLIS_CODE_LIFETIME must be at most 600 seconds".into());
        }
        let bind = o
            .bind
            .clone()
            .or(file.bind)
            .unwrap_or_else(|| DEFAULT_BIND.to_string());
        let issuer = o
            .issuer
            .clone()
            .or(file.issuer)
            .unwrap_or_else(|| DEFAULT_ISSUER.to_string());
        let database_url = o
            .database_url
            .clone()
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        let pool = match env("PORTCULLIS_DB_POOL_SIZE") {
            Some(s) => s
                .trim()
                .parse::<u32>()
                .map_err(|_| "PORTCULLIS_DB_POOL_SIZE must be a whole number".to_string())?,
            None => file.db_pool_size.unwrap_or(10),
        };
        Config::build(bind, &issuer, &database_url, lifetimes, pool)
    }

    /// Validates and assembles a configuration from explicit values.
    pub fn build(
        bind: String,
        issuer: &str,
        database_url: &str,
        lifetimes: Lifetimes,
        db_pool_size: u32,
    ) -> Result<Config, String> {
        let (issuer, dev_mode) = validate_issuer(issuer)?;
        let database_url = DbUrl::parse(database_url)?;
        if bind.parse::<std::net::SocketAddr>().is_err() {
            return Err(format!(
                "invalid bind address {bind:?}: expected IP:PORT such as 127.0.0.1:8080"
            ));
        }
        if db_pool_size == 0 {
            return Err("the database pool size must be at least 1".into());
        }
        Ok(Config {
            bind,
            issuer,
            database_url,
            dev_mode,
            lifetimes,
            db_pool_size,
        })
    }

    /// An absolute URL under the issuer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

fn read_file(path: &Path, required: bool) -> Result<FileConfig, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text)
            .map_err(|e| format!("invalid config file {}: {}", path.display(), e.message())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(format!("cannot read config file {}: {e}", path.display())),
    }
}

/// The issuer must be an absolute https URL without query or fragment; plain http only on localhost.
pub fn validate_issuer(raw: &str) -> Result<(String, bool), String> {
    let url = Url::parse(raw.trim()).map_err(|e| format!("invalid issuer URL {raw:?}: {e}"))?;
    if url.query().is_some() || url.fragment().is_some() {
        return Err("the issuer URL must not have a query or fragment".into());
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the issuer URL must not contain credentials".into());
    }
    let host = url.host_str().unwrap_or_default().to_string();
    let local = host == "localhost" || host == "127.0.0.1";
    let dev = match url.scheme() {
        "https" => false,
        "http" if local => true,
        "http" => {
            return Err(format!(
                "the issuer must use https:// (plain http is only allowed for localhost or 127.0.0.1, got {host})"
            ));
        }
        other => {
            return Err(format!(
                "the issuer must be an https:// URL, not {other}://"
            ));
        }
    };
    let mut s = url.to_string();
    while s.ends_with('/') {
        s.pop();
    }
    Ok((s, dev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_issuer_is_refused_outside_localhost() {
        assert!(validate_issuer("http://example.com").is_err());
        assert_eq!(
            validate_issuer("http://localhost:8080/").ok(),
            Some(("http://localhost:8080".to_string(), true))
        );
        assert_eq!(
            validate_issuer("https://id.example.com").ok(),
            Some(("https://id.example.com".to_string(), false))
        );
        assert!(validate_issuer("https://id.example.com/?x=1").is_err());
    }

    #[test]
    fn unknown_file_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, "bind = \"127.0.0.1:1\"\nbogus = 1\n").unwrap();
        let o = Overrides {
            config: Some(path),
            ..Default::default()
        };
        let err = Config::load(&o, &|_| None).unwrap_err();
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(
            &path,
            "bind = \"127.0.0.1:9\"\nissuer = \"https://file.example\"\n",
        )
        .unwrap();
        let o = Overrides {
            config: Some(path),
            issuer: Some("https://flag.example".into()),
            ..Default::default()
        };
        let c = Config::load(&o, &|_| None).unwrap();
        assert_eq!(c.issuer, "https://flag.example");
        assert_eq!(c.bind, "127.0.0.1:9");
        assert_eq!(c.database_url, DbUrl::Sqlite("data/portcullis.db".into()));
    }
}
