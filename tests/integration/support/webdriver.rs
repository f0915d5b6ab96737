//! A minimal W3C WebDriver client over HTTP, driving Debian's chromedriver and headless Chromium.

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub struct Driver {
    http: reqwest::Client,
    base: String,
    session: String,
    child: Child,
    _profile: tempfile::TempDir,
}

/// Why no browser test could run.
/// True when Chromium cannot run here: the test then returns (CI, which sets
/// `PORTCULLIS_REQUIRE_BROWSER`, fails instead; elsewhere it says SKIPPED).
pub fn browser_missing() -> bool {
    let Some(why) = unavailable() else {
        return false;
    };
    crate::support::unavailable(
        "PORTCULLIS_REQUIRE_BROWSER",
        &format!("browser test: {why} (install chromium and chromium-driver to run it)"),
    );
    true
}

pub fn unavailable() -> Option<String> {
    for bin in ["chromedriver", "chromium"] {
        let found = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).any(|d| d.join(bin).is_file()))
            .unwrap_or(false);
        if !found {
            return Some(format!("{bin} is not installed"));
        }
    }
    None
}

impl Driver {
    pub async fn start() -> Driver {
        super::init();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = reqwest::Client::new();
        let base = format!("http://127.0.0.1:{port}");
        // Wait for readiness: bounded, about five seconds at most.
        let mut ready = false;
        for _ in 0..100 {
            if let Ok(r) = http.get(format!("{base}/status")).send().await
                && r.json::<Value>()
                    .await
                    .map(|v| v["value"]["ready"] == true)
                    .unwrap_or(false)
            {
                ready = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert!(ready, "chromedriver did not become ready");
        let profile = tempfile::tempdir().unwrap();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        }}});
        let v: Value = http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let session = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        let d = Driver {
            http,
            base,
            session,
            child,
            _profile: profile,
        };
        d.cmd("timeouts", json!({"implicit": 10000, "pageLoad": 30000}))
            .await;
        d
    }

    async fn cmd(&self, path: &str, body: Value) -> Value {
        let v: Value = self
            .http
            .post(format!("{}/session/{}/{path}", self.base, self.session))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["value"].clone()
    }

    async fn get(&self, path: &str) -> Value {
        let v: Value = self
            .http
            .get(format!("{}/session/{}/{path}", self.base, self.session))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("url", json!({"url": url})).await;
    }

    pub async fn url(&self) -> String {
        self.get("url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub async fn source(&self) -> String {
        self.get("source")
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Finds an element (waiting up to the implicit timeout); `None` when absent.
    pub async fn find(&self, css: &str) -> Option<String> {
        let v = self
            .cmd("element", json!({"using": "css selector", "value": css}))
            .await;
        if v.get(ELEMENT).is_none() {
            eprintln!("find {css}: {v}");
        }
        v[ELEMENT].as_str().map(str::to_string)
    }

    pub async fn must(&self, css: &str) -> String {
        match self.find(css).await {
            Some(e) => e,
            None => panic!(
                "no element {css} on {}:\n{}",
                self.url().await,
                self.source().await
            ),
        }
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.must(css).await;
        self.cmd(&format!("element/{e}/clear"), json!({})).await;
        self.cmd(&format!("element/{e}/value"), json!({"text": text}))
            .await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.must(css).await;
        self.cmd(&format!("element/{e}/click"), json!({})).await;
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let e = self.must(css).await;
        self.get(&format!("element/{e}/text"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Forgets every cookie (a new visitor in the same browser).
    pub async fn delete_cookies(&self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}/cookie", self.base, self.session))
            .send()
            .await;
    }

    /// Adds a virtual platform authenticator (CTAP2, internal transport, resident keys, user
    /// verification that always succeeds), answering WebAuthn requests without a human.
    pub async fn add_virtual_authenticator(&self) -> String {
        let v = self
            .cmd(
                "webauthn/authenticator",
                json!({
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserConsenting": true,
                    "isUserVerified": true,
                }),
            )
            .await;
        v.as_str()
            .unwrap_or_else(|| panic!("no virtual authenticator: {v}"))
            .to_string()
    }

    /// The credentials a virtual authenticator holds.
    pub async fn credentials(&self, authenticator: &str) -> Vec<Value> {
        self.get(&format!(
            "webauthn/authenticator/{authenticator}/credentials"
        ))
        .await
        .as_array()
        .cloned()
        .unwrap_or_default()
    }

    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(format!("{}/session/{}", self.base, self.session))
            .send()
            .await;
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
