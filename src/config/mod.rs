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
#[derive(Default, Clone)]
pub struct Overrides {
    pub config: Option<PathBuf>,
    pub bind: Option<String>,
    pub issuer: Option<String>,
    pub database_url: Option<String>,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
}

impl std::fmt::Debug for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overrides")
            .field("config", &self.config)
            .field("bind", &self.bind)
            .field("issuer", &self.issuer)
            .field(
                "database_url",
                &self.database_url.as_deref().map(crate::db::redact_url),
            )
            .field("tls_cert", &self.tls_cert)
            .field("tls_key", &self.tls_key)
            .finish()
    }
}

/// What may appear in `portcullis.toml` (no `Debug`: it may hold a database password).
#[derive(Default, Deserialize)]
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
    reauth_window: Option<i64>,
    recent_factor_window: Option<i64>,
    device_cookie_lifetime: Option<i64>,
    refresh_reuse_window: Option<i64>,
    db_pool_size: Option<u32>,
    trusted_proxies: Option<Vec<String>>,
    metrics_bind: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    audit_retention_days: Option<i64>,
    key_rotation_days: Option<i64>,
    key_publish_delay: Option<i64>,
    #[serde(default)]
    detection: Option<Detection>,
    password_min_length: Option<usize>,
    password_max_age_days: Option<i64>,
    #[serde(default)]
    throttle: Option<Throttling>,
    #[serde(default)]
    rate_limit: Option<RateLimit>,
}

mod sections;
pub use sections::{
    Detection, Lifetimes, MAX_CLIENT_REQUESTS_PER_MINUTE, PasswordPolicy, RateLimit, Schedule,
    Throttling,
};

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
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    pub throttle: Throttling,
    pub rate_limit: RateLimit,
    pub password: PasswordPolicy,
    /// A separate listen address for `/metrics` (otherwise loopback peers only, on `bind`).
    pub metrics_bind: Option<String>,
    pub detection: Detection,
    /// Audit entries older than this are pruned (down to a signed checkpoint); off when unset.
    pub audit_retention_days: Option<i64>,
    /// Days between automatic signing key rotations (0 turns them off).
    pub key_rotation_days: Option<i64>,
    /// Seconds a new signing key is published before it signs.
    pub key_publish_delay: i64,
    /// Signs webhook bodies (HMAC-SHA256); from `PORTCULLIS_ALERT_WEBHOOK_SECRET(_FILE)`.
    pub webhook_secret: Option<crate::keys::secrets::Secret>,
    /// The master key and where it came from (always set by `load`).
    pub master_key: Option<(crate::keys::master::MasterKey, crate::keys::master::Source)>,
    /// PEM certificate chain and private key to serve HTTPS directly.
    pub tls: Option<(PathBuf, PathBuf)>,
    /// The master key being replaced, accepted for reading until `keys rotate-master` is done.
    pub previous_master_key: Option<crate::keys::master::MasterKey>,
}

/// What a command may create when it is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creates {
    /// The database and, in development mode, `data/master.key` (serve, migrate, user add,
    /// client add).
    Everything,
    /// The database file, never a master key (restore: a new key could not open the backup).
    Database,
    /// Nothing: a SQLite database must already exist, and no master key is generated.
    Nothing,
}

impl Config {
    /// Resolves the configuration from flags (and environment, through clap), the file and
    /// defaults; may generate a development master key.
    pub fn load(o: &Overrides, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
        Config::load_for(o, env, Creates::Everything)
    }

