//! The power-cut sweep of an A/B update on the native engine (`cargo xtask sweep`).
//!
//! A device with the bootloader (firmware/boot) and a confirmed factory image 1.0.0 in slot A
//! gets update 1.1.0 in slot B, marked pending. A clean run counts the flash operations of the
//! update from there (the bootloader recording the trial, the app confirming after its health
//! check). Then, for every operation `i` (or every `stride`-th), and for each of `variants`
//! seeded torn states, a copy of the device from before the update runs to the moment
//! operation `i` starts ([`Machine::set_stop_at_flash_op`]), loses power with the operation
//! half done ([`Machine::power_cut`]), powers on, and boots three times. Invariants:
//! - every boot boots something, and only a signed image the device was given (A 1.0.0 or
//!   B 1.1.0): never nothing, never another version;
//! - the device ends on B (update *completed*) or on A (*stayed old*), and from A the update
//!   can be applied again and completes;
//! - anything else is *bricked*, reported with the operation and seed that replays it.
//!
//! Not in the sweep yet: the download itself (the OTA agent that writes slot B through the
//! flash controller is not built; the image is put into the slot directly).

use crate::firmware::AbFirmware;
use crate::image::{sign_file, SignRequest, HEADER_SIZE};
use twinbed_engine::{Machine, Stop};

/// Slot A's first address (firmware/bsp: `map::ab::SLOT_A`).
pub const SLOT_A: u32 = 0x0002_0000;
/// Slot B's first address.
pub const SLOT_B: u32 = 0x000A_0000;
/// Size of each slot.
pub const SLOT_SIZE: u32 = 0x0008_0000;

/// MCUboot's trailer magic (the last 16 bytes of a marked slot): imgtool's `--pad`.
const TRAILER_MAGIC: [u8; 16] =
    [0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80];

/// Virtual time a boot may take before it counts as hung (10 s at 25 MHz).
const BOOT_BUDGET: u64 = 250_000_000;

/// How to sweep.
#[derive(Clone, Copy, Debug)]
pub struct SweepOptions {
    /// Seed of the torn states (each cut's seed derives from it, the operation and the variant).
    pub seed: u64,
    /// Torn variants per operation.
    pub variants: u32,
    /// Cut at every `stride`-th operation (1: all of them).
    pub stride: u32,
    /// Only this cut (operation, torn-state seed), as a failure report prints it.
    pub replay: Option<(u32, u64)>,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions { seed: 0x5eed_2026, variants: 4, stride: 1, replay: None }
    }
}

/// What the sweep found (`--json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct SweepReport {
    /// The seed.
    pub seed: u64,
    /// Flash operations of the update.
    pub operations: u32,
    /// Power cuts made.
    pub cuts: u32,
    /// Torn variants per operation.
    pub torn_variants: u32,
    /// Cuts after which the device ended on the update (B 1.1.0).
    pub completed: u32,
    /// Cuts after which it stayed on the old image (A 1.0.0) and a retry completed.
    pub stayed_old: u32,
    /// Cuts after which an invariant broke.
    pub bricked: u32,
    /// What broke, one line per bricked cut, with the replay arguments.
    pub failures: Vec<String>,
}

/// Why the sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Signing the images failed.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    /// The board or the ELF could not be set up.
    #[error(transparent)]
    Machine(#[from] twinbed_engine::MachineError),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The clean run did not do what an update does.
    #[error("the clean update does not work, so there is nothing to sweep: {0}")]
    CleanRun(String),
}

/// Signs `elf` as `version` for a slot: `confirm` makes a factory image (trailer: confirmed),
/// otherwise the image is pending (trailer: magic only).
fn slot_image(
    dir: &std::path::Path,
    elf: &std::path::Path,
    version: &str,
    confirm: bool,
) -> Result<Vec<u8>, SweepError> {
    let out = dir.join(format!("{version}-{confirm}.img"));
    let req = SignRequest {
        input: elf.to_owned(),
        output: out.clone(),
        version: version.into(),
        key: None,
        slot_size: SLOT_SIZE,
        header_size: HEADER_SIZE,
        confirm,
    };
    sign_file(&req)?;
    let mut image = std::fs::read(&out).map_err(|e| SweepError::Io(format!("{}: {e}", out.display())))?;
    if !confirm {
        image.resize(SLOT_SIZE as usize, 0xff);
        let n = image.len();
        image[n - TRAILER_MAGIC.len()..].copy_from_slice(&TRAILER_MAGIC);
    }
    Ok(image)
}

/// One boot: runs until the guest exits; returns the console and what the bootloader booted
/// (slot, version). Then power-cycles the machine for the next boot.
pub fn boot(m: &mut Machine) -> (String, Option<(char, String)>) {
    let stop = m.run(BOOT_BUDGET);
    let console: Vec<u8> = m.take_output().into_iter().map(|(_, b)| b).collect();
    let mut console = String::from_utf8_lossy(&console).into_owned();
    if !matches!(stop, Stop::Exit(_)) {
        console.push_str(&format!("[sweep: the boot ended with {stop:?}]\n"));
    }
    m.power_on();
    let booted = console.lines().find_map(|l| {
        let rest = l.strip_prefix("boot: booting slot ")?;
        let slot = rest.chars().next()?;
        let v = rest.split_once('(')?.1.split_once(')')?.0;
        Some((slot, v.to_owned()))
    });
    (console, booted)
}

