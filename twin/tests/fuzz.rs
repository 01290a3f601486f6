//! Seeded fuzzing of the twin's input validation: thousands of malformed, oversized and
//! wrong-schema messages, each built with exactly one defect whose rejection reason is known,
//! go through [`Ingest`]; a few hundred of them go through the real broker and service. All
//! must be rejected and counted under the right reason, no shadow or history may change, and
//! the service must still answer.
//!
//! Replay a failure with the seed it prints: `TWIN_FUZZ_SEED=0x... cargo test -p twinbed-twin
//! --test fuzz`. `TWIN_FUZZ_CASES` changes the number of Ingest-level cases (default 5000).

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{json, Map, Value};
use twinbed_twin::{Ingest, Reason, SqliteStore, Store, Verdict};

/// The contract's SplitMix64 (the generator every test draws from), with the picks this test uses.
struct Rng(twinbed_contract::rng::SplitMix64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0.next_u64()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn word(&mut self) -> String {
        let len = 1 + self.below(8);
        (0..len).map(|_| (b'a' + self.below(26) as u8) as char).collect()
    }
}

fn seed() -> u64 {
    match std::env::var("TWIN_FUZZ_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("TWIN_FUZZ_SEED={s:?} is not a number"))
        }
        Err(_) => 0x7477_696e_6265_6421,
    }
}

/// One malformed message and the reason it must be rejected for.
#[derive(Debug, Clone)]
struct Case {
    topic: String,
    payload: Vec<u8>,
    reason: Reason,
    /// The topic matches `twinbed/+/up/#`, so the broker delivers it to the twin.
    via_broker: bool,
}

const DEV: &str = "dev-f";

/// A change to a message's JSON object.
type Mutation = dyn Fn(&mut Map<String, Value>);

#[derive(Clone, Copy)]
enum Kind {
    Telemetry,
    Event(&'static str),
    State,
}

fn suffix(kind: Kind) -> &'static str {
    match kind {
        Kind::Telemetry => "telemetry",
        Kind::Event(_) => "event",
        Kind::State => "state",
    }
}

