//! The landing page, health check, stylesheet and the not-found page.

use actix_web::http::{StatusCode, header};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;

use crate::app::{run, web_data::Data};
use crate::sign_in::sessions;
use crate::store::users;
use crate::web::errors::{WebError, error_page};
use crate::web::session_cookie;

#[derive(Template)]
#[template(path = "pages/home.html")]
struct HomePage<'a> {
    username: Option<&'a str>,
}

pub async fn show(state: Data, req: HttpRequest) -> Result<HttpResponse, WebError> {
    let cookie = session_cookie::read(&req, &state.config);
    let username = run(&state, move |c, ctx, now| {
        let Some(v) = cookie else { return Ok(None) };
        let Some(s) = sessions::current(c, &v, now, &ctx.config.lifetimes)? else {
            return Ok(None);
        };
        match s.user_id {
            Some(uid) => Ok(users::find(c, &uid)?.map(|u| u.username)),
            None => Ok(None),
        }
    })
    .await?;
    let body = HomePage {
        username: username.as_deref(),
    }
    .render()
    .unwrap_or_default();
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body))
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
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
