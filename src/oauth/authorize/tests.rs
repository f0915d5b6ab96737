#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The authorization endpoint's decisions, in process on the fixture database.

use super::*;
use crate::sign_in::sessions::fixture::signed_in;
use crate::testkit::{self, Env, IP, REDIRECT_URI, audited, db, t0, user};
use chrono::Duration;

/// A valid S256 challenge (RFC 7636 appendix B).
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn at(seconds: i64) -> NaiveDateTime {
    t0() + Duration::seconds(seconds)
}

/// A request of client "app" for `openid profile` with PKCE and a state; `changes` replace
/// or add parameters, and an empty value removes one.
fn request(changes: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: BTreeMap<String, String> = [
        ("response_type", "code"),
        ("client_id", "app"),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid profile"),
        ("state", "xyz"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    for (k, v) in changes {
        p.insert(k.to_string(), v.to_string());
    }
    p.retain(|_, v| !v.is_empty());
    p.into_iter().collect()
}

/// A database with client "app" and user "alice".
struct World {
    c: DbConn,
    env: Env,
    uid: String,
}

fn world() -> World {
    let mut c = db();
    testkit::client(&mut c, "app", t0());
    let uid = user(&mut c, "alice", t0());
    World {
        c,
        env: Env::new(),
        uid,
    }
}

impl World {
    fn start(
        &mut self,
        changes: &[(&str, &str)],
        s: Option<&Session>,
        now: NaiveDateTime,
    ) -> Outcome {
        start(&mut self.c, self.env.ctx(), &request(changes), s, now).unwrap()
    }

    fn session(&mut self, amr: &[&str], now: NaiveDateTime) -> Session {
        signed_in(&mut self.c, &self.uid, amr, now).session
    }

    /// Requests waiting from the fixture's address.
    fn parked(&mut self, now: NaiveDateTime) -> i64 {
        auth_requests::live_from(&mut self.c, Some(IP), now)
            .unwrap()
            .0
    }

    /// Registers another client, made from the fixture's by `change`.
    fn add_client(&mut self, client_id: &str, change: impl FnOnce(&mut Client)) {
        let mut row = testkit::client_row(client_id, t0());
        change(&mut row);
        clients::insert(&mut self.c, &row).unwrap();
    }

    /// The user's answer on the consent page.
    fn decide(&mut self, id: &str, s: &Session, allow: bool, now: NaiveDateTime) -> Outcome {
        decide(&mut self.c, self.env.ctx(), id, s, allow, now).unwrap()
    }

    /// Approves a first request of the default form on the consent page, which issues a code.
    fn consented(&mut self, s: &Session, now: NaiveDateTime) {
        let id = request_id(&self.start(&[], Some(s), now));
        let approved = self.decide(&id, s, true, now);
        assert_code(self, approved);
    }

    fn give_second_factor(&mut self) {
        let (_, rows) = crate::sign_in::recovery_codes::new_set(&self.uid, t0());
        crate::store::mfa::recovery_replace(&mut self.c, &self.uid, &rows).unwrap();
    }
}

/// The answer at the redirect URI, or a panic naming what came instead.
fn answer(o: Outcome) -> AuthResponse {
    match o {
        Outcome::Respond(r) => r,
        other => panic!("expected an answer at the redirect URI, got {other:?}"),
    }
}

fn param<'a>(r: &'a AuthResponse, name: &str) -> Option<&'a str> {
    r.params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn names(r: &AuthResponse) -> Vec<&str> {
    r.params.iter().map(|(k, _)| k.as_str()).collect()
}

/// Checks an error answer at the registered URI: the code, the state, our issuer, nothing else.
fn assert_error(w: &World, o: Outcome, code: &str) {
    let r = answer(o);
    assert_eq!(r.redirect_uri, REDIRECT_URI);
    assert_eq!(names(&r), ["error", "error_description", "state", "iss"]);
    assert_eq!(param(&r, "error"), Some(code));
    assert_eq!(param(&r, "state"), Some("xyz"));
    assert_eq!(param(&r, "iss"), Some(w.env.config.issuer.as_str()));
}

/// Checks a code answer: code, state, issuer.
fn assert_code(w: &World, o: Outcome) -> String {
    let r = answer(o);
    assert_eq!(r.redirect_uri, REDIRECT_URI);
    assert_eq!(names(&r), ["code", "state", "iss"]);
    assert_eq!(param(&r, "state"), Some("xyz"));
    assert_eq!(param(&r, "iss"), Some(w.env.config.issuer.as_str()));
    param(&r, "code").unwrap().to_string()
}

fn request_id(o: &Outcome) -> String {
    match o {
        Outcome::Login { request_id }
        | Outcome::Consent { request_id }
        | Outcome::SecondFactor { request_id }
        | Outcome::Enrol { request_id } => request_id.clone(),
        other => panic!("expected a parked request, got {other:?}"),
    }
}

#[test]
fn an_unknown_client_gets_an_error_page_and_nothing_is_parked() {
    let mut w = world();
    let o = w.start(&[("client_id", "nobody")], None, t0());
    assert!(matches!(o, Outcome::ErrorPage(_)), "{o:?}");
    assert_eq!(w.parked(t0()), 0);
}

#[test]
fn an_unregistered_redirect_uri_gets_an_error_page_and_is_audited_with_its_origin() {
    let mut w = world();
    let o = w.start(
        &[("redirect_uri", "https://evil.example/steal?x=1")],
        None,
        t0(),
    );
    assert!(matches!(o, Outcome::ErrorPage(_)), "{o:?}");
    assert_eq!(w.parked(t0()), 0);
    let refused = audited(&mut w.c, "authorize.refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].client_id.as_deref(), Some("app"));
    let details: serde_json::Value = serde_json::from_str(&refused[0].details).unwrap();
    assert_eq!(details["redirect_origin"], "https://evil.example");
}

#[test]
fn a_request_without_client_id_gets_an_error_page() {
    let mut w = world();
    let o = w.start(&[("client_id", "")], None, t0());
    assert!(matches!(o, Outcome::ErrorPage(_)), "{o:?}");
}

#[test]
fn a_public_client_without_pkce_gets_invalid_request_at_its_redirect_uri() {
    let mut w = world();
    w.add_client("spa", |c| {
        c.public = true;
        c.secret_hash = None;
        c.auth_method = "none".into();
    });
    let o = w.start(
        &[
            ("client_id", "spa"),
            ("code_challenge", ""),
            ("code_challenge_method", ""),
        ],
        None,
        t0(),
    );
    assert_error(&w, o, "invalid_request");
    assert_eq!(w.parked(t0()), 0);
}

#[test]
fn a_confidential_client_may_leave_out_pkce() {
    let mut w = world();
    let o = w.start(
        &[("code_challenge", ""), ("code_challenge_method", "")],
        None,
        t0(),
    );
    assert!(matches!(o, Outcome::Login { .. }), "{o:?}");
}

#[test]
fn prompt_none_without_a_session_answers_login_required_and_parks_nothing() {
    let mut w = world();
    let o = w.start(&[("prompt", "none")], None, t0());
    assert_error(&w, o, "login_required");
    assert_eq!(w.parked(t0()), 0);
}

#[test]
fn without_a_session_the_request_is_parked_and_the_user_sent_to_sign_in() {
    let mut w = world();
    let o = w.start(&[], None, t0());
    let id = request_id(&o);
    assert!(matches!(o, Outcome::Login { .. }), "{o:?}");
    let row = auth_requests::find(&mut w.c, &id).unwrap().unwrap();
    assert_eq!(row.client_id, "app");
    assert_eq!(row.client_ip.as_deref(), Some(IP));
    assert_eq!(row.expires_at, at(w.env.config.lifetimes.auth_request));
    assert_eq!(row.login_sid, None);
    assert!(!row.consented);
}

#[test]
fn a_disabled_users_session_counts_as_signed_out() {
    let mut w = world();
    let s = w.session(&["pwd"], t0());
    crate::store::users::set_disabled(&mut w.c, &w.uid, true, t0()).unwrap();
    let o = w.start(&[], Some(&s), t0());
    assert!(matches!(o, Outcome::Login { .. }), "{o:?}");
}

#[test]
fn a_signed_in_user_without_consent_is_asked_for_it_and_the_request_stays_parked() {
    let mut w = world();
    let s = w.session(&["pwd"], t0());
    let o = w.start(&[], Some(&s), t0());
    assert!(matches!(o, Outcome::Consent { .. }), "{o:?}");
    assert!(
        auth_requests::find(&mut w.c, &request_id(&o))
            .unwrap()
            .is_some()
    );
}

#[test]
fn approving_consent_issues_one_code_and_consumes_the_request() {
    let mut w = world();
    let s = w.session(&["pwd"], t0());
    let id = request_id(&w.start(&[], Some(&s), t0()));
    let o = w.decide(&id, &s, true, at(5));
    assert_code(&w, o);
    assert!(auth_requests::find(&mut w.c, &id).unwrap().is_none());
    let again = resume(&mut w.c, w.env.ctx(), &id, Some(&s), at(6)).unwrap();
    assert!(matches!(again, Outcome::ErrorPage(_)), "{again:?}");
    let issued = audited(&mut w.c, "code.issue");
    assert_eq!(issued.len(), 1, "one code for one request");
    assert_eq!(issued[0].user_id.as_deref(), Some(w.uid.as_str()));
    let consent = consents::find(&mut w.c, &w.uid, "app").unwrap().unwrap();
    assert_eq!(consent.scopes, "openid profile");
    assert_eq!(audited(&mut w.c, "consent.grant").len(), 1);
}

#[test]
fn a_stored_consent_covering_the_scopes_issues_a_code_at_once() {
    let mut w = world();
    let s = w.session(&["pwd"], t0());
    w.consented(&s, at(5));
    let o = w.start(&[("scope", "openid")], Some(&s), at(10));
    assert_code(&w, o);
    assert_eq!(w.parked(at(10)), 0);
    let wider = w.start(&[("scope", "openid email")], Some(&s), at(20));
    assert!(
        matches!(wider, Outcome::Consent { .. }),
        "a scope never approved asks again: {wider:?}"
    );
}

#[test]
fn a_claim_asked_by_name_needs_its_own_approval() {
    let mut w = world();
    let s = w.session(&["pwd"], t0());
    w.consented(&s, at(1));
    let email = r#"{"userinfo":{"email":null}}"#;
    let o = w.start(&[("claims", email)], Some(&s), at(2));
    let id = request_id(&o);
    assert!(matches!(o, Outcome::Consent { .. }), "{o:?}");
    let approved = w.decide(&id, &s, true, at(3));
    assert_code(&w, approved);
    assert_eq!(
        consents::find(&mut w.c, &w.uid, "app")
            .unwrap()
            .unwrap()
            .claims,
        "email"
    );
    let remembered = w.start(&[("claims", email)], Some(&s), at(4));
    assert_code(&w, remembered);
}

#[test]
fn denying_consent_answers_access_denied_and_forgets_the_request() {
    let mut w = world();
    let s = w.session(&["pwd"], t0());
    let id = request_id(&w.start(&[], Some(&s), t0()));
    let o = w.decide(&id, &s, false, at(5));
    assert_error(&w, o, "access_denied");
    assert!(auth_requests::find(&mut w.c, &id).unwrap().is_none());
    assert!(consents::find(&mut w.c, &w.uid, "app").unwrap().is_none());
    assert_eq!(audited(&mut w.c, "consent.deny").len(), 1);
    assert!(audited(&mut w.c, "code.issue").is_empty());
}

#[test]
fn a_client_that_skips_consent_gets_a_code_for_a_signed_in_user() {
    let mut w = world();
    w.add_client("trusted", |c| c.skip_consent = true);
    let s = w.session(&["pwd"], t0());
    let o = w.start(&[("client_id", "trusted")], Some(&s), t0());
    assert_code(&w, o);
}

#[test]
fn prompt_consent_asks_again_although_consent_covers_the_scopes() {
    let mut w = world();
    let s = w.session(&["pwd"], t0());
    w.consented(&s, at(1));
    let o = w.start(&[("prompt", "consent")], Some(&s), at(2));
    let id = request_id(&o);
    assert!(matches!(o, Outcome::Consent { .. }), "{o:?}");
    let approved = w.decide(&id, &s, true, at(3));
    assert_code(&w, approved);
    let silent = w.start(&[("prompt", "none")], Some(&s), at(4));
    assert_code(&w, silent);
}

#[test]
fn prompt_none_without_consent_answers_consent_required() {
    let mut w = world();
    let s = w.session(&["pwd"], t0());
    let o = w.start(&[("prompt", "none")], Some(&s), t0());
    assert_error(&w, o, "consent_required");
    assert_eq!(w.parked(t0()), 0);
}

#[test]
fn prompt_login_sends_an_earlier_session_to_sign_in_until_the_new_sign_in_is_marked() {
    let mut w = world();
    let before = w.session(&["pwd"], t0());
    let o = w.start(&[("prompt", "login")], Some(&before), at(10));
    let id = request_id(&o);
    assert!(matches!(o, Outcome::Login { .. }), "{o:?}");
    // Signing in again without marking the request does not satisfy prompt=login.
    let fresh = w.session(&["pwd"], at(20));
    let unmarked = resume(&mut w.c, w.env.ctx(), &id, Some(&fresh), at(21)).unwrap();
    assert!(matches!(unmarked, Outcome::Login { .. }), "{unmarked:?}");
    after_sign_in(
        &mut w.c,
        &Next::Authorize {
            request: id.clone(),
            sid: fresh.sid.clone(),
        },
    )
    .unwrap();
    let other = resume(&mut w.c, w.env.ctx(), &id, Some(&before), at(22)).unwrap();
    assert!(
        matches!(other, Outcome::Login { .. }),
        "only the session that signed in for the request is fresh: {other:?}"
    );
    let marked = resume(&mut w.c, w.env.ctx(), &id, Some(&fresh), at(23)).unwrap();
    assert_eq!(marked, Outcome::Consent { request_id: id });
}

#[test]
fn after_sign_in_marks_nothing_for_a_sign_in_without_a_request() {
    let mut w = world();
    let s = w.session(&["pwd"], t0());
    let id = request_id(&w.start(&[("prompt", "login")], Some(&s), at(1)));
    after_sign_in(&mut w.c, &Next::Account).unwrap();
    let row = auth_requests::find(&mut w.c, &id).unwrap().unwrap();
    assert_eq!(row.login_sid, None);
}

#[test]
fn max_age_sends_an_older_sign_in_back_to_sign_in() {
    let mut w = world();
    let s = w.session(&["pwd"], t0());
    let too_old = w.start(&[("max_age", "59")], Some(&s), at(60));
    assert!(matches!(too_old, Outcome::Login { .. }), "{too_old:?}");
    let just_fresh = w.start(&[("max_age", "60")], Some(&s), at(60));
    assert!(
        matches!(just_fresh, Outcome::Consent { .. }),
        "a sign-in exactly max_age old is still fresh: {just_fresh:?}"
    );
    let none = w.start(&[("max_age", "59"), ("prompt", "none")], Some(&s), at(60));
    assert_error(&w, none, "login_required");
}

#[test]
fn an_id_token_hint_for_another_user_sends_to_sign_in() {
    let mut w = world();
    let s = w.session(&["pwd"], t0());
    let hint = |sub: &str, aud: &str, iss: &str| {
        crate::keys::signing::sign_jwt(
            testkit::keys(),
            crate::keys::signing::RS256,
            None,
            &serde_json::json!({"iss": iss, "sub": sub, "aud": aud}),
        )
        .unwrap()
    };
    let issuer = w.env.config.issuer.clone();
    let other = hint("someone-else", "app", &issuer);
    let o = w.start(&[("id_token_hint", &other)], Some(&s), t0());
    assert!(matches!(o, Outcome::Login { .. }), "{o:?}");
    let same = hint(&w.uid.clone(), "app", &issuer);
    let o = w.start(&[("id_token_hint", &same)], Some(&s), t0());
    assert!(matches!(o, Outcome::Consent { .. }), "{o:?}");
    let foreign = hint(&w.uid.clone(), "another-app", &issuer);
    let o = w.start(&[("id_token_hint", &foreign)], Some(&s), t0());
    assert_error(&w, o, "invalid_request");
}

/// Records a password set `days_ago` days before `now` for the user.
fn password_set(w: &mut World, days_ago: i64) {
    crate::store::password_history::insert(
        &mut w.c,
        &crate::store::password_history::PastPassword {
            id: crate::keys::secrets::random_id(),
            user_id: w.uid.clone(),
            password_hash: "unused".into(),
            created_at: t0() - Duration::days(days_ago),
        },
    )
    .unwrap();
}

#[test]
fn an_expired_password_stops_the_request_before_any_code() {
    let mut w = world();
    w.env.config.password.max_age_days = Some(90);
    w.add_client("trusted", |c| c.skip_consent = true);
    password_set(&mut w, 90);
    let s = w.session(&["pwd"], t0());
    let o = w.start(&[("client_id", "trusted")], Some(&s), t0());
    assert_eq!(o, Outcome::PasswordExpired);
    let silent = w.start(
        &[("client_id", "trusted"), ("prompt", "none")],
        Some(&s),
        t0(),
    );
    assert_error(&w, silent, "interaction_required");
    assert!(audited(&mut w.c, "code.issue").is_empty());
}

#[test]
fn a_password_younger_than_the_maximum_age_lets_the_request_through() {
    let mut w = world();
    w.env.config.password.max_age_days = Some(90);
    password_set(&mut w, 89);
    let s = w.session(&["pwd"], t0());
    let o = w.start(&[], Some(&s), t0());
    assert!(matches!(o, Outcome::Consent { .. }), "{o:?}");
}

/// The validated request, or what the endpoint answers when validation refuses it.
fn validated(w: &mut World, changes: &[(&str, &str)]) -> Result<Valid, Outcome> {
    validate(&mut w.c, w.env.ctx(), &request(changes), t0())
        .map_err(|refused| refused.into_outcome().unwrap())
}

#[test]
fn scopes_are_narrowed_to_the_clients_registered_scopes() {
    let mut w = world();
    w.add_client("narrow", |c| c.scopes = "openid profile".into());
    let v = validated(
        &mut w,
        &[
            ("client_id", "narrow"),
            ("scope", "openid email profile offline_access"),
        ],
    )
    .unwrap();
    assert_eq!(v.scopes, ["openid", "profile"]);
    let none = validated(&mut w, &[("client_id", "narrow"), ("scope", "email")]).unwrap_err();
    assert_error(&w, none, "invalid_scope");
}

#[test]
fn offline_access_needs_the_refresh_grant() {
    let mut w = world();
    w.add_client("norefresh", |c| {
        c.grant_types = r#"["authorization_code"]"#.into()
    });
    let scope = ("scope", "openid offline_access");
    let v = validated(&mut w, &[("client_id", "norefresh"), scope]).unwrap();
    assert_eq!(v.scopes, ["openid"]);
    let v = validated(&mut w, &[scope]).unwrap();
    assert_eq!(v.scopes, ["openid", "offline_access"]);
}

#[test]
fn unsupported_parameters_are_answered_at_the_redirect_uri() {
    let mut w = world();
    let cases: [(&[(&str, &str)], &str); 5] = [
        (&[("response_type", "token")], "unsupported_response_type"),
        (&[("code_challenge_method", "plain")], "invalid_request"),
        (&[("prompt", "none login")], "invalid_request"),
        (&[("max_age", "-1")], "invalid_request"),
        (&[("request", "eyJ.x.y")], "request_not_supported"),
    ];
    for (changes, code) in cases {
        let o = validated(&mut w, changes).unwrap_err();
        assert_error(&w, o, code);
    }
}

#[test]
fn acr_values_2_with_a_single_factor_session_asks_for_the_second_factor() {
    let mut w = world();
    w.give_second_factor();
    let one = w.session(&["pwd"], t0());
    let o = w.start(&[("acr_values", "2")], Some(&one), t0());
    assert!(matches!(o, Outcome::SecondFactor { .. }), "{o:?}");
    let two = w.session(&["pwd", "otp", "mfa"], t0());
    let o = w.start(&[("acr_values", "2")], Some(&two), t0());
    assert!(matches!(o, Outcome::Consent { .. }), "{o:?}");
    let o = w.start(&[("acr_values", "2 1")], Some(&one), t0());
    assert!(
        matches!(o, Outcome::Consent { .. }),
        "one factor is acceptable when 1 is: {o:?}"
    );
}

#[test]
fn an_essential_acr_claim_of_2_asks_for_the_second_factor() {
    let mut w = world();
    w.give_second_factor();
    let s = w.session(&["pwd"], t0());
    let essential = r#"{"id_token":{"acr":{"essential":true,"values":["2"]}}}"#;
    let o = w.start(&[("claims", essential)], Some(&s), t0());
    assert!(matches!(o, Outcome::SecondFactor { .. }), "{o:?}");
    let unknown = r#"{"id_token":{"acr":{"essential":true,"values":["urn:gold"]}}}"#;
    let o = w.start(&[("claims", unknown)], Some(&s), t0());
    assert_error(&w, o, "unmet_authentication_requirements");
}

#[test]
fn a_demanded_second_factor_the_user_lacks_is_an_error_or_enrolment() {
    let mut w = world();
    let s = w.session(&["pwd"], t0());
    let o = w.start(&[("acr_values", "2")], Some(&s), t0());
    assert_error(&w, o, "unmet_authentication_requirements");
    w.add_client("strict", |c| c.require_mfa = true);
    let o = w.start(&[("client_id", "strict")], Some(&s), t0());
    assert!(matches!(o, Outcome::Enrol { .. }), "{o:?}");
    let silent = w.start(
        &[("client_id", "strict"), ("prompt", "none")],
        Some(&s),
        t0(),
    );
    assert_error(&w, silent, "interaction_required");
}

#[test]
fn parking_is_bounded_per_address_until_the_oldest_request_expires() {
    let mut w = world();
    w.env.config.rate_limit.parked_requests_per_address = 2;
    assert!(matches!(w.start(&[], None, t0()), Outcome::Login { .. }));
    assert!(matches!(w.start(&[], None, at(5)), Outcome::Login { .. }));
    let lifetime = w.env.config.lifetimes.auth_request;
    let o = w.start(&[], None, at(10));
    assert_eq!(
        o,
        Outcome::Busy {
            retry_after: lifetime - 10
        }
    );
    assert_eq!(w.parked(at(10)), 2, "the refused request is not kept");
    w.env.meta.ip = Some("198.51.100.7".into());
    let elsewhere = w.start(&[], None, at(10));
    assert!(
        matches!(elsewhere, Outcome::Login { .. }),
        "another address has its own bound: {elsewhere:?}"
    );
    w.env.meta.ip = Some(IP.into());
    let later = w.start(&[], None, at(lifetime));
    assert!(
        matches!(later, Outcome::Login { .. }),
        "the first request expired: {later:?}"
    );
}

#[test]
fn an_answer_without_parking_is_not_bounded() {
    let mut w = world();
    w.env.config.rate_limit.parked_requests_per_address = 1;
    assert!(matches!(w.start(&[], None, t0()), Outcome::Login { .. }));
    let o = w.start(&[("prompt", "none")], None, t0());
    assert_error(&w, o, "login_required");
}

#[test]
fn an_expired_parked_request_cannot_be_resumed() {
    let mut w = world();
    let id = request_id(&w.start(&[], None, t0()));
    let s = w.session(&["pwd"], t0());
    let lifetime = w.env.config.lifetimes.auth_request;
    let o = resume(&mut w.c, w.env.ctx(), &id, Some(&s), at(lifetime)).unwrap();
    assert!(matches!(o, Outcome::ErrorPage(_)), "{o:?}");
    let o = resume(&mut w.c, w.env.ctx(), &id, Some(&s), at(lifetime - 1)).unwrap();
    assert!(matches!(o, Outcome::Consent { .. }), "{o:?}");
}
