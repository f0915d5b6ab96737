//! What pages with a passkey button share: the form's data, the policy that lets the one
//! script run, and the script itself.

use actix_web::HttpResponse;
use actix_web::http::header;

use crate::sign_in::passkeys::Started;
use crate::web::security_headers::page_csp;

/// A form that webauthn.js completes: it runs the ceremony on the button's click, puts the
/// answer in `credential` and submits.
#[derive(Debug, Clone)]
pub struct PasskeyForm {
    pub action: &'static str,
    /// "register" or "authenticate".
    pub mode: &'static str,
    pub ceremony: String,
    /// The public-key options as JSON (escaped into an attribute by the template).
    pub options: String,
    pub button_id: &'static str,
    pub button_class: &'static str,
    pub label: &'static str,
}

impl PasskeyForm {
    pub fn sign_in(s: Started, button_id: &'static str, label: &'static str) -> PasskeyForm {
        PasskeyForm {
            action: "/login/passkey",
            mode: "authenticate",
            ceremony: s.ceremony,
            options: s.options,
            button_id,
            button_class: "secondary",
            label,
        }
    }

    pub fn register(s: Started) -> PasskeyForm {
        PasskeyForm {
            action: "/account/passkeys",
            mode: "register",
            ceremony: s.ceremony,
            options: s.options,
            button_id: "passkey-register",
            button_class: "",
            label: "Add a passkey",
        }
    }
}

/// A page's policy; `script` allows our own webauthn.js and nothing else.
pub fn csp(form_targets: &[String], script: bool) -> String {
    page_csp(form_targets, script.then_some("self"))
}

pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../static/js/webauthn.js"))
}
