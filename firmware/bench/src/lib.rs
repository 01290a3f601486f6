//! Shared helpers of the benchmark programs (the bins of this crate): build-time numbers and
//! the exit through semihosting.
//!
//! Both programs print only deterministic values (counts, digests, checksums; never cycle
//! counts or timer values), so `cargo xtask bench cpu` can compare the console of twinbed's
//! engine with QEMU's byte for byte before it trusts a figure.
#![no_std]

use cortex_m_semihosting::debug;

/// Parses a decimal build-time number (`option_env!`) in a const context; a malformed value
/// stops the build with `what` in the message.
pub const fn parse_u32(s: &str, what: &str) -> u32 {
    let b = s.as_bytes();
    if b.is_empty() {
        panic!("{}", what);
    }
    let mut i = 0;
    let mut n: u32 = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            panic!("{}", what);
        }
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

/// Ends the program through semihosting: status 0 on success, 1 otherwise.
pub fn exit(success: bool) -> ! {
    debug::exit(if success { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
    // Not reached under an emulator; on a board without a debugger, stop here.
    loop {
        cortex_m::asm::wfi();
    }
}
