//! The MQTT side of PROTOCOL.md §2: topics, the exact schema of each up message, the rejection
//! reasons, and the down messages.
//!
//! # Validation rules (what [`parse`] accepts)
//!
//! Checked in this order; the first failure is the message's [`Reason`]:
//!
//! 1. the topic is `twinbed/<dev>/up/{telemetry,event,state}` (4 levels exactly), else
//!    [`Reason::UnknownTopic`]; `<dev>` matches `[A-Za-z0-9_-]{1,32}`, else
//!    [`Reason::BadDeviceId`];
//! 2. the payload is at most [`MAX_PAYLOAD`] (1024) bytes, else [`Reason::Oversize`];
//! 3. it is UTF-8 JSON, else [`Reason::NotJson`], and a JSON object, else
//!    [`Reason::NotObject`];
//! 4. the schema of the topic, **exactly**: an unknown key is refused
//!    ([`Reason::UnknownField`]) rather than ignored, because the device and the twin are
//!    versioned together (PROTOCOL.md is changed first) and a silently ignored key hides a
//!    contract drift; a required key missing is [`Reason::MissingField`]; a number field that
//!    holds a non-number or a non-integer (`1.0`, `1e3`) is [`Reason::WrongType`]; an integer out
//!    of the field's range (a negative `seq`, a `boot` above `u32::MAX`) is
//!    [`Reason::OutOfRange`]; an event `kind` outside the list is [`Reason::UnknownKind`];
//! 5. values that are well-typed but impossible are [`Reason::InvalidValue`]: `seq` 0 (seqs
//!    start at 1), `n` 0, `min ≤ mean ≤ max` broken, `first + n` past the reading counter's
//!    range, a `dropped` range with `from` 0, `from > to` or `to ≥` its own seq, a `slot`
//!    other than `"a"`/`"b"`, a `version` string not `major.minor.revision[+build]`.
//!
//! Field ranges follow the device's types (the firmware's `telemetry` crate): `boot`, `seq`,
//! `t`, `first`, `n`, `from`, `to`, `readings` are `u32`; `min`, `max`, `mean` are `i32`
//! (milli-°C); `desired_applied`'s `version` is `u64`. The `state` message's `reported` is any
//! JSON object whose numbers are all integers (devices have no floats); a float anywhere in it
//! is [`Reason::WrongType`]. Duplicate keys in one object: the last one counts (serde_json).

use serde::Serialize;
use serde_json::{Map, Value};

use crate::shadow::Document;

/// The largest payload accepted, in bytes (PROTOCOL.md §2).
pub const MAX_PAYLOAD: usize = 1024;

/// Every topic starts with this.
pub const TOPIC_ROOT: &str = "twinbed";

/// The filter the twin subscribes to.
pub const UP_FILTER: &str = "twinbed/+/up/#";

/// Why an input was rejected. Each reason has its own counter (`GET /stats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Not `twinbed/<dev>/up/{telemetry,event,state}`.
    UnknownTopic,
    /// The `<dev>` level is not `[A-Za-z0-9_-]{1,32}`.
    BadDeviceId,
    /// More than [`MAX_PAYLOAD`] bytes.
    Oversize,
    /// Not UTF-8 JSON.
    NotJson,
    /// JSON, but not an object.
    NotObject,
    /// A required key is missing.
    MissingField,
    /// A key holds the wrong JSON type (a string for a number, a float for an integer, ...).
    WrongType,
    /// An integer outside its field's range.
    OutOfRange,
    /// A key the topic's schema does not have.
    UnknownField,
    /// An event `kind` the protocol does not list.
    UnknownKind,
    /// Well-typed but impossible values (see the module docs).
    InvalidValue,
    /// The merged `reported` document would exceed [`MAX_REPORTED`](crate::MAX_REPORTED)
    /// bytes.
    ShadowTooLarge,
}

impl Reason {
    /// Every reason, in a stable order.
    pub const ALL: [Reason; 12] = [
        Reason::UnknownTopic,
        Reason::BadDeviceId,
        Reason::Oversize,
        Reason::NotJson,
        Reason::NotObject,
        Reason::MissingField,
        Reason::WrongType,
        Reason::OutOfRange,
        Reason::UnknownField,
        Reason::UnknownKind,
        Reason::InvalidValue,
        Reason::ShadowTooLarge,
    ];

