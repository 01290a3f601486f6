//! JSON encoding of the device's messages, byte-exact per PROTOCOL.md §2: keys in the order
//! the protocol lists them, no spaces, integers only. Everything is written into a caller's
//! `&mut [u8]`; a buffer too small gives [`Error::BufferTooSmall`] (what was written is then
//! garbage). No `core::fmt`: integers are formatted by [`Writer`]'s own digit loop.
//!
//! ```text
//! up/telemetry  {"boot":B,"seq":S,"t":T,"first":R,"n":N,"min":x,"max":x,"mean":x}
//! up/event      {"boot":B,"seq":S,"t":T,"kind":"boot","slot":"a","version":"1.0.0"}
//!               {"boot":B,"seq":S,"t":T,"kind":"confirm"}          (and "revert")
//!               {"boot":B,"seq":S,"t":T,"kind":"dropped","from":S1,"to":S2,"readings":K}
//!               {"boot":B,"seq":S,"t":T,"kind":"desired_applied","version":V}
//! up/state      {"boot":B,"t":T,"reported":{"slot":"a","version":"1.0.0","interval_s":N,"buffered":N,"dropped":N}}
//! ```

use crate::record::{Body, Event, Record, Slot, Version};
use crate::Error;

/// A buffer of this many bytes holds any encoded [`Record`] (the longest, a telemetry record
/// with every number at its widest, is 140 bytes).
pub const MAX_RECORD_LEN: usize = 160;

/// The app's reported state, sent (retained, unbuffered, no seq) on `up/state`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reported {
    /// Slot the running image was booted from.
    pub slot: Slot,
    /// Running image version.
    pub version: Version,
    /// Sampling interval in force, seconds (the key the twin's desired state sets).
    pub interval_s: u32,
    /// Records in the outbox ([`Outbox::len`](crate::Outbox::len)).
    pub buffered: u32,
    /// Telemetry records dropped this boot
    /// ([`Outbox::dropped_records`](crate::Outbox::dropped_records)).
    pub dropped: u32,
    /// The battery, where the board has a fuel gauge (`battery_mv`, `battery_permille`).
    pub battery: Option<Battery>,
}

/// What the fuel gauge says of the battery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Battery {
    /// Voltage, mV.
    pub mv: u32,
    /// State of charge, ‰.
    pub permille: u32,
}

/// Which topic of a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TopicKind {
    /// `twinbed/<dev>/up/telemetry` (QoS 1, not retained).
    Telemetry,
    /// `twinbed/<dev>/up/event` (QoS 1, not retained).
    Event,
    /// `twinbed/<dev>/up/state` (QoS 1, retained).
    State,
    /// `twinbed/<dev>/down`: the twin's acks and desired state (subscribe to it).
    Down,
}

impl TopicKind {
    /// The topic's tail after `twinbed/<dev>/`.
    pub const fn suffix(self) -> &'static str {
        match self {
            TopicKind::Telemetry => "up/telemetry",
            TopicKind::Event => "up/event",
            TopicKind::State => "up/state",
            TopicKind::Down => "down",
        }
    }

    /// Whether the device publishes it retained (only `up/state`).
    pub const fn retain(self) -> bool {
        matches!(self, TopicKind::State)
    }
}

impl Record {
    /// The topic the record is published on.
    pub const fn topic_kind(&self) -> TopicKind {
        match self.body {
            Body::Telemetry(_) => TopicKind::Telemetry,
            Body::Event(_) | Body::Dropped(_) => TopicKind::Event,
        }
    }
}

/// A slot as the wire names it: `"a"` or `"b"`.
const fn slot_name(slot: Slot) -> &'static str {
    match slot {
        Slot::A => "a",
        Slot::B => "b",
    }
}

/// True for a device id the protocol allows: `[A-Za-z0-9_-]{1,32}`.
pub fn valid_device_id(dev: &str) -> bool {
    (1..=32).contains(&dev.len()) && dev.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Writes `twinbed/<dev>/<suffix>` into `buf`; returns it as a `&str`.
pub fn topic<'b>(dev: &str, kind: TopicKind, buf: &'b mut [u8]) -> Result<&'b str, Error> {
    if !valid_device_id(dev) {
        return Err(Error::InvalidDeviceId);
    }
    let mut w = Writer::new(buf);
    w.raw(b"twinbed/");
    w.raw(dev.as_bytes());
    w.raw(b"/");
    w.raw(kind.suffix().as_bytes());
    let n = w.finish()?;
    // Only ASCII was written.
    core::str::from_utf8(&buf[..n]).map_err(|_| Error::InvalidDeviceId)
}

