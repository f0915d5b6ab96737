//! Passkeys at the HTTP level, answered by a software authenticator (webauthn-authenticator-rs)
//! on the `localhost` origin: registration, second-factor sign-in, counters, single-use
//! ceremonies, and a ceremony begun on one instance and finished on another.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;
use webauthn_rs::prelude::{CreationChallengeResponse, RequestChallengeResponse, Url};

use crate::flow::{authorize_url, jwt_payload};
use crate::support::browser::{Browser, Landing};
use crate::support::mfa::{attr, exchange, page, password_step, post_with_csrf};
use crate::support::{ClientSpec, Options, TestApp, param};

async fn localhost_app() -> TestApp {
    TestApp::spawn_with(Options {
        host: "localhost",
        ..Default::default()
    })
    .await
}

fn origin(app: &TestApp) -> Url {
    Url::parse(&app.issuer).unwrap()
}

/// Registers a passkey for the signed-in browser through `/account/passkeys`.
pub async fn register(b: &Browser, app: &TestApp, key: &mut SoftPasskey, name: &str) -> String {
    let (status, _, body) = page(b.follow(app, app.url("/account/passkeys")).await);
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("id=\"passkey-register\""), "{body}");
    assert!(body.contains("/static/js/webauthn.js"));
    let (status, started) =
        crate::sign_in_page::passkey_options(b, app, &body, &attr(&body, "data-begin").unwrap())
            .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let options: CreationChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let answer = key.do_registration(origin(app), options).unwrap();
    let (status, path, done) = page(
        post_with_csrf(
            b,
            app,
            &body,
            "/account/passkeys",
            &[
                ("ceremony", started["ceremony"].as_str().unwrap()),
                ("credential", &serde_json::to_string(&answer).unwrap()),
                ("name", name),
            ],
        )
        .await,
    );
    assert_eq!(
        (status, path.as_str()),
        (StatusCode::OK, "/account/passkeys"),
        "{done}"
    );
    done
}

/// Uses the passkey button of a page (second-factor or sign-in): asks `app` for the ceremony
/// as the script does, and posts the answer to `to`.
async fn answer(
    b: &Browser,
    app: &TestApp,
    to: &TestApp,
    key: &mut SoftPasskey,
    body: &str,
) -> (Landing, String, String) {
    let (status, started) =
        crate::sign_in_page::passkey_options(b, app, body, &attr(body, "data-begin").unwrap())
            .await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let options: RequestChallengeResponse =
        serde_json::from_value(started["options"].clone()).unwrap();
    let cred = key.do_authentication(origin(app), options).unwrap();
    let ceremony = started["ceremony"].as_str().unwrap().to_string();
    let credential = serde_json::to_string(&cred).unwrap();
    let landing = post_with_csrf(
        b,
        to,
        body,
        "/login/passkey",
        &[("ceremony", &ceremony), ("credential", &credential)],
    )
    .await;
    (landing, ceremony, credential)
}

/// Signs `b` in with the passkey alone from the sign-in page; returns where it lands.
/// The software authenticator cannot hold discoverable credentials, so it is shown this
/// site's credential ids and its answer gets the user handle a discoverable one would carry.
pub async fn passwordless(
    b: &Browser,
    app: &TestApp,
    key: &mut SoftPasskey,
) -> (StatusCode, String) {
    let (_, _, login) = page(b.follow(app, app.url("/login")).await);
    let (status, started) =
        crate::sign_in_page::passkey_options(b, app, &login, "/login/passkey/options").await;
    assert_eq!(status, StatusCode::OK, "{started}");
    let known = stored_owners(app);
    let mut options = started["options"].clone();
    options["publicKey"]["allowCredentials"] = known
        .iter()
        .map(|(id, _)| serde_json::json!({"type": "public-key", "id": id}))
        .collect();
    let options: RequestChallengeResponse = serde_json::from_value(options).unwrap();
    let cred = key.do_authentication(origin(app), options).unwrap();
    let mut cred = serde_json::to_value(&cred).unwrap();
    let owner = &known
        .iter()
        .find(|(id, _)| cred["id"] == id.as_str())
        .unwrap()
        .1;
    let handle = portcullis::sign_in::passkeys::user_handle(owner);
    cred["response"]["userHandle"] = serde_json::json!(URL_SAFE_NO_PAD.encode(handle.as_bytes()));
    let (status, path, _) = page(
        post_with_csrf(
            b,
            app,
            &login,
            "/login/passkey",
            &[
                ("ceremony", started["ceremony"].as_str().unwrap()),
                ("credential", &cred.to_string()),
            ],
        )
        .await,
    );
    (status, path)
}

