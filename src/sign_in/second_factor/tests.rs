#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The second step of sign-in, in process on the fixture database: codes accepted once,
//! wrong codes counted, the pending step's deadline, the form token, where the browser lands.

use super::*;
use crate::config::Schedule;
use crate::keys::secrets::Secret;
use crate::sign_in::finish::Next;
use crate::sign_in::sessions::fixture::signed_in;
use crate::store::audit_log::Entry;
use crate::testkit::{Env, IP, audited, db, t0, user};

/// RFC 6238's test secret, so every run sees the same codes.
const SECRET: &[u8] = b"12345678901234567890";

fn at(seconds: i64) -> NaiveDateTime {
    t0() + Duration::seconds(seconds)
}

/// The code an authenticator app shows at `now` (RFC 6238 with SHA-1, six digits, 30 s).
fn code_at(now: NaiveDateTime) -> String {
    totp_rs::Builder::new()
        .with_algorithm(totp_rs::Algorithm::SHA1)
        .with_digits(6)
        .with_step_duration(30)
        .with_secret(totp_rs::Secret::from(SECRET))
        .with_account_name("user".to_string())
        .build()
        .unwrap()
        .generate(u64::try_from(now.and_utc().timestamp()).unwrap())
        .to_string()
}

/// Six digits that no step within the tolerance around `now` accepts.
fn wrong_code(now: NaiveDateTime) -> String {
    let near: Vec<String> = [-30, 0, 30]
        .iter()
        .map(|d| code_at(now + Duration::seconds(*d)))
        .collect();
    (0..10)
        .map(|d| d.to_string().repeat(6))
        .find(|c| !near.contains(c))
        .unwrap()
}

fn origin() -> Origin {
    Origin {
        ip: Some(IP.into()),
        user_agent: Some("test-agent".into()),
        device: None,
    }
}

/// User "alice" with a confirmed TOTP credential for `SECRET`.
struct World {
    c: DbConn,
    env: Env,
    uid: String,
}

fn world() -> World {
    let mut c = db();
    let env = Env::new();
    let uid = user(&mut c, "alice", t0());
    let sealed = totp::seal(&env.master, &uid, SECRET).unwrap();
    mfa::totp_begin(
        &mut c,
        &mfa::Totp {
            user_id: uid.clone(),
            secret: sealed,
            confirmed: true,
            last_step: None,
            created_at: t0(),
            confirmed_at: Some(t0()),
            last_used_at: None,
        },
    )
    .unwrap();
    World { c, env, uid }
}

impl World {
    /// The password was right at `now`: the cookie of the pending session.
    fn pending(&mut self, now: NaiveDateTime) -> String {
        let lifetimes = &self.env.config.lifetimes;
        sessions::begin_second_factor(&mut self.c, None, &self.uid, &origin(), now, lifetimes)
            .unwrap()
            .cookie
    }

    /// The browser the cookie names, as the web layer hands it over, its form token checked.
    fn sender(&mut self, cookie: &str, now: NaiveDateTime) -> FormSender {
        FormSender {
            session: sessions::visit(&mut self.c, cookie, now, &self.env.config.lifetimes).unwrap(),
            session_token: true,
            anonymous: None,
        }
    }

    fn submit_from(
        &mut self,
        sender: FormSender,
        code: &str,
        request: Option<&str>,
        now: NaiveDateTime,
    ) -> CodeOutcome {
        let attempt = CodeAttempt {
            sender,
            code: Secret::new(code.to_string()),
            request: request.map(str::to_string),
            origin: origin(),
        };
        submit_code(&mut self.c, self.env.ctx(), attempt, now).unwrap()
    }

    /// Types `code` on the second-factor page of the browser with `cookie`.
    fn submit(&mut self, cookie: &str, code: &str, now: NaiveDateTime) -> CodeOutcome {
        let sender = self.sender(cookie, now);
        self.submit_from(sender, code, None, now)
    }

    /// A fresh pending session and `code` typed in it at `now`.
    fn try_code(&mut self, code: &str, now: NaiveDateTime) -> CodeOutcome {
        let cookie = self.pending(now);
        self.submit(&cookie, code, now)
    }

    fn failures(&mut self) -> Vec<Entry> {
        audited(&mut self.c, "sign_in")
            .into_iter()
            .filter(|e| e.outcome == "failure")
            .collect()
    }

