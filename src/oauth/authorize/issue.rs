//! Issuing the code: oxide-auth's authorization flow over our primitives, then the answer.

use super::*;

/// Runs oxide-auth's authorization flow for an approved request and builds the response.
pub(super) fn issue_code(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    valid: &Valid,
    session: &Session,
    user_id: &str,
    now: NaiveDateTime,
) -> Result<Outcome, InternalError> {
    let flags = RefCell::new(Flags::default());
    let facts = GrantData {
        auth_time: session.auth_time.map(|t| t.and_utc().timestamp()),
        amr: serde_json::from_str(&session.amr).unwrap_or_default(),
        sid: Some(session.sid.clone()),
        acr: Some(crate::oauth::acr::acr_of(session).to_string()),
        max_age_requested: valid.max_age.is_some(),
        claims_userinfo: valid.claims.0.clone(),
        claims_id_token: valid.claims.1.clone(),
        ..Default::default()
    };
    let granted = scope::join(&valid.scopes);
    let mut query: HashMap<String, String> = valid.params.clone().into_iter().collect();
    query.insert("redirect_uri".into(), valid.redirect_uri.clone());
    let shared = RefCell::new(conn);
    let code = {
        let mut endpoint = FlowEndpoint {
            registrar: OneClient {
                client: &valid.client,
                granted: Some(granted),
                placeholder: ctx.config.issuer.clone(),
                now,
            },
            authorizer: Some(DbAuthorizer {
                conn: &shared,
                client_id: &valid.client.client_id,
                now,
                code_lifetime: ctx.config.lifetimes.code,
                facts,
                flags: &flags,
                issued_code: None,
            }),
            issuer: None,
            solicitor: Some(Approved(user_id.to_string())),
            extension: OidcExtension {
                pkce: if valid.client.public {
                    Pkce::required()
                } else {
                    Pkce::optional()
                },
                flags: &flags,
            },
        };
        let request = Request {
            query,
            ..Default::default()
        };
        let result = AuthorizationFlow::prepare(&mut endpoint).and_then(|mut f| f.execute(request));
        match result {
            Ok(_) => endpoint.authorizer.and_then(|a| a.issued_code),
            Err(e) => {
                tracing::error!(error = ?e, "authorization flow failed");
                None
            }
        }
    };
    if let Some(e) = flags.borrow_mut().internal.take() {
        return Err(e);
    }
    let Some(code) = code else {
        return Ok(valid.error(
            ctx,
            AuthorizeError::ServerError,
            "the code could not be issued",
        ));
    };
    let conn = shared.into_inner();
    crate::audit::record(
        conn,
        ctx.meta,
        now,
        crate::audit::Event::new("code.issue", "success")
            .user(user_id)
            .client(&valid.client.client_id)
            .details(serde_json::json!({"scope": scope::join(&valid.scopes)})),
    )?;
    session_clients::record(
        conn,
        &session_clients::SessionClient {
            sid: session.sid.clone(),
            client_id: valid.client.client_id.clone(),
            user_id: user_id.to_string(),
            created_at: now,
        },
    )?;
    let mut params = vec![("code".to_string(), code)];
    if let Some(s) = &valid.state {
        params.push(("state".into(), s.clone()));
    }
    params.push(("iss".into(), ctx.config.issuer.clone()));
    Ok(Outcome::Respond(AuthResponse {
        redirect_uri: valid.redirect_uri.clone(),
        params,
        form_post: valid.form_post,
    }))
}