/// The device before the update: bootloader and factory image A, update B pending.
struct Device {
    base: Machine,
    pending_b: Vec<u8>,
}

fn device(fw: &AbFirmware, board: &crate::Board) -> Result<Device, SweepError> {
    let dir = tempfile::tempdir().map_err(|e| SweepError::Io(e.to_string()))?;
    let boot = std::fs::read(&fw.boot).map_err(|e| SweepError::Io(format!("{}: {e}", fw.boot.display())))?;
    let mut base = Machine::new(board)?;
    base.load_elf(&boot)?;
    let a = slot_image(dir.path(), &fw.app_a, "1.0.0", true)?;
    let pending_b = slot_image(dir.path(), &fw.app_b, "1.1.0", false)?;
    if !base.poke(SLOT_A, &a) || !base.poke(SLOT_B, &pending_b) {
        return Err(SweepError::Io("the slots do not fit the board's memory".into()));
    }
    base.reset();
    Ok(Device { base, pending_b })
}

const OLD: (char, &str) = ('A', "1.0.0+0");
const NEW: (char, &str) = ('B', "1.1.0+0");

/// Seed of variant `v` of the cut at operation `op`.
fn cut_seed(seed: u64, op: u32, v: u32) -> u64 {
    seed ^ (u64::from(op) << 32 | u64::from(v)).wrapping_mul(0x9e37_79b9_7f4a_7c15)
}

/// Runs the sweep; `progress` gets a line now and then.
pub fn run(
    fw: &AbFirmware,
    board: &crate::Board,
    opts: &SweepOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<SweepReport, SweepError> {
    let dev = device(fw, board)?;
    let first = dev.base.flash_ops();
    // The clean update: trial, confirm, then B for good.
    let mut clean = dev.base.clone();
    let (c1, b1) = boot(&mut clean);
    let (c2, b2) = boot(&mut clean);
    let want = Some((NEW.0, NEW.1.to_owned()));
    if b1 != want || b2 != want {
        return Err(SweepError::CleanRun(format!("expected B 1.1.0 twice, got:\n{c1}---\n{c2}")));
    }
    let operations = clean.flash_ops() - first;
    let mut report =
        SweepReport { seed: opts.seed, operations, torn_variants: opts.variants, ..Default::default() };
    progress(&format!(
        "the update's boots take {operations} flash operations; cutting power at {} of them, {} torn variant(s) each",
        operations.div_ceil(opts.stride.max(1)),
        opts.variants
    ));
    let cuts: Vec<(u32, u64)> = match opts.replay {
        Some(one) => vec![one],
        None => (0..operations)
            .step_by(opts.stride.max(1) as usize)
            .flat_map(|op| (0..opts.variants).map(move |v| (op, cut_seed(opts.seed, op, v))))
            .collect(),
    };
    for (op, seed) in cuts {
        {
            if op >= operations {
                return Err(SweepError::CleanRun(format!(
                    "there is no operation {op}: the update has {operations}"
                )));
            }
            report.cuts += 1;
            match cut_and_check(&dev, first + op, seed) {
                Ok(true) => report.completed += 1,
                Ok(false) => report.stayed_old += 1,
                Err(why) => {
                    report.bricked += 1;
                    report
                        .failures
                        .push(format!("operation {op}, seed {seed}: {why} (replay: --replay {op}:{seed})"));
                }
            }
        }
    }
    Ok(report)
}

/// One cut; `Ok(true)`: ended on the update, `Ok(false)`: on the old image (and a retry
/// completed), `Err`: an invariant broke.
fn cut_and_check(dev: &Device, op: u32, seed: u64) -> Result<bool, String> {
    let mut m = dev.base.clone();
    m.set_stop_at_flash_op(Some(op));
    loop {
        match m.run(BOOT_BUDGET) {
            Stop::FlashOp { .. } => break,
            Stop::Exit(_) => {
                let _ = m.take_output();
                m.power_on();
            }
            other => return Err(format!("before the cut, the device stopped: {other:?}")),
        }
    }
    let _ = m.take_output();
    if m.power_cut(seed).is_none() {
        return Err("no flash operation in flight at the cut".into());
    }
    m.power_on();
    let mut last = None;
    for k in 0..3 {
        let (console, booted) = boot(&mut m);
        let ok = booted.as_ref().is_some_and(|(s, v)| (*s, v.as_str()) == OLD || (*s, v.as_str()) == NEW);
        if !ok {
            return Err(format!("boot {k} after the cut booted {booted:?}:\n{console}"));
        }
        last = booted;
    }
    if last.as_ref().is_some_and(|(s, _)| *s == NEW.0) {
        return Ok(true);
    }
    // Stayed old: apply the update again (what the OTA agent would do: erase and rewrite B).
    if !m.poke(SLOT_B, &dev.pending_b) {
        return Err("slot B does not fit".into());
    }
    m.reset();
    let _ = boot(&mut m);
    let (console, booted) = boot(&mut m);
    if booted != Some((NEW.0, NEW.1.to_owned())) {
        return Err(format!("the retried update did not complete:\n{console}"));
    }
    Ok(false)
}
