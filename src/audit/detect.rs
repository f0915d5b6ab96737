//! Automated threat detection over the audit trail (shared by every instance): guessing,
//! credential stuffing, token replay, new devices, unusual hours, bursts of token errors.

use chrono::{Duration, NaiveDateTime, Timelike};
use serde_json::{Value, json};

use crate::audit::{self, Event};
use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::master::MasterKey;
use crate::keys::secrets::random_id;
use crate::store::detection_facts;
use crate::store::webhook_deliveries::{self, WebhookDelivery};

/// Purpose of the key that makes account pseudonyms.
pub const ACCOUNT_REF_PURPOSE: &str = "account-ref";

/// A pseudonym for an attempted username (whatever was typed, a password by mistake
/// included): lets the rules and the sign-in throttle count per account without keeping the
/// name. It is an HMAC-SHA256 under a key derived from the master key, so a guess of what
/// was typed cannot be checked against it without that key (a plain hash could be). The
/// same name always gives the same pseudonym while the master key stays the same.
pub fn account_ref(master: &MasterKey, username: &str) -> String {
    use hmac::{Hmac, Mac};
    let key = master.derive(ACCOUNT_REF_PURPOSE);
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(key.as_ref()) else {
        return String::new();
    };
    mac.update(username.trim().to_lowercase().as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Raises an alert: an audit event, a WARN line, a metric and (if configured) a webhook post.
pub fn raise(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    now: NaiveDateTime,
    rule: &str,
    user_id: Option<&str>,
    client_id: Option<&str>,
    details: Value,
) -> Result<(), InternalError> {
    let event = format!("alert.{rule}");
    let mut ev = Event::new(&event, "alert").details(details.clone());
    ev.user_id = user_id;
    ev.client_id = client_id;
    audit::record(conn, ctx.meta, now, ev)?;
    ctx.metrics.alert(rule);
    tracing::warn!(
        rule,
        user_id,
        client_id,
        ip = ctx.meta.ip.as_deref(),
        "security alert"
    );
    if ctx.config.detection.webhook_url.is_some() {
        let body = json!({
            "rule": rule,
            "at": now.and_utc().to_rfc3339(),
            "issuer": ctx.config.issuer,
            "user_id": user_id,
            "client_id": client_id,
            "ip": ctx.meta.ip,
            "details": details,
        });
        webhook_deliveries::insert(
            conn,
            &WebhookDelivery {
                id: random_id(),
                body: body.to_string(),
                attempts: 0,
                delivered: false,
                last_error: None,
                next_attempt_at: now,
                created_at: now,
            },
        )?;
    }
    Ok(())
}

fn since(ctx: Ctx<'_>, now: NaiveDateTime) -> NaiveDateTime {
    now - Duration::seconds(ctx.config.detection.window)
}

/// The kinds of `detection_facts` the rules count.
const ACCOUNT_FAILURE: &str = "account_failure";
const ADDRESS_FAILURE: &str = "address_failure";
const SIGN_IN: &str = "sign_in";
const TOKEN_ERROR: &str = "token_error";

/// How far back a user's sign-ins count as their habits.
const HISTORY_DAYS: i64 = 180;

/// How long facts are kept: the longest any rule looks back.
pub fn facts_kept(config: &crate::config::Config) -> Duration {
    Duration::days(HISTORY_DAYS).max(Duration::seconds(config.detection.window))
}

/// After a failed sign-in (already in the trail): guessing against the account, stuffing
/// from the address. Each fires once, when its threshold is reached. The rule counts through
/// an index (`detection_facts`): its cost does not grow with the trail.
pub fn after_failed_sign_in(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    now: NaiveDateTime,
    account: &str,
) -> Result<(), InternalError> {
    let d = &ctx.config.detection;
    if !d.enabled {
        return Ok(());
    }
    let fact = |kind, subject, other| detection_facts::Fact {
        kind,
        subject,
        other,
        at: now,
    };
    detection_facts::insert(conn, &fact(ACCOUNT_FAILURE, account, ""))?;
    let since = since(ctx, now);
    let most = |n: usize| i64::try_from(n).unwrap_or(i64::MAX).saturating_add(1);
    let on_account = detection_facts::count(
        conn,
        ACCOUNT_FAILURE,
        account,
        None,
        since,
        most(d.guessing_failures),
    )?;
    if on_account == d.guessing_failures {
        raise(
            conn,
            ctx,
            now,
            "guessing",
            None,
            None,
            json!({"account": account, "failures": on_account}),
        )?;
    }
    if let Some(ip) = ctx.meta.ip.as_deref() {
        detection_facts::insert(conn, &fact(ADDRESS_FAILURE, ip, account))?;
        // Fires when this failure brings the address to its Nth distinct account.
        let newest_is_new =
            detection_facts::count(conn, ADDRESS_FAILURE, ip, Some(account), since, 2)? == 1;
        if newest_is_new {
            let accounts = detection_facts::distinct_others(
                conn,
                ADDRESS_FAILURE,
                ip,
                since,
                most(d.stuffing_accounts),
            )?;
            if accounts.len() == d.stuffing_accounts {
                raise(
                    conn,
                    ctx,
                    now,
                    "stuffing",
                    None,
                    None,
                    json!({"accounts": accounts.len()}),
                )?;
            }
        }
    }
    Ok(())
}

/// The address and agent of a sign-in, as one value to compare.
fn device(ctx: Ctx<'_>) -> String {
    format!(
        "{}\n{}",
        ctx.meta.ip.as_deref().unwrap_or_default(),
        ctx.meta
            .user_agent
            .as_deref()
            .unwrap_or_default()
            .chars()
            .take(256)
            .collect::<String>()
    )
}

/// After a successful sign-in (already in the trail): a new address and device, an hour far
/// from the user's habits (the user's last 500 sign-ins within 180 days, through an index).
pub fn after_sign_in(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    now: NaiveDateTime,
    user_id: &str,
) -> Result<(), InternalError> {
    let d = &ctx.config.detection;
    if !d.enabled {
        return Ok(());
    }
    let this_device = device(ctx);
    let earlier = detection_facts::newest(
        conn,
        SIGN_IN,
        user_id,
        now - Duration::days(HISTORY_DAYS),
        500,
    )?;
    detection_facts::insert(
        conn,
        &detection_facts::Fact {
            kind: SIGN_IN,
            subject: user_id,
            other: &this_device,
            at: now,
        },
    )?;
    if earlier.is_empty() {
        return Ok(());
    }
    if d.new_device {
        let seen = earlier.iter().any(|(device, _)| *device == this_device);
        if !seen {
            raise(
                conn,
                ctx,
                now,
                "new_device",
                Some(user_id),
                None,
                json!({"ip": ctx.meta.ip}),
            )?;
        }
    }
    if d.unusual_hour && earlier.len() >= d.min_history {
        let hour = now.hour() as i32;
        let margin = d.unusual_hour_margin as i32;
        let usual = earlier.iter().any(|(_, at)| {
            let diff = (at.hour() as i32 - hour).rem_euclid(24);
            diff.min(24 - diff) <= margin
        });
        if !usual {
            raise(
                conn,
                ctx,
                now,
                "unusual_hour",
                Some(user_id),
                None,
                json!({"hour": hour}),
            )?;
        }
    }
    Ok(())
}

/// After a failed token request or client authentication (already in the trail): a burst of
/// errors from one client.
pub fn after_token_error(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    now: NaiveDateTime,
    client_id: &str,
) -> Result<(), InternalError> {
    let d = &ctx.config.detection;
    if !d.enabled {
        return Ok(());
    }
    detection_facts::insert(
        conn,
        &detection_facts::Fact {
            kind: TOKEN_ERROR,
            subject: client_id,
            other: "",
            at: now,
        },
    )?;
    let most = i64::try_from(d.token_error_burst)
        .unwrap_or(i64::MAX)
        .saturating_add(1);
    let errors = detection_facts::count(conn, TOKEN_ERROR, client_id, None, since(ctx, now), most)?;
    if errors == d.token_error_burst {
        raise(
            conn,
            ctx,
            now,
            "token_errors",
            None,
            Some(client_id),
            json!({"errors": errors}),
        )?;
    }
    Ok(())
}

/// A replayed code or reused refresh token: always an alert.
pub fn replay(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    now: NaiveDateTime,
    client_id: &str,
    what: &str,
) -> Result<(), InternalError> {
    if !ctx.config.detection.enabled {
        return Ok(());
    }
    raise(
        conn,
        ctx,
        now,
        "token_replay",
        None,
        Some(client_id),
        json!({"what": what}),
    )
}

/// `sha256=<hex>`: the HMAC-SHA256 of a webhook body under the shared secret.
pub fn signature(secret: &str, body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = match Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body.as_bytes());
    let bytes = mac.finalize().into_bytes();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Webhook posts due now that this instance won the lease for.
pub fn claim_webhooks(
    conn: &mut DbConn,
    now: NaiveDateTime,
) -> Result<Vec<WebhookDelivery>, InternalError> {
    let mut won = Vec::new();
    for d in webhook_deliveries::due(conn, now, 50)? {
        if webhook_deliveries::lease(conn, &d.id, d.next_attempt_at, now + Duration::seconds(60))?
            == 1
        {
            won.push(d);
        }
    }
    Ok(won)
}

/// Records an attempt; failures are retried on the delivery schedule (`retry`).
pub fn record_webhook(
    conn: &mut DbConn,
    d: &WebhookDelivery,
    result: Result<(), String>,
    now: NaiveDateTime,
) -> Result<(), InternalError> {
    use crate::retry::{MAX_ATTEMPTS, backoff};
    let attempts = d.attempts + 1;
    match result {
        Ok(()) => webhook_deliveries::finish(conn, &d.id, attempts, true, None, now)?,
        Err(e) => {
            let next = if attempts >= MAX_ATTEMPTS {
                now + Duration::days(3650)
            } else {
                now + backoff(attempts)
            };
            webhook_deliveries::finish(conn, &d.id, attempts, false, Some(&e), next)?
        }
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webhook_signature_is_hmac_sha256_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", "what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn account_refs_ignore_case_and_need_the_master_key() {
        use crate::keys::secrets::sha256_hex;
        let k = MasterKey::from_bytes([3u8; 32]);
        assert_eq!(account_ref(&k, "Alice"), account_ref(&k, " alice "));
        assert_eq!(account_ref(&k, "alice").len(), 32);
        assert_ne!(account_ref(&k, "alice"), account_ref(&k, "bob"));
        let other = MasterKey::from_bytes([4u8; 32]);
        assert_ne!(account_ref(&k, "alice"), account_ref(&other, "alice"));
        for guess in [sha256_hex("alice"), sha256_hex("account:alice")] {
            assert!(!guess.contains(&account_ref(&k, "alice")));
        }
    }
}

#[cfg(test)]
mod rule_tests;
