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
    let jwks: Value = reqwest::get(app.url("/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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
