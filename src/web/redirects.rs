//! The redirects pages answer with after a form: never cached, the session (and device) cookie
//! renewed when sign-in changed it.

use actix_web::HttpResponse;
use actix_web::http::header;

use crate::app::{run, web_data::Data};
use crate::oauth::authorize;
use crate::sign_in::finish::{Landing, Next};
use crate::web::errors::WebError;
use crate::web::{device_cookie, session_cookie};

/// 303 to a path of ours.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location.to_string()))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

/// 303 after a sign-in step, carrying the new session cookie (first) and, once the sign-in is
/// complete, the device cookie. A sign-in for a parked authorization request marks it first.
pub async fn signed_in(state: &Data, landing: &Landing) -> Result<HttpResponse, WebError> {
    if let Next::Authorize { .. } = &landing.next {
        let next = landing.next.clone();
        run(state, move |c, _ctx, _now| {
            authorize::after_sign_in(c, &next)
        })
        .await?;
    }
    let mut b = HttpResponse::SeeOther();
    b.cookie(session_cookie::set(&state.config, &landing.cookie));
    if let Some(d) = &landing.device {
        b.cookie(device_cookie::set(&state.config, d));
    }
    Ok(b.insert_header((header::LOCATION, next_url(&landing.next)))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// The page a sign-in step leads to.
pub fn next_url(next: &Next) -> String {
    match next {
        Next::SecondFactor { request } => with_request("/login/second-factor", request.as_deref()),
        Next::Authorize { request, .. } => with_request("/authorize/resume", Some(request)),
        Next::PasswordExpired => "/account?done=expired".to_string(),
        Next::Account => "/account".to_string(),
    }
}

/// `path?request=…` when there is an authorization request to carry along.
pub fn with_request(path: &str, request: Option<&str>) -> String {
    match request {
        Some(id) => format!(
            "{path}?{}",
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("request", id)
                .finish()
        ),
        None => path.to_string(),
    }
}
