//! The landing page, health check, stylesheet and the not-found page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::app::{run, web_data::Data};
use crate::web::context::Visitor;
use crate::web::errors::{WebError, error_page};

#[derive(Template)]
#[template(path = "pages/home.html")]
struct HomePage<'a> {
    username: Option<&'a str>,
}

pub async fn show(state: Data, visitor: Visitor) -> Result<HttpResponse, WebError> {
    let username = match visitor.signed_in().cloned() {
        Some(s) => {
            run(&state, move |c, _ctx, _now| {
                Ok(crate::account::mfa::user_of(c, &s)?.map(|u| u.username))
            })
            .await?
        }
        None => None,
    };
    let body = HomePage {
        username: username.as_deref(),
    }
    .render()
    .map_err(crate::web::errors::template_failed)?;
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// Ready when a pooled connection runs a trivial transaction and no migration is pending.
pub async fn readyz(state: Data) -> HttpResponse {
    let st = state.clone();
    let ready = actix_web::web::block(move || {
        let mut c = st.pool.get().ok()?;
        Some(
            crate::db::trivial_transaction(&mut c).is_ok()
                && !crate::db::pending_migrations(&mut c).unwrap_or(true),
        )
    })
    .await
    .ok()
    .flatten()
    .unwrap_or(false);
    let (status, body) = if ready {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "database unreachable or migrations pending",
        )
    };
    HttpResponse::build(status)
        .content_type("text/plain")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

/// Prometheus metrics: to local scrapers only, unless a separate metrics address is configured
/// (then it is served there instead).
pub async fn metrics(state: Data, req: HttpRequest) -> HttpResponse {
    if state.config.metrics_bind.is_some() || !local_scraper(&req, &state.config.trusted_proxies) {
        return error_page(StatusCode::NOT_FOUND, "There is nothing here.", None);
    }
    metrics_text(&state)
}

/// A request made on this host without a proxy in between: a loopback peer, a loopback
/// client address as the trusted proxies report it, and no forwarding header at all. A
/// reverse proxy on the same host connects from loopback too; its forwarding headers are
/// what give it away, whether or not it is listed in `trusted_proxies`.
fn local_scraper(req: &HttpRequest, trusted: &[std::net::IpAddr]) -> bool {
    const FORWARDING: [&str; 4] = [
        "forwarded",
        "x-forwarded-for",
        "x-real-ip",
        "x-forwarded-host",
    ];
    let peer_loopback = req.peer_addr().is_some_and(|a| a.ip().is_loopback());
    let client_loopback =
        crate::web::extractors::client_ip(req, trusted).is_some_and(|ip| ip.is_loopback());
    let forwarded = FORWARDING.iter().any(|h| req.headers().contains_key(*h));
    peer_loopback && client_loopback && !forwarded
}

/// The exposition, with the pool gauges refreshed.
pub fn metrics_text(state: &Data) -> HttpResponse {
    let s = state.pool.state();
    state.metrics.db_connections.set(i64::from(s.connections));
    state
        .metrics
        .db_idle_connections
        .set(i64::from(s.idle_connections));
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(state.metrics.render())
}

pub async fn css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(include_str!("../../../static/css/portcullis.css"))
}

pub async fn not_found(_req: HttpRequest) -> HttpResponse {
    error_page(StatusCode::NOT_FOUND, "There is nothing here.", None)
}
