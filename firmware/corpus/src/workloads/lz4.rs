//! LZ4 block compression with `lz4_flex` (safe encoder and decoder, no_std, no allocator):
//! records of 128 bytes of generated text (words drawn from a small vocabulary, so they
//! compress as logs and JSON do), compressed in one slice and decompressed in the next.
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
    slices: u32,
    input: [u8; INPUT],
    packed: [u8; INPUT + INPUT / 2],
    packed_len: usize,
    digest: u32,
    errors: u32,
    input_total: u32,
    compressed_total: u32,
}

impl Lz4RoundTrip {
    /// A fresh workload.
    pub fn new() -> Self {
        Self {
            rng: XorShift32(0xa54f_f53a),
            slices: 0,
            input: [0; INPUT],
            packed: [0; INPUT + INPUT / 2],
            packed_len: 0,
            digest: 0,
            errors: 0,
            input_total: 0,
            compressed_total: 0,
        }
    }

    /// Generates a record of text and compresses it.
    fn compress(&mut self) {
        let mut n = 0;
        while n < INPUT {
            let word = WORDS[(self.rng.next_u32() >> 28) as usize];
            let take = word.len().min(INPUT - n);
            self.input[n..n + take].copy_from_slice(&word[..take]);
            n += take;
        }
        self.input_total += INPUT as u32;
        match lz4_flex::block::compress_into(&self.input, &mut self.packed) {
            Ok(len) => {
                self.packed_len = len;
                self.compressed_total += len as u32;
                self.digest = fold(self.digest, len as u32);
            }
            Err(_) => {
                self.packed_len = 0;
                self.errors += 1;
            }
        }
    }

    /// Decompresses the last record and compares it with its text.
    fn decompress(&mut self) {
        let mut unpacked = [0u8; INPUT];
        match lz4_flex::block::decompress_into(&self.packed[..self.packed_len], &mut unpacked) {
            Ok(m) if m == INPUT && unpacked == self.input => {}
            _ => self.errors += 1,
        }
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
        // Even slices compress a record, odd ones decompress and compare it.
        if self.slices.is_multiple_of(2) {
            self.compress();
        } else {
            self.decompress();
        }
        self.slices += 1;
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