/// A valid message of a kind, as a JSON object (the device's own values don't matter: the
/// defect added later makes it invalid).
fn valid(rng: &mut Rng, kind: Kind) -> Map<String, Value> {
    let boot = rng.below(1000) as u64;
    let seq = 10 + rng.below(1000) as u64;
    let v = match kind {
        Kind::Telemetry => json!({"boot":boot,"seq":seq,"t":rng.below(1 << 20),"first":rng.below(1000),
                                  "n":1 + rng.below(50),"min":-100,"max":100,"mean":rng.below(100)}),
        Kind::Event(k) => {
            let mut v = json!({"boot":boot,"seq":seq,"t":rng.below(1 << 20),"kind":k});
            let o = v.as_object_mut().unwrap();
            match k {
                "boot" => {
                    o.insert("slot".into(), json!(*rng.pick(&["a", "b"])));
                    o.insert(
                        "version".into(),
                        json!(format!("{}.{}.{}", rng.below(9), rng.below(9), rng.below(99))),
                    );
                }
                "dropped" => {
                    o.insert("from".into(), json!(1));
                    o.insert("to".into(), json!(seq - 1));
                    o.insert("readings".into(), json!(rng.below(500)));
                }
                "desired_applied" => {
                    o.insert("version".into(), json!(rng.below(100)));
                }
                _ => {}
            }
            v
        }
        Kind::State => {
            json!({"boot":boot,"t":rng.below(1000),"reported":{"interval_s":rng.below(100),"slot":"a"}})
        }
    };
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

const KINDS: [Kind; 7] = [
    Kind::Telemetry,
    Kind::Event("boot"),
    Kind::Event("confirm"),
    Kind::Event("revert"),
    Kind::Event("dropped"),
    Kind::Event("desired_applied"),
    Kind::State,
];

/// The integer fields of a kind and their (min, max).
fn int_fields(kind: Kind) -> Vec<(&'static str, i128, i128)> {
    let u32r = (0, u32::MAX as i128);
    let i32r = (i32::MIN as i128, i32::MAX as i128);
    let mut f = vec![("boot", u32r.0, u32r.1), ("t", u32r.0, u32r.1)];
    match kind {
        Kind::Telemetry => {
            f.push(("seq", u32r.0, u32r.1));
            f.extend([("first", u32r.0, u32r.1), ("n", u32r.0, u32r.1)]);
            f.extend([("min", i32r.0, i32r.1), ("max", i32r.0, i32r.1), ("mean", i32r.0, i32r.1)]);
        }
        Kind::Event(k) => {
            f.push(("seq", u32r.0, u32r.1));
            match k {
                "dropped" => {
                    f.extend([("from", u32r.0, u32r.1), ("to", u32r.0, u32r.1), ("readings", u32r.0, u32r.1)])
                }
                "desired_applied" => f.push(("version", 0, u64::MAX as i128)),
                _ => {}
            }
        }
        Kind::State => {}
    }
    f
}

fn up_topic(dev: &str, kind: Kind) -> String {
    format!("twinbed/{dev}/up/{}", suffix(kind))
}

/// Builds one case with exactly one defect.
fn malformed(rng: &mut Rng) -> Case {
    let kind = *rng.pick(&KINDS);
    let mut obj = valid(rng, kind);
    let topic = up_topic(DEV, kind);
    let case = |topic: String, payload: Vec<u8>, reason| Case { topic, payload, reason, via_broker: true };
    let bytes = |obj: &Map<String, Value>| serde_json::to_vec(obj).unwrap();
    match rng.below(15) {
        // A strict prefix of a valid payload is never complete JSON.
        0 => {
            let full = bytes(&obj);
            let cut = rng.below(full.len());
            case(topic, full[..cut].to_vec(), Reason::NotJson)
        }
        // Random bytes starting with a byte no JSON text can start with.
        1 => {
            let starts: Vec<u8> = (0u8..=255).filter(|b| !b" \t\r\n{[\"-0123456789tfn".contains(b)).collect();
            let mut p = vec![*rng.pick(&starts)];
            p.extend((0..rng.below(300)).map(|_| rng.next() as u8));
            case(topic, p, Reason::NotJson)
        }
        // JSON, not an object.
        2 => {
            let values =
                [json!(1), json!(-2.5), json!("text"), json!([1, 2]), json!(true), json!(null), json!([{}])];
            let v = rng.pick(&values);
            case(topic, serde_json::to_vec(v).unwrap(), Reason::NotObject)
        }
        // Over 1024 bytes (padding inside a string value, or whitespace).
        3 => {
            let target = 1025 + rng.below(3000);
            let mut p = bytes(&obj);
            if rng.below(2) == 0 {
                p.pop();
                p.extend_from_slice(b",\"pad\":\"");
                while p.len() < target - 2 {
                    p.push(b'x');
                }
                p.extend_from_slice(b"\"}");
            } else {
                while p.len() < target {
                    p.push(b' ');
                }
            }
            case(topic, p, Reason::Oversize)
        }
        // A required field missing.
        4 => {
            let keys: Vec<String> = obj.keys().cloned().collect();
            let key = rng.pick(&keys).clone();
            obj.remove(&key);
            case(topic, bytes(&obj), Reason::MissingField)
        }
        // A field the schema does not have.
        5 => {
            let name = format!("x_{}", rng.word());
            obj.insert(name, json!(rng.below(10)));
            case(topic, bytes(&obj), Reason::UnknownField)
        }
        // An integer field holding another type (or a float).
        6 => {
            let fields = int_fields(kind);
            let wrong = rng
                .pick(&[
                    json!("7"),
                    json!(true),
                    json!(null),
                    json!([1]),
                    json!({"a":1}),
                    json!(1.5),
                    json!(2.0),
                    json!(-0.25),
                ])
                .clone();
            if fields.is_empty() || rng.below(4) == 0 {
                match kind {
                    Kind::State => {
                        let bad = rng
                            .pick(&[
                                json!([]),
                                json!("x"),
                                json!(3),
                                json!({"interval_s": 0.5}),
                                json!({"a":{"b":[1, 2.5]}}),
                            ])
                            .clone();
                        obj.insert("reported".into(), bad);
                    }
                    Kind::Event(_) => {
                        obj.insert(
                            "kind".into(),
                            rng.pick(&[json!(1), json!(null), json!(["boot"])]).clone(),
                        );
                    }
                    Kind::Telemetry => {
                        obj.insert("mean".into(), wrong);
                    }
                }
            } else {
                let (name, _, _) = *rng.pick(&fields);
                obj.insert(name.into(), wrong);
            }
            case(topic, bytes(&obj), Reason::WrongType)
        }
        // An integer out of its field's range.
        7 => {
            let fields = int_fields(kind);
            let (name, lo, hi) = *rng.pick(&fields);
            let v: i128 = if lo == 0 || rng.below(2) == 0 {
                if hi >= u64::MAX as i128 {
                    // u64 fields: only negative values are out of range in JSON integers.
                    -1 - rng.below(1000) as i128
                } else if lo == 0 && rng.below(2) == 0 {
                    -1 - rng.below(1 << 20) as i128
                } else {
                    hi + 1 + rng.below(1 << 20) as i128
                }
            } else {
                lo - 1 - rng.below(1 << 20) as i128
            };
            // Splice the literal in (serde_json's Value cannot hold an i128).
            obj.insert(name.into(), json!(0));
            let text = serde_json::to_string(&obj).unwrap();
            let text = text.replacen(&format!("\"{name}\":0"), &format!("\"{name}\":{v}"), 1);
            case(topic, text.into_bytes(), Reason::OutOfRange)
        }
        // Well-typed but impossible values.
        8 => {
            let mut options: Vec<Box<Mutation>> = Vec::new();
            match kind {
                Kind::Telemetry => {
                    options.push(Box::new(|o| {
                        o.insert("seq".into(), json!(0));
                    }));
                    options.push(Box::new(|o| {
                        o.insert("n".into(), json!(0));
                    }));
                    options.push(Box::new(|o| {
                        o.insert("min".into(), json!(500));
                        o.insert("max".into(), json!(100));
                    }));
                    options.push(Box::new(|o| {
                        o.insert("mean".into(), json!(101));
                    }));
                    options.push(Box::new(|o| {
                        o.insert("first".into(), json!(u32::MAX));
                        o.insert("n".into(), json!(2));
                    }));
                }
                Kind::Event(k) => {
                    options.push(Box::new(|o| {
                        o.insert("seq".into(), json!(0));
                        if o["kind"] == "dropped" {
                            o.insert("to".into(), json!(0));
                        }
                    }));
                    match k {
                        "boot" => {
                            options.push(Box::new(|o| {
                                o.insert("slot".into(), json!("c"));
                            }));
                            options.push(Box::new(|o| {
                                o.insert("version".into(), json!("1.0"));
                            }));
                            options.push(Box::new(|o| {
                                o.insert("version".into(), json!("v1.0.0"));
                            }));
                        }
                        "dropped" => {
                            options.push(Box::new(|o| {
                                o.insert("from".into(), json!(0));
                            }));
                            options.push(Box::new(|o| {
                                let seq = o["seq"].as_u64().unwrap();
                                o.insert("to".into(), json!(seq));
                            }));
                            options.push(Box::new(|o| {
                                o.insert("from".into(), json!(5));
                                o.insert("to".into(), json!(4));
                            }));
                        }
                        _ => {}
                    }
                }
                Kind::State => {
                    // No impossible values in a state message: use an unknown event kind.
                    let topic = up_topic(DEV, Kind::Event("x"));
                    let p = json!({"boot":1,"seq":2,"t":3,"kind": format!("k_{}", rng.word())});
                    return case(topic, serde_json::to_vec(&p).unwrap(), Reason::UnknownKind);
                }
            }
            let i = rng.below(options.len());
            options[i](&mut obj);
            case(topic, bytes(&obj), Reason::InvalidValue)
        }
        // Topics the protocol does not have (some of them never reach the twin via MQTT).
        9 => {
            let p = bytes(&obj);
            match rng.below(5) {
                0 => case(format!("twinbed/{DEV}/up/{}", rng.word()), p, Reason::UnknownTopic),
                1 => case(format!("{}/{}", topic, rng.word()), p, Reason::UnknownTopic),
                2 => case(format!("twinbed/{DEV}/up"), p, Reason::UnknownTopic),
                3 => Case {
                    topic: format!("{}/{DEV}/up/telemetry", rng.word()),
                    payload: p,
                    reason: Reason::UnknownTopic,
                    via_broker: false,
                },
                _ => Case {
                    topic: format!("twinbed/{DEV}/down/{}", rng.word()),
                    payload: p,
                    reason: Reason::UnknownTopic,
                    via_broker: false,
                },
            }
        }
        // Device ids outside [A-Za-z0-9_-]{1,32}.
        10 => {
            let dev = match rng.below(4) {
                0 => "a".repeat(33 + rng.below(20)),
                1 => String::new(),
                2 => format!("{}{}", rng.word(), rng.pick(&["!", " ", ".", "é", "$", ":", "~", "*"])),
                _ => format!("dev{}x", rng.pick(&["%", "(", ")", "@", "=", "ü"])),
            };
            case(up_topic(&dev, kind), bytes(&obj), Reason::BadDeviceId)
        }
        // Event kinds the protocol does not list.
        11 => {
            let mut o = valid(rng, Kind::Event("confirm"));
            let k = rng.pick(&["Boot", "reboot", "", "crash", "dropped ", "confirm\u{0}"]).to_string();
            o.insert("kind".into(), json!(k));
            case(up_topic(DEV, Kind::Event("x")), bytes(&o), Reason::UnknownKind)
        }
        // Invalid UTF-8 inside a string.
        12 => {
            let mut p = bytes(&obj);
            p.pop();
            p.extend_from_slice(b",\"s\":\"");
            p.push(*rng.pick(&[0xff_u8, 0xc3, 0x80, 0xfe]));
            p.extend_from_slice(b"\"}");
            case(topic, p, Reason::NotJson)
        }
        // Nesting deeper than the JSON parser allows (still under 1024 bytes).
        13 => {
            let depth = 130 + rng.below(200);
            let p = format!(
                "{{\"boot\":1,\"t\":1,\"reported\":{{\"a\":{}{}}}}}",
                "[".repeat(depth),
                "]".repeat(depth)
            );
            case(up_topic(DEV, Kind::State), p.into_bytes(), Reason::NotJson)
        }
        // Trailing garbage after a valid object.
        _ => {
            let mut p = bytes(&obj);
            let tails: [&[u8]; 5] = [b" x", b"}", b",{}", b"\x00", b"{}"];
            let tail = *rng.pick(&tails);
            p.extend_from_slice(tail);
            case(topic, p, Reason::NotJson)
        }
    }
}

fn cases(seed: u64, n: usize) -> Vec<Case> {
    let mut rng = Rng(twinbed_contract::rng::SplitMix64::new(seed));
    (0..n).map(|_| malformed(&mut rng)).collect()
}

fn tally(cases: &[Case]) -> BTreeMap<&'static str, u64> {
    let mut t: BTreeMap<&'static str, u64> = Reason::ALL.iter().map(|r| (r.as_str(), 0)).collect();
    for c in cases {
        *t.get_mut(c.reason.as_str()).unwrap() += 1;
    }
    t
}