/// Every stored passkey's credential id and owner.
fn stored_owners(app: &TestApp) -> Vec<(String, String)> {
    use diesel::prelude::*;
    use portcullis::db::schema::passkeys::dsl::*;
    let mut c = app.conn();
    let conn: &mut portcullis::db::DbConn = &mut c;
    passkeys
        .select((credential_id, user_id))
        .load(conn)
        .unwrap()
}

pub async fn signed_in(app: &TestApp, username: &str) -> Browser {
    let b = Browser::new();
    let (_, path, _) = page(password_step(&b, app, username).await);
    assert_eq!(path, "/account");
    b
}

fn stored(app: &TestApp) -> Vec<(String, i64, Option<chrono::NaiveDateTime>)> {
    use diesel::prelude::*;
    use portcullis::db::schema::passkeys::dsl::*;
    let mut c = app.conn();
    let conn: &mut portcullis::db::DbConn = &mut c;
    passkeys
        .select((name, sign_count, last_used_at))
        .order(created_at.asc())
        .load(conn)
        .unwrap()
}

#[tokio::test]
async fn a_registered_passkey_is_the_second_factor_and_its_counter_moves() {
    let app = localhost_app().await;
    app.add_user("alice", None, None);
    let mut spec = ClientSpec::confidential("app");
    spec.skip_consent = true;
    let secret = app.add_client(spec).unwrap();
    // The sign-in page offers a passkey, and shows no alert before anything went wrong.
    let (_, _, login) = page(Browser::new().follow(&app, app.url("/login")).await);
    assert!(login.contains("id=\"passkey-login\""));
    assert!(!login.contains("role=\"alert\""));
    let mut key = SoftPasskey::new(true);
    let b = signed_in(&app, "alice").await;
    let listed = register(&b, &app, &mut key, "Laptop <key>").await;
    assert!(listed.contains("Laptop &#60;key&#62;") || listed.contains("Laptop &lt;key&gt;"));
    assert!(listed.contains("last used never"));
    assert_eq!(stored(&app).len(), 1);

    // Sign-in to a client: password, then the passkey.
    let b2 = Browser::new();
    let (_, _, login) = page(
        b2.follow(&app, authorize_url(&app, "openid", "&nonce=x"))
            .await,
    );
    let (_, path, second) = page(
        b2.submit_login(&app, &login, "alice", crate::support::PASSWORD)
            .await,
    );
    assert_eq!(path, "/login/second-factor");
    assert!(second.contains("id=\"passkey-signin\""));
    assert!(second.contains("autocomplete=\"one-time-code\""));
    let (landing, ceremony, credential) = answer(&b2, &app, &app, &mut key, &second).await;
    let q = match landing {
        Landing::Client(_, q) => q,
        other => panic!("{other:?}"),
    };
    let tokens = exchange(&app, &secret, &param(&q, "code").unwrap()).await;
    let claims = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(claims["acr"], "2");
    assert_eq!(claims["amr"], serde_json::json!(["pwd", "hwk", "mfa"]));
    let rows = stored(&app);
    assert!(rows[0].1 >= 1, "sign counter stored: {rows:?}");
    assert!(rows[0].2.is_some(), "last use recorded");

    // The same answer again (a replay) finds its ceremony gone.
    let b3 = Browser::new();
    let (_, _, second) = page(password_step(&b3, &app, "alice").await);
    let (status, _, refused) = page(
        post_with_csrf(
            &b3,
            &app,
            &second,
            "/login/passkey",
            &[("ceremony", &ceremony), ("credential", &credential)],
        )
        .await,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(refused.contains("expired"), "{refused}");
    // Garbage is a clear refusal too, and the stored counter is untouched.
    let before = stored(&app);
    let (_, started) =
        crate::sign_in_page::passkey_options(&b3, &app, &second, "/login/second-factor/options")
            .await;
    let (status, _, _) = page(
        post_with_csrf(
            &b3,
            &app,
            &second,
            "/login/passkey",
            &[
                ("ceremony", started["ceremony"].as_str().unwrap()),
                ("credential", "{\"id\":\"x\"}"),
            ],
        )
        .await,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(stored(&app), before);
}

#[tokio::test]
async fn passkeys_are_named_listed_several_per_user_and_removed_with_the_password() {
    let app = localhost_app().await;
    app.add_user("alice", None, None);
    let b = signed_in(&app, "alice").await;
    let mut one = SoftPasskey::new(true);
    let mut two = SoftPasskey::new(true);
    register(&b, &app, &mut one, "Phone").await;
    let listed = register(&b, &app, &mut two, "Security key").await;
    assert!(listed.contains("Phone") && listed.contains("Security key"));
    let (_, _, account) = page(b.follow(&app, app.url("/account")).await);
    assert!(account.contains("Passkeys: 2"));

    let first_id = attr(&listed, "data-passkey").unwrap();
    let (status, _, wrong) = page(
        post_with_csrf(
            &b,
            &app,
            &listed,
            "/account/passkeys/remove",
            &[("id", &first_id), ("current_password", "nope nope nope")],
        )
        .await,
    );
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(wrong.contains("not correct"));
    assert_eq!(stored(&app).len(), 2);
    let (_, path, after) = page(
        post_with_csrf(
            &b,
            &app,
            &listed,
            "/account/passkeys/remove",
            &[
                ("id", &first_id),
                ("current_password", crate::support::PASSWORD),
            ],
        )
        .await,
    );
    assert_eq!(path, "/account/passkeys");
    assert!(!after.contains("Phone") && after.contains("Security key"));
    assert_eq!(stored(&app).len(), 1);
}

#[tokio::test]
async fn a_ceremony_begun_on_one_instance_is_finished_on_another() {
    let app = localhost_app().await;
    app.add_user("alice", None, None);
    let issuer = app.issuer.clone();
    let master = app.state.master.clone();
    let second = TestApp::spawn_with(Options {
        host: "localhost",
        database_url: Some(app.database_url.clone()),
        // One deployment: both instances serve the same issuer with the same master key.
        configure: Box::new(move |c| {
            c.issuer = issuer.clone();
            c.master_key = Some((
                master.clone(),
                portcullis::keys::master::Source::Environment,
            ));
        }),
        ..Default::default()
    })
    .await;
    let mut key = SoftPasskey::new(true);
    let b = signed_in(&app, "alice").await;
    register(&b, &app, &mut key, "Laptop").await;

    let b2 = Browser::new();
    let (_, path, page_on_first) = page(password_step(&b2, &app, "alice").await);
    assert_eq!(path, "/login/second-factor");
    let (landing, _, _) = answer(&b2, &app, &second, &mut key, &page_on_first).await;
    let (_, path, _) = page(landing);
    assert_eq!(path, "/account", "finished on the second instance");
    // And the session it made is honoured by the first.
    let (_, path, _) = page(b2.follow(&app, app.url("/account")).await);
    assert_eq!(path, "/account");
}

#[tokio::test]
async fn a_signature_counter_that_goes_backwards_is_refused_and_raises_an_alert() {
    let app = localhost_app().await;
    app.add_user("alice", None, None);
    let mut key = SoftPasskey::new(true);
    register(&signed_in(&app, "alice").await, &app, &mut key, "Laptop").await;
    // The server has seen a higher counter than this authenticator will send: a copy of the
    // key was used elsewhere.
    {
        let mut c = app.conn();
        let conn: &mut portcullis::db::DbConn = &mut c;
        let id = stored_ids(conn).remove(0);
        let mut row = portcullis::store::mfa::passkey_find(conn, &id)
            .unwrap()
            .unwrap();
        let mut json: serde_json::Value = serde_json::from_str(&row.passkey).unwrap();
        json["cred"]["counter"] = serde_json::json!(1000);
        row.passkey = json.to_string();
        row.sign_count = 1000;
        portcullis::store::mfa::passkey_used(conn, &row).unwrap();
    }
    let b = Browser::new();
    let (_, path, second) = page(password_step(&b, &app, "alice").await);
    assert_eq!(path, "/login/second-factor");
    let (landing, _, _) = answer(&b, &app, &app, &mut key, &second).await;
    let (status, path, _) = page(landing);
    assert_eq!(
        (status, path.as_str()),
        (StatusCode::BAD_REQUEST, "/login/passkey")
    );
    let alerts: Vec<String> = {
        use diesel::prelude::*;
        use portcullis::db::schema::audit_log::dsl::*;
        let mut c = app.conn();
        let conn: &mut portcullis::db::DbConn = &mut c;
        audit_log
            .filter(event.eq("alert.passkey_counter"))
            .select(event)
            .load(conn)
            .unwrap()
    };
    assert_eq!(alerts.len(), 1);
}

fn stored_ids(conn: &mut portcullis::db::DbConn) -> Vec<String> {
    use diesel::prelude::*;
    use portcullis::db::schema::passkeys::dsl::*;
    passkeys.select(credential_id).load(conn).unwrap()
}
