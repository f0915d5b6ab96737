//! Provider metadata (OpenID Connect Discovery 1.0, RFC 8414): built once, served from memory.

use serde_json::{Value, json};

use crate::config::Config;
use crate::oidc::claims;
use crate::protocol::scope;

/// The metadata document. It advertises only what works.
pub fn metadata(config: &Config, signing_algs: &[String]) -> Value {
    let u = |p: &str| config.url(p);
    json!({
        "issuer": config.issuer,
        "authorization_endpoint": u("/authorize"),
        "token_endpoint": u("/token"),
        "userinfo_endpoint": u("/userinfo"),
        "jwks_uri": u("/jwks"),
        "revocation_endpoint": u("/revoke"),
        "introspection_endpoint": u("/introspect"),
        "end_session_endpoint": u("/logout"),
        "pushed_authorization_request_endpoint": u("/par"),
        "require_pushed_authorization_requests": false,
        "scopes_supported": scope::SUPPORTED,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": signing_algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
        "claims_supported": claims::SUPPORTED,
        "claims_parameter_supported": true,
        "acr_values_supported": [
            crate::protocol::acr::ACR_SINGLE_FACTOR,
            crate::protocol::acr::ACR_MULTI_FACTOR
        ],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "require_request_uri_registration": false,
        "authorization_response_iss_parameter_supported": true,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "ui_locales_supported": ["en"],
        "claim_types_supported": ["normal"],
    })
}
