//! The refresh reuse window: a page that sends one refresh token in several requests at once
//! (or retries one whose answer it lost) must not look like a thief.
//!
//! When a refresh token is rotated, the answer of that rotation is kept on the rotated token's
//! row, sealed under the master key (AES-256-GCM, bound to the row), for
//! `refresh_reuse_window` seconds. Presenting the rotated token again within the window, by the
//! same client, with the same requested scope, while its successor is untouched, answers with
//! that same successor: the same access token, the same new refresh token, nothing new issued,
//! audited as `token.refresh_retried`. Anything else is reuse exactly as before the window
//! existed: the family is revoked and `alert.token_replay` raised.
//!
//! Concurrency: the retry check locks the presented token's row (`SELECT … FOR UPDATE` on
//! PostgreSQL; SQLite's immediate transactions already serialize writers), so concurrent
//! requests with one token run one after another: the first rotates and keeps its answer in
//! the same transaction, and each later one, unblocked by that commit, finds the answer.

use chrono::{Duration, NaiveDateTime};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

use crate::audit::{self, Event};
use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::at_rest;
use crate::keys::secrets::sha256_hex;
use crate::oauth::errors::{GRANT_INVALID, OAuthError};
use crate::oauth::token::TokenResponse;
use crate::protocol::scope;
use crate::store::clients::Client;
use crate::store::tokens::{self, Token};

/// The at-rest purpose of a kept answer (its row is the rotated token's hash).
pub const SEAL_PURPOSE: &str = "refresh-successor";

/// What a presented refresh token's row says about the request, before anything is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presentation {
    /// Not rotated (or revoked, or not a refresh token): the refresh grant runs as always.
    Fresh,
    /// Rotated within the window for this very client, with the answer kept: a retry, provided
    /// the request is the same and the successor is untouched (`successor_state`).
    RetryWithinWindow,
    /// Rotated, and no retry: reuse detection as always (family revoked, alert).
    Replay,
}

/// Decides from the presented token's row, the presenting client and the time.
pub fn classify(row: &Token, client_id: &str, now: NaiveDateTime, window: i64) -> Presentation {
    if row.kind != tokens::REFRESH || !row.rotated || row.revoked {
        return Presentation::Fresh;
    }
    // Another client holding this client's token means it leaked: never hand it the successor.
    if row.client_id != client_id || window <= 0 || row.successor_sealed.is_none() {
        return Presentation::Replay;
    }
    match row.rotated_at {
        Some(at) if now < at + Duration::seconds(window) => Presentation::RetryWithinWindow,
        _ => Presentation::Replay,
    }
}

/// The kept answer of a rotation (sealed as JSON).
#[derive(Serialize, Deserialize)]
struct Kept {
    /// The `scope` parameter of the request that rotated the token, normalized.
    requested_scope: Option<String>,
    /// The token endpoint's answer, as given.
    body: Map<String, Value>,
}

/// The `scope` parameter as compared between a request and its retry: normalized, and an
/// empty one the same as none.
fn requested_scope(form: &BTreeMap<String, String>) -> Option<String> {
    form.get("scope")
        .map(|s| scope::normalize(s))
        .filter(|s| !s.is_empty())
}

/// Whether the successor of a kept answer may be handed out again, and then the access
/// token's remaining seconds. RFC 9700 §4.14.2: once the successor refresh token was used,
/// the client that received it has moved on, so the old token coming back is a copy held
/// elsewhere — reuse, not a retry. The same when anything of the successor was revoked or its
/// access token has expired (there is nothing valid left to hand out).
pub fn successor_state(
    access: Option<&Token>,
    refresh: Option<Option<&Token>>,
    now: NaiveDateTime,
) -> Option<i64> {
    let access = access.filter(|a| !a.revoked && a.expires_at > now)?;
    match refresh {
        // The answer had no refresh token.
        None => {}
        Some(Some(r)) if !r.rotated && !r.revoked => {}
        Some(_) => return None,
    }
    Some((access.expires_at - now).num_seconds().max(1))
}

