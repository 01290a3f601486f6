//! The benchmark corpus behind `cargo xtask bench corpus`: firmware we did not write
//! (`firmware/corpus`: published crates and classic kernels, built as firmware teams ship
//! them, opt-level `s` and 3), each workload on our engine with the block compiler on, with
//! it off, and on QEMU, side by side in one run.
//!
//! Two modes, each workload built for both:
//! - **cpu**: the workload's slices back to back, no interrupts; QEMU's TCG runs free (no
//!   `-icount`), the fastest QEMU can go;
//! - **duty**: one slice per wake of CMSDK timer 0, once per second of virtual time, WFI in
//!   between; QEMU in its deterministic mode `-icount shift=0,sleep=off`.
//!
//! Everything is pinned as [`run_cpu`](super::run_cpu) pins it (QEMU under `taskset -c 0`, our
//! engine on the calling thread, which the caller pins) and uses the same runners. The three
//! consoles must be equal byte for byte and every run must exit 0 (each workload checks
//! itself and prints only counts and digests): otherwise the row is flagged `MISMATCH` and
//! [`CorpusBench::consistent`] is false. Slow figures are reported, never an error.
//!
//! With the compiler on, the share of our wall time spent compiling comes from
//! [`twinbed_engine::compile_stats`] around the run; every run first makes the engine forget
//! its compiled blocks, so each pays for its own compiles, as QEMU does.

use super::{
    plural, replaces, run_ours_with, run_qemu, summary, thread_cpus, BenchError, Measurement, QemuMode,
};
use crate::firmware::{self, CorpusMode, CorpusProfile, CorpusScale};
use crate::{Board, Jit};
use std::fmt::Write as _;
use std::time::Duration;

/// cpu target: the geometric mean of ours (compiler on) vs QEMU TCG, at least.
pub const CPU_MIN_GEOMEAN: f64 = 1.5;
/// duty target: the geometric mean of ours (compiler on) vs QEMU icount, at least.
pub const DUTY_MIN_GEOMEAN: f64 = 3.0;
/// Target: the share of our wall time spent compiling, at most, on any workload.
pub const MAX_COMPILE_SHARE: f64 = 0.10;

/// What to run.
#[derive(Clone, Debug)]
pub struct CorpusOptions {
    /// The size of every workload.
    pub scale: CorpusScale,
    /// The modes, in table order.
    pub modes: Vec<CorpusMode>,
    /// The profiles, in row order.
    pub profiles: Vec<CorpusProfile>,
    /// Only the workload of this name (`--only`); `None` for all.
    pub only: Option<String>,
    /// Runs per engine and workload (at least 1); each figure is the fastest.
    pub runs: u32,
    /// Wall-clock limit of each run.
    pub timeout: Duration,
    /// The block compiler setting of the "JIT on" runs: [`Jit::Auto`] for the bench (as users
    /// run it), [`Jit::Eager`] for the test (every block compiled at first sight).
    pub jit_on: Jit,
}

impl CorpusOptions {
    /// Both modes, both profiles, every workload, one run each, compiler on as users run it.
    pub fn new(scale: CorpusScale) -> Self {
        Self {
            scale,
            modes: vec![CorpusMode::Cpu, CorpusMode::Duty],
            profiles: CorpusProfile::ALL.to_vec(),
            only: None,
            runs: 1,
            timeout: Duration::from_secs(600),
            jit_on: Jit::Auto,
        }
    }
}

/// How QEMU runs for `mode`.
pub fn qemu_mode(mode: CorpusMode) -> QemuMode {
    match mode {
        CorpusMode::Cpu => QemuMode::Free,
        CorpusMode::Duty => QemuMode::Icount,
    }
}

/// One workload in one profile and mode, on the three engines.
#[derive(Clone, Debug)]
pub struct Row {
    /// The workload (the bin's name).
    pub workload: String,
    /// The profile it was built in.
    pub profile: CorpusProfile,
    /// The mode it was built for.
    pub mode: CorpusMode,
    /// Ours, block compiler on.
    pub jit_on: Measurement,
    /// What the compiler did during the kept "on" run.
    pub compiled: twinbed_engine::CompileStats,
    /// Ours, block compiler off (interpreter only).
    pub jit_off: Measurement,
    /// QEMU ([`qemu_mode`] of the mode).
    pub qemu: Measurement,
}

impl Row {
    /// Whether the three consoles are equal and every run exited 0: only then do the figures
    /// mean anything.
    pub fn consoles_match(&self) -> bool {
        let all = [&self.jit_on, &self.jit_off, &self.qemu];
        all.iter().all(|m| m.exit == Some(0) && m.console == self.jit_on.console)
    }