    /// The counter's name (`snake_case`, as in `GET /stats`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Reason::UnknownTopic => "unknown_topic",
            Reason::BadDeviceId => "bad_device_id",
            Reason::Oversize => "oversize",
            Reason::NotJson => "not_json",
            Reason::NotObject => "not_object",
            Reason::MissingField => "missing_field",
            Reason::WrongType => "wrong_type",
            Reason::OutOfRange => "out_of_range",
            Reason::UnknownField => "unknown_field",
            Reason::UnknownKind => "unknown_kind",
            Reason::InvalidValue => "invalid_value",
            Reason::ShadowTooLarge => "shadow_too_large",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected input: the reason and, for schema errors, the key concerned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The counter it goes to.
    pub reason: Reason,
    /// The key concerned, when there is one (`"seq"`, `"reported"`, ...).
    pub field: Option<String>,
}

impl Rejection {
    fn new(reason: Reason) -> Self {
        Rejection { reason, field: None }
    }

    fn at(reason: Reason, field: &str) -> Self {
        Rejection { reason, field: Some(field.to_owned()) }
    }
}

impl std::fmt::Display for Rejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.field {
            Some(field) => write!(f, "{} ({field})", self.reason),
            None => write!(f, "{}", self.reason),
        }
    }
}

/// Which up topic.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpTopic {
    /// `up/telemetry`.
    Telemetry,
    /// `up/event`.
    Event,
    /// `up/state`.
    State,
}

/// True for a device id the protocol allows: `[A-Za-z0-9_-]{1,32}`.
pub fn valid_device_id(dev: &str) -> bool {
    (1..=32).contains(&dev.len()) && dev.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The device level of a topic (`twinbed/<dev>/...`), whatever it holds, for per-device
/// traffic counters; `""` when the topic is not under `twinbed/`.
pub fn topic_device(topic: &str) -> &str {
    let mut levels = topic.split('/');
    match (levels.next(), levels.next()) {
        (Some(TOPIC_ROOT), Some(dev)) => dev,
        _ => "",
    }
}

/// Splits an up topic into device id and kind (rule 1 of the module docs).
pub fn parse_topic(topic: &str) -> Result<(&str, UpTopic), Rejection> {
    let levels: Vec<&str> = topic.split('/').collect();
    let [root, dev, up, kind] = levels[..] else {
        return Err(Rejection::new(Reason::UnknownTopic));
    };
    if root != TOPIC_ROOT || up != "up" {
        return Err(Rejection::new(Reason::UnknownTopic));
    }
    if !valid_device_id(dev) {
        return Err(Rejection::new(Reason::BadDeviceId));
    }
    let kind = match kind {
        "telemetry" => UpTopic::Telemetry,
        "event" => UpTopic::Event,
        "state" => UpTopic::State,
        _ => return Err(Rejection::new(Reason::UnknownTopic)),
    };
    Ok((dev, kind))
}

/// The down topic of a device: `twinbed/<dev>/down`.
pub fn down_topic(dev: &str) -> String {
    format!("{TOPIC_ROOT}/{dev}/down")
}

/// An aggregated telemetry record (`up/telemetry`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Telemetry {
    /// Boot id.
    pub boot: u32,
    /// Sequence number in the boot (from 1).
    pub seq: u32,
    /// Milliseconds since boot.
    pub t: u32,
    /// Number of the first reading covered.
    pub first: u32,
    /// Readings covered (≥ 1).
    pub n: u32,
    /// Lowest reading, milli-°C.
    pub min: i32,
    /// Highest reading, milli-°C.
    pub max: i32,
    /// Mean reading, milli-°C.
    pub mean: i32,
}

/// An A/B image slot: the contract's, the one the firmware reports. On the wire `"a"` / `"b"`
/// (written and parsed here).
pub use twinbed_contract::version::Slot;

/// What an event says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// `boot`: booted from `slot`, running `version`.
    Boot {
        /// The slot.
        slot: Slot,
        /// `major.minor.revision[+build]`.
        version: String,
    },
    /// `confirm`: the image confirmed itself.
    Confirm,
    /// `revert`: the bootloader reverted a trial image.
    Revert,
    /// `dropped`: records `from..=to`, holding `readings` readings, are gone for good.
    Dropped {
        /// First dropped seq.
        from: u32,
        /// Last dropped seq (inclusive).
        to: u32,
        /// Readings they held.
        readings: u32,
    },
    /// `desired_applied`: the desired state of this shadow version was applied.
    DesiredApplied {
        /// The version from the `desired` message.
        version: u64,
    },
}

