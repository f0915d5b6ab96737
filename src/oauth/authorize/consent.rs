//! What a user approves for a client, and whether an earlier approval covers a request: the
//! scopes asked for, and the claims asked for through `claims` that those scopes do not
//! already release.

use super::*;

impl Valid {
    /// Claims asked for through `claims` (ID token or userinfo) that none of the requested
    /// scopes releases: each needs the user's approval by name. In the order of
    /// `claims::REQUESTABLE`.
    pub fn claims_to_approve(&self) -> Vec<String> {
        claims::REQUESTABLE
            .iter()
            .filter(|c| self.claims.0.iter().chain(&self.claims.1).any(|x| x == *c))
            .filter(|c| claims::scope_of(c).is_none_or(|s| !self.scopes.iter().any(|x| x == s)))
            .map(|c| c.to_string())
            .collect()
    }
}

fn words(list: &str) -> impl Iterator<Item = &str> {
    list.split(' ').filter(|s| !s.is_empty())
}

/// True when the stored consent approves every scope and every claim of the request. A claim
/// is approved by name, or by the scope that releases it.
pub fn covers(c: &consents::Consent, valid: &Valid) -> bool {
    let scopes_ok = valid.scopes.iter().all(|s| scope::contains(&c.scopes, s));
    let claims_ok = valid.claims_to_approve().iter().all(|claim| {
        words(&c.claims).any(|x| x == claim)
            || claims::scope_of(claim).is_some_and(|s| scope::contains(&c.scopes, s))
    });
    scopes_ok && claims_ok
}

/// Adds the request's scopes and claims to what the user approved for the client.
pub fn remember(
    conn: &mut DbConn,
    user_id: &str,
    valid: &Valid,
    now: NaiveDateTime,
) -> Result<(), InternalError> {
    let before = consents::find(conn, user_id, &valid.client.client_id)?;
    let merge = |old: Option<&str>, new: &[String]| -> String {
        let mut all: Vec<String> = old
            .map(words)
            .into_iter()
            .flatten()
            .map(str::to_string)
            .collect();
        for x in new {
            if !all.contains(x) {
                all.push(x.clone());
            }
        }
        all.join(" ")
    };
    consents::put(
        conn,
        &consents::Consent {
            user_id: user_id.to_string(),
            client_id: valid.client.client_id.clone(),
            scopes: merge(before.as_ref().map(|c| c.scopes.as_str()), &valid.scopes),
            claims: merge(
                before.as_ref().map(|c| c.claims.as_str()),
                &valid.claims_to_approve(),
            ),
            created_at: before.as_ref().map(|c| c.created_at).unwrap_or(now),
            updated_at: now,
        },
    )?;
    Ok(())
}