    /// The first console line where a run departs from the "on" run: (line from 1, which run,
    /// its line, the "on" run's line).
    pub fn first_difference(&self) -> Option<(usize, &'static str, Option<&str>, Option<&str>)> {
        let a = &self.jit_on.console;
        [("jit off", &self.jit_off), ("qemu", &self.qemu)].into_iter().find_map(|(name, m)| {
            let b = &m.console;
            (0..a.len().max(b.len()))
                .find(|&i| a.get(i) != b.get(i))
                .map(|i| (i + 1, name, b.get(i).map(String::as_str), a.get(i).map(String::as_str)))
        })
    }

    /// Ours (compiler on) vs QEMU: QEMU's wall time over ours (> 1: we are faster).
    pub fn speedup(&self) -> f64 {
        self.qemu.wall.as_secs_f64() / self.jit_on.wall.as_secs_f64().max(1e-9)
    }

    /// Compiler on vs off: the "off" wall time over the "on" one (> 1: the compiler helps).
    pub fn jit_gain(&self) -> f64 {
        self.jit_off.wall.as_secs_f64() / self.jit_on.wall.as_secs_f64().max(1e-9)
    }

    /// The share of the "on" run's wall time spent compiling.
    pub fn compile_share(&self) -> f64 {
        self.compiled.nanos as f64 / 1e9 / self.jit_on.wall.as_secs_f64().max(1e-9)
    }

    /// What is wrong with the row, as flags for the table (empty when all is well).
    pub fn flags(&self) -> Vec<&'static str> {
        let mut flags = Vec::new();
        if !self.consoles_match() {
            flags.push("MISMATCH");
        }
        if self.speedup() < 1.0 {
            flags.push("SLOWER THAN QEMU");
        }
        if self.jit_gain() < 1.0 {
            flags.push("JIT LOSES");
        }
        if self.compile_share() > MAX_COMPILE_SHARE {
            flags.push("COMPILE > 10%");
        }
        flags
    }
}

/// The whole corpus run.
#[derive(Clone, Debug)]
pub struct CorpusBench {
    /// The size the workloads were built with.
    pub scale: CorpusScale,
    /// The CPUs our engine's thread was allowed to run on (e.g. `0`).
    pub pinning: String,
    /// Runs per engine and workload (each figure is the fastest).
    pub runs: u32,
    /// The "on" runs' compiler setting.
    pub jit_on: Jit,
    /// One row per (mode, profile, workload), in table order.
    pub rows: Vec<Row>,
}

impl CorpusBench {
    /// Whether every row's consoles matched (the figures are valid).
    pub fn consistent(&self) -> bool {
        self.rows.iter().all(Row::consoles_match)
    }

    /// The geometric mean of ours vs QEMU over `mode`'s rows (Embench's summary), if any.
    pub fn geomean(&self, mode: CorpusMode) -> Option<f64> {
        let logs: Vec<f64> = self.rows.iter().filter(|r| r.mode == mode).map(|r| r.speedup().ln()).collect();
        (!logs.is_empty()).then(|| (logs.iter().sum::<f64>() / logs.len() as f64).exp())
    }

