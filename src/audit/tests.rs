#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The audit trail's hash chain and signed checkpoints, in process on the fixture database:
//! what `verify` accepts, and which edit or deletion it names.

use super::*;
use crate::db::schema::{audit_checkpoints, audit_log as log};
use crate::testkit::{db, t0};
use chrono::Duration;
use diesel::prelude::*;

fn at(seconds: i64) -> NaiveDateTime {
    t0() + Duration::seconds(seconds)
}

fn master() -> MasterKey {
    MasterKey::from_bytes([1; 32])
}

/// Records `n` events, one a second from `start`, from two addresses.
fn trail(conn: &mut DbConn, n: i64, start: NaiveDateTime) {
    for i in 0..n {
        let meta = RequestMeta {
            ip: Some(format!("192.0.2.{}", i % 2 + 1)),
            user_agent: Some("agent".into()),
            request_id: Some(format!("req-{i}")),
        };
        let details = serde_json::json!({ "n": i });
        let ev = Event::new("sign_in", "success").user("u1").details(details);
        record(conn, &meta, start + Duration::seconds(i), ev).unwrap();
    }
}

fn entries(conn: &mut DbConn) -> Vec<Entry> {
    audit_log::page(conn, 0, 1000).unwrap()
}

fn set_details(conn: &mut DbConn, seq: i64, details: &str) {
    let n = diesel::update(log::table.find(seq))
        .set(log::details.eq(details))
        .execute(conn)
        .unwrap();
    assert_eq!(n, 1);
}

fn delete(conn: &mut DbConn, seq: i64) {
    let n = diesel::delete(log::table.find(seq)).execute(conn).unwrap();
    assert_eq!(n, 1);
}

fn broken(seq: i64, reason: &str) -> Verdict {
    Verdict::Broken {
        seq,
        reason: reason.into(),
    }
}

#[test]
fn the_chain_links_every_entry_to_the_previous_one_and_verifies() {
    let mut c = db();
    trail(&mut c, 5, t0());
    let all = entries(&mut c);
    assert_eq!(
        all.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3, 4, 5]
    );
    assert_eq!(all[0].prev_hash, GENESIS);
    for pair in all.windows(2) {
        assert_eq!(pair[1].prev_hash, pair[0].hash);
    }
    assert_eq!(all[4].ip.as_deref(), Some("192.0.2.1"));
    assert_eq!(all[4].request_id.as_deref(), Some("req-4"));
    assert_eq!(
        verify(&mut c, None).unwrap(),
        Verdict::Intact { entries: 5 }
    );
    assert_eq!(
        verify(&mut c, Some(&master())).unwrap(),
        Verdict::Intact { entries: 5 }
    );
}

#[test]
fn an_empty_trail_is_intact() {
    let mut c = db();
    assert_eq!(
        verify(&mut c, None).unwrap(),
        Verdict::Intact { entries: 0 }
    );
}

