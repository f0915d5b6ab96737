use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::signing_keys;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
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
