//! The CPU benchmark behind `cargo xtask bench cpu`: the same ELFs (`firmware/bench`) on
//! twinbed's engine and on QEMU, side by side in one run.
//!
//! - **cpu** (`bench-cpu`: SHA-256 of N KiB + one Ed25519 verify, no interrupts at all): ours
//!   against QEMU's TCG running free (no `-icount`), the fastest QEMU can go.
//! - **duty** (`bench-duty`: a timer wake every second of virtual time, ~25k instructions per
//!   wake, WFI in between): ours against QEMU's deterministic mode `-icount shift=0,sleep=off`,
//!   the mode twinbed runs QEMU in (virtual time from instructions, idle time skipped).
//!
//! QEMU runs as `taskset -c 0 qemu-system-arm ...`: unpinned, it is several times slower and
//! erratic on 2-core machines. Our engine runs in-process on the calling thread, which the
//! caller pins to the same CPU (the library has no affinity call of its own; the xtask uses
//! `sched_setaffinity`); [`CpuBench::pinning`] records what it was.
//!
//! Both engines must print the same console, byte for byte (the programs print only counts,
//! digests and checksums): a figure for a wrong result is worthless, so a difference is
//! reported next to the figures ([`CaseResult::consoles_match`]). QEMU does not count
//! instructions; the programs being deterministic (cpu has no interrupts, duty's interrupts
//! come at fixed instruction counts), it executes the same ones as ours, and its rate is
//! computed from our count. This is a benchmark, not a test: slow figures are reported, never
//! an error.
//!
//! The same runners measure the benchmark corpus ([`corpus`], `cargo xtask bench corpus`):
//! workloads from published crates, with the block compiler on and off, against QEMU.

pub mod corpus;

use crate::firmware::{self, BenchFirmware, BenchSizes};
use crate::{Board, Engine, Jit, Outcome, RunOptions};
use std::fmt::Write as _;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Sizes of the quick default run: 256 KiB for cpu, 1 h of virtual time for duty.
pub const QUICK: BenchSizes = BenchSizes { kib: 256, hours: 1 };
/// Sizes of `--full`: 1 MiB for cpu, 24 h of virtual time (~2.2 G instructions) for duty.
pub const FULL: BenchSizes = BenchSizes { kib: 1024, hours: 24 };

/// cpu target: our rate in M guest instructions per second, at least.
pub const CPU_MIN_MIPS: f64 = 150.0;
/// cpu target: our speed relative to free-running QEMU, at least.
pub const CPU_MIN_SPEEDUP: f64 = 1.0;
/// duty target: our speed relative to QEMU's deterministic mode, at least.
pub const DUTY_MIN_SPEEDUP: f64 = 2.0;

/// Why the benchmark could not run (slow figures are not errors).
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// The benchmark firmware did not build.
    #[error(transparent)]
    Build(#[from] firmware::BuildError),
    /// QEMU is missing or its command line could not be made for the board.
    #[error(transparent)]
    Qemu(#[from] twinbed_qemu::QemuError),
    /// Our engine could not run the ELF.
    #[error(transparent)]
    Run(#[from] crate::RunError),
    /// `--only` named no corpus workload.
    #[error("no corpus workload is called `{name}`; the workloads are: {known}")]
    UnknownWorkload {
        /// The name asked for.
        name: String,
        /// The known names, comma-separated.
        known: String,
    },
    /// A process could not be started or waited for.
    #[error("could not run `{what}`: {source}. Is it installed (taskset is in util-linux)?")]
    Spawn {
        /// The command.
        what: String,
        /// Why.
        source: std::io::Error,
    },
}

/// A benchmark case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Case {
    /// (a) CPU-bound: `bench-cpu`, ours vs QEMU TCG free-running.
    Cpu,
    /// (b) duty-cycled: `bench-duty`, ours vs QEMU `-icount shift=0,sleep=off`.
    Duty,
}

impl Case {
    /// The short name used in the table.
    pub fn name(self) -> &'static str {
        match self {
            Case::Cpu => "cpu",
            Case::Duty => "duty",
        }
    }

    /// What the case runs, for progress lines.
    pub fn describe(self, sizes: BenchSizes) -> String {
        match self {
            Case::Cpu => format!("(a) bench-cpu: SHA-256 of {} KiB + one Ed25519 verify", sizes.kib),
            Case::Duty => format!(
                "(b) bench-duty: {} h of virtual time, a wake per second, ~25k instructions per wake",
                sizes.hours
            ),
        }
    }

    /// The target, as printed next to the figures.
    pub fn target(self) -> String {
        match self {
            Case::Cpu => format!(">= {CPU_MIN_SPEEDUP:.0}x qemu, >= {CPU_MIN_MIPS:.0} M/s"),
            Case::Duty => format!(">= {DUTY_MIN_SPEEDUP:.0}x qemu icount"),
        }
    }

    /// How QEMU is run for this case.
    pub fn qemu_mode(self) -> QemuMode {
        match self {
            Case::Cpu => QemuMode::Free,
            Case::Duty => QemuMode::Icount,
        }
    }
}

