//! Reconnect backoff: exponential, capped, with jitter from a seeded PRNG.

/// Marsaglia's xorshift32 (shifts 13, 17, 5): a tiny deterministic PRNG. Not for anything
/// secret. A seed of 0 (xorshift's fixed point) is replaced by a constant.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XorShift32 {
    state: u32,
}

impl XorShift32 {
    /// A generator from `seed` (e.g. the device id hashed with the boot id, so that a fleet
    /// does not reconnect in lockstep, yet every run of a scenario is the same).
    pub const fn new(seed: u32) -> Self {
        XorShift32 { state: if seed == 0 { 0x9E37_79B9 } else { seed } }
    }

    /// The next value (never 0).
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.state = x;
        x
    }

    /// A value in `0..=bound`, by multiply-and-shift (no division; the bias is below 2⁻³²·bound).
    pub fn up_to(&mut self, bound: u32) -> u32 {
        ((u64::from(self.next_u32()) * (u64::from(bound) + 1)) >> 32) as u32
    }
}

/// Exponential backoff with "equal jitter": the k-th delay after a reset (k = 0, 1, ...) is
/// drawn uniformly from `[c/2, c]` where `c = min(cap, base · 2^k)`. So delays grow from about
/// `base` to about `cap`, never fall below half the current step (no reconnect storm of
/// near-zero delays), and two devices with different seeds spread out. Milliseconds, integers.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    base_ms: u32,
    cap_ms: u32,
    attempt: u32,
    rng: XorShift32,
}

impl Backoff {
    /// Delays from `base_ms` (at least 1) up to `cap_ms` (at least `base_ms`); jitter from
    /// `seed`.
    pub const fn new(base_ms: u32, cap_ms: u32, seed: u32) -> Self {
        let base_ms = if base_ms == 0 { 1 } else { base_ms };
        let cap_ms = if cap_ms < base_ms { base_ms } else { cap_ms };
        Backoff { base_ms, cap_ms, attempt: 0, rng: XorShift32::new(seed) }
    }

    /// The current step `c = min(cap, base · 2^attempt)` (the upper bound of the next delay).
    pub fn ceiling(&self) -> u32 {
        let shifted = if self.attempt >= 32 { u64::MAX } else { u64::from(self.base_ms) << self.attempt };
        shifted.min(u64::from(self.cap_ms)) as u32
    }

    /// The next delay, in `[ceiling/2, ceiling]` (rounded up); then the step doubles.
    pub fn next_delay(&mut self) -> u32 {
        let c = self.ceiling();
        let half = c - c / 2;
        let d = half + self.rng.up_to(c - half);
        if self.attempt < 32 {
            self.attempt += 1;
        }
        d
    }

    /// Failed attempts since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// After a successful connection: the next delay is about `base` again. The PRNG goes on
    /// (it is not reseeded).
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}
