//! `cargo xtask bench`: the benchmarks, each a thin layer over the `twinbed` library, run as
//! a release build (the engine must be optimized).

use crate::{prereq, say};
use anyhow::{bail, Context, Result};
use clap::Subcommand;
use std::process::{Command, ExitCode};
use std::time::Duration;
use twinbed::runner::{Console, Sources};
use twinbed::{firmware, Board, Runner};

/// The benchmarks of `cargo xtask bench`.
#[derive(Subcommand)]
pub enum Bench {
    /// Guest instructions per second: twinbed's engine vs QEMU on the same ELFs (firmware/bench).
    ///
    /// (a) cpu: SHA-256 + one Ed25519 verify, ours vs QEMU TCG free-running. (b) duty: a timer
    /// wake every second of virtual time with ~25k instructions of work each, ours vs QEMU's
    /// deterministic `-icount shift=0,sleep=off`. Everything runs pinned to CPU 0 (QEMU under
    /// `taskset -c 0`, our engine's thread by sched_setaffinity); both engines' consoles must
    /// match. Prints wall times, guest instructions per second and ratios next to the targets;
    /// slow figures never fail it, a console mismatch does. Runs itself as a release build
    /// (the engine must be optimized). Quick by default (256 KiB, 1 h); --full: 1 MiB, 24 h.
    #[command(after_help = "Examples:\n  cargo xtask bench cpu\n  cargo xtask bench cpu --full")]
    Cpu {
        /// The full sizes: 1 MiB for (a), 24 h of virtual time (~2.2 G instructions) for (b).
        #[arg(long)]
        full: bool,
        /// Runs per engine and case; the fastest is kept (the least disturbed by the host).
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Wall-clock limit of each run, in seconds.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// Firmware we did not write: the benchmark corpus (firmware/corpus), ours vs QEMU.
    ///
    /// Twelve self-checking workloads from published crates and classic kernels (CRC-32
    /// bitwise and table-driven, SHA-256, BLAKE2s, ChaCha20, LZ4, a heapless event queue and
    /// state machine, libm soft-float, postcard round trips, fixed-point FIR/IIR filters,
    /// sorting and binary search, core::fmt formatting), each built in release (opt-level "s")
    /// and at opt-level 3, in two modes: cpu (slices back to back; vs QEMU TCG free-running)
    /// and duty (a slice per timer wake, once per virtual second, WFI in between; vs QEMU
    /// -icount shift=0,sleep=off). Each runs on our engine with the block compiler on, with
    /// it off, and on QEMU, all pinned to CPU 0; the three consoles must match byte for byte.
    ///
    /// Prints a markdown table per mode: M guest instructions, wall times, ours vs QEMU (>1:
    /// we are faster), JIT on vs off, the share of our time spent compiling, and flags (SLOWER
    /// THAN QEMU, JIT LOSES, COMPILE > 10%); then the geometric mean per mode next to the
    /// targets (cpu >= 1.5x, duty >= 3x, none slower than QEMU, the JIT never losing,
    /// compiling <= 10%). Slow figures never fail it; a console mismatch does (exit status 1).
    /// Runs itself as a release build. Quick by default (8,640 slices per workload, ~1/10 of
    /// full); --full: 86,400 slices (24 h of wakes in duty mode, 100-500 M instructions per
    /// CPU-bound run).
    #[command(
        after_help = "Examples:\n  cargo xtask bench corpus\n  cargo xtask bench corpus --only sha256 --runs 5\n  cargo xtask bench corpus --full --runs 1"
    )]
    Corpus {
        /// The full size: 86,400 slices per workload (a day of wakes in duty mode).
        #[arg(long)]
        full: bool,
        /// Only this workload (a bin of firmware/corpus/src/bin, e.g. `sha256`).
        #[arg(long, value_name = "NAME")]
        only: Option<String>,
        /// Runs per engine and workload; the fastest is kept. Default: 3 quick, 1 full.
        #[arg(long, value_name = "N")]
        runs: Option<u32>,
        /// Wall-clock limit of each run, in seconds.
        #[arg(long, default_value_t = 1800)]
        timeout: u64,
    },
    /// The full power-cut sweep of an A/B update (`cargo xtask sweep --full`): every flash
    /// operation, torn variants, all boots checked. Target: under 30 s on a 2-core machine.
    ///
    /// Side by side, a sample of cuts runs without the memo of power-on states (every cut boots
    /// five times, as a sweep without snapshots and memo would), and the ratio of the cost per
    /// cut is printed. Runs itself as a release build. Exit status 1 if anything bricked.
    #[command(after_help = "Examples:\n  cargo xtask bench sweep\n  cargo xtask bench sweep --variants 8")]
    Sweep {
        /// Torn variants per operation.
        #[arg(long, default_value_t = 4)]
        variants: u32,
        /// Worker threads (0: one per core, at most 4).
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// Telemetry records per second through the twin, end to end: a device client publishes
    /// records (QoS 1) to the embedded broker, the twin stores them in SQLite and acks; the
    /// clock stops at the last ack. Side by side: SQLite in memory and in a file (WAL). Runs
    /// itself as a release build.
    #[command(
        after_help = "Examples:\n  cargo xtask bench twin\n  cargo xtask bench twin --messages 100000"
    )]
    Twin {
        /// Records to send in each run.
        #[arg(long, default_value_t = 20_000)]
        messages: usize,
    },
    /// Device-days simulated per wall-second: the reference app with its energy accounts, on
    /// the native engine, side by side alone and next to its twin (modem, embedded broker, twin,
    /// sync points), sampling every second; then the budget run of budgets.toml: a week next
    /// to the twin, sampling every 60 s. Prints the energy figures of each run too. Runs
    /// itself as a release build. Quick by default (6 h of device time for the first two);
    /// --full: 7 days for all three.
    #[command(after_help = "Examples:\n  cargo xtask bench battery\n  cargo xtask bench battery --full")]
    Battery {
        /// 7 days of device time instead of 6 hours.
        #[arg(long)]
        full: bool,
    },
}

