//! Web origins of browser-based clients (CORS): what an operator may register and how a
//! presented `Origin` header is compared with it.

use chrono::NaiveDateTime;
use url::Url;

use crate::db::DbConn;
use crate::error::InternalError;
use crate::keys::secrets::sha256_hex;
use crate::oauth::client_auth;
use crate::store::clients::{self, Client};
use crate::store::tokens;

/// The longest origin accepted at registration.
pub const MAX_LEN: usize = 255;

/// How many web origins one client may register.
pub const MAX_PER_CLIENT: usize = 32;

/// Parses an origin an operator registers (`https://app.example` or `https://app.example:8443`;
/// `http` only for `localhost` and loopback addresses) into its serialized form
/// (lower-case host, default port dropped). Paths, queries, fragments, credentials and
/// wildcards are refused with a message naming the problem.
pub fn parse(raw: &str) -> Result<String, String> {
    if raw.is_empty() || raw.len() > MAX_LEN {
        return Err(format!("web origin must be 1-{MAX_LEN} characters"));
    }
    if raw.contains('*') {
        return Err(format!(
            "web origin {raw:?}: wildcards are not allowed; register each origin exactly"
        ));
    }
    let url = Url::parse(raw).map_err(|e| format!("web origin {raw:?} is not a URL: {e}"))?;
    let tail = raw
        .split_once("://")
        .map(|(_, rest)| rest.contains('/') || rest.contains('?') || rest.contains('#'))
        .unwrap_or(true);
    if tail || !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "web origin {raw:?} must be scheme://host[:port] only, without a path, query or credentials"
        ));
    }
    let host = url.host_str().unwrap_or_default();
    let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Err(format!(
                "web origin {raw:?} must use https (http only for localhost and loopback addresses)"
            ));
        }
        other => {
            return Err(format!(
                "web origin {raw:?}: scheme {other:?} is not allowed"
            ));
        }
    }
    match url.origin() {
        url::Origin::Tuple(..) => Ok(url.origin().ascii_serialization()),
        url::Origin::Opaque(_) => Err(format!("web origin {raw:?} has no origin")),
    }
}

/// The web origin of a registered redirect URI, for operators who derive a browser app's
/// origins from its redirect URIs. `None` for URIs that are not web origins (custom schemes
/// of native apps, plain `http` on a public host).
pub fn of_redirect_uri(uri: &str) -> Option<String> {
    let url = Url::parse(uri).ok()?;
    let origin = match url.origin() {
        url::Origin::Tuple(..) => url.origin().ascii_serialization(),
        url::Origin::Opaque(_) => return None,
    };
    parse(&origin).ok()
}

/// Whether the `Origin` header a browser sent is one of the registered origins. Comparison is
/// exact on the serialized form; `null` and malformed headers never match.
pub fn allowed(registered: &[String], presented: &str) -> bool {
    if presented.len() > MAX_LEN {
        return false;
    }
    let Ok(presented) = parse(presented) else {
        return false;
    };
    registered.contains(&presented)
}

/// The origins to register for a client: each one `given` (validated and normalized), then,
/// when `derive_from` holds its redirect URIs, the origin of each that is a web address
/// (`https`, or `http` on loopback); without duplicates, in that order, at most
/// `MAX_PER_CLIENT`.
pub fn registration_list(
    given: &[String],
    derive_from: Option<&[String]>,
) -> Result<Vec<String>, String> {
    let mut all: Vec<String> = Vec::new();
    for raw in given {
        let o = parse(raw)?;
        if !all.contains(&o) {
            all.push(o);
        }
    }
    if let Some(uris) = derive_from {
        let derived: Vec<String> = uris.iter().filter_map(|u| of_redirect_uri(u)).collect();
        if derived.is_empty() {
            return Err(
                "no redirect URI is a web address (https, or http on loopback) to derive a web origin from"
                    .into(),
            );
        }
        for o in derived {
            if !all.contains(&o) {
                all.push(o);
            }
        }
    }
    if all.len() > MAX_PER_CLIENT {
        return Err(format!("at most {MAX_PER_CLIENT} web origins per client"));
    }
    Ok(all)
}

