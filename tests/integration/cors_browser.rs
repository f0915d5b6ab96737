//! A single-page app on another origin runs the code flow with PKCE, userinfo, refresh and
//! revocation with `fetch` in headless Chromium, which enforces CORS for real.

use std::net::TcpListener;

use crate::support::webdriver::Driver;
use crate::support::{ClientSpec, Options, PASSWORD, TestApp};

/// The app: `/` starts sign-in, `/callback` redeems the code and uses the tokens, `/probe`
/// tries one token request. Each step is written into the page as `li#step-NAME`, whose text
/// starts with `ok:` or `failed:`; `p#done` marks the end.
const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>SPA</title></head><body>
<ul id="steps"></ul>
<script>
const ISSUER = "__ISSUER__";
const CLIENT_ID = "spa";
const redirectUri = location.origin + "/callback";
function step(id, ok, text) {
  const li = document.createElement("li");
  li.id = "step-" + id;
  li.textContent = (ok ? "ok: " : "failed: ") + text;
  document.getElementById("steps").appendChild(li);
  return ok;
}
function done() {
  const p = document.createElement("p");
  p.id = "done";
  p.textContent = "done";
  document.body.appendChild(p);
}
function b64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}
async function meta() {
  const r = await fetch(ISSUER + "/.well-known/openid-configuration");
  return r.json();
}
async function post(url, fields) {
  const r = await fetch(url, {
    method: "POST",
    headers: {"Content-Type": "application/x-www-form-urlencoded"},
    body: new URLSearchParams(fields),
  });
  const text = await r.text();
  return {status: r.status, body: text ? JSON.parse(text) : {}};
}
async function start() {
  const m = await meta();
  const verifier = b64url(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  const state = b64url(crypto.getRandomValues(new Uint8Array(16)));
  sessionStorage.setItem("pkce", JSON.stringify({verifier, state}));
  const u = new URL(m.authorization_endpoint);
  u.search = new URLSearchParams({
    response_type: "code", client_id: CLIENT_ID, redirect_uri: redirectUri,
    scope: "openid profile offline_access", state,
    code_challenge: b64url(digest), code_challenge_method: "S256",
  }).toString();
  location.assign(u.toString());
}
async function callback() {
  const q = new URLSearchParams(location.search);
  const saved = JSON.parse(sessionStorage.getItem("pkce") || "{}");
  if (!step("state", !!q.get("code") && q.get("state") === saved.state, q.get("error") || "state matches")) return;
  const m = await meta();
  const t = await post(m.token_endpoint, {
    grant_type: "authorization_code", client_id: CLIENT_ID, code: q.get("code"),
    redirect_uri: redirectUri, code_verifier: saved.verifier,
  });
  if (!step("token", t.status === 200 && !!t.body.access_token && !!t.body.refresh_token,
            t.status + " " + Object.keys(t.body).join(","))) return;
  const ui = await fetch(m.userinfo_endpoint, {headers: {Authorization: "Bearer " + t.body.access_token}});
  const claims = await ui.json();
  if (!step("userinfo", ui.status === 200 && claims.preferred_username === "alice",
            ui.status + " " + claims.preferred_username)) return;
  const rt = await post(m.token_endpoint, {
    grant_type: "refresh_token", client_id: CLIENT_ID, refresh_token: t.body.refresh_token,
  });
  if (!step("refresh", rt.status === 200 && !!rt.body.access_token, rt.status + " " + (rt.body.error || ""))) return;
  const current = rt.body.refresh_token || t.body.refresh_token;
  const rv = await post(m.revocation_endpoint, {
    client_id: CLIENT_ID, token: current, token_type_hint: "refresh_token",
  });
  if (!step("revoke", rv.status === 200, String(rv.status))) return;
  const again = await post(m.token_endpoint, {
    grant_type: "refresh_token", client_id: CLIENT_ID, refresh_token: current,
  });
  step("revoked", again.status === 400 && again.body.error === "invalid_grant",
       again.status + " " + again.body.error);
}
async function probe() {
  const m = await meta();
  try {
    const r = await post(m.token_endpoint, {
      grant_type: "authorization_code", client_id: CLIENT_ID, code: "not-a-code",
      redirect_uri: redirectUri, code_verifier: "x".repeat(43),
    });
    step("probe", true, "answered " + r.status + " " + r.body.error);
  } catch (e) {
    step("probe", false, "rejected " + e.name);
  }
}
const run = location.pathname === "/callback" ? callback
  : location.pathname === "/probe" ? probe : start;
run().catch(e => step("error", false, e.name + ": " + e.message)).finally(done);
</script></body></html>
"#;

/// Serves `html` for every path on a random loopback port; stops when dropped.
struct StaticSite {
    port: u16,
    handle: actix_web::dev::ServerHandle,
}

impl StaticSite {
    fn start(html: String) -> StaticSite {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let html = std::sync::Arc::new(html);
        let server = actix_web::HttpServer::new(move || {
            let html = html.clone();
            actix_web::App::new().default_service(actix_web::web::to(move || {
                let html = html.clone();
                async move {
                    actix_web::HttpResponse::Ok()
                        .content_type("text/html; charset=utf-8")
                        .body(html.to_string())
                }
            }))
        })
        .workers(1)
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        StaticSite { port, handle }
    }
}

impl Drop for StaticSite {
    fn drop(&mut self) {
        std::mem::drop(self.handle.stop(false));
    }
}

async fn step(driver: &Driver, name: &str) -> String {
    driver.must("#done").await;
    match driver.find(&format!("#step-{name}")).await {
        Some(_) => driver.text(&format!("#step-{name}")).await,
        None => panic!("no step {name}:\n{}", driver.source().await),
    }
}

#[tokio::test]
async fn a_page_on_a_registered_origin_runs_code_pkce_userinfo_refresh_and_revocation_with_fetch() {
    if crate::support::webdriver::browser_missing() {
        return;
    }
    let app = TestApp::spawn_with(Options {
        host: "localhost",
        ..Default::default()
    })
    .await;
    app.add_user("alice", Some("alice@example.com"), Some("Alice"));
    let site = StaticSite::start(PAGE.replace("__ISSUER__", &app.issuer));
    // The app lives on 127.0.0.1, the provider on localhost: two origins. The same page on
    // localhost:PORT is a third origin, one nobody registered.
    let registered = format!("http://127.0.0.1:{}", site.port);
    let unregistered = format!("http://localhost:{}", site.port);
    app.add_client(ClientSpec {
        redirect_uris: vec![format!("{registered}/callback")],
        web_origins: vec![registered.clone()],
        ..ClientSpec::public("spa")
    });

    let driver = Driver::start().await;
    driver.goto(&format!("{registered}/")).await;
    driver
        .type_into("input[name=username][autocomplete=username]", "alice")
        .await;
    driver
        .type_into(
            "input[name=password][autocomplete=current-password]",
            PASSWORD,
        )
        .await;
    driver.click("button[type=submit]").await;
    driver.click("button[name=decision][value=allow]").await;
    for name in ["state", "token", "userinfo", "refresh", "revoke", "revoked"] {
        let text = step(&driver, name).await;
        assert!(
            text.starts_with("ok:"),
            "{name}: {text}\n{}",
            driver.source().await
        );
    }

    // An error from the token endpoint is readable by the registered origin...
    driver.goto(&format!("{registered}/probe")).await;
    let text = step(&driver, "probe").await;
    assert_eq!(text, "ok: answered 400 invalid_grant");
    // ...while the browser refuses the answer to a page on an unregistered origin.
    driver.goto(&format!("{unregistered}/probe")).await;
    let text = step(&driver, "probe").await;
    assert_eq!(text, "failed: rejected TypeError");
    driver.quit().await;
}