/// Before the refresh grant runs: locks the presented token's row and, when the request is a
/// retry within the window, answers with what its rotation answered. `None`: run the grant
/// (which rotates a fresh token, or detects reuse as always). A retry refused is audited
/// before the refusal returns.
pub fn retry(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    client: &Client,
    form: &BTreeMap<String, String>,
    now: NaiveDateTime,
) -> Result<Option<TokenResponse>, OAuthError> {
    let window = ctx.config.lifetimes.refresh_reuse_window;
    let Some(presented) = form.get("refresh_token").filter(|_| window > 0) else {
        return Ok(None);
    };
    let hash = sha256_hex(presented);
    let Some(row) = tokens::find_for_update(conn, &hash)? else {
        return Ok(None);
    };
    if classify(&row, &client.client_id, now, window) != Presentation::RetryWithinWindow {
        return Ok(None);
    }
    let Some(sealed) = row.successor_sealed.as_deref() else {
        return Ok(None);
    };
    let kept = match at_rest::open(ctx.master, SEAL_PURPOSE, &hash, sealed)
        .map_err(|e| format!("{e:?}"))
        .and_then(|plain| serde_json::from_slice::<Kept>(&plain).map_err(|e| e.to_string()))
    {
        Ok(k) => k,
        Err(why) => {
            // Sealed under a master key since replaced, or damaged: the first answer was given,
            // so refuse this one without treating it as theft. The value itself is never logged.
            tracing::warn!(client_id = %client.client_id, reason = %why, "a kept refresh answer could not be opened");
            return refused(
                conn,
                ctx,
                client,
                now,
                "the kept answer could not be opened",
            );
        }
    };
    if kept.requested_scope != requested_scope(form) {
        return Ok(None);
    }
    let token_of = |key: &str| kept.body.get(key).and_then(Value::as_str).map(sha256_hex);
    let access = match token_of("access_token") {
        Some(h) => tokens::find(conn, &h)?,
        None => None,
    };
    let refresh = match token_of("refresh_token") {
        Some(h) => Some(tokens::find(conn, &h)?),
        None => None,
    };
    let Some(expires_in) =
        successor_state(access.as_ref(), refresh.as_ref().map(Option::as_ref), now)
    else {
        return Ok(None);
    };
    if let Some(user_id) = &row.user_id
        && crate::store::users::find(conn, user_id)?.is_none_or(|u| u.disabled)
    {
        return refused(conn, ctx, client, now, "the user is gone or disabled");
    }
    let mut body = kept.body;
    body.insert("expires_in".into(), json!(expires_in));
    let after = row.rotated_at.map(|at| (now - at).num_seconds());
    audit::record(
        conn,
        ctx.meta,
        now,
        Event::new("token.refresh_retried", "success")
            .client(&client.client_id)
            .details(json!({
                "grant_type": "refresh_token",
                "scope": body.get("scope"),
                "seconds_after_rotation": after,
            })),
    )?;
    Ok(Some(body))
}

/// Audits a refused retry and refuses it as an invalid grant.
fn refused(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    client: &Client,
    now: NaiveDateTime,
    reason: &str,
) -> Result<Option<TokenResponse>, OAuthError> {
    audit::record(
        conn,
        ctx.meta,
        now,
        Event::new("token.refresh_retried", "failure")
            .client(&client.client_id)
            .details(json!({"grant_type": "refresh_token", "reason": reason})),
    )?;
    Err(OAuthError::InvalidGrant(GRANT_INVALID))
}

