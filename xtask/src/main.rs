//! `cargo xtask`: the project's tasks (matklad's xtask convention). Each task is thin and calls
//! the `twinbed` library. Run `cargo xtask` for the list.

mod prereq;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Duration;
use twinbed::{firmware, Board, Engine, Outcome, RunOptions, TemperatureProfile};

/// twinbed's tasks. `cargo xtask <task> --help` explains each one.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask")]
struct Cli {
    #[command(subcommand)]
    task: Option<Task>,
}

#[derive(Subcommand)]
enum Task {
    /// Build the firmware workspace (firmware/) for the board; installs the Rust target if missing.
    BuildFirmware {
        /// Build the test-mode app, which exits after this many samples.
        #[arg(long, value_name = "N")]
        test_mode: Option<u32>,
    },
    /// Build the firmware, boot it on an emulated board next to its digital twin, drive its
    /// sensor from a temperature profile and stream its console, prefixed with the device name.
    ///
    /// On the native engine (the default) the device's virtual modem speaks MQTT to a broker
    /// and the twin service stores what arrives: both start in this process (an embedded
    /// rumqttd on a free loopback port, SQLite in memory or --db FILE), or use --broker URL.
    /// At the end it prints the device's shadow and checks the twin's history against every
    /// reading the firmware took (each stored once, or declared dropped, or still on the
    /// device). With --engine qemu (or --no-twin) the device runs alone.
    ///
    /// Installs what it lacks (the Rust target; qemu-system-arm via apt-get for --engine qemu).
    /// Stops after --duration of virtual time (the guest's own clock) and prints a summary; the
    /// sensor check compares every reading the firmware printed with the temperature that was
    /// set on the sensor model at that moment.
    #[command(
        after_help = "Examples:\n  cargo xtask emulate\n  cargo xtask emulate --duration 10m --temperature 0:20,300:30,600:20 --json out/run.json"
    )]
    Emulate {
        /// Emulator: `native` (twinbed's own, in-process) or `qemu` (qemu-system-arm).
        #[arg(long, value_enum, default_value_t = Engine::Native)]
        engine: Engine,
        /// Built-in board name or path of a board file (.toml).
        #[arg(long, default_value = "mps2-an385")]
        board: String,
        /// Virtual time to run: 90, 500ms, 90s, 15m, 2h, 7d.
        #[arg(long, default_value = "60s", value_parser = twinbed::duration::parse)]
        duration: Duration,
        /// Temperature profile: `21.5` or `seconds:°C` points, linear in between.
        #[arg(long, default_value = "0:21,20:24,40:19,60:21", allow_hyphen_values = true)]
        temperature: TemperatureProfile,
        /// Write a JSON summary (samples, readings, outcome, timings) to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Run this ELF instead of building and running firmware/app.
        #[arg(long, value_name = "ELF")]
        elf: Option<PathBuf>,
        /// Name of the device, used as console prefix and in the summary.
        #[arg(long, default_value = "dev0")]
        device: String,
        /// Wall-clock safety limit in seconds.
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Run the device alone: no modem traffic, no broker, no twin (as on QEMU).
        #[arg(long)]
        no_twin: bool,
        /// Use this MQTT broker (mqtt://host:port) instead of the embedded one.
        #[arg(long, value_name = "URL")]
        broker: Option<String>,
        /// Keep the twin's data in this SQLite file instead of in memory.
        #[arg(long, value_name = "FILE")]
        db: Option<PathBuf>,
        /// Check the run's energy against this budget file (average current, projected
        /// battery life, radio-on share, energy per reading; see twinbed::energy): a breach
        /// prints the table and fails the command. The per-state energy table is printed on
        /// every run of a board with power figures, and with --json a plot of current and
        /// battery over time goes next to the summary (FILE.svg).
        #[arg(long, value_name = "FILE")]
        budget: Option<PathBuf>,
        /// Run the app built with its documented energy bug (feature `energy-bug`: the modem
        /// is left registered between publish windows), e.g. to see a budget catch it.
        #[arg(long)]
        energy_bug: bool,
        /// Sample every SECS seconds: set as the device's desired state in the twin before it
        /// first connects (the app starts at 1 s and applies it in its first publish window).
        #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..=86_400))]
        interval: Option<u32>,
    },
    /// Run every test of the project: firmware host tests, then `cargo test --workspace`.
    ///
    /// Installs what the suite needs first (the Rust target; qemu-system-arm via apt-get),
    /// saying what it installs. Extra arguments go to `cargo test` (e.g. a test name filter).
    Test {
        /// Arguments passed on to `cargo test --workspace`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        cargo_args: Vec<String>,
    },
    /// What CI runs (.ci/run): the same as `test`.
    Ci,
    /// Cut the power at every flash operation of an A/B update on the emulated device, in
    /// seeded torn variants, and check that it never bricks.
    ///
    /// Builds the bootloader and the app for both slots, gives the device the bootloader and a
    /// confirmed factory image A 1.0.0, and offers update B 1.1.0 on its OTA feed. Counts the
    /// flash operations of the whole update (the app's OTA agent erasing and downloading into
    /// slot B, marking it pending, the trial boot, the confirm), then cuts the power at each
    /// chosen operation with it half done (torn in seeded variants), powers on and boots:
    /// every boot must boot A 1.0.0 or B 1.1.0, and the device must end on B, or on A with a
    /// newer update 1.1.1 then completing. A failure prints the operation and seed; --replay
    /// OP:SEED runs that cut alone. Exit status 1 when anything bricked.
    #[command(
        after_help = "Examples:\n  cargo xtask sweep\n  cargo xtask sweep --variants 16 --json sweep.json\n  cargo xtask sweep --replay 1:12345"
    )]
    Sweep {
        /// Cut at every operation (about 400: a minute or two; the default is about 32 cut
        /// points spread over the update, plus its first and last few operations).
        #[arg(long)]
        full: bool,
        /// Cut at every N-th operation (0: about 32 spread over the update).
        #[arg(long, default_value_t = 0)]
        stride: u32,
        /// Torn variants (seeds) per operation.
        #[arg(long, default_value_t = 4)]
        variants: u32,
        /// Seed of the torn states.
        #[arg(long, default_value_t = 0x5eed_2026)]
        seed: u64,
        /// Only the cut at operation OP with torn-state seed SEED (from a failure report).
        #[arg(long, value_name = "OP:SEED", value_parser = parse_replay)]
        replay: Option<(u32, u64)>,
        /// Do not reuse the verdicts of power-on states already seen (slower; the report must
        /// be the same).
        #[arg(long)]
        no_memo: bool,
        /// Worker threads (0: one per core, at most 4).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Write the counts (operations, cuts, torn variants, completed, stayed old, bricked)
        /// as JSON to this file.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
    },
    /// Sign a firmware image in MCUboot's format (SHA-256 and Ed25519 TLVs), as `imgtool sign
    /// --header-size 0x400 --align 4 --pad-header` does, byte for byte.
    ///
    /// The header is 0x400 bytes by default: the A/B layout's (firmware/bsp/build.rs), where an
    /// image linked for a slot (`TWINBED_SLOT=a|b`) starts its code.
    ///
    /// The input is an ELF (its loadable segments, flattened from the lowest address; gaps
    /// read 0xff as erased flash) or a raw binary. Without --key, the repository's development
    /// key signs (firmware/mcuimage/keys/dev-ed25519.pem: public, never for devices in the
    /// field). `imgtool verify -k KEY IMAGE` accepts the result.
    #[command(
        after_help = "Examples:\n  cargo xtask sign firmware/target/thumbv7m-none-eabi/release/app --version 1.2.0 -o app-1.2.0.img\n  cargo xtask sign app.bin --version 2.0.0+7 --key my-key.pem --slot-size 0x80000 --confirm -o app.img"
    )]
    Sign {
        /// ELF or raw binary to sign.
        input: PathBuf,
        /// Image version: major[.minor[.revision[+build]]].
        #[arg(long)]
        version: String,
        /// Ed25519 private key in PEM (`imgtool keygen -t ed25519 -k key.pem`); default: the
        /// development key.
        #[arg(long, value_name = "PEM")]
        key: Option<PathBuf>,
        /// Slot size in bytes (e.g. 0x80000): fail if the image does not fit. 0: no check.
        #[arg(long, default_value = "0", value_parser = parse_u32)]
        slot_size: u32,
        /// Header size (imgtool's --header-size).
        #[arg(long, default_value = "0x400", value_parser = parse_u32)]
        header_size: u32,
        /// Pad to --slot-size and mark the image confirmed in the slot's trailer (imgtool's
        /// --pad --confirm): a factory image, booted without a trial.
        #[arg(long)]
        confirm: bool,
        /// Where to write the signed image.
        #[arg(short, long, value_name = "FILE")]
        output: PathBuf,
    },
    /// Benchmarks of the emulators; `cargo xtask bench` lists them.
    Bench {
        #[command(subcommand)]
        bench: Option<Bench>,
    },
}

