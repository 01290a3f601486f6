//! Emulate a device: build (or take) the firmware, boot it on an emulated board next to its
//! digital twin, drive its sensor from a temperature profile, stream its console, then check
//! and sum up the run. `twinbed emulate` and `cargo xtask emulate` are this module behind the
//! same flags ([`EmulateArgs`]), so both print the same run and the same summary.
//!
//! [`run`] runs the device and returns an [`Emulation`]: the report that becomes the JSON
//! summary, with what the closing lines need. [`Emulation::finish`] prints those lines (the
//! shadow, the counts, the energy table and budget verdict), writes the JSON summary and the
//! plot, and says whether the run passed.
//!
//! On the native engine (the default) the device's virtual modem speaks MQTT to a broker and
//! the twin service stores what arrives ([`crate::net`], [`crate::scenario`]); with
//! `--engine qemu` or `--no-twin` the device runs alone ([`crate::run`]).

use crate::energy::{self, Budget, BudgetError, Measured, Series};
use crate::scenario::{self, Backend, BackendError, GroundTruth};
use crate::{app, firmware, net, Board, Engine, Outcome, RunError, RunOptions, TemperatureProfile};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The flags of `emulate` (the same in `twinbed emulate` and `cargo xtask emulate`).
#[derive(Clone, Debug, clap::Args)]
pub struct EmulateArgs {
    /// Emulator: `native` (twinbed's own, in-process) or `qemu` (qemu-system-arm).
    #[arg(long, value_enum, default_value_t = Engine::Native)]
    pub engine: Engine,
    /// Built-in board name or path of a board file (.toml).
    #[arg(long, default_value = "mps2-an385")]
    pub board: String,
    /// Virtual time to run: 90, 500ms, 90s, 15m, 2h, 7d.
    #[arg(long, default_value = "60s", value_parser = crate::duration::parse)]
    pub duration: Duration,
    /// Temperature profile: `21.5` or `seconds:°C` points, linear in between.
    #[arg(long, default_value = "0:21,20:24,40:19,60:21", allow_hyphen_values = true)]
    pub temperature: TemperatureProfile,
    /// Write a JSON summary (samples, readings, outcome, timings) to this file.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
    /// Run this ELF instead of building and running firmware/app.
    #[arg(long, value_name = "ELF")]
    pub elf: Option<PathBuf>,
    /// Name of the device, used as console prefix and in the summary.
    #[arg(long, default_value = "dev0")]
    pub device: String,
    /// Wall-clock safety limit in seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout: u64,
    /// Run the device alone: no modem traffic, no broker, no twin (as on QEMU).
    #[arg(long)]
    pub no_twin: bool,
    /// Use this MQTT broker (mqtt://host:port) instead of the embedded one.
    #[arg(long, value_name = "URL", conflicts_with = "no_twin")]
    pub broker: Option<String>,
    /// Keep the twin's data in this SQLite file instead of in memory.
    #[arg(long, value_name = "FILE", conflicts_with = "no_twin")]
    pub db: Option<PathBuf>,
    /// Check the run's energy against this budget file (average current, projected
    /// battery life, radio-on share, energy per reading; see twinbed::energy): a breach
    /// prints the table and fails the command. The per-state energy table is printed on
    /// every run of a board with power figures, and with --json a plot of current and
    /// battery over time goes next to the summary (FILE.svg).
    #[arg(long, value_name = "FILE", conflicts_with = "no_twin")]
    pub budget: Option<PathBuf>,
    /// Run the app built with its documented energy bug (feature `energy-bug`: the modem
    /// is left registered between publish windows), e.g. to see a budget catch it.
    #[arg(long, conflicts_with = "elf")]
    pub energy_bug: bool,
    /// Sample every SECS seconds: set as the device's desired state in the twin before it
    /// first connects (the app starts at 1 s and applies it in its first publish window).
    #[arg(long, value_name = "SECS", value_parser = clap::value_parser!(u32).range(1..=86_400), conflicts_with = "no_twin")]
    pub interval: Option<u32>,
}

