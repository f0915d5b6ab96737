//! `portcullis client …`

use clap::Subcommand;
use serde_json::json;

use crate::cli::client_rules as rules;
use crate::cli::{CliError, clock, open, output, tx};
use crate::config::Config;
use crate::keys::secrets::{random_token, sha256_hex};
use crate::protocol::scope;
use crate::store::clients::{self, Client};

#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Register a client application; prints its secret once
    Add {
        /// The client_id applications send (letters, digits, ._-)
        client_id: String,
        /// An exact redirect URI (repeatable); no wildcards; `http` only on loopback, where
        /// `http://127.0.0.1/PATH` without a port matches any port (native apps)
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// An exact URI the app may return to after sign-out (repeatable)
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// The name shown on the consent page (defaults to the client_id)
        #[arg(long)]
        name: Option<String>,
        /// A public client (no secret; PKCE required)
        #[arg(long)]
        public: bool,
        /// A scope the client may ask for (repeatable; a value with spaces counts as several
        /// scopes). Refresh tokens need `offline_access`. Default: openid profile email groups
        /// (and offline_access with the refresh_token grant)
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// authorization_code, refresh_token or client_credentials (repeatable)
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// client_secret_basic (default), client_secret_post, or none for public clients;
        /// the client must use exactly this method
        #[arg(long)]
        auth_method: Option<String>,
        /// Do not ask users for consent (first-party applications only)
        #[arg(long)]
        skip_consent: bool,
        /// Users always sign in with two factors here; those without one enrol first
        #[arg(long)]
        require_mfa: bool,
        /// Where signed logout tokens are posted when a user signs out (OIDC back-channel)
        #[arg(long)]
        backchannel_logout_uri: Option<String>,
        /// RS256 (default), ES256 or EdDSA; EdDSA needs a modern relying party
        #[arg(long)]
        id_token_alg: Option<String>,
        /// An origin (scheme://host[:port]) whose pages may call the token, revocation,
        /// introspection and userinfo endpoints with fetch (CORS; repeatable)
        #[arg(long = "web-origin")]
        web_origins: Vec<String>,
        /// Also allow the origin of each https (or loopback http) redirect URI (CORS)
        #[arg(long)]
        web_origins_from_redirect_uris: bool,
        /// This client's own budget of token-side requests per minute (1-100000; default:
        /// the configured rate limit)
        #[arg(long, value_name = "N")]
        requests_per_minute: Option<i64>,
    },
    /// List clients
    List,
    /// Show one client
    Show { client_id: String },
    /// Remove a client with its codes, tokens and consents
    Remove { client_id: String },
    /// Change a registered client; each list flag given replaces that list, except
    /// --add-redirect-uri and --remove-redirect-uri, which edit it
    Update(crate::cli::client_update::UpdateArgs),
    /// Give a confidential client a new secret, printed once; --keep-old-for lets the old
    /// one keep working for that many seconds (at most 30 days)
    RotateSecret {
        client_id: String,
        /// Seconds the old secret keeps working (0-2592000; default 0: it stops at once)
        #[arg(long, value_name = "SECS")]
        keep_old_for: Option<i64>,
    },
}

pub(crate) fn client_json(c: &Client) -> serde_json::Value {
    json!({
        "client_id": c.client_id,
        "name": c.name,
        "public": c.public,
        "redirect_uris": c.redirect_uri_list(),
        "web_origins": c.web_origin_list(),
        "post_logout_redirect_uris": c.post_logout_redirect_uri_list(),
        "scopes": c.scope_list(),
        "grant_types": c.grant_type_list(),
        "token_endpoint_auth_method": c.auth_method,
        "skip_consent": c.skip_consent,
        "require_mfa": c.require_mfa,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "id_token_signed_response_alg": c.id_token_alg,
        "created_at": c.created_at.and_utc().to_rfc3339(),
        "requests_per_minute": c.requests_per_minute,
        "updated_at": c.updated_at.map(|t| t.and_utc().to_rfc3339()),
    })
}

