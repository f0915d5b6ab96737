//! oxide-auth's primitives over diesel: one registrar, authorizer and issuer per request,
//! sharing the request's connection, plus the extension that carries PKCE and the OIDC facts.

use chrono::{DateTime, NaiveDateTime, Utc};
use oxide_auth::code_grant::accesstoken::{Extension as AccessTokenExt, Request as TokenReq};
use oxide_auth::code_grant::authorization::{Extension as AuthorizationExt, Request as AuthReq};
use oxide_auth::code_grant::extensions::Pkce;
use oxide_auth::endpoint::{
    AccessTokenExtension, AuthorizationExtension, Endpoint, Extension, OAuthError, OwnerConsent,
    OwnerSolicitor, Scopes, Solicitation, Template,
};
use oxide_auth::frontends::simple::request::{NoError, Request, Response};
use oxide_auth::primitives::grant::{Extensions, Grant, Value};
use oxide_auth::primitives::issuer::{IssuedToken, RefreshedToken, TokenType};
use oxide_auth::primitives::prelude::{Authorizer, Issuer, PreGrant, Registrar, Scope};
use oxide_auth::primitives::registrar::{
    BoundClient, ClientUrl, ExactUrl, RegisteredUrl, RegistrarError,
};
use std::borrow::Cow;
use std::cell::RefCell;

use crate::context::Ctx;
use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::secrets::{random_id, random_token, sha256_hex};
use crate::oauth::client_auth;
use crate::oidc::id_token;
use crate::protocol::grant_data::{self, GrantData};
use crate::protocol::scope;
use crate::store::auth_codes::{self, AuthCode};
use crate::store::clients::Client;
use crate::store::tokens::{self, Token};

mod issuer;
pub use issuer::DbIssuer;

/// The request's connection, shared by the authorizer and the issuer.
pub type SharedConn<'c> = RefCell<&'c mut DbConn>;

/// What went wrong inside a primitive, for mapping oxide-auth's coarse errors to RFC codes.
#[derive(Debug, Default)]
pub struct Flags {
    /// A code or refresh token was unknown, expired, replayed or another client's.
    pub bad_grant: bool,
    /// The PKCE verifier did not match.
    pub pkce_failed: bool,
    /// A used authorization code came back.
    pub code_replayed: bool,
    /// A rotated refresh token came back.
    pub refresh_reused: bool,
    /// A database or signing failure (the flow's error is then an internal one).
    pub internal: Option<InternalError>,
}

/// A registrar that knows exactly one client, loaded before the flow runs.
pub struct OneClient<'a> {
    pub client: &'a Client,
    /// The scope granted for this request (already intersected with what the client may have).
    pub granted: Option<String>,
    /// Stands in for the redirect URI of clients that have none (the issuer URL).
    pub placeholder: String,
    /// The request's time (a rotated-out secret works only until its expiry).
    pub now: NaiveDateTime,
}

impl Registrar for OneClient<'_> {
    fn bound_redirect<'b>(&self, bound: ClientUrl<'b>) -> Result<BoundClient<'b>, RegistrarError> {
        if bound.client_id != self.client.client_id {
            return Err(RegistrarError::Unspecified);
        }
        let registered = self.client.redirect_uri_list();
        let chosen = match bound.redirect_uri {
            // The URI as presented: a loopback URI's port is the app's own.
            Some(uri) => registered
                .iter()
                .any(|r| crate::oauth::redirect::matches(r, uri.as_str()))
                .then(|| uri.as_str().to_string())
                .ok_or(RegistrarError::Unspecified)?,
            None if registered.len() == 1 => registered[0].clone(),
            // A client-credentials client has no redirect URI; oxide-auth still wants one.
            None if registered.is_empty() => self.placeholder.clone(),
            None => return Err(RegistrarError::Unspecified),
        };
        let exact = ExactUrl::new(chosen).map_err(|_| RegistrarError::Unspecified)?;
        Ok(BoundClient {
            client_id: bound.client_id,
            redirect_uri: Cow::Owned(RegisteredUrl::Exact(exact)),
        })
    }

    /// Intersects instead of handing out a default: the requested scope was already narrowed.
    fn negotiate(
        &self,
        client: BoundClient,
        _scope: Option<Scope>,
    ) -> Result<PreGrant, RegistrarError> {
        let granted = self.granted.clone().unwrap_or_default();
        let scope: Scope = granted.parse().map_err(|_| RegistrarError::Unspecified)?;
        Ok(PreGrant {
            client_id: client.client_id.into_owned(),
            redirect_uri: client.redirect_uri.into_owned(),
            scope,
        })
    }

    fn check(&self, client_id: &str, passphrase: Option<&[u8]>) -> Result<(), RegistrarError> {
        if client_id != self.client.client_id {
            return Err(RegistrarError::Unspecified);
        }
        let secret = match passphrase {
            Some(p) => Some(
                std::str::from_utf8(p)
                    .map_err(|_| RegistrarError::Unspecified)?
                    .to_string(),
            ),
            None => None,
        };
        let creds = client_auth::Credentials {
            client_id: client_id.to_string(),
            secret,
            basic: true,
        };
        client_auth::authenticate(self.client, &creds, self.now)
            .map_err(|_| RegistrarError::Unspecified)
    }
}

