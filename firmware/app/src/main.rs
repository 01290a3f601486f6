//! twinbed's reference device application (thin: the logic lives in the libraries).
//!
//! Prints a boot banner, then every [`SAMPLE_PERIOD_MS`] of (virtual) time reads the TMP105 over
//! I2C and prints one reading line. The sensor is shut down between samples and converts once
//! per sample (a one-shot started [`RESOLUTION`]'s conversion time before the sample is due);
//! the core sleeps in between, tickless, in deep sleep whenever the modem owes it nothing
//! (`net::Link::sleep`). With the `test-mode` feature it
//! exits through semihosting after `TWINBED_SAMPLES` samples (default 5), so tests and
//! `cargo run` end by themselves.
//!
//! Built for an A/B slot (`TWINBED_SLOT=a|b`, booted by firmware/boot), it reports the slot it
//! runs from and, when the bootloader started its trial, runs a health check (the sensor answers)
//! and confirms the image (`abboot::confirm`); otherwise the next boot reverts it. The
//! `fail-health-check` feature makes the health check fail: an image that never confirms, for
//! testing reverts.
//!
//! Every reading also goes to the [`net`] module: aggregated at the edge and published over the
//! cellular modem on UART1 (PROTOCOL.md), with a boot id kept in flash. Between samples the
//! main loop keeps polling the modem. Without a modem the console is what it always was, plus
//! one line saying so.
#![no_std]
#![no_main]

mod net;
mod ota;

use cortex_m_rt::entry;
use panic_semihosting as _;
use tmp105::{Resolution, Tmp105};
use twinbed_bsp::{clock, flash::Flash, i2c::SbConI2c, map, println, testbed};

/// Time between two samples at boot (a desired state from the twin may set another).
const SAMPLE_PERIOD_MS: u32 = 1000;

/// The sensor's resolution: 0.0625 °C, 220 ms per conversion.
const RESOLUTION: Resolution = Resolution::Bits12;

/// Samples taken before exiting in test mode (`TWINBED_SAMPLES` at build time, default 5).
#[cfg(feature = "test-mode")]
const TEST_SAMPLES: u32 = match option_env!("TWINBED_SAMPLES") {
    Some(s) => parse_u32(s),
    None => 5,
};

/// Seconds between the modem's publish windows (`TWINBED_PUBLISH_S` at build time, default
/// 900): the modem is powered down in between. 0 keeps it online all the time (a device on
/// mains power; the twin-loop scenarios that exercise the protocol use that build).
const PUBLISH_EVERY_S: u32 = match option_env!("TWINBED_PUBLISH_S") {
    Some(s) => parse_u32(s),
    None => 900,
};

const fn parse_u32(s: &str) -> u32 {
    let b = s.as_bytes();
    assert!(!b.is_empty(), "TWINBED_SAMPLES and TWINBED_PUBLISH_S must be decimal numbers");
    let mut i = 0;
    let mut n: u32 = 0;
    while i < b.len() {
        assert!(b[i].is_ascii_digit(), "TWINBED_SAMPLES and TWINBED_PUBLISH_S must be decimal numbers");
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
    // Shut down between samples: one conversion per sample (one-shot) instead of converting
    // all the time (0.1 µA instead of 50 µA while idle).
    let sensor_ok = match sensor.shut_down(RESOLUTION) {
        Ok(()) => {
            println!(
                "sensor: TMP105 at 0x{:02x} on I2C 0x{:08x}, 12-bit",
                map::TMP105_ADDR,
                map::I2C_SENSORS
            );
            true
        }
        Err(e) => {
            println!("sensor: TMP105 at 0x{:02x} not answering: {:?}", map::TMP105_ADDR, e);
            false
        }
    };
    let boot = net::boot_id();
    let confirmed = match map::ab::LINKED_SLOT {
        Some(slot) => update_status(slot, sensor_ok),
        None => false,
    };

    // The modem client's buffers live as long as `main`, which never returns.
    let mut rx = [0u8; uplink::RX_BUFFER];
    let mut tx = [0u8; uplink::TX_BUFFER];
    let mut link =
        net::Link::start(&mut rx, &mut tx, boot, confirmed, SAMPLE_PERIOD_MS / 1000, PUBLISH_EVERY_S);

    let mut period_ms = SAMPLE_PERIOD_MS;
    let mut last_ms = 0u32;
    let mut next_ms = SAMPLE_PERIOD_MS;
    let mut converting = false;
    let mut index: u32 = 0;
    loop {
        if let Some(interval_s) = link.poll() {
            // A desired state set a new interval: the next sample is one new period after the
            // last (at once if that has passed).
            period_ms = interval_s.saturating_mul(1000);
            next_ms = last_ms.wrapping_add(period_ms);
        }
        let now = clock::uptime_ms();
        // The one-shot conversion starts its conversion time before the sample is due.
        let convert_at = next_ms.wrapping_sub(RESOLUTION.conversion_ms());
        if !converting && clock::reached(now, convert_at) {
            // An error shows at the read.
            let _ = sensor.start_one_shot(RESOLUTION);
            converting = true;
        }
        if !clock::reached(now, next_ms) {
            link.sleep(if converting { next_ms } else { convert_at });
            continue;
        }
        testbed::twinbed_sample_hook(now, index);
        match sensor.read_temperature() {
            Ok(t) => {
                println!("[{:>9} ms] sample {}: temperature {} C", now, index, t);
                link.reading(now, t.milli_celsius());
            }
            Err(e) => println!("[{:>9} ms] sample {}: sensor error {:?}", now, index, e),
        }
        index += 1;
        converting = false;
        last_ms = now;
        next_ms = next_ms.wrapping_add(period_ms);

        #[cfg(feature = "test-mode")]
        if index >= TEST_SAMPLES {
            println!("test mode: {} samples taken, exiting", index);
            cortex_m_semihosting::debug::exit(cortex_m_semihosting::debug::EXIT_SUCCESS);
        }
    }
}

/// Interrupts without a handler of their own: the modem UART's receive interrupt, which only
/// ends a sleep (`twinbed_bsp::clock::on_wake_interrupt`); any other is a bug.
#[cortex_m_rt::exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn >= 0 && twinbed_bsp::clock::on_wake_interrupt(irqn as u32) {
        return;
    }
    panic!("unexpected interrupt {irqn}");
}

/// Reports the slot this image runs from, and confirms it if it runs on trial and is healthy;
/// true if this boot confirmed it (the app reports a `confirm` event).
fn update_status(slot: abboot::Slot, healthy: bool) -> bool {
    let layout = abboot::Layout::new(map::ab::SLOT_A, map::ab::SLOT_B);
    let Some(mut flash) = Flash::take() else {
        println!("update: slot {slot}; no flash controller, slot state unknown");
        return false;
    };
    let mut confirmed = false;
    match abboot::state(&mut flash, &layout, slot) {
        Ok(abboot::SlotState::Trial) => {
            let healthy = healthy && cfg!(not(feature = "fail-health-check"));
            if !healthy {
                println!("update: slot {slot} on trial, health check FAILED: not confirming (the next boot reverts it)");
                return false;
            }
            match abboot::confirm(&mut flash, &layout, slot) {
                Ok(()) => {
                    println!("update: slot {slot} on trial, health check passed: confirmed");
                    confirmed = true;
                }
                Err(e) => println!("update: slot {slot} on trial, confirming failed: {e:?}"),
            }
        }
        Ok(state) => println!("update: running from slot {slot} ({state})"),
        Err(e) => println!("update: slot {slot}, state unreadable: {e:?}"),
    }
    ota::run(slot, &mut flash, &layout);
    confirmed
}