    /// The report: per mode a markdown table (workload, profile, M instructions, wall times,
    /// ratios, compile share, flags) and its summary against the targets, then footnotes and
    /// any console mismatch.
    pub fn table(&self) -> String {
        let mut out = String::new();
        for mode in [CorpusMode::Cpu, CorpusMode::Duty] {
            let rows: Vec<&Row> = self.rows.iter().filter(|r| r.mode == mode).collect();
            if rows.is_empty() {
                continue;
            }
            let qemu = match qemu_mode(mode) {
                QemuMode::Free => "QEMU TCG",
                QemuMode::Icount => "QEMU icount",
            };
            let _ =
                writeln!(out, "\n### {} ({} slices per workload)\n", mode_title(mode), self.scale.slices());
            let _ = writeln!(
                out,
                "| workload | profile | M instr | ours JIT on (s) | JIT off (s) | {qemu} (s) | ours vs QEMU | JIT on vs off | compile | flags |"
            );
            let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|---|");
            for r in &rows {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.2}x | {:.2}x | {:.1}% | {} |",
                    r.workload,
                    r.profile.name(),
                    r.jit_on.instructions.map_or("?".into(), |n| format!("{:.1}", n as f64 / 1e6)),
                    r.jit_on.wall.as_secs_f64(),
                    r.jit_off.wall.as_secs_f64(),
                    r.qemu.wall.as_secs_f64(),
                    r.speedup(),
                    r.jit_gain(),
                    r.compile_share() * 100.0,
                    r.flags().join(", ")
                );
            }
            let target = match mode {
                CorpusMode::Cpu => CPU_MIN_GEOMEAN,
                CorpusMode::Duty => DUTY_MIN_GEOMEAN,
            };
            let g = self.geomean(mode).unwrap_or(0.0);
            let count = |f: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| f(r)).count();
            let slower = count(&|r| r.speedup() < 1.0);
            let loses = count(&|r| r.jit_gain() < 1.0);
            let compile = count(&|r| r.compile_share() > MAX_COMPILE_SHARE);
            let met = |ok: bool| if ok { "met" } else { "NOT MET" };
            let _ = writeln!(out);
            let _ = writeln!(
                out,
                "{}: geometric mean ours vs {qemu} **{g:.2}x** (target >= {target:.1}x: {}); slower than QEMU: \
                 {slower} of {} (target 0: {}); JIT loses to the interpreter: {loses} (target 0: {}); compiling \
                 > 10% of our wall time: {compile} (target 0: {}).",
                mode.name(),
                met(g >= target),
                rows.len(),
                met(slower == 0),
                met(loses == 0),
                met(compile == 0),
            );
        }
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "ours vs QEMU: QEMU's wall time over ours with the compiler on (> 1: we are faster; QEMU's \
             includes its start-up). JIT on vs off: the interpreter's wall time over the compiler's. \
             compile: host time compiling blocks over the JIT-on wall time. M instr: guest instructions \
             (ours counts them; QEMU runs the same ones, its console being the same)."
        );
        let _ = writeln!(
            out,
            "profiles: s = release (opt-level \"s\"), 3 = corpus-o3 (opt-level 3). Fastest of {} run{} each; \
             JIT on = {:?}; our engine's thread on CPU(s) {}, QEMU under `taskset -c 0`; cpu: QEMU TCG \
             free-running; duty: QEMU -icount shift=0,sleep=off.",
            self.runs,
            plural(self.runs),
            self.jit_on,
            self.pinning
        );
        for r in self.rows.iter().filter(|r| !r.consoles_match()) {
            let _ = writeln!(out, "{}", mismatch_text(r));
        }
        out
    }
}

fn mode_title(mode: CorpusMode) -> &'static str {
    match mode {
        CorpusMode::Cpu => "cpu: CPU-bound, ours vs QEMU TCG free-running",
        CorpusMode::Duty => "duty: a timer wake per virtual second, ours vs QEMU -icount shift=0,sleep=off",
    }
}

/// A loud description of a row whose consoles differ (or whose runs did not all exit 0).
pub fn mismatch_text(r: &Row) -> String {
    let mut s = format!(
        "MISMATCH in {} ({}, opt-level {}): the figures are worthless until the engines agree. Exit: jit on {:?}, \
         jit off {:?}, qemu {:?}.",
        r.workload,
        r.mode.name(),
        r.profile.name(),
        r.jit_on.exit,
        r.jit_off.exit,
        r.qemu.exit
    );
    if let Some((line, who, theirs, on)) = r.first_difference() {
        let _ = write!(
            s,
            " First difference at console line {line}: {who} {:?}, jit on {:?}.",
            theirs.unwrap_or("<no line>"),
            on.unwrap_or("<no line>")
        );
    }
    s
}

