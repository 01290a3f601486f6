//! twinbed's reference device application (thin: the logic lives in the libraries).
//!
//! Prints a boot banner, then every [`SAMPLE_PERIOD_MS`] of (virtual) time reads the TMP105 over
//! I2C and prints one reading line, sleeping with WFI in between. With the `test-mode` feature it
//! exits through semihosting after `TWINBED_SAMPLES` samples (default 5), so tests and
//! `cargo run` end by themselves.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use panic_semihosting as _;
use tmp105::{Resolution, Tmp105};
use twinbed_bsp::{clock, i2c::SbConI2c, map, println, testbed};

/// Time between two samples.
const SAMPLE_PERIOD_MS: u32 = 1000;

/// Samples taken before exiting in test mode (`TWINBED_SAMPLES` at build time, default 5).
#[cfg(feature = "test-mode")]
const TEST_SAMPLES: u32 = match option_env!("TWINBED_SAMPLES") {
    Some(s) => parse_u32(s),
    None => 5,
};

#[cfg(feature = "test-mode")]
const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    assert!(!b.is_empty(), "TWINBED_SAMPLES must be a decimal number");
    let mut i = 0;
    let mut n: u32 = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "TWINBED_SAMPLES must be a decimal number");
        n = n * 10 + (b[i] - b'0') as u32;
        i += 1;
    }
    n
}

#[entry]
fn main() -> ! {
    twinbed_bsp::init();
    println!(
        "twinbed-app v{} on mps2-an385 (Cortex-M3 @ {} MHz)",
        env!("CARGO_PKG_VERSION"),
        twinbed_bsp::SYSCLK_HZ / 1_000_000
    );

    let mut sensor = Tmp105::new(SbConI2c::new(map::I2C_SENSORS), map::TMP105_ADDR);
    match sensor.set_resolution(Resolution::Bits12) {
        Ok(()) => {
            println!("sensor: TMP105 at 0x{:02x} on I2C 0x{:08x}, 12-bit", map::TMP105_ADDR, map::I2C_SENSORS)
        }
        Err(e) => println!("sensor: TMP105 at 0x{:02x} not answering: {:?}", map::TMP105_ADDR, e),
    }

    let mut next_ms = SAMPLE_PERIOD_MS;
    let mut index: u32 = 0;
    loop {
        clock::sleep_until(next_ms);
        let now = clock::uptime_ms();
        testbed::twinbed_sample_hook(now, index);
        match sensor.read_temperature() {
            Ok(t) => println!("[{:>9} ms] sample {}: temperature {} C", now, index, t),
            Err(e) => println!("[{:>9} ms] sample {}: sensor error {:?}", now, index, e),
        }
        index += 1;
        next_ms = next_ms.wrapping_add(SAMPLE_PERIOD_MS);

        #[cfg(feature = "test-mode")]
        if index >= TEST_SAMPLES {
            println!("test mode: {} samples taken, exiting", index);
            cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
        }
    }
}
