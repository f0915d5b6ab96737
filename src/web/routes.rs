//! The route table.

use actix_web::web;

/// Routes that are never rate limited: metadata, keys, health, the stylesheet, and CORS
/// preflights (a refused preflight is unreadable to the page, so a limit there would only
/// hide the readable 429 of the actual request).
pub fn open_routes(cfg: &mut web::ServiceConfig) {
    use crate::web::{oidc, pages};
    for path in crate::web::cors::PATHS {
        cfg.route(
            path,
            web::method(actix_web::http::Method::OPTIONS).to(crate::web::cors::preflight),
        );
    }
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(oidc::discovery::metadata),
    )
    .route(
        "/.well-known/oauth-authorization-server",
        web::get().to(oidc::discovery::metadata),
    )
    .route("/jwks", web::get().to(oidc::discovery::jwks))
    .route("/healthz", web::get().to(pages::home::healthz))
    .route("/readyz", web::get().to(pages::home::readyz))
    .route("/metrics", web::get().to(pages::home::metrics))
    .route(
        "/static/css/portcullis.css",
        web::get().to(pages::home::css),
    )
    .route(
        "/static/js/webauthn.js",
        web::get().to(crate::web::webauthn::script),
    );
}

/// Routes limited per client address.
pub fn limited_routes(cfg: &mut web::ServiceConfig) {
    use crate::web::{oauth, oidc, pages};
    cfg.route("/authorize", web::get().to(oauth::authorize::get))
        .route("/authorize", web::post().to(oauth::authorize::post))
        .route("/authorize/resume", web::get().to(oauth::authorize::resume))
        .route("/token", web::post().to(oauth::token::token))
        .route("/par", web::post().to(oauth::par::push))
        .route("/revoke", web::post().to(oauth::token_management::revoke))
        .route(
            "/introspect",
            web::post().to(oauth::token_management::introspect),
        )
        .route("/userinfo", web::get().to(oidc::userinfo::get))
        .route("/userinfo", web::post().to(oidc::userinfo::post))
        .route("/logout", web::get().to(oidc::logout::get))
        .route("/logout", web::post().to(oidc::logout::post))
        .route("/login", web::get().to(pages::login::show))
        .route("/login", web::post().to(pages::login::submit))
        .route(
            "/login/second-factor",
            web::get().to(pages::second_factor::show),
        )
        .route(
            "/login/second-factor",
            web::post().to(pages::second_factor::submit),
        )
        .route(
            "/login/passkey",
            web::post().to(pages::second_factor::passkey),
        )
        .route(
            "/login/passkey/options",
            web::post().to(pages::second_factor::passwordless_options),
        )
        .route(
            "/login/second-factor/options",
            web::post().to(pages::second_factor::second_factor_options),
        )
        .route("/consent", web::get().to(pages::consent::show))
        .route("/consent", web::post().to(pages::consent::submit))
        .route("/", web::get().to(pages::home::show))
        .route("/account", web::get().to(crate::web::account::show))
        .route(
            "/account/password",
            web::post().to(crate::web::account::password),
        )
        .route(
            "/account/sessions/revoke",
            web::post().to(crate::web::account::revoke_session),
        )
        .route(
            "/account/sessions/revoke-others",
            web::post().to(crate::web::account::revoke_others),
        )
        .route(
            "/account/apps/revoke",
            web::post().to(crate::web::account::revoke_app),
        )
        .route(
            "/account/reauthenticate",
            web::post().to(crate::web::account::reauth::reauthenticate_form),
        )
        .route(
            "/account/totp",
            web::get().to(crate::web::account::mfa::totp_show),
        )
        .route(
            "/account/totp",
            web::post().to(crate::web::account::mfa::totp_confirm),
        )
        .route(
            "/account/totp/remove",
            web::post().to(crate::web::account::mfa::totp_remove),
        )
        .route(
            "/account/passkeys",
            web::get().to(crate::web::account::passkeys::show),
        )
        .route(
            "/account/passkeys",
            web::post().to(crate::web::account::passkeys::register),
        )
        .route(
            "/account/passkeys/options",
            web::post().to(crate::web::account::passkeys::options),
        )
        .route(
            "/account/passkeys/remove",
            web::post().to(crate::web::account::passkeys::remove),
        )
        .route(
            "/account/recovery-codes",
            web::post().to(crate::web::account::mfa::recovery_codes),
        )
        .route(
            "/account/recovery-codes/remove",
            web::post().to(crate::web::account::mfa::recovery_codes_remove),
        );
}