/// Why an emulation could not run (a device that misbehaves is not an error: see
/// [`Emulation::finish`]).
#[derive(Debug, thiserror::Error)]
pub enum EmulateError {
    /// A flag needs another engine (clap checks the rest of the flag rules).
    #[error("{0}")]
    Usage(&'static str),
    /// The firmware could not be built.
    #[error(transparent)]
    Build(#[from] firmware::BuildError),
    /// The board is unknown or its file is broken.
    #[error(transparent)]
    Board(#[from] twinbed_board::BoardError),
    /// The device alone could not run.
    #[error(transparent)]
    Run(#[from] RunError),
    /// The device next to its twin could not run.
    #[error(transparent)]
    Net(#[from] net::NetError),
    /// The budget file is broken, or the plot could not be drawn.
    #[error(transparent)]
    Budget(#[from] BudgetError),
    /// The twin could not start.
    #[error("starting the twin")]
    StartTwin(#[source] BackendError),
    /// The desired interval could not be set in the twin.
    #[error("setting the desired sample interval in the twin")]
    SetInterval(#[source] BackendError),
    /// The twin failed when asked about the device.
    #[error(transparent)]
    Twin(#[from] BackendError),
    /// The wall-clock safety limit passed.
    #[error("wall-clock timeout after {timeout} s at {at_ms} ms of virtual time")]
    Timeout {
        /// The limit, in seconds.
        timeout: u64,
        /// Virtual time reached.
        at_ms: u64,
    },
    /// The summary could not be serialised.
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    /// A file could not be written (`doing` says which).
    #[error("{doing}")]
    Io {
        /// `writing FILE` or `creating DIR`.
        doing: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Where an emulation's text goes: notes (`say`, e.g. `xtask: ...` on stderr) and the
/// device's console and tables (`out`, stdout).
pub struct Output<'a> {
    /// A note for the user (one line, no prefix: the tool adds its own).
    pub say: &'a mut dyn FnMut(&str),
    /// The console lines (`[dev0] ...`), the shadow and the tables.
    pub out: &'a mut dyn Write,
}

impl Output<'_> {
    fn say(&mut self, msg: &str) {
        (self.say)(msg)
    }
}

/// The JSON summary of the device alone.
#[derive(Clone, Debug, serde::Serialize)]
pub struct AloneSummary {
    /// Device name.
    pub device: String,
    /// The engine.
    pub engine: Engine,
    /// The board's name.
    pub board: String,
    /// The ELF run.
    pub elf: String,
    /// The temperature profile, as given.
    pub temperature_profile: String,
    /// Virtual time asked for.
    pub virtual_duration_ms: u128,
    /// How it ended, in words.
    pub outcome: String,
    /// The guest's exit status, if it exited.
    pub exit_status: Option<i32>,
    /// Wall time of the run.
    pub wall_ms: u128,
    /// Console lines seen.
    pub console_lines: usize,
    /// Samples as the emulator set them.
    pub samples: Vec<crate::Sample>,
    /// Readings as the firmware printed them.
    pub readings: Vec<app::Reading>,
    /// Readings that do not match the temperature set.
    pub sensor_mismatches: usize,
}

/// The JSON summary of the device next to its twin.
#[derive(Clone, Debug, serde::Serialize)]
pub struct TwinSummary {
    /// Device name.
    pub device: String,
    /// The device id the firmware uses (`d` and the IMEI).
    pub device_id: String,
    /// The board's name.
    pub board: String,
    /// The ELF run.
    pub elf: String,
    /// The temperature profile, as given.
    pub temperature_profile: String,
    /// Virtual time asked for.
    pub virtual_duration_ms: u128,
    /// Wall time of the run until the summary.
    pub wall_ms: u128,
    /// Readings the firmware took.
    pub readings: usize,
    /// Readings that do not match the temperature set.
    pub sensor_mismatches: usize,
    /// The twin's history against every reading.
    pub ground_truth: GroundTruth,
    /// The device's shadow (`reported`, `desired`, `delta`, `version`), if it reported.
    pub shadow: Option<serde_json::Value>,
    /// MQTT messages in the transcript.
    pub mqtt_messages: usize,
}

/// The report of an emulation: what becomes the JSON summary.
#[derive(Clone, Copy, Debug, serde::Serialize)]
#[serde(untagged)]
pub enum Summary<'a> {
    /// The device alone (QEMU, or `--no-twin`).
    Alone(&'a AloneSummary),
    /// The device next to its twin.
    Twin(&'a TwinSummary),
}

/// A run next to the twin as it ended: its summary and what the closing lines need.
struct TwinEnd {
    summary: TwinSummary,
    /// The stop that ended the run ([`twinbed_engine::Stop::Budget`]: it ran to the end).
    stop: twinbed_engine::Stop,
    /// The energy accounts at the end, on a board with power figures.
    energy: Option<twinbed_engine::EnergyReport>,
    /// The plot's points.
    series: Series,
    /// The budget to check.
    budget: Option<Budget>,
    /// When the run started (the summary's wall time runs until it is written).
    started: Instant,
}

/// How a run ended: its summary and what the closing lines need.
// One value per run, moved once: the variants' sizes do not matter.
#[allow(clippy::large_enum_variant)]
enum End {
    /// The device alone: its summary, how the run ended, its wall time.
    Alone { summary: AloneSummary, outcome: Outcome, wall: Duration },
    /// The device next to its twin.
    Twin(TwinEnd),
}

/// A finished run: its report ([`Emulation::summary`]) and what [`Emulation::finish`] needs to
/// close it.
pub struct Emulation {
    end: End,
    duration: Duration,
    json: Option<PathBuf>,
}

/// Virtual time as the summary says it: `90 s`, `15 min`, `2 h`, `7 d`, `500 ms`.
pub fn humanize(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if d.subsec_millis() != 0 || s == 0 => format!("{} ms", d.as_millis()),
        _ if s.is_multiple_of(86_400) => format!("{} d", s / 86_400),
        _ if s.is_multiple_of(3_600) => format!("{} h", s / 3_600),
        _ if s.is_multiple_of(60) => format!("{} min", s / 60),
        _ => format!("{s} s"),
    }
}

/// A 15-digit IMEI for a device name (a test-range TAC and a serial from the name), so the same
/// name gets the same device id every run.
pub fn imei_for(device: &str) -> String {
    let h = device
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    format!("8612340{:08}", h % 100_000_000)
}

/// The sensor check: each reading the firmware printed against the temperature the emulator set
/// on the sensor right before it (`set`: by sample index). The TMP105 at 12 bits truncates to
/// 0.0625 °C (625 in ten-thousandths). Says what does not match; returns how many.
pub fn sensor_check(
    readings: &[app::Reading],
    set: impl Iterator<Item = (u32, Option<i32>)>,
    say: &mut dyn FnMut(&str),
) -> usize {
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

/// The ELF to run: `--elf`, or the reference app (with its energy bug if asked), built.
fn elf(args: &EmulateArgs, out: &mut Output<'_>) -> Result<PathBuf, EmulateError> {
    Ok(match &args.elf {
        Some(e) => e.clone(),
        None if args.energy_bug => {
            out.say("building the app with its energy bug (feature energy-bug)");
            firmware::build_app(firmware::AppFlavour::EnergyBug, out.say)?
        }
        None => firmware::build(firmware::Variant::Device, out.say)?.app,
    })
}

/// Runs the emulation `args` describes, streaming the console to `out`. Checks the flag rules
/// clap cannot (those that depend on the engine) first.
pub fn run(args: &EmulateArgs, out: &mut Output<'_>) -> Result<Emulation, EmulateError> {
    let alone = args.engine != Engine::Native || args.no_twin;
    if args.budget.is_some() && alone {
        return Err(EmulateError::Usage(
            "--budget needs the native engine with the twin (the modem's energy comes from there)",
        ));
    }
    if args.interval.is_some() && alone {
        return Err(EmulateError::Usage(
            "--interval is set through the twin: it needs the native engine with the twin",
        ));
    }
    if alone {
        run_alone(args, out)
    } else {
        run_with_twin(args, out)
    }
}

/// The device alone (QEMU, or `--no-twin`).
fn run_alone(args: &EmulateArgs, out: &mut Output<'_>) -> Result<Emulation, EmulateError> {
    let elf = elf(args, out)?;
    let device = args.device.as_str();
    let board = Board::load(&args.board)?;
    let (engine, duration, temperature) = (args.engine, args.duration, &args.temperature);
    out.say(&format!(
        "emulating {device}: {} on {} ({engine} engine) for {} of virtual time, temperature {temperature}",
        elf.display(),
        board.name,
        humanize(duration)
    ));
    let mut opts = RunOptions::new(board.clone(), &elf);
    opts.engine = engine;
    opts.timeout = Duration::from_secs(args.timeout);
    opts.temperature = Some(temperature.clone());
    opts.virtual_duration = Some(duration);

    let mut readings = Vec::new();
    let console = &mut *out.out;
    let mut on_line = |line: &str| {
        let _ = writeln!(console, "[{device}] {line}");
        let _ = console.flush();
        readings.extend(app::parse_reading(line));
    };
    let report = crate::run(&opts, &mut on_line)?;

    let set = report.samples.iter().map(|s| (s.index, s.temperature_milli_c));
    let mismatches = sensor_check(&readings, set, out.say);
    let (outcome, exit_status) = match report.outcome {
        Outcome::Exited(c) => ("guest exited".to_owned(), Some(c)),
        Outcome::Stopped => (format!("stopped after {} of virtual time", humanize(duration)), None),
        Outcome::TimedOut => (format!("wall-clock timeout after {} s", args.timeout), None),
    };
    let summary = AloneSummary {
        device: device.to_owned(),
        engine,
        board: board.name.clone(),
        elf: elf.display().to_string(),
        temperature_profile: temperature.to_string(),
        virtual_duration_ms: duration.as_millis(),
        outcome,
        exit_status,
        wall_ms: report.wall.as_millis(),
        console_lines: report.lines,
        samples: report.samples,
        readings,
        sensor_mismatches: mismatches,
    };
    Ok(Emulation {
        end: End::Alone { summary, outcome: report.outcome, wall: report.wall },
        duration,
        json: args.json.clone(),
    })
}

/// The device on the native engine with the modem, a broker and the twin.
fn run_with_twin(args: &EmulateArgs, out: &mut Output<'_>) -> Result<Emulation, EmulateError> {
    // A broken budget file is an error before anything runs.
    let budget = args.budget.as_deref().map(Budget::load).transpose()?;
    let board = Board::load(&args.board)?;
    let elf = elf(args, out)?;
    let (duration, temperature, timeout) = (args.duration, &args.temperature, args.timeout);
    let device = args.device.as_str();
    let config = twinbed_twin::TwinConfig {
        broker: match &args.broker {
            Some(url) => twinbed_twin::BrokerChoice::Url(url.clone()),
            None => twinbed_twin::TwinConfig::default().broker,
        },
        db: match &args.db {
            Some(path) => twinbed_twin::DbLocation::File(path.clone()),
            None => twinbed_twin::DbLocation::Memory,
        },
        ..Default::default()
    };
    let backend = Backend::start(config).map_err(EmulateError::StartTwin)?;
    out.say(&format!(
        "twin up: {} broker at {}, storage {}",
        if args.broker.is_some() { "external" } else { "embedded" },
        backend.broker(),
        args.db.as_ref().map_or("in memory".to_owned(), |p| p.display().to_string())
    ));
    let mut dev = net::NetDevice::boot(&board, &elf, &imei_for(device), backend.broker())?;
    let id = dev.device_id();
    if let Some(secs) = args.interval {
        let version = backend.shadow(&id)?.map_or(0, |s| s.version);
        backend
            .set_desired(&id, version, serde_json::json!({ "interval_s": secs }))
            .map_err(EmulateError::SetInterval)?;
        out.say(&format!("desired state of {id} set in the twin: a sample every {secs} s"));
    }
    out.say(&format!(
        "emulating {device} ({id}): {} on {} (native engine, modem on UART1) for {} of virtual time, temperature {temperature}",
        elf.display(),
        board.name,
        humanize(duration)
    ));
    let started = Instant::now();
    let end_ms = duration.as_millis() as u64;
    let mut quiet = backend.quiet();
    let mut readings = Vec::new();
    let slice = u64::from(board.clock_hz); // one virtual second
                                           // The plot's points: every `bucket_ms` of virtual time, the average current over the bucket
                                           // (its charge over its length: exact) and the battery voltage at its end.
    let bucket_ms = (end_ms / 1500).max(1000);
    let mut series = Series::default();
    let mut last_point = dev.machine().energy().map(|e| (e.now, e.total_charge));
    let mut stop = twinbed_engine::Stop::Budget;
    // Runs over an hour show the first 10 minutes of sample lines (every other console line
    // always), then a progress line every tenth of the run.
    const SHOWN_SAMPLES_MS: u64 = 10 * 60 * 1000;
    let long_run = end_ms > 3_600_000;
    let mut next_progress_ms = end_ms / 10;
    if long_run {
        out.say("a long run: sample lines after the first 10 minutes are not shown (the sensor check still covers every one); progress every tenth of the run");
    }
    while dev.now_ms() < end_ms && stop == twinbed_engine::Stop::Budget {
        if started.elapsed() > Duration::from_secs(timeout) {
            return Err(EmulateError::Timeout { timeout, at_ms: dev.now_ms() });
        }
        let left = (end_ms - dev.now_ms()) * slice / 1000;
        stop = dev.run(left.min(slice).max(1), &mut quiet, &mut |r| {
            Some(temperature.milli_c_at(u64::from(r.uptime_ms)))
        })?;
        if let (Some(e), Some((c0, q0))) = (dev.machine().energy(), last_point) {
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
        for line in console.lines() {
            let reading = app::parse_reading(line);
            let hide =
                long_run && reading.as_ref().is_some_and(|r| u64::from(r.uptime_ms) > SHOWN_SAMPLES_MS);
            readings.extend(reading);
            if !hide {
                let _ = writeln!(out.out, "[{device}] {line}");
            }
        }
        let _ = out.out.flush();
        if long_run && dev.now_ms() >= next_progress_ms {
            out.say(&format!(
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
    let mismatches =
        sensor_check(&readings, dev.readings.iter().map(|s| (s.index, Some(s.milli_c))), out.say);
    let g = scenario::ground_truth(&dev.readings, &backend.telemetry(&id)?, &backend.events(&id)?);
    let shadow = backend.shadow(&id)?;
    let shadow = shadow.as_ref().map(|s| {
        serde_json::json!({ "reported": s.reported, "desired": s.desired, "delta": s.delta(), "version": s.version })
    });
    let transcript = dev.take_transcript();
    let summary = TwinSummary {
        device: device.to_owned(),
        device_id: id,
        board: board.name.clone(),
        elf: elf.display().to_string(),
        temperature_profile: temperature.to_string(),
        virtual_duration_ms: duration.as_millis(),
        wall_ms: 0,
        readings: g.readings as usize,
        sensor_mismatches: mismatches,
        ground_truth: g,
        shadow,
        mqtt_messages: transcript.len(),
    };
    let energy = dev.machine().energy();
    Ok(Emulation {
        end: End::Twin(TwinEnd { summary, stop, energy, series, budget, started }),
        duration,
        json: args.json.clone(),
    })
}

impl Emulation {
    /// The report (what the JSON summary holds).
    pub fn summary(&self) -> Summary<'_> {
        match &self.end {
            End::Alone { summary, .. } => Summary::Alone(summary),
            End::Twin(t) => Summary::Twin(&t.summary),
        }
    }

    /// Prints the closing lines (the device's shadow, the counts and checks, the energy table
    /// and the budget's verdict), writes the JSON summary (and the plot next to it) if asked;
    /// `Ok(true)` if the run passed: the sensor check, the twin's ground truth and the budget
    /// hold, and the device ran to the end (or exited 0 when alone).
    pub fn finish(mut self, out: &mut Output<'_>) -> Result<bool, EmulateError> {
        match &mut self.end {
            End::Alone { summary: s, outcome, wall } => {
                out.say(&format!(
                    "{}: {}; {} samples, {} readings, sensor check {}; {:.2} s wall",
                    s.device,
                    s.outcome,
                    s.samples.len(),
                    s.readings.len(),
                    check_word(s.sensor_mismatches),
                    wall.as_secs_f64()
                ));
                let ok = s.sensor_mismatches == 0 && matches!(outcome, Outcome::Stopped | Outcome::Exited(0));
                write_json(self.json.as_deref(), &Summary::Alone(s), out)?;
                Ok(ok)
            }
            End::Twin(t) => {
                let (stop, started) = (t.stop, t.started);
                let s = &mut t.summary;
                let _ = writeln!(out.out, "shadow of {}:", s.device_id);
                let _ = writeln!(
                    out.out,
                    "{}",
                    s.shadow.as_ref().map_or("(none: the device never reported)".to_owned(), |v| {
                        serde_json::to_string_pretty(v).unwrap_or_default()
                    })
                );
                let g = &s.ground_truth;
                out.say(&format!(
                    "{}: {} of virtual time, {} readings: {} stored once in the twin, {} dropped by the device's buffer, {} still on the device; ground truth {}; sensor check {}; {} MQTT messages; {:.2} s wall",
                    s.device,
                    humanize(self.duration),
                    g.readings,
                    g.stored_once,
                    g.dropped,
                    g.pending,
                    if g.holds() { "ok".to_owned() } else { format!("BROKEN ({} missing, {} duplicated, {} invented, {} wrong values)", g.missing.len(), g.duplicated.len(), g.invented.len(), g.wrong_values.len()) },
                    check_word(s.sensor_mismatches),
                    s.mqtt_messages,
                    started.elapsed().as_secs_f64()
                ));
                if g.stored_once == 0 && g.pending > 0 {
                    out.say("the reference app publishes in windows, every 15 minutes (or sooner when half its buffer waits), with its modem off in between: run longer (e.g. --duration 20m) to see its readings reach the twin");
                }
                s.wall_ms = started.elapsed().as_millis();
                let ok =
                    s.sensor_mismatches == 0 && g.holds() && matches!(stop, twinbed_engine::Stop::Budget);
                write_json(self.json.as_deref(), &Summary::Twin(s), out)?;
                let ok = energy_lines(t, self.duration, self.json.as_deref(), out)? && ok;
                if !matches!(stop, twinbed_engine::Stop::Budget) {
                    out.say(&format!("the device stopped early: {stop:?}"));
                }
                Ok(ok)
            }
        }
    }
}

/// The energy table, the budget's verdict and the plot (beside `json`) of a run next to the
/// twin; `Ok(false)` if the budget is breached or cannot be checked.
fn energy_lines(
    t: &TwinEnd,
    duration: Duration,
    json: Option<&Path>,
    out: &mut Output<'_>,
) -> Result<bool, EmulateError> {
    let TwinEnd { summary: s, energy, series, budget, .. } = t;
    let (device, id) = (s.device.as_str(), s.device_id.as_str());
    let mut ok = true;
    match energy {
        Some(report) => {
            let m: Measured = energy::measured(report, s.ground_truth.readings);
            let _ = writeln!(out.out, "energy of {device} over {}:", humanize(duration));
            let _ = write!(out.out, "{}", energy::energy_table(&m));
            out.say(&format!(
                    "{device}: average {:.1} µA; projected battery life {:.0} days; radio on {:.3} % of the time; {:.0} µJ per reading",
                    m.average_current_ua(),
                    m.battery_life_days(),
                    100.0 * m.radio_on_share(),
                    m.energy_per_reading_uj()
                ));
            if let Some(b) = budget {
                let checks = energy::check(b, &m);
                let _ = write!(out.out, "{}", energy::verdict_table(&checks));
                let breaches = checks.iter().filter(|c| !c.ok).count();
                out.say(&if breaches == 0 {
                    "budget: ok".to_owned()
                } else {
                    format!("budget: {breaches} BREACHED")
                });
                ok &= breaches == 0;
            }
            if let Some(path) = json {
                let svg = path.with_extension("svg");
                energy::plot_svg(series, &format!("{device} ({id}): current and battery"), &svg)?;
                out.say(&format!("plot of current and battery written to {}", svg.display()));
            }
        }
        None if budget.is_some() => {
            out.say(&format!(
                "board {} has no [power] table: no energy figures, so the budget cannot be checked",
                s.board
            ));
            ok = false;
        }
        None => {}
    }
    Ok(ok)
}

/// `ok` or `FAILED (N mismatches)`.
fn check_word(mismatches: usize) -> String {
    if mismatches == 0 {
        "ok".to_owned()
    } else {
        format!("FAILED ({mismatches} mismatches)")
    }
}

/// Writes `summary` as JSON to `path` (its directory made if need be), if asked.
fn write_json(path: Option<&Path>, summary: &Summary<'_>, out: &mut Output<'_>) -> Result<(), EmulateError> {
    let Some(path) = path else { return Ok(()) };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|source| EmulateError::Io { doing: format!("creating {}", dir.display()), source })?;
    }
    std::fs::write(path, serde_json::to_string_pretty(summary)? + "\n")
        .map_err(|source| EmulateError::Io { doing: format!("writing {}", path.display()), source })?;
    out.say(&format!("summary written to {}", path.display()));
    Ok(())
}