/// The benchmarks of `cargo xtask bench`.
#[derive(Subcommand)]
enum Bench {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(task) = cli.task else {
        let mut cmd = <Cli as clap::CommandFactory>::command();
        let _ = cmd.print_help();
        return ExitCode::SUCCESS;
    };
    twinbed::init_logging(0);
    let result = match task {
        Task::BuildFirmware { test_mode } => build_firmware(test_mode),
        Task::Emulate {
            engine,
            board,
            duration,
            temperature,
            json,
            elf,
            device,
            timeout,
            no_twin,
            broker,
            db,
            budget,
            energy_bug,
            interval,
        } => {
            let run = EmulateRun { board, duration, temperature, json, elf, device, timeout, energy_bug };
            if budget.is_some() && (engine != Engine::Native || no_twin) {
                Err(anyhow::anyhow!(
                    "--budget needs the native engine with the twin (the modem's energy comes from there)"
                ))
            } else if interval.is_some() && (engine != Engine::Native || no_twin) {
                Err(anyhow::anyhow!(
                    "--interval is set through the twin: it needs the native engine with the twin"
                ))
            } else if energy_bug && run.elf.is_some() {
                Err(anyhow::anyhow!("--energy-bug builds the reference app: it cannot go with --elf"))
            } else if engine == Engine::Native && !no_twin {
                emulate_with_twin(run, broker, db, budget, interval)
            } else {
                emulate(engine, run)
            }
        }
        Task::Test { cargo_args } => test(&cargo_args),
        Task::Ci => test(&[]),
        Task::Sweep { full, stride, variants, seed, replay, no_memo, threads, json } => {
            let stride = if full { 1 } else { stride };
            let variants = variants.max(1);
            sweep(
                twinbed::sweep::SweepOptions { seed, variants, stride, replay, memo: !no_memo, threads },
                json,
            )
        }
        Task::Sign { input, version, key, slot_size, header_size, confirm, output } => {
            sign(input, version, key, slot_size, header_size, confirm, output)
        }
        Task::Bench { bench: None } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            cmd.build(); // fills in the subcommands' usage names (`cargo xtask bench`)
            if let Some(bench) = cmd.find_subcommand_mut("bench") {
                let _ = bench.print_help();
            }
            Ok(ExitCode::SUCCESS)
        }
        Task::Bench { bench: Some(Bench::Cpu { full, runs, timeout }) } => bench_cpu(full, runs, timeout),
        Task::Bench { bench: Some(Bench::Sweep { variants, threads }) } => bench_sweep(variants, threads),
        Task::Bench { bench: Some(Bench::Twin { messages }) } => bench_twin(messages),
        Task::Bench { bench: Some(Bench::Battery { full }) } => bench_battery(full),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn say(msg: &str) {
    eprintln!("xtask: {msg}");
}

fn build_firmware(test_mode: Option<u32>) -> Result<ExitCode> {
    let variant = test_mode.map_or(firmware::Variant::Device, |samples| firmware::Variant::Test { samples });
    let fw = firmware::build(variant, &mut say)?;
    say(&format!("built {}", fw.app.display()));
    say(&format!("built {}", fw.panic.display()));
    Ok(ExitCode::SUCCESS)
}

/// The JSON summary of `emulate`.
#[derive(serde::Serialize)]
struct Summary<'a> {
    device: &'a str,
    engine: Engine,
    board: &'a str,
    elf: String,
    temperature_profile: String,
    virtual_duration_ms: u128,
    outcome: String,
    exit_status: Option<i32>,
    wall_ms: u128,
    console_lines: usize,
    samples: &'a [twinbed::Sample],
    readings: &'a [twinbed::app::Reading],
    sensor_mismatches: usize,
}

