#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The detection rules over the audit trail, in process on the fixture database: each alert
//! fires once when its threshold is reached, not once per event after it.

use super::*;
use crate::store::audit_log;
use crate::testkit::{Env, audited, db, t0};

fn at(seconds: i64) -> NaiveDateTime {
    t0() + Duration::seconds(seconds)
}

/// Day `day` after the fixture's start, at `hour`:00 UTC.
fn day_at(day: i64, hour: u32) -> NaiveDateTime {
    (t0().date() + Duration::days(day))
        .and_hms_opt(hour, 0, 0)
        .unwrap()
}

struct World {
    c: DbConn,
    env: Env,
}

fn world() -> World {
    World {
        c: db(),
        env: Env::new(),
    }
}

impl World {
    /// A failed sign-in for `account` from the context's address, as the sign-in steps
    /// record it, then the rules.
    fn failed_sign_in(&mut self, account: &str, now: NaiveDateTime) {
        let ev = Event::new("sign_in", "failure").details(json!({
            "reason": "bad_password",
            "account": account,
        }));
        audit::record(&mut self.c, &self.env.meta, now, ev).unwrap();
        after_failed_sign_in(&mut self.c, self.env.ctx(), now, account).unwrap();
    }

    /// A successful sign-in of `user_id` from the context's address and agent, then the rules.
    fn signed_in(&mut self, user_id: &str, now: NaiveDateTime) {
        let ev = Event::new("sign_in", "success").user(user_id);
        audit::record(&mut self.c, &self.env.meta, now, ev).unwrap();
        after_sign_in(&mut self.c, self.env.ctx(), now, user_id).unwrap();
    }

    /// A failed token request (`event`) of `client_id`, then the rules.
    fn token_error(&mut self, event: &str, client_id: &str, now: NaiveDateTime) {
        let ev = Event::new(event, "failure").client(client_id);
        audit::record(&mut self.c, &self.env.meta, now, ev).unwrap();
        after_token_error(&mut self.c, self.env.ctx(), now, client_id).unwrap();
    }

    fn alerts(&mut self, rule: &str) -> Vec<audit_log::Entry> {
        audited(&mut self.c, &format!("alert.{rule}"))
    }

    fn details(&mut self, rule: &str) -> Vec<Value> {
        self.alerts(rule)
            .iter()
            .map(|e| serde_json::from_str(&e.details).unwrap())
            .collect()
    }
}

#[test]
fn a_burst_of_failed_sign_ins_for_one_account_raises_one_alert() {
    let mut w = world();
    let limit = w.env.config.detection.guessing_failures as i64;
    for i in 0..limit - 1 {
        w.failed_sign_in("acct-a", at(i));
    }
    assert!(w.alerts("guessing").is_empty(), "below the threshold");
    for i in limit - 1..limit + 5 {
        w.failed_sign_in("acct-a", at(i));
    }
    assert_eq!(
        w.details("guessing"),
        [json!({"account": "acct-a", "failures": limit})]
    );
    let alert = &w.alerts("guessing")[0];
    assert_eq!(alert.outcome, "alert");
    assert_eq!(
        alert.at,
        at(limit - 1),
        "raised by the failure that reached it"
    );
}

#[test]
fn failures_of_other_accounts_or_outside_the_window_do_not_count() {
    let mut w = world();
    let limit = w.env.config.detection.guessing_failures as i64;
    let window = w.env.config.detection.window;
    for i in 0..limit - 1 {
        w.failed_sign_in("acct-a", at(0));
        w.failed_sign_in(&format!("other-{i}"), at(0));
    }
    // Those failures have left the window when the next one comes.
    w.failed_sign_in("acct-a", at(window + 1));
    for _ in 0..limit - 2 {
        w.failed_sign_in("acct-a", at(window + 2));
    }
    assert!(
        w.alerts("guessing").is_empty(),
        "one short inside the window"
    );
    w.failed_sign_in("acct-a", at(window + 2));
    assert_eq!(w.alerts("guessing").len(), 1);
}

