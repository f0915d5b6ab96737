//! The token endpoint's use case: client authentication, then oxide-auth's access-token or
//! refresh flow over our primitives, with its error codes corrected to RFC 6749 / RFC 7636.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chrono::NaiveDateTime;
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::endpoint::{AccessTokenFlow, ClientCredentialsFlow, RefreshFlow};
use oxide_auth::frontends::simple::request::{Body, Request, Response, Status};
use serde_json::{Map, Value, json};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use crate::audit::{self, Event};
use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::oauth::client_auth::{self, ClientAuthError};
use crate::oauth::errors::TokenError;
use crate::oauth::primitives::{
    Approved, DbAuthorizer, DbIssuer, Flags, FlowEndpoint, OidcExtension, OneClient,
};
use crate::protocol::grant_data::GrantData;
use crate::protocol::scope;
use crate::store::clients::Client;

/// What the token endpoint answers.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenReply {
    Success(Map<String, Value>),
    Error {
        error: TokenError,
        description: String,
        /// Set for 401 answers.
        www_authenticate: Option<String>,
    },
}

impl TokenReply {
    pub fn err(error: TokenError, description: &str) -> TokenReply {
        TokenReply::Error {
            error,
            description: description.to_string(),
            www_authenticate: None,
        }
    }
}

/// Handles one token request: the form body as pairs, and the Authorization header if any.
pub fn token(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    pairs: &[(String, String)],
    authorization: Option<&str>,
    now: NaiveDateTime,
) -> Result<TokenReply, InternalError> {
    let form: BTreeMap<String, String> = match client_auth::single_valued(pairs) {
        Ok(f) => f,
        Err(k) => {
            return Ok(TokenReply::err(
                TokenError::InvalidRequest,
                &format!("parameter {k} is repeated"),
            ));
        }
    };
    let (client, creds) =
        match client_auth::authenticate_audited(conn, ctx, "token", authorization, &form, now)? {
            Ok(pair) => pair,
            Err(e) => return Ok(client_auth_error(e)),
        };
    let grant_type = match form.get("grant_type") {
        Some(g) if !g.is_empty() => g.clone(),
        _ => {
            return Ok(TokenReply::err(
                TokenError::InvalidRequest,
                "grant_type is required",
            ));
        }
    };
    if !matches!(
        grant_type.as_str(),
        "authorization_code" | "refresh_token" | "client_credentials"
    ) {
        return Ok(TokenReply::err(
            TokenError::UnsupportedGrantType,
            "this grant type is not supported",
        ));
    }
    if !client.grant_type_list().contains(&grant_type) {
        return Ok(TokenReply::err(
            TokenError::UnauthorizedClient,
            "the client may not use this grant type",
        ));
    }
    // A retry of a refresh within the reuse window gets the answer its rotation gave.
    let refresh_form = (grant_type == "refresh_token").then(|| form.clone());
    if let Some(f) = &refresh_form
        && let Some(reply) = crate::oauth::refresh_reuse::retry(conn, ctx, &client, f, now)?
    {
        return Ok(reply);
    }
    let granted = if grant_type == "client_credentials" {
        if client.public {
            return Ok(TokenReply::err(
                TokenError::UnauthorizedClient,
                "public clients cannot use client_credentials",
            ));
        }
        match client_credentials_scope(&client, form.get("scope").map(String::as_str)) {
            Ok(s) => Some(s),
            Err(reply) => return Ok(reply),
        }
    } else {
        None
    };
    // oxide-auth reads credentials from a Basic header (its refresh flow only from there), and
    // does not form-decode them: hand it the already authenticated pair in a uniform way.
    let mut body: HashMap<String, String> = form.into_iter().collect();
    body.remove("client_secret");
    let auth = match (&creds.secret, client.public) {
        (Some(secret), false) => Some(format!(
            "Basic {}",
            STANDARD.encode(format!("{}:{}", client.client_id, secret))
        )),
        _ => None,
    };
    if auth.is_some() {
        body.remove("client_id");
    } else {
        body.insert("client_id".into(), client.client_id.clone());
    }
    let request = Request {
        query: HashMap::new(),
        urlbody: body,
        auth,
    };
    let reply = run_flow(conn, ctx, &client, &grant_type, granted, request, now)?;
    if let (Some(f), TokenReply::Success(body)) = (&refresh_form, &reply) {
        crate::oauth::refresh_reuse::keep(conn, ctx, f, body)?;
    }
    Ok(reply)
}

