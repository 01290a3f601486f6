//! Encoding: golden strings per PROTOCOL.md §2.

use telemetry::json::valid_device_id;
use telemetry::{
    encode_record, encode_state, topic, Aggregate, Body, DropRange, Error, Event, Record, Reported, Slot,
    TopicKind, Version, MAX_RECORD_LEN,
};

fn rec(seq: u32, t: u32, body: Body) -> Record {
    Record { boot: 3, seq, t, body }
}

fn enc(r: &Record) -> String {
    let mut buf = [0u8; MAX_RECORD_LEN];
    let n = encode_record(r, &mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

#[rustfmt::skip]
#[test]
fn records_golden() {
    let cases: &[(Record, &str)] = &[
        (rec(1, 1500, Body::Telemetry(Aggregate { first: 0, n: 10, min: -1250, max: 21500, mean: 20125 })),
         r#"{"boot":3,"seq":1,"t":1500,"first":0,"n":10,"min":-1250,"max":21500,"mean":20125}"#),
        (rec(2, 0, Body::Event(Event::Boot { slot: Slot::A, version: Version::new(1, 0, 0, 0) })),
         r#"{"boot":3,"seq":2,"t":0,"kind":"boot","slot":"a","version":"1.0.0"}"#),
        (rec(3, 7, Body::Event(Event::Boot { slot: Slot::B, version: Version::new(2, 10, 300, 4) })),
         r#"{"boot":3,"seq":3,"t":7,"kind":"boot","slot":"b","version":"2.10.300+4"}"#),
        (rec(4, 8, Body::Event(Event::Confirm)), r#"{"boot":3,"seq":4,"t":8,"kind":"confirm"}"#),
        (rec(5, 9, Body::Event(Event::Revert)), r#"{"boot":3,"seq":5,"t":9,"kind":"revert"}"#),
        (rec(6, 10, Body::Dropped(DropRange { from: 1, to: 4, readings: 40 })),
         r#"{"boot":3,"seq":6,"t":10,"kind":"dropped","from":1,"to":4,"readings":40}"#),
        (rec(7, 11, Body::Event(Event::DesiredApplied { version: 42 })),
         r#"{"boot":3,"seq":7,"t":11,"kind":"desired_applied","version":42}"#),
        (rec(8, 12, Body::Event(Event::DesiredApplied { version: u64::MAX })),
         r#"{"boot":3,"seq":8,"t":12,"kind":"desired_applied","version":18446744073709551615}"#),
        (rec(9, 13, Body::Telemetry(Aggregate { first: 9, n: 1, min: 0, max: 0, mean: 0 })),
         r#"{"boot":3,"seq":9,"t":13,"first":9,"n":1,"min":0,"max":0,"mean":0}"#),
    ];
    for (r, want) in cases {
        assert_eq!(enc(r), *want);
    }
}

#[test]
fn widest_records_fit_max_record_len() {
    let wide = Record {
        boot: u32::MAX,
        seq: u32::MAX,
        t: u32::MAX,
        body: Body::Telemetry(Aggregate {
            first: u32::MAX,
            n: u32::MAX,
            min: i32::MIN,
            max: i32::MIN,
            mean: i32::MIN,
        }),
    };
    let s = enc(&wide);
    assert_eq!(s.len(), 140);
    assert!(s.contains(r#""min":-2147483648"#));
    for body in [
        Body::Event(Event::Boot { slot: Slot::B, version: Version::new(255, 255, 65535, u32::MAX) }),
        Body::Event(Event::DesiredApplied { version: u64::MAX }),
        Body::Dropped(DropRange { from: u32::MAX, to: u32::MAX, readings: u32::MAX }),
    ] {
        assert!(enc(&Record { body, ..wide }).len() <= 140);
    }
}

#[test]
fn every_too_small_buffer_is_an_error_not_a_panic() {
    let r = rec(1, 2, Body::Telemetry(Aggregate { first: 0, n: 1, min: 5, max: 5, mean: 5 }));
    let full = enc(&r).len();
    for size in 0..full {
        let mut buf = vec![0u8; size];
        assert_eq!(encode_record(&r, &mut buf), Err(Error::BufferTooSmall), "{size}");
    }
    let mut buf = vec![0u8; full];
    assert_eq!(encode_record(&r, &mut buf), Ok(full));
}

#[test]
fn state_golden() {
    let reported = Reported {
        slot: Slot::B,
        version: Version::new(1, 2, 3, 0),
        interval_s: 60,
        buffered: 4,
        dropped: 0,
        battery: None,
    };
    let mut buf = [0u8; 256];
    let n = encode_state(3, 120_000, &reported, &mut buf).unwrap();
    assert_eq!(
        std::str::from_utf8(&buf[..n]).unwrap(),
        r#"{"boot":3,"t":120000,"reported":{"slot":"b","version":"1.2.3","interval_s":60,"buffered":4,"dropped":0}}"#
    );
    assert_eq!(encode_state(3, 120_000, &reported, &mut buf[..n - 1]), Err(Error::BufferTooSmall));
    let with_battery = Reported { battery: Some(telemetry::Battery { mv: 4012, permille: 874 }), ..reported };
    let n = encode_state(3, 120_000, &with_battery, &mut buf).unwrap();
    assert_eq!(
        std::str::from_utf8(&buf[..n]).unwrap(),
        r#"{"boot":3,"t":120000,"reported":{"slot":"b","version":"1.2.3","interval_s":60,"buffered":4,"dropped":0,"battery_mv":4012,"battery_permille":874}}"#
    );
}

#[test]
fn topics() {
    let mut buf = [0u8; 64];
    assert_eq!(topic("dev-1_A", TopicKind::Telemetry, &mut buf).unwrap(), "twinbed/dev-1_A/up/telemetry");
    assert_eq!(topic("d", TopicKind::Event, &mut buf).unwrap(), "twinbed/d/up/event");
    assert_eq!(topic("d", TopicKind::State, &mut buf).unwrap(), "twinbed/d/up/state");
    assert_eq!(topic("d", TopicKind::Down, &mut buf).unwrap(), "twinbed/d/down");
    let long = "x".repeat(32);
    assert_eq!(topic(&long, TopicKind::Telemetry, &mut buf).unwrap().len(), 8 + 32 + 13);
    assert_eq!(topic(&long, TopicKind::Telemetry, &mut buf[..52]), Err(Error::BufferTooSmall));
    for bad in ["", "a/b", "a b", "\"", "é", &"x".repeat(33), "+", "#"] {
        assert!(!valid_device_id(bad));
        assert_eq!(topic(bad, TopicKind::Down, &mut buf), Err(Error::InvalidDeviceId), "{bad:?}");
    }
    assert!(TopicKind::State.retain() && !TopicKind::Telemetry.retain() && !TopicKind::Event.retain());
    let t = rec(1, 1, Body::Telemetry(Aggregate::default()));
    assert_eq!(t.topic_kind(), TopicKind::Telemetry);
    assert_eq!(rec(1, 1, Body::Event(Event::Confirm)).topic_kind(), TopicKind::Event);
    assert_eq!(
        rec(1, 1, Body::Dropped(DropRange { from: 1, to: 1, readings: 1 })).topic_kind(),
        TopicKind::Event
    );
}