/// Stores authorization codes (hashed) with the session facts of the sign-in.
pub struct DbAuthorizer<'a, 'c> {
    pub conn: &'a SharedConn<'c>,
    /// The client of this request: only its own codes are looked at, let alone used up.
    pub client_id: &'a str,
    pub now: NaiveDateTime,
    pub code_lifetime: i64,
    /// Session facts to attach to a new code.
    pub facts: GrantData,
    pub flags: &'a RefCell<Flags>,
    /// The code handed out, so the caller can compute `c_hash` if it ever needs it.
    pub issued_code: Option<String>,
}

impl Authorizer for DbAuthorizer<'_, '_> {
    fn authorize(&mut self, grant: Grant) -> Result<String, ()> {
        let code = random_token();
        let mut data = self.facts.clone();
        data.family_id = random_id();
        for (k, v) in grant.extensions.private() {
            if k == "nonce" {
                data.nonce = v.map(str::to_string);
            }
        }
        let pkce = grant
            .extensions
            .private()
            .find(|(k, _)| *k == "pkce")
            .and_then(|(_, v)| v.map(str::to_string));
        let stored = StoredCode { data, pkce };
        let row = AuthCode {
            code_hash: sha256_hex(&code),
            client_id: grant.client_id.clone(),
            user_id: grant.owner_id.clone(),
            redirect_uri: grant.redirect_uri.to_string(),
            scope: scope::normalize(&grant.scope.to_string()),
            grant_data: serde_json::to_string(&stored).map_err(|_| ())?,
            family_id: stored.data.family_id.clone(),
            used: false,
            created_at: self.now,
            expires_at: crate::protocol::params::after(self.now, self.code_lifetime),
        };
        let mut conn = self.conn.borrow_mut();
        if let Err(e) = auth_codes::insert(&mut conn, &row) {
            self.flags.borrow_mut().internal = Some(e.into());
            return Err(());
        }
        self.issued_code = Some(code.clone());
        Ok(code)
    }

    /// Consumes the code exactly once. A replay revokes every token the first exchange issued.
    fn extract(&mut self, code: &str) -> Result<Option<Grant>, ()> {
        let hash = sha256_hex(code);
        let mut conn = self.conn.borrow_mut();
        let row = match auth_codes::find(&mut conn, &hash) {
            Ok(Some(r)) => r,
            Ok(None) => {
                self.flags.borrow_mut().bad_grant = true;
                return Ok(None);
            }
            Err(e) => {
                self.flags.borrow_mut().internal = Some(e.into());
                return Err(());
            }
        };
        if row.client_id != self.client_id {
            // Another client's code: refused before anything changes, so it stays usable by
            // the client it was issued to.
            self.flags.borrow_mut().bad_grant = true;
            tracing::warn!(client_id = %self.client_id, "client presented another client's authorization code");
            return Ok(None);
        }
        let consumed = match auth_codes::mark_used(&mut conn, &hash) {
            Ok(n) => n == 1,
            Err(e) => {
                self.flags.borrow_mut().internal = Some(e.into());
                return Err(());
            }
        };
        if !consumed {
            self.flags.borrow_mut().bad_grant = true;
            self.flags.borrow_mut().code_replayed = true;
            if let Err(e) = tokens::revoke_family(&mut conn, &row.family_id) {
                self.flags.borrow_mut().internal = Some(e.into());
                return Err(());
            }
            tracing::warn!(client_id = %row.client_id, "authorization code replayed; its tokens were revoked");
            return Ok(None);
        }
        if row.expires_at <= self.now {
            self.flags.borrow_mut().bad_grant = true;
            return Ok(None);
        }
        let stored: StoredCode = serde_json::from_str(&row.grant_data).map_err(|_| ())?;
        let mut extensions = Extensions::new();
        if let Some(p) = stored.pkce {
            extensions.set_raw("pkce".into(), Value::private(Some(p)));
        }
        extensions.set_raw(
            grant_data::EXTENSION.into(),
            Value::private(Some(stored.data.to_json())),
        );
        Ok(Some(Grant {
            owner_id: row.user_id,
            client_id: row.client_id,
            scope: row.scope.parse().map_err(|_| ())?,
            redirect_uri: row.redirect_uri.parse().map_err(|_| ())?,
            until: to_utc(row.expires_at),
            extensions,
        }))
    }
}