#[test]
fn failures_across_many_accounts_from_one_address_raise_one_stuffing_alert() {
    let mut w = world();
    let limit = w.env.config.detection.stuffing_accounts;
    for i in 0..limit - 1 {
        w.failed_sign_in(&format!("acct-{i}"), at(i as i64));
    }
    w.env.meta.ip = Some("198.51.100.7".into());
    w.failed_sign_in("elsewhere", at(20));
    w.env.meta.ip = Some(crate::testkit::IP.into());
    assert!(
        w.alerts("stuffing").is_empty(),
        "another address counts apart"
    );
    w.failed_sign_in("acct-0", at(21));
    assert!(
        w.alerts("stuffing").is_empty(),
        "an account seen before adds nothing"
    );
    w.failed_sign_in(&format!("acct-{}", limit - 1), at(22));
    assert_eq!(w.details("stuffing"), [json!({"accounts": limit})]);
    w.failed_sign_in("acct-new", at(23));
    w.failed_sign_in("acct-1", at(24));
    assert_eq!(
        w.alerts("stuffing").len(),
        1,
        "once, not per failure after it"
    );
}

#[test]
fn nothing_is_raised_when_detection_is_off() {
    let mut w = world();
    w.env.config.detection.enabled = false;
    for i in 0..20 {
        w.failed_sign_in(&format!("acct-{}", i % 11), at(i));
        w.token_error("token.issue", "app", at(i));
    }
    replay(&mut w.c, w.env.ctx(), at(30), "app", "code").unwrap();
    let alerts: Vec<_> = audit_log::page(&mut w.c, 0, 1000)
        .unwrap()
        .into_iter()
        .filter(|e| e.event.starts_with("alert."))
        .collect();
    assert!(alerts.is_empty(), "{alerts:?}");
}

#[test]
fn a_burst_of_token_errors_of_one_client_raises_one_alert() {
    let mut w = world();
    let limit = w.env.config.detection.token_error_burst as i64;
    for i in 0..limit - 1 {
        let event = if i % 2 == 0 {
            "token.issue"
        } else {
            "client.auth"
        };
        w.token_error(event, "app", at(i));
        w.token_error("token.issue", "other", at(i));
    }
    assert!(w.alerts("token_errors").is_empty());
    w.token_error("client.auth", "app", at(limit));
    w.token_error("client.auth", "app", at(limit + 1));
    let alerts = w.alerts("token_errors");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].client_id.as_deref(), Some("app"));
    assert_eq!(alerts[0].details, format!(r#"{{"errors":{limit}}}"#));
}

#[test]
fn a_sign_in_from_a_new_address_and_device_raises_an_alert() {
    let mut w = world();
    w.signed_in("u1", at(0));
    assert!(
        w.alerts("new_device").is_empty(),
        "a first sign-in is no news"
    );
    w.signed_in("u1", at(10));
    assert!(w.alerts("new_device").is_empty(), "same address and agent");
    w.env.meta.ip = Some("198.51.100.7".into());
    w.signed_in("u1", at(20));
    let alerts = w.alerts("new_device");
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].user_id.as_deref(), Some("u1"));
    w.env.meta.ip = Some(crate::testkit::IP.into());
    w.env.meta.user_agent = Some("another browser".into());
    w.signed_in("u1", at(30));
    assert_eq!(
        w.alerts("new_device").len(),
        2,
        "a new agent is a new device"
    );
    w.signed_in("u2", at(40));
    assert_eq!(w.alerts("new_device").len(), 2, "another user's history");
}

#[test]
fn no_new_device_alert_when_that_rule_is_off() {
    let mut w = world();
    w.env.config.detection.new_device = false;
    w.signed_in("u1", at(0));
    w.env.meta.ip = Some("198.51.100.7".into());
    w.signed_in("u1", at(10));
    assert!(w.alerts("new_device").is_empty());
}

