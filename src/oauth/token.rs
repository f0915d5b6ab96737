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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::db::DbConn;
    use crate::keys::secrets::sha256_hex;
    use crate::oauth::authorize::{self, Outcome};
    use crate::oauth::errors::transaction_keeping_refusals;
    use crate::sign_in::sessions::{self, Origin, Proof};
    use crate::store::sessions::Session;
    use crate::store::{audit_log, clients, tokens};
    use crate::testkit::{Env, db, user};

    /// The time of these requests: a fixed moment long after any test run. oxide-auth checks
    /// a code's and a refresh token's expiry against the system clock, so the flows' own time
    /// must be ahead of it.
    fn now() -> NaiveDateTime {
        chrono::DateTime::from_timestamp(4_102_444_800, 0)
            .unwrap()
            .naive_utc()
    }

    const REDIRECT: &str = "https://app.example/cb";
    const SECRET: &str = "the-client-secret";
    /// A PKCE verifier and its S256 challenge (RFC 7636 appendix B).
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    /// A confidential client that authenticates with a Basic header (secret hashed with
    /// SHA-256, as stored) and may use codes and refresh tokens.
    fn register(conn: &mut DbConn, client_id: &str) {
        clients::insert(
            conn,
            &Client {
                secret_hash: Some(sha256_hex(SECRET)),
                public: false,
                redirect_uris: serde_json::to_string(&[REDIRECT]).unwrap(),
                scopes: "openid offline_access".into(),
                grant_types: r#"["authorization_code","refresh_token"]"#.into(),
                auth_method: "client_secret_basic".into(),
                skip_consent: true,
                ..crate::testkit::public_client(client_id)
            },
        )
        .unwrap();
    }

    /// A fresh database with the client `app` registered, and a context to run in.
    fn with_app() -> (DbConn, Env) {
        let mut conn = db();
        register(&mut conn, "app");
        (conn, Env::new())
    }

    fn basic(client_id: &str, secret: &str) -> String {
        format!("Basic {}", STANDARD.encode(format!("{client_id}:{secret}")))
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A signed-in user: their session.
    fn signed_in(conn: &mut DbConn, env: &Env) -> Session {
        let uid = user(conn, "alice", now());
        let proof = Proof {
            amr: &["pwd"],
            password_at: Some(now()),
        };
        let lifetimes = &env.config.lifetimes;
        sessions::sign_in(
            conn,
            None,
            &uid,
            proof,
            &Origin::default(),
            now(),
            lifetimes,
        )
        .unwrap()
        .session
    }

    /// A code issued to `client_id` for the signed-in user, bound to `challenge` if any.
    fn code_for(
        conn: &mut DbConn,
        env: &Env,
        session: &Session,
        client_id: &str,
        challenge: Option<&str>,
    ) -> String {
        let mut request = pairs(&[
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("scope", "openid offline_access"),
        ]);
        if let Some(c) = challenge {
            request.extend(pairs(&[
                ("code_challenge", c),
                ("code_challenge_method", "S256"),
            ]));
        }
        let outcome = authorize::start(conn, env.ctx(), &request, Some(session), now()).unwrap();
        let Outcome::Respond(answer) = outcome else {
            panic!("no code was issued: {outcome:?}");
        };
        answer
            .params
            .into_iter()
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v)
            .expect("the answer carries a code")
    }

    /// The token endpoint as the handler runs it: one transaction that a refusal keeps.
    fn token_request(
        conn: &mut DbConn,
        env: &Env,
        client_id: &str,
        secret: &str,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, OAuthError> {
        let authorization = basic(client_id, secret);
        let form = pairs(form);
        transaction_keeping_refusals(conn, |c| {
            token(c, env.ctx(), &form, Some(&authorization), now())
        })
    }

    fn exchange(
        conn: &mut DbConn,
        env: &Env,
        code: &str,
        verifier: Option<&str>,
    ) -> Result<TokenResponse, OAuthError> {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
        ];
        form.extend(verifier.map(|v| ("code_verifier", v)));
        token_request(conn, env, "app", SECRET, &form)
    }

    fn refresh_as(
        conn: &mut DbConn,
        env: &Env,
        client_id: &str,
        refresh_token: &str,
    ) -> Result<TokenResponse, OAuthError> {
        token_request(
            conn,
            env,
            client_id,
            SECRET,
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ],
        )
    }

    fn field<'a>(body: &'a TokenResponse, key: &str) -> &'a str {
        body.get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("no {key} in {body:?}"))
    }

    fn revoked(conn: &mut DbConn, token: &str) -> bool {
        tokens::find(conn, &sha256_hex(token))
            .unwrap()
            .expect("the token is stored")
            .revoked
    }

    fn audited(conn: &mut DbConn, event: &str, outcome: &str) -> bool {
        audit_log::tail(conn, 100)
            .unwrap()
            .iter()
            .any(|e| e.event == event && e.outcome == outcome)
    }

    #[test]
    fn a_code_exchanged_twice_is_an_invalid_grant_the_second_time_and_revokes_the_first_tokens() {
        let (mut conn, env) = with_app();
        let session = signed_in(&mut conn, &env);
        let code = code_for(&mut conn, &env, &session, "app", None);
        let first = exchange(&mut conn, &env, &code, None).unwrap();
        let (access, refresh) = (
            field(&first, "access_token"),
            field(&first, "refresh_token"),
        );
        assert!(!revoked(&mut conn, access) && !revoked(&mut conn, refresh));

        let again = exchange(&mut conn, &env, &code, None).unwrap_err();

        assert!(
            matches!(again, OAuthError::InvalidGrant(GRANT_INVALID)),
            "{again:?}"
        );
        assert!(revoked(&mut conn, access), "the first access token");
        assert!(revoked(&mut conn, refresh), "the first refresh token");
        assert!(audited(&mut conn, "code.replay", "attack"));
    }

    #[test]
    fn a_wrong_pkce_verifier_is_an_invalid_grant_and_issues_nothing() {
        let (mut conn, env) = with_app();
        let session = signed_in(&mut conn, &env);
        let code = code_for(&mut conn, &env, &session, "app", Some(CHALLENGE));
        let wrong = "x".repeat(VERIFIER.len());

        let refused = exchange(&mut conn, &env, &code, Some(&wrong)).unwrap_err();

        assert!(
            matches!(
                refused,
                OAuthError::InvalidGrant("the PKCE code_verifier does not match")
            ),
            "{refused:?}"
        );
        assert!(audited(&mut conn, "token.issue", "failure"));
        assert!(!audited(&mut conn, "token.issue", "success"));
    }

    #[test]
    fn the_right_pkce_verifier_gets_the_tokens() {
        let (mut conn, env) = with_app();
        let session = signed_in(&mut conn, &env);
        let code = code_for(&mut conn, &env, &session, "app", Some(CHALLENGE));

        let tokens = exchange(&mut conn, &env, &code, Some(VERIFIER)).unwrap();

        assert_eq!(field(&tokens, "token_type"), "Bearer");
        assert!(!field(&tokens, "id_token").is_empty());
    }

    #[test]
    fn a_refresh_token_presented_by_another_client_is_an_invalid_grant_and_stays_usable() {
        let (mut conn, env) = with_app();
        register(&mut conn, "other");
        let session = signed_in(&mut conn, &env);
        let code = code_for(&mut conn, &env, &session, "app", None);
        let issued = exchange(&mut conn, &env, &code, None).unwrap();
        let refresh = field(&issued, "refresh_token");

        let refused = refresh_as(&mut conn, &env, "other", refresh).unwrap_err();

        assert!(
            matches!(refused, OAuthError::InvalidGrant(GRANT_INVALID)),
            "{refused:?}"
        );
        assert!(!revoked(&mut conn, refresh));
        let rotated = refresh_as(&mut conn, &env, "app", refresh).unwrap();
        assert_ne!(field(&rotated, "refresh_token"), refresh);
    }

    #[test]
    fn a_reused_refresh_token_is_an_invalid_grant_and_its_family_stays_revoked() {
        let (mut conn, mut env) = with_app();
        // No reuse window: the second use of a rotated token is reuse at once.
        env.config.lifetimes.refresh_reuse_window = 0;
        let session = signed_in(&mut conn, &env);
        let code = code_for(&mut conn, &env, &session, "app", None);
        let issued = exchange(&mut conn, &env, &code, None).unwrap();
        let first = field(&issued, "refresh_token");
        let rotated = refresh_as(&mut conn, &env, "app", first).unwrap();

        let reused = refresh_as(&mut conn, &env, "app", first).unwrap_err();

        assert!(
            matches!(reused, OAuthError::InvalidGrant(GRANT_INVALID)),
            "{reused:?}"
        );
        assert!(revoked(&mut conn, field(&rotated, "access_token")));
        assert!(revoked(&mut conn, field(&rotated, "refresh_token")));
        assert!(audited(&mut conn, "token.reuse", "attack"));
    }

    #[test]
    fn failed_client_authentication_is_invalid_client_by_basic_and_its_audit_is_kept() {
        let (mut conn, env) = with_app();

        let form = [("grant_type", "refresh_token"), ("refresh_token", "x")];
        let refused = token_request(&mut conn, &env, "app", "not-the-secret", &form).unwrap_err();

        assert!(
            matches!(refused, OAuthError::InvalidClient { basic: true }),
            "{refused:?}"
        );
        assert!(audited(&mut conn, "client.auth", "failure"));
    }

    #[test]
    fn a_grant_type_the_client_did_not_register_is_unauthorized_client() {
        let (mut conn, env) = with_app();

        let form = [("grant_type", "client_credentials")];
        let refused = token_request(&mut conn, &env, "app", SECRET, &form).unwrap_err();

        assert!(
            matches!(refused, OAuthError::UnauthorizedClient(_)),
            "{refused:?}"
        );
    }
}
