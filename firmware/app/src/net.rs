//! Telemetry over the cellular modem on UART1: the board's side of `uplink::Net` (the state
//! machine, host-tested in firmware/uplink). This module finds the boot id, the slot and the
//! version, prints the state machine's notes as `net:` lines, and sleeps between samples
//! without missing what the modem sends.
//!
//! Console: with no modem (QEMU, or twinbed's engine without one) the only line ever printed is
//! `net: no modem on UART1; readings stay on the device`, once, when the first `AT` times out
//! (500 ms after the main loop starts); probing then goes on quietly with backoff. With a modem,
//! one short line per state change (connected, offline, link lost, desired applied, dropped
//! records), never one per publish.

use telemetry::{Slot, Version};
use twinbed_bsp::clock::{self, Depth};
use twinbed_bsp::flash::Flash;
use twinbed_bsp::modem_uart::ModemUart;
use twinbed_bsp::{image, map, println};
use uplink::{boot_id, Identity, Net, Note, Phase, Radio};

/// The version of this build as the `boot` event reports it when the image has no MCUboot
/// header to read it from (a plain build): `CARGO_PKG_VERSION`, `major.minor.patch`.
const PKG_VERSION: Version = {
    let b = env!("CARGO_PKG_VERSION").as_bytes();
    let mut parts = [0u32; 3];
    let (mut i, mut k) = (0, 0);
    while i < b.len() && k < 3 {
        match b[i] {
            b'0'..=b'9' => parts[k] = parts[k] * 10 + (b[i] - b'0') as u32,
            b'.' => k += 1,
            _ => break, // a pre-release or build suffix: not reported
        }
        i += 1;
    }
    Version::new(parts[0] as u8, parts[1] as u8, parts[2] as u16, 0)
};

/// This boot's id from the flash log (`uplink::boot_id`), or 0 and why it could not be kept.
///
/// Called before the A/B status and the OTA agent: a trial boot thus writes its boot id
/// before it confirms, and the confirm stays the last flash operation of an update (what the
/// power-cut sweep's cuts "late in the trial" aim at).
pub fn boot_id() -> (u32, Option<&'static str>) {
    let Some(mut flash) = Flash::take() else {
        return (0, Some("no flash controller (QEMU)"));
    };
    // A plain program is linked over the whole SSRAM1: make sure this one ends before the log.
    if image::end() > flash.base() + map::BOOT_ID.start {
        return (0, Some("the program reaches into the boot id log"));
    }
    match boot_id::next(&mut flash, map::BOOT_ID) {
        Ok(id) => (id, None),
        Err(_) => (0, Some("the boot id log could not be written")),
    }
}

/// The slot this image runs from and its version: from its MCUboot header when it was linked
/// for a slot (the header sits right before the code), else slot A and [`PKG_VERSION`].
fn slot_and_version() -> (Slot, Version) {
    let Some(slot) = map::ab::LINKED_SLOT else {
        return (Slot::A, PKG_VERSION);
    };
    let start = map::ab::slot(slot).start;
    let mut header = [0u8; mcuimage::IMAGE_HEADER_SIZE];
    for (i, b) in header.iter_mut().enumerate() {
        // SAFETY: the slot is mapped memory (SSRAM1, flash offsets equal addresses on this
        // board) and this image's own header is there.
        *b = unsafe { core::ptr::read_volatile((start as usize + i) as *const u8) };
    }
    match mcuimage::ImageHeader::parse(&header) {
        Ok(h) => (slot, h.version),
        Err(_) => (slot, PKG_VERSION),
    }
}

/// The network side of the app.
pub struct Link<'b> {
    net: Net<'b, ModemUart>,
    uart: ModemUart,
    /// Why the boot id is 0, said at the first connect.
    unpersisted: Option<&'static str>,
    /// The fuel gauge, where the board has one: its figures go into the state messages.
    gauge: Option<twinbed_bsp::fuel_gauge::FuelGauge>,
}

