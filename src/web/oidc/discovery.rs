//! Discovery and JWKS, served from memory (looking at most once a second whether another
//! instance changed the keys).

use actix_web::HttpResponse;
use actix_web::http::header;

use crate::app::{run_conn, web_data::Data};
use crate::web::errors::WebError;

/// Rereads the keys when another instance rotated them; asks the database at most once a
/// second, so a key published anywhere is served everywhere within `KEY_PROPAGATION`.
pub(crate) async fn fresh_keys(state: &Data) -> Result<(), WebError> {
    if state.keys_due_for_check() {
        let st = state.clone();
        run_conn(state, move |c, _ctx, _now| st.refresh_keys(c)).await?;
    }
    Ok(())
}

fn cached_json(content_type: &str, body: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type.to_string())
        .insert_header((
            header::CACHE_CONTROL,
            format!("public, max-age={}", crate::keys::signing::JWKS_MAX_AGE),
        ))
        .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"))
        .body(body.to_string())
}

pub async fn metadata(state: Data) -> Result<HttpResponse, WebError> {
    fresh_keys(&state).await?;
    Ok(cached_json(
        "application/json",
        state.published().discovery_json.as_str(),
    ))
}

pub async fn jwks(state: Data) -> Result<HttpResponse, WebError> {
    fresh_keys(&state).await?;
    Ok(cached_json(
        "application/jwk-set+json",
        state.published().keys.jwks_json.as_str(),
    ))
}