/// After a rotation answered `body`: keeps the answer, sealed, on the rotated token's row for
/// the window (in the rotation's own transaction, so a concurrent retry sees both or neither).
pub fn keep(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    form: &BTreeMap<String, String>,
    body: &Map<String, Value>,
) -> Result<(), InternalError> {
    if ctx.config.lifetimes.refresh_reuse_window <= 0 {
        return Ok(());
    }
    let Some(presented) = form.get("refresh_token") else {
        return Ok(());
    };
    let hash = sha256_hex(presented);
    let Some(row) = tokens::find(conn, &hash)? else {
        return Ok(());
    };
    let kept = Kept {
        requested_scope: requested_scope(form),
        body: body.clone(),
    };
    let plain = Zeroizing::new(
        serde_json::to_vec(&kept)
            .map_err(|e| InternalError::with("cannot encode a refresh answer", e))?,
    );
    let sealed = at_rest::seal(ctx.master, SEAL_PURPOSE, &hash, &plain)
        .ok_or_else(|| InternalError::new("cannot seal a refresh answer"))?;
    tokens::keep_successor(conn, &hash, &row.family_id, &sealed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn at(secs: i64) -> NaiveDateTime {
        chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0)
            .unwrap()
            .naive_utc()
    }

    fn row() -> Token {
        Token {
            token_hash: "h".into(),
            kind: tokens::REFRESH.into(),
            family_id: "f".into(),
            client_id: "app".into(),
            user_id: Some("u".into()),
            scope: "offline_access openid".into(),
            grant_data: "{}".into(),
            rotated: true,
            revoked: false,
            created_at: at(-100),
            expires_at: at(3600),
            rotated_at: Some(at(0)),
            successor_sealed: Some("v1:k:x".into()),
        }
    }

    #[test]
    fn a_token_not_yet_rotated_is_fresh() {
        let r = Token {
            rotated: false,
            rotated_at: None,
            successor_sealed: None,
            ..row()
        };
        assert_eq!(classify(&r, "app", at(1), 30), Presentation::Fresh);
    }

    #[test]
    fn a_revoked_token_runs_the_grant_which_refuses_it() {
        let r = Token {
            revoked: true,
            ..row()
        };
        assert_eq!(classify(&r, "app", at(1), 30), Presentation::Fresh);
    }

    #[test]
    fn the_same_client_within_the_window_is_a_retry_until_the_last_second() {
        assert_eq!(
            classify(&row(), "app", at(0), 30),
            Presentation::RetryWithinWindow
        );
        assert_eq!(
            classify(&row(), "app", at(29), 30),
            Presentation::RetryWithinWindow
        );
        assert_eq!(classify(&row(), "app", at(30), 30), Presentation::Replay);
    }

    #[test]
    fn another_client_within_the_window_is_a_replay() {
        assert_eq!(classify(&row(), "other", at(1), 30), Presentation::Replay);
    }

    #[test]
    fn a_window_of_zero_makes_every_second_use_a_replay() {
        assert_eq!(classify(&row(), "app", at(0), 0), Presentation::Replay);
    }

    #[test]
    fn without_a_kept_answer_a_rotated_token_is_a_replay() {
        let r = Token {
            successor_sealed: None,
            ..row()
        };
        assert_eq!(classify(&r, "app", at(1), 30), Presentation::Replay);
        let r = Token {
            rotated_at: None,
            ..row()
        };
        assert_eq!(classify(&r, "app", at(1), 30), Presentation::Replay);
    }

    #[test]
    fn an_untouched_successor_is_handed_out_with_its_remaining_lifetime() {
        let access = Token {
            kind: tokens::ACCESS.into(),
            rotated: false,
            expires_at: at(600),
            ..row()
        };
        let refresh = Token {
            rotated: false,
            ..row()
        };
        assert_eq!(
            successor_state(Some(&access), Some(Some(&refresh)), at(10)),
            Some(590)
        );
        assert_eq!(successor_state(Some(&access), None, at(10)), Some(590));
    }

    #[test]
    fn a_used_revoked_missing_or_expired_successor_is_not_handed_out() {
        let access = Token {
            kind: tokens::ACCESS.into(),
            rotated: false,
            expires_at: at(600),
            ..row()
        };
        let used = row();
        let revoked = Token {
            rotated: false,
            revoked: true,
            ..row()
        };
        assert_eq!(
            successor_state(Some(&access), Some(Some(&used)), at(1)),
            None
        );
        assert_eq!(
            successor_state(Some(&access), Some(Some(&revoked)), at(1)),
            None
        );
        assert_eq!(successor_state(Some(&access), Some(None), at(1)), None);
        assert_eq!(successor_state(None, None, at(1)), None);
        let dead_access = Token {
            revoked: true,
            ..access.clone()
        };
        assert_eq!(successor_state(Some(&dead_access), None, at(1)), None);
        assert_eq!(successor_state(Some(&access), None, at(600)), None);
    }

    #[test]
    fn the_requested_scope_is_compared_normalized_and_empty_is_none() {
        let form = |s: Option<&str>| {
            let mut f = BTreeMap::new();
            if let Some(s) = s {
                f.insert("scope".to_string(), s.to_string());
            }
            f
        };
        assert_eq!(requested_scope(&form(None)), None);
        assert_eq!(requested_scope(&form(Some(""))), None);
        assert_eq!(
            requested_scope(&form(Some("profile  openid"))),
            requested_scope(&form(Some("openid profile")))
        );
    }
}
