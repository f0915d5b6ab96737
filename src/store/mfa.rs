//! Second factors: TOTP credentials, passkeys, recovery codes and WebAuthn ceremonies.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::{passkeys, recovery_codes, totp_credentials, webauthn_ceremonies};

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = totp_credentials)]
pub struct Totp {
    pub user_id: String,
    /// Sealed under the master key; never stored in the clear.
    pub secret: String,
    pub confirmed: bool,
    pub last_step: Option<i64>,
    pub created_at: NaiveDateTime,
    pub confirmed_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
}

/// Shows no seed, sealed or not.
impl std::fmt::Debug for Totp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Totp")
            .field("user_id", &self.user_id)
            .field("confirmed", &self.confirmed)
            .finish_non_exhaustive()
    }
}

pub fn totp_find(conn: &mut DbConn, user_id: &str) -> QueryResult<Option<Totp>> {
    totp_credentials::table
        .find(user_id)
        .select(Totp::as_select())
        .first(conn)
        .optional()
}

pub fn totp_all(conn: &mut DbConn) -> QueryResult<Vec<Totp>> {
    totp_credentials::table.select(Totp::as_select()).load(conn)
}

/// Replaces an unconfirmed enrolment (a confirmed one is left alone: 0 rows).
pub fn totp_begin(conn: &mut DbConn, t: &Totp) -> QueryResult<usize> {
    diesel::delete(
        totp_credentials::table
            .filter(totp_credentials::user_id.eq(&t.user_id))
            .filter(totp_credentials::confirmed.eq(false)),
    )
    .execute(conn)?;
    if totp_find(conn, &t.user_id)?.is_some() {
        return Ok(0);
    }
    diesel::insert_into(totp_credentials::table)
        .values(t)
        .execute(conn)
}

/// Accepts time step `step` for the user, once: the row changes only if no later or equal
/// step was accepted before. `confirming` selects an enrolment instead of a live credential.
pub fn totp_accept(
    conn: &mut DbConn,
    user_id: &str,
    step: i64,
    confirming: bool,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let target = totp_credentials::table
        .filter(totp_credentials::user_id.eq(user_id))
        .filter(totp_credentials::confirmed.eq(!confirming))
        .filter(
            totp_credentials::last_step
                .is_null()
                .or(totp_credentials::last_step.lt(step)),
        );
    if confirming {
        diesel::update(target)
            .set((
                totp_credentials::confirmed.eq(true),
                totp_credentials::confirmed_at.eq(now),
                totp_credentials::last_step.eq(step),
            ))
            .execute(conn)
    } else {
        diesel::update(target)
            .set((
                totp_credentials::last_step.eq(step),
                totp_credentials::last_used_at.eq(now),
            ))
            .execute(conn)
    }
}

pub fn totp_reseal(conn: &mut DbConn, user_id: &str, sealed: &str) -> QueryResult<usize> {
    diesel::update(totp_credentials::table.find(user_id))
        .set(totp_credentials::secret.eq(sealed))
        .execute(conn)
}

pub fn totp_delete(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(totp_credentials::table.find(user_id)).execute(conn)
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = passkeys)]
pub struct PasskeyRow {
    /// base64url credential id.
    pub credential_id: String,
    pub user_id: String,
    pub name: String,
    pub passkey: String,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub sign_count: i64,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
}

pub fn passkey_insert(conn: &mut DbConn, p: &PasskeyRow) -> QueryResult<usize> {
    diesel::insert_into(passkeys::table).values(p).execute(conn)
}

pub fn passkeys_for(conn: &mut DbConn, user_id: &str) -> QueryResult<Vec<PasskeyRow>> {
    passkeys::table
        .filter(passkeys::user_id.eq(user_id))
        .order(passkeys::created_at.asc())
        .select(PasskeyRow::as_select())
        .load(conn)
}

pub fn passkey_find(conn: &mut DbConn, credential_id: &str) -> QueryResult<Option<PasskeyRow>> {
    passkeys::table
        .find(credential_id)
        .select(PasskeyRow::as_select())
        .first(conn)
        .optional()
}

/// After a successful use: the new counter and backup flags, and the time.
pub fn passkey_used(conn: &mut DbConn, p: &PasskeyRow) -> QueryResult<usize> {
    diesel::update(passkeys::table.find(&p.credential_id))
        .set((
            passkeys::passkey.eq(&p.passkey),
            passkeys::sign_count.eq(p.sign_count),
            passkeys::backup_eligible.eq(p.backup_eligible),
            passkeys::backup_state.eq(p.backup_state),
            passkeys::last_used_at.eq(p.last_used_at),
        ))
        .execute(conn)
}

