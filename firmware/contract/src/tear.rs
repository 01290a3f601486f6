//! NOR flash tearing: what a program or an erase cut off by a power loss leaves in the cells.
//!
//! A NOR program only clears bits (1 -> 0) and an erase only sets them (0 -> 1); the charge
//! pump works on all the cells of an operation at once, so a cut half way leaves each bit that
//! was changing either changed or not, independently, and every other bit as it was. The
//! functions here draw that choice from a seed ([`SplitMix64`]), so the same seed tears the
//! same bytes, in the engine's flash controller model and in abboot's test flash alike.
//!
//! The draws, which fix the torn bytes of a seed (pinned by this module's tests):
//! - **program** ([`program`], [`program_words`]): one draw per 4-byte group of the programmed
//!   bytes, in address order; byte `i` of the group clears the bits it was clearing that are
//!   set in byte `i` of the draw's little-endian low word (a 32-bit word program: the bits
//!   `old & !value & draw as u32`). A shorter last group uses the first bytes of its draw.
//! - **erase** ([`erase`]): one draw per 8-byte group of the erased bytes, in address order;
//!   each byte gets the bits of the matching byte of the draw (little endian) set.
//!
//! Not modelled: bits that end *weak* (reading differently from one read to the next), and
//! cuts that disturb cells outside the operation.

use crate::rng::SplitMix64;

/// The bytes `mem` hold after a program of `data` (the same length) was cut: of the bits it
/// was clearing (1 in `mem`, 0 in `data`), a subset drawn from `seed` got cleared. A program
/// that would set bits sets none (NOR cannot).
///
/// # Panics
///
/// If `mem` and `data` differ in length (a bug in the caller).
pub fn program(mem: &mut [u8], data: &[u8], seed: u64) {
    assert_eq!(mem.len(), data.len(), "tear::program: {} bytes of flash, {} of data", mem.len(), data.len());
    let mut rng = SplitMix64::new(seed);
    for (m, d) in mem.chunks_mut(4).zip(data.chunks(4)) {
        let r = rng.next_u64().to_le_bytes();
        for ((m, &d), r) in m.iter_mut().zip(d).zip(r) {
            *m &= !(*m & !d & r);
        }
    }
}

/// [`program`] for a program of 32-bit words (each stored little endian): what a word program
/// (`words` of one) or a row program cut half way leaves in `mem` (4 bytes per word).
///
/// # Panics
///
/// If `mem` is not 4 bytes per word.
pub fn program_words(mem: &mut [u8], words: &[u32], seed: u64) {
    assert_eq!(
        mem.len(),
        4 * words.len(),
        "tear::program_words: {} bytes for {} words",
        mem.len(),
        words.len()
    );
    let mut rng = SplitMix64::new(seed);
    for (m, &w) in mem.chunks_exact_mut(4).zip(words) {
        let old = u32::from_le_bytes([m[0], m[1], m[2], m[3]]);
        let torn = old & !(old & !w & rng.next_u32());
        m.copy_from_slice(&torn.to_le_bytes());
    }
}

/// The bytes `mem` (the whole page or sector) hold after an erase was cut: of the bits it was
/// setting (the 0s), a subset drawn from `seed` got set.
pub fn erase(mem: &mut [u8], seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for chunk in mem.chunks_mut(8) {
        let r = rng.next_u64().to_le_bytes();
        for (b, r) in chunk.iter_mut().zip(r) {
            *b |= r;
        }
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use std::{format, string::String};

    // The expected bytes below are what the engine's flash controller model
    // (`platforms/engine/src/periph/nor_flash.rs`, `tear`) left for these seeds before this
    // module existed: the benchmark and sweep figures were made with them. Both sides are
    // checked against this table.

    const ROW: [u32; 4] = [0x5a5a_5a5a, 0x4b4b_4b4b, 0x7878_7878, 0x6969_6969];

    fn pinned(b: &[u8], want: &str) {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(hex, want, "torn bytes differ from the pinned ones");
    }

    #[test]
    fn a_torn_word_program_is_pinned() {
        for (seed, want) in [(1, "3ea3fd76"), (7, "28f2cda6"), (0xdead_beef, "64143697")] {
            let mut mem = [0xff; 4];
            program_words(&mut mem, &[0], seed);
            pinned(&mem, want);
            let mut bytes = [0xff; 4];
            program(&mut bytes, &[0; 4], seed);
            assert_eq!(bytes, mem, "seed {seed}: bytes and words tear alike");
        }
    }

    #[test]
    fn a_torn_row_program_is_pinned() {
        for (seed, want) in
            [(9, "dbdfdf5bdf5f5b7b797e7afbffffef69"), (42, "7adb5edaff4fdb4ffd78f8fc6b7dfdf9")]
        {
            let mut mem = [0xff; 16];
            program_words(&mut mem, &ROW, seed);
            pinned(&mem, want);
            let mut data = [0; 16];
            for (d, w) in data.chunks_exact_mut(4).zip(ROW) {
                d.copy_from_slice(&w.to_le_bytes());
            }
            let mut bytes = [0xff; 16];
            program(&mut bytes, &data, seed);
            assert_eq!(bytes, mem, "seed {seed}: bytes and words tear alike");
        }
    }

    #[test]
    fn a_torn_erase_is_pinned() {
        for (seed, want) in
            [(1, "c15c0289ec2d0a9167ec8e65a18debbe5e5532fb"), (3, "ed8f01dbe4140b1d89a9817b8a6f46b301dd50d0")]
        {
            let mut mem = [0; 20];
            erase(&mut mem, seed);
            pinned(&mem, want);
        }
        let mut mem = [0x00, 0x0f, 0xf0, 0xaa, 0x55, 0xff, 0x12, 0x34];
        erase(&mut mem, 0x5eed);
        pinned(&mem, "b4aff0abddfff33d");
    }

    #[test]
    fn tearing_only_moves_bits_the_way_the_operation_did() {
        let old = [0xff, 0x0f, 0xf0, 0xaa, 0x5a, 0x00, 0x77, 0x81, 0xc3];
        let data = [0x00, 0xff, 0x0f, 0x0a, 0x50, 0xff, 0x70, 0x01, 0x42];
        for seed in 0..64 {
            let mut mem = old;
            program(&mut mem, &data, seed);
            for i in 0..old.len() {
                assert_eq!(mem[i] & !old[i], 0, "seed {seed} byte {i}: a program set a bit");
                assert_eq!(
                    mem[i] & old[i] & data[i],
                    old[i] & data[i],
                    "seed {seed} byte {i}: a kept bit was cleared"
                );
            }
            let mut page = old;
            erase(&mut page, seed);
            for i in 0..old.len() {
                assert_eq!(page[i] & old[i], old[i], "seed {seed} byte {i}: an erase cleared a bit");
            }
        }
    }
}