/// What an answer may tell the page whose `Origin` a browser presented.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The client the request concerns registered this origin (normalized): echo it.
    Allowed(String),
    /// The request concerns a client that did not register this origin.
    Refused,
    /// The request names no registered client (malformed, unknown, missing).
    NoClient,
}

/// Whether `client` registered the presented origin.
pub fn for_client(client: &Client, presented: &str) -> Verdict {
    match parse(presented) {
        Ok(o) if allowed(&client.web_origin_list(), &o) => Verdict::Allowed(o),
        _ => Verdict::Refused,
    }
}

/// The presented origin, normalized, when any client registered it: what a preflight, which
/// carries no body naming its client, and an error naming no client are answered for.
pub fn registered_by_any_client(
    conn: &mut DbConn,
    presented: &str,
) -> Result<Option<String>, InternalError> {
    let Ok(origin) = parse(presented) else {
        return Ok(None);
    };
    // The pre-filter matches the exact JSON string; a few rows are enough to confirm.
    let lists = clients::web_origins_containing(conn, &origin, 8)?;
    let found = lists.iter().any(|json| {
        serde_json::from_str::<Vec<String>>(json)
            .map(|l| l.contains(&origin))
            .unwrap_or(false)
    });
    Ok(found.then_some(origin))
}

/// The verdict for a token-side request (`/token`, `/revoke`, `/introspect`, `/par`): the
/// client it names, by `client_id` or Basic credentials, decides.
pub fn for_token_request(
    conn: &mut DbConn,
    presented: &str,
    authorization: Option<&str>,
    pairs: &[(String, String)],
) -> Result<Verdict, InternalError> {
    let Ok(form) = client_auth::single_valued(pairs) else {
        return Ok(Verdict::NoClient);
    };
    let Ok(creds) = client_auth::credentials(authorization, &form) else {
        return Ok(Verdict::NoClient);
    };
    Ok(match clients::find(conn, &creds.client_id)? {
        Some(client) => for_client(&client, presented),
        None => Verdict::NoClient,
    })
}

