//! Back-channel logout (OpenID Connect Back-Channel Logout 1.0): logout tokens, queued in the
//! database and delivered with retries by any instance.

use chrono::{Duration, NaiveDateTime};
use serde_json::json;

use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::secrets::random_id;
use crate::keys::signing::sign_jwt;
use crate::retry::{MAX_ATTEMPTS, backoff};
use crate::store::logout_deliveries::{self, Delivery};

pub const EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";
/// How long an instance holds a delivery it is sending.
const LEASE_SECONDS: i64 = 60;

/// A signed logout token for one client (no `nonce`, exactly one event member).
pub fn logout_token(
    ctx: Ctx<'_>,
    client_id: &str,
    alg: &str,
    sub: &str,
    sid: &str,
    now: NaiveDateTime,
) -> Result<String, InternalError> {
    let iat = now.and_utc().timestamp();
    let claims = json!({
        "iss": ctx.config.issuer,
        "aud": client_id,
        "iat": iat,
        "exp": iat + 120,
        "jti": random_id(),
        "sub": sub,
        "sid": sid,
        "events": { EVENT: {} },
    });
    sign_jwt(ctx.keys, alg, Some("logout+jwt"), &claims)
}

#[allow(clippy::too_many_arguments)]
pub fn enqueue(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    client_id: &str,
    alg: &str,
    uri: &str,
    sub: &str,
    sid: &str,
    now: NaiveDateTime,
) -> Result<(), InternalError> {
    let token = logout_token(ctx, client_id, alg, sub, sid, now)?;
    logout_deliveries::insert(
        conn,
        &Delivery {
            id: random_id(),
            client_id: client_id.to_string(),
            uri: uri.to_string(),
            logout_token: token,
            attempts: 0,
            delivered: false,
            last_error: None,
            next_attempt_at: now,
            created_at: now,
        },
    )?;
    Ok(())
}

/// Deliveries due now that this instance won the lease for.
pub fn claim_due(conn: &mut DbConn, now: NaiveDateTime) -> Result<Vec<Delivery>, InternalError> {
    let mut won = Vec::new();
    for d in logout_deliveries::due(conn, now, 50)? {
        let lease = now + Duration::seconds(LEASE_SECONDS);
        if logout_deliveries::lease(conn, &d.id, d.next_attempt_at, lease)? == 1 {
            won.push(d);
        }
    }
    Ok(won)
}

/// Records how an attempt went; failures are retried with backoff until `MAX_ATTEMPTS`.
pub fn record(
    conn: &mut DbConn,
    delivery: &Delivery,
    result: Result<(), String>,
    now: NaiveDateTime,
) -> Result<(), InternalError> {
    let attempts = delivery.attempts + 1;
    match result {
        Ok(()) => {
            logout_deliveries::mark_delivered(conn, &delivery.id, attempts)?;
        }
        Err(e) => {
            let next = if attempts >= MAX_ATTEMPTS {
                tracing::warn!(client_id = %delivery.client_id, attempts, error = %e, "back-channel logout given up");
                now + Duration::days(3650)
            } else {
                tracing::info!(client_id = %delivery.client_id, attempts, error = %e, "back-channel logout failed; will retry");
                now + backoff(attempts)
            };
            logout_deliveries::mark_failed(conn, &delivery.id, attempts, &e, next)?;
        }
    }
    Ok(())
}
