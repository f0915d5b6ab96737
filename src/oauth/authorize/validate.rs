//! Validation of an authorization request as received: client, redirect URI, then every
//! parameter, answering at the redirect URI only once it is trusted.

use super::*;
use crate::protocol::params::{self, MaxAge};

/// Checks a request as received (GET query or POST body). A refusal may have been audited.
pub fn validate(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    pairs: &[(String, String)],
    now: NaiveDateTime,
) -> Result<Valid, Refused> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    let mut duplicated: Option<String> = None;
    for (k, v) in pairs {
        if params.insert(k.clone(), v.clone()).is_some() && duplicated.is_none() {
            duplicated = Some(k.clone());
        }
    }
    let page = |m: &str| Err(Refused::Untrusted(m.to_string()));
    if matches!(
        duplicated.as_deref(),
        Some("client_id") | Some("redirect_uri")
    ) {
        return page("The request repeats client_id or redirect_uri.");
    }
    if ["client_id", "redirect_uri"]
        .iter()
        .any(|k| params.get(*k).is_some_and(|v| !params::fits(k, v)))
    {
        return page("The request's client_id or redirect_uri is too long.");
    }
    let Some(client_id) = params.get("client_id").filter(|c| !c.is_empty()) else {
        return page("The request has no client_id.");
    };
    let Some(client) = clients::find(conn, client_id)? else {
        return page("The application that sent you here is not registered.");
    };
    let registered = client.redirect_uri_list();
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri)
            if registered
                .iter()
                .any(|r| crate::oauth::redirect::matches(r, uri)) =>
        {
            uri.clone()
        }
        Some(uri) => {
            // The operator's answer to "why does my app fail": logged and audited with the
            // client and the reason; of the presented URI only its origin, escaped by the JSON.
            let origin =
                crate::oauth::redirect::origin(uri).unwrap_or_else(|| "(not a URL)".into());
            tracing::warn!(client_id = %client.client_id, redirect_origin = %origin.escape_debug(), "authorization request refused: redirect URI not registered");
            crate::audit::record(
                conn,
                ctx.meta,
                now,
                crate::audit::Event::new("authorize.refused", "failure")
                    .client(&client.client_id)
                    .details(serde_json::json!({
                        "reason": "redirect_uri not registered",
                        "redirect_origin": origin,
                    })),
            )?;
            return page("The redirect URI of this request is not registered for the application.");
        }
        None if registered.len() == 1 && !requested_openid(&params) => registered[0].clone(),
        None => return page("The request has no redirect_uri."),
    };
    let form_post = params.get("response_mode").map(String::as_str) == Some("form_post");
    let mut valid = Valid {
        client,
        redirect_uri,
        // An oversized state is not echoed back, not even in the error.
        state: params
            .get("state")
            .filter(|s| params::fits("state", s))
            .cloned(),
        form_post,
        scopes: Vec::new(),
        prompt: Vec::new(),
        max_age: None,
        login_hint: params.get("login_hint").cloned(),
        hint_sub: None,
        claims: (Vec::new(), Vec::new()),
        params: BTreeMap::new(),
    };
    let invalid = |v: &Valid, m: &str| Err(v.refuse(ctx, AuthorizeError::InvalidRequest, m));
    if let Some(m) = params::out_of_bounds(pairs.iter().map(|(k, v)| (k, v))) {
        return invalid(&valid, &m);
    }
    if let Some(d) = duplicated {
        return invalid(&valid, &format!("parameter {d} is repeated"));
    }
    match params.get("response_mode").map(String::as_str) {
        None | Some("query") | Some("form_post") => {}
        Some(_) => return invalid(&valid, "unsupported response_mode"),
    }
    if params.contains_key("request") {
        return Err(valid.refuse(
            ctx,
            AuthorizeError::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if params.contains_key("request_uri") {
        return Err(valid.refuse(
            ctx,
            AuthorizeError::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match params.get("response_type").map(String::as_str) {
        Some("code") => {}
        None | Some("") => return invalid(&valid, "response_type is required"),
        Some(_) => {
            return Err(valid.refuse(
                ctx,
                AuthorizeError::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if !valid
        .client
        .grant_type_list()
        .iter()
        .any(|g| g == "authorization_code")
    {
        return Err(valid.refuse(
            ctx,
            AuthorizeError::UnauthorizedClient,
            "the client may not use the authorization code grant",
        ));
    }
    let requested = match scope::parse(params.get("scope").map(String::as_str).unwrap_or("")) {
        Ok(s) => s,
        Err(m) => return Err(valid.refuse(ctx, AuthorizeError::InvalidScope, &m)),
    };
    let allowed = valid.client.scope_list();
    let refresh_allowed = valid
        .client
        .grant_type_list()
        .iter()
        .any(|g| g == "refresh_token");
    valid.scopes = requested
        .into_iter()
        .filter(|s| allowed.contains(s))
        .filter(|s| s != scope::OFFLINE_ACCESS || refresh_allowed)
        .collect();
    if valid.scopes.is_empty() {
        return Err(valid.refuse(
            ctx,
            AuthorizeError::InvalidScope,
            "none of the requested scopes is available to this client",
        ));
    }
    match params.get("code_challenge_method").map(String::as_str) {
        None | Some("S256") => {}
        Some(_) => return invalid(&valid, "code_challenge_method must be S256"),
    }
    match params.get("code_challenge") {
        Some(c) => {
            let ok = c.len() == 43
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !ok {
                return invalid(&valid, "code_challenge must be a base64url SHA-256 value");
            }
            if !params.contains_key("code_challenge_method") {
                return invalid(&valid, "code_challenge_method must be S256");
            }
        }
        None if valid.client.public => {
            return invalid(
                &valid,
                "PKCE (code_challenge with S256) is required for public clients",
            );
        }
        None => {}
    }
    if let Some(p) = params.get("prompt") {
        let values: Vec<String> = p
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        if values
            .iter()
            .any(|v| !matches!(v.as_str(), "none" | "login" | "consent" | "select_account"))
        {
            return invalid(&valid, "unsupported prompt value");
        }
        if values.iter().any(|v| v == "none") && values.len() > 1 {
            return invalid(&valid, "prompt=none cannot be combined with other values");
        }
        valid.prompt = values;
    }
    if let Some(m) = params.get("max_age") {
        match MaxAge::parse(m) {
            Some(v) => valid.max_age = Some(v),
            None => return invalid(&valid, "max_age must be a non-negative integer"),
        }
    }
    if let Some(raw) = params.get("claims").filter(|c| !c.is_empty()) {
        match claims::parse_request(raw) {
            // Only what the client's registered scopes could ever release.
            Ok((userinfo, id_token)) => {
                valid.claims = (
                    claims::allowed(userinfo, &allowed),
                    claims::allowed(id_token, &allowed),
                )
            }
            Err(m) => return invalid(&valid, &m),
        }
    }
    if let Some(hint) = params.get("id_token_hint").filter(|h| !h.is_empty()) {
        match logout::parse_hint(ctx, hint) {
            Some(h) if h.aud.contains(&valid.client.client_id) => valid.hint_sub = Some(h.sub),
            _ => {
                return invalid(
                    &valid,
                    "id_token_hint is not an ID token issued to this client",
                );
            }
        }
    }
    valid.params = params;
    Ok(valid)
}

fn requested_openid(params: &BTreeMap<String, String>) -> bool {
    params
        .get("scope")
        .is_some_and(|s| scope::contains(s, scope::OPENID))
}