/// A world where "u1" signed in `count` times at `hour`:00 on successive days.
fn habit(count: i64, hour: u32) -> World {
    let mut w = world();
    for day in 0..count {
        w.signed_in("u1", day_at(day, hour));
    }
    w
}

#[test]
fn a_sign_in_far_from_the_usual_hours_raises_an_alert() {
    let history = world().env.config.detection.min_history as i64;
    let mut w = habit(history, 10);
    w.signed_in("u1", day_at(history, 14));
    assert_eq!(w.details("unusual_hour"), [json!({"hour": 14})]);
    let mut w = habit(history, 10);
    w.signed_in("u1", day_at(history, 13));
    assert!(
        w.alerts("unusual_hour").is_empty(),
        "within the margin of three hours"
    );
}

#[test]
fn the_usual_hours_wrap_around_midnight() {
    let history = world().env.config.detection.min_history as i64;
    let mut w = habit(history, 23);
    w.signed_in("u1", day_at(history, 2));
    assert!(w.alerts("unusual_hour").is_empty());
    w.signed_in("u1", day_at(history + 1, 6));
    assert_eq!(w.details("unusual_hour"), [json!({"hour": 6})]);
}

#[test]
fn a_short_history_raises_no_unusual_hour_alert() {
    let history = world().env.config.detection.min_history as i64;
    let mut w = habit(history - 1, 10);
    w.signed_in("u1", day_at(history, 22));
    assert!(w.alerts("unusual_hour").is_empty());
}

#[test]
fn a_replay_always_raises_an_alert_and_queues_a_webhook_when_configured() {
    let mut w = world();
    replay(&mut w.c, w.env.ctx(), t0(), "app", "code").unwrap();
    assert!(
        webhook_deliveries::due(&mut w.c, t0(), 10)
            .unwrap()
            .is_empty()
    );
    w.env.config.detection.webhook_url = Some("https://siem.example/hook".into());
    replay(&mut w.c, w.env.ctx(), at(1), "app", "refresh_token").unwrap();
    let alerts = w.alerts("token_replay");
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[1].client_id.as_deref(), Some("app"));
    assert_eq!(alerts[1].details, r#"{"what":"refresh_token"}"#);
    let queued = webhook_deliveries::due(&mut w.c, at(1), 10).unwrap();
    assert_eq!(queued.len(), 1);
    let body: Value = serde_json::from_str(&queued[0].body).unwrap();
    assert_eq!(body["rule"], "token_replay");
    assert_eq!(body["client_id"], "app");
    assert_eq!(body["ip"], crate::testkit::IP);
    assert_eq!(body["details"], json!({"what": "refresh_token"}));
}

#[test]
fn a_webhook_is_claimed_by_one_instance_and_retried_after_a_failure() {
    let mut w = world();
    w.env.config.detection.webhook_url = Some("https://siem.example/hook".into());
    replay(&mut w.c, w.env.ctx(), t0(), "app", "code").unwrap();
    let won = claim_webhooks(&mut w.c, t0()).unwrap();
    assert_eq!(won.len(), 1);
    assert!(
        claim_webhooks(&mut w.c, at(59)).unwrap().is_empty(),
        "leased for a minute"
    );
    record_webhook(&mut w.c, &won[0], Err("503".into()), at(1)).unwrap();
    assert!(claim_webhooks(&mut w.c, at(2)).unwrap().is_empty());
    let retry = claim_webhooks(&mut w.c, at(3)).unwrap();
    assert_eq!(retry.len(), 1, "after the backoff of 2 s");
    assert_eq!(retry[0].attempts, 1);
    assert_eq!(retry[0].last_error.as_deref(), Some("503"));
    record_webhook(&mut w.c, &retry[0], Ok(()), at(4)).unwrap();
    assert!(claim_webhooks(&mut w.c, at(10_000)).unwrap().is_empty());
}