/// The scope of a client-credentials token: what was asked, limited to what the client is
/// registered for, never a scope about a user; all of its API scopes when nothing was asked.
fn client_credentials_scope(
    client: &Client,
    requested: Option<&str>,
) -> Result<String, TokenReply> {
    let registered: Vec<String> = client
        .scope_list()
        .into_iter()
        .filter(|s| !scope::USER_SCOPES.contains(&s.as_str()))
        .collect();
    let wanted = match requested {
        Some(r) => scope::parse(r).map_err(|m| TokenReply::err(TokenError::InvalidScope, &m))?,
        None => Vec::new(),
    };
    let chosen: Vec<String> = if wanted.is_empty() {
        registered
    } else {
        if let Some(bad) = wanted.iter().find(|w| !registered.contains(w)) {
            return Err(TokenReply::err(
                TokenError::InvalidScope,
                &format!("scope {bad} is not registered for this client"),
            ));
        }
        wanted
    };
    if chosen.is_empty() {
        return Err(TokenReply::err(
            TokenError::InvalidScope,
            "the client has no scope it may use with client_credentials",
        ));
    }
    Ok(scope::join(&chosen))
}

fn run_flow(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    client: &Client,
    grant_type: &str,
    granted: Option<String>,
    request: Request,
    now: NaiveDateTime,
) -> Result<TokenReply, InternalError> {
    let flags = RefCell::new(Flags::default());
    let shared = RefCell::new(conn);
    let (result, id_token, expires_in) = {
        let mut endpoint = FlowEndpoint {
            registrar: OneClient {
                client,
                granted,
                placeholder: ctx.config.issuer.clone(),
                now,
            },
            authorizer: Some(DbAuthorizer {
                conn: &shared,
                client_id: &client.client_id,
                now,
                code_lifetime: ctx.config.lifetimes.code,
                facts: GrantData::default(),
                flags: &flags,
                issued_code: None,
            }),
            issuer: Some(DbIssuer {
                conn: &shared,
                ctx,
                now,
                client,
                flags: &flags,
                id_token: None,
                expires_in: ctx.config.lifetimes.access_token,
            }),
            solicitor: Some(Approved(String::new())),
            extension: OidcExtension {
                pkce: if client.public {
                    Pkce::required()
                } else {
                    Pkce::optional()
                },
                flags: &flags,
            },
        };
        let result = match grant_type {
            "authorization_code" => AccessTokenFlow::prepare(&mut endpoint).and_then(|mut f| {
                f.allow_credentials_in_body(true);
                f.execute(request)
            }),
            "client_credentials" => {
                ClientCredentialsFlow::prepare(&mut endpoint).and_then(|mut f| f.execute(request))
            }
            _ => RefreshFlow::prepare(&mut endpoint).and_then(|mut f| f.execute(request)),
        };
        let (id_token, expires_in) = endpoint
            .issuer
            .map(|i| (i.id_token, i.expires_in))
            .unwrap_or((None, ctx.config.lifetimes.access_token));
        (result, id_token, expires_in)
    };
    let flags = flags.into_inner();
    if let Some(e) = flags.internal {
        return Err(e);
    }
    let conn = shared.into_inner();
    if flags.code_replayed {
        audit::record(
            conn,
            ctx.meta,
            now,
            Event::new("code.replay", "attack")
                .client(&client.client_id)
                .details(json!({"action": "tokens of the first exchange revoked"})),
        )?;
        audit::detect::replay(conn, ctx, now, &client.client_id, "authorization code")?;
    }
    if flags.refresh_reused {
        audit::record(
            conn,
            ctx.meta,
            now,
            Event::new("token.reuse", "attack")
                .client(&client.client_id)
                .details(json!({"action": "token family revoked"})),
        )?;
        audit::detect::replay(conn, ctx, now, &client.client_id, "refresh token")?;
    }
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            if flags.bad_grant {
                return Ok(TokenReply::err(
                    TokenError::InvalidGrant,
                    "the grant is invalid, expired or already used",
                ));
            }
            return Err(InternalError::with("the token flow failed", e));
        }
    };
    let reply = convert(response, &flags, id_token, expires_in);
    if let TokenReply::Success(_) = &reply {
        ctx.metrics.token(grant_type);
    }
    let (event, outcome, details) = match &reply {
        TokenReply::Success(body) => (
            if grant_type == "refresh_token" {
                "token.refresh"
            } else {
                "token.issue"
            },
            "success",
            json!({"grant_type": grant_type, "scope": body.get("scope")}),
        ),
        TokenReply::Error { error, .. } => (
            "token.issue",
            "failure",
            json!({"grant_type": grant_type, "error": error.code()}),
        ),
    };
    audit::record(
        conn,
        ctx.meta,
        now,
        Event::new(event, outcome)
            .client(&client.client_id)
            .details(details),
    )?;
    if outcome == "failure" {
        audit::detect::after_token_error(conn, ctx, now, &client.client_id)?;
    }
    Ok(reply)
}

