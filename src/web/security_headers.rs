//! Headers every response carries: a strict CSP (unless the handler set its own), framing,
//! referrer and sniffing protection, and HSTS when the issuer is https.

use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderName, HeaderValue};

/// The default policy: nothing from anywhere but our own stylesheet.
pub const DEFAULT_CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// A page's policy allowing its form to lead to `extra_form_targets` (the client's redirect origin).
pub fn page_csp(extra_form_targets: &[String], script_hash: Option<&str>) -> String {
    let mut targets = String::from("'self'");
    for t in extra_form_targets {
        targets.push(' ');
        targets.push_str(t);
    }
    let script = match script_hash {
        Some(h) => format!("script-src '{h}'; "),
        None => String::new(),
    };
    format!(
        "default-src 'none'; {script}style-src 'self'; img-src 'self'; form-action {targets}; frame-ancestors 'none'; base-uri 'none'"
    )
}

pub fn apply<B>(res: &mut ServiceResponse<B>, hsts: bool) {
    let h = res.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        );
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        HeaderName::from_static("permissions-policy"),
        HeaderValue::from_static(
            "camera=(), microphone=(), geolocation=(), payment=(), usb=(), interest-cohort=()",
        ),
    );
    h.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
    if hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
}