/// Runs `bench`.
pub fn run(bench: Bench) -> Result<ExitCode> {
    match bench {
        Bench::Cpu { full, runs, timeout } => bench_cpu(full, runs, timeout),
        Bench::Corpus { full, only, runs, timeout } => bench_corpus(full, only, runs, timeout),
        Bench::Sweep { variants, threads } => bench_sweep(variants, threads),
        Bench::Twin { messages } => bench_twin(messages),
        Bench::Battery { full } => bench_battery(full),
    }
}

/// `cargo xtask` is a debug build, and a benchmark of unoptimized code means nothing: runs
/// `cargo run --release -p xtask -- bench ARGS` instead.
fn bench_in_release(bench: &[&str]) -> Result<ExitCode> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["run", "--release", "--quiet", "--package", "xtask", "--", "bench"];
    args.extend(bench);
    say(&format!("the engine must be optimized: running `cargo {}`", args.join(" ")));
    let status = Command::new(&cargo)
        .current_dir(firmware::repo_root()?)
        .args(&args)
        .status()
        .with_context(|| format!("running {cargo} {}", args.join(" ")))?;
    Ok(if status.success() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `bench battery`: device-days per wall-second, alone and with the twin.
fn bench_battery(full: bool) -> Result<ExitCode> {
    if cfg!(debug_assertions) {
        return bench_in_release(if full { &["battery", "--full"] } else { &["battery"] });
    }
    let hours: u64 = if full { 7 * 24 } else { 6 };
    let board = Board::builtin("mps2-an385")?;
    let elf = firmware::build(firmware::Variant::Device, &mut say)?.app;
    let data = std::fs::read(&elf).with_context(|| format!("reading {}", elf.display()))?;
    let info = twinbed::elf::inspect(&elf)?;
    let cycles = hours * 3600 * u64::from(board.clock_hz);
    let temperature = |i: u32| 21_000 + ((i / 600) % 10) as i32 * 100;

    say(&format!("the reference app alone for {hours} h of device time"));
    let mut r = Runner::load(&board, &data)?;
    r.console = Console::new(Sources::Nothing);
    r.set_sample_hook(info.sample_hook);
    let started = std::time::Instant::now();
    let end = r.machine.now + cycles;
    match r.run_until(end, &mut |at| Some(temperature(at.index))) {
        twinbed_engine::Stop::Budget => {}
        other => bail!("the app stopped: {other:?}"),
    }
    let alone = started.elapsed().as_secs_f64();
    let alone_energy = r.machine.energy();

    let backend = twinbed::scenario::Backend::start(Default::default()).context("starting the twin")?;
    let mut quiet = backend.quiet();
    // The app next to its twin for `hours`, sampling every `interval_s` (a desired state) if
    // given: the device and the wall time.
    let mut with_twin = |imei: &str,
                         hours: u64,
                         interval_s: Option<u32>|
     -> Result<(twinbed::net::NetDevice, f64)> {
        let mut dev =
            twinbed::net::NetDevice::boot(&board, &elf, &twinbed::emulate::imei_for(imei), backend.broker())?;
        if let Some(secs) = interval_s {
            backend.set_desired(&dev.device_id(), 0, serde_json::json!({ "interval_s": secs }))?;
        }
        let started = std::time::Instant::now();
        let cycles = hours * 3600 * u64::from(board.clock_hz);
        let stop = dev.run(cycles, &mut quiet, &mut |r| Some(temperature(r.index)))?;
        let _ = dev.take_console();
        if stop != twinbed_engine::Stop::Budget {
            bail!("the app stopped: {stop:?}");
        }
        Ok((dev, started.elapsed().as_secs_f64()))
    };

    say(&format!("the reference app next to its twin for {hours} h of device time"));
    let (mut dev, with_twin_wall) = with_twin("bench", hours, None)?;
    let messages = dev.take_transcript().len();

    // The budget run of budgets.toml: a week, a sample every 60 s (a desired state).
    let week_h = 7 * 24;
    say(&format!("the reference app next to its twin for {week_h} h, a sample every 60 s (the budget run)"));
    let (week, week_wall) = with_twin("bench-week", week_h, Some(60))?;

    println!();
    println!("| run | device time | wall | device-days per wall-second | average current | projected battery life |");
    println!("|---|---|---|---|---|---|");
    for (name, h, wall, energy) in [
        ("app alone, a sample every second", hours, alone, alone_energy),
        ("app + modem + twin, a sample every second", hours, with_twin_wall, dev.machine().energy()),
        ("app + modem + twin, a sample every 60 s", week_h, week_wall, week.machine().energy()),
    ] {
        let (avg, life) = energy.map_or(("-".to_owned(), "-".to_owned()), |e| {
            let m = twinbed::energy::measured(&e, 0);
            (format!("{:.1} µA", m.average_current_ua()), format!("{:.0} days", m.battery_life_days()))
        });
        let d = h as f64 / 24.0;
        println!("| {name} | {h} h | {wall:.2} s | {:.2} | {avg} | {life} |", d / wall.max(1e-9));
    }
    println!();
    println!(
        "with the twin vs alone: {:.2}x the wall time ({messages} MQTT messages, {} readings)",
        with_twin_wall / alone.max(1e-9),
        dev.readings.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `bench twin`: the twin's ingest end to end, SQLite in memory and in a file, side by side.
fn bench_twin(messages: usize) -> Result<ExitCode> {
    if cfg!(debug_assertions) {
        let n = messages.to_string();
        return bench_in_release(&["twin", "--messages", &n]);
    }
    let dir = tempfile::tempdir().context("a temporary directory for the database file")?;
    let mut rows = Vec::new();
    for db in [twinbed_twin::DbLocation::Memory, twinbed_twin::DbLocation::File(dir.path().join("bench.db"))]
    {
        let mut opts = twinbed_twin::BenchOptions::new(messages);
        opts.db = db;
        say(&format!("{messages} records through the embedded broker into the twin ({:?})", opts.db));
        rows.push(twinbed_twin::bench_ingest_with(&opts).context("the twin benchmark")?);
    }
    println!();
    println!("| store | records | wall | records/s | acks received |");
    println!("|---|---|---|---|---|");
    for r in &rows {
        println!(
            "| {} | {} | {:.2} s | {:.0} | {} |",
            r.store, r.messages, r.seconds, r.messages_per_second, r.acks_received
        );
    }
    println!();
    println!("memory vs file: {:.2}x", rows[0].messages_per_second / rows[1].messages_per_second.max(1e-9));
    Ok(ExitCode::SUCCESS)
}

/// `bench sweep`: the full sweep, and a sample of it without the memo, side by side.
fn bench_sweep(variants: u32, threads: usize) -> Result<ExitCode> {
    if cfg!(debug_assertions) {
        let (v, t) = (variants.to_string(), threads.to_string());
        return bench_in_release(&["sweep", "--variants", &v, "--threads", &t]);
    }
    let mut quiet = |_: &str| {};
    say("building the bootloader and the app for slots A and B");
    let fw = firmware::build_ab(2, &mut say)?;
    let board = Board::builtin("mps2-an385")?;
    let full =
        twinbed::sweep::SweepOptions { variants: variants.max(1), stride: 1, threads, ..Default::default() };
    say(&format!("full sweep: every flash operation, {} torn variants each", full.variants));
    let started = std::time::Instant::now();
    let r = twinbed::sweep::run(&fw, &board, &full, &mut |m| say(m))?;
    let secs = started.elapsed().as_secs_f64();
    // The sample without the memo: about 16 operations spread over the update, one variant.
    let stride = (r.operations / 16).max(1);
    let sample =
        twinbed::sweep::SweepOptions { variants: 1, stride, memo: false, threads, ..Default::default() };
    say(&format!("sample without the memo: every {stride}th operation, one variant"));
    let started = std::time::Instant::now();
    let s = twinbed::sweep::run(&fw, &board, &sample, &mut quiet)?;
    let sample_secs = started.elapsed().as_secs_f64();
    let per_cut = secs / f64::from(r.cuts.max(1));
    let per_cut_plain = sample_secs / f64::from(s.cuts.max(1));
    println!();
    println!("| sweep | operations | cuts | boots run | wall | cuts/s | per cut |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| full, memo ({} variants) | {} | {} | {} | {secs:.1} s | {:.0} | {:.1} ms |",
        r.torn_variants,
        r.operations,
        r.cuts,
        r.boots_run,
        f64::from(r.cuts) / secs,
        per_cut * 1e3
    );
    println!(
        "| sample, no memo | {} | {} | {} | {sample_secs:.1} s | {:.0} | {:.1} ms |",
        s.operations,
        s.cuts,
        s.boots_run,
        f64::from(s.cuts) / sample_secs,
        per_cut_plain * 1e3
    );
    println!();
    println!(
        "memo vs none: {:.1}x less per cut (the full sweep without it: ~{:.0} s); full sweep {secs:.1} s vs target 30 s: {}",
        per_cut_plain / per_cut,
        per_cut_plain * f64::from(r.cuts),
        if secs < 30.0 { "met".to_owned() } else { format!("NOT MET ({:.2}x over)", secs / 30.0) }
    );
    println!(
        "bricked: {} (full), {} (sample); completed {}, stayed old {}",
        r.bricked, s.bricked, r.completed, r.stayed_old
    );
    for f in r.failures.iter().chain(&s.failures) {
        say(&format!("BRICKED: {f}"));
    }
    Ok(if r.bricked + s.bricked == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// `bench cpu`: re-runs itself as a release build if need be, pins this thread to CPU 0 and
/// calls [`twinbed::bench::run_cpu`].
fn bench_cpu(full: bool, runs: u32, timeout: u64) -> Result<ExitCode> {
    if cfg!(debug_assertions) {
        let (runs, timeout) = (runs.to_string(), timeout.to_string());
        let mut args = vec!["cpu", "--runs", &runs, "--timeout", &timeout];
        if full {
            args.push("--full");
        }
        return bench_in_release(&args);
    }
    prereq::ensure_qemu(&mut say)?;
    pin_to_cpu0()?;
    let board = Board::load("mps2-an385")?;
    let sizes = if full { twinbed::bench::FULL } else { twinbed::bench::QUICK };
    say(&format!(
        "bench cpu ({}): our engine vs QEMU on the same ELFs, pinned to CPU 0",
        if full { "full" } else { "quick; --full for 1 MiB and 24 h" }
    ));
    let result = twinbed::bench::run_cpu(&board, sizes, runs, Duration::from_secs(timeout), &mut say)?;
    println!();
    print!("{}", result.table());
    if result.consistent() {
        Ok(ExitCode::SUCCESS)
    } else {
        say("the engines disagree (see MISMATCH above): fix that before trusting any figure");
        Ok(ExitCode::FAILURE)
    }
}

/// `bench corpus`: re-runs itself as a release build if need be, pins this thread to CPU 0
/// and calls [`twinbed::bench::corpus::run_corpus`].
fn bench_corpus(full: bool, only: Option<String>, runs: Option<u32>, timeout: u64) -> Result<ExitCode> {
    if cfg!(debug_assertions) {
        let timeout = timeout.to_string();
        let runs = runs.map(|r| r.to_string());
        let mut args = vec!["corpus", "--timeout", &timeout];
        if full {
            args.push("--full");
        }
        if let Some(name) = &only {
            args.extend(["--only", name]);
        }
        if let Some(r) = &runs {
            args.extend(["--runs", r]);
        }
        return bench_in_release(&args);
    }
    use twinbed::firmware::CorpusScale;
    prereq::ensure_qemu(&mut say)?;
    pin_to_cpu0()?;
    let board = Board::load("mps2-an385")?;
    let scale = if full { CorpusScale::Full } else { CorpusScale::Quick };
    let mut opts = twinbed::bench::corpus::CorpusOptions::new(scale);
    opts.only = only;
    opts.runs = runs.unwrap_or(if full { 1 } else { 3 });
    opts.timeout = Duration::from_secs(timeout);
    say(&format!(
        "bench corpus ({}): firmware we did not write, ours (JIT on, off) vs QEMU, pinned to CPU 0",
        if full {
            "full: 86,400 slices per workload"
        } else {
            "quick: 8,640 slices per workload; --full for 86,400"
        }
    ));
    let result = twinbed::bench::corpus::run_corpus(&board, &opts, &mut say)?;
    print!("{}", result.table());
    if result.consistent() {
        Ok(ExitCode::SUCCESS)
    } else {
        say("the engines disagree (see MISMATCH above): fix that before trusting any figure");
        Ok(ExitCode::FAILURE)
    }
}

/// Pins the calling thread (and so the processes it starts) to CPU 0: unpinned runs on these
/// 2-core machines are slow and erratic.
fn pin_to_cpu0() -> Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_ZERO/CPU_SET write within it; pid 0 is this thread.
    let rc = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_ZERO(&mut set);
        libc::CPU_SET(0, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if rc != 0 {
        bail!("sched_setaffinity to CPU 0 failed: {}", std::io::Error::last_os_error());
    }
    Ok(())
}