/// Builds the corpus for `opts` and runs every (mode, profile, workload) on ours with the
/// compiler on, ours with it off, and QEMU, `opts.runs` times each (alternating), keeping each
/// engine's fastest run. `progress` gets a line per build, workload and run.
pub fn run_corpus(
    board: &Board,
    opts: &CorpusOptions,
    progress: &mut dyn FnMut(&str),
) -> Result<CorpusBench, BenchError> {
    let qemu = crate::qemu_binary()?;
    let all = firmware::corpus_workloads();
    let workloads: Vec<String> = match &opts.only {
        None => all,
        Some(name) if all.contains(name) => vec![name.clone()],
        Some(name) => return Err(BenchError::UnknownWorkload { name: name.clone(), known: all.join(", ") }),
    };
    let pinning = thread_cpus();
    if pinning.contains(['-', ',']) {
        progress(&format!(
            "warning: our engine's thread may run on CPUs {pinning}, not one: its figures may be noisy"
        ));
    }
    let runs = opts.runs.max(1);
    let mut rows = Vec::new();
    for &mode in &opts.modes {
        for &profile in &opts.profiles {
            progress(&format!(
                "building the corpus ({}, {}, opt-level {}) in {}",
                mode.name(),
                opts.scale.name(),
                profile.name(),
                firmware::corpus_target_dir(mode, opts.scale).map_err(firmware::BuildError::from)?.display()
            ));
            let dir = firmware::build_corpus(mode, opts.scale, profile, progress)?;
            for workload in &workloads {
                let elf = dir.join(workload);
                progress(&format!(
                    "{workload} ({}, opt-level {}; {runs} run{} per engine, fastest kept)",
                    mode.name(),
                    profile.name(),
                    plural(runs)
                ));
                let mut on: Option<(Measurement, twinbed_engine::CompileStats)> = None;
                let mut off: Option<Measurement> = None;
                let mut theirs: Option<Measurement> = None;
                for run in 1..=runs {
                    let (o, compiled) = run_ours_with(board, &elf, opts.jit_on, opts.timeout)?;
                    progress(&format!("  run {run}: jit on  {}", summary(&o)));
                    let f = run_ours_with(board, &elf, Jit::Off, opts.timeout)?.0;
                    progress(&format!("  run {run}: jit off {}", summary(&f)));
                    let q = run_qemu(&qemu, board, &elf, qemu_mode(mode), opts.timeout)?;
                    progress(&format!("  run {run}: {}", summary(&q)));
                    // The first "on" run's console is the reference; a run that departs from
                    // it is kept instead of a faster one, so the mismatch shows.
                    let reference = on.as_ref().map_or(&o.console, |(r, _)| &r.console).clone();
                    if replaces(on.as_ref().map(|(m, _)| m), &o, &reference) {
                        on = Some((o, compiled));
                    }
                    if replaces(off.as_ref(), &f, &reference) {
                        off = Some(f);
                    }
                    if replaces(theirs.as_ref(), &q, &reference) {
                        theirs = Some(q);
                    }
                }
                let (Some((jit_on, compiled)), Some(jit_off), Some(qemu)) = (on, off, theirs) else {
                    unreachable!("runs >= 1")
                };
                let row = Row { workload: workload.clone(), profile, mode, jit_on, compiled, jit_off, qemu };
                if row.consoles_match() {
                    progress(&format!(
                        "  consoles identical ({} lines); ours vs QEMU {:.2}x, JIT on vs off {:.2}x, compiling {:.1}%",
                        row.jit_on.console.len(),
                        row.speedup(),
                        row.jit_gain(),
                        row.compile_share() * 100.0
                    ));
                } else {
                    progress(&format!("  {}", mismatch_text(&row)));
                }
                rows.push(row);
            }
        }
    }
    Ok(CorpusBench { scale: opts.scale, pinning, runs, jit_on: opts.jit_on, rows })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Runner;

    fn m(runner: Runner, wall_ms: u64, console: &[&str]) -> Measurement {
        Measurement {
            runner,
            wall: Duration::from_millis(wall_ms),
            instructions: Some(30_000_000),
            exit: Some(0),
            console: console.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn row(on_ms: u64, off_ms: u64, qemu_ms: u64, compile_ms: u64) -> Row {
        Row {
            workload: "w".into(),
            profile: CorpusProfile::Size,
            mode: CorpusMode::Cpu,
            jit_on: m(Runner::Ours, on_ms, &["a", "b"]),
            compiled: twinbed_engine::CompileStats { blocks: 10, instrs: 0, nanos: compile_ms * 1_000_000 },
            jit_off: m(Runner::Ours, off_ms, &["a", "b"]),
            qemu: m(Runner::Qemu(QemuMode::Free), qemu_ms, &["a", "b"]),
        }
    }

    #[test]
    fn ratios_and_flags() {
        let r = row(100, 300, 200, 5);
        assert!(r.consoles_match());
        assert!((r.speedup() - 2.0).abs() < 1e-9);
        assert!((r.jit_gain() - 3.0).abs() < 1e-9);
        assert!((r.compile_share() - 0.05).abs() < 1e-9);
        assert!(r.flags().is_empty());
        let r = row(400, 300, 200, 50);
        assert_eq!(r.flags(), ["SLOWER THAN QEMU", "JIT LOSES", "COMPILE > 10%"]);
    }

    #[test]
    fn a_console_difference_is_a_mismatch() {
        let mut r = row(100, 300, 200, 5);
        r.qemu.console[1] = "c".into();
        assert!(!r.consoles_match());
        assert_eq!(r.first_difference(), Some((2, "qemu", Some("c"), Some("b"))));
        assert_eq!(r.flags(), ["MISMATCH"]);
        let mut r = row(100, 300, 200, 5);
        r.jit_off.exit = Some(1);
        assert!(!r.consoles_match());
    }

    #[test]
    fn geomean_is_embench_style() {
        let mut a = row(100, 300, 200, 5);
        a.workload = "a".into();
        let b = row(100, 300, 50, 5);
        let bench = CorpusBench {
            scale: CorpusScale::Tiny,
            pinning: "0".into(),
            runs: 1,
            jit_on: Jit::Auto,
            rows: vec![a, b],
        };
        // sqrt(2.0 * 0.5) = 1
        assert!((bench.geomean(CorpusMode::Cpu).unwrap_or(0.0) - 1.0).abs() < 1e-9);
        assert_eq!(bench.geomean(CorpusMode::Duty), None);
        assert!(bench.table().contains("| a | s | 30.0 |"));
    }
}
