//! Token revocation (RFC 7009).

use chrono::NaiveDateTime;

use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::secrets::sha256_hex;
use crate::oauth::errors::TokenError;
use crate::oauth::token::{TokenReply, authenticated_form};
use crate::store::tokens;

/// Revokes `token` if the authenticated client owns it. Unknown tokens, other clients' tokens
/// and tokens already revoked all get the same 200 (RFC 7009 §2.2).
pub fn revoke(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    pairs: &[(String, String)],
    authorization: Option<&str>,
    now: NaiveDateTime,
) -> Result<Result<(), TokenReply>, InternalError> {
    let (client, form) = match authenticated_form(conn, ctx, "revoke", pairs, authorization, now)? {
        Ok(x) => x,
        Err(reply) => return Ok(Err(reply)),
    };
    let Some(token) = form.get("token").filter(|t| !t.is_empty()) else {
        return Ok(Err(TokenReply::err(
            TokenError::InvalidRequest,
            "token is required",
        )));
    };
    // token_type_hint only speeds up the lookup elsewhere; one hashed lookup covers both kinds.
    let Some(row) = tokens::find(conn, &sha256_hex(token))? else {
        return Ok(Ok(()));
    };
    if row.client_id != client.client_id {
        tracing::warn!(client_id = %client.client_id, "client tried to revoke another client's token");
        return Ok(Ok(()));
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
    Ok(Ok(()))
}
