//! Fixed-point filters, the classic DSP kernels (ours): a 16-tap Q15 FIR low-pass (circular
//! delay line, 32-bit accumulator, saturation to i16) and a Q14 biquad IIR (direct form I),
//! over 16 samples per slice of a generated signal (two square waves plus noise).
//!
//! Checks: the FIR's impulse response is its taps; the biquad's output for a constant input
//! settles at the DC gain its coefficients give; the accumulators never overflowed i32.

use crate::{fold, Failure, Workload, XorShift32};

/// Low-pass taps in Q15 (a windowed sinc, symmetric, summing to about 1.0).
const TAPS: [i16; 16] =
    [-121, -266, -358, 0, 1214, 3241, 5478, 7036, 7036, 5478, 3241, 1214, 0, -358, -266, -121];
/// Biquad coefficients in Q14: b0, b1, b2, a1, a2 (y = b·x - a·y), a gentle low-pass.
const BIQUAD: [i32; 5] = [1024, 2048, 1024, -19_000, 7_000];
const SAMPLES: usize = 16;

/// A Q15 FIR with a circular delay line.
#[derive(Clone)]
struct Fir {
    delay: [i16; 16],
    at: usize,
    saturated: u32,
}

impl Fir {
    fn new() -> Self {
        Self { delay: [0; 16], at: 0, saturated: 0 }
    }

    fn push(&mut self, x: i16) -> i16 {
        self.delay[self.at] = x;
        let mut acc: i32 = 0;
        let mut j = self.at;
        for &h in &TAPS {
            acc += i32::from(h) * i32::from(self.delay[j]);
            j = if j == 0 { TAPS.len() - 1 } else { j - 1 };
        }
        self.at = (self.at + 1) % TAPS.len();
        let y = (acc + (1 << 14)) >> 15;
        if y > i32::from(i16::MAX) || y < i32::from(i16::MIN) {
            self.saturated += 1;
        }
        y.clamp(i32::from(i16::MIN), i32::from(i16::MAX)) as i16
    }
}

/// A Q14 biquad, direct form I.
#[derive(Clone)]
struct Biquad {
    x: [i32; 2],
    y: [i32; 2],
}

impl Biquad {
    fn new() -> Self {
        Self { x: [0; 2], y: [0; 2] }
    }

    fn push(&mut self, x: i16) -> i16 {
        let x = i32::from(x);
        let [b0, b1, b2, a1, a2] = BIQUAD;
        let acc = i64::from(b0 * x + b1 * self.x[0] + b2 * self.x[1])
            - i64::from(a1) * i64::from(self.y[0])
            - i64::from(a2) * i64::from(self.y[1]);
        let y = ((acc + (1 << 13)) >> 14).clamp(i64::from(i16::MIN), i64::from(i16::MAX)) as i32;
        self.x = [x, self.x[0]];
        self.y = [y, self.y[0]];
        y as i16
    }
}

/// The filter bank over a generated signal.
pub struct FirIir {
    rng: XorShift32,
    n: u32,
    fir: Fir,
    iir: Biquad,
    digest: u32,
}

impl FirIir {
    /// A fresh workload.
    pub fn new() -> Self {
        Self { rng: XorShift32(0x1f83_d9ab), n: 0, fir: Fir::new(), iir: Biquad::new(), digest: 0 }
    }
}

impl Default for FirIir {
    fn default() -> Self {
        Self::new()
    }
}

impl Workload for FirIir {
    const NAME: &'static str = "fir-iir";

    fn step(&mut self) {
        let mut sum = 0i32;
        for _ in 0..SAMPLES {
            let slow = if (self.n / 50).is_multiple_of(2) { 8000 } else { -8000 };
            let fast = if (self.n / 3).is_multiple_of(2) { 3000 } else { -3000 };
            let noise = (self.rng.next_u32() >> 22) as i32 - 512;
            self.n += 1;
            let x = (slow + fast + noise) as i16;
            let lp = self.fir.push(x);
            let y = self.iir.push(lp);
            sum = sum.wrapping_add(i32::from(y));
        }
        self.digest = fold(self.digest, sum as u32);
    }

    fn digest(&self) -> u32 {
        self.digest
    }

    fn check(&self) -> Result<(), Failure> {
        if self.fir.saturated != 0 {
            return Err(Failure("the FIR saturated on the test signal"));
        }
        // Impulse response: 0x7fff in, the taps (scaled by 32767/32768, rounded) out.
        let mut f = Fir::new();
        for (i, &h) in TAPS.iter().enumerate() {
            let y = f.push(if i == 0 { i16::MAX } else { 0 });
            if (i32::from(y) - i32::from(h)).abs() > 1 {
                return Err(Failure("the FIR's impulse response is not its taps"));
            }
        }
        // DC gain of the biquad: sum(b) / (1 + sum(a)) in Q14 = 4096 / 4384 ≈ 0.934.
        let mut q = Biquad::new();
        let mut y = 0;
        for _ in 0..400 {
            y = q.push(10_000);
        }
        if (i32::from(y) - 9_343).abs() > 3 {
            return Err(Failure("the biquad's DC gain is not sum(b) / (1 + sum(a))"));
        }
        Ok(())
    }
}
