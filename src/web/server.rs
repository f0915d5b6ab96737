//! The HTTP server: middleware (request ids, logs, metrics, security headers, CORS, the
//! per-address limit) around the routes of `routes.rs`.

use actix_web::dev::Service;
use actix_web::{App, HttpServer, web};
use std::net::TcpListener;

use crate::app::web_data;
use crate::web::routes::{limited_routes, open_routes};

/// Builds the HTTP server on an already bound listener.
pub fn build_server(
    listener: TcpListener,
    state: web_data::Data,
) -> std::io::Result<actix_web::dev::Server> {
    build(listener, state, None)
}

/// Builds the HTTPS server on an already bound listener.
pub fn build_server_tls(
    listener: TcpListener,
    state: web_data::Data,
    tls: rustls::ServerConfig,
) -> std::io::Result<actix_web::dev::Server> {
    build(listener, state, Some(tls))
}

fn build(
    listener: TcpListener,
    state: web_data::Data,
    tls: Option<rustls::ServerConfig>,
) -> std::io::Result<actix_web::dev::Server> {
    let hsts = !state.config.dev_mode;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 8);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .app_data(actix_web::web::FormConfig::default().limit(64 * 1024))
            .app_data(actix_web::web::PayloadConfig::new(64 * 1024))
            .wrap_fn(|req, srv| {
                let pending = crate::web::cors::pending(req.request());
                let fut = srv.call(req);
                async move { Ok(crate::web::cors::finish(pending, fut.await?).await) }
            })
            .wrap_fn(move |req, srv| {
                use actix_web::HttpMessage;
                use tracing::Instrument;
                let started = std::time::Instant::now();
                let route = req
                    .match_pattern()
                    .unwrap_or_else(|| "unmatched".to_string());
                let method = req.method().to_string();
                let st = req.app_data::<web_data::Data>().cloned();
                let request_id = crate::keys::secrets::random_id()[..16].to_string();
                req.extensions_mut()
                    .insert(crate::web::extractors::RequestId(request_id.clone()));
                // Only the route pattern is logged, never the path or query (codes, tokens).
                let span = tracing::info_span!(
                    "request",
                    request_id = %request_id,
                    method = %method,
                    route = %route
                );
                let fut = srv.call(req);
                async move {
                    let mut res = fut.await?;
                    crate::web::security_headers::apply(&mut res, hsts);
                    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&request_id) {
                        res.headers_mut().insert(
                            actix_web::http::header::HeaderName::from_static("x-request-id"),
                            v,
                        );
                    }
                    tracing::info!(
                        status = res.status().as_u16(),
                        ms = started.elapsed().as_millis() as u64,
                        "handled"
                    );
                    if let Some(st) = st {
                        st.metrics
                            .requests
                            .get_or_create(&crate::metrics::RequestLabels {
                                route: route.clone(),
                                method,
                                status: res.status().as_u16(),
                            })
                            .inc();
                        st.metrics
                            .latency
                            .get_or_create(&crate::metrics::RouteLabels { route })
                            .observe(started.elapsed().as_secs_f64());
                    }
                    Ok(res)
                }
                .instrument(span)
            })
            .configure(open_routes)
            .service(
                web::scope("")
                    .wrap_fn(|req, srv| {
                        use futures_util::future::{Either, ready};
                        let st = req.app_data::<web_data::Data>().cloned();
                        let over = st.and_then(|st| {
                            crate::web::rate_limit::address_over_limit(
                                &st.address_limiter,
                                &st.config.rate_limit,
                                req.request(),
                                &st.config.trusted_proxies,
                                st.share.instances(),
                            )
                        });
                        match over {
                            Some(wait) => Either::Left(ready(Ok(req
                                .into_response(crate::web::rate_limit::address_too_many(wait))
                                .map_into_boxed_body()))),
                            None => {
                                let fut = srv.call(req);
                                Either::Right(
                                    async move { fut.await.map(|r| r.map_into_boxed_body()) },
                                )
                            }
                        }
                    })
                    .configure(limited_routes),
            )
            .default_service(actix_web::web::to(crate::web::pages::home::not_found))
    })
    .workers(workers)
    .client_request_timeout(std::time::Duration::from_secs(10))
    .client_disconnect_timeout(std::time::Duration::from_secs(2))
    .keep_alive(std::time::Duration::from_secs(30))
    .shutdown_timeout(10);
    let server = match tls {
        Some(cfg) => server.listen_rustls_0_23(listener, cfg)?,
        None => server.listen(listener)?,
    };
    Ok(server.run())
}