impl EventKind {
    /// The `kind` string.
    pub const fn name(&self) -> &'static str {
        match self {
            EventKind::Boot { .. } => "boot",
            EventKind::Confirm => "confirm",
            EventKind::Revert => "revert",
            EventKind::Dropped { .. } => "dropped",
            EventKind::DesiredApplied { .. } => "desired_applied",
        }
    }

    /// The kind's own fields as a JSON object (what the `events` table's `body` holds).
    pub fn body(&self) -> Document {
        let mut body = Map::new();
        match self {
            EventKind::Boot { slot, version } => {
                let slot = match slot {
                    Slot::A => "a",
                    Slot::B => "b",
                };
                body.insert("slot".into(), slot.into());
                body.insert("version".into(), version.as_str().into());
            }
            EventKind::Confirm | EventKind::Revert => {}
            EventKind::Dropped { from, to, readings } => {
                body.insert("from".into(), (*from).into());
                body.insert("to".into(), (*to).into());
                body.insert("readings".into(), (*readings).into());
            }
            EventKind::DesiredApplied { version } => {
                body.insert("version".into(), (*version).into());
            }
        }
        body
    }
}

/// An event record (`up/event`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// Boot id.
    pub boot: u32,
    /// Sequence number in the boot (shared with telemetry).
    pub seq: u32,
    /// Milliseconds since boot.
    pub t: u32,
    /// The kind and its fields.
    pub kind: EventKind,
}

/// A state message (`up/state`).
#[derive(Clone, Debug, PartialEq)]
pub struct State {
    /// Boot id.
    pub boot: u32,
    /// Milliseconds since boot.
    pub t: u32,
    /// The reported document to merge.
    pub reported: Document,
}

/// A validated up message.
#[derive(Clone, Debug, PartialEq)]
pub enum Up {
    /// From `up/telemetry`.
    Telemetry(Telemetry),
    /// From `up/event`.
    Event(Event),
    /// From `up/state`.
    State(State),
}

/// Validates one message (see the module docs); returns the device id and the message.
pub fn parse<'t>(topic: &'t str, payload: &[u8]) -> Result<(&'t str, Up), Rejection> {
    let (dev, kind) = parse_topic(topic)?;
    if payload.len() > MAX_PAYLOAD {
        return Err(Rejection::new(Reason::Oversize));
    }
    let value: Value = serde_json::from_slice(payload).map_err(|_| Rejection::new(Reason::NotJson))?;
    let Value::Object(obj) = value else {
        return Err(Rejection::new(Reason::NotObject));
    };
    let up = match kind {
        UpTopic::Telemetry => Up::Telemetry(telemetry(&obj)?),
        UpTopic::Event => Up::Event(event(&obj)?),
        UpTopic::State => Up::State(state(obj)?),
    };
    Ok((dev, up))
}

const TELEMETRY_KEYS: [&str; 8] = ["boot", "seq", "t", "first", "n", "min", "max", "mean"];

fn telemetry(obj: &Document) -> Result<Telemetry, Rejection> {
    only_keys(obj, &TELEMETRY_KEYS)?;
    let rec = Telemetry {
        boot: u32_field(obj, "boot")?,
        seq: u32_field(obj, "seq")?,
        t: u32_field(obj, "t")?,
        first: u32_field(obj, "first")?,
        n: u32_field(obj, "n")?,
        min: i32_field(obj, "min")?,
        max: i32_field(obj, "max")?,
        mean: i32_field(obj, "mean")?,
    };
    if rec.seq == 0 {
        return Err(Rejection::at(Reason::InvalidValue, "seq"));
    }
    if rec.n == 0 {
        return Err(Rejection::at(Reason::InvalidValue, "n"));
    }
    if u64::from(rec.first) + u64::from(rec.n) > 1 << 32 {
        return Err(Rejection::at(Reason::InvalidValue, "first"));
    }
    if !(rec.min <= rec.mean && rec.mean <= rec.max) {
        return Err(Rejection::at(Reason::InvalidValue, "mean"));
    }
    Ok(rec)
}