/// How QEMU runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QemuMode {
    /// TCG free-running: no `-icount`, real time, not deterministic.
    Free,
    /// Deterministic: `-icount shift=0,sleep=off` (1 ns per instruction, idle time skipped).
    Icount,
}

/// Which emulator a measurement is of.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runner {
    /// twinbed's engine, in-process.
    Ours,
    /// QEMU in the given mode, under `taskset -c 0`.
    Qemu(QemuMode),
}

impl Runner {
    /// The name used in the table.
    pub fn name(self) -> &'static str {
        match self {
            Runner::Ours => "twinbed",
            Runner::Qemu(QemuMode::Free) => "qemu tcg",
            Runner::Qemu(QemuMode::Icount) => "qemu icount",
        }
    }
}

/// One run of one ELF on one emulator.
#[derive(Clone, Debug)]
pub struct Measurement {
    /// The emulator.
    pub runner: Runner,
    /// Wall-clock time of the run (for QEMU, from launch to exit, so its start-up is included).
    pub wall: Duration,
    /// Guest instructions as the emulator counted them (ours only).
    pub instructions: Option<u64>,
    /// The guest's exit status; `None` if it did not exit (wall-clock timeout).
    pub exit: Option<i32>,
    /// The console (UART0 and semihosting), one entry per line, `\r` removed.
    pub console: Vec<String>,
}

/// Both engines on one case.
#[derive(Clone, Debug)]
pub struct CaseResult {
    /// The case.
    pub case: Case,
    /// Our engine.
    pub ours: Measurement,
    /// QEMU.
    pub qemu: Measurement,
}

impl CaseResult {
    /// Whether both printed the same console and exited 0: only then do the figures mean
    /// anything.
    pub fn consoles_match(&self) -> bool {
        self.ours.console == self.qemu.console && self.ours.exit == Some(0) && self.qemu.exit == Some(0)
    }

    /// The first line where the consoles differ: (line number from 1, ours, QEMU's).
    pub fn first_difference(&self) -> Option<(usize, Option<&str>, Option<&str>)> {
        let (a, b) = (&self.ours.console, &self.qemu.console);
        (0..a.len().max(b.len()))
            .find(|&i| a.get(i) != b.get(i))
            .map(|i| (i + 1, a.get(i).map(String::as_str), b.get(i).map(String::as_str)))
    }

    /// Ours vs QEMU: QEMU's wall time over ours (2.0 means ours took half the time).
    pub fn speedup(&self) -> f64 {
        self.qemu.wall.as_secs_f64() / self.ours.wall.as_secs_f64().max(1e-9)
    }

    /// Our rate in M guest instructions per second.
    pub fn ours_mips(&self) -> Option<f64> {
        mips(self.ours.instructions, self.ours.wall)
    }

    /// QEMU's rate, computed from our instruction count (see the module docs).
    pub fn qemu_mips(&self) -> Option<f64> {
        mips(self.ours.instructions, self.qemu.wall)
    }

    /// Whether our figures meet the case's target.
    pub fn target_met(&self) -> bool {
        match self.case {
            Case::Cpu => {
                self.speedup() >= CPU_MIN_SPEEDUP && self.ours_mips().is_some_and(|m| m >= CPU_MIN_MIPS)
            }
            Case::Duty => self.speedup() >= DUTY_MIN_SPEEDUP,
        }
    }
}

fn mips(instructions: Option<u64>, wall: Duration) -> Option<f64> {
    instructions.map(|n| n as f64 / wall.as_secs_f64().max(1e-9) / 1e6)
}

/// The whole benchmark.
#[derive(Clone, Debug)]
pub struct CpuBench {
    /// The sizes the firmware was built with.
    pub sizes: BenchSizes,
    /// The ELFs.
    pub firmware: BenchFirmware,
    /// The CPUs our engine's thread was allowed to run on (`Cpus_allowed_list` of
    /// /proc/thread-self/status), e.g. `0`.
    pub pinning: String,
    /// Runs per engine and case (each figure is the fastest).
    pub runs: u32,
    /// One result per case, in order.
    pub results: Vec<CaseResult>,
}