/// What every `emulate` runs: the device, its virtual world, the outputs.
struct EmulateRun {
    board: String,
    duration: Duration,
    temperature: TemperatureProfile,
    json: Option<PathBuf>,
    elf: Option<PathBuf>,
    device: String,
    timeout: u64,
    /// Build the app with its energy bug.
    energy_bug: bool,
}

impl EmulateRun {
    /// The ELF to run: `--elf`, or the reference app (with its energy bug if asked), built.
    fn elf(&self) -> Result<PathBuf> {
        Ok(match &self.elf {
            Some(e) => e.clone(),
            None if self.energy_bug => {
                say("building the app with its energy bug (feature energy-bug)");
                firmware::build_app(firmware::AppFlavour::EnergyBug, &mut say)?
            }
            None => firmware::build(firmware::Variant::Device, &mut say)?.app,
        })
    }
}

/// `emulate` of the device alone (QEMU, or `--no-twin`).
fn emulate(engine: Engine, run: EmulateRun) -> Result<ExitCode> {
    let elf = run.elf()?;
    let EmulateRun { board, duration, temperature, json, device, timeout, .. } = run;
    let device = device.as_str();
    let board = Board::load(&board)?;
    if engine == Engine::Qemu {
        prereq::ensure_qemu(&mut say)?;
    }
    say(&format!(
        "emulating {device}: {} on {} ({engine} engine) for {} of virtual time, temperature {temperature}",
        elf.display(),
        board.name,
        humanize(duration)
    ));
    let mut opts = RunOptions::new(board.clone(), &elf);
    opts.engine = engine;
    opts.timeout = Duration::from_secs(timeout);
    opts.temperature = Some(temperature.clone());
    opts.virtual_duration = Some(duration);

    let mut readings = Vec::new();
    let stdout = std::io::stdout();
    let mut on_line = |line: &str| {
        let mut out = stdout.lock();
        let _ = writeln!(out, "[{device}] {line}");
        let _ = out.flush();
        readings.extend(twinbed::app::parse_reading(line));
    };
    let report = twinbed::run(&opts, &mut on_line)?;

    let set = report.samples.iter().map(|s| (s.index, s.temperature_milli_c));
    let mismatches = sensor_check(&readings, set);
    let (outcome, exit_status) = match report.outcome {
        Outcome::Exited(c) => ("guest exited".to_owned(), Some(c)),
        Outcome::Stopped => (format!("stopped after {} of virtual time", humanize(duration)), None),
        Outcome::TimedOut => (format!("wall-clock timeout after {timeout} s"), None),
    };
    say(&format!(
        "{device}: {outcome}; {} samples, {} readings, sensor check {}; {:.2} s wall",
        report.samples.len(),
        readings.len(),
        if mismatches == 0 { "ok".to_owned() } else { format!("FAILED ({mismatches} mismatches)") },
        report.wall.as_secs_f64()
    ));
    if let Some(path) = json {
        let summary = Summary {
            device,
            engine,
            board: &board.name,
            elf: elf.display().to_string(),
            temperature_profile: temperature.to_string(),
            virtual_duration_ms: duration.as_millis(),
            outcome,
            exit_status,
            wall_ms: report.wall.as_millis(),
            console_lines: report.lines,
            samples: &report.samples,
            readings: &readings,
            sensor_mismatches: mismatches,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, serde_json::to_string_pretty(&summary)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        say(&format!("summary written to {}", path.display()));
    }
    let ok = mismatches == 0 && matches!(report.outcome, Outcome::Stopped | Outcome::Exited(0));
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

/// The sensor check of `emulate`: each reading the firmware printed against the temperature the
/// emulator set on the sensor right before it (`set`: by sample index). The TMP105 at 12 bits
/// truncates to 0.0625 °C (625 in ten-thousandths). Says what does not match; returns how many.
fn sensor_check(readings: &[twinbed::app::Reading], set: impl Iterator<Item = (u32, Option<i32>)>) -> usize {
    let set: std::collections::HashMap<u32, Option<i32>> = set.collect();
    let mut mismatches = 0;
    for r in readings {
        let set = set.get(&r.index).copied().flatten();
        if set.is_none_or(|set| (i64::from(r.centi_milli_c) - i64::from(set) * 10).abs() >= 625) {
            mismatches += 1;
            say(&format!(
                "sensor check: sample {} read {} (x 0.0001 °C) but the model was set to {set:?} milli-°C",
                r.index, r.centi_milli_c
            ));
        }
    }
    mismatches
}

/// The JSON summary of `emulate` with the twin.
#[derive(serde::Serialize)]
struct NetSummary<'a> {
    device: &'a str,
    device_id: String,
    board: &'a str,
    elf: String,
    temperature_profile: String,
    virtual_duration_ms: u128,
    wall_ms: u128,
    readings: usize,
    sensor_mismatches: usize,
    ground_truth: &'a twinbed::scenario::GroundTruth,
    shadow: Option<serde_json::Value>,
    mqtt_messages: usize,
}

/// A 15-digit IMEI for a device name (a test-range TAC and a serial from the name), so the same
/// name gets the same device id every run.
fn imei_for(device: &str) -> String {
    let h = device
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("8612340{:08}", h % 100_000_000)
}

/// `emulate` on the native engine with the modem, a broker and the twin.
fn emulate_with_twin(
    run: EmulateRun,
    broker: Option<String>,
    db: Option<PathBuf>,
    budget: Option<PathBuf>,
    interval: Option<u32>,
) -> Result<ExitCode> {
    use twinbed::scenario::{ground_truth, Backend};
    // A broken budget file is an error before anything runs.
    let budget = budget.map(|p| twinbed::energy::Budget::load(&p)).transpose()?;
    let board = Board::load(&run.board)?;
    let elf = run.elf()?;
    let EmulateRun { duration, temperature, json, device, timeout, .. } = run;
    let device = device.as_str();
    let config = twinbed_twin::TwinConfig {
        broker: match &broker {
            Some(url) => twinbed_twin::BrokerChoice::Url(url.clone()),
            None => twinbed_twin::TwinConfig::default().broker,
        },
        db: match &db {
            Some(path) => twinbed_twin::DbLocation::File(path.clone()),
            None => twinbed_twin::DbLocation::Memory,
        },
        ..Default::default()
    };
    let backend = Backend::start(config).context("starting the twin")?;
    say(&format!(
        "twin up: {} broker at {}, storage {}",
        if broker.is_some() { "external" } else { "embedded" },
        backend.broker(),
        db.as_ref().map_or("in memory".to_owned(), |p| p.display().to_string())
    ));
    let mut dev = twinbed::net::NetDevice::boot(&board, &elf, &imei_for(device), backend.broker())?;
    let id = dev.device_id();
    if let Some(secs) = interval {
        let version = backend.shadow(&id)?.map_or(0, |s| s.version);
        backend
            .set_desired(&id, version, serde_json::json!({ "interval_s": secs }))
            .context("setting the desired sample interval in the twin")?;
        say(&format!("desired state of {id} set in the twin: a sample every {secs} s"));
    }
    say(&format!(
        "emulating {device} ({id}): {} on {} (native engine, modem on UART1) for {} of virtual time, temperature {temperature}",
        elf.display(),
        board.name,
        humanize(duration)
    ));
    let started = std::time::Instant::now();
    let end_ms = duration.as_millis() as u64;
    let mut quiet = backend.quiet();
    let mut readings = Vec::new();
    let stdout = std::io::stdout();
    let slice = u64::from(board.clock_hz); // one virtual second
                                           // The plot's points: every `bucket_ms` of virtual time, the average current over the bucket
                                           // (its charge over its length: exact) and the battery voltage at its end.
    let bucket_ms = (end_ms / 1500).max(1000);
    let mut series = twinbed::energy::Series::default();
    let mut last_point = dev.machine.energy().map(|e| (e.now, e.total_charge));
    let mut stop = twinbed_engine::Stop::Budget;
    // Runs over an hour show the first 10 minutes of sample lines (every other console line
    // always), then a progress line every tenth of the run.
    const SHOWN_SAMPLES_MS: u64 = 10 * 60 * 1000;
    let long_run = end_ms > 3_600_000;
    let mut next_progress_ms = end_ms / 10;
    if long_run {
        say("a long run: sample lines after the first 10 minutes are not shown (the sensor check still covers every one); progress every tenth of the run");
    }
    while dev.now_ms() < end_ms && stop == twinbed_engine::Stop::Budget {
        if started.elapsed() > Duration::from_secs(timeout) {
            bail!("wall-clock timeout after {timeout} s at {} ms of virtual time", dev.now_ms());
        }
        let left = (end_ms - dev.now_ms()) * slice / 1000;
        stop = dev.run(left.min(slice).max(1), &mut quiet, &mut |r| {
            Some(temperature.milli_c_at(u64::from(r.uptime_ms)))
        })?;
        if let (Some(e), Some((c0, q0))) = (dev.machine.energy(), last_point) {
            let bucket_cycles = bucket_ms * u64::from(e.clock_hz) / 1000;
            if e.now >= c0 + bucket_cycles || dev.now_ms() >= end_ms {
                // nA·cycles over cycles: the bucket's average, in nA.
                let avg_ua = (e.total_charge - q0) as f64 / (e.now - c0).max(1) as f64 / 1000.0;
                series.t_s.push(e.time_ns as f64 / 1e9);
                series.current_ua.push(avg_ua);
                series.battery_mv.push(e.battery.as_ref().map_or(0.0, |b| f64::from(b.voltage_mv)));
                last_point = Some((e.now, e.total_charge));
            }
        }
        let console = dev.take_console();
        let mut out = stdout.lock();
        for line in console.lines() {
            let reading = twinbed::app::parse_reading(line);
            let hide =
                long_run && reading.as_ref().is_some_and(|r| u64::from(r.uptime_ms) > SHOWN_SAMPLES_MS);
            readings.extend(reading);
            if !hide {
                let _ = writeln!(out, "[{device}] {line}");
            }
        }
        let _ = out.flush();
        if long_run && dev.now_ms() >= next_progress_ms {
            say(&format!(
                "{device}: {} of {} of virtual time, {} readings, {:.1} s wall",
                if end_ms >= 2 * 86_400_000 {
                    format!("{:.1} d", dev.now_ms() as f64 / 86_400_000.0)
                } else {
                    humanize(Duration::from_millis(dev.now_ms()))
                },
                humanize(duration),
                readings.len(),
                started.elapsed().as_secs_f64()
            ));
            next_progress_ms += end_ms / 10;
        }
    }
    dev.sync(&mut quiet)?;
    let mismatches = sensor_check(&readings, dev.readings.iter().map(|s| (s.index, Some(s.milli_c))));
    let g = ground_truth(&dev.readings, &backend.telemetry(&id)?, &backend.events(&id)?);
    let shadow = backend.shadow(&id)?;
    let shadow_json = shadow.as_ref().map(|s| {
        serde_json::json!({ "reported": s.reported, "desired": s.desired, "delta": s.delta(), "version": s.version })
    });
    println!("shadow of {id}:");
    println!(
        "{}",
        shadow_json
            .as_ref()
            .map_or("(none: the device never reported)".to_owned(), |v| serde_json::to_string_pretty(v)
                .unwrap_or_default())
    );
    let transcript = dev.take_transcript();
    say(&format!(
        "{device}: {} of virtual time, {} readings: {} stored once in the twin, {} dropped by the device's buffer, {} still on the device; ground truth {}; sensor check {}; {} MQTT messages; {:.2} s wall",
        humanize(duration),
        g.readings,
        g.stored_once,
        g.dropped,
        g.pending,
        if g.holds() { "ok".to_owned() } else { format!("BROKEN ({} missing, {} duplicated, {} invented, {} wrong values)", g.missing.len(), g.duplicated.len(), g.invented.len(), g.wrong_values.len()) },
        if mismatches == 0 { "ok".to_owned() } else { format!("FAILED ({mismatches} mismatches)") },
        transcript.len(),
        started.elapsed().as_secs_f64()
    ));
    if g.stored_once == 0 && g.pending > 0 {
        say("the reference app publishes in windows, every 15 minutes (or sooner when half its buffer waits), with its modem off in between: run longer (e.g. --duration 20m) to see its readings reach the twin");
    }
    if let Some(path) = &json {
        let summary = NetSummary {
            device,
            device_id: id.clone(),
            board: &board.name,
            elf: elf.display().to_string(),
            temperature_profile: temperature.to_string(),
            virtual_duration_ms: duration.as_millis(),
            wall_ms: started.elapsed().as_millis(),
            readings: g.readings as usize,
            sensor_mismatches: mismatches,
            ground_truth: &g,
            shadow: shadow_json,
            mqtt_messages: transcript.len(),
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(path, serde_json::to_string_pretty(&summary)? + "\n")
            .with_context(|| format!("writing {}", path.display()))?;
        say(&format!("summary written to {}", path.display()));
    }
    let mut ok = mismatches == 0 && g.holds() && matches!(stop, twinbed_engine::Stop::Budget);
    match dev.machine.energy() {
        Some(report) => {
            let m = twinbed::energy::measured(&report, g.readings);
            println!("energy of {device} over {}:", humanize(duration));
            print!("{}", twinbed::energy::energy_table(&m));
            say(&format!(
                "{device}: average {:.1} µA; projected battery life {:.0} days; radio on {:.3} % of the time; {:.0} µJ per reading",
                m.average_current_ua(),
                m.battery_life_days(),
                100.0 * m.radio_on_share(),
                m.energy_per_reading_uj()
            ));
            if let Some(b) = &budget {
                let checks = twinbed::energy::check(b, &m);
                print!("{}", twinbed::energy::verdict_table(&checks));
                let breaches = checks.iter().filter(|c| !c.ok).count();
                say(&if breaches == 0 {
                    "budget: ok".to_owned()
                } else {
                    format!("budget: {breaches} BREACHED")
                });
                ok &= breaches == 0;
            }
            if let Some(path) = &json {
                let svg = path.with_extension("svg");
                twinbed::energy::plot_svg(&series, &format!("{device} ({id}): current and battery"), &svg)?;
                say(&format!("plot of current and battery written to {}", svg.display()));
            }
        }
        None if budget.is_some() => {
            say(&format!(
                "board {} has no [power] table: no energy figures, so the budget cannot be checked",
                board.name
            ));
            ok = false;
        }
        None => {}
    }
    if !matches!(stop, twinbed_engine::Stop::Budget) {
        say(&format!("the device stopped early: {stop:?}"));
    }
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}

fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if d.subsec_millis() != 0 || s == 0 => format!("{} ms", d.as_millis()),
        _ if s.is_multiple_of(86_400) => format!("{} d", s / 86_400),
        _ if s.is_multiple_of(3_600) => format!("{} h", s / 3_600),
        _ if s.is_multiple_of(60) => format!("{} min", s / 60),
        _ => format!("{s} s"),
    }
}

