//! Background work every instance runs: back-channel and webhook deliveries, the key
//! schedule, linking the audit trail, checkpoints and the purge.

use crate::app::{run, run_conn, web_data};
use crate::error::{InternalError, chain};
use crate::keys::signing;

/// Background work: delivers queued back-channel logouts at once when woken and every few
/// seconds for retries, forgets idle rate-limiter keys every minute, and purges expired rows
/// every ten minutes. Runs until the process
/// ends; any number of instances may run it (deliveries are leased, purges are idempotent).
pub async fn delivery_loop(state: web_data::Data) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
    // Every instance asks each minute; the one that takes the due run purges (`maintenance`).
    let mut purge = tokio::time::interval(std::time::Duration::from_secs(60));
    let mut checkpoint = tokio::time::interval(std::time::Duration::from_secs(60));
    // Every second: audit entries written unlinked (PostgreSQL) are chained, off the
    // request path.
    let mut upkeep = tokio::time::interval(std::time::Duration::from_secs(1));
    // Four times a second the SQLite write-ahead log is checkpointed, off the request path:
    // a checkpoint's fsync stalls the writes to the log meanwhile, and a shorter log makes a
    // shorter stall (a second of token requests filled some 60 MB and stalled 100 ms).
    let mut wal = tokio::time::interval(std::time::Duration::from_millis(250));
    let sqlite = !state.config.database_url.is_postgres();
    let mut heartbeat = tokio::time::interval(std::time::Duration::from_secs(
        crate::rate_limit::HEARTBEAT_SECONDS,
    ));
    loop {
        tokio::select! {
            _ = heartbeat.tick() => {
                let st = state.clone();
                if let Err(e) = run_conn(&state, move |c, _ctx, now| st.share.heartbeat(c, now)).await {
                    tracing::error!(error = %chain(&e), "the instance heartbeat failed");
                }
                continue;
            }
            _ = upkeep.tick(), if !sqlite => {
                if let Err(e) = run_conn(&state, |c, _ctx, _now| crate::audit::link(c, false)).await {
                    tracing::error!(error = %chain(&e), "linking the audit trail failed");
                }
                continue;
            }
            _ = wal.tick(), if sqlite => {
                let done = run_conn(&state, |c, _ctx, _now| Ok(crate::db::checkpoint_wal(c)?)).await;
                if let Err(e) = done {
                    tracing::error!(error = %chain(&e), "checkpointing the SQLite log failed");
                }
                continue;
            }
            _ = state.wakeup.notified() => {}
            _ = tick.tick() => {}
            _ = checkpoint.tick() => {
                crate::rate_limit::prune(&state.client_limiter);
                crate::rate_limit::prune(&state.address_limiter);
                crate::sign_in::password::release_idle_memory();
                let st = state.clone();
                if let Err(e) = run_conn(&state, move |c, _ctx, now| {
                    crate::audit::link_and_checkpoint(c, &st.master, now, false)
                })
                .await
                {
                    tracing::error!(error = %chain(&e), "audit checkpoint failed");
                }
                if let Err(e) = rotate_keys(&state).await {
                    tracing::error!(error = %chain(&e), "signing key schedule failed");
                }
                continue;
            }
            _ = purge.tick() => {
                match run_conn(&state, |c, ctx, now| {
                    crate::maintenance::purge_if_due(c, ctx.config, now)
                })
                .await
                {
                    Ok(Some(p)) => tracing::debug!(?p, "purged expired rows"),
                    Ok(None) => {}
                    Err(e) => tracing::error!(error = %chain(&e), "purge failed"),
                }
                continue;
            }
        }
        if let Err(e) = deliver_due(&state).await {
            tracing::error!(error = %chain(&e), "back-channel logout delivery failed");
        }
    }
}

/// Moves the signing key schedule on and rereads the keys (another instance may have
/// rotated them).
pub async fn rotate_keys(state: &web_data::Data) -> Result<(), InternalError> {
    let st = state.clone();
    let rotation = state.config.rotation();
    run(state, move |c, _ctx, now| {
        for change in signing::advance(c, &st.master, &rotation, now)? {
            crate::audit::record(
                c,
                &crate::context::RequestMeta::default(),
                now,
                crate::audit::Event::new(change.event, "success")
                    .actor("key-schedule")
                    .details(serde_json::json!({"kid": change.kid})),
            )?;
        }
        st.reload_keys(c)
    })
    .await
}

/// One pass over the due deliveries.
pub async fn deliver_due(state: &web_data::Data) -> Result<usize, InternalError> {
    use crate::oidc::backchannel;
    let due = run(state, |c, _ctx, now| backchannel::claim_due(c, now)).await?;
    let n = due.len();
    for d in due {
        let sent = state
            .http
            .post(&d.uri)
            .form(&[("logout_token", d.logout_token.as_str())])
            .send()
            .await;
        let result = match sent {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            Err(e) => Err(if e.is_timeout() {
                "timed out".to_string()
            } else {
                "connection failed".to_string()
            }),
        };
        run(state, move |c, _ctx, now| {
            backchannel::record(c, &d, result, now)
        })
        .await?;
    }
    let (Some(url), Some(secret)) = (
        state.config.detection.webhook_url.clone(),
        state.config.webhook_secret.clone(),
    ) else {
        return Ok(n);
    };
    let hooks = run(state, |c, _ctx, now| {
        crate::audit::detect::claim_webhooks(c, now)
    })
    .await?;
    let n = n + hooks.len();
    for d in hooks {
        let sent = state
            .http
            .post(&url)
            .header("content-type", "application/json")
            .header(
                "x-portcullis-signature",
                crate::audit::detect::signature(secret.expose(), &d.body),
            )
            .body(d.body.clone())
            .send()
            .await;
        let result = match sent {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            Err(_) => Err("connection failed".to_string()),
        };
        run(state, move |c, _ctx, now| {
            crate::audit::detect::record_webhook(c, &d, result, now)
        })
        .await?;
    }
    Ok(n)
}