    /// The session a landing's cookie names.
    fn landed(&mut self, landing: &Landing, now: NaiveDateTime) -> Session {
        sessions::current(
            &mut self.c,
            &landing.cookie,
            now,
            &self.env.config.lifetimes,
        )
        .unwrap()
        .expect("the landing's cookie names a live session")
    }
}

fn done(o: CodeOutcome) -> Landing {
    match o {
        CodeOutcome::Done(l) => l,
        other => panic!("expected a completed sign-in, got {other:?}"),
    }
}

#[test]
fn a_correct_totp_code_signs_in_for_the_parked_request_with_otp_and_mfa() {
    let mut w = world();
    let cookie = w.pending(t0());
    let sender = w.sender(&cookie, at(10));
    let o = w.submit_from(sender, &code_at(at(10)), Some("req-1"), at(10));
    let landing = done(o);
    let s = w.landed(&landing, at(10));
    assert_eq!(
        landing.next,
        Next::Authorize {
            request: "req-1".into(),
            sid: s.sid.clone()
        }
    );
    assert_eq!(s.user_id.as_deref(), Some(w.uid.as_str()));
    assert_eq!(s.pending_user_id, None);
    assert_eq!(sessions::amr(&s), ["pwd", "otp", "mfa"]);
    assert_eq!(s.password_at, Some(t0()), "the password time carries over");
    assert!(landing.device.is_some());
    let lifetimes = &w.env.config.lifetimes;
    assert!(
        sessions::current(&mut w.c, &cookie, at(10), lifetimes)
            .unwrap()
            .is_none(),
        "the pending session is replaced"
    );
}

#[test]
fn without_a_request_the_browser_lands_on_the_account_page() {
    let mut w = world();
    let landing = done(w.try_code(&code_at(t0()), t0()));
    assert_eq!(landing.next, Next::Account);
}

#[test]
fn a_totp_step_accepted_once_is_refused_the_second_time() {
    let mut w = world();
    let code = code_at(t0());
    done(w.try_code(&code, t0()));
    assert_eq!(w.try_code(&code, at(1)), CodeOutcome::Failed, "replay");
    let older = code_at(at(-30));
    assert_eq!(
        w.try_code(&older, at(1)),
        CodeOutcome::Failed,
        "an older step after a newer one"
    );
    done(w.try_code(&code_at(at(30)), at(30)));
    assert_eq!(
        mfa::totp_find(&mut w.c, &w.uid).unwrap().unwrap().last_step,
        Some(at(30).and_utc().timestamp() / 30)
    );
}

