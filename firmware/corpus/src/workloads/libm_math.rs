//! Soft-float math with `libm` (the Cortex-M3 has no FPU: every operation is integer code
//! from compiler-builtins) at points sweeping [-8, 8), one family per slice in turn: `sin`
//! and `cos`; `exp` and `log`; `sqrt` and `atan2` (double precision); `sinf`, `cosf`, `expf`
//! and `sqrtf` (single precision).
//!
//! Checks: sin² + cos² = 1 (both precisions), log(exp(x)) = x and sqrt(x)² = x, each within
//! a few ulps' worth of tolerance, at every point.

use crate::{fold, Failure, Workload};

/// The libm sweep.
pub struct LibmMath {
    n: u32,
    digest: u32,
    errors: u32,
}

impl LibmMath {
    /// A fresh workload.
    pub fn new() -> Self {
        Self { n: 0, digest: 0, errors: 0 }
    }
}

impl Default for LibmMath {
    fn default() -> Self {
        Self::new()
    }
}

fn bits64(x: f64) -> u32 {
    let b = x.to_bits();
    (b ^ (b >> 32)) as u32
}

impl Workload for LibmMath {
    const NAME: &'static str = "libm-math";

    fn step(&mut self) {
        // 4096 points per period of the sweep, spaced 1/256 apart; each point takes four
        // slices, one family of functions each.
        let x = f64::from(((self.n / 4) % 4096) as i32 - 2048) / 256.0 + 1.0 / 1024.0;
        let phase = self.n % 4;
        self.n += 1;
        let (a, b) = match phase {
            0 => {
                let (s, c) = (libm::sin(x), libm::cos(x));
                if libm::fabs(s * s + c * c - 1.0) > 1e-14 {
                    self.errors += 1;
                }
                (bits64(s), bits64(c))
            }
            1 => {
                let e = libm::exp(x);
                if libm::fabs(libm::log(e) - x) > 1e-13 {
                    self.errors += 1;
                }
                (bits64(e), 0)
            }
            2 => {
                let ax = libm::fabs(x);
                let r = libm::sqrt(ax);
                if libm::fabs(r * r - ax) > 1e-14 * ax.max(1.0) {
                    self.errors += 1;
                }
                (bits64(r), bits64(libm::atan2(x, 1.5)))
            }
            _ => {
                let xf = x as f32;
                let (sf, cf) = (libm::sinf(xf), libm::cosf(xf));
                if libm::fabsf(sf * sf + cf * cf - 1.0) > 1e-6 {
                    self.errors += 1;
                }
                let rf = libm::sqrtf(libm::expf(xf / 2.0));
                (sf.to_bits() ^ cf.to_bits(), rf.to_bits())
            }
        };
        self.digest = fold(fold(self.digest, a), b);
    }

    fn digest(&self) -> u32 {
        self.digest
    }

    fn check(&self) -> Result<(), Failure> {
        if self.errors != 0 {
            return Err(Failure("an identity did not hold (sin²+cos², log∘exp, sqrt², sinf vs sin)"));
        }
        Ok(())
    }
}
