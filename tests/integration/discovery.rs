use serde_json::Value;

use crate::support::TestApp;

#[tokio::test]
async fn discovery_documents_are_identical_and_advertise_only_what_works() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let a: Value = http
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b: Value = http
        .get(app.url("/.well-known/oauth-authorization-server"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(a, b);
    assert_eq!(a["issuer"], app.issuer.as_str());
    assert_eq!(a["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        a["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        a["response_modes_supported"],
        serde_json::json!(["query", "form_post"])
    );
    assert_eq!(a["authorization_response_iss_parameter_supported"], true);
    assert_eq!(a["request_parameter_supported"], false);
    for key in [
        "authorization_endpoint",
        "token_endpoint",
        "userinfo_endpoint",
        "jwks_uri",
    ] {
        let url = a[key].as_str().unwrap();
        assert!(url.starts_with(&app.issuer), "{key} = {url}");
    }
}

#[tokio::test]
async fn jwks_has_unique_kids_with_use_and_alg_and_no_private_parts() {
    let app = TestApp::spawn().await;
    let jwks = get_json(&app, "/jwks").await;
    let keys = jwks["keys"].as_array().unwrap();
    assert!(!keys.is_empty());
    let mut kids: Vec<&str> = keys.iter().map(|k| k["kid"].as_str().unwrap()).collect();
    kids.sort();
    kids.dedup();
    assert_eq!(kids.len(), keys.len());
    let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
    algs.sort();
    assert_eq!(algs, vec!["ES256", "EdDSA", "RS256"]);
    for k in keys {
        assert_eq!(k["use"], "sig");
        let kty = match k["alg"].as_str().unwrap() {
            "RS256" => "RSA",
            "ES256" => "EC",
            _ => "OKP",
        };
        assert_eq!(k["kty"], kty);
        for private in ["d", "p", "q", "dp", "dq", "qi"] {
            assert!(k.get(private).is_none(), "JWKS leaks {private}");
        }
    }
}

#[tokio::test]
async fn pages_send_the_security_headers() {
    let app = TestApp::spawn().await;
    let r = reqwest::get(app.url("/login")).await.unwrap();
    let h = r.headers();
    let csp = h["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert_eq!(h["x-content-type-options"], "nosniff");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(cookie.contains("HttpOnly"), "{cookie}");
    assert!(cookie.contains("SameSite=Lax"), "{cookie}");
}

/// The answer of `/authorize` to one request, without following it.
async fn authorize_answer(
    app: &TestApp,
    scope: &str,
    extra: &str,
) -> (reqwest::StatusCode, Vec<(String, String)>) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .get(crate::flow::authorize_url(app, scope, extra))
        .send()
        .await
        .unwrap();
    let q = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .map(crate::support::query_of)
        .unwrap_or_default();
    (r.status(), q)
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    reqwest::get(app.url(path))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn discovery_tells_the_truth_about_what_the_endpoints_accept() {
    use crate::support::{ClientSpec, param};
    let app = TestApp::spawn().await;
    let secret = app.add_client(ClientSpec::confidential("app")).unwrap();
    let meta = get_json(&app, "/.well-known/openid-configuration").await;

    // Optional fields are left out rather than advertised empty.
    for (key, value) in meta.as_object().unwrap() {
        assert!(
            value.as_array().is_none_or(|a| !a.is_empty()),
            "{key} is an empty array"
        );
    }

    // Every advertised prompt value is accepted; one that is not advertised is refused.
    for prompt in strings(&meta["prompt_values_supported"]) {
        let (_, q) = authorize_answer(&app, "openid", &format!("&prompt={prompt}")).await;
        assert_ne!(
            param(&q, "error").as_deref(),
            Some("invalid_request"),
            "advertised prompt={prompt} is refused"
        );
    }
    let (_, q) = authorize_answer(&app, "openid", "&prompt=create").await;
    assert_eq!(param(&q, "error").as_deref(), Some("invalid_request"));

    // Every advertised scope is accepted.
    for scope in strings(&meta["scopes_supported"]) {
        let (_, q) = authorize_answer(&app, &format!("openid {scope}"), "").await;
        assert_eq!(
            param(&q, "error"),
            None,
            "advertised scope {scope} is refused"
        );
    }

    // Every advertised response mode answers; form_post with a page that posts.
    for mode in strings(&meta["response_modes_supported"]) {
        let (status, q) = authorize_answer(&app, "openid", &format!("&response_mode={mode}")).await;
        assert_eq!(param(&q, "error"), None, "response_mode={mode}: {status}");
    }

    // Every advertised grant type is known to the token endpoint; others are not.
    let token = |grant: String| {
        let (app, secret) = (&app, &secret);
        async move {
            let r = reqwest::Client::new()
                .post(app.url("/token"))
                .basic_auth("app", Some(secret))
                .form(&[("grant_type", grant.as_str())])
                .send()
                .await
                .unwrap();
            let body: Value = r.json().await.unwrap();
            body["error"].as_str().unwrap_or_default().to_string()
        }
    };
    for grant in strings(&meta["grant_types_supported"]) {
        assert_ne!(
            token(grant.clone()).await,
            "unsupported_grant_type",
            "advertised grant {grant}"
        );
    }
    assert_eq!(token("password".into()).await, "unsupported_grant_type");

    // Every advertised endpoint exists.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (key, value) in meta.as_object().unwrap() {
        if !(key.ends_with("_endpoint") || key == "jwks_uri") {
            continue;
        }
        let url = value.as_str().unwrap().replace(&app.issuer, &app.base);
        let get = http.get(&url).send().await.unwrap().status();
        let post = http.post(&url).send().await.unwrap().status();
        assert!(
            get != reqwest::StatusCode::NOT_FOUND || post != reqwest::StatusCode::NOT_FOUND,
            "{key} = {url} does not exist"
        );
    }

    // The advertised signing algorithms are the ones the key set holds.
    let jwks = get_json(&app, "/jwks").await;
    let mut held: Vec<String> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["alg"].as_str().unwrap().to_string())
        .collect();
    held.sort();
    let mut advertised = strings(&meta["id_token_signing_alg_values_supported"]);
    advertised.sort();
    assert_eq!(advertised, held);
}
