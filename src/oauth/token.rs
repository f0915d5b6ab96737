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
use crate::oauth::client_auth;
use crate::oauth::errors::{GRANT_INVALID, OAuthError, TokenError};
use crate::oauth::primitives::{
    Approved, DbAuthorizer, DbIssuer, Flags, FlowEndpoint, OidcExtension, OneClient,
};
use crate::protocol::grant_data::GrantData;
use crate::protocol::scope;
use crate::store::clients::Client;

/// A successful token response: `access_token`, `token_type`, `expires_in` and, as granted,
/// `refresh_token`, `scope` and `id_token`.
pub type TokenResponse = Map<String, Value>;

/// Handles one token request: the form body as pairs, and the Authorization header if any.
/// A refusal may have written what must stay (see `transaction_keeping_refusals`).
pub fn token(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    pairs: &[(String, String)],
    authorization: Option<&str>,
    now: NaiveDateTime,
) -> Result<TokenResponse, OAuthError> {
    let form = single_valued(pairs)?;
    let (client, creds) =
        client_auth::authenticate_audited(conn, ctx, "token", authorization, &form, now)?;
    let grant_type = match form.get("grant_type") {
        Some(g) if !g.is_empty() => g.clone(),
        _ => return Err(OAuthError::InvalidRequest("grant_type is required".into())),
    };
    if !matches!(
        grant_type.as_str(),
        "authorization_code" | "refresh_token" | "client_credentials"
    ) {
        return Err(OAuthError::UnsupportedGrantType);
    }
    if !client.grant_type_list().contains(&grant_type) {
        return Err(OAuthError::UnauthorizedClient(
            "the client may not use this grant type",
        ));
    }
    // A retry of a refresh within the reuse window gets the answer its rotation gave.
    let refresh_form = (grant_type == "refresh_token").then(|| form.clone());
    if let Some(f) = &refresh_form
        && let Some(body) = crate::oauth::refresh_reuse::retry(conn, ctx, &client, f, now)?
    {
        return Ok(body);
    }
    let granted = if grant_type == "client_credentials" {
        if client.public {
            return Err(OAuthError::UnauthorizedClient(
                "public clients cannot use client_credentials",
            ));
        }
        Some(client_credentials_scope(
            &client,
            form.get("scope").map(String::as_str),
        )?)
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
    let answer = run_flow(conn, ctx, &client, &grant_type, granted, request, now)?;
    if let Some(f) = &refresh_form {
        crate::oauth::refresh_reuse::keep(conn, ctx, f, &answer)?;
    }
    Ok(answer)
}

/// The form of a token-side request: each parameter at most once.
fn single_valued(pairs: &[(String, String)]) -> Result<BTreeMap<String, String>, OAuthError> {
    client_auth::single_valued(pairs)
        .map_err(|k| OAuthError::InvalidRequest(format!("parameter {k} is repeated").into()))
}

/// The scope of a client-credentials token: what was asked, limited to what the client is
/// registered for, never a scope about a user; all of its API scopes when nothing was asked.
fn client_credentials_scope(
    client: &Client,
    requested: Option<&str>,
) -> Result<String, OAuthError> {
    let registered: Vec<String> = client
        .scope_list()
        .into_iter()
        .filter(|s| !scope::USER_SCOPES.contains(&s.as_str()))
        .collect();
    let wanted = match requested {
        Some(r) => scope::parse(r).map_err(|m| OAuthError::InvalidScope(m.into()))?,
        None => Vec::new(),
    };
    let chosen: Vec<String> = if wanted.is_empty() {
        registered
    } else {
        if let Some(bad) = wanted.iter().find(|w| !registered.contains(w)) {
            return Err(OAuthError::InvalidScope(
                format!("scope {bad} is not registered for this client").into(),
            ));
        }
        wanted
    };
    if chosen.is_empty() {
        return Err(OAuthError::InvalidScope(
            "the client has no scope it may use with client_credentials".into(),
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
) -> Result<TokenResponse, OAuthError> {
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
        return Err(e.into());
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
                return Err(OAuthError::InvalidGrant(GRANT_INVALID));
            }
            return Err(InternalError::with("the token flow failed", e).into());
        }
    };
    let answer = convert(response, &flags, id_token, expires_in);
    if answer.is_ok() {
        ctx.metrics.token(grant_type);
    }
    let (event, outcome, details) = match &answer {
        Ok(body) => (
            if grant_type == "refresh_token" {
                "token.refresh"
            } else {
                "token.issue"
            },
            "success",
            json!({"grant_type": grant_type, "scope": body.get("scope")}),
        ),
        Err(e) => (
            "token.issue",
            "failure",
            json!({"grant_type": grant_type, "error": e.code()}),
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
    answer
}

/// Turns oxide-auth's answer into ours, correcting its error codes.
fn convert(
    r: Response,
    flags: &Flags,
    id_token: Option<String>,
    expires_in: i64,
) -> Result<TokenResponse, OAuthError> {
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
            Ok(out)
        }
        Status::Unauthorized => Err(OAuthError::InvalidClient { basic: true }),
        _ if flags.pkce_failed => Err(OAuthError::InvalidGrant(
            "the PKCE code_verifier does not match",
        )),
        _ if flags.bad_grant => Err(OAuthError::InvalidGrant(GRANT_INVALID)),
        _ => {
            let code = body
                .get("error")
                .and_then(Value::as_str)
                .unwrap_or("invalid_request");
            // oxide-auth's grant flows answer 400 only with these codes.
            Err(match TokenError::from_code(code) {
                Some(TokenError::InvalidGrant) => OAuthError::InvalidGrant(GRANT_INVALID),
                Some(TokenError::InvalidScope) => {
                    OAuthError::InvalidScope("the requested scope exceeds what was granted".into())
                }
                Some(TokenError::UnsupportedGrantType) => OAuthError::UnsupportedGrantType,
                _ => OAuthError::InvalidRequest(
                    "the request is missing a parameter or malformed".into(),
                ),
            })
        }
    }
}

/// A token-side request's authenticated client and its single-valued form.
pub type AuthenticatedForm = (Client, BTreeMap<String, String>);

/// The form of a token-side request (single-valued) and its authenticated client. A refused
/// client is audited first.
pub fn authenticated_form(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    endpoint: &str,
    pairs: &[(String, String)],
    authorization: Option<&str>,
    now: NaiveDateTime,
) -> Result<AuthenticatedForm, OAuthError> {
    let form = single_valued(pairs)?;
    let (client, _) =
        client_auth::authenticate_audited(conn, ctx, endpoint, authorization, &form, now)?;
    Ok((client, form))
}