pub fn run(config: &Config, cmd: ClientCommand, json: bool) -> Result<(), CliError> {
    let now = clock().naive();
    match cmd {
        ClientCommand::Add {
            client_id,
            redirect_uris,
            post_logout_redirect_uris,
            name,
            public,
            scopes,
            grant_types,
            auth_method,
            skip_consent,
            require_mfa,
            backchannel_logout_uri,
            id_token_alg,
            web_origins,
            web_origins_from_redirect_uris,
            requests_per_minute,
        } => {
            rules::client_id(&client_id)?;
            let web_origins = crate::oauth::web_origin::registration_list(
                &web_origins,
                web_origins_from_redirect_uris.then_some(redirect_uris.as_slice()),
            )
            .map_err(CliError)?;
            let grant_types = if grant_types.is_empty() {
                vec![
                    "authorization_code".to_string(),
                    "refresh_token".to_string(),
                ]
            } else {
                grant_types
            };
            rules::grant_types(&grant_types)?;
            rules::grants_fit(public, &grant_types, &redirect_uris)?;
            rules::uris(&redirect_uris)?;
            rules::uris(&post_logout_redirect_uris)?;
            if let Some(u) = &backchannel_logout_uri {
                rules::uris(std::slice::from_ref(u))?;
            }
            let requests_per_minute = requests_per_minute
                .map(rules::requests_per_minute)
                .transpose()?;
            let auth_method = match (auth_method.as_deref(), public) {
                (None, true) | (Some("none"), true) => "none",
                (None, false) => "client_secret_basic",
                (Some(m @ ("client_secret_basic" | "client_secret_post")), false) => m,
                (Some("none"), false) => {
                    return Err(CliError("--auth-method none needs --public".into()));
                }
                (Some(m), true) if m != "none" => {
                    return Err(CliError("a --public client uses --auth-method none".into()));
                }
                (Some("private_key_jwt"), _) => {
                    return Err(CliError("--auth-method private_key_jwt is not supported yet".into()));
                }
                (Some(m), _) => {
                    return Err(CliError(format!(
                        "unknown --auth-method {m:?}: use client_secret_basic, client_secret_post or none"
                    )));
                }
            }
            .to_string();
            let alg = id_token_alg.unwrap_or_else(|| "RS256".into());
            if !crate::keys::algs::ALL.contains(&alg.as_str()) {
                return Err(CliError(format!(
                    "unsupported --id-token-alg {alg}: use RS256, ES256 or EdDSA"
                )));
            }
            let scopes: Vec<String> = if scopes.is_empty() {
                let mut d = vec!["openid", "profile", "email", "groups"];
                if grant_types.iter().any(|g| g == "refresh_token") {
                    d.push("offline_access");
                }
                d.into_iter().map(str::to_string).collect()
            } else {
                rules::scopes(&scopes)?
            };
            let name = name.unwrap_or_else(|| client_id.clone());
            rules::name(&name)?;
            let secret = (!public).then(random_token);
            let client = Client {
                client_id: client_id.clone(),
                name,
                secret_hash: secret.as_deref().map(sha256_hex),
                public,
                redirect_uris: serde_json::to_string(&redirect_uris).unwrap_or_default(),
                post_logout_redirect_uris: serde_json::to_string(&post_logout_redirect_uris)
                    .unwrap_or_default(),
                scopes: scope::join(&scopes),
                grant_types: serde_json::to_string(&grant_types).unwrap_or_default(),
                auth_method,
                skip_consent,
                require_mfa,
                backchannel_logout_uri,
                id_token_alg: alg,
                created_at: now,
                web_origins: serde_json::to_string(&web_origins).unwrap_or_default(),
                previous_secret_hash: None,
                previous_secret_expires_at: None,
                requests_per_minute,
                updated_at: None,
            };
            let mut conn = open(config)?;
            tx(&mut conn, |c| {
                if clients::find(c, &client_id)?.is_some() {
                    return Err(CliError(format!("client {client_id:?} already exists")));
                }
                clients::insert(c, &client)?;
                crate::cli::audit_change(
                    c,
                    "admin.client.add",
                    None,
                    Some(&client_id),
                    serde_json::json!({
                        "public": client.public,
                        "grant_types": client.grant_type_list(),
                        "redirect_uris": client.redirect_uri_list(),
                        "web_origins": client.web_origin_list(),
                    }),
                )?;
                Ok(())
            })?;
            let doc = json!({"client_id": client_id, "client_secret": secret});
            let text = match &secret {
                Some(s) => format!(
                    "client_id: {client_id}\nclient_secret: {s}\n(the secret is shown once: store it now)"
                ),
                None => {
                    format!("client_id: {client_id}\n(public client: no secret, PKCE required)")
                }
            };
            output(json, &doc, &text);
            Ok(())
        }
        ClientCommand::Update(args) => crate::cli::client_update::run_update(config, args, json),
        ClientCommand::RotateSecret {
            client_id,
            keep_old_for,
        } => crate::cli::client_update::run_rotate_secret(config, &client_id, keep_old_for, json),
        ClientCommand::List => {
            let mut conn = open(config)?;
            let list = clients::list(&mut conn)?;
            let doc = json!(list.iter().map(client_json).collect::<Vec<_>>());
            let text = std::iter::once("CLIENT_ID\tTYPE\tNAME".to_string())
                .chain(list.iter().map(|c| {
                    format!(
                        "{}\t{}\t{}",
                        c.client_id,
                        if c.public { "public" } else { "confidential" },
                        c.name
                    )
                }))
                .collect::<Vec<_>>()
                .join("\n");
            output(json, &doc, &text);
            Ok(())
        }
        ClientCommand::Show { client_id } => {
            let mut conn = open(config)?;
            let c = clients::find(&mut conn, &client_id)?
                .ok_or_else(|| CliError(format!("no client {client_id:?}")))?;
            let doc = client_json(&c);
            let text = serde_json::to_string_pretty(&doc).unwrap_or_default();
            output(json, &doc, &text);
            Ok(())
        }
        ClientCommand::Remove { client_id } => {
            let mut conn = open(config)?;
            tx(&mut conn, |c| {
                if clients::delete(c, &client_id)? == 0 {
                    return Err(CliError(format!("no client {client_id:?}")));
                }
                crate::cli::audit_change(
                    c,
                    "admin.client.remove",
                    None,
                    Some(&client_id),
                    serde_json::json!({}),
                )?;
                Ok(())
            })?;
            output(
                json,
                &json!({"client_id": client_id, "removed": true}),
                &format!("client {client_id} removed"),
            );
            Ok(())
        }
    }
}