#[test]
fn changing_a_stored_rows_details_breaks_verification_at_that_row() {
    let mut c = db();
    trail(&mut c, 5, t0());
    set_details(&mut c, 3, r#"{"n":99}"#);
    assert_eq!(
        verify(&mut c, None).unwrap(),
        broken(3, "its content was changed")
    );
}

#[test]
fn a_row_changed_with_its_own_hash_recomputed_breaks_the_link_of_the_next() {
    let mut c = db();
    trail(&mut c, 5, t0());
    let mut third = entries(&mut c).remove(2);
    third.outcome = "failure".into();
    let rehashed = entry_hash(&third.prev_hash, &third);
    diesel::update(log::table.find(3))
        .set((log::outcome.eq("failure"), log::hash.eq(&rehashed)))
        .execute(&mut c)
        .unwrap();
    assert_eq!(
        verify(&mut c, None).unwrap(),
        broken(4, "its link to the previous entry does not match")
    );
}

#[test]
fn a_deleted_entry_in_the_middle_is_named() {
    let mut c = db();
    trail(&mut c, 5, t0());
    delete(&mut c, 3);
    assert_eq!(
        verify(&mut c, None).unwrap(),
        broken(4, "entry 3 is missing")
    );
}

#[test]
fn a_deleted_tail_is_detected_only_against_a_signed_checkpoint() {
    let mut c = db();
    trail(&mut c, 5, t0());
    assert_eq!(checkpoint(&mut c, &master(), at(10)).unwrap(), Some(5));
    delete(&mut c, 5);
    delete(&mut c, 4);
    assert_eq!(
        verify(&mut c, Some(&master())).unwrap(),
        broken(
            4,
            "entries 4 to 5 were deleted (a signed checkpoint names entry 5)"
        )
    );
    assert_eq!(
        verify(&mut c, None).unwrap(),
        Verdict::Intact { entries: 3 },
        "without the key the shortened chain still links up"
    );
}

#[test]
fn a_rewritten_chain_differs_from_its_signed_checkpoint() {
    let mut c = db();
    trail(&mut c, 4, t0());
    checkpoint(&mut c, &master(), at(10)).unwrap();
    // Someone with database access edits entry 2 and rehashes everything after it.
    let mut prev = GENESIS.to_string();
    for mut e in entries(&mut c) {
        if e.seq == 2 {
            e.details = r#"{"n":"edited"}"#.into();
        }
        e.prev_hash = prev.clone();
        e.hash = entry_hash(&prev, &e);
        diesel::update(log::table.find(e.seq))
            .set((
                log::details.eq(&e.details),
                log::prev_hash.eq(&e.prev_hash),
                log::hash.eq(&e.hash),
            ))
            .execute(&mut c)
            .unwrap();
        prev = e.hash;
    }
    assert_eq!(
        verify(&mut c, None).unwrap(),
        Verdict::Intact { entries: 4 }
    );
    assert_eq!(
        verify(&mut c, Some(&master())).unwrap(),
        broken(4, "it differs from its signed checkpoint")
    );
}

#[test]
fn a_forged_checkpoint_is_refused() {
    let mut c = db();
    trail(&mut c, 3, t0());
    checkpoint(&mut c, &master(), at(10)).unwrap();
    diesel::update(audit_checkpoints::table.find(3))
        .set(audit_checkpoints::mac.eq("00"))
        .execute(&mut c)
        .unwrap();
    assert_eq!(
        verify(&mut c, Some(&master())).unwrap(),
        broken(3, "its signed checkpoint was forged")
    );
}

#[test]
fn a_checkpoint_is_taken_only_when_there_is_a_newer_entry() {
    let mut c = db();
    let k = master();
    assert_eq!(checkpoint(&mut c, &k, t0()).unwrap(), None, "empty trail");
    trail(&mut c, 3, t0());
    assert_eq!(unanchored(&mut c, &k).unwrap(), 3);
    assert_eq!(checkpoint(&mut c, &k, at(5)).unwrap(), Some(3));
    assert_eq!(checkpoint(&mut c, &k, at(6)).unwrap(), None, "nothing new");
    trail(&mut c, 2, at(7));
    assert_eq!(unanchored(&mut c, &k).unwrap(), 2);
    let other = MasterKey::from_bytes([2; 32]);
    assert_eq!(
        unanchored(&mut c, &other).unwrap(),
        5,
        "checkpoints signed with another key anchor nothing"
    );
    assert_eq!(checkpoint(&mut c, &k, at(9)).unwrap(), Some(5));
    assert_eq!(unanchored(&mut c, &k).unwrap(), 0);
}

#[test]
fn pruning_keeps_the_rest_verifiable_from_the_checkpoint_it_stops_at() {
    let mut c = db();
    let k = master();
    assert_eq!(prune(&mut c, at(1000), 1_000).unwrap(), 0);
    trail(&mut c, 3, t0());
    checkpoint(&mut c, &k, at(10)).unwrap();
    trail(&mut c, 3, at(100));
    checkpoint(&mut c, &k, at(200)).unwrap();
    trail(&mut c, 2, at(300));
    assert_eq!(
        prune(&mut c, at(150), 1_000).unwrap(),
        3,
        "up to the checkpoint at 10 s"
    );
    assert_eq!(entries(&mut c)[0].seq, 4);
    assert_eq!(
        verify(&mut c, Some(&k)).unwrap(),
        Verdict::Intact { entries: 8 }
    );
    assert_eq!(
        verify(&mut c, None).unwrap(),
        broken(
            4,
            "entries before 4 are missing and no signed checkpoint anchors the rest"
        )
    );
}

#[test]
fn resigned_checkpoints_verify_under_the_new_key_only() {
    let mut c = db();
    let (old, new) = (master(), MasterKey::from_bytes([2; 32]));
    trail(&mut c, 3, t0());
    checkpoint(&mut c, &old, at(10)).unwrap();
    assert_eq!(resign_checkpoints(&mut c, &old, &new).unwrap(), 1);
    assert_eq!(unanchored(&mut c, &new).unwrap(), 0);
    assert_eq!(unanchored(&mut c, &old).unwrap(), 3);
    delete(&mut c, 3);
    assert_eq!(
        verify(&mut c, Some(&new)).unwrap(),
        broken(
            3,
            "entries 3 to 3 were deleted (a signed checkpoint names entry 3)"
        )
    );
    assert_eq!(
        resign_checkpoints(&mut c, &old, &new).unwrap(),
        0,
        "nothing is left under the old key"
    );
}

#[test]
fn a_recorded_time_keeps_microseconds_and_a_long_user_agent_is_cut() {
    let mut c = db();
    let now = t0() + Duration::nanoseconds(123_456_789);
    let meta = RequestMeta {
        ip: None,
        user_agent: Some("x".repeat(300)),
        request_id: None,
    };
    record(&mut c, &meta, now, Event::new("sign_in", "success")).unwrap();
    let e = entries(&mut c).remove(0);
    assert_eq!(e.at, t0() + Duration::microseconds(123_456));
    assert_eq!(e.user_agent.map(|u| u.len()), Some(256));
    assert_eq!(e.details, "{}");
    assert_eq!(
        verify(&mut c, None).unwrap(),
        Verdict::Intact { entries: 1 }
    );
}

#[test]
fn mask_shows_the_first_character_and_hides_the_length() {
    assert_eq!(mask("alice"), "a****");
    assert_eq!(mask("al"), "a****");
    assert_eq!(mask("a"), "a****");
    assert_eq!(mask("alexandria-the-great"), "a****");
    assert_eq!(mask("Émile"), "É****");
    assert_eq!(mask(""), "");
}

#[test]
fn mask_email_hides_the_local_part_and_keeps_the_domain() {
    assert_eq!(mask_email("alice@example.com"), "a****@example.com");
    assert_eq!(mask_email("a.b@c@example.com"), "a****@c@example.com");
    assert_eq!(mask_email("not-an-address"), "n****");
    assert_eq!(mask_email("@example.com"), "@example.com");
}
