//! The power-cut sweep of an A/B update on the native engine (`cargo xtask sweep`).
//!
//! A device with the bootloader (firmware/boot) and a confirmed factory image 1.0.0 in slot A
//! is offered update 1.1.0 on its OTA feed. A clean run counts the flash operations of the
//! whole update: the app's OTA agent erasing slot B and writing the image, marking it pending,
//! the bootloader recording the trial, the app confirming after its health check. Then the
//! sweep walks through the update once more and, at every cut point (every `stride`-th
//! operation plus the first and last few), takes copies of the device right after that
//! operation started ([`Machine::set_stop_at_flash_op`](twinbed_engine::Machine::set_stop_at_flash_op)), cuts their power with it half done
//! in `variants` seeded torn states ([`Machine::power_cut`](twinbed_engine::Machine::power_cut)), powers on, and boots three
//! times. Invariants:
//! - every boot boots something, and only a signed image the device was given (A 1.0.0 or
//!   B 1.1.0): never nothing, never another version;
//! - the device ends on B (update *completed*) or on A (*stayed old*: the download was cut and
//!   resumed into a trial that was itself cut, which counts as failed), and from A a newer
//!   update (1.1.1) goes through;
//! - anything else is *bricked*, reported with the operation and seed that replays it.
//!
//! # Making it fast
//! - **Rows.** The OTA agent writes the image in 256-byte rows, one flash operation each, so a
//!   ~90 KiB update is ~400 operations to cut at, not ~23,000 word programs.
//! - **One walk.** The update is run once; each cut works on a copy of the device stopped at its
//!   operation, not on a replay from the start.
//! - **Power-on states are memoised.** After a power-on the device's future depends only on the
//!   flash (RAM comes back zeroed, the core and devices reset, the feed offers the same image),
//!   so the verdict of each check step is kept per (step, [`Machine::flash_digest`](twinbed_engine::Machine::flash_digest)). Cuts
//!   converge after their first boot (the update has completed, and the flash is the same as
//!   after any other such cut), so mostly only that first boot runs. `--no-memo` turns it off;
//!   a test checks that the report is the same either way.
//! - **Threads.** Cut points are dealt to worker threads (each walks the update itself) that
//!   share the memo; the report does not depend on which thread did what.

use crate::ab;
use crate::firmware::AbFirmware;
use crate::image::Trailer;
use crate::runner::Runner;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use twinbed_engine::Stop;

/// How to sweep.
#[derive(Clone, Copy, Debug)]
pub struct SweepOptions {
    /// Seed of the torn states (each cut's seed derives from it, the operation and the variant).
    pub seed: u64,
    /// Torn variants per operation.
    pub variants: u32,
    /// Cut at every `stride`-th operation (1: all of them; 0: about 32 spread over the update),
    /// and always at the first and last few.
    pub stride: u32,
    /// Only this cut (operation, torn-state seed), as a failure report prints it.
    pub replay: Option<(u32, u64)>,
    /// Keep the verdicts of power-on states (see the module docs); off only to check that
    /// memoising changes nothing.
    pub memo: bool,
    /// Worker threads (0: one per core, at most 4).
    pub threads: usize,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions { seed: 0x5eed_2026, variants: 4, stride: 0, replay: None, memo: true, threads: 0 }
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
    /// Boots run after cuts (the rest came from the memo); not part of the result proper.
    #[serde(skip)]
    pub boots_run: u64,
}

