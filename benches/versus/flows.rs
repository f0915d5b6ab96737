//! Full sign-in flows against Portcullis: what a user's first visit costs end to end, with
//! Argon2id (m=19456 KiB, t=2, p=1) doing most of the work. One flow is a fresh browser
//! (its own cookie jar) that follows `/authorize` to the sign-in page, signs in with a
//! password, follows the redirect back to the client with a code, and exchanges the code
//! for tokens; the answer must carry an ID token.

use std::sync::Arc;

use crate::load::{CLIENT_ID, CLIENT_SECRET};

/// The password of every flow user (`flow0` …), long enough for the policy and not a
/// common one.
pub const PASSWORD: &str = "violet staircase under 42 lanterns";
/// The client's registered redirect URI (`seed::prepare`).
pub const REDIRECT: &str = "https://rp.example/cb";

/// A browser's cookie jar and the account it signs in with.
pub struct Flow {
    pub base: String,
    pub user: String,
}

fn value_of(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&#34;", "\"")
            .replace("&amp;", "&"),
    )
}

/// Follows redirects inside the server from `url` until a page (its path and body) or a
/// redirect to the client (its URL).
async fn follow(
    http: &reqwest::Client,
    base: &str,
    mut url: String,
) -> Result<(String, String), String> {
    for _ in 0..10 {
        let r = http.get(&url).send().await.expect("a page");
        if r.status().is_redirection() {
            let location = r.headers()[reqwest::header::LOCATION]
                .to_str()
                .expect("a location")
                .to_string();
            if location.starts_with(REDIRECT) {
                return Err(location);
            }
            url = if location.starts_with('/') {
                format!("{base}{location}")
            } else {
                location
            };
            continue;
        }
        assert!(r.status().is_success(), "{url}: {}", r.status());
        let path = r.url().path().to_string();
        return Ok((path, r.text().await.expect("a body")));
    }
    panic!("too many redirects from {url}");
}

/// One whole flow; returns the state for the next.
pub async fn sign_in(_: reqwest::Client, flow: Arc<Flow>) -> Arc<Flow> {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("a browser");
    let base = &flow.base;
    let authorize = format!(
        "{base}/authorize?response_type=code&client_id={CLIENT_ID}&redirect_uri={}&scope=openid&state=s&nonce=n",
        url_encode(REDIRECT)
    );
    let Ok((path, page)) = follow(&http, base, authorize).await else {
        panic!("a fresh browser is asked to sign in");
    };
    assert_eq!(path, "/login");
    let mut form = vec![
        ("username", flow.user.clone()),
        ("password", PASSWORD.to_string()),
        (
            "csrf_token",
            value_of(&page, "csrf_token").expect("a CSRF token"),
        ),
    ];
    if let Some(request) = value_of(&page, "request") {
        form.push(("request", request));
    }
    let r = http
        .post(format!("{base}/login"))
        .form(&form)
        .send()
        .await
        .expect("the sign-in");
    assert!(r.status().is_redirection(), "sign-in: {}", r.status());
    let next = r.headers()[reqwest::header::LOCATION]
        .to_str()
        .expect("a location")
        .to_string();
    let back = if next.starts_with(REDIRECT) {
        next
    } else {
        let url = if next.starts_with('/') {
            format!("{base}{next}")
        } else {
            next
        };
        match follow(&http, base, url).await {
            Err(location) => location,
            Ok((path, _)) => panic!("expected the way back to the client, got {path}"),
        }
    };
    let code = url::Url::parse(&back)
        .expect("a URL")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("a code");
    let tokens: serde_json::Value = http
        .post(format!("{base}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ])
        .send()
        .await
        .expect("the code exchange")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        tokens["id_token"]
            .as_str()
            .unwrap_or_default()
            .split('.')
            .count(),
        3,
        "an ID token: {tokens}"
    );
    flow
}

fn url_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