impl CpuBench {
    /// Whether every case's consoles matched (the figures are valid).
    pub fn consistent(&self) -> bool {
        self.results.iter().all(CaseResult::consoles_match)
    }

    /// The final table: case, engine, wall s, guest instr, M instr/s, ratio, target, met?,
    /// then footnotes and any console mismatch.
    pub fn table(&self) -> String {
        let mut rows: Vec<[String; 8]> = vec![[
            "case".into(),
            "engine".into(),
            "wall s".into(),
            "guest instr".into(),
            "M instr/s".into(),
            "ratio".into(),
            "target".into(),
            "met?".into(),
        ]];
        for r in &self.results {
            let met = if !r.consoles_match() {
                "INVALID: outputs differ".to_owned()
            } else if r.target_met() {
                "yes".to_owned()
            } else {
                "NO".to_owned()
            };
            rows.push([
                r.case.name().into(),
                r.ours.runner.name().into(),
                format!("{:.3}", r.ours.wall.as_secs_f64()),
                r.ours.instructions.map_or("?".into(), group),
                r.ours_mips().map_or("?".into(), |m| format!("{m:.1}")),
                format!("{:.2}x", r.speedup()),
                r.case.target(),
                met,
            ]);
            rows.push([
                String::new(),
                r.qemu.runner.name().into(),
                format!("{:.3}", r.qemu.wall.as_secs_f64()),
                r.ours.instructions.map_or("?".into(), |n| format!("{}*", group(n))),
                r.qemu_mips().map_or("?".into(), |m| format!("{m:.1}")),
                "1.00x".into(),
                String::new(),
                String::new(),
            ]);
        }
        let widths: Vec<usize> = (0..8).map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0)).collect();
        let mut out = String::new();
        for (i, row) in rows.iter().enumerate() {
            let cells: Vec<String> = row
                .iter()
                .zip(&widths)
                .enumerate()
                .map(|(c, (cell, w))| match c {
                    // Numbers right-aligned, text left-aligned.
                    2..=5 => format!("{cell:>w$}"),
                    _ => format!("{cell:<w$}"),
                })
                .collect();
            let _ = writeln!(out, "{}", cells.join("  ").trim_end());
            if i == 0 {
                let _ =
                    writeln!(out, "{}", widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>().join("  "));
            }
        }
        let _ = writeln!(
            out,
            "ratio: ours vs QEMU, QEMU's wall time over ours (2.00x = ours takes half the time). QEMU's wall \
             time includes its start-up."
        );
        let _ = writeln!(
            out,
            "* QEMU does not count instructions; the programs are deterministic and printed the same \
             console, so it ran the same instructions as ours and its rate uses our count."
        );
        let _ = writeln!(
            out,
            "sizes: cpu {} KiB, duty {} h of virtual time; fastest of {} run{} each; our engine's thread on \
             CPU(s) {}, QEMU under `taskset -c 0`; qemu tcg = free-running TCG, qemu icount = -icount \
             shift=0,sleep=off.",
            self.sizes.kib,
            self.sizes.hours,
            self.runs,
            plural(self.runs),
            self.pinning
        );
        for r in self.results.iter().filter(|r| !r.consoles_match()) {
            let _ = writeln!(out, "{}", mismatch_text(r));
        }
        out
    }
}

/// A loud description of a console mismatch (or a failed run) of a case.
pub fn mismatch_text(r: &CaseResult) -> String {
    let mut s = format!(
        "MISMATCH in {}: the figures are worthless until both engines agree. Exit: {} {:?}, {} {:?}.",
        r.case.name(),
        r.ours.runner.name(),
        r.ours.exit,
        r.qemu.runner.name(),
        r.qemu.exit
    );
    if let Some((line, ours, qemu)) = r.first_difference() {
        let _ = write!(
            s,
            " First difference at console line {line}: {} {:?}, {} {:?}.",
            r.ours.runner.name(),
            ours.unwrap_or("<no line>"),
            r.qemu.runner.name(),
            qemu.unwrap_or("<no line>")
        );
    }
    s
}

/// `1234567` as `1,234,567`.
pub(crate) fn group(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The CPUs the calling thread may run on, as Linux lists them (`0`, `0-1`), or `unknown`.
pub fn thread_cpus() -> String {
    std::fs::read_to_string("/proc/thread-self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:").map(|v| v.trim().to_owned()))
        })
        .unwrap_or_else(|| "unknown".into())
}