    /// `load` for a command that may create only what `creates` says: with
    /// `Creates::Nothing`, a missing SQLite database is an error naming it.
    pub fn load_for(
        o: &Overrides,
        env: &dyn Fn(&str) -> Option<String>,
        creates: Creates,
    ) -> Result<Config, String> {
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
            reauth: num("PORTCULLIS_REAUTH_WINDOW", file.reauth_window, d.reauth)?,
            recent_factor: num(
                "PORTCULLIS_RECENT_FACTOR_WINDOW",
                file.recent_factor_window,
                d.recent_factor,
            )?,
            device: num(
                "PORTCULLIS_DEVICE_COOKIE_LIFETIME",
                file.device_cookie_lifetime,
                d.device,
            )?,
            // 0 is meaningful here (the window off), so not through `num`; `check` bounds it.
            refresh_reuse_window: match env("PORTCULLIS_REFRESH_REUSE_WINDOW") {
                Some(s) => s.trim().parse::<i64>().map_err(|_| {
                    "PORTCULLIS_REFRESH_REUSE_WINDOW must be a whole number of seconds".to_string()
                })?,
                None => file.refresh_reuse_window.unwrap_or(d.refresh_reuse_window),
            },
        };
        lifetimes.check()?;
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
        let database_url_file = match env("PORTCULLIS_DATABASE_URL_FILE") {
            Some(path) => Some(
                std::fs::read_to_string(&path)
                    .map_err(|e| format!("cannot read PORTCULLIS_DATABASE_URL_FILE {path}: {e}"))?
                    .trim()
                    .to_string(),
            ),
            None => None,
        };
        let database_url = o
            .database_url
            .clone()
            .or(database_url_file)
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
        let pool = match env("PORTCULLIS_DB_POOL_SIZE") {
            Some(s) => s
                .trim()
                .parse::<u32>()
                .map_err(|_| "PORTCULLIS_DB_POOL_SIZE must be a whole number".to_string())?,
            None => file.db_pool_size.unwrap_or(10),
        };
        let mut config = Config::build(bind, &issuer, &database_url, lifetimes, pool)?;
        let proxies: Vec<String> = match env("PORTCULLIS_TRUSTED_PROXIES") {
            Some(v) => v
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            None => file.trusted_proxies.unwrap_or_default(),
        };
        config.trusted_proxies = proxies
            .iter()
            .map(|p| {
                p.parse().map_err(|_| {
                    format!("invalid trusted proxy address {p:?}: expected an IP address")
                })
            })
            .collect::<Result<_, _>>()?;
        if let Some(t) = file.throttle {
            config.throttle = t;
        }
        if let Some(v) = env("PORTCULLIS_THROTTLE_ENABLED") {
            config.throttle.enabled = parse_bool("PORTCULLIS_THROTTLE_ENABLED", &v)?;
        }
        if let Some(r) = file.rate_limit {
            config.rate_limit = r;
        }
        if let Some(v) = env("PORTCULLIS_RATE_LIMIT_ENABLED") {
            config.rate_limit.enabled = parse_bool("PORTCULLIS_RATE_LIMIT_ENABLED", &v)?;
        }
        if config.rate_limit.per_second == 0 || config.rate_limit.burst == 0 {
            return Err("rate_limit.per_second and rate_limit.burst must be positive".into());
        }
        sections::bounded(
            "rate_limit.client_requests_per_minute",
            i64::from(config.rate_limit.client_requests_per_minute),
            1,
            i64::from(sections::MAX_CLIENT_REQUESTS_PER_MINUTE),
            "requests",
        )?;
        let min = match env("PORTCULLIS_PASSWORD_MIN_LENGTH") {
            Some(v) => Some(v.trim().parse::<usize>().map_err(|_| {
                "PORTCULLIS_PASSWORD_MIN_LENGTH must be a whole number".to_string()
            })?),
            None => file.password_min_length,
        };
        if let Some(m) = min {
            if !(8..=128).contains(&m) {
                return Err("the minimum password length must be between 8 and 128".into());
            }
            config.password.min_length = m;
        }
        config.password.max_age_days = file.password_max_age_days.filter(|d| *d > 0);
        if let Some(d) = config.password.max_age_days {
            sections::bounded("password_max_age_days", d, 1, sections::MAX_DAYS, "days")?;
        }
        config.throttle.check()?;
        sections::bounded(
            "detection.window",
            config.detection.window,
            1,
            sections::MAX_SECONDS,
            "seconds",
        )?;
        config.metrics_bind = env("PORTCULLIS_METRICS_BIND").or(file.metrics_bind);
        config.audit_retention_days = file.audit_retention_days.filter(|d| *d > 0);
        if let Some(d) = config.audit_retention_days {
            sections::bounded("audit_retention_days", d, 1, 100 * 366, "days")?;
        }
        if let Some(d) = file.key_rotation_days {
            config.key_rotation_days = (d > 0).then_some(d);
        }
        if let Some(d) = config.key_rotation_days {
            sections::bounded("key_rotation_days", d, 1, sections::MAX_DAYS, "days")?;
        }
        if let Some(d) = file.key_publish_delay {
            // Shorter, and a client that fetched the JWKS just before a key was published
            // could meet a token signed by it before its cached JWKS expires.
            let min = crate::keys::signing::MIN_PUBLISH_DELAY;
            sections::bounded("key_publish_delay", d, min, sections::MAX_SECONDS, "seconds")
                .map_err(|e| {
                    format!(
                        "{e} (at least the JWKS cache time, {} s, plus {} s for every instance to publish it)",
                        crate::keys::signing::JWKS_MAX_AGE,
                        crate::keys::signing::KEY_PROPAGATION
                    )
                })?;
            config.key_publish_delay = d;
        }
        if let Some(d) = file.detection {
            config.detection = d;
        }
        if let Some(u) = env("PORTCULLIS_ALERT_WEBHOOK_URL") {
            config.detection.webhook_url = Some(u);
        }
        if let Some(u) = &config.detection.webhook_url {
            let ok =
                url::Url::parse(u).is_ok_and(|p| p.scheme() == "https" || p.scheme() == "http");
            if !ok {
                return Err(format!("invalid alert webhook URL {u:?}"));
            }
        }
        config.webhook_secret = match (
            env("PORTCULLIS_ALERT_WEBHOOK_SECRET"),
            env("PORTCULLIS_ALERT_WEBHOOK_SECRET_FILE"),
        ) {
            (Some(v), _) => Some(crate::keys::secrets::Secret::new(v)),
            (None, Some(path)) => Some(crate::keys::secrets::Secret::new(
                std::fs::read_to_string(&path)
                    .map_err(|e| {
                        format!("cannot read PORTCULLIS_ALERT_WEBHOOK_SECRET_FILE {path}: {e}")
                    })?
                    .trim()
                    .to_string(),
            )),
            (None, None) => None,
        };
        if creates == Creates::Nothing
            && let DbUrl::Sqlite(path) = &config.database_url
            && path != ":memory:"
            && !Path::new(path).exists()
        {
            return Err(format!(
                "no database at {path}; run portcullis migrate or portcullis serve first"
            ));
        }
        config.master_key = crate::keys::master::load_or_generate(
            env,
            config.dev_mode,
            creates == Creates::Everything,
        )?;
        config.previous_master_key = crate::keys::master::load_previous(env)?;
        let cert = o.tls_cert.clone().or(file.tls_cert);
        let key = o.tls_key.clone().or(file.tls_key);
        config.tls = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        if config.detection.webhook_url.is_some() && config.webhook_secret.is_none() {
            return Err("an alert webhook needs PORTCULLIS_ALERT_WEBHOOK_SECRET (or _FILE) to sign its posts".into());
        }
        if let Some(m) = &config.metrics_bind
            && m.parse::<std::net::SocketAddr>().is_err()
        {
            return Err(format!("invalid metrics address {m:?}: expected IP:PORT"));
        }
        Ok(config)
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
        lifetimes.check()?;
        Ok(Config {
            bind,
            issuer,
            database_url,
            dev_mode,
            lifetimes,
            db_pool_size,
            trusted_proxies: Vec::new(),
            throttle: Throttling::default(),
            rate_limit: RateLimit::default(),
            password: PasswordPolicy::default(),
            metrics_bind: None,
            detection: Detection::default(),
            audit_retention_days: None,
            key_rotation_days: Some(90),
            key_publish_delay: 900,
            webhook_secret: None,
            master_key: None,
            previous_master_key: None,
            tls: None,
        })
    }

    /// The signing key schedule this configuration implies.
    pub fn rotation(&self) -> crate::keys::signing::Rotation {
        crate::keys::signing::Rotation {
            publish_delay: self.key_publish_delay,
            retire_after: self.lifetimes.id_token.max(self.lifetimes.access_token) + 300,
            period_days: self.key_rotation_days,
        }
    }

    /// An absolute URL under the issuer.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

