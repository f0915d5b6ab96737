//! What pages with a passkey button share: the form's data, the policy that lets the one
//! script run, and the script itself.

use actix_web::HttpResponse;
use actix_web::http::header;

use crate::error::InternalError;
use crate::sign_in::passkeys::Started;
use crate::web::security_headers::page_csp;

/// A form that webauthn.js completes: on the button's click it asks `begin` for a ceremony
/// (posting the form's fields), runs it, puts the answer in `credential` and submits. No
/// ceremony exists before the button is used, so showing the page writes nothing.
#[derive(Debug, Clone)]
pub struct PasskeyForm {
    pub action: &'static str,
    /// "register" or "authenticate".
    pub mode: &'static str,
    /// Where the script asks for the ceremony's options.
    pub begin: &'static str,
    pub button_id: &'static str,
    pub button_class: &'static str,
    pub label: &'static str,
}

impl PasskeyForm {
    /// The passwordless button of the sign-in page.
    pub fn passwordless() -> PasskeyForm {
        PasskeyForm {
            action: "/login/passkey",
            mode: "authenticate",
            begin: "/login/passkey/options",
            button_id: "passkey-login",
            button_class: "secondary",
            label: "Sign in with a passkey",
        }
    }

    /// The passkey button of the second step.
    pub fn second_factor() -> PasskeyForm {
        PasskeyForm {
            action: "/login/passkey",
            mode: "authenticate",
            begin: "/login/second-factor/options",
            button_id: "passkey-signin",
            button_class: "secondary",
            label: "Use a passkey",
        }
    }

    pub fn register() -> PasskeyForm {
        PasskeyForm {
            action: "/account/passkeys",
            mode: "register",
            begin: "/account/passkeys/options",
            button_id: "passkey-register",
            button_class: "",
            label: "Add a passkey",
        }
    }
}

/// The answer to the script's request for a ceremony: its id and the public-key options.
pub fn started(s: &Started) -> Result<HttpResponse, InternalError> {
    let options: serde_json::Value = serde_json::from_str(&s.options)?;
    let body = serde_json::json!({"ceremony": s.ceremony, "options": options});
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body.to_string()))
}

/// A page's policy; `script` allows our own webauthn.js and nothing else, and lets it ask our
/// own origin (and only ours) for its ceremonies.
pub fn csp(form_targets: &[String], script: bool) -> String {
    let policy = page_csp(form_targets, script.then_some("self"));
    if script {
        policy.replacen(
            "script-src 'self'; ",
            "script-src 'self'; connect-src 'self'; ",
            1,
        )
    } else {
        policy
    }
}

pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/js/webauthn.js"))
}
