//! Serde encode/decode round trips with `postcard` (varint wire format, no allocator): per
//! slice, two telemetry records (integers of every width, a borrowed string, an enum with
//! data, an option, an array) are serialised into a buffer and deserialised back.
//!
//! Checks: every record decoded equal to the one encoded, and the encoded size stayed within
//! the buffer.

use crate::{fold, Failure, Workload, XorShift32};
use serde::{Deserialize, Serialize};

/// What a record reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Kind {
    Reading,
    Alarm(u16),
    Heartbeat { uptime_s: u32 },
}

/// A telemetry record as a device would send it.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
struct Record<'a> {
    seq: u32,
    device: &'a str,
    temperature_mc: i32,
    humidity: u16,
    flags: u8,
    kind: Kind,
    samples: [i16; 8],
    battery_mv: Option<u16>,
    ok: bool,
    at_ms: u64,
    ratio: f32,
}

const DEVICES: [&str; 4] = ["probe-001", "probe-002", "gateway-a", "meter"];

/// postcard round trips.
pub struct PostcardRoundTrip {
    rng: XorShift32,
    seq: u32,
    digest: u32,
    errors: u32,
}

impl PostcardRoundTrip {
    /// A fresh workload.
    pub fn new() -> Self {
        Self { rng: XorShift32(0x9b05_688c), seq: 0, digest: 0, errors: 0 }
    }

    fn record(&mut self) -> Record<'static> {
        let r = self.rng.next_u32();
        let s = self.rng.next_u32();
        self.seq += 1;
        Record {
            seq: self.seq,
            device: DEVICES[(r & 3) as usize],
            temperature_mc: (s as i32) >> 16,
            humidity: (r >> 4) as u16 % 1000,
            flags: (r >> 20) as u8,
            kind: match (r >> 28) % 3 {
                0 => Kind::Reading,
                1 => Kind::Alarm(s as u16),
                _ => Kind::Heartbeat { uptime_s: s >> (r & 31) },
            },
            samples: core::array::from_fn(|i| (s.rotate_left(i as u32 * 4) as i16) >> (i % 8)),
            battery_mv: if r & 0x100 != 0 { Some(3000 + (s % 700) as u16) } else { None },
            ok: r & 0x200 != 0,
            at_ms: u64::from(self.seq) * 1000 + u64::from(s % 1000),
            ratio: (s >> 8) as f32 / 16_777_216.0,
        }
    }
}

impl Default for PostcardRoundTrip {
    fn default() -> Self {
        Self::new()
    }
}

impl Workload for PostcardRoundTrip {
    const NAME: &'static str = "postcard";

    fn step(&mut self) {
        for _ in 0..2 {
            let record = self.record();
            let mut buf = [0u8; 96];
            match postcard::to_slice(&record, &mut buf) {
                Ok(bytes) => {
                    let h = bytes
                        .iter()
                        .fold(bytes.len() as u32, |h, &b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
                    self.digest = fold(self.digest, h);
                    match postcard::from_bytes::<Record>(bytes) {
                        Ok(back) if back == record => {}
                        _ => self.errors += 1,
                    }
                }
                Err(_) => self.errors += 1,
            }
        }
    }

    fn digest(&self) -> u32 {
        self.digest
    }

    fn check(&self) -> Result<(), Failure> {
        if self.errors != 0 {
            return Err(Failure("a record did not survive the round trip"));
        }
        Ok(())
    }
}