fn event(obj: &Document) -> Result<Event, Rejection> {
    let kind = match obj.get("kind") {
        None => return Err(Rejection::at(Reason::MissingField, "kind")),
        Some(Value::String(s)) => s.as_str(),
        Some(_) => return Err(Rejection::at(Reason::WrongType, "kind")),
    };
    let own: &[&str] = match kind {
        "boot" => &["slot", "version"],
        "confirm" | "revert" => &[],
        "dropped" => &["from", "to", "readings"],
        "desired_applied" => &["version"],
        _ => return Err(Rejection::at(Reason::UnknownKind, "kind")),
    };
    let common = ["boot", "seq", "t", "kind"];
    if let Some(key) = obj.keys().find(|k| !common.contains(&k.as_str()) && !own.contains(&k.as_str())) {
        return Err(Rejection::at(Reason::UnknownField, key));
    }
    let boot = u32_field(obj, "boot")?;
    let seq = u32_field(obj, "seq")?;
    let t = u32_field(obj, "t")?;
    if seq == 0 {
        return Err(Rejection::at(Reason::InvalidValue, "seq"));
    }
    let kind = match kind {
        "boot" => {
            let slot = match str_field(obj, "slot")? {
                "a" => Slot::A,
                "b" => Slot::B,
                _ => return Err(Rejection::at(Reason::InvalidValue, "slot")),
            };
            let version = str_field(obj, "version")?;
            if !valid_version(version) {
                return Err(Rejection::at(Reason::InvalidValue, "version"));
            }
            EventKind::Boot { slot, version: version.to_owned() }
        }
        "confirm" => EventKind::Confirm,
        "revert" => EventKind::Revert,
        "dropped" => {
            let from = u32_field(obj, "from")?;
            let to = u32_field(obj, "to")?;
            let readings = u32_field(obj, "readings")?;
            if from == 0 {
                return Err(Rejection::at(Reason::InvalidValue, "from"));
            }
            if from > to || to >= seq {
                return Err(Rejection::at(Reason::InvalidValue, "to"));
            }
            EventKind::Dropped { from, to, readings }
        }
        _ => EventKind::DesiredApplied { version: u64_field(obj, "version")? },
    };
    Ok(Event { boot, seq, t, kind })
}

fn state(mut obj: Document) -> Result<State, Rejection> {
    only_keys(&obj, &["boot", "t", "reported"])?;
    let boot = u32_field(&obj, "boot")?;
    let t = u32_field(&obj, "t")?;
    let reported = match obj.remove("reported") {
        None => return Err(Rejection::at(Reason::MissingField, "reported")),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(Rejection::at(Reason::WrongType, "reported")),
    };
    if crate::shadow::first_non_integer_in(&reported).is_some() {
        return Err(Rejection::at(Reason::WrongType, "reported"));
    }
    Ok(State { boot, t, reported })
}

fn only_keys(obj: &Document, allowed: &[&str]) -> Result<(), Rejection> {
    match obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(key) => Err(Rejection::at(Reason::UnknownField, key)),
        None => Ok(()),
    }
}

/// An integer field: missing, not an integer, or out of `lo..=hi` are told apart.
fn int_field(obj: &Document, key: &str, lo: i128, hi: i128) -> Result<i128, Rejection> {
    let n = match obj.get(key) {
        None => return Err(Rejection::at(Reason::MissingField, key)),
        Some(Value::Number(n)) => n,
        Some(_) => return Err(Rejection::at(Reason::WrongType, key)),
    };
    let v = if let Some(u) = n.as_u64() {
        i128::from(u)
    } else if let Some(i) = n.as_i64() {
        i128::from(i)
    } else if n.as_f64().is_some_and(|f| f.fract() == 0.0 && f.abs() > 1e18) {
        // An integer literal too large for 64 bits arrives as a float: out of range, not a
        // float.
        return Err(Rejection::at(Reason::OutOfRange, key));
    } else {
        return Err(Rejection::at(Reason::WrongType, key));
    };
    if v < lo || v > hi {
        return Err(Rejection::at(Reason::OutOfRange, key));
    }
    Ok(v)
}

fn u32_field(obj: &Document, key: &str) -> Result<u32, Rejection> {
    let v = int_field(obj, key, 0, i128::from(u32::MAX))?;
    u32::try_from(v).map_err(|_| Rejection::at(Reason::OutOfRange, key))
}