fn test(cargo_args: &[String]) -> Result<ExitCode> {
    firmware::ensure_target(&mut say)?;
    prereq::ensure_qemu(&mut say)?;
    prereq::ensure_unicorn(&mut say)?;
    prereq::ensure_imgtool(&mut say)?;
    prereq::ensure_mosquitto(&mut say)?;
    let root = firmware::repo_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut counts = Counts::default();

    say("firmware host tests (cargo test --target x86_64-unknown-linux-gnu in firmware/)");
    let mut fw = Command::new(&cargo);
    fw.current_dir(root.join("firmware")).args(["test", "--target", "x86_64-unknown-linux-gnu"]);
    for krate in prereq::FIRMWARE_HOST_TESTED {
        fw.args(["-p", krate]);
    }
    // imgtool was installed above: its interop tests must run, not skip.
    fw.env("TWINBED_REQUIRE_IMGTOOL", "1");
    run_tests(&mut fw, &mut counts)?;

    say("host workspace tests (cargo test --workspace)");
    let mut host = Command::new(&cargo);
    host.current_dir(&root).args(["test", "--workspace"]).args(cargo_args);
    host.env("TWINBED_REQUIRE_IMGTOOL", "1");
    // mosquitto was installed above: the MQTT interop test must run, not skip.
    host.env("TWINBED_REQUIRE_MOSQUITTO", "1");
    run_tests(&mut host, &mut counts)?;
    // One closing line for the whole suite (each cargo test binary prints its own).
    println!("xtask: {} passed, {} failed, {} skipped", counts.passed, counts.failed, counts.ignored);
    Ok(ExitCode::SUCCESS)
}

