//! Number formatting with `core::fmt` into a `heapless::String` (what firmware logging and
//! AT commands do): per slice, a line of a decimal, a zero-padded hex, a right-aligned signed
//! 64-bit number, a signed decimal and a float with three decimals, then the integers parsed
//! back.
//!
//! Checks: every formatted integer parsed back to its value, and no line overflowed.

use crate::{fold, Failure, Workload, XorShift32};
use core::fmt::Write as _;
use heapless::String;

/// Formatting and parsing back.
pub struct FmtNumbers {
    rng: XorShift32,
    digest: u32,
    errors: u32,
}

impl FmtNumbers {
    /// A fresh workload.
    pub fn new() -> Self {
        Self { rng: XorShift32(0x5be0_cd19), digest: 0, errors: 0 }
    }
}

impl Default for FmtNumbers {
    fn default() -> Self {
        Self::new()
    }
}

impl Workload for FmtNumbers {
    const NAME: &'static str = "fmt";

    fn step(&mut self) {
        let a = self.rng.next_u32();
        let b = self.rng.next_u32();
        let big = (i64::from(a) << 20) - i64::from(b);
        let small = (b as i32) >> (a & 15);
        let f = (a >> 8) as f32 / 1024.0 - 4096.0;
        let mut line: String<96> = String::new();
        if write!(line, "{} {:08x} {:>16} {:+} {:.3}", a, b, big, small, f).is_err() {
            self.errors += 1;
            return;
        }
        let h = line.bytes().fold(line.len() as u32, |h, c| (h ^ u32::from(c)).wrapping_mul(0x0100_0193));
        self.digest = fold(self.digest, h);
        let mut parts = line.split_ascii_whitespace();
        let ok = parts.next().and_then(|s| s.parse::<u32>().ok()) == Some(a)
            && parts.next().and_then(|s| u32::from_str_radix(s, 16).ok()) == Some(b)
            && parts.next().and_then(|s| s.parse::<i64>().ok()) == Some(big)
            && parts.next().and_then(|s| s.parse::<i32>().ok()) == Some(small);
        if !ok {
            self.errors += 1;
        }
    }

    fn digest(&self) -> u32 {
        self.digest
    }

    fn check(&self) -> Result<(), Failure> {
        if self.errors != 0 {
            return Err(Failure("a formatted number did not parse back to its value"));
        }
        Ok(())
    }
}