/// Encodes a record (telemetry or event) into `buf`; returns the length.
pub fn encode_record(rec: &Record, buf: &mut [u8]) -> Result<usize, Error> {
    let mut w = Writer::new(buf);
    w.raw(b"{\"boot\":");
    w.u32(rec.boot);
    w.raw(b",\"seq\":");
    w.u32(rec.seq);
    w.raw(b",\"t\":");
    w.u32(rec.t);
    match rec.body {
        Body::Telemetry(a) => {
            w.raw(b",\"first\":");
            w.u32(a.first);
            w.raw(b",\"n\":");
            w.u32(a.n);
            w.raw(b",\"min\":");
            w.i32(a.min);
            w.raw(b",\"max\":");
            w.i32(a.max);
            w.raw(b",\"mean\":");
            w.i32(a.mean);
        }
        Body::Dropped(d) => {
            w.raw(b",\"kind\":\"dropped\",\"from\":");
            w.u32(d.from);
            w.raw(b",\"to\":");
            w.u32(d.to);
            w.raw(b",\"readings\":");
            w.u32(d.readings);
        }
        Body::Event(e) => {
            w.raw(b",\"kind\":\"");
            w.raw(e.kind().as_bytes());
            w.raw(b"\"");
            match e {
                Event::Boot { slot, version } => {
                    w.raw(b",\"slot\":\"");
                    w.raw(slot_name(slot).as_bytes());
                    w.raw(b"\",\"version\":");
                    w.version(version);
                }
                Event::DesiredApplied { version } => {
                    w.raw(b",\"version\":");
                    w.u64(version);
                }
                Event::Confirm | Event::Revert => {}
            }
        }
    }
    w.raw(b"}");
    w.finish()
}

/// Encodes the state message `{"boot":B,"t":T,"reported":{...}}` into `buf`; returns the
/// length.
pub fn encode_state(boot: u32, t: u32, reported: &Reported, buf: &mut [u8]) -> Result<usize, Error> {
    let mut w = Writer::new(buf);
    w.raw(b"{\"boot\":");
    w.u32(boot);
    w.raw(b",\"t\":");
    w.u32(t);
    w.raw(b",\"reported\":{\"slot\":\"");
    w.raw(slot_name(reported.slot).as_bytes());
    w.raw(b"\",\"version\":");
    w.version(reported.version);
    w.raw(b",\"interval_s\":");
    w.u32(reported.interval_s);
    w.raw(b",\"buffered\":");
    w.u32(reported.buffered);
    w.raw(b",\"dropped\":");
    w.u32(reported.dropped);
    if let Some(b) = reported.battery {
        w.raw(b",\"battery_mv\":");
        w.u32(b.mv);
        w.raw(b",\"battery_permille\":");
        w.u32(b.permille);
    }
    w.raw(b"}}");
    w.finish()
}

/// A bounded writer into a byte slice: appends until the slice is full, then only remembers
/// that it overflowed.
pub struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
    overflow: bool,
}

impl<'a> Writer<'a> {
    /// Writes from the start of `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0, overflow: false }
    }

    /// Appends bytes as they are.
    pub fn raw(&mut self, bytes: &[u8]) {
        match self.buf.get_mut(self.pos..self.pos + bytes.len()) {
            Some(dst) if !self.overflow => {
                dst.copy_from_slice(bytes);
                self.pos += bytes.len();
            }
            _ => self.overflow = true,
        }
    }

    /// Appends an unsigned decimal.
    pub fn u32(&mut self, mut v: u32) {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.raw(&digits[i..]);
    }

    /// Appends a signed decimal.
    pub fn i32(&mut self, v: i32) {
        if v < 0 {
            self.raw(b"-");
        }
        self.u32(v.unsigned_abs());
    }

    /// Appends an unsigned decimal (64-bit division only above `u32::MAX`).
    pub fn u64(&mut self, mut v: u64) {
        if let Ok(small) = u32::try_from(v) {
            return self.u32(small);
        }
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        while v != 0 {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        self.raw(&digits[i..]);
    }

    /// Appends a version as a JSON string: `"1.2.3"`, or `"1.2.3+4"` when the build is not 0.
    pub fn version(&mut self, v: Version) {
        self.raw(b"\"");
        self.u32(v.major.into());
        self.raw(b".");
        self.u32(v.minor.into());
        self.raw(b".");
        self.u32(v.revision.into());
        if v.build != 0 {
            self.raw(b"+");
            self.u32(v.build);
        }
        self.raw(b"\"");
    }

    /// The length written, or [`Error::BufferTooSmall`].
    pub fn finish(self) -> Result<usize, Error> {
        if self.overflow {
            Err(Error::BufferTooSmall)
        } else {
            Ok(self.pos)
        }
    }
}
