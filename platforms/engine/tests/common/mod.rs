//! Helpers shared by the engine's integration tests: a seeded generator, the test board, a
//! Thumb encoder ([`thumb`]) and random programs ([`programs`]).

// Not every test binary uses every helper.
#![allow(dead_code)]

pub mod programs;
pub mod thumb;

use twinbed_board::Board;

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
    pub fn u32(&mut self) -> u32 {
        (self.next() >> 32) as u32
    }

    /// A number in 0..n.
    pub fn below(&mut self, n: u32) -> u32 {
        (((self.next() >> 32) * u64::from(n)) >> 32) as u32
    }
}

/// The engine tests' board: a Cortex-M3 at 25 MHz with `code` = (base, size) of code memory,
/// `ram` = (base, size) of RAM, and `extra` board-file text after them (peripherals, or
/// nothing).
pub fn board_with(name: &str, code: (u32, u32), ram: (u32, u32), extra: &str) -> Board {
    let text = format!(
        "name = \"{name}\"\ncpu = \"cortex-m3\"\nclock_hz = 25000000\n\
         [[memory]]\nname = \"code\"\nbase = {}\nsize = {}\n\
         [[memory]]\nname = \"ram\"\nbase = {}\nsize = {}\n{extra}",
        code.0, code.1, ram.0, ram.1
    );
    Board::parse(&text, name).expect("the test board parses")
}

/// The usual test board: memory only, 64 KiB of code at 0 and 64 KiB of RAM at 0x2000_0000.
pub fn bare_board() -> Board {
    board_with("bare", (0, 0x1_0000), (0x2000_0000, 0x1_0000), "")
}
