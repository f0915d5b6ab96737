//! A cookie-keeping HTTP client that walks the pages like a user would, one redirect at a time.

use reqwest::StatusCode;
use reqwest::header::LOCATION;

use super::{TestApp, hidden, query_of};

pub struct Browser {
    pub http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Browser::new()
    }
}

/// Where a walk ended.
#[derive(Debug)]
pub enum Landing {
    /// Redirected to the client with these query parameters.
    Client(String, Vec<(String, String)>),
    /// A page of ours (status, path, body).
    Page(StatusCode, String, String),
}

impl Browser {
    pub fn new() -> Browser {
        super::init();
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    /// A browser whose every request carries these headers (a user agent, or `X-Forwarded-For`
    /// to appear behind the trusted proxy as another address).
    pub fn with_headers(headers: &[(&str, &str)]) -> Browser {
        super::init();
        let mut h = reqwest::header::HeaderMap::new();
        for (name, value) in headers {
            h.insert(
                reqwest::header::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
                reqwest::header::HeaderValue::from_str(value).expect("header value"),
            );
        }
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .default_headers(h)
                .build()
                .expect("client"),
        }
    }

    /// A browser that appears to come from `ip` (through the trusted proxy, `behind_proxy`).
    pub fn from_address(ip: &str) -> Browser {
        Browser::with_headers(&[("x-forwarded-for", ip)])
    }

    /// Opens the sign-in page and posts its form with these credentials; the raw answer.
    pub async fn try_sign_in(
        &self,
        app: &TestApp,
        user: &str,
        password: &str,
    ) -> reqwest::Response {
        let page = self
            .http
            .get(app.url("/login"))
            .send()
            .await
            .expect("sign-in page")
            .text()
            .await
            .expect("body");
        self.http
            .post(app.url("/login"))
            .form(&[
                ("username", user),
                ("password", password),
                (
                    "csrf_token",
                    &hidden(&page, "csrf_token").expect("csrf token"),
                ),
            ])
            .send()
            .await
            .expect("sign-in post")
    }

    /// Follows redirects within our server; stops at the client's redirect URI or at a page.
    pub async fn follow(&self, app: &TestApp, mut url: String) -> Landing {
        for _ in 0..10 {
            let r = self.http.get(&url).send().await.expect("get");
            if r.status().is_redirection() {
                let loc = r.headers()[LOCATION]
                    .to_str()
                    .expect("location")
                    .to_string();
                let abs = if loc.starts_with('/') {
                    app.url(&loc)
                } else {
                    loc
                };
                if !abs.starts_with(&app.base) && !abs.starts_with(&app.issuer) {
                    let q = query_of(&abs);
                    return Landing::Client(abs, q);
                }
                url = abs.replace(&app.issuer, &app.base);
                continue;
            }
            let status = r.status();
            let path = r.url().path().to_string();
            let body = r.text().await.expect("body");
            return Landing::Page(status, path, body);
        }
        panic!("too many redirects");
    }

    /// Submits the sign-in form on `page`; returns where the browser lands.
    pub async fn submit_login(
        &self,
        app: &TestApp,
        page: &str,
        username: &str,
        password: &str,
    ) -> Landing {
        let mut form = vec![
            ("username".to_string(), username.to_string()),
            ("password".to_string(), password.to_string()),
            (
                "csrf_token".to_string(),
                hidden(page, "csrf_token").expect("csrf token"),
            ),
        ];
        if let Some(r) = hidden(page, "request") {
            form.push(("request".into(), r));
        }
        self.post_form(app, "/login", &form).await
    }

    /// Presses allow or deny on the consent page.
    pub async fn submit_consent(&self, app: &TestApp, page: &str, decision: &str) -> Landing {
        let form = vec![
            ("decision".to_string(), decision.to_string()),
            (
                "csrf_token".to_string(),
                hidden(page, "csrf_token").expect("csrf token"),
            ),
            (
                "request".to_string(),
                hidden(page, "request").expect("request"),
            ),
        ];
        self.post_form(app, "/consent", &form).await
    }

    pub async fn post_form(&self, app: &TestApp, path: &str, form: &[(String, String)]) -> Landing {
        let r = self
            .http
            .post(app.url(path))
            .form(form)
            .send()
            .await
            .expect("post");
        if r.status().is_redirection() {
            let loc = r.headers()[LOCATION]
                .to_str()
                .expect("location")
                .to_string();
            let abs = if loc.starts_with('/') {
                app.url(&loc)
            } else {
                loc
            };
            return self.follow_from(app, abs).await;
        }
        let status = r.status();
        let path = r.url().path().to_string();
        Landing::Page(status, path, r.text().await.expect("body"))
    }

    async fn follow_from(&self, app: &TestApp, abs: String) -> Landing {
        if !abs.starts_with(&app.base) && !abs.starts_with(&app.issuer) {
            let q = query_of(&abs);
            return Landing::Client(abs, q);
        }
        self.follow(app, abs.replace(&app.issuer, &app.base)).await
    }

    /// Signs in and approves everything until the client gets its answer.
    pub async fn authorize(
        &self,
        app: &TestApp,
        url: &str,
        username: &str,
    ) -> Vec<(String, String)> {
        let mut landing = self.follow(app, url.replace(&app.issuer, &app.base)).await;
        for _ in 0..4 {
            landing = match landing {
                Landing::Client(_, q) => return q,
                Landing::Page(_, path, body) if path == "/login" => {
                    self.submit_login(app, &body, username, super::PASSWORD)
                        .await
                }
                Landing::Page(_, path, body) if path == "/consent" => {
                    self.submit_consent(app, &body, "allow").await
                }
                other => panic!("unexpected landing: {other:?}"),
            };
        }
        panic!("did not reach the client");
    }
}
