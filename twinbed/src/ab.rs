//! The A/B update layout of mps2-an385 as the host sees it, and the pieces the tests, the
//! power-cut sweep ([`crate::sweep`]) and tools share: slot images signed with the development
//! key, a device with the bootloader and a factory image, and one boot of it.
//!
//! The layout is the contract's ([`twinbed_contract::layout`]), the same the firmware's BSP
//! links programs for and the bootloader reads.

use crate::firmware::AbFirmware;
use crate::image::{read_payload, sign_payload, signing_key, ImageError, Trailer, HEADER_SIZE};
use crate::runner::{Runner, Sources};
use std::path::Path;
use twinbed_contract::layout;
use twinbed_engine::{Machine, Stop};

/// Slot A's first address.
pub const SLOT_A: u32 = layout::SLOT_A.start;
/// Slot B's first address.
pub const SLOT_B: u32 = layout::SLOT_B.start;
/// Size of each slot.
pub const SLOT_SIZE: u32 = layout::SLOT_SIZE;

/// Virtual time a boot may take before it counts as hung (10 s at 25 MHz).
pub const BOOT_BUDGET: u64 = 250_000_000;

/// The slot-linked app `elf` signed with the development key as `version`, with `trailer`.
pub fn image(elf: &Path, version: &str, trailer: Trailer) -> Result<Vec<u8>, ImageError> {
    let (payload, _) = read_payload(elf)?;
    let (key, _) = signing_key(None)?;
    sign_payload(&payload, version, &key, SLOT_SIZE, HEADER_SIZE, trailer)
}

/// A device with the bootloader and `factory` (already signed) in slot A, reset. Its console
/// is everything the device prints, on any UART (the app's modem commands on UART1 included,
/// as there is no modem here), so a boot is judged on all it said.
pub fn device(fw: &AbFirmware, board: &crate::Board, factory: &[u8]) -> Result<Runner, crate::RunError> {
    let boot = std::fs::read(&fw.boot)
        .map_err(|source| crate::elf::ElfError::Read { path: fw.boot.clone(), source })?;
    let mut m = Machine::new(board)?;
    m.load_elf(&boot)?;
    if !m.poke(SLOT_A, factory) {
        return Err(crate::RunError::Preload {
            path: fw.app_a.clone(),
            addr: SLOT_A,
            reason: "slot A does not fit the board's memory".into(),
        });
    }
    m.reset();
    Ok(Runner::new(m, board, Sources::Everything))
}

/// What one boot did.
#[derive(Clone, Debug)]
pub struct Boot {
    /// Everything the console printed.
    pub console: String,
    /// Why the run ended (`Stop::Exit` when the app or the bootloader exited).
    pub stop: Stop,
    /// Each `boot: booting slot X (V)` line: (slot, version). A boot that resets into a trial
    /// has two.
    pub booted: Vec<(char, String)>,
}

impl Boot {
    /// The exit status, if the guest exited.
    pub fn status(&self) -> Option<i32> {
        match self.stop {
            Stop::Exit(code) => Some(code),
            _ => None,
        }
    }
}

/// Runs one boot until the guest exits (or [`BOOT_BUDGET`] passes), then power-cycles the
/// machine (RAM cleared, flash kept) for the next.
pub fn boot(r: &mut Runner) -> Boot {
    let stop = r.step(BOOT_BUDGET);
    let console = r.console.take_raw();
    r.machine.power_on();
    let booted = console
        .lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("boot: booting slot ")?;
            let slot = rest.chars().next()?;
            let v = rest.split_once('(')?.1.split_once(')')?.0;
            Some((slot, v.to_owned()))
        })
        .collect();
    Boot { console, stop, booted }
}
