//! Discovery and JWKS, served from memory.

use actix_web::HttpResponse;
use actix_web::http::header;

use crate::app::web_data::Data;

pub async fn metadata(state: Data) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(state.published().discovery_json.as_str().to_string())
}

pub async fn jwks(state: Data) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/jwk-set+json")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(state.published().keys.jwks_json.as_str().to_string())
}