/// Test counts summed over every `test result:` line.
#[derive(Default)]
struct Counts {
    passed: u64,
    failed: u64,
    ignored: u64,
}

impl Counts {
    /// Adds a libtest summary line: `test result: ok. 4 passed; 0 failed; 1 ignored; ...`.
    fn add(&mut self, line: &str) {
        let Some(rest) = line.strip_prefix("test result: ") else {
            return;
        };
        for part in rest.split(';') {
            let mut words = part.split_whitespace().rev();
            let (Some(what), Some(n)) = (words.next(), words.next()) else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            match what {
                "passed" => self.passed += n,
                "failed" => self.failed += n,
                "ignored" => self.ignored += n,
                _ => {}
            }
        }
    }
}

/// Runs a `cargo test`, passing its output through and counting its results.
fn run_tests(cmd: &mut Command, counts: &mut Counts) -> Result<()> {
    use std::io::BufRead;
    let mut child =
        cmd.stdout(std::process::Stdio::piped()).spawn().with_context(|| format!("running {cmd:?}"))?;
    if let Some(out) = child.stdout.take() {
        for line in std::io::BufReader::new(out).lines() {
            let line = line.context("reading cargo test's output")?;
            counts.add(&line);
            println!("{line}");
        }
    }
    let status = child.wait().with_context(|| format!("waiting for {cmd:?}"))?;
    if !status.success() {
        println!(
            "xtask: {} passed, {} failed, {} skipped",
            counts.passed,
            counts.failed.max(1),
            counts.ignored
        );
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// `bench cpu`: re-runs itself as a release build if need be, pins this thread to CPU 0 and
/// calls [`twinbed::bench::run_cpu`].
/// `cargo xtask` is a debug build, and a benchmark of unoptimized code means nothing: runs
/// `cargo run --release -p xtask -- bench ARGS` instead.
fn bench_in_release(bench: &[&str]) -> Result<ExitCode> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut args = vec!["run", "--release", "--quiet", "--package", "xtask", "--", "bench"];
    args.extend(bench);
    say(&format!("the engine must be optimized: running `cargo {}`", args.join(" ")));
    let status = Command::new(&cargo)
        .current_dir(firmware::repo_root())
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
    let sensor = board.device_of_model("tmp105").map(|d| d.name.clone());
    let cycles = hours * 3600 * u64::from(board.clock_hz);
    let temperature = |i: u32| 21_000 + ((i / 600) % 10) as i32 * 100;

    say(&format!("the reference app alone for {hours} h of device time"));
    let mut m = twinbed_engine::Machine::new(&board)?;
    m.load_elf(&data)?;
    m.set_stop_at(info.sample_hook);
    let started = std::time::Instant::now();
    let end = m.now + cycles;
    while m.now < end {
        match m.run(end - m.now) {
            twinbed_engine::Stop::StopPoint => {
                if let Some(s) = &sensor {
                    m.set_temperature(s, temperature(m.cpu.r[1]));
                }
            }
            twinbed_engine::Stop::Budget => {}
            other => bail!("the app stopped: {other:?}"),
        }
        let _ = m.take_output();
    }
    let alone = started.elapsed().as_secs_f64();
    let alone_energy = m.energy();

    let backend = twinbed::scenario::Backend::start(Default::default()).context("starting the twin")?;
    let mut quiet = backend.quiet();
    // The app next to its twin for `hours`, sampling every `interval_s` (a desired state) if
    // given: the device and the wall time.
    let mut with_twin =
        |imei: &str, hours: u64, interval_s: Option<u32>| -> Result<(twinbed::net::NetDevice, f64)> {
            let mut dev = twinbed::net::NetDevice::boot(&board, &elf, &imei_for(imei), backend.broker())?;
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
        ("app + modem + twin, a sample every second", hours, with_twin_wall, dev.machine.energy()),
        ("app + modem + twin, a sample every 60 s", week_h, week_wall, week.machine.energy()),
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

/// `sign`: [`twinbed::image::sign_file`], with a one-line report.
fn sign(
    input: PathBuf,
    version: String,
    key: Option<PathBuf>,
    slot_size: u32,
    header_size: u32,
    confirm: bool,
    output: PathBuf,
) -> Result<ExitCode> {
    let header_size = u16::try_from(header_size).context("--header-size must be below 64 KiB")?;
    let req = twinbed::image::SignRequest { input, output, version, key, slot_size, header_size, confirm };
    let s = twinbed::image::sign_file(&req)?;
    println!(
        "xtask: signed {} ({} bytes of payload from 0x{:08x}) -> {} ({} bytes), version {}, {}",
        req.input.display(),
        s.payload_len,
        s.load_addr,
        req.output.display(),
        s.image_len,
        req.version,
        if s.dev_key { "DEVELOPMENT key (never for devices in the field)" } else { "your key" }
    );
    Ok(ExitCode::SUCCESS)
}

/// A number in decimal or 0x-hex.
fn parse_u32(s: &str) -> Result<u32, String> {
    let s = s.replace('_', "");
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("`{s}` is not a number (decimal or 0x-hex)"))
}

/// `OP:SEED`.
fn parse_replay(s: &str) -> Result<(u32, u64), String> {
    let (op, seed) = s.split_once(':').ok_or_else(|| format!("`{s}`: expected OP:SEED, e.g. 1:12345"))?;
    Ok((
        op.parse().map_err(|_| format!("`{op}` is not an operation number"))?,
        seed.parse().map_err(|_| format!("`{seed}` is not a seed"))?,
    ))
}

/// `sweep`: builds the A/B firmware and runs [`twinbed::sweep::run`].
fn sweep(opts: twinbed::sweep::SweepOptions, json: Option<PathBuf>) -> Result<ExitCode> {
    let mut say = |m: &str| println!("xtask: {m}");
    say("building the bootloader and the app for slots A and B");
    let fw = firmware::build_ab(2, &mut say)?;
    let board = Board::builtin("mps2-an385")?;
    let started = std::time::Instant::now();
    let r = twinbed::sweep::run(&fw, &board, &opts, &mut say)?;
    for f in &r.failures {
        say(&format!("BRICKED: {f}"));
    }
    let secs = started.elapsed().as_secs_f64();
    say(&format!(
"sweep (seed {}): {} operations, {} cuts ({} torn variants each), {} completed, {} stayed old, {} bricked; {:.1} s, {:.0} cuts/s, {} boots run",
        r.seed,
        r.operations,
        r.cuts,
        r.torn_variants,
        r.completed,
        r.stayed_old,
        r.bricked,
        secs,
        f64::from(r.cuts) / secs.max(1e-9),
        r.boots_run
    ));
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&r)?)
            .with_context(|| format!("writing {}", path.display()))?;
        say(&format!("counts written to {}", path.display()));
    }
    Ok(if r.bricked == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
