//! The sign-in use case: CSRF, throttling, the password check, and a fresh session.

use chrono::NaiveDateTime;

use serde_json::json;

use crate::audit::{self, Event, detect};
use crate::context::Ctx;
use crate::db::{self, DbConn};
use crate::error::InternalError;
use crate::keys::secrets::{Secret, ct_eq};
use crate::oauth::authorize;
use crate::oauth::redirect::origin;
use crate::sign_in::sessions::{self, Origin};
use crate::sign_in::{device, password, second_factor, throttle};
use crate::store::users;

/// What the sign-in page shows about the request it belongs to.
#[derive(Debug, Clone, Default)]
pub struct RequestView {
    pub client_name: Option<String>,
    pub login_hint: Option<String>,
    /// Where the form may lead after sign-in (the client's redirect origin).
    pub form_target: Option<String>,
}

pub fn view_of(
    c: &mut DbConn,
    ctx: Ctx<'_>,
    request: Option<&str>,
    now: NaiveDateTime,
) -> Result<RequestView, InternalError> {
    let Some(id) = request else {
        return Ok(RequestView::default());
    };
    Ok(match authorize::load(c, ctx, id, now)? {
        Some((_, v)) => RequestView {
            client_name: Some(v.client.name.clone()),
            login_hint: v.login_hint.clone(),
            form_target: origin(&v.redirect_uri),
        },
        None => RequestView::default(),
    })
}

/// `path?request=…` when there is a request to carry along.
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

/// The second-factor page, carrying the authorization request along.
pub fn second_factor_url(request: Option<&str>) -> String {
    with_request("/login/second-factor", request)
}

/// Where a browser goes once signed in: back to the authorization request, or to the account
/// page (which also asks for a new password when the current one has expired).
pub fn next_after_sign_in(
    c: &mut DbConn,
    ctx: Ctx<'_>,
    user_id: &str,
    request: Option<&str>,
    now: NaiveDateTime,
) -> Result<String, InternalError> {
    let expired =
        crate::sign_in::password::expired(c, ctx.config.password.max_age_days, user_id, now)?;
    Ok(match request {
        _ if expired => "/account?done=expired".to_string(),
        Some(_) => with_request("/authorize/resume", request),
        None => "/account".to_string(),
    })
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub cookie: Option<String>,
    pub csrf_token: Option<String>,
    /// The form's token matched the anonymous visitor's cookie (checked by `web/csrf.rs`).
    pub anonymous_ok: bool,
    pub username: String,
    /// Redacted in `Debug`, wiped when dropped.
    pub password: Secret,
    pub request: Option<String>,
    pub origin: Origin,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    BadCsrf,
    /// Too many failures: wait this many seconds. `csrf` is the session's form token, if the
    /// browser has a session (else the page keeps its anonymous token).
    Throttled {
        retry_after: i64,
        view: RequestView,
        csrf: Option<String>,
    },
    Failed {
        view: RequestView,
        csrf: Option<String>,
    },
    SignedIn(Landing),
}

/// A browser through a sign-in step: its new session cookie, where it goes next, and, once
/// the sign-in is complete, a new device cookie (`device.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Landing {
    pub cookie: String,
    pub next: String,
    pub device: Option<String>,
}

