//! `portcullis client update` and `portcullis client rotate-secret`: changing a registered
//! client without removing it (which would lose its consents and tokens).

use chrono::{Duration, NaiveDateTime};
use clap::Args;
use serde_json::{Map, Value, json};

use crate::cli::client_rules as rules;
use crate::cli::{CliError, audit_change, clock, open, output, tx};
use crate::config::Config;
use crate::db::DbConn;
use crate::keys::secrets::{random_token, sha256_hex};
use crate::protocol::scope;
use crate::store::clients::{self, Client};
use crate::store::{auth_codes, consents, tokens};

/// The longest overlap `rotate-secret --keep-old-for` allows: 30 days.
pub const MAX_KEEP_OLD_FOR: i64 = 30 * 24 * 3600;

#[derive(Debug, Clone, Default, Args)]
pub struct UpdateArgs {
    /// The client to change
    pub client_id: String,
    /// Register one more exact redirect URI (repeatable; no wildcards)
    #[arg(long = "add-redirect-uri", value_name = "URI")]
    pub add_redirect_uris: Vec<String>,
    /// Unregister a redirect URI (repeatable); the last one cannot be removed
    #[arg(long = "remove-redirect-uri", value_name = "URI")]
    pub remove_redirect_uris: Vec<String>,
    /// Replace the web origins (CORS) with these (repeatable)
    #[arg(long = "web-origin", value_name = "ORIGIN")]
    pub web_origins: Vec<String>,
    /// Replace the scopes the client may ask for with these (repeatable); consents and
    /// tokens holding a scope no longer allowed are narrowed and revoked
    #[arg(long = "scope", value_name = "S")]
    pub scopes: Vec<String>,
    /// The name shown on the consent page
    #[arg(long)]
    pub name: Option<String>,
    /// Replace the grant types with these (repeatable): authorization_code, refresh_token,
    /// client_credentials
    #[arg(long = "grant-type", value_name = "T")]
    pub grant_types: Vec<String>,
    /// This client's own budget of token-side requests per minute (1-100000)
    #[arg(long, value_name = "N")]
    pub requests_per_minute: Option<i64>,
}

impl UpdateArgs {
    fn is_empty(&self) -> bool {
        self.add_redirect_uris.is_empty()
            && self.remove_redirect_uris.is_empty()
            && self.web_origins.is_empty()
            && self.scopes.is_empty()
            && self.name.is_none()
            && self.grant_types.is_empty()
            && self.requests_per_minute.is_none()
    }
}

/// What an update did.
#[derive(Debug, Clone)]
pub struct Updated {
    pub client: Client,
    /// Field name → `{"before": …, "after": …}` for every field that changed.
    pub changed: Map<String, Value>,
    /// Consents that held a scope the client may no longer ask for, now without it.
    pub consents_narrowed: usize,
    /// Tokens revoked because their family held a scope no longer allowed.
    pub tokens_revoked: usize,
}

/// The client as `args` would leave it, checked like `client add` checks a new one.
fn apply(before: &Client, args: &UpdateArgs, now: NaiveDateTime) -> Result<Client, CliError> {
    let mut c = before.clone();
    let mut redirects = before.redirect_uri_list();
    rules::uris(&args.add_redirect_uris)?;
    for r in &args.remove_redirect_uris {
        let Some(i) = redirects.iter().position(|x| x == r) else {
            return Err(CliError(format!(
                "{r:?} is not a registered redirect URI of {}",
                before.client_id
            )));
        };
        redirects.remove(i);
    }
    for a in &args.add_redirect_uris {
        if !redirects.contains(a) {
            redirects.push(a.clone());
        }
    }
    if !args.remove_redirect_uris.is_empty() && redirects.is_empty() {
        return Err(CliError(
            "the last redirect URI cannot be removed: add the new one in the same command (--add-redirect-uri)".into(),
        ));
    }
    rules::uris(&redirects)?;
    let grant_types = if args.grant_types.is_empty() {
        before.grant_type_list()
    } else {
        rules::grant_types(&args.grant_types)?;
        let mut g: Vec<String> = Vec::new();
        for t in &args.grant_types {
            if !g.contains(t) {
                g.push(t.clone());
            }
        }
        g
    };
    rules::grants_fit(before.public, &grant_types, &redirects)?;
    if !args.scopes.is_empty() {
        c.scopes = scope::join(&rules::scopes(&args.scopes)?);
    }
    if !args.web_origins.is_empty() {
        c.web_origins = to_json(&rules::web_origins(&args.web_origins)?)?;
    }
    if let Some(n) = &args.name {
        rules::name(n)?;
        c.name = n.clone();
    }
    if let Some(n) = args.requests_per_minute {
        c.requests_per_minute = Some(rules::requests_per_minute(n)?);
    }
    c.redirect_uris = to_json(&redirects)?;
    c.grant_types = to_json(&grant_types)?;
    c.updated_at = Some(now);
    Ok(c)
}

