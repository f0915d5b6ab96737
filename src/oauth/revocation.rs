//! Token revocation (RFC 7009).

use chrono::NaiveDateTime;

use crate::context::Ctx;
use crate::db::DbConn;
use crate::keys::secrets::sha256_hex;
use crate::oauth::errors::OAuthError;
use crate::oauth::token::authenticated_form;
use crate::store::tokens;

/// Revokes `token` if the authenticated client owns it. Unknown tokens, other clients' tokens
/// and tokens already revoked all get the same 200 (RFC 7009 §2.2).
pub fn revoke(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    pairs: &[(String, String)],
    authorization: Option<&str>,
    now: NaiveDateTime,
) -> Result<(), OAuthError> {
    let (client, form) = authenticated_form(conn, ctx, "revoke", pairs, authorization, now)?;
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return Err(OAuthError::InvalidRequest("token is required".into()));
    };
    // token_type_hint only speeds up the lookup elsewhere; one hashed lookup covers both kinds.
    let Some(row) = tokens::find(conn, &sha256_hex(token))? else {
        return Ok(());
    };
    if row.client_id != client.client_id {
        tracing::warn!(client_id = %client.client_id, "client tried to revoke another client's token");
        return Ok(());
    }
    crate::audit::record(
        conn,
        ctx.meta,
        now,
        crate::audit::Event::new("token.revoke", "success")
            .client(&client.client_id)
            .details(serde_json::json!({"kind": row.kind})),
    )?;
    if row.kind == tokens::REFRESH {
        // The refresh token and every access token of its family.
        tokens::revoke_family(conn, &row.family_id)?;
    } else {
        tokens::revoke_one(conn, &row.token_hash)?;
    }
    Ok(())
}
