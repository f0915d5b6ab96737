//! Token introspection (RFC 7662).

use chrono::NaiveDateTime;
use serde_json::{Map, Value, json};

use crate::context::Ctx;
use crate::db::DbConn;
use crate::keys::secrets::sha256_hex;
use crate::oauth::client_auth;
use crate::oauth::errors::OAuthError;
use crate::oauth::token::authenticated_form;
use crate::store::{tokens, users};

/// `{"active": false}` for anything expired, revoked, rotated, unknown or another client's.
pub fn introspect(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    pairs: &[(String, String)],
    authorization: Option<&str>,
    now: NaiveDateTime,
) -> Result<Map<String, Value>, OAuthError> {
    let (client, form) = authenticated_form(conn, ctx, "introspect", pairs, authorization, now)?;
    // RFC 7662 §2.1: the caller must authenticate, and a public client cannot.
    if client.public {
        client_auth::record_failure(
            conn,
            ctx,
            "introspect",
            Some(&client.client_id),
            "public clients cannot use introspection",
            now,
        )?;
        return Err(OAuthError::InvalidClient { basic: false });
    }
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return Err(OAuthError::InvalidRequest("token is required".into()));
    };
    let mut inactive = Map::new();
    inactive.insert("active".into(), json!(false));
    let Some(row) = tokens::find(conn, &sha256_hex(token))? else {
        return Ok(inactive);
    };
    let live = !row.revoked && !row.rotated && row.expires_at > now;
    if !live || row.client_id != client.client_id {
        return Ok(inactive);
    }
    let user = match &row.user_id {
        Some(id) => match users::find(conn, id)? {
            Some(u) if !u.disabled => Some(u),
            _ => return Ok(inactive),
        },
        None => None,
    };
    let mut m = Map::new();
    m.insert("active".into(), json!(true));
    m.insert("scope".into(), json!(row.scope));
    m.insert("client_id".into(), json!(row.client_id));
    m.insert(
        "token_type".into(),
        json!(if row.kind == tokens::ACCESS {
            "Bearer"
        } else {
            "refresh_token"
        }),
    );
    m.insert("exp".into(), json!(row.expires_at.and_utc().timestamp()));
    m.insert("iat".into(), json!(row.created_at.and_utc().timestamp()));
    m.insert("aud".into(), json!(row.client_id));
    m.insert("iss".into(), json!(ctx.config.issuer));
    match user {
        Some(u) => {
            m.insert("sub".into(), json!(u.id));
            m.insert("username".into(), json!(u.username));
        }
        None => {
            m.insert("sub".into(), json!(row.client_id));
        }
    }
    Ok(m)
}
