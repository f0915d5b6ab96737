//! Client authentication at the token endpoint: `client_secret_basic`, `client_secret_post`, `none`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use std::collections::BTreeMap;

use chrono::NaiveDateTime;

use crate::audit::{self, Event};
use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::error::internal_error_sources;
use crate::keys::secrets::verify_hashed;
use crate::oauth::errors::OAuthError;
use crate::store::clients::{self, Client};

/// How the client presented itself (`Debug` never shows the secret).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub client_id: String,
    pub secret: Option<String>,
    /// True when they came in the Authorization header.
    pub basic: bool,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[redacted]"))
            .field("basic", &self.basic)
            .finish()
    }
}

/// Why client authentication failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientAuthError {
    /// Malformed or ambiguous credentials: `invalid_request`.
    #[error("malformed client credentials: {0}")]
    Malformed(&'static str),
    /// Unknown client, wrong or missing secret: `invalid_client`.
    #[error("client authentication failed")]
    Failed { basic: bool },
    /// Credentials presented another way than the client's registered
    /// `token_endpoint_auth_method`: `invalid_client`.
    #[error("authentication method not registered for the client")]
    WrongMethod { basic: bool },
    #[error(transparent)]
    Internal(#[from] InternalError),
}

internal_error_sources!(ClientAuthError);

impl ClientAuthError {
    /// Why, for the audit trail (never what was presented). `known`: the presented client is
    /// registered.
    fn audit_reason(&self, known: bool) -> &'static str {
        match self {
            ClientAuthError::Malformed(m) => m,
            ClientAuthError::WrongMethod { .. } => {
                "authentication method not registered for the client"
            }
            ClientAuthError::Failed { .. } if known => "wrong or missing credentials",
            ClientAuthError::Failed { .. } => "unknown or missing client",
            ClientAuthError::Internal(_) => "internal error",
        }
    }
}

impl From<ClientAuthError> for OAuthError {
    fn from(e: ClientAuthError) -> Self {
        match e {
            ClientAuthError::Malformed(m) => OAuthError::InvalidRequest(m.into()),
            ClientAuthError::Failed { basic } | ClientAuthError::WrongMethod { basic } => {
                OAuthError::InvalidClient { basic }
            }
            ClientAuthError::Internal(e) => OAuthError::Internal(e),
        }
    }
}

/// True when credentials presented this way are what the client registered: a secret in the
/// Basic header for `client_secret_basic`, in the body for `client_secret_post`, no secret at
/// all for a public client (`none`). Anything else is refused.
pub fn method_allowed(client: &Client, creds: &Credentials) -> bool {
    match client.auth_method.as_str() {
        "client_secret_basic" => !client.public && creds.basic,
        "client_secret_post" => !client.public && !creds.basic,
        "none" => client.public,
        _ => false,
    }
}

/// Reads credentials from the Basic header or the form body; both at once is refused (RFC 6749 §2.3).
pub fn credentials(
    authorization: Option<&str>,
    form: &BTreeMap<String, String>,
) -> Result<Credentials, ClientAuthError> {
    let body_id = form.get("client_id").filter(|s| !s.is_empty());
    let body_secret = form.get("client_secret").filter(|s| !s.is_empty());
    if let Some(header) = authorization {
        let Some(encoded) = header
            .strip_prefix("Basic ")
            .or_else(|| header.strip_prefix("basic "))
        else {
            return Err(ClientAuthError::Malformed(
                "unsupported Authorization scheme at the token endpoint",
            ));
        };
        if body_secret.is_some() {
            return Err(ClientAuthError::Malformed(
                "more than one client authentication method used",
            ));
        }
        let decoded = STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(ClientAuthError::Failed { basic: true })?;
        let (id, secret) = decoded
            .split_once(':')
            .ok_or(ClientAuthError::Failed { basic: true })?;
        let id = form_decode(id).ok_or(ClientAuthError::Failed { basic: true })?;
        let secret = form_decode(secret).ok_or(ClientAuthError::Failed { basic: true })?;
        if let Some(b) = body_id
            && *b != id
        {
            return Err(ClientAuthError::Malformed(
                "client_id in the body differs from the authenticated client",
            ));
        }
        return Ok(Credentials {
            client_id: id,
            secret: Some(secret),
            basic: true,
        });
    }
    match body_id {
        Some(id) => Ok(Credentials {
            client_id: id.clone(),
            secret: body_secret.cloned(),
            basic: false,
        }),
        None => Err(ClientAuthError::Failed { basic: false }),
    }
}