#[test]
fn a_recovery_code_works_once_and_its_use_is_audited() {
    let mut w = world();
    let (codes, rows) = recovery_codes::new_set(&w.uid, t0());
    mfa::recovery_replace(&mut w.c, &w.uid, &rows).unwrap();
    let typed = codes[3].to_uppercase();
    let landing = done(w.try_code(&typed, t0()));
    let s = w.landed(&landing, t0());
    assert_eq!(sessions::amr(&s), ["pwd", "otp", "mfa"]);
    assert_eq!(
        mfa::recovery_remaining(&mut w.c, &w.uid).unwrap(),
        recovery_codes::COUNT as i64 - 1
    );
    let used = audited(&mut w.c, "mfa.recovery_code.use");
    assert_eq!(used.len(), 1);
    assert_eq!(used[0].details, r#"{"remaining":9}"#);
    assert_eq!(w.try_code(&codes[3], at(1)), CodeOutcome::Failed);
    done(w.try_code(&codes[4], at(2)));
}

#[test]
fn wrong_codes_are_audited_and_throttled_after_the_configured_count() {
    let mut w = world();
    w.env.config.throttle.account_ip = Schedule {
        free: 2,
        delays: vec![7],
        cap: 900,
    };
    let cookie = w.pending(t0());
    let wrong = wrong_code(t0());
    assert_eq!(w.submit(&cookie, &wrong, t0()), CodeOutcome::Failed);
    assert_eq!(w.submit(&cookie, &wrong, at(1)), CodeOutcome::Failed);
    assert_eq!(
        w.submit(&cookie, &wrong, at(2)),
        CodeOutcome::Throttled { retry_after: 7 }
    );
    let failures = w.failures();
    assert_eq!(failures.len(), 3);
    for (e, delay) in failures.iter().zip([0, 0, 7]) {
        let d: serde_json::Value = serde_json::from_str(&e.details).unwrap();
        assert_eq!(e.user_id.as_deref(), Some(w.uid.as_str()));
        assert_eq!(d["reason"], "bad_second_factor");
        assert_eq!(d["delay"], delay);
        assert_eq!(d["account"], detect::account_ref(&w.env.master, "alice"));
    }
    // Blocked: even the right code waits, and the wait is audited.
    let right = code_at(at(5));
    assert_eq!(
        w.submit(&cookie, &right, at(5)),
        CodeOutcome::Throttled { retry_after: 4 }
    );
    let blocked: Vec<Entry> = audited(&mut w.c, "sign_in")
        .into_iter()
        .filter(|e| e.outcome == "blocked")
        .collect();
    assert_eq!(blocked.len(), 1);
    assert_eq!(w.failures().len(), 3, "a blocked attempt is not a failure");
    done(w.submit(&cookie, &right, at(9)));
}

#[test]
fn a_success_clears_the_accounts_counters() {
    let mut w = world();
    w.env.config.throttle.account_ip = Schedule {
        free: 1,
        delays: vec![7],
        cap: 900,
    };
    let wrong = wrong_code(t0());
    assert_eq!(w.try_code(&wrong, t0()), CodeOutcome::Failed);
    done(w.try_code(&code_at(t0()), at(1)));
    assert_eq!(
        w.try_code(&wrong, at(2)),
        CodeOutcome::Failed,
        "counting starts again after the success"
    );
}

#[test]
fn the_pending_step_expires_after_pending_seconds() {
    let mut w = world();
    let cookie = w.pending(t0());
    let last = sessions::PENDING_SECONDS - 1;
    // Seen by the web layer just before the deadline, typed just after.
    let sender = w.sender(&cookie, at(last));
    let late = w.submit_from(sender, &code_at(at(last)), None, at(last + 1));
    assert_eq!(late, CodeOutcome::NoSubject);
    assert_eq!(
        w.submit(&cookie, &code_at(at(last + 1)), at(last + 1)),
        CodeOutcome::NoSubject,
        "the pending session itself has expired"
    );
    assert!(
        w.failures().is_empty(),
        "nothing to count without a subject"
    );
    let cookie = w.pending(at(1000));
    let in_time = at(1000 + last);
    done(w.submit(&cookie, &code_at(in_time), in_time));
}

#[test]
fn a_form_without_the_sessions_token_is_refused_and_consumes_nothing() {
    let mut w = world();
    let cookie = w.pending(t0());
    let code = code_at(t0());
    let mut sender = w.sender(&cookie, t0());
    sender.session_token = false;
    sender.anonymous = Some("visitor".into());
    assert_eq!(
        w.submit_from(sender, &code, None, t0()),
        CodeOutcome::BadCsrf
    );
    assert!(audited(&mut w.c, "sign_in").is_empty());
    done(w.submit(&cookie, &code, t0()));
}

#[test]
fn a_browser_without_a_session_has_no_second_step() {
    let mut w = world();
    let o = w.submit_from(FormSender::default(), &code_at(t0()), None, t0());
    assert_eq!(o, CodeOutcome::NoSubject);
}

#[test]
fn a_disabled_user_has_no_second_step() {
    let mut w = world();
    let cookie = w.pending(t0());
    users::set_disabled(&mut w.c, &w.uid, true, t0()).unwrap();
    assert_eq!(
        w.submit(&cookie, &code_at(t0()), t0()),
        CodeOutcome::NoSubject
    );
}

#[test]
fn a_signed_in_user_steps_up_keeping_what_the_session_proved() {
    let mut w = world();
    let one = signed_in(&mut w.c, &w.uid, &["pwd"], t0());
    assert!(!sessions::is_multi_factor(&one.session));
    let sender = w.sender(&one.cookie, t0());
    let landing = done(w.submit_from(sender, &code_at(t0()), Some("req-2"), t0()));
    let s = w.landed(&landing, t0());
    assert_eq!(sessions::amr(&s), ["pwd", "otp", "mfa"]);
    assert!(sessions::is_multi_factor(&s));
    assert_eq!(
        landing.next,
        Next::Authorize {
            request: "req-2".into(),
            sid: s.sid.clone()
        }
    );
}
