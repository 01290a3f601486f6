//! Helpers shared by the engine's integration tests.

/// xorshift64*: a seeded generator (no dependency needed), so every random test can print its
/// seed and be replayed with `TWINBED_SEED`.
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// 32 random bits.
    #[allow(dead_code)] // not every test binary uses every helper
    pub fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }

    /// A number in 0..n.
    #[allow(dead_code)]
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * u64::from(n)) >> 32) as u32
    }
}