fn i32_field(obj: &Document, key: &str) -> Result<i32, Rejection> {
    let v = int_field(obj, key, i128::from(i32::MIN), i128::from(i32::MAX))?;
    i32::try_from(v).map_err(|_| Rejection::at(Reason::OutOfRange, key))
}

fn u64_field(obj: &Document, key: &str) -> Result<u64, Rejection> {
    let v = int_field(obj, key, 0, i128::from(u64::MAX))?;
    u64::try_from(v).map_err(|_| Rejection::at(Reason::OutOfRange, key))
}

fn str_field<'a>(obj: &'a Document, key: &str) -> Result<&'a str, Rejection> {
    match obj.get(key) {
        None => Err(Rejection::at(Reason::MissingField, key)),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(Rejection::at(Reason::WrongType, key)),
    }
}

/// `major.minor.revision` with an optional `+build` (MCUboot's version: u8.u8.u16+u32), as the
/// firmware writes it.
pub fn valid_version(s: &str) -> bool {
    fn number(s: &str, max: u64) -> bool {
        !s.is_empty()
            && s.len() <= 10
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'))
            && s.parse::<u64>().is_ok_and(|v| v <= max)
    }
    let (core, build) = match s.split_once('+') {
        Some((core, build)) => (core, Some(build)),
        None => (s, None),
    };
    let parts: Vec<&str> = core.split('.').collect();
    let [major, minor, revision] = parts[..] else {
        return false;
    };
    number(major, 255)
        && number(minor, 255)
        && number(revision, 65535)
        && build.is_none_or(|b| number(b, u64::from(u32::MAX)))
}

/// A message from the twin to a device, on `twinbed/<dev>/down` (QoS 1).
#[derive(Clone, Debug, PartialEq)]
pub enum Down {
    /// `{"type":"ack","boot":B,"seq":S}`: every record of boot B with seq ≤ S is stored (or
    /// declared dropped).
    Ack {
        /// Boot id.
        boot: u32,
        /// The watermark.
        seq: u32,
    },
    /// `{"type":"desired","version":V,"state":{...}}`: the desired document and the shadow
    /// version it belongs to.
    Desired {
        /// Shadow version.
        version: u64,
        /// The whole desired document.
        state: Document,
    },
}

