//! Unit tests of the protocol state: no sockets, an in-memory SQLite store.

use serde_json::{json, Value};

use super::*;
use crate::sqlite::SqliteStore;
use crate::store::HistoryQuery;

fn ingest() -> Ingest<SqliteStore> {
    Ingest::new(SqliteStore::in_memory().unwrap())
}

fn tel(dev: &str, boot: u32, seq: u32) -> (String, Vec<u8>) {
    (
        format!("twinbed/{dev}/up/telemetry"),
        format!(
            r#"{{"boot":{boot},"seq":{seq},"t":{},"first":{},"n":2,"min":-5,"max":7,"mean":1}}"#,
            seq * 100,
            seq * 2
        )
        .into_bytes(),
    )
}

fn ev(dev: &str, boot: u32, seq: u32, kind_fields: &str) -> (String, Vec<u8>) {
    (
        format!("twinbed/{dev}/up/event"),
        format!(r#"{{"boot":{boot},"seq":{seq},"t":5,{kind_fields}}}"#).into_bytes(),
    )
}

fn dropped(dev: &str, boot: u32, seq: u32, from: u32, to: u32) -> (String, Vec<u8>) {
    ev(dev, boot, seq, &format!(r#""kind":"dropped","from":{from},"to":{to},"readings":9"#))
}

fn state(dev: &str, reported: Value) -> (String, Vec<u8>) {
    (
        format!("twinbed/{dev}/up/state"),
        serde_json::to_vec(&json!({"boot":1,"t":9,"reported":reported})).unwrap(),
    )
}

fn send(i: &mut Ingest<SqliteStore>, msg: &(String, Vec<u8>)) -> Outcome {
    i.handle(&msg.0, &msg.1).unwrap()
}

/// The `(boot, seq)` of the acks an outcome publishes.
fn acks(o: &Outcome) -> Vec<(u32, u32)> {
    o.publish
        .iter()
        .filter_map(|out| match out.message {
            Down::Ack { boot, seq } => Some((boot, seq)),
            _ => None,
        })
        .collect()
}

fn desired_msgs(o: &Outcome) -> Vec<(u64, Value)> {
    o.publish
        .iter()
        .filter_map(|out| match &out.message {
            Down::Desired { version, state } => Some((*version, Value::Object(state.clone()))),
            _ => None,
        })
        .collect()
}

fn stored_seqs(i: &mut Ingest<SqliteStore>, dev: &str) -> Vec<(u32, u32)> {
    let q = HistoryQuery { limit: 100_000, ..HistoryQuery::default() };
    let mut v: Vec<(u32, u32)> =
        i.store().telemetry(dev, &q).unwrap().iter().map(|t| (t.boot, t.seq)).collect();
    v.extend(i.store().events(dev, &q).unwrap().iter().map(|e| (e.boot, e.seq)));
    v.sort();
    v
}

fn counter(i: &mut Ingest<SqliteStore>, name: &str) -> u64 {
    i.store().stats().unwrap().counters[name]
}

fn rejected(i: &mut Ingest<SqliteStore>, reason: Reason) -> u64 {
    i.store().stats().unwrap().rejected[reason.as_str()]
}

#[test]
fn in_order_records_are_stored_and_acked_one_by_one() {
    let mut i = ingest();
    for seq in 1..=3 {
        let o = send(&mut i, &tel("d", 1, seq));
        assert_eq!(o.verdict, Verdict::Stored { kind: RecordKind::Telemetry, boot: 1, seq });
        assert_eq!(acks(&o), [(1, seq)]);
        assert_eq!(o.publish[0].topic(), "twinbed/d/down");
        assert_eq!(o.publish[0].payload(), format!(r#"{{"type":"ack","boot":1,"seq":{seq}}}"#).into_bytes());
    }
    assert_eq!(stored_seqs(&mut i, "d"), [(1, 1), (1, 2), (1, 3)]);
    let t = &i.store().telemetry("d", &HistoryQuery::default()).unwrap()[1];
    assert_eq!((t.t, t.first, t.n, t.min, t.max, t.mean), (200, 4, 2, -5, 7, 1));
    assert_eq!(counter(&mut i, "stored_telemetry"), 3);
}

#[test]
fn duplicates_are_counted_not_stored_and_re_acked_at_or_below_the_watermark() {
    let mut i = ingest();
    send(&mut i, &tel("d", 1, 1));
    send(&mut i, &tel("d", 1, 2));
    for _ in 0..3 {
        let o = send(&mut i, &tel("d", 1, 1));
        assert_eq!(o.verdict, Verdict::Duplicate { kind: RecordKind::Telemetry, boot: 1, seq: 1 });
        // The current watermark, not the duplicate's seq.
        assert_eq!(acks(&o), [(1, 2)]);
    }
    assert_eq!(stored_seqs(&mut i, "d"), [(1, 1), (1, 2)]);
    assert_eq!(counter(&mut i, "duplicates"), 3);
    assert_eq!(counter(&mut i, "stored_telemetry"), 2);
    let dev = &i.store().devices().unwrap()[0];
    assert_eq!((dev.received, dev.duplicates), (5, 3));
}

#[test]
fn a_duplicate_above_a_hole_is_not_acked() {
    let mut i = ingest();
    send(&mut i, &tel("d", 1, 3));
    let o = send(&mut i, &tel("d", 1, 3));
    assert!(matches!(o.verdict, Verdict::Duplicate { .. }));
    assert!(o.publish.is_empty());
}

#[test]
fn telemetry_and_events_share_the_seq_space() {
    let mut i = ingest();
    send(&mut i, &tel("d", 1, 1));
    let o = send(&mut i, &ev("d", 1, 1, r#""kind":"confirm""#));
    assert_eq!(o.verdict, Verdict::Duplicate { kind: RecordKind::Event, boot: 1, seq: 1 });
    let o = send(&mut i, &ev("d", 1, 2, r#""kind":"confirm""#));
    assert_eq!(acks(&o), [(1, 2)]);
    let o = send(&mut i, &tel("d", 1, 2));
    assert_eq!(o.verdict, Verdict::Duplicate { kind: RecordKind::Telemetry, boot: 1, seq: 2 });
    assert_eq!(i.store().telemetry("d", &HistoryQuery::default()).unwrap().len(), 1);
    assert_eq!(i.store().events("d", &HistoryQuery::default()).unwrap().len(), 1);
}

#[test]
fn reordered_deliveries_ack_when_contiguous() {
    let mut i = ingest();
    assert!(send(&mut i, &tel("d", 1, 3)).publish.is_empty());
    assert!(send(&mut i, &tel("d", 1, 2)).publish.is_empty());
    assert_eq!(acks(&send(&mut i, &tel("d", 1, 1))), [(1, 3)]);
    assert_eq!(acks(&send(&mut i, &tel("d", 1, 4))), [(1, 4)]);
    assert_eq!(i.store().watermark("d", 1).unwrap(), 4);
}

#[test]
fn a_hole_filled_later_releases_everything_behind_it() {
    let mut i = ingest();
    for seq in [1, 2, 4, 5, 6, 8] {
        send(&mut i, &tel("d", 1, seq));
    }
    assert_eq!(i.store().watermark("d", 1).unwrap(), 2);
    assert_eq!(acks(&send(&mut i, &tel("d", 1, 3))), [(1, 6)]);
    assert_eq!(acks(&send(&mut i, &tel("d", 1, 7))), [(1, 8)]);
}

#[test]
fn dropped_event_covers_its_range() {
    let mut i = ingest();
    send(&mut i, &tel("d", 1, 1));
    send(&mut i, &tel("d", 1, 2));
    // 3..=5 were dropped by the device; the dropped event takes seq 6.
    let o = send(&mut i, &dropped("d", 1, 6, 3, 5));
    assert_eq!(o.verdict, Verdict::Stored { kind: RecordKind::Event, boot: 1, seq: 6 });
    assert_eq!(acks(&o), [(1, 6)]);
    let e = &i.store().events("d", &HistoryQuery::default()).unwrap()[0];
    assert_eq!(e.kind, "dropped");
    assert_eq!(Value::Object(e.body.clone()), json!({"from":3,"to":5,"readings":9}));
}

#[test]
fn dropped_event_arriving_before_the_records_around_it() {
    let mut i = ingest();
    // Dropped event (seq 5, range 2..=4) first, then 6, then 1: the watermark jumps to 6.
    assert!(send(&mut i, &dropped("d", 1, 5, 2, 4)).publish.is_empty());
    assert!(send(&mut i, &tel("d", 1, 6)).publish.is_empty());
    assert_eq!(acks(&send(&mut i, &tel("d", 1, 1))), [(1, 6)]);
}

#[test]
fn a_dropped_range_over_stored_records_and_a_late_record_inside_it() {
    let mut i = ingest();
    send(&mut i, &tel("d", 1, 1));
    send(&mut i, &tel("d", 1, 3)); // sent, then dropped before its ack came back
    assert_eq!(acks(&send(&mut i, &dropped("d", 1, 5, 2, 4))), [(1, 5)]);
    // A record inside the dropped range that did make it: stored (real data), no new ack.
    let o = send(&mut i, &tel("d", 1, 2));
    assert_eq!(o.verdict, Verdict::Stored { kind: RecordKind::Telemetry, boot: 1, seq: 2 });
    assert!(o.publish.is_empty());
    assert_eq!(i.store().watermark("d", 1).unwrap(), 5);
}

#[test]
fn overlapping_dropped_ranges() {
    let mut i = ingest();
    send(&mut i, &dropped("d", 1, 5, 1, 3));
    assert_eq!(i.store().watermark("d", 1).unwrap(), 3);
    send(&mut i, &dropped("d", 1, 9, 2, 8));
    assert_eq!(i.store().watermark("d", 1).unwrap(), 9);
}

#[test]
fn a_duplicate_dropped_event_does_not_change_anything() {
    let mut i = ingest();
    send(&mut i, &dropped("d", 1, 3, 1, 2));
    let o = send(&mut i, &dropped("d", 1, 3, 1, 2));
    assert!(matches!(o.verdict, Verdict::Duplicate { .. }));
    assert_eq!(acks(&o), [(1, 3)]);
}

#[test]
fn each_boot_has_its_own_watermark() {
    let mut i = ingest();
    send(&mut i, &tel("d", 7, 1));
    send(&mut i, &tel("d", 7, 2));
    // New boot: seq restarts at 1 and is not a duplicate of boot 7's seq 1.
    let o = send(&mut i, &tel("d", 8, 1));
    assert_eq!(o.verdict, Verdict::Stored { kind: RecordKind::Telemetry, boot: 8, seq: 1 });
    assert_eq!(acks(&o), [(8, 1)]);
    // A late record of the old boot is stored and acked under its boot.
    assert_eq!(acks(&send(&mut i, &tel("d", 7, 3))), [(7, 3)]);
    assert_eq!(stored_seqs(&mut i, "d"), [(7, 1), (7, 2), (7, 3), (8, 1)]);
    let w = i.store().watermarks("d").unwrap();
    assert_eq!(w.iter().map(|w| (w.boot, w.seq)).collect::<Vec<_>>(), [(7, 3), (8, 1)]);
    assert_eq!(i.store().devices().unwrap()[0].last_boot, Some(8));
}

#[test]
fn devices_are_independent() {
    let mut i = ingest();
    send(&mut i, &tel("a", 1, 1));
    let o = send(&mut i, &tel("b", 1, 1));
    assert!(matches!(o.verdict, Verdict::Stored { .. }));
    assert_eq!(o.publish[0].device, "b");
    assert_eq!(i.store().devices().unwrap().len(), 2);
}

#[test]
fn shuffled_delivery_with_duplicates_converges() {
    // A deterministic shuffle of 1..=200 with every 7th record delivered twice: in the end,
    // all stored once, watermark 200, the last ack says 200, acks only ever move forward.
    let mut i = ingest();
    let mut order: Vec<u32> = (1..=200).collect();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for k in (1..order.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        order.swap(k, (x % (k as u64 + 1)) as usize);
    }
    let mut deliveries = Vec::new();
    for (n, seq) in order.iter().enumerate() {
        deliveries.push(*seq);
        if n % 7 == 0 {
            deliveries.push(*seq);
        }
    }
    let mut last_ack = 0;
    for seq in &deliveries {
        for (_, s) in acks(&send(&mut i, &tel("d", 1, *seq))) {
            assert!(s >= last_ack, "ack went back from {last_ack} to {s}");
            last_ack = s;
        }
    }
    assert_eq!(last_ack, 200);
    assert_eq!(stored_seqs(&mut i, "d").len(), 200);
    assert_eq!(counter(&mut i, "duplicates"), (deliveries.len() - 200) as u64);
}

#[test]
fn state_merges_reported_and_sends_desired_only_when_they_differ() {
    let mut i = ingest();
    let o = send(&mut i, &state("d", json!({"slot":"a","interval_s":10})));
    assert_eq!(o.verdict, Verdict::State { version: 1, changed: true });
    assert!(o.publish.is_empty(), "no desired state yet");

    let d = i.set_desired("d", 1, &json!({"interval_s":60})).unwrap();
    assert!(d.changed);
    assert_eq!(d.shadow.version, 2);
    let out = d.publish.unwrap();
    assert_eq!(out.payload(), br#"{"type":"desired","version":2,"state":{"interval_s":60}}"#);

    // The device reports the old interval again: no change, but desired is re-sent.
    let o = send(&mut i, &state("d", json!({"interval_s":10})));
    assert_eq!(o.verdict, Verdict::State { version: 2, changed: false });
    assert_eq!(desired_msgs(&o), [(2, json!({"interval_s":60}))]);

    // The device applied it: version moves, nothing to send.
    let o = send(&mut i, &state("d", json!({"interval_s":60,"slot":null})));
    assert_eq!(o.verdict, Verdict::State { version: 3, changed: true });
    assert!(o.publish.is_empty());
    let sh = i.store().shadow("d").unwrap().unwrap();
    assert_eq!(Value::Object(sh.reported.clone()), json!({"interval_s":60}));
    assert!(sh.delta().is_empty());
    assert_eq!(counter(&mut i, "accepted_states"), 3);
}

#[test]
fn nested_delta_is_sent_as_the_whole_desired_document() {
    let mut i = ingest();
    send(&mut i, &state("d", json!({"cfg":{"a":1,"b":2}})));
    i.set_desired("d", 1, &json!({"cfg":{"b":3},"mode":"eco"})).unwrap();
    let o = send(&mut i, &state("d", json!({"cfg":{"b":3}})));
    let sh = i.store().shadow("d").unwrap().unwrap();
    assert_eq!(Value::Object(sh.delta()), json!({"mode":"eco"}));
    assert_eq!(desired_msgs(&o), [(3, json!({"cfg":{"b":3},"mode":"eco"}))]);
}

#[test]
fn stale_desired_write_is_refused_with_the_current_version() {
    let mut i = ingest();
    send(&mut i, &state("d", json!({"x":1})));
    send(&mut i, &state("d", json!({"x":2})));
    match i.set_desired("d", 1, &json!({"x":3})) {
        Err(Error::StaleVersion { device, expected, current }) => {
            assert_eq!((device.as_str(), expected, current), ("d", 1, 2));
        }
        other => panic!("expected a stale version error, got {other:?}"),
    }
    let sh = i.store().shadow("d").unwrap().unwrap();
    assert!(sh.desired.is_empty());
    assert_eq!(sh.version, 2);
    assert!(i.set_desired("d", 2, &json!({"x":3})).is_ok());
}

#[test]
fn desired_for_a_new_device_with_version_zero() {
    let mut i = ingest();
    assert!(matches!(i.set_desired("new", 1, &json!({"a":1})), Err(Error::StaleVersion { current: 0, .. })));
    let d = i.set_desired("new", 0, &json!({"a":1})).unwrap();
    assert_eq!(d.shadow.version, 1);
    assert!(i.store().device_exists("new").unwrap());
    // A first state from the device gets the desired state back.
    let o = send(&mut i, &state("new", json!({"a":0})));
    assert_eq!(desired_msgs(&o), [(2, json!({"a":1}))]);
}

#[test]
fn a_desired_write_that_changes_nothing_publishes_nothing() {
    let mut i = ingest();
    i.set_desired("d", 0, &json!({"a":1})).unwrap();
    let d = i.set_desired("d", 1, &json!({"a":1,"gone":null})).unwrap();
    assert!(!d.changed);
    assert!(d.publish.is_none());
    assert_eq!(d.shadow.version, 1);
}

#[test]
fn bad_desired_writes() {
    let mut i = ingest();
    assert!(matches!(i.set_desired("bad id", 0, &json!({})), Err(Error::InvalidDeviceId { .. })));
    assert!(matches!(
        i.set_desired("d", 0, &json!([1])),
        Err(Error::InvalidDesired { reason: DesiredProblem::NotAnObject })
    ));
    assert!(matches!(
        i.set_desired("d", 0, &json!({"a":{"b":0.5}})),
        Err(Error::InvalidDesired { reason: DesiredProblem::NotInteger { .. } })
    ));
    let big = "x".repeat(1100);
    assert!(matches!(
        i.set_desired("d", 0, &json!({"s": big})),
        Err(Error::InvalidDesired { reason: DesiredProblem::TooLarge { .. } })
    ));
    assert!(!i.store().device_exists("d").unwrap());
}

#[test]
fn rejections_are_counted_per_reason_and_change_nothing() {
    let mut i = ingest();
    send(&mut i, &state("d", json!({"keep":1})));
    send(&mut i, &tel("d", 1, 1));
    let before_shadow = i.store().shadow("d").unwrap();
    let before_devices = i.store().devices().unwrap();
    let cases: Vec<(&str, Vec<u8>, Reason)> = vec![
        ("twinbed/d/up/nope", b"{}".to_vec(), Reason::UnknownTopic),
        ("elsewhere", b"{}".to_vec(), Reason::UnknownTopic),
        ("twinbed/bad!/up/state", b"{}".to_vec(), Reason::BadDeviceId),
        ("twinbed/d/up/state", vec![b' '; 2000], Reason::Oversize),
        ("twinbed/d/up/state", b"{\"boot\":".to_vec(), Reason::NotJson),
        ("twinbed/d/up/state", b"[]".to_vec(), Reason::NotObject),
        ("twinbed/d/up/state", br#"{"boot":1,"t":2}"#.to_vec(), Reason::MissingField),
        ("twinbed/d/up/state", br#"{"boot":1,"t":2,"reported":{"keep":2.5}}"#.to_vec(), Reason::WrongType),
        (
            "twinbed/d/up/state",
            br#"{"boot":1,"t":2,"reported":{"keep":2},"x":1}"#.to_vec(),
            Reason::UnknownField,
        ),
        ("twinbed/d/up/event", br#"{"boot":1,"seq":2,"t":2,"kind":"explode"}"#.to_vec(), Reason::UnknownKind),
        (
            "twinbed/d/up/telemetry",
            br#"{"boot":1,"seq":0,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1}"#.to_vec(),
            Reason::InvalidValue,
        ),
        (
            "twinbed/d/up/telemetry",
            br#"{"boot":-1,"seq":2,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1}"#.to_vec(),
            Reason::OutOfRange,
        ),
    ];
    for (topic, payload, reason) in &cases {
        let o = i.handle(topic, payload).unwrap();
        match &o.verdict {
            Verdict::Rejected(r) => {
                assert_eq!(r.reason, *reason, "{topic} {}", String::from_utf8_lossy(payload))
            }
            other => panic!("{topic}: expected a rejection, got {other:?}"),
        }
        assert!(o.publish.is_empty());
    }
    let stats = i.store().stats().unwrap();
    assert_eq!(stats.rejected_total, cases.len() as u64);
    assert_eq!(stats.rejected["unknown_topic"], 2);
    for reason in Reason::ALL {
        let want = cases.iter().filter(|c| c.2 == reason).count() as u64;
        assert_eq!(rejected(&mut i, reason), want, "{reason}");
    }
    assert_eq!(i.store().shadow("d").unwrap(), before_shadow);
    assert_eq!(i.store().devices().unwrap(), before_devices);
    assert_eq!(stored_seqs(&mut i, "d"), [(1, 1)]);
}

#[test]
fn a_state_that_would_grow_the_shadow_too_much_is_rejected() {
    let mut i = ingest();
    let chunk = "y".repeat(900);
    let mut accepted = 0;
    let mut last = None;
    for k in 0..20 {
        let o = send(&mut i, &state("d", json!({ format!("k{k}"): chunk })));
        match o.verdict {
            Verdict::State { .. } => accepted += 1,
            Verdict::Rejected(r) => {
                assert_eq!(r.reason, Reason::ShadowTooLarge);
                last = Some(k);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(accepted >= 8 && last.is_some(), "accepted {accepted}");
    let sh = i.store().shadow("d").unwrap().unwrap();
    assert!(serde_json::to_vec(&sh.reported).unwrap().len() <= MAX_REPORTED);
    assert_eq!(sh.version, accepted);
    // Deleting keys is still possible.
    let o = send(&mut i, &state("d", json!({"k0": null})));
    assert!(matches!(o.verdict, Verdict::State { changed: true, .. }));
}

#[test]
fn a_batch_is_the_same_as_one_by_one() {
    let msgs = [
        tel("d", 1, 2),
        tel("d", 1, 1),
        tel("d", 1, 1),
        state("d", json!({"a":1})),
        (String::from("twinbed/d/up/telemetry"), b"nope".to_vec()),
        dropped("d", 1, 5, 3, 4),
    ];
    let mut one = ingest();
    let singles: Vec<Outcome> = msgs.iter().map(|m| send(&mut one, m)).collect();
    let mut batch = ingest();
    let batched = batch.handle_batch(msgs.iter().map(|(t, p)| (t.as_str(), p.as_slice()))).unwrap();
    assert_eq!(singles, batched);
    assert_eq!(one.store().stats().unwrap(), batch.store().stats().unwrap());
    assert_eq!(one.store().devices().unwrap(), batch.store().devices().unwrap());
}

#[test]
fn a_storage_failure_stores_nothing_of_the_batch() {
    let mut i = ingest();
    send(&mut i, &tel("d", 1, 1));
    i.store().raw_sql("DROP TABLE dropped").unwrap();
    let msgs = [tel("d", 1, 2), dropped("d", 1, 5, 3, 4)];
    let r = i.handle_batch(msgs.iter().map(|(t, p)| (t.as_str(), p.as_slice())));
    assert!(matches!(r, Err(StoreError::Sqlite(_))), "{r:?}");
    assert_eq!(stored_seqs(&mut i, "d"), [(1, 1)]);
    assert_eq!(i.store().watermark("d", 1).unwrap(), 1);
    assert_eq!(counter(&mut i, "stored_telemetry"), 1);
}