impl<'b> Link<'b> {
    /// Starts the state machine for boot `boot` ([`boot_id()`]; `unpersisted` says why it is 0,
    /// if it is): it creates the `boot` event, and the `confirm` event when this boot
    /// confirmed its image. Samples are `interval_s` apart; the modem publishes in windows
    /// every `publish_every_s` seconds and is powered down in between (0: online all the time).
    pub fn start(
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        (boot, unpersisted): (u32, Option<&'static str>),
        confirmed: bool,
        interval_s: u32,
        publish_every_s: u32,
    ) -> Self {
        let (slot, version) = slot_and_version();
        let uart = ModemUart::uart1();
        let now = clock::uptime_ms();
        let id = Identity { boot, slot, version };
        let mut net = Net::new(uart, rx, tx, modem_at::Config::default(), id, interval_s, now);
        net.set_radio_policy(match publish_every_s {
            0 => Radio::AlwaysOn,
            // The documented energy bug (feature `energy-bug`): the window closes the link but
            // forgets AT+CFUN=0, so the modem idles registered (~1.2 mA) instead of off.
            every_s => Radio::Windows { every_s, radio_off: cfg!(not(feature = "energy-bug")) },
        });
        if confirmed {
            net.event(now, telemetry::Event::Confirm);
        }
        let gauge = twinbed_bsp::fuel_gauge::FuelGauge::take();
        let mut link = Link { net, uart, unpersisted, gauge };
        link.read_battery();
        link
    }

    /// Runs the state machine until it is quiet, printing its notes; returns the new sampling
    /// interval (seconds) when a desired state changed it.
    pub fn poll(&mut self) -> Option<u32> {
        let mut interval = None;
        while let Some(note) = self.net.poll(clock::uptime_ms()) {
            match note {
                Note::NoModem => println!("net: no modem on UART1; readings stay on the device"),
                Note::ModemFound => println!("net: modem answered on UART1"),
                Note::Connected => {
                    let id = self.net.identity();
                    println!(
                        "net: connected to {}:{} as {} (boot {}, {} records to send)",
                        uplink::BROKER_HOST,
                        uplink::BROKER_PORT,
                        self.net.device_id(),
                        id.boot,
                        self.net.outbox().len()
                    );
                    if let Some(why) = self.unpersisted.take() {
                        println!("net: boot id 0 is not kept across boots: {why}");
                    }
                }
                Note::Offline(reason) => println!("net: offline: {reason}; retrying with backoff"),
                Note::LinkLost { err, unacked } => {
                    println!("net: link lost (+QMTSTAT {err}); {unacked} records unacked, reconnecting")
                }
                Note::DesiredApplied { version, interval_s } => {
                    println!("net: desired state v{version} applied: a sample every {interval_s} s");
                    interval = Some(interval_s);
                }
                Note::Dropped(r) => println!(
                    "net: the outbox overflowed: records {}..={} ({} readings) dropped",
                    r.from, r.to, r.readings
                ),
            }
        }
        interval
    }

    /// A sensor reading (milli-°C) taken now; the battery is looked at with it.
    pub fn reading(&mut self, now_ms: u32, milli_c: i32) {
        self.net.reading(now_ms, milli_c);
        self.read_battery();
    }

    /// Hands the fuel gauge's figures to the state machine (boards without a gauge: nothing).
    fn read_battery(&mut self) {
        if let Some(g) = &self.gauge {
            self.net.battery(telemetry::Battery { mv: g.voltage_mv(), permille: g.soc_permille() });
        }
    }

    /// Sleeps until `deadline_ms` or until the state machine needs a poll, whichever is first,
    /// and wakes early when a byte from the modem is waiting (the UART's receive interrupt ends
    /// the sleep: `twinbed_bsp::modem_uart`). The sleep is deep when the modem owes nothing
    /// (its radio is off between publish windows, or the link backs off): on the MCUs this
    /// board stands for, the UART does not receive in deep sleep.
    pub fn sleep(&self, deadline_ms: u32) {
        let now = clock::uptime_ms();
        let until = match self.net.wake_at(now) {
            Some(w) if (w.wrapping_sub(deadline_ms) as i32) < 0 => w,
            _ => deadline_ms,
        };
        let depth = match self.net.phase() {
            Phase::Backoff { .. } | Phase::Asleep { .. } => Depth::Deep,
            _ => Depth::Sleep,
        };
        self.uart.sleep_until(until, depth);
    }
}
