use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::signing_keys;

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = signing_keys)]
pub struct SigningKey {
    pub kid: String,
    pub alg: String,
    /// PKCS#1 PEM of the private key, sealed with AES-256-GCM under the master key.
    pub private_pem: String,
    /// The public JWK as JSON.
    pub public_jwk: String,
    /// `next`, `active` or `retired`.
    pub state: String,
    pub created_at: NaiveDateTime,
    pub activated_at: Option<NaiveDateTime>,
    pub retired_at: Option<NaiveDateTime>,
}

/// Shows no private key material, sealed or not.
impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

pub fn insert(conn: &mut DbConn, k: &SigningKey) -> QueryResult<()> {
    diesel::insert_into(signing_keys::table)
        .values(k)
        .execute(conn)
        .map(|_| ())
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<SigningKey>> {
    signing_keys::table
        .order(signing_keys::created_at.asc())
        .select(SigningKey::as_select())
        .load(conn)
}

/// Each key's id and state (small: a few rows), to tell whether the set changed.
pub fn states(conn: &mut DbConn) -> QueryResult<Vec<(String, String)>> {
    signing_keys::table
        .select((signing_keys::kid, signing_keys::state))
        .load(conn)
}

/// Promotes the `next` key `kid` to active; the row count says whether this caller did it.
pub fn promote(conn: &mut DbConn, kid: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        signing_keys::table
            .filter(signing_keys::kid.eq(kid))
            .filter(signing_keys::state.eq("next")),
    )
    .set((
        signing_keys::state.eq("active"),
        signing_keys::activated_at.eq(Some(now)),
    ))
    .execute(conn)
}

/// Retires every active key of `alg` but `keep`.
pub fn retire_others(
    conn: &mut DbConn,
    keep: &str,
    alg: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        signing_keys::table
            .filter(signing_keys::state.eq("active"))
            .filter(signing_keys::alg.eq(alg))
            .filter(signing_keys::kid.ne(keep)),
    )
    .set((
        signing_keys::state.eq("retired"),
        signing_keys::retired_at.eq(Some(now)),
    ))
    .execute(conn)
}

pub fn delete(conn: &mut DbConn, kid: &str) -> QueryResult<usize> {
    diesel::delete(signing_keys::table.find(kid)).execute(conn)
}

/// Replaces a key's sealed private part (master key rotation).
pub fn reseal(conn: &mut DbConn, kid: &str, sealed: &str) -> QueryResult<usize> {
    diesel::update(signing_keys::table.find(kid))
        .set(signing_keys::private_pem.eq(sealed))
        .execute(conn)
}