/// Checks presented credentials against the registered client: its secret, or, until it
/// expires, the secret a rotation replaced (`client rotate-secret --keep-old-for`). Both are
/// compared in constant time, every time.
pub fn authenticate(
    client: &Client,
    creds: &Credentials,
    now: NaiveDateTime,
) -> Result<(), ClientAuthError> {
    let failed = ClientAuthError::Failed { basic: creds.basic };
    if client.public {
        // A public client has no secret; presenting one is a confused client.
        return match creds.secret.as_deref() {
            None | Some("") => Ok(()),
            Some(_) => Err(failed),
        };
    }
    let Some(secret) = creds.secret.as_deref() else {
        return Err(failed);
    };
    let current = client
        .secret_hash
        .as_deref()
        .is_some_and(|h| verify_hashed(secret, h));
    let previous = match (
        client.previous_secret_hash.as_deref(),
        client.previous_secret_expires_at,
    ) {
        (Some(h), Some(until)) => verify_hashed(secret, h) & (now < until),
        _ => false,
    };
    if current | previous {
        Ok(())
    } else {
        Err(failed)
    }
}

/// Identifies and authenticates the client of a token-side request.
pub fn authenticate_request(
    conn: &mut DbConn,
    authorization: Option<&str>,
    form: &BTreeMap<String, String>,
    now: NaiveDateTime,
) -> Result<(Client, Credentials), ClientAuthError> {
    let creds = credentials(authorization, form)?;
    let Some(client) = clients::find(conn, &creds.client_id)? else {
        return Err(ClientAuthError::Failed { basic: creds.basic });
    };
    if !method_allowed(&client, &creds) {
        return Err(ClientAuthError::WrongMethod { basic: creds.basic });
    }
    authenticate(&client, &creds, now)?;
    Ok((client, creds))
}

/// `authenticate_request` at a token-side `endpoint`, with every refusal audited
/// (`client.auth`, failure, the endpoint and why; never what was presented) and, when the
/// presented client is registered, counted by the token-error detector. The audit is written
/// on `conn` before the refusal returns: the caller keeps it (`transaction_keeping_refusals`).
pub fn authenticate_audited(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    endpoint: &str,
    authorization: Option<&str>,
    form: &BTreeMap<String, String>,
    now: NaiveDateTime,
) -> Result<(Client, Credentials), ClientAuthError> {
    let refused = match authenticate_request(conn, authorization, form, now) {
        Err(e) if !matches!(e, ClientAuthError::Internal(_)) => e,
        answered => return answered,
    };
    let known = match credentials(authorization, form) {
        Ok(c) => clients::find(conn, &c.client_id)?.map(|c| c.client_id),
        Err(_) => None,
    };
    let reason = refused.audit_reason(known.is_some());
    record_failure(conn, ctx, endpoint, known.as_deref(), reason, now)?;
    Err(refused)
}

/// Audits a refused client at a token-side `endpoint` (`client.auth`, failure) and, for a
/// registered client, lets the token-error detector count it.
pub fn record_failure(
    conn: &mut DbConn,
    ctx: Ctx<'_>,
    endpoint: &str,
    client_id: Option<&str>,
    reason: &str,
    now: NaiveDateTime,
) -> Result<(), InternalError> {
    let mut event = Event::new("client.auth", "failure")
        .details(serde_json::json!({"endpoint": endpoint, "reason": reason}));
    if let Some(id) = client_id {
        event = event.client(id);
    }
    audit::record(conn, ctx.meta, now, event)?;
    if let Some(id) = client_id {
        audit::detect::after_token_error(conn, ctx, now, id)?;
    }
    Ok(())
}

