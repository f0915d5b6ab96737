//! Second factors as a user's devices would answer them: an authenticator app computing TOTP
//! codes, and page scraping for what the pages show.

use chrono::NaiveDateTime;
use reqwest::StatusCode;
use serde_json::Value;

use super::browser::{Browser, Landing};
use super::{PASSWORD, TestApp};

/// What an authenticator app shows at `at` for a base32 secret (RFC 6238, SHA-1, 6 digits).
pub fn totp_code(secret_b32: &str, at: NaiveDateTime) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret_b32).expect("base32 secret");
    let t = totp_rs::Builder::new()
        .with_secret(secret)
        .with_digits(6)
        .with_step_duration(30)
        .with_skew(0)
        .with_account_name("test")
        .build()
        .expect("totp");
    let time = u64::try_from(at.and_utc().timestamp()).expect("time");
    t.generate(time).to_string()
}

/// Undoes the HTML escaping of an attribute value.
pub fn unescape(s: &str) -> String {
    s.replace("&#34;", "\"")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of the first `name="…"` attribute in a page.
pub fn attr(html: &str, name: &str) -> Option<String> {
    let marker = format!("{name}=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(unescape(&html[start..end]))
}

/// The text inside the element with this id.
pub fn text_of(html: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\"");
    let at = html.find(&marker)?;
    let start = html[at..].find('>')? + at + 1;
    let end = html[start..].find('<')? + start;
    Some(unescape(html[start..end].trim()))
}

pub fn page(l: Landing) -> (StatusCode, String, String) {
    match l {
        Landing::Page(s, p, b) => (s, p, b),
        other => panic!("expected one of our pages, got {other:?}"),
    }
}

/// Signs in with the password from the sign-in page (or `path`, e.g. an authorization URL).
pub async fn password_step(b: &Browser, app: &TestApp, username: &str) -> Landing {
    let (_, path, body) = page(b.follow(app, app.url("/login")).await);
    assert_eq!(path, "/login");
    b.submit_login(app, &body, username, PASSWORD).await
}

/// Posts a form built from a page's CSRF token (and request) plus `fields`.
pub async fn post_with_csrf(
    b: &Browser,
    app: &TestApp,
    from_page: &str,
    path: &str,
    fields: &[(&str, &str)],
) -> Landing {
    let mut form: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    form.push((
        "csrf_token".into(),
        super::hidden(from_page, "csrf_token").expect("csrf token"),
    ));
    if let Some(r) = super::hidden(from_page, "request") {
        form.push(("request".into(), r));
    }
    b.post_form(app, path, &form).await
}

/// Enrols TOTP for the signed-in browser; returns the base32 secret.
pub async fn enrol_totp(b: &Browser, app: &TestApp) -> String {
    let (status, _, body) = page(b.follow(app, app.url("/account/totp")).await);
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = text_of(&body, "totp-secret").expect("#totp-secret");
    let code = totp_code(&secret, app.clock.naive());
    let (status, path, done) =
        page(post_with_csrf(b, app, &body, "/account/totp", &[("code", &code)]).await);
    assert_eq!(
        (status, path.as_str()),
        (StatusCode::OK, "/account"),
        "{done}"
    );
    assert!(done.contains("Authenticator app: on"), "{done}");
    secret
}

/// Creates recovery codes for the signed-in browser; returns them.
pub async fn recovery_codes(b: &Browser, app: &TestApp) -> Vec<String> {
    let (_, _, account) = page(b.follow(app, app.url("/account")).await);
    let (status, _, body) = page(
        post_with_csrf(
            b,
            app,
            &account,
            "/account/recovery-codes",
            &[("current_password", PASSWORD)],
        )
        .await,
    );
    assert_eq!(status, StatusCode::OK, "{body}");
    body.split("<code>")
        .skip(1)
        .filter_map(|s| s.split("</code>").next())
        .map(str::to_string)
        .collect()
}

/// Exchanges a code at the token endpoint for the confidential client `app`.
pub async fn exchange(app: &TestApp, secret: &str, code: &str) -> Value {
    let r = reqwest::Client::new()
        .post(app.url("/token"))
        .basic_auth("app", Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", super::REDIRECT),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}
