use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::auth_requests;

/// A validated authorization request waiting for sign-in or consent.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = auth_requests)]
pub struct AuthRequest {
    pub id: String,
    pub client_id: String,
    /// JSON object of the request parameters.
    pub params: String,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, r: &AuthRequest) -> QueryResult<()> {
    diesel::insert_into(auth_requests::table)
        .values(r)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConn, id: &str) -> QueryResult<Option<AuthRequest>> {
    auth_requests::table
        .find(id)
        .select(AuthRequest::as_select())
        .first(conn)
        .optional()
}

/// Removes the request; the row count says whether this caller consumed it.
pub fn delete(conn: &mut DbConn, id: &str) -> QueryResult<usize> {
    diesel::delete(auth_requests::table.find(id)).execute(conn)
}