/// Builds the benchmark firmware for `sizes`, then runs each case `runs` times (at least once)
/// on our engine (on the calling thread, which the caller pins) and on QEMU under `taskset -c 0`,
/// alternating, and keeps each engine's fastest run (the least disturbed by the host). Each run
/// may take up to `timeout` of wall-clock time. `progress` gets one line per step.
pub fn run_cpu(
    board: &Board,
    sizes: BenchSizes,
    runs: u32,
    timeout: Duration,
    progress: &mut dyn FnMut(&str),
) -> Result<CpuBench, BenchError> {
    let qemu = crate::qemu_binary()?;
    let target_dir = firmware::bench_target_dir(sizes).map_err(firmware::BuildError::from)?;
    progress(&format!(
        "building the benchmark firmware (bench-cpu {} KiB, bench-duty {} h) in {}",
        sizes.kib,
        sizes.hours,
        target_dir.display()
    ));
    let fw = firmware::build_bench(sizes, progress)?;
    let pinning = thread_cpus();
    if pinning.contains(['-', ',']) {
        progress(&format!(
            "warning: our engine's thread may run on CPUs {pinning}, not one: its figures may be noisy"
        ));
    }
    let runs = runs.max(1);
    let mut results = Vec::new();
    for (case, elf) in [(Case::Cpu, &fw.cpu), (Case::Duty, &fw.duty)] {
        progress(&format!("{} ({runs} run{} each, fastest kept)", case.describe(sizes), plural(runs)));
        let mut ours: Option<Measurement> = None;
        let mut theirs: Option<Measurement> = None;
        for run in 1..=runs {
            let o = run_ours(board, elf, timeout)?;
            progress(&format!("  run {run}: {}", summary(&o)));
            let q = run_qemu(&qemu, board, elf, case.qemu_mode(), timeout)?;
            progress(&format!("  run {run}: {}", summary(&q)));
            // The first run's console is the reference; a run that departs from it is kept
            // instead of a faster one, so the mismatch shows.
            let reference = ours.as_ref().map_or(&o.console, |r| &r.console).clone();
            keep(&mut ours, o, &reference);
            keep(&mut theirs, q, &reference);
        }
        let (Some(ours), Some(qemu)) = (ours, theirs) else { unreachable!("runs >= 1") };
        let result = CaseResult { case, ours, qemu };
        if result.consoles_match() {
            progress(&format!("  consoles identical ({} lines) in every run", result.ours.console.len()));
        } else {
            progress(&format!("  {}", mismatch_text(&result)));
        }
        results.push(result);
    }
    Ok(CpuBench { sizes, firmware: fw, pinning, runs, results })
}

pub(crate) fn plural(n: u32) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Keeps the fastest of the runs whose console is `reference`, or the first that is not.
pub(crate) fn keep(kept: &mut Option<Measurement>, new: Measurement, reference: &[String]) {
    if replaces(kept.as_ref(), &new, reference) {
        *kept = Some(new);
    }
}

/// Whether [`keep`] would keep `new` instead of `kept`.
pub(crate) fn replaces(kept: Option<&Measurement>, new: &Measurement, reference: &[String]) -> bool {
    match kept {
        None => true,
        Some(k) if k.console != reference || k.exit != Some(0) => false,
        Some(k) => new.console != reference || new.exit != Some(0) || new.wall < k.wall,
    }
}

pub(crate) fn summary(m: &Measurement) -> String {
    let exit = m.exit.map_or("did not exit (timeout)".to_owned(), |c| format!("exit {c}"));
    let count = m.instructions.map_or(String::new(), |n| {
        format!(", {} instructions, {:.1} M/s", group(n), mips(Some(n), m.wall).unwrap_or(0.0))
    });
    format!("{:<11} {:>8.3} s wall, {exit}{count}", m.runner.name(), m.wall.as_secs_f64())
}

/// Runs `elf` on our engine, in-process on this thread, with the default block compiler
/// setting.
fn run_ours(board: &Board, elf: &Path, timeout: Duration) -> Result<Measurement, BenchError> {
    run_ours_with(board, elf, Jit::Auto, timeout).map(|(m, _)| m)
}

