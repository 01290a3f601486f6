//! CPU-bound benchmark: SHA-256 of `TWINBED_BENCH_KIB` KiB (build time, default 1024) of
//! generated data, then one Ed25519 signature verification.
//!
//! The data comes from a xorshift32 generator (Marsaglia 2003, shifts 13/17/5, seed
//! [`SEED`]) written word by word, little-endian, into a 4 KiB buffer that is hashed and
//! refilled until the size is reached: no heap, and the same bytes on every machine. The key,
//! message and signature were made once on the host from a fixed seed. Only interrupts-free
//! code runs (UART0 is enabled, SysTick is not), so the instruction count is the work alone.
//!
//! Output: a banner, `sha256 <KiB> KiB: <hex>`, `ed25519: verify ok` and
//! `bench-cpu: done`, then exit 0 (exit 1 if the signature did not verify).
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use panic_semihosting as _;
use sha2::{Digest, Sha256};
use twinbed_bench::{exit, parse_u32};
use twinbed_bsp::println;

/// KiB of data to hash (`TWINBED_BENCH_KIB` at build time, default 1024 = 1 MiB).
const KIB: u32 = match option_env!("TWINBED_BENCH_KIB") {
    Some(s) => parse_u32(s, "TWINBED_BENCH_KIB must be a decimal number"),
    None => 1024,
};

/// Bytes hashed per chunk (the buffer is refilled between chunks).
const CHUNK: usize = 4096;

/// xorshift32's seed (any non-zero value).
const SEED: u32 = 0x2545_f491;

/// Ed25519 public key (RFC 8032), from the seed SHA-256("twinbed bench-cpu ed25519 seed").
#[rustfmt::skip]
const PUBLIC_KEY: [u8; 32] = [
    0x9f, 0x7b, 0x07, 0x2c, 0x32, 0x22, 0x1b, 0x6e, 0xe7, 0x90, 0x44, 0x06, 0x85, 0x8a, 0xb1, 0x38,
    0xd5, 0x6a, 0x54, 0xe6, 0xf9, 0x37, 0xca, 0x06, 0x9f, 0x04, 0x64, 0x29, 0xc6, 0x7f, 0xad, 0xa6,
];

/// The signed message.
const MESSAGE: &[u8] = b"twinbed bench-cpu: firmware image v1, signed once on the host";

/// The signature of [`MESSAGE`] under [`PUBLIC_KEY`]'s secret key.
#[rustfmt::skip]
const SIGNATURE: [u8; 64] = [
    0xcc, 0xd9, 0x81, 0x61, 0xc1, 0x40, 0xb2, 0x3d, 0x98, 0xdd, 0x46, 0xbb, 0x62, 0xc0, 0x01, 0xce,
    0x83, 0x94, 0x72, 0x2c, 0x56, 0x32, 0x66, 0x75, 0x97, 0x7f, 0xad, 0xcd, 0xbf, 0xf0, 0x5f, 0x7b,
    0x5a, 0x21, 0x8d, 0xf7, 0x07, 0x72, 0x52, 0xf7, 0x82, 0x01, 0x54, 0x91, 0x36, 0x4a, 0x01, 0x06,
    0x30, 0xe1, 0x6f, 0xaa, 0x8f, 0xc6, 0x58, 0x1c, 0x2c, 0x04, 0xb8, 0x67, 0x83, 0x84, 0xb7, 0x0a,
];

/// Fills `buf` with the next words of the xorshift32 stream.
fn fill(buf: &mut [u8; CHUNK], state: &mut u32) {
    for word in buf.chunks_exact_mut(4) {
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        *state = x;
        word.copy_from_slice(&x.to_le_bytes());
    }
}

#[entry]
fn main() -> ! {
    twinbed_bsp::uart::Uart::console().enable_tx();
    println!("bench-cpu: SHA-256 of {} KiB, then one Ed25519 verify", KIB);

    let mut buf = [0u8; CHUNK];
    let mut state = SEED;
    let mut hasher = Sha256::new();
    for _ in 0..(KIB as usize * 1024 / CHUNK) {
        fill(&mut buf, &mut state);
        hasher.update(buf);
    }
    // A size that is not a multiple of the chunk: hash the first part of one more chunk.
    let rest = KIB as usize * 1024 % CHUNK;
    if rest != 0 {
        fill(&mut buf, &mut state);
        hasher.update(&buf[..rest]);
    }
    let digest = hasher.finalize();
    let mut hex = [0u8; 64];
    for (i, b) in digest.iter().enumerate() {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        hex[2 * i] = DIGITS[usize::from(b >> 4)];
        hex[2 * i + 1] = DIGITS[usize::from(b & 0xf)];
    }
    println!("sha256 {} KiB: {}", KIB, core::str::from_utf8(&hex).unwrap_or("?"));

    let verified = match (
        ed25519_compact::PublicKey::from_slice(&PUBLIC_KEY),
        ed25519_compact::Signature::from_slice(&SIGNATURE),
    ) {
        (Ok(pk), Ok(sig)) => pk.verify(MESSAGE, &sig).is_ok(),
        _ => false,
    };
    println!("ed25519: verify {}", if verified { "ok" } else { "FAILED" });
    println!("bench-cpu: done");
    exit(verified)
}