/// Turns oxide-auth's answer into ours, correcting its error codes.
fn convert(r: Response, flags: &Flags, id_token: Option<String>, expires_in: i64) -> TokenReply {
    let body: Map<String, Value> = r
        .body
        .as_ref()
        .map(Body::as_str)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    match r.status {
        Status::Ok => {
            let mut out = Map::new();
            for key in ["access_token", "refresh_token"] {
                if let Some(v) = body.get(key) {
                    out.insert(key.into(), v.clone());
                }
            }
            if let Some(s) = body.get("scope").and_then(Value::as_str) {
                out.insert("scope".into(), json!(scope::normalize(s)));
            }
            out.insert("token_type".into(), json!("Bearer"));
            out.insert("expires_in".into(), json!(expires_in));
            if let Some(t) = id_token {
                out.insert("id_token".into(), json!(t));
            }
            TokenReply::Success(out)
        }
        Status::Unauthorized => client_auth_error(ClientAuthError::Failed { basic: true }),
        _ => {
            let code = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("invalid_request");
            let error = if flags.pkce_failed {
                return TokenReply::err(
                    TokenError::InvalidGrant,
                    "the PKCE code_verifier does not match",
                );
            } else if flags.bad_grant {
                TokenError::InvalidGrant
            } else {
                TokenError::from_code(code).unwrap_or(TokenError::InvalidRequest)
            };
            let description = match error {
                TokenError::InvalidGrant => "the grant is invalid, expired or already used",
                TokenError::InvalidScope => "the requested scope exceeds what was granted",
                TokenError::UnsupportedGrantType => "this grant type is not supported",
                _ => "the request is missing a parameter or malformed",
            };
            TokenReply::err(error, description)
        }
    }
}

/// A token-side request's authenticated client and its single-valued form.
pub type AuthenticatedForm = (Client, BTreeMap<String, String>);

/// The form of a token-side request (single-valued) and its authenticated client, or the
/// error answer.
pub fn authenticated_form(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    endpoint: &str,
    pairs: &[(String, String)],
    authorization: Option<&str>,
    now: NaiveDateTime,
) -> Result<Result<AuthenticatedForm, TokenReply>, InternalError> {
    let form = match client_auth::single_valued(pairs) {
        Ok(f) => f,
        Err(k) => {
            return Ok(Err(TokenReply::err(
                TokenError::InvalidRequest,
                &format!("parameter {k} is repeated"),
            )));
        }
    };
    match client_auth::authenticate_audited(conn, ctx, endpoint, authorization, &form, now)? {
        Ok((client, _)) => Ok(Ok((client, form))),
        Err(e) => Ok(Err(client_auth_error(e))),
    }
}

pub fn client_auth_error(e: ClientAuthError) -> TokenReply {
    match e {
        ClientAuthError::Malformed(m) => TokenReply::err(TokenError::InvalidRequest, m),
        // 401 with a Basic challenge whichever way the client tried (RFC 6749 §5.2 allows it).
        ClientAuthError::Failed { .. } | ClientAuthError::WrongMethod { .. } => TokenReply::Error {
            error: TokenError::InvalidClient,
            description: "client authentication failed".into(),
            www_authenticate: Some("Basic realm=\"portcullis\"".into()),
        },
    }
}
