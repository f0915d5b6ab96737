//! The facts a grant carries from the authorization step to every token it yields.

use serde::{Deserialize, Serialize};

/// Stored as JSON with codes and tokens, and passed through oxide-auth as a private extension.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct GrantData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Unix time of the sign-in that produced the grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    #[serde(default)]
    pub amr: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr: Option<String>,
    /// The browser session's public id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// True when the request carried `max_age`, so `auth_time` must be in the ID token.
    #[serde(default)]
    pub max_age_requested: bool,
    /// Claims asked for through the `claims` request parameter (OIDC Core §5.5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_userinfo: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_id_token: Vec<String>,
    pub family_id: String,
}

/// Name of the oxide-auth grant extension that carries `GrantData`.
pub const EXTENSION: &str = "portcullis";

impl GrantData {
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
    pub fn from_json(s: &str) -> Option<GrantData> {
        serde_json::from_str(s).ok()
    }
}
