//! The benchmark corpus: firmware we did not write. Each workload runs code from a published
//! crate (CRC, SHA-256, BLAKE2s, ChaCha20, LZ4, heapless, libm, postcard, `core::fmt`) or a
//! classic kernel (fixed-point filters, sorting and binary search) in slices of a few thousand
//! instructions, as a firmware team ships it (release, opt-level `s` or 3).
//!
//! A workload ([`Workload`]) does one slice per [`Workload::step`], keeps a running digest of
//! its results and checks itself ([`Workload::check`]: a round trip, a known answer, an
//! invariant). The bins (one per workload, a line each: [`corpus_main!`]) pick the workload;
//! the driver and the size are chosen at build time:
//!
//! - `TWINBED_CORPUS_MODE=cpu` (default): [`SLICES`] slices back to back, no interrupts;
//! - `TWINBED_CORPUS_MODE=duty`: CMSDK APB timer 0 wakes the core once per second of virtual
//!   time and each wake runs one slice, WFI in between ([`duty`]);
//! - `TWINBED_CORPUS_SCALE=quick|full|tiny`: 8,640, 86,400 (24 h in duty mode) or 1,000
//!   slices.
//!
//! Output: `corpus <name> (<mode>, <slices> slices)`, then `<name>: <slices> slices, digest
//! 0x<hex>` and `<name>: check ok`, then exit 0 through semihosting; a failed check prints
//! `<name>: check FAILED: <why>` and exits 1. Only counts and digests are printed, never a
//! time, so every engine prints the same bytes.
#![no_std]

pub mod duty;
pub mod workloads;

use cortex_m_semihosting::debug;
use twinbed_bsp::println;
use twinbed_bsp::testbed::same_str;

/// A benchmark workload: state advanced a slice at a time.
pub trait Workload {
    /// The name printed (the bin's name).
    const NAME: &'static str;
    /// Does one slice of work (a few thousand instructions).
    fn step(&mut self);
    /// The running digest of every slice so far.
    fn digest(&self) -> u32;
    /// The workload's own check (known answers, round trips, invariants), after the run.
    fn check(&self) -> Result<(), Failure>;
}

/// Why a workload's check failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failure(pub &'static str);

/// How the slices are driven (`TWINBED_CORPUS_MODE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Back to back, no interrupts.
    Cpu,
    /// One per timer wake, once per second of virtual time.
    Duty,
}

/// The driver, from `TWINBED_CORPUS_MODE` at build time (`cpu` by default).
pub const MODE: Mode = match option_env!("TWINBED_CORPUS_MODE") {
    None => Mode::Cpu,
    Some(s) if same_str(s, "cpu") => Mode::Cpu,
    Some(s) if same_str(s, "duty") => Mode::Duty,
    Some(_) => panic!("TWINBED_CORPUS_MODE must be cpu or duty"),
};

/// Slices to run, from `TWINBED_CORPUS_SCALE` at build time: quick (default) 8,640, full
/// 86,400 (a day of wakes in duty mode), tiny 1,000.
pub const SLICES: u32 = match option_env!("TWINBED_CORPUS_SCALE") {
    None => 8_640,
    Some(s) if same_str(s, "quick") => 8_640,
    Some(s) if same_str(s, "full") => 86_400,
    Some(s) if same_str(s, "tiny") => 1_000,
    Some(_) => panic!("TWINBED_CORPUS_SCALE must be quick, full or tiny"),
};

/// Marsaglia's xorshift32 (2003, shifts 13/17/5): the workloads' deterministic input data.
#[derive(Clone, Copy, Debug)]
pub struct XorShift32(pub u32);

impl XorShift32 {
    /// The next value.
    #[inline]
    pub fn next_u32(&mut self) -> u32 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.0 = x;
        x
    }

    /// Fills `buf` with the next values, little-endian.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(4) {
            let w = self.next_u32().to_le_bytes();
            chunk.copy_from_slice(&w[..chunk.len()]);
        }
    }
}

/// Folds `value` into a running digest (rotate and xor, then an odd multiply).
#[inline]
pub fn fold(digest: u32, value: u32) -> u32 {
    (digest.rotate_left(5) ^ value).wrapping_mul(0x9e37_79b1)
}

/// The first four bytes of `bytes` as a big-endian number (how a hash's digest is printed
/// short).
pub fn be32(bytes: &[u8]) -> u32 {
    let mut w = [0u8; 4];
    let n = bytes.len().min(4);
    w[..n].copy_from_slice(&bytes[..n]);
    u32::from_be_bytes(w)
}

/// Runs `workload` with the build's driver and size, prints its digest and check, and exits
/// (0 if the check passed). Called by [`corpus_main!`].
pub fn run<W: Workload>(mut workload: W) -> ! {
    twinbed_bsp::uart::Uart::console().enable_tx();
    let mode = match MODE {
        Mode::Cpu => "cpu",
        Mode::Duty => "duty, a wake per second",
    };
    println!("corpus {} ({}, {} slices)", W::NAME, mode, SLICES);
    match MODE {
        Mode::Cpu => {
            for _ in 0..SLICES {
                workload.step();
            }
            finish(&workload)
        }
        Mode::Duty => duty::run(workload),
    }
}

/// Prints the digest and the check's verdict, then exits.
pub fn finish<W: Workload>(workload: &W) -> ! {
    println!("{}: {} slices, digest 0x{:08x}", W::NAME, SLICES, workload.digest());
    match workload.check() {
        Ok(()) => {
            println!("{}: check ok", W::NAME);
            exit(true)
        }
        Err(Failure(why)) => {
            println!("{}: check FAILED: {}", W::NAME, why);
            exit(false)
        }
    }
}

/// Ends the program through semihosting: status 0 on success, 1 otherwise.
pub fn exit(success: bool) -> ! {
    debug::exit(if success { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    // Not reached under an emulator; on a board without a debugger, stop here.
    loop {
        cortex_m::asm::wfi();
    }
}

/// The whole program of a corpus bin: `corpus_main!(path::To::Workload::new())` defines the
/// entry point (which runs the workload with the build's driver) and the interrupt handler
/// the duty driver needs (handlers must be defined in the binary, not in a library).
#[macro_export]
macro_rules! corpus_main {
    ($make:expr) => {
        use panic_semihosting as _;

        #[cortex_m_rt::entry]
        fn main() -> ! {
            $crate::run($make)
        }

        #[cortex_m_rt::exception]
        unsafe fn DefaultHandler(irqn: i16) {
            $crate::duty::on_interrupt(irqn);
        }
    };
}