/// Runs `elf` on our engine, in-process on this thread, with the block compiler set to `jit`;
/// also returns what the compiler did during the run (blocks, host time compiling).
pub(crate) fn run_ours_with(
    board: &Board,
    elf: &Path,
    jit: Jit,
    timeout: Duration,
) -> Result<(Measurement, twinbed_engine::CompileStats), BenchError> {
    // Every run compiles its own blocks: the compiler's time counts, as QEMU's does.
    twinbed_engine::forget_compiled_blocks();
    let mut opts = RunOptions::new(board.clone(), elf);
    opts.engine = Engine::Native;
    opts.jit = jit;
    opts.timeout = timeout;
    let mut console = Vec::new();
    let before = twinbed_engine::compile_stats();
    let report = crate::run(&opts, &mut |line: &str| console.push(line.to_owned()))?;
    let after = twinbed_engine::compile_stats();
    let compiled = twinbed_engine::CompileStats {
        blocks: after.blocks.saturating_sub(before.blocks),
        instrs: after.instrs.saturating_sub(before.instrs),
        nanos: after.nanos.saturating_sub(before.nanos),
    };
    let exit = match report.outcome {
        Outcome::Exited(c) => Some(c),
        Outcome::Stopped | Outcome::TimedOut => None,
    };
    let m = Measurement {
        runner: Runner::Ours,
        wall: report.wall,
        instructions: report.instructions,
        exit,
        console,
    };
    Ok((m, compiled))
}

/// The QEMU command line for a plain launch: the backend's own (machine, console, semihosting,
/// devices, `-icount`), without what it adds for its QMP/gdb control (`-S`, `-qmp`): here QEMU
/// starts at once and is only timed.
fn qemu_args(
    board: &Board,
    elf: &Path,
    mode: QemuMode,
    timeout: Duration,
) -> Result<Vec<String>, BenchError> {
    let cfg = twinbed_qemu::RunConfig {
        board: board.clone(),
        elf: elf.to_owned(),
        icount_shift: (mode == QemuMode::Icount).then_some(0),
        timeout,
        sample_hook: None,
        initial_temperature: None,
        preload: Vec::new(),
        serial1: None,
    };
    let full = twinbed_qemu::command_line(&cfg, Path::new("unused.qmp"), None)?;
    let mut args = Vec::new();
    let mut it = full.into_iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-S" => {}
            "-qmp" => {
                it.next();
            }
            _ => args.push(a),
        }
    }
    Ok(args)
}

/// Runs `elf` on `taskset -c 0 <qemu> ...`, console from stdout, killed after `timeout`.
pub(crate) fn run_qemu(
    qemu: &PathBuf,
    board: &Board,
    elf: &Path,
    mode: QemuMode,
    timeout: Duration,
) -> Result<Measurement, BenchError> {
    let args = qemu_args(board, elf, mode, timeout)?;
    let what = format!("taskset -c 0 {} {}", qemu.display(), args.join(" "));
    tracing::info!(target: "qemu", "{what}");
    let spawn_err = |source| BenchError::Spawn { what: what.clone(), source };
    let started = Instant::now();
    let mut child = Command::new("taskset")
        .args(["-c", "0"])
        .arg(qemu)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(spawn_err)?;
    // Drain both pipes on threads, so QEMU never blocks on a full pipe.
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_string(&mut text);
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = started + timeout;
    let status = loop {
        if let Some(status) = child.try_wait().map_err(spawn_err)? {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let wall = started.elapsed();
    let out = stdout.join().unwrap_or_default();
    let err = stderr.join().unwrap_or_default();
    if !err.trim().is_empty() {
        tracing::warn!(target: "qemu", "qemu stderr: {}", err.trim());
    }
    let console = out.lines().map(|l| l.trim_end_matches('\r').to_owned()).collect();
    Ok(Measurement {
        runner: Runner::Qemu(mode),
        wall,
        instructions: None,
        exit: status.and_then(|s| s.code()),
        console,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_digits() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1000), "1,000");
        assert_eq!(group(2_160_000_000), "2,160,000,000");
    }

    fn m(runner: Runner, wall_ms: u64, console: &[&str]) -> Measurement {
        Measurement {
            runner,
            wall: Duration::from_millis(wall_ms),
            instructions: Some(300_000_000),
            exit: Some(0),
            console: console.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn targets_and_mismatches() {
        let r = CaseResult {
            case: Case::Cpu,
            ours: m(Runner::Ours, 1000, &["a", "b"]),
            qemu: m(Runner::Qemu(QemuMode::Free), 1500, &["a", "b"]),
        };
        assert!(r.consoles_match());
        assert!((r.speedup() - 1.5).abs() < 1e-9);
        assert!(r.target_met());
        let r = CaseResult { case: Case::Duty, ..r };
        assert!(!r.target_met(), "1.5x is below the duty target of 2x");
        let r = CaseResult { qemu: m(Runner::Qemu(QemuMode::Icount), 1500, &["a", "c"]), ..r };
        assert!(!r.consoles_match());
        assert_eq!(r.first_difference(), Some((2, Some("b"), Some("c"))));
    }
}
