//! LZ4 block compression with `lz4_flex` (safe encoder and decoder, no_std, no allocator):
//! per slice, 128 bytes of generated text (words drawn from a small vocabulary, so it
//! compresses as logs and JSON do) are compressed and decompressed.
//!
//! Checks: every decompression gave the input back, and the stream compressed (the total
//! compressed size is below the total input size).

use crate::{fold, Failure, Workload, XorShift32};

const INPUT: usize = 128;
const WORDS: [&[u8]; 16] = [
    b"temperature",
    b"sensor",
    b"ok",
    b"value",
    b"\"id\":",
    b"status",
    b" ",
    b", ",
    b"\n",
    b"alarm",
    b"21.5",
    b"device",
    b"uplink",
    b"0",
    b"{",
    b"}",
];

/// LZ4 compress/decompress round trips.
pub struct Lz4RoundTrip {
    rng: XorShift32,
    digest: u32,
    errors: u32,
    input_total: u32,
    compressed_total: u32,
}

impl Lz4RoundTrip {
    /// A fresh workload.
    pub fn new() -> Self {
        Self { rng: XorShift32(0xa54f_f53a), digest: 0, errors: 0, input_total: 0, compressed_total: 0 }
    }
}

impl Default for Lz4RoundTrip {
    fn default() -> Self {
        Self::new()
    }
}

impl Workload for Lz4RoundTrip {
    const NAME: &'static str = "lz4";

    fn step(&mut self) {
        let mut input = [0u8; INPUT];
        let mut n = 0;
        while n < INPUT {
            let word = WORDS[(self.rng.next_u32() >> 28) as usize];
            let take = word.len().min(INPUT - n);
            input[n..n + take].copy_from_slice(&word[..take]);
            n += take;
        }
        let mut packed = [0u8; INPUT + INPUT / 2];
        let mut unpacked = [0u8; INPUT];
        match lz4_flex::block::compress_into(&input, &mut packed) {
            Ok(len) => {
                self.compressed_total += len as u32;
                self.digest = fold(self.digest, len as u32);
                match lz4_flex::block::decompress_into(&packed[..len], &mut unpacked) {
                    Ok(m) if m == INPUT && unpacked == input => {}
                    _ => self.errors += 1,
                }
            }
            Err(_) => self.errors += 1,
        }
        self.input_total += INPUT as u32;
    }

    fn digest(&self) -> u32 {
        fold(self.digest, self.compressed_total)
    }

    fn check(&self) -> Result<(), Failure> {
        if self.errors != 0 {
            return Err(Failure("a round trip failed (compress error, or the output differs)"));
        }
        if self.compressed_total >= self.input_total {
            return Err(Failure("the text did not compress"));
        }
        Ok(())
    }
}