/// Why the sweep could not run.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// Signing the images failed.
    #[error(transparent)]
    Image(#[from] crate::image::ImageError),
    /// The board, the bootloader or the factory image could not be set up.
    #[error(transparent)]
    Run(#[from] crate::RunError),
    /// A file could not be read or written.
    #[error("{0}")]
    Io(String),
    /// The clean run did not do what an update does.
    #[error("the clean update does not work, so there is nothing to sweep: {0}")]
    CleanRun(String),
}

/// The device before the update: bootloader and factory image A 1.0.0 (confirmed), slot B never
/// written, update B 1.1.0 on the OTA feed; and update 1.1.1 for retries.
struct Device {
    base: Runner,
    retry: Vec<u8>,
}

fn device(fw: &AbFirmware, board: &crate::Board) -> Result<Device, SweepError> {
    let factory = ab::image(&fw.app_a, "1.0.0", Trailer::Confirmed)?;
    let mut base = ab::device(fw, board, &factory)?;
    let update = ab::image(&fw.app_b, "1.1.0", Trailer::None)?;
    let retry = ab::image(&fw.app_b, "1.1.1", Trailer::None)?;
    base.machine.ota_feed().ok_or_else(|| SweepError::Io("the board has no OTA feed".into()))?.offer(update);
    Ok(Device { base, retry })
}

const OLD: (char, &str) = ('A', "1.0.0+0");
const NEW: (char, &str) = ('B', "1.1.0+0");
const RETRY: (char, &str) = ('B', "1.1.1+0");

/// Seed of variant `v` of the cut at operation `op`.
fn cut_seed(seed: u64, op: u32, v: u32) -> u64 {
    seed ^ (u64::from(op) << 32 | u64::from(v)).wrapping_mul(twinbed_contract::rng::SplitMix64::GAMMA)
}

/// The operations to cut at: every `stride`-th, plus the first and last few (the erase starts,
/// and the mark, trial and confirm at the end, where the state machine moves).
fn cut_points(ops: u32, stride: u32) -> Vec<u32> {
    let mut v: Vec<u32> = (0..ops).step_by(stride.max(1) as usize).collect();
    v.extend(0..ops.min(4));
    v.extend(ops.saturating_sub(6)..ops);
    v.sort_unstable();
    v.dedup();
    v
}

/// Runs the sweep; `progress` gets a line now and then.
pub fn run(
    fw: &AbFirmware,
    board: &crate::Board,
    opts: &SweepOptions,
    progress: &mut (dyn FnMut(&str) + Send),
) -> Result<SweepReport, SweepError> {
    let dev = device(fw, board)?;
    let first = dev.base.machine.flash_ops();
    // The clean update: download, mark, reboot into the trial, confirm; then B for good.
    let mut clean = dev.base.clone();
    let first_boot = ab::boot(&mut clean);
    let second = ab::boot(&mut clean);
    if second.booted.first() != Some(&(NEW.0, NEW.1.to_owned())) {
        return Err(SweepError::CleanRun(format!(
            "expected B 1.1.0 after the update, got:\n{}---\n{}",
            first_boot.console, second.console
        )));
    }
    let operations = clean.machine.flash_ops() - first;
    let mut report =
        SweepReport { seed: opts.seed, operations, torn_variants: opts.variants, ..Default::default() };
    let cuts: Vec<(u32, u64)> = match opts.replay {
        Some(one) => vec![one],
        None => cut_points(operations, if opts.stride == 0 { (operations / 32).max(1) } else { opts.stride })
            .into_iter()
            .flat_map(|op| (0..opts.variants).map(move |v| (op, cut_seed(opts.seed, op, v))))
            .collect(),
    };
    progress(&format!(
        "the update takes {operations} flash operations (download, mark, trial, confirm); {} cuts",
        cuts.len()
    ));
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()).min(4),
        n => n,
    }
    .min(cuts.len().max(1));
    let memo = Memo { on: opts.memo, verdicts: Mutex::new(HashMap::new()), boots: AtomicU64::new(0) };
    let done = AtomicU32::new(0);
    let total = cuts.len();
    let progress = Mutex::new(progress);
    // Cut points are dealt round-robin to the workers, each walking the update itself.
    let results: Vec<Result<Vec<Verdict>, SweepError>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|w| {
                let mine: Vec<(usize, (u32, u64))> =
                    cuts.iter().copied().enumerate().skip(w).step_by(threads).collect();
                let (dev, memo, done, progress) = (&dev, &memo, &done, &progress);
                scope.spawn(move || {
                    walk(dev, first, operations, &mine, memo, &mut |_| {
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        if n % (total as u32 / 10).max(64) == 0 {
                            if let Ok(mut p) = progress.lock() {
                                p(&format!("{n} of {total} cuts"));
                            }
                        }
                    })
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a sweep worker panicked")).collect()
    });
    let mut verdicts = Vec::with_capacity(total);
    for r in results {
        verdicts.extend(r?);
    }
    verdicts.sort_by_key(|(i, _)| *i);
    for (i, verdict) in verdicts {
        let (op, seed) = cuts[i];
        report.cuts += 1;
        match verdict {
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
    report.boots_run = memo.boots.load(Ordering::Relaxed);
    Ok(report)
}

/// A cut's verdict, by its index in the sweep's list of cuts: `Ok(true)` completed, `Ok(false)`
/// stayed old, `Err` bricked (why).
type Verdict = (usize, Result<bool, String>);

/// Walks the update once, stopping at each of `cuts` (in order of operation), and checks each
/// on a copy. Returns (index in the sweep's cut list, verdict).
fn walk(
    dev: &Device,
    first: u32,
    operations: u32,
    cuts: &[(usize, (u32, u64))],
    memo: &Memo,
    tick: &mut dyn FnMut(()),
) -> Result<Vec<Verdict>, SweepError> {
    let mut out = Vec::with_capacity(cuts.len());
    let mut walker = dev.base.clone();
    let mut at = None;
    for &(i, (op, seed)) in cuts {
        if op >= operations {
            return Err(SweepError::CleanRun(format!(
                "there is no operation {op}: the update has {operations}"
            )));
        }
        if at != Some(op) {
            if at.is_some_and(|a| a > op) {
                walker = dev.base.clone();
            }
            walker.machine.set_stop_at_flash_op(Some(first + op));
            loop {
                match walker.step(ab::BOOT_BUDGET) {
                    Stop::FlashOp { .. } => break,
                    Stop::Exit(_) => {
                        let _ = walker.console.take_raw();
                        walker.machine.power_on();
                    }
                    other => {
                        return Err(SweepError::CleanRun(format!("on the way to operation {op}: {other:?}")))
                    }
                }
            }
            let _ = walker.console.take_raw();
            at = Some(op);
        }
        out.push((i, cut_and_check(dev, &walker, seed, memo)));
        tick(());
    }
    Ok(out)
}

/// The verdicts of power-on states: (check step, hash of the flash) -> where the device ends
/// from there.
struct Memo {
    on: bool,
    verdicts: Mutex<HashMap<(u8, u128), Result<bool, String>>>,
    boots: AtomicU64,
}

/// One cut of `at` (stopped with an operation in flight); `Ok(true)`: ended on the update,
/// `Ok(false)`: on the old image, and a newer update then completed; `Err`: an invariant broke.
///
/// The check is five boots (steps 0-4), each from a power-on state: three after the cut, then,
/// if the device is on the old image, the retry's offer and two more. A step's outcome depends
/// only on the flash, so each (step, flash) pair is looked up in the memo first and recorded
/// after.
fn cut_and_check(dev: &Device, at: &Runner, seed: u64, memo: &Memo) -> Result<bool, String> {
    let mut m = at.clone();
    if m.machine.power_cut(seed).is_none() {
        return Err("no flash operation in flight at the cut".into());
    }
    m.machine.power_on();
    let mut visited = Vec::new();
    let verdict = steps(dev, &mut m, memo, &mut visited);
    if memo.on {
        if let Ok(mut v) = memo.verdicts.lock() {
            for key in visited {
                v.entry(key).or_insert_with(|| verdict.clone());
            }
        }
    }
    verdict
}

fn steps(dev: &Device, m: &mut Runner, memo: &Memo, visited: &mut Vec<(u8, u128)>) -> Result<bool, String> {
    let mut last = None;
    for step in 0u8..5 {
        if step == 3 {
            if last.as_ref().is_some_and(|(s, _): &(char, String)| *s == NEW.0) {
                return Ok(true);
            }
            // Stayed old (the update was interrupted, or its trial was): a newer update goes
            // through.
            m.machine.ota_feed().ok_or("no OTA feed")?.offer(dev.retry.clone());
        }
        if memo.on {
            let key = (step, m.machine.flash_digest());
            if let Some(v) = memo.verdicts.lock().ok().and_then(|v| v.get(&key).cloned()) {
                return v;
            }
            visited.push(key);
        }
        memo.boots.fetch_add(1, Ordering::Relaxed);
        let b = ab::boot(m);
        let allowed: &[(char, &str)] = if step < 3 { &[OLD, NEW] } else { &[OLD, RETRY] };
        if b.booted.is_empty() {
            return Err(format!("boot {step} after the cut booted nothing:\n{}", b.console));
        }
        if let Some(bad) = b.booted.iter().find(|(s, v)| !allowed.contains(&(*s, v.as_str()))) {
            return Err(format!("boot {step} after the cut booted {bad:?}:\n{}", b.console));
        }
        last = b.booted.last().cloned();
    }
    if last != Some((RETRY.0, RETRY.1.to_owned())) {
        return Err(format!("the retried update did not complete: the last boot ran {last:?}"));
    }
    Ok(false)
}