fn parse_bool(name: &str, v: &str) -> Result<bool, String> {
    match v.trim() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(format!("{name} must be true or false")),
    }
}

fn read_file(path: &Path, required: bool) -> Result<FileConfig, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => toml::from_str(&text).map_err(|e| file_error(path, &text, &e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            Ok(FileConfig::default())
        }
        Err(e) => Err(format!("cannot read config file {}: {e}", path.display())),
    }
}

/// A file error as `FILE:LINE:COLUMN: key KEY: what is wrong`, the key being the dotted name
/// of the setting on that line (with its `[section]`).
fn file_error(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end_matches('\n').replace('\n', " ");
    let Some(span) = e.span() else {
        return format!("invalid config file {}: {message}", path.display());
    };
    let start = span.start.min(text.len());
    let before = text.get(..start).unwrap_or_default();
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).unwrap_or_default().chars().count() + 1;
    let this_line = text
        .get(line_start..)
        .unwrap_or_default()
        .lines()
        .next()
        .unwrap_or_default();
    let key = this_line
        .split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_string())
        .filter(|k| !k.is_empty() && !k.starts_with('['));
    let section = before
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            (l.starts_with('[') && l.ends_with(']'))
                .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        })
        .next_back();
    let key = match (key, section) {
        (Some(k), Some(s)) => format!("key {s}.{k}: "),
        (Some(k), None) => format!("key {k}: "),
        (None, _) => String::new(),
    };
    format!(
        "invalid config file {}:{line}:{column}: {key}{message}",
        path.display()
    )
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
    if url.path() != "/" {
        return Err(format!(
            "the issuer must not have a path (got {:?}): Portcullis serves its endpoints, \
             discovery and pages at the root of a host, so give it a host of its own \
             (e.g. https://id.example.com) and let the reverse proxy forward that host's root",
            url.path()
        ));
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
        assert!(validate_issuer("https://example.com/idp").is_err());
        assert!(validate_issuer("https://example.com/idp/").is_err());
    }

    fn load_with(file: &str, vars: &[(&str, &str)]) -> Result<Config, String> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.toml");
        std::fs::write(&path, file).unwrap();
        let o = Overrides {
            config: Some(path),
            ..Default::default()
        };
        // A given master key, so that loading never generates one in the working folder.
        let key = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 32]);
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .chain([("PORTCULLIS_MASTER_KEY".to_string(), key)])
            .collect();
        Config::load(&o, &move |k| {
            vars.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone())
        })
    }

    const EXAMPLE: &str = include_str!("../../deploy/portcullis.example.toml");

    /// The field names of `struct name` in `source`.
    fn fields_of(source: &str, name: &str) -> Vec<String> {
        let start = source
            .find(&format!("struct {name} {{"))
            .unwrap_or_else(|| panic!("no struct {name}"));
        source[start..]
            .lines()
            .skip(1)
            .take_while(|l| l.trim() != "}")
            .map(str::trim)
            .filter(|l| !l.starts_with("//") && !l.starts_with('#'))
            .filter_map(|l| l.trim_start_matches("pub ").split_once(':'))
            .map(|(f, _)| f.trim().to_string())
            .collect()
    }

    #[test]
    fn the_example_config_parses_and_its_values_are_the_defaults() {
        let example = load_with(EXAMPLE, &[]).unwrap();
        let defaults = load_with("", &[]).unwrap();
        assert_eq!(example.bind, defaults.bind);
        assert_eq!(example.issuer, defaults.issuer);
        assert_eq!(example.db_pool_size, defaults.db_pool_size);
        assert_eq!(
            format!("{:?}", example.lifetimes),
            format!("{:?}", defaults.lifetimes)
        );
        assert_eq!(example.throttle, defaults.throttle);
        assert_eq!(example.rate_limit, defaults.rate_limit);
        assert_eq!(example.detection, defaults.detection);
        assert_eq!(example.password, defaults.password);
        assert_eq!(example.key_rotation_days, defaults.key_rotation_days);
        assert_eq!(example.key_publish_delay, defaults.key_publish_delay);
    }

    #[test]
    fn the_example_config_with_every_optional_key_uncommented_is_valid() {
        let all: String = EXAMPLE
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest)
                    if rest.split_once(" = ").is_some_and(|(k, _)| {
                        k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                    }) =>
                {
                    rest.to_string()
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(
            all.contains("\ntls_cert = "),
            "the optional keys were uncommented"
        );
        let c = load_with(&all, &[("PORTCULLIS_ALERT_WEBHOOK_SECRET", "s")]).unwrap();
        assert_eq!(c.password.max_age_days, Some(365));
        assert!(c.detection.webhook_url.is_some());
    }

    #[test]
    fn the_example_config_documents_every_key() {
        let keys: Vec<&str> = EXAMPLE
            .lines()
            .map(|l| l.trim_start_matches("# "))
            .filter_map(|l| l.split_once(" = ").map(|(k, _)| k.trim()))
            .collect();
        let sections = include_str!("sections.rs");
        let mut wanted = fields_of(include_str!("mod.rs"), "FileConfig");
        for name in ["Throttling", "RateLimit", "Detection"] {
            wanted.extend(fields_of(sections, name));
        }
        assert!(
            wanted.len() > 30,
            "the struct fields were found: {wanted:?}"
        );
        for key in wanted {
            let section = matches!(key.as_str(), "detection" | "throttle" | "rate_limit");
            let present = if section {
                EXAMPLE.contains(&format!("[{key}]"))
            } else {
                keys.contains(&key.as_str())
            };
            assert!(present, "the example config does not document {key}");
        }
    }

    #[test]
    fn an_idle_timeout_under_a_minute_is_refused_because_it_could_never_slide() {
        let err = load_with("", &[("PORTCULLIS_SESSION_IDLE_TIMEOUT", "30")]).unwrap_err();
        assert!(err.contains("PORTCULLIS_SESSION_IDLE_TIMEOUT"), "{err}");
        assert!(load_with("", &[("PORTCULLIS_SESSION_IDLE_TIMEOUT", "60")]).is_ok());
    }

    #[test]
    fn durations_beyond_ten_years_are_refused_before_date_arithmetic_can_overflow() {
        let huge = i64::MAX.to_string();
        for var in [
            "PORTCULLIS_ACCESS_TOKEN_LIFETIME",
            "PORTCULLIS_REFRESH_TOKEN_LIFETIME",
            "PORTCULLIS_SESSION_LIFETIME",
            "PORTCULLIS_SESSION_IDLE_TIMEOUT",
            "PORTCULLIS_REAUTH_WINDOW",
            "PORTCULLIS_RECENT_FACTOR_WINDOW",
            "PORTCULLIS_DEVICE_COOKIE_LIFETIME",
        ] {
            assert!(load_with("", &[(var, &huge)]).is_err(), "{var}");
        }
        for file in [
            format!("[throttle]\nwindow = {huge}\n"),
            format!("[throttle]\naccount = {{ free = 1, delays = [{huge}], cap = 2 }}\n"),
            format!("audit_retention_days = {huge}\n"),
            format!("password_max_age_days = {huge}\n"),
            format!("key_publish_delay = {huge}\n"),
            "key_publish_delay = 60\n".to_string(),
        ] {
            assert!(load_with(&file, &[]).is_err(), "{file}");
        }
    }

    #[test]
    fn the_refresh_reuse_window_defaults_to_thirty_seconds_may_be_off_and_is_bounded() {
        assert_eq!(
            load_with("", &[]).unwrap().lifetimes.refresh_reuse_window,
            30
        );
        let from_file = load_with("refresh_reuse_window = 45\n", &[]).unwrap();
        assert_eq!(from_file.lifetimes.refresh_reuse_window, 45);
        let off = load_with(
            "refresh_reuse_window = 45\n",
            &[("PORTCULLIS_REFRESH_REUSE_WINDOW", "0")],
        );
        assert_eq!(off.unwrap().lifetimes.refresh_reuse_window, 0);
        for bad in ["-1", "301", "thirty"] {
            let err = load_with("", &[("PORTCULLIS_REFRESH_REUSE_WINDOW", bad)]).unwrap_err();
            assert!(
                err.contains("PORTCULLIS_REFRESH_REUSE_WINDOW"),
                "{bad}: {err}"
            );
        }
        assert!(load_with("refresh_reuse_window = 3600\n", &[]).is_err());
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
    fn file_errors_name_the_file_line_column_and_key() {
        let err = load_with(
            "bind = \"127.0.0.1:1\"\n\naccess_token_lifetime = \"soon\"\n",
            &[],
        )
        .unwrap_err();
        assert!(err.contains("p.toml:3:"), "{err}");
        assert!(err.contains("key access_token_lifetime"), "{err}");
        let err = load_with("[throttle]\nwindow = \"x\"\n", &[]).unwrap_err();
        assert!(err.contains("p.toml:2:"), "{err}");
        assert!(err.contains("key throttle.window"), "{err}");
        let err = load_with("bind = \"127.0.0.1:1\"\nbogus = 1\n", &[]).unwrap_err();
        assert!(err.contains("p.toml:2:1:"), "{err}");
        assert!(err.contains("bogus"), "{err}");
    }

    #[test]
    fn schedules_grade_delays_and_cap_them() {
        let s = Schedule {
            free: 2,
            delays: vec![1, 5, 30],
            cap: 20,
        };
        let got: Vec<i64> = (1..=7).map(|n| s.delay(n)).collect();
        assert_eq!(got, vec![0, 0, 1, 5, 20, 20, 20]);
    }

    #[test]
    fn throttle_settings_come_from_the_file() {
        let c = load_with(
            "[throttle]\nwindow = 60\naccount = { free = 1, delays = [2], cap = 2 }\n",
            &[],
        )
        .unwrap();
        assert_eq!(c.throttle.window, 60);
        assert_eq!(c.throttle.account.delay(2), 2);
        assert_eq!(c.throttle.ip, Throttling::default().ip);
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
        let key = |k: &str| {
            (k == "PORTCULLIS_MASTER_KEY")
                .then(|| "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".to_string())
        };
        let c = Config::load(&o, &key).unwrap();
        assert_eq!(c.issuer, "https://flag.example");
        assert_eq!(c.bind, "127.0.0.1:9");
        assert_eq!(c.database_url, DbUrl::Sqlite("data/portcullis.db".into()));
    }
}