/// One sign-in attempt. Argon2 runs between two short transactions, never inside one.
pub fn attempt(
    c: &mut DbConn,
    ctx: Ctx<'_>,
    a: Attempt,
    now: NaiveDateTime,
) -> Result<Outcome, InternalError> {
    let lt = ctx.config.lifetimes.clone();
    let tcfg = &ctx.config.throttle;
    let (session, keys, blocked) = db::transaction(c, |c| {
        let session = match &a.cookie {
            Some(v) => sessions::current(c, v, now, &lt)?,
            None => None,
        };
        // The account a device cookie must name (looked up only when one was sent).
        let account = match &a.origin.device {
            Some(_) => users::find_by_username(c, a.username.trim())?.map(|u| u.id),
            None => None,
        };
        let keys = device::throttle_keys(ctx, &a.username, account.as_deref(), &a.origin, now);
        let blocked = throttle::blocked(c, tcfg, &keys, now)?;
        Ok::<_, InternalError>((session, keys, blocked))
    })?;
    let session_ok = match (&session, &a.csrf_token) {
        (Some(s), Some(p)) => ct_eq(&s.csrf_token, p),
        _ => false,
    };
    if !session_ok && !a.anonymous_ok {
        return Ok(Outcome::BadCsrf);
    }
    let csrf = session.as_ref().map(|s| s.csrf_token.clone());
    if let Some(retry_after) = blocked {
        ctx.metrics.sign_in("blocked");
        db::transaction(c, |c| {
            audit::record(
                c,
                ctx.meta,
                now,
                Event::new("sign_in", "blocked").details(json!({
                    "username": audit::mask(&a.username),
                    "retry_after": retry_after,
                })),
            )
        })?;
        let view = view_of(c, ctx, a.request.as_deref(), now)?;
        return Ok(Outcome::Throttled {
            retry_after,
            view,
            csrf,
        });
    }
    let too_long = a.username.len() > 256 || a.password.expose().len() > 4096;
    let checked = if too_long {
        Err(password::BadCredentials)
    } else {
        password::authenticate(c, ctx.dummy_hash, &a.username, a.password.expose(), now)?
    };
    db::transaction(c, |c| match checked {
        Ok(user) if second_factor::factors(c, &user.id)?.any() => {
            throttle::succeeded(c, &keys)?;
            let opened =
                sessions::begin_second_factor(c, session.as_ref(), &user.id, &a.origin, now, &lt)?;
            audit::record(
                c,
                ctx.meta,
                now,
                Event::new("sign_in.password", "success")
                    .user(&user.id)
                    .details(json!({"next": "second_factor"})),
            )?;
            Ok(Outcome::SignedIn(Landing {
                cookie: opened.cookie,
                next: second_factor_url(a.request.as_deref()),
                device: None,
            }))
        }
        Ok(user) => {
            throttle::succeeded(c, &keys)?;
            let proof = sessions::Proof {
                amr: &["pwd"],
                password_at: Some(now),
            };
            let opened =
                sessions::sign_in(c, session.as_ref(), &user.id, proof, &a.origin, now, &lt)?;
            ctx.metrics.sign_in("success");
            audit::record(
                c,
                ctx.meta,
                now,
                Event::new("sign_in", "success")
                    .user(&user.id)
                    .details(json!({"amr": ["pwd"], "sid": opened.session.sid})),
            )?;
            detect::after_sign_in(c, ctx, now, &user.id)?;
            if let Some(id) = &a.request {
                authorize::signed_in_for(c, id, &opened.session.sid)?;
            }
            let next = next_after_sign_in(c, ctx, &user.id, a.request.as_deref(), now)?;
            Ok(Outcome::SignedIn(Landing {
                cookie: opened.cookie,
                next,
                device: Some(device::issue(ctx.master, &user.id, now, lt.device)),
            }))
        }
        Err(password::BadCredentials) => {
            let wait = throttle::failed(c, tcfg, &keys, now)?;
            ctx.metrics.sign_in("failure");
            audit::record(
                c,
                ctx.meta,
                now,
                Event::new("sign_in", "failure").details(json!({
                    "reason": "bad_credentials",
                    "username": audit::mask(&a.username),
                    "account": detect::account_ref(ctx.master, &a.username),
                    "delay": wait.unwrap_or(0),
                })),
            )?;
            detect::after_failed_sign_in(
                c,
                ctx,
                now,
                &detect::account_ref(ctx.master, &a.username),
            )?;
            tracing::info!(
                ip = a.origin.ip.as_deref().unwrap_or("unknown"),
                "failed sign-in"
            );
            let view = view_of(c, ctx, a.request.as_deref(), now)?;
            Ok(match wait {
                Some(retry_after) => Outcome::Throttled {
                    retry_after,
                    view,
                    csrf,
                },
                None => Outcome::Failed { view, csrf },
            })
        }
    })
}