pub fn passkey_delete(conn: &mut DbConn, user_id: &str, credential_id: &str) -> QueryResult<usize> {
    diesel::delete(
        passkeys::table
            .filter(passkeys::user_id.eq(user_id))
            .filter(passkeys::credential_id.eq(credential_id)),
    )
    .execute(conn)
}

pub fn passkeys_delete_for(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(passkeys::table.filter(passkeys::user_id.eq(user_id))).execute(conn)
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = recovery_codes)]
pub struct RecoveryCode {
    pub code_hash: String,
    pub user_id: String,
    pub used_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

/// Shows no code hash.
impl std::fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecoveryCode")
            .field("user_id", &self.user_id)
            .field("used_at", &self.used_at)
            .finish_non_exhaustive()
    }
}

/// Replaces the user's whole set.
pub fn recovery_replace(
    conn: &mut DbConn,
    user_id: &str,
    codes: &[RecoveryCode],
) -> QueryResult<usize> {
    recovery_delete_for(conn, user_id)?;
    let mut n = 0;
    for c in codes {
        n += diesel::insert_into(recovery_codes::table)
            .values(c)
            .execute(conn)?;
    }
    Ok(n)
}

/// Marks one unused code as used; the row count (0 or 1) decides.
pub fn recovery_use(
    conn: &mut DbConn,
    user_id: &str,
    code_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        recovery_codes::table
            .filter(recovery_codes::code_hash.eq(code_hash))
            .filter(recovery_codes::user_id.eq(user_id))
            .filter(recovery_codes::used_at.is_null()),
    )
    .set(recovery_codes::used_at.eq(now))
    .execute(conn)
}

pub fn recovery_remaining(conn: &mut DbConn, user_id: &str) -> QueryResult<i64> {
    recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
}

/// When the user's current set of codes was made (`None` when no code is left).
pub fn recovery_created_at(conn: &mut DbConn, user_id: &str) -> QueryResult<Option<NaiveDateTime>> {
    recovery_codes::table
        .filter(recovery_codes::user_id.eq(user_id))
        .filter(recovery_codes::used_at.is_null())
        .select(diesel::dsl::max(recovery_codes::created_at))
        .first(conn)
}

pub fn recovery_delete_for(conn: &mut DbConn, user_id: &str) -> QueryResult<usize> {
    diesel::delete(recovery_codes::table.filter(recovery_codes::user_id.eq(user_id))).execute(conn)
}

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = webauthn_ceremonies)]
pub struct Ceremony {
    /// SHA-256 of the random id handed to the browser.
    pub id: String,
    pub kind: String,
    /// The browser session that began it; only that session may finish it.
    pub sid: String,
    pub user_id: Option<String>,
    /// The webauthn-rs state as JSON (challenge, allowed credentials).
    pub state: String,
    pub expires_at: NaiveDateTime,
}

/// Shows no challenge state.
impl std::fmt::Debug for Ceremony {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ceremony")
            .field("kind", &self.kind)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

pub fn ceremony_insert(conn: &mut DbConn, c: &Ceremony) -> QueryResult<usize> {
    diesel::insert_into(webauthn_ceremonies::table)
        .values(c)
        .execute(conn)
}

/// Takes a ceremony out: whoever deletes the row owns it, so it is finished at most once.
pub fn ceremony_take(conn: &mut DbConn, id: &str) -> QueryResult<Option<Ceremony>> {
    let Some(c) = webauthn_ceremonies::table
        .find(id)
        .select(Ceremony::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let deleted = diesel::delete(webauthn_ceremonies::table.find(id)).execute(conn)?;
    Ok((deleted == 1).then_some(c))
}

pub fn ceremonies_purge(conn: &mut DbConn, now: NaiveDateTime, limit: i64) -> QueryResult<usize> {
    let batch = webauthn_ceremonies::table
        .select(webauthn_ceremonies::id)
        .filter(webauthn_ceremonies::expires_at.le(now))
        .limit(limit)
        .load::<String>(conn)?;
    diesel::delete(webauthn_ceremonies::table.filter(webauthn_ceremonies::id.eq_any(batch)))
        .execute(conn)
}
