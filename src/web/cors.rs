//! CORS: which answers a page on another origin may read. The token-side endpoints answer
//! for the origins their client registered (echoed, never `*`, never with credentials);
//! discovery and JWKS for any origin. Handlers record the domain's verdict on the request;
//! `finish` writes the headers on whatever answer went out, 429s and errors included.

use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};

use crate::app::{run, web_data::Data};
use crate::oauth::web_origin::{self, Verdict};
use crate::web::errors::WebError;

/// How long a browser may reuse a preflight (seconds; Chromium caps it at 7200).
pub const MAX_AGE: &str = "600";
/// Request headers a page may send: bearer tokens or Basic credentials, form or JSON bodies,
/// and DPoP proofs (reserved).
pub const ALLOW_HEADERS: &str = "Authorization, Content-Type, DPoP";
/// Response headers a page may read besides the safelisted ones (`DPoP-Nonce` reserved).
pub const EXPOSE_HEADERS: &str = "WWW-Authenticate, Retry-After, DPoP-Nonce";

/// The CORS policy of a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Public documents (discovery, JWKS): readable from any origin.
    Anyone,
    /// Token-side endpoints: the origins a client registered; the methods they take.
    Clients(&'static str),
}

/// Every path with a CORS policy, for the route table's preflight routes.
pub const PATHS: &[&str] = &[
    "/.well-known/openid-configuration",
    "/.well-known/oauth-authorization-server",
    "/jwks",
    "/token",
    "/revoke",
    "/introspect",
    "/par",
    "/userinfo",
];

pub fn policy(path: &str) -> Option<Policy> {
    match path {
        "/.well-known/openid-configuration"
        | "/.well-known/oauth-authorization-server"
        | "/jwks" => Some(Policy::Anyone),
        // Pushed requests are included: a public client in a page may push its request
        // (RFC 9126 allows public clients); the answer is a handle bound to that client.
        "/token" | "/revoke" | "/introspect" | "/par" => Some(Policy::Clients("POST")),
        "/userinfo" => Some(Policy::Clients("GET, POST")),
        _ => None,
    }
}

/// The `Origin` header, when present once, readable and of bounded length.
pub fn origin(req: &HttpRequest) -> Option<String> {
    let mut all = req.headers().get_all(header::ORIGIN);
    let first = all.next()?;
    if all.next().is_some() || first.len() > web_origin::MAX_LEN {
        return None;
    }
    first.to_str().ok().map(str::to_string)
}

/// Records what the domain decided about the request's origin, for `finish`.
pub fn record(req: &HttpRequest, verdict: Verdict) {
    req.extensions_mut().insert(verdict);
}

/// What `finish` needs to know about a request before it is handled.
pub struct Pending {
    policy: Policy,
    origin: Option<String>,
    state: Option<Data>,
}

pub fn pending(req: &HttpRequest) -> Option<Pending> {
    Some(Pending {
        policy: policy(req.path())?,
        origin: origin(req),
        state: req.app_data::<Data>().cloned(),
    })
}

/// Writes the CORS headers on an answer. A token-side answer varies on `Origin` always and
/// allows the origin when the client the request concerns registered it; an error naming no
/// client (malformed, unknown, or refused before a handler ran, like a 429 of the address
/// limit) is readable by any origin some client registered.
pub async fn finish<B>(
    pending: Option<Pending>,
    mut res: ServiceResponse<B>,
) -> ServiceResponse<B> {
    let Some(p) = pending else {
        return res;
    };
    match p.policy {
        Policy::Anyone => {
            res.headers_mut().insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
        }
        Policy::Clients(_) => {
            res.headers_mut()
                .append(header::VARY, HeaderValue::from_static("Origin"));
            let Some(presented) = p.origin else {
                return res;
            };
            let verdict = res.request().extensions().get::<Verdict>().cloned();
            let allowed = match verdict {
                Some(Verdict::Allowed(o)) => Some(o),
                Some(Verdict::Refused) => None,
                Some(Verdict::NoClient) | None if res.status().as_u16() >= 400 => match p.state {
                    Some(st) => run(&st, move |c, _ctx, _now| {
                        web_origin::registered_by_any_client(c, &presented)
                    })
                    .await
                    .ok()
                    .flatten(),
                    None => None,
                },
                Some(Verdict::NoClient) | None => None,
            };
            if let Some(o) = allowed
                && let Ok(v) = HeaderValue::from_str(&o)
            {
                let h = res.headers_mut();
                h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
                h.insert(
                    header::ACCESS_CONTROL_EXPOSE_HEADERS,
                    HeaderValue::from_static(EXPOSE_HEADERS),
                );
            }
        }
    }
    res
}

/// `OPTIONS` on a path with a CORS policy. A preflight carries no body naming its client, so
/// an origin any client registered is answered; the actual request is then checked against
/// its own client's origins.
pub async fn preflight(state: Data, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let mut answer = HttpResponse::NoContent();
    answer.insert_header((header::ACCESS_CONTROL_MAX_AGE, MAX_AGE));
    match policy(req.path()) {
        Some(Policy::Anyone) => {
            answer.insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, "GET"));
        }
        Some(Policy::Clients(methods)) => {
            let found = match origin(&req) {
                Some(o) => {
                    run(&state, move |c, _ctx, _now| {
                        web_origin::registered_by_any_client(c, &o)
                    })
                    .await?
                }
                None => None,
            };
            match found {
                Some(o) => {
                    record(&req, Verdict::Allowed(o));
                    answer
                        .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, methods))
                        .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOW_HEADERS));
                }
                None => {
                    record(&req, Verdict::Refused);
                    return Ok(HttpResponse::NoContent().finish());
                }
            }
        }
        None => {}
    }
    Ok(answer.finish())
}