impl Down {
    /// The JSON payload, keys in the order PROTOCOL.md lists them.
    pub fn encode(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct Ack<'a> {
            r#type: &'a str,
            boot: u32,
            seq: u32,
        }
        #[derive(Serialize)]
        struct Desired<'a> {
            r#type: &'a str,
            version: u64,
            state: &'a Document,
        }
        let encoded = match self {
            Down::Ack { boot, seq } => serde_json::to_vec(&Ack { r#type: "ack", boot: *boot, seq: *seq }),
            Down::Desired { version, state } => {
                serde_json::to_vec(&Desired { r#type: "desired", version: *version, state })
            }
        };
        // Serialising plain structs of integers, strings and a JSON map cannot fail.
        encoded.unwrap_or_default()
    }
}

/// A down message addressed to a device.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    /// The device id.
    pub device: String,
    /// The message.
    pub message: Down,
}

impl Outgoing {
    /// `twinbed/<dev>/down`.
    pub fn topic(&self) -> String {
        down_topic(&self.device)
    }

    /// The payload bytes.
    pub fn payload(&self) -> Vec<u8> {
        self.message.encode()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(topic: &str, payload: &str) -> Reason {
        match parse(topic, payload.as_bytes()) {
            Ok(up) => panic!("accepted {payload}: {up:?}"),
            Err(r) => r.reason,
        }
    }

    const T: &str = "twinbed/dev-1/up/telemetry";
    const E: &str = "twinbed/dev-1/up/event";
    const S: &str = "twinbed/dev-1/up/state";

    #[test]
    fn accepts_the_protocol_examples() {
        let (dev, up) =
            parse(T, br#"{"boot":3,"seq":7,"t":1000,"first":10,"n":5,"min":-2000,"max":25000,"mean":21000}"#)
                .unwrap();
        assert_eq!(dev, "dev-1");
        assert_eq!(
            up,
            Up::Telemetry(Telemetry {
                boot: 3,
                seq: 7,
                t: 1000,
                first: 10,
                n: 5,
                min: -2000,
                max: 25000,
                mean: 21000
            })
        );
        let (_, up) =
            parse(E, br#"{"boot":1,"seq":1,"t":0,"kind":"boot","slot":"b","version":"1.2.3+4"}"#).unwrap();
        assert!(matches!(up, Up::Event(Event { kind: EventKind::Boot { slot: Slot::B, .. }, .. })));
        let (_, up) =
            parse(E, br#"{"boot":1,"seq":9,"t":0,"kind":"dropped","from":2,"to":5,"readings":40}"#).unwrap();
        assert!(matches!(
            up,
            Up::Event(Event { kind: EventKind::Dropped { from: 2, to: 5, readings: 40 }, .. })
        ));
        let (_, up) =
            parse(S, br#"{"boot":1,"t":5,"reported":{"slot":"a","interval_s":60,"x":{"y":[1]}}}"#).unwrap();
        assert!(matches!(up, Up::State(_)));
        for kind in ["confirm", "revert"] {
            let p = format!(r#"{{"boot":1,"seq":2,"t":3,"kind":"{kind}"}}"#);
            assert!(parse(E, p.as_bytes()).is_ok());
        }
        assert!(parse(
            E,
            br#"{"boot":1,"seq":2,"t":3,"kind":"desired_applied","version":18446744073709551615}"#
        )
        .is_ok());
    }

    #[test]
    fn topics() {
        assert_eq!(reason("twinbed/dev-1/up/other", "{}"), Reason::UnknownTopic);
        assert_eq!(reason("twinbed/dev-1/up", "{}"), Reason::UnknownTopic);
        assert_eq!(reason("twinbed/dev-1/up/telemetry/x", "{}"), Reason::UnknownTopic);
        assert_eq!(reason("other/dev-1/up/telemetry", "{}"), Reason::UnknownTopic);
        assert_eq!(reason("twinbed/dev 1/up/telemetry", "{}"), Reason::BadDeviceId);
        assert_eq!(reason("twinbed//up/telemetry", "{}"), Reason::BadDeviceId);
        assert_eq!(reason(&format!("twinbed/{}/up/state", "a".repeat(33)), "{}"), Reason::BadDeviceId);
        assert!(parse_topic(&format!("twinbed/{}/up/state", "a".repeat(32))).is_ok());
        assert_eq!(topic_device("twinbed/x y/up/foo"), "x y");
        assert_eq!(topic_device("elsewhere/x"), "");
    }

    #[test]
    fn payload_shape() {
        assert_eq!(reason(S, &" ".repeat(1025)), Reason::Oversize);
        assert_eq!(reason(S, "{"), Reason::NotJson);
        assert_eq!(reason(S, ""), Reason::NotJson);
        assert_eq!(reason(S, "[1]"), Reason::NotObject);
        assert_eq!(reason(S, "3"), Reason::NotObject);
        assert_eq!(parse(S, &[0xff, 0xfe]).unwrap_err().reason, Reason::NotJson);
    }

    #[test]
    fn telemetry_schema() {
        let ok = r#"{"boot":1,"seq":1,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1}"#;
        assert!(parse(T, ok.as_bytes()).is_ok());
        let cases = [
            (r#"{"boot":1,"seq":1,"t":0,"first":0,"n":1,"min":1,"max":1}"#, Reason::MissingField),
            (
                r#"{"boot":1,"seq":1,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1,"x":0}"#,
                Reason::UnknownField,
            ),
            (r#"{"boot":"1","seq":1,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1}"#, Reason::WrongType),
            (r#"{"boot":1.5,"seq":1,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1}"#, Reason::WrongType),
            (r#"{"boot":1.0,"seq":1,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1}"#, Reason::WrongType),
            (r#"{"boot":-1,"seq":1,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1}"#, Reason::OutOfRange),
            (
                r#"{"boot":4294967296,"seq":1,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1}"#,
                Reason::OutOfRange,
            ),
            (r#"{"boot":1e30,"seq":1,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1}"#, Reason::OutOfRange),
            (
                r#"{"boot":99999999999999999999999,"seq":1,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1}"#,
                Reason::OutOfRange,
            ),
            (
                r#"{"boot":1,"seq":1,"t":0,"first":0,"n":1,"min":2147483648,"max":1,"mean":1}"#,
                Reason::OutOfRange,
            ),
            (r#"{"boot":1,"seq":0,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1}"#, Reason::InvalidValue),
            (r#"{"boot":1,"seq":1,"t":0,"first":0,"n":0,"min":1,"max":1,"mean":1}"#, Reason::InvalidValue),
            (r#"{"boot":1,"seq":1,"t":0,"first":0,"n":1,"min":1,"max":0,"mean":1}"#, Reason::InvalidValue),
            (
                r#"{"boot":1,"seq":1,"t":0,"first":4294967295,"n":2,"min":1,"max":1,"mean":1}"#,
                Reason::InvalidValue,
            ),
            (r#"{"boot":null,"seq":1,"t":0,"first":0,"n":1,"min":1,"max":1,"mean":1}"#, Reason::WrongType),
        ];
        for (payload, want) in cases {
            assert_eq!(reason(T, payload), want, "{payload}");
        }
    }

    #[test]
    fn event_schema() {
        let cases = [
            (r#"{"boot":1,"seq":2,"t":0}"#, Reason::MissingField),
            (r#"{"boot":1,"seq":2,"t":0,"kind":3}"#, Reason::WrongType),
            (r#"{"boot":1,"seq":2,"t":0,"kind":"reboot"}"#, Reason::UnknownKind),
            (r#"{"boot":1,"seq":2,"t":0,"kind":"confirm","version":"1.0.0"}"#, Reason::UnknownField),
            (r#"{"boot":1,"seq":2,"t":0,"kind":"boot","slot":"c","version":"1.0.0"}"#, Reason::InvalidValue),
            (r#"{"boot":1,"seq":2,"t":0,"kind":"boot","slot":"a","version":"1.0"}"#, Reason::InvalidValue),
            (
                r#"{"boot":1,"seq":2,"t":0,"kind":"boot","slot":"a","version":"256.0.0"}"#,
                Reason::InvalidValue,
            ),
            (r#"{"boot":1,"seq":2,"t":0,"kind":"boot","slot":"a"}"#, Reason::MissingField),
            (
                r#"{"boot":1,"seq":5,"t":0,"kind":"dropped","from":0,"to":2,"readings":1}"#,
                Reason::InvalidValue,
            ),
            (
                r#"{"boot":1,"seq":5,"t":0,"kind":"dropped","from":3,"to":2,"readings":1}"#,
                Reason::InvalidValue,
            ),
            (
                r#"{"boot":1,"seq":5,"t":0,"kind":"dropped","from":3,"to":5,"readings":1}"#,
                Reason::InvalidValue,
            ),
            (r#"{"boot":1,"seq":5,"t":0,"kind":"dropped","from":3,"to":4}"#, Reason::MissingField),
            (r#"{"boot":1,"seq":5,"t":0,"kind":"desired_applied","version":-1}"#, Reason::OutOfRange),
            (r#"{"boot":1,"seq":0,"t":0,"kind":"confirm"}"#, Reason::InvalidValue),
        ];
        for (payload, want) in cases {
            assert_eq!(reason(E, payload), want, "{payload}");
        }
    }

    #[test]
    fn state_schema() {
        assert_eq!(reason(S, r#"{"boot":1,"t":0}"#), Reason::MissingField);
        assert_eq!(reason(S, r#"{"boot":1,"t":0,"reported":[]}"#), Reason::WrongType);
        assert_eq!(reason(S, r#"{"boot":1,"t":0,"reported":{"a":1.5}}"#), Reason::WrongType);
        assert_eq!(reason(S, r#"{"boot":1,"t":0,"reported":{},"seq":1}"#), Reason::UnknownField);
    }

    #[test]
    fn versions() {
        for ok in ["0.0.0", "1.2.3", "255.255.65535", "1.0.0+4294967295"] {
            assert!(valid_version(ok), "{ok}");
        }
        for bad in ["", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.3+", "1.2.3+x", "a.b.c", "1.2.65536"] {
            assert!(!valid_version(bad), "{bad}");
        }
    }

    #[test]
    fn down_messages_encode_in_protocol_order() {
        let ack = Down::Ack { boot: 2, seq: 9 };
        assert_eq!(ack.encode(), br#"{"type":"ack","boot":2,"seq":9}"#);
        let mut state = Document::new();
        state.insert("interval_s".into(), 60.into());
        let d = Down::Desired { version: 4, state };
        assert_eq!(d.encode(), br#"{"type":"desired","version":4,"state":{"interval_s":60}}"#);
    }
}