fn to_json(list: &[String]) -> Result<String, CliError> {
    serde_json::to_string(list).map_err(|e| CliError(format!("cannot encode a list: {e}")))
}

/// The fields that differ, with their values before and after (no secrets live here).
fn differences(a: &Client, b: &Client) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |field: &str, before: Value, after: Value| {
        if before != after {
            m.insert(field.into(), json!({"before": before, "after": after}));
        }
    };
    put("name", json!(a.name), json!(b.name));
    put(
        "redirect_uris",
        json!(a.redirect_uri_list()),
        json!(b.redirect_uri_list()),
    );
    put(
        "web_origins",
        json!(a.web_origin_list()),
        json!(b.web_origin_list()),
    );
    put("scopes", json!(a.scope_list()), json!(b.scope_list()));
    put(
        "grant_types",
        json!(a.grant_type_list()),
        json!(b.grant_type_list()),
    );
    put(
        "requests_per_minute",
        json!(a.requests_per_minute),
        json!(b.requests_per_minute),
    );
    m
}

/// Changes a client in one transaction, audited as `admin.client.update` with each changed
/// field before and after. When scopes are taken away, each consent loses them (so users are
/// asked again should they come back), token families holding one are revoked, and codes not
/// yet exchanged are deleted.
pub fn update(
    conn: &mut DbConn,
    args: &UpdateArgs,
    now: NaiveDateTime,
) -> Result<Updated, CliError> {
    if args.is_empty() {
        return Err(nothing_to_change());
    }
    rules::client_id(&args.client_id)?;
    tx(conn, |c| {
        let before = clients::find(c, &args.client_id)?
            .ok_or_else(|| CliError(format!("no client {:?}", args.client_id)))?;
        let after = apply(&before, args, now)?;
        let changed = differences(&before, &after);
        if changed.is_empty() {
            return Ok(Updated {
                client: before,
                changed,
                consents_narrowed: 0,
                tokens_revoked: 0,
            });
        }
        clients::save_changes(c, &after)?;
        let allowed = after.scope_list();
        let gone: Vec<String> = before
            .scope_list()
            .into_iter()
            .filter(|s| !allowed.contains(s))
            .collect();
        let (consents_narrowed, tokens_revoked) = if gone.is_empty() {
            (0, 0)
        } else {
            narrow(c, &after.client_id, &gone, now)?
        };
        audit_change(
            c,
            "admin.client.update",
            None,
            Some(&after.client_id),
            json!({
                "changed": changed,
                "consents_narrowed": consents_narrowed,
                "tokens_revoked": tokens_revoked,
            }),
        )?;
        Ok(Updated {
            client: after,
            changed,
            consents_narrowed,
            tokens_revoked,
        })
    })
}

/// Takes `gone` scopes out of the client's consents, revokes token families holding any of
/// them and deletes codes not yet exchanged. Returns (consents narrowed, tokens revoked).
fn narrow(
    c: &mut DbConn,
    client_id: &str,
    gone: &[String],
    now: NaiveDateTime,
) -> Result<(usize, usize), CliError> {
    let holds_gone = |scopes: &str| {
        scopes
            .split_whitespace()
            .any(|s| gone.iter().any(|g| g == s))
    };
    let mut narrowed = 0;
    for mut consent in consents::for_client(c, client_id)? {
        if holds_gone(&consent.scopes) {
            let kept: Vec<String> = consent
                .scopes
                .split_whitespace()
                .filter(|s| !gone.iter().any(|g| g == s))
                .map(str::to_string)
                .collect();
            consent.scopes = scope::join(&kept);
            consent.updated_at = now;
            consents::put(c, &consent)?;
            narrowed += 1;
        }
    }
    let mut families: Vec<String> = tokens::live_scopes_of_client(c, client_id)?
        .into_iter()
        .filter(|(_, s)| holds_gone(s))
        .map(|(f, _)| f)
        .collect();
    families.sort();
    families.dedup();
    let mut revoked = 0;
    for f in &families {
        revoked += tokens::revoke_family(c, f)?;
    }
    auth_codes::delete_unused_for_client(c, client_id)?;
    Ok((narrowed, revoked))
}

