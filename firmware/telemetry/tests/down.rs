//! Parsing the twin's down messages: good input, bad input, seeded garbage.

use telemetry::{parse_down, Desired, Down, Error, XorShift32};

fn ack(boot: u32, seq: u32) -> Result<Down, Error> {
    Ok(Down::Ack { boot, seq })
}

fn desired(version: u64, interval_s: Option<u32>) -> Result<Down, Error> {
    Ok(Down::Desired(Desired { version, interval_s }))
}

#[rustfmt::skip]
#[test]
fn good_messages() {
    let cases: &[(&str, Result<Down, Error>)] = &[
        (r#"{"type":"ack","boot":3,"seq":17}"#, ack(3, 17)),
        (r#"{"seq":17,"boot":3,"type":"ack"}"#, ack(3, 17)),
        (" \r\n\t{ \"type\" : \"ack\" , \"boot\" : 0 , \"seq\" : 4294967295 } \n", ack(0, u32::MAX)),
        // Unknown keys of every type are skipped, nested ones too.
        (r#"{"type":"ack","x":{"a":[1,2.5e-3,{"b":null}],"c":"}\"]"},"boot":1,"y":[],"z":{},"seq":2,"w":true,"v":false,"u":-0.0E+1}"#, ack(1, 2)),
        // The last of a repeated key counts.
        (r#"{"type":"ack","boot":1,"seq":2,"seq":3}"#, ack(1, 3)),
        // Escaped keys and type decode before comparison.
        (r#"{"typ\u0065":"\u0061ck","bo\/ot":1,"boot":2,"seq":3}"#, ack(2, 3)),
        (r#"{"type":"desired","version":5,"state":{"interval_s":30}}"#, desired(5, Some(30))),
        (r#"{"state":{"led":"on","interval_s":30,"nested":{"interval_s":"no"}},"version":18446744073709551615,"type":"desired"}"#,
            desired(u64::MAX, Some(30))),
        (r#"{"type":"desired","version":0,"state":{}}"#, desired(0, None)),
        (r#"{"type":"desired","version":1,"state":{"interval_s":null}}"#, desired(1, None)),
        // A desired message's unused seq is not looked at.
        (r#"{"type":"desired","version":1,"seq":"x","state":{}}"#, desired(1, None)),
    ];
    for (text, want) in cases {
        assert_eq!(parse_down(text.as_bytes()), *want, "{text}");
    }
}

#[rustfmt::skip]
#[test]
fn bad_messages() {
    use Error::*;
    let cases: &[(&str, Error)] = &[
        ("", Syntax { at: 0 }),
        ("   ", Syntax { at: 3 }),
        ("[]", Syntax { at: 0 }),
        ("null", Syntax { at: 0 }),
        ("{", Syntax { at: 1 }),
        (r#"{"type":"ack","boot":1,"seq":2"#, Syntax { at: 30 }),
        (r#"{"type":"ack","boot":1,"seq":2}}"#, Syntax { at: 31 }),
        (r#"{"type":"ack","boot":1,"seq":2} x"#, Syntax { at: 32 }),
        (r#"{"type":"ack","boot":1,"seq":2,}"#, Syntax { at: 31 }),
        (r#"{"type":"ack" "boot":1}"#, Syntax { at: 14 }),
        (r#"{type:"ack"}"#, Syntax { at: 1 }),
        (r#"{"type":'ack'}"#, Syntax { at: 8 }),
        (r#"{"type":"ack","boot":01,"seq":2}"#, Syntax { at: 22 }),
        (r#"{"type":"ack","boot":1.,"seq":2}"#, Syntax { at: 23 }),
        (r#"{"type":"ack","boot":+1,"seq":2}"#, Syntax { at: 21 }),
        (r#"{"type":"ack","x":[1,],"boot":1,"seq":2}"#, Syntax { at: 21 }),
        (r#"{"type":"ack","x":[1}"#, Syntax { at: 20 }),
        (r#"{"type":"ack","x":{"a"}}"#, Syntax { at: 22 }),
        (r#"{"type":"ack","x":tru}"#, Syntax { at: 18 }),
        (r#"{"type":"a\qck"}"#, Syntax { at: 11 }),
        (r#"{"type":"a\u12"}"#, Syntax { at: 12 }),
        ("{\"type\":\"a\ncк\"}", Syntax { at: 10 }),
        (r#"{"type":"ack","boot":1,"seq":2"#, Syntax { at: 30 }),
        (r#"{"boot":1,"seq":2}"#, MissingKey { key: "type" }),
        (r#"{"type":"ack","seq":2}"#, MissingKey { key: "boot" }),
        (r#"{"type":"ack","boot":2}"#, MissingKey { key: "seq" }),
        (r#"{"type":"desired","state":{}}"#, MissingKey { key: "version" }),
        (r#"{"type":"desired","version":1}"#, MissingKey { key: "state" }),
        (r#"{"type":"ack","boot":-1,"seq":2}"#, BadValue { key: "boot" }),
        (r#"{"type":"ack","boot":1,"seq":4294967296}"#, BadValue { key: "seq" }),
        (r#"{"type":"ack","boot":1,"seq":2.0}"#, BadValue { key: "seq" }),
        (r#"{"type":"ack","boot":1,"seq":2e3}"#, BadValue { key: "seq" }),
        (r#"{"type":"ack","boot":"1","seq":2}"#, BadValue { key: "boot" }),
        (r#"{"type":"ack","boot":null,"seq":2}"#, BadValue { key: "boot" }),
        (r#"{"type":1,"boot":1,"seq":2}"#, BadValue { key: "type" }),
        (r#"{"type":"desired","version":18446744073709551616,"state":{}}"#, BadValue { key: "version" }),
        (r#"{"type":"desired","version":1,"state":[]}"#, BadValue { key: "state" }),
        (r#"{"type":"desired","version":1,"state":{"interval_s":-5}}"#, BadValue { key: "interval_s" }),
        (r#"{"type":"desired","version":1,"state":{"interval_s":"60"}}"#, BadValue { key: "interval_s" }),
        (r#"{"type":"desired","version":1,"state":{"interval_s":4294967296}}"#, BadValue { key: "interval_s" }),
        (r#"{"type":"reboot"}"#, UnknownType),
        (r#"{"type":"Ack","boot":1,"seq":2}"#, UnknownType),
        (r#"{"type":"ack\u0000","boot":1,"seq":2}"#, UnknownType),
    ];
    for (text, want) in cases {
        assert_eq!(parse_down(text.as_bytes()), Err(*want), "{text}");
    }
}

#[test]
fn nesting_is_bounded() {
    // 64 non-empty arrays around an empty one.
    let ok = format!(r#"{{"type":"ack","x":{}{},"boot":1,"seq":2}}"#, "[".repeat(65), "]".repeat(65));
    assert_eq!(parse_down(ok.as_bytes()), ack(1, 2));
    let deep = format!(r#"{{"type":"ack","x":{}{},"boot":1,"seq":2}}"#, "[".repeat(66), "]".repeat(66));
    assert!(matches!(parse_down(deep.as_bytes()), Err(Error::Syntax { .. })));
    // Empty containers do not count toward the limit.
    let wide = format!(r#"{{"type":"ack","x":[{}[]],"boot":1,"seq":2}}"#, "[],".repeat(1000));
    assert_eq!(parse_down(wide.as_bytes()), ack(1, 2));
    // Very deep input is refused without recursion (no stack overflow).
    let huge = "[".repeat(100_000);
    assert!(parse_down(format!(r#"{{"type":"ack","x":{huge}"#).as_bytes()).is_err());
}

#[test]
fn seeded_garbage_never_panics() {
    let seeds: &[&[u8]] = &[
        br#"{"type":"ack","boot":3,"seq":17}"#,
        br#"{"type":"desired","version":5,"state":{"interval_s":30,"x":[1,{"y":"z\"\u0041"}]}}"#,
    ];
    let alphabet = b"{}[]:,\"\\ -+.eE0123456789tfnulrsaxyz\x00\xff\n";
    let mut rng = XorShift32::new(0xC0FFEE);
    let mut ok = 0;
    for round in 0..20_000 {
        let mut msg: Vec<u8> = seeds[round % seeds.len()].to_vec();
        // Mutations: flip, insert, delete, truncate; or pure random bytes.
        if round % 10 == 0 {
            msg =
                (0..rng.up_to(64)).map(|_| alphabet[rng.up_to(alphabet.len() as u32 - 1) as usize]).collect();
        } else {
            for _ in 0..=rng.up_to(4) {
                let len = msg.len() as u32;
                match rng.up_to(3) {
                    0 if len > 0 => {
                        let i = rng.up_to(len - 1) as usize;
                        msg[i] = alphabet[rng.up_to(alphabet.len() as u32 - 1) as usize];
                    }
                    1 => {
                        let i = rng.up_to(len) as usize;
                        msg.insert(i, rng.next_u32() as u8);
                    }
                    2 if len > 0 => {
                        msg.remove(rng.up_to(len - 1) as usize);
                    }
                    _ => msg.truncate(rng.up_to(len) as usize),
                }
            }
        }
        if parse_down(&msg).is_ok() {
            ok += 1;
        }
    }
    // Some mutations keep the message valid (e.g. a changed digit): the test saw both outcomes.
    assert!(ok > 100 && ok < 19_000, "{ok}");
}