#[derive(serde::Serialize, serde::Deserialize)]
struct StoredCode {
    data: GrantData,
    #[serde(default)]
    pkce: Option<String>,
}

/// PKCE (S256 only) and `nonce` at the authorization step; PKCE verification at the token step,
/// handing every other grant extension through unchanged.
pub struct OidcExtension<'a> {
    pub pkce: Pkce,
    pub flags: &'a RefCell<Flags>,
}

impl AuthorizationExt for OidcExtension<'_> {
    fn extend(&mut self, request: &dyn AuthReq) -> Result<Extensions, ()> {
        let mut ext = Extensions::new();
        let challenge = self.pkce.challenge(
            request.extension("code_challenge_method"),
            request.extension("code_challenge"),
        )?;
        if let Some(v) = challenge {
            ext.set(&self.pkce, v);
        }
        if let Some(n) = request.extension("nonce") {
            ext.set_raw("nonce".into(), Value::private(Some(n.into_owned())));
        }
        Ok(ext)
    }
}

impl AccessTokenExt for OidcExtension<'_> {
    fn extend(&mut self, request: &dyn TokenReq, mut data: Extensions) -> Result<Extensions, ()> {
        let stored = data.remove(&self.pkce);
        let verifier = request.extension("code_verifier");
        // A verifier for a code issued without a challenge (RFC 9700 §2.1.1): someone is
        // trying a code that was not bound to them.
        if stored.is_none() && verifier.is_some() {
            self.flags.borrow_mut().pkce_failed = true;
            return Err(());
        }
        if let Some(v) = &verifier {
            let ok_format = (43..=128).contains(&v.len())
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
            if !ok_format {
                self.flags.borrow_mut().pkce_failed = true;
                return Err(());
            }
        }
        if self.pkce.verify(stored, verifier).is_err() {
            self.flags.borrow_mut().pkce_failed = true;
            return Err(());
        }
        Ok(data)
    }
}

impl Extension for OidcExtension<'_> {
    fn authorization(&mut self) -> Option<&mut dyn AuthorizationExtension> {
        Some(self)
    }
    fn access_token(&mut self) -> Option<&mut dyn AccessTokenExtension> {
        Some(self)
    }
}

/// The resource owner's decision, made before the flow runs (sign-in and consent are our pages).
pub struct Approved(pub String);

impl OwnerSolicitor<Request> for Approved {
    fn check_consent(&mut self, _: &mut Request, _: Solicitation) -> OwnerConsent<Response> {
        OwnerConsent::Authorized(self.0.clone())
    }
}

/// An oxide-auth endpoint assembled for one request.
pub struct FlowEndpoint<'a, 'c> {
    pub registrar: OneClient<'a>,
    pub authorizer: Option<DbAuthorizer<'a, 'c>>,
    pub issuer: Option<DbIssuer<'a, 'c>>,
    pub solicitor: Option<Approved>,
    pub extension: OidcExtension<'a>,
}

impl Endpoint<Request> for FlowEndpoint<'_, '_> {
    type Error = OAuthError;

    fn registrar(&self) -> Option<&dyn Registrar> {
        Some(&self.registrar)
    }
    fn authorizer_mut(&mut self) -> Option<&mut dyn Authorizer> {
        self.authorizer.as_mut().map(|a| a as &mut dyn Authorizer)
    }
    fn issuer_mut(&mut self) -> Option<&mut dyn Issuer> {
        self.issuer.as_mut().map(|i| i as &mut dyn Issuer)
    }
    fn owner_solicitor(&mut self) -> Option<&mut dyn OwnerSolicitor<Request>> {
        self.solicitor
            .as_mut()
            .map(|s| s as &mut dyn OwnerSolicitor<Request>)
    }
    fn scopes(&mut self) -> Option<&mut dyn Scopes<Request>> {
        None
    }
    fn response(&mut self, _: &mut Request, _: Template) -> Result<Response, OAuthError> {
        Ok(Response::default())
    }
    fn error(&mut self, err: OAuthError) -> OAuthError {
        err
    }
    fn web_error(&mut self, err: NoError) -> OAuthError {
        match err {}
    }
    fn extension(&mut self) -> Option<&mut dyn Extension> {
        Some(&mut self.extension)
    }
}

pub fn to_utc(t: NaiveDateTime) -> DateTime<Utc> {
    DateTime::from_naive_utc_and_offset(t, Utc)
}
