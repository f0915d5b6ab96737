use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConn;
use crate::db::schema::clients;

#[derive(Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = clients)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// Hex SHA-256 of the secret; `None` for public clients.
    pub secret_hash: Option<String>,
    pub public: bool,
    /// JSON array of exact redirect URIs.
    pub redirect_uris: String,
    /// JSON array of exact post-logout redirect URIs.
    pub post_logout_redirect_uris: String,
    /// Space-separated scopes the client may ask for.
    pub scopes: String,
    /// JSON array of grant types.
    pub grant_types: String,
    pub auth_method: String,
    pub skip_consent: bool,
    pub require_mfa: bool,
    pub backchannel_logout_uri: Option<String>,
    pub id_token_alg: String,
    pub created_at: NaiveDateTime,
    /// JSON array of origins (`scheme://host[:port]`) whose pages may call the token-side
    /// endpoints.
    pub web_origins: String,
    /// Hex SHA-256 of the secret replaced by the last rotation, accepted until it expires.
    pub previous_secret_hash: Option<String>,
    pub previous_secret_expires_at: Option<NaiveDateTime>,
    /// Token-side requests per minute for this client; `None` uses the configured default.
    pub requests_per_minute: Option<i32>,
    pub updated_at: Option<NaiveDateTime>,
}

/// Shows no secret hash.
impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field("public", &self.public)
            .field("auth_method", &self.auth_method)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn redirect_uri_list(&self) -> Vec<String> {
        serde_json::from_str(&self.redirect_uris).unwrap_or_default()
    }
    pub fn post_logout_redirect_uri_list(&self) -> Vec<String> {
        serde_json::from_str(&self.post_logout_redirect_uris).unwrap_or_default()
    }
    pub fn grant_type_list(&self) -> Vec<String> {
        serde_json::from_str(&self.grant_types).unwrap_or_default()
    }
    pub fn web_origin_list(&self) -> Vec<String> {
        serde_json::from_str(&self.web_origins).unwrap_or_default()
    }
    pub fn scope_list(&self) -> Vec<String> {
        self.scopes.split_whitespace().map(str::to_string).collect()
    }
}

pub fn insert(conn: &mut DbConn, client: &Client) -> QueryResult<()> {
    diesel::insert_into(clients::table)
        .values(client)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConn, client_id: &str) -> QueryResult<Option<Client>> {
    clients::table
        .find(client_id)
        .select(Client::as_select())
        .first(conn)
        .optional()
}

pub fn list(conn: &mut DbConn) -> QueryResult<Vec<Client>> {
    clients::table
        .order(clients::client_id.asc())
        .select(Client::as_select())
        .load(conn)
}

pub fn delete(conn: &mut DbConn, client_id: &str) -> QueryResult<usize> {
    diesel::delete(clients::table.find(client_id)).execute(conn)
}

/// The registered web origins (JSON text) of at most `limit` clients whose list contains
/// `origin` as a JSON string: a bounded pre-filter; callers confirm on the parsed list.
pub fn web_origins_containing(
    conn: &mut DbConn,
    origin: &str,
    limit: i64,
) -> QueryResult<Vec<String>> {
    let mut pattern = String::from("%\"");
    for c in origin.chars() {
        if matches!(c, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(c);
    }
    pattern.push_str("\"%");
    clients::table
        .filter(clients::web_origins.like(pattern).escape('\\'))
        .select(clients::web_origins)
        .limit(limit)
        .load(conn)
}

/// Stores what `client update` may change (and when it changed).
pub fn save_changes(conn: &mut DbConn, c: &Client) -> QueryResult<usize> {
    diesel::update(clients::table.find(&c.client_id))
        .set((
            clients::name.eq(&c.name),
            clients::redirect_uris.eq(&c.redirect_uris),
            clients::scopes.eq(&c.scopes),
            clients::grant_types.eq(&c.grant_types),
            clients::web_origins.eq(&c.web_origins),
            clients::requests_per_minute.eq(c.requests_per_minute),
            clients::updated_at.eq(c.updated_at),
        ))
        .execute(conn)
}

/// Replaces the secret's hash; the previous one keeps working until `previous_expires_at`
/// when given (`None, None` ends it at once).
pub fn set_secret(
    conn: &mut DbConn,
    client_id: &str,
    secret_hash: &str,
    previous: Option<(&str, NaiveDateTime)>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(clients::table.find(client_id))
        .set((
            clients::secret_hash.eq(Some(secret_hash)),
            clients::previous_secret_hash.eq(previous.map(|(h, _)| h)),
            clients::previous_secret_expires_at.eq(previous.map(|(_, t)| t)),
            clients::updated_at.eq(Some(now)),
        ))
        .execute(conn)
}