/// The verdict for `/userinfo`: the client the access token was issued to decides.
pub fn for_access_token(
    conn: &mut DbConn,
    presented: &str,
    access_token: &str,
    now: NaiveDateTime,
) -> Result<Verdict, InternalError> {
    let Some(token) = tokens::find(conn, &sha256_hex(access_token))?
        .filter(|t| t.kind == tokens::ACCESS && !t.revoked && t.expires_at > now)
    else {
        return Ok(Verdict::NoClient);
    };
    Ok(match clients::find(conn, &token.client_id)? {
        Some(client) => for_client(&client, presented),
        None => Verdict::NoClient,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn an_origin_is_normalized_and_its_default_port_dropped() {
        assert_eq!(
            parse("https://App.Example:443").as_deref(),
            Ok("https://app.example")
        );
        assert_eq!(
            parse("https://app.example:8443").as_deref(),
            Ok("https://app.example:8443")
        );
        assert_eq!(
            parse("http://localhost:5173").as_deref(),
            Ok("http://localhost:5173")
        );
    }

    #[test]
    fn paths_wildcards_credentials_and_plain_http_are_refused() {
        for bad in [
            "https://app.example/",
            "https://app.example/cb",
            "https://*.example",
            "*",
            "null",
            "https://u:p@app.example",
            "http://app.example",
            "javascript://x",
            "app.example",
            "",
        ] {
            assert!(parse(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn a_redirect_uri_yields_its_web_origin_and_a_native_one_none() {
        assert_eq!(
            of_redirect_uri("https://app.example/cb?x=1").as_deref(),
            Some("https://app.example")
        );
        assert_eq!(of_redirect_uri("com.example.app:/cb"), None);
        assert_eq!(of_redirect_uri("http://app.example/cb"), None);
    }

    #[test]
    fn only_a_registered_origin_is_allowed() {
        let reg = vec!["https://app.example".to_string()];
        assert!(allowed(&reg, "https://app.example"));
        assert!(allowed(&reg, "https://app.example:443"));
        assert!(!allowed(&reg, "https://app.example.evil"));
        assert!(!allowed(&reg, "https://evil.example"));
        assert!(!allowed(&reg, "null"));
        assert!(!allowed(&reg, "http://app.example"));
    }

    use crate::testkit::db;

    fn client(id: &str, origins: &[&str]) -> Client {
        Client {
            web_origins: serde_json::to_string(origins).unwrap(),
            ..crate::testkit::public_client(id)
        }
    }

    #[test]
    fn registration_normalizes_deduplicates_and_derives_only_when_asked() {
        let given = vec![
            "https://A.example".to_string(),
            "https://a.example:443".into(),
        ];
        let uris = vec![
            "https://b.example/cb".to_string(),
            "com.example.app:/cb".into(),
            "http://127.0.0.1:5173/cb".into(),
        ];
        assert_eq!(
            registration_list(&given, None).unwrap(),
            vec!["https://a.example"]
        );
        assert_eq!(
            registration_list(&given, Some(&uris)).unwrap(),
            vec![
                "https://a.example",
                "https://b.example",
                "http://127.0.0.1:5173"
            ]
        );
        assert!(registration_list(&[], Some(&["com.example.app:/cb".to_string()])).is_err());
        assert!(registration_list(&["http://evil.example".to_string()], None).is_err());
        let many: Vec<String> = (0..=MAX_PER_CLIENT)
            .map(|i| format!("https://app{i}.example"))
            .collect();
        assert!(registration_list(&many, None).is_err());
    }

    #[test]
    fn the_client_a_token_request_names_decides_its_origin() {
        let mut conn = db();
        clients::insert(&mut conn, &client("a", &["https://a.example"])).unwrap();
        clients::insert(&mut conn, &client("b", &["https://b.example"])).unwrap();
        let pairs = |id: &str| vec![("client_id".to_string(), id.to_string())];
        assert_eq!(
            for_token_request(&mut conn, "https://a.example", None, &pairs("a")).unwrap(),
            Verdict::Allowed("https://a.example".into())
        );
        assert_eq!(
            for_token_request(&mut conn, "https://a.example", None, &pairs("b")).unwrap(),
            Verdict::Refused
        );
        assert_eq!(
            for_token_request(&mut conn, "https://a.example", None, &pairs("nobody")).unwrap(),
            Verdict::NoClient
        );
        assert_eq!(
            for_token_request(&mut conn, "https://a.example", None, &[]).unwrap(),
            Verdict::NoClient
        );
    }

    #[test]
    fn a_preflight_origin_counts_when_any_client_registered_exactly_it() {
        let mut conn = db();
        clients::insert(
            &mut conn,
            &client("a", &["https://a.example", "https://axb.example"]),
        )
        .unwrap();
        clients::insert(&mut conn, &client("c", &[])).unwrap();
        let any = |conn: &mut DbConn, o: &str| registered_by_any_client(conn, o).unwrap();
        assert_eq!(
            any(&mut conn, "https://a.example").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            any(&mut conn, "https://A.example:443").as_deref(),
            Some("https://a.example")
        );
        assert_eq!(
            any(&mut conn, "https://axb.example").as_deref(),
            Some("https://axb.example")
        );
        // LIKE wildcards and prefixes in the presented origin match nothing else.
        for other in [
            "https://a.exampl",
            "https://a_b.example",
            "https://a.example.evil",
            "http://a.example",
            "null",
            "https://%.example",
        ] {
            assert_eq!(any(&mut conn, other), None, "{other}");
        }
    }
}