/// A new secret for a confidential client, returned once; only its hash is stored. With
/// `keep_old_for` seconds (at most 30 days) the old secret keeps working until then;
/// otherwise it stops at once. Audited as `admin.client.rotate_secret` without either secret.
pub fn rotate_secret(
    conn: &mut DbConn,
    client_id: &str,
    keep_old_for: Option<i64>,
    now: NaiveDateTime,
) -> Result<(String, Option<NaiveDateTime>), CliError> {
    let keep = keep_old_for.unwrap_or(0);
    if !(0..=MAX_KEEP_OLD_FOR).contains(&keep) {
        return Err(CliError(format!(
            "--keep-old-for must be between 0 and {MAX_KEEP_OLD_FOR} seconds (30 days)"
        )));
    }
    tx(conn, |c| {
        let client = clients::find(c, client_id)?
            .ok_or_else(|| CliError(format!("no client {client_id:?}")))?;
        if client.public {
            return Err(CliError(format!(
                "client {client_id:?} is public: it has no secret to rotate"
            )));
        }
        let secret = random_token();
        let hash = sha256_hex(&secret);
        let until = (keep > 0).then(|| now + Duration::seconds(keep));
        let previous = match (&client.secret_hash, until) {
            (Some(old), Some(t)) => Some((old.as_str(), t)),
            _ => None,
        };
        clients::set_secret(c, client_id, &hash, previous, now)?;
        let previous_until = previous.map(|(_, t)| t);
        audit_change(
            c,
            "admin.client.rotate_secret",
            None,
            Some(client_id),
            json!({
                "keep_old_for": keep,
                "previous_valid_until": previous_until.map(|t| t.and_utc().to_rfc3339()),
            }),
        )?;
        Ok((secret, previous_until))
    })
}

/// `portcullis client update`.
pub fn run_update(config: &Config, args: UpdateArgs, json: bool) -> Result<(), CliError> {
    if args.is_empty() {
        return Err(nothing_to_change());
    }
    let mut conn = open(config)?;
    let u = update(&mut conn, &args, clock().naive())?;
    let names: Vec<&String> = u.changed.keys().collect();
    let mut doc = crate::cli::client::client_json(&u.client);
    doc["changed"] = json!(names);
    doc["consents_narrowed"] = json!(u.consents_narrowed);
    doc["tokens_revoked"] = json!(u.tokens_revoked);
    let text = if names.is_empty() {
        format!("client {}: nothing changed", args.client_id)
    } else {
        let mut t = format!(
            "client {}: changed {}",
            args.client_id,
            names
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        if u.consents_narrowed > 0 || u.tokens_revoked > 0 {
            t.push_str(&format!(
                "\n{} consent(s) narrowed (users are asked again for removed scopes), {} token(s) revoked",
                u.consents_narrowed, u.tokens_revoked
            ));
        }
        t
    };
    output(json, &doc, &text);
    Ok(())
}

fn nothing_to_change() -> CliError {
    CliError(
        "nothing to change: give --add-redirect-uri, --remove-redirect-uri, --web-origin, --scope, --name, --grant-type or --requests-per-minute".into(),
    )
}

/// `portcullis client rotate-secret`.
pub fn run_rotate_secret(
    config: &Config,
    client_id: &str,
    keep_old_for: Option<i64>,
    json: bool,
) -> Result<(), CliError> {
    let mut conn = open(config)?;
    let (secret, until) = rotate_secret(&mut conn, client_id, keep_old_for, clock().naive())?;
    let until_text = until.map(|t| t.and_utc().to_rfc3339());
    let doc = json!({
        "client_id": client_id,
        "client_secret": secret,
        "previous_secret_valid_until": until_text,
    });
    let old = match &until_text {
        Some(t) => format!("the old secret keeps working until {t}"),
        None => "the old secret no longer works".to_string(),
    };
    output(
        json,
        &doc,
        &format!(
            "client_id: {client_id}\nclient_secret: {secret}\n(the secret is shown once: store it now; {old})"
        ),
    );
    Ok(())
}