/// The registered client a token-side request names (authenticated or not), for its request
/// budget.
pub fn named_client(
    conn: &mut DbConn,
    authorization: Option<&str>,
    pairs: &[(String, String)],
) -> Result<Option<Client>, InternalError> {
    let Ok(form) = single_valued(pairs) else {
        return Ok(None);
    };
    let Ok(creds) = credentials(authorization, &form) else {
        return Ok(None);
    };
    Ok(clients::find(conn, &creds.client_id)?)
}

/// Form pairs as a map; `Err(name)` names the first repeated parameter.
pub fn single_valued(pairs: &[(String, String)]) -> Result<BTreeMap<String, String>, String> {
    let mut form = BTreeMap::new();
    for (k, v) in pairs {
        if form.insert(k.clone(), v.clone()).is_some() {
            return Err(k.clone());
        }
    }
    Ok(form)
}

/// `application/x-www-form-urlencoded` decoding of one Basic credential part (RFC 6749 §2.3.1).
fn form_decode(s: &str) -> Option<String> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(&format!("v={s}")).ok()?;
    pairs.into_iter().next().map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_of_presented_credentials_hides_the_secret() {
        let c = Credentials {
            client_id: "app".into(),
            secret: Some("s3cr3t-value-0042".into()),
            basic: true,
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-value-0042"), "{shown}");
        assert!(shown.contains("app"), "{shown}");
    }

    fn form(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let h = format!("Basic {}", STANDARD.encode("my%20app:s%3Acret"));
        let c = credentials(Some(&h), &form(&[])).unwrap();
        assert_eq!(c.client_id, "my app");
        assert_eq!(c.secret.as_deref(), Some("s:cret"));
        assert!(c.basic);
    }

    #[test]
    fn two_authentication_methods_at_once_are_refused() {
        let h = format!("Basic {}", STANDARD.encode("a:b"));
        let err = credentials(Some(&h), &form(&[("client_secret", "b")])).unwrap_err();
        assert!(matches!(err, ClientAuthError::Malformed(_)));
    }

    fn client(method: &str, public: bool) -> Client {
        Client {
            public,
            auth_method: method.into(),
            ..crate::testkit::public_client("c")
        }
    }

    #[test]
    fn only_the_registered_authentication_method_is_allowed() {
        let creds = |basic| Credentials {
            client_id: "c".into(),
            secret: Some("s".into()),
            basic,
        };
        let basic = client("client_secret_basic", false);
        assert!(method_allowed(&basic, &creds(true)));
        assert!(!method_allowed(&basic, &creds(false)));
        let post = client("client_secret_post", false);
        assert!(method_allowed(&post, &creds(false)));
        assert!(!method_allowed(&post, &creds(true)));
        assert!(method_allowed(&client("none", true), &creds(false)));
        assert!(!method_allowed(&client("none", false), &creds(false)));
        assert!(!method_allowed(
            &client("private_key_jwt", false),
            &creds(true)
        ));
        assert!(!method_allowed(
            &client("client_secret_basic", true),
            &creds(true)
        ));
    }

    #[test]
    fn a_rotated_out_secret_works_only_until_its_expiry() {
        let t0 = chrono::NaiveDateTime::default();
        let mut c = client("client_secret_basic", false);
        c.secret_hash = Some(crate::keys::secrets::sha256_hex("new"));
        c.previous_secret_hash = Some(crate::keys::secrets::sha256_hex("old"));
        c.previous_secret_expires_at = Some(t0 + chrono::Duration::seconds(60));
        let creds = |s: &str| Credentials {
            client_id: "c".into(),
            secret: Some(s.into()),
            basic: true,
        };
        assert!(authenticate(&c, &creds("new"), t0).is_ok());
        assert!(authenticate(&c, &creds("old"), t0).is_ok());
        let later = t0 + chrono::Duration::seconds(60);
        assert!(authenticate(&c, &creds("old"), later).is_err());
        assert!(authenticate(&c, &creds("new"), later).is_ok());
        assert!(authenticate(&c, &creds("other"), t0).is_err());
        c.previous_secret_expires_at = None;
        assert!(authenticate(&c, &creds("old"), t0).is_err());
    }

    #[test]
    fn missing_client_is_invalid_client() {
        let refused = credentials(None, &form(&[])).unwrap_err();
        assert!(
            matches!(refused, ClientAuthError::Failed { basic: false }),
            "{refused:?}"
        );
    }
}