/// A database with one known device: a shadow with reported and desired, three records.
fn seeded_ingest() -> Ingest<SqliteStore> {
    let mut i = Ingest::new(SqliteStore::in_memory().unwrap());
    let state = br#"{"boot":1,"t":5,"reported":{"interval_s":10,"slot":"a"}}"#;
    i.handle(&format!("twinbed/{DEV}/up/state"), state).unwrap();
    i.set_desired(DEV, 1, &json!({"interval_s": 60})).unwrap();
    for seq in 1..=3 {
        let t = format!(r#"{{"boot":1,"seq":{seq},"t":0,"first":{seq},"n":1,"min":1,"max":1,"mean":1}}"#);
        i.handle(&format!("twinbed/{DEV}/up/telemetry"), t.as_bytes()).unwrap();
    }
    i
}

#[test]
fn thousands_of_malformed_messages_through_ingest() {
    let seed = seed();
    let n: usize = std::env::var("TWIN_FUZZ_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(5000);
    eprintln!("fuzz seed = {seed:#x}, {n} cases (replay: TWIN_FUZZ_SEED={seed:#x})");
    let cases = cases(seed, n);

    let mut ingest = seeded_ingest();
    let shadow = ingest.store().shadow(DEV).unwrap();
    let devices = ingest.store().devices().unwrap();
    let history = ingest.store().telemetry(DEV, &Default::default()).unwrap();
    let stats_before = ingest.store().stats().unwrap();
    assert_eq!(stats_before.rejected_total, 0);

    for (k, c) in cases.iter().enumerate() {
        let outcome = ingest.handle(&c.topic, &c.payload).unwrap();
        match &outcome.verdict {
            Verdict::Rejected(r) if r.reason == c.reason => {}
            other => panic!(
                "seed {seed:#x} case {k}: {:?} {:?}: expected rejection {}, got {other:?}",
                c.topic,
                String::from_utf8_lossy(&c.payload),
                c.reason
            ),
        }
        assert!(outcome.publish.is_empty(), "seed {seed:#x} case {k}: a rejection published something");
    }

    let stats = ingest.store().stats().unwrap();
    assert_eq!(stats.rejected, tally(&cases), "seed {seed:#x}");
    assert_eq!(stats.rejected_total, n as u64, "seed {seed:#x}");
    assert_eq!(stats.counters, stats_before.counters, "seed {seed:#x}: counters of accepted input moved");
    assert_eq!(ingest.store().shadow(DEV).unwrap(), shadow, "seed {seed:#x}: the shadow changed");
    assert_eq!(ingest.store().devices().unwrap(), devices, "seed {seed:#x}: devices changed");
    assert_eq!(ingest.store().telemetry(DEV, &Default::default()).unwrap(), history, "seed {seed:#x}");
    assert!(ingest.store().events(DEV, &Default::default()).unwrap().is_empty(), "seed {seed:#x}");
    // Every reason the generator knows was exercised.
    for reason in Reason::ALL.iter().filter(|r| **r != Reason::ShadowTooLarge) {
        assert!(stats.rejected[reason.as_str()] > 0, "seed {seed:#x}: no case for {reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_through_the_broker() {
    let seed = seed() ^ 0xB0_B0;
    eprintln!("fuzz seed (broker) = {seed:#x}");
    let cases: Vec<Case> = cases(seed, 600).into_iter().filter(|c| c.via_broker).take(300).collect();

    let twin = start_twin().await;
    let mut d = Device::connect(twin.broker(), DEV, true).await;
    d.send_state(1, 5, &reported(10, 0)).await;
    d.send_record(&tel(1, 1, 0, 1, 20_000)).await;
    wait_received(&twin, DEV, 2).await;
    assert_eq!(d.next_down().await, ack(1, 1));
    let (_, shadow_before) = http(&twin, "GET", &format!("/devices/{DEV}/shadow"), None).await;

    // Another client sends the garbage (a device id in a topic is not a client id).
    let fuzzer = Device::connect(twin.broker(), "fuzzer", true).await;
    for c in &cases {
        fuzzer.publish_raw(&c.topic, c.payload.clone()).await;
    }
    let n = cases.len() as u64;
    twin.traffic()
        .wait_until(WAIT, |t| t.totals().received >= n + 2)
        .await
        .unwrap_or_else(|e| panic!("seed {seed:#x}: {e}; {:?}", twin.traffic().snapshot().totals()));

    let (status, stats) = http(&twin, "GET", "/stats", None).await;
    assert_eq!(status, 200);
    assert_eq!(stats["rejected_total"], n, "seed {seed:#x}");
    let want = tally(&cases);
    for (reason, count) in &want {
        assert_eq!(stats["rejected"][reason], *count, "seed {seed:#x}: {reason}");
    }
    assert_eq!(stats["mqtt"]["published"], 1, "seed {seed:#x}: a rejection was answered");
    let (_, shadow_after) = http(&twin, "GET", &format!("/devices/{DEV}/shadow"), None).await;
    assert_eq!(shadow_after, shadow_before, "seed {seed:#x}");
    let (_, devices) = http(&twin, "GET", "/devices", None).await;
    assert_eq!(devices.as_array().unwrap().len(), 1, "seed {seed:#x}: {devices}");

    // Still working: the next record is stored and acked.
    d.send_record(&tel(1, 2, 1, 1, 20_000)).await;
    assert_eq!(d.next_down().await, ack(1, 2));
    fuzzer.disconnect().await;
    d.disconnect().await;
}
