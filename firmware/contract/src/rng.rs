//! The one seeded pseudo-random generator of twinbed's tests and fault models: SplitMix64
//! (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", OOPSLA 2014; the
//! constants of Vigna's `splitmix64.c`).
//!
//! Every random choice a test or a model makes (torn flash bits, fuzzed modem input, random
//! programs) is drawn from one of these, seeded, so a failure replays from its seed. It is
//! small and fast, not cryptographic.
//!
//! The engine's torn flash ([`crate::tear`]), abboot's test flash and the modem's fuzz test
//! draw from it; so can anything else that needs a seeded stream. `SplitMix64::new(x).next_u64()`
//! is also the usual "splitmix64 finaliser" of `x`, for deriving one seed from another.

/// SplitMix64: a 64-bit state advanced by the golden-ratio increment and mixed on output.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// The state increment: 2^64 / φ, odd.
    pub const GAMMA: u64 = 0x9e37_79b9_7f4a_7c15;

    /// A generator from `seed` (any value, 0 included).
    pub const fn new(seed: u64) -> SplitMix64 {
        SplitMix64(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(Self::GAMMA);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// The low 32 bits of the next draw.
    pub fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }

    /// The low byte of the next draw (one draw per byte).
    pub fn next_u8(&mut self) -> u8 {
        self.next_u64() as u8
    }

    /// The next draw modulo `n` (`n` > 0; slightly biased for `n` that do not divide 2^64,
    /// which tests do not mind).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_is_splitmix64() {
        // Vigna's splitmix64.c from seed 0, and a draw every copy in the tree has given.
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xe220_a839_7b1d_cdaf);
        assert_eq!(r.next_u64(), 0x6e78_9e6a_a1b9_65f4);
        assert_eq!(r.next_u64(), 0x06c4_5d18_8009_454f);
        let mut r = SplitMix64::new(7);
        let first = r.clone().next_u64();
        assert_eq!(r.next_u32(), first as u32);
    }
}
