//! twinbed's front door as a library: run a firmware ELF on an engine for a board, feed its
//! sensors from a profile, collect the console. The `twinbed` CLI and `cargo xtask` are thin
//! layers over this, so both behave the same.
//!
//! Every run of the embedded engine goes through one [`Runner`] ([`runner`]); [`run`] drives it
//! or QEMU with the same [`Driver`]; [`emulate`] is a device next to its twin, checked and
//! summed up, for `twinbed emulate` and `cargo xtask emulate` alike.

pub mod ab;
pub mod bench;
pub mod duration;
pub mod elf;
pub mod emulate;
pub mod energy;
pub mod firmware;
pub mod image;
pub mod net;
pub mod profile;
pub mod runner;
pub mod scenario;
pub mod sweep;

use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use profile::TemperatureProfile;
pub use runner::{Driver, Flow, Outcome, Runner, SamplePoint};
pub use twinbed_board::Board;

/// Which emulator runs the firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// QEMU (`qemu-system-arm`), launched as a process.
    Qemu,
    /// twinbed's own in-process engine (the default): deterministic, no external process.
    Native,
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Engine::Qemu => "qemu",
            Engine::Native => "native",
        })
    }
}

/// The native engine's block compiler (see `twinbed_engine::Machine::set_jit`). Every setting
/// gives the same output, cycle counts and instruction counts; only speed differs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Jit {
    /// Compile blocks once they are hot (the default; `TWINBED_JIT` overrides it).
    #[default]
    Auto,
    /// Interpret everything.
    Off,
    /// Compile every block at first sight (for testing the compiler).
    Eager,
}

/// Why a run could not happen (guest failures are not errors; see [`Outcome`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The firmware file is not usable.
    #[error(transparent)]
    Elf(#[from] elf::ElfError),
    /// The QEMU backend failed.
    #[error(transparent)]
    Qemu(#[from] twinbed_qemu::QemuError),
    /// The embedded engine could not set up the board or load the ELF.
    #[error(transparent)]
    Machine(#[from] twinbed_engine::MachineError),
    /// A file to preload could not be read or does not fit the board's memory.
    #[error("cannot load {path} at 0x{addr:08x}: {reason}")]
    Preload {
        /// The file.
        path: PathBuf,
        /// Where it was to go.
        addr: u32,
        /// Why it could not.
        reason: String,
    },
    /// The guest went to sleep with nothing that could ever wake it.
    #[error("the guest is asleep (WFI/WFE at 0x{pc:08x}) with no interrupt enabled that could wake it: it would sleep forever")]
    GuestIdle {
        /// Where it sleeps.
        pc: u32,
    },
    /// The guest locked up (a fault it could not handle).
    #[error("the guest locked up at 0x{pc:08x}: a fault occurred that no handler could take (CFSR 0x{cfsr:08x}, HFSR 0x{hfsr:08x}); on hardware the core would stop here")]
    GuestLockup {
        /// Where.
        pc: u32,
        /// CFSR at the time.
        cfsr: u32,
        /// HFSR at the time.
        hfsr: u32,
    },
    /// A virtual duration was asked for but the firmware cannot report its virtual time.
    #[error("a virtual duration needs firmware with the testbed hook `{}` (the twinbed BSP provides it); this ELF has none", twinbed_contract::hook::SYMBOL)]
    NoHookForDuration,
}

/// What to run and how.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// The engine.
    pub engine: Engine,
    /// The board.
    pub board: Board,
    /// The firmware ELF.
    pub elf: PathBuf,
    /// Wall-clock safety limit.
    pub timeout: Duration,
    /// Temperature seen by the board's TMP105 over virtual time; `None` leaves the model's
    /// default (0 °C on QEMU).
    pub temperature: Option<TemperatureProfile>,
    /// Stop at the first sample after this much virtual time (needs the testbed hook).
    pub virtual_duration: Option<Duration>,
    /// QEMU: ns of virtual time per instruction (`-icount shift=N`).
    pub icount_shift: u8,
    /// Native engine: the block compiler.
    pub jit: Jit,
    /// Raw files to put into memory at these addresses after the ELF, before the guest starts
    /// (e.g. signed images in the A/B slots, next to the bootloader ELF).
    pub preload: Vec<(u32, PathBuf)>,
}

impl RunOptions {
    /// Defaults for `elf` on `board`: the native engine, 60 s timeout, no profile, no
    /// duration, QEMU icount shift 0.
    pub fn new(board: Board, elf: impl Into<PathBuf>) -> Self {
        Self {
            engine: Engine::Native,
            board,
            elf: elf.into(),
            timeout: Duration::from_secs(60),
            temperature: None,
            virtual_duration: None,
            icount_shift: 0,
            jit: Jit::Auto,
            preload: Vec::new(),
        }
    }
}

/// One sensor sample as the emulator saw it (ground truth for checks).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Sample {
    /// The sample's index as the firmware counts it.
    pub index: u32,
    /// The guest's uptime at the sample, in ms.
    pub uptime_ms: u32,
    /// Temperature set on the sensor model right before the read, in milli-°C.
    pub temperature_milli_c: Option<i32>,
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct Report {
    /// How it ended.
    pub outcome: Outcome,
    /// Samples, in order.
    pub samples: Vec<Sample>,
    /// Console lines seen.
    pub lines: usize,
    /// Wall-clock time taken.
    pub wall: Duration,
    /// Guest instructions executed (the native engine's `Machine::instret`); `None` on QEMU,
    /// which does not report it.
    pub instructions: Option<u64>,
}

/// [`run`]'s driver: counts and forwards lines, records samples, stops at the virtual duration.
struct RunDriver<'a> {
    opts: &'a RunOptions,
    on_line: &'a mut dyn FnMut(&str),
    samples: Vec<Sample>,
    lines: usize,
}

impl Driver for RunDriver<'_> {
    fn on_line(&mut self, line: &str) -> Flow {
        self.lines += 1;
        (self.on_line)(line);
        Flow::Continue
    }

    fn on_sample(&mut self, at: SamplePoint) -> (Option<i32>, Flow) {
        if let Some(d) = self.opts.virtual_duration {
            if u128::from(at.uptime_ms) > d.as_millis() {
                return (None, Flow::Stop);
            }
        }
        let t = self.opts.temperature.as_ref().map(|p| p.milli_c_at(u64::from(at.uptime_ms)));
        self.samples.push(Sample { index: at.index, uptime_ms: at.uptime_ms, temperature_milli_c: t });
        (t, Flow::Continue)
    }
}

/// The native engine's runner for `opts`: the board, the block compiler setting, the ELF, the
/// preloaded files (then a reset, so the guest starts from them), the initial temperature, and
/// the sample hook when a profile or a duration needs it.
fn native_runner(opts: &RunOptions, info: &elf::FirmwareInfo) -> Result<Runner, RunError> {
    let data =
        std::fs::read(&opts.elf).map_err(|source| elf::ElfError::Read { path: opts.elf.clone(), source })?;
    let mut m = twinbed_engine::Machine::new(&opts.board)?;
    match opts.jit {
        Jit::Auto => {}
        Jit::Off => m.set_jit(None),
        Jit::Eager => m.set_jit(Some(1)),
    }
    m.load_elf(&data)?;
    for (addr, path) in &opts.preload {
        let bytes = std::fs::read(path).map_err(|e| RunError::Preload {
            path: path.clone(),
            addr: *addr,
            reason: e.to_string(),
        })?;
        if !m.poke(*addr, &bytes) {
            return Err(RunError::Preload {
                path: path.clone(),
                addr: *addr,
                reason: format!("{} bytes there do not fit one memory region of the board", bytes.len()),
            });
        }
    }
    if !opts.preload.is_empty() {
        m.reset();
    }
    let mut r = Runner::new(m, &opts.board, runner::Sources::Console);
    if let Some(p) = &opts.temperature {
        r.set_temperature(p.milli_c_at(0));
    }
    let use_hook = opts.temperature.is_some() || opts.virtual_duration.is_some();
    r.set_sample_hook(info.sample_hook.filter(|_| use_hook));
    Ok(r)
}

/// Runs the firmware; every console line goes to `on_line` as it arrives.
pub fn run(opts: &RunOptions, on_line: &mut dyn FnMut(&str)) -> Result<Report, RunError> {
    let info = elf::inspect(&opts.elf)?;
    if opts.virtual_duration.is_some() && info.sample_hook.is_none() {
        return Err(RunError::NoHookForDuration);
    }
    let started = Instant::now();
    let mut driver = RunDriver { opts, on_line, samples: Vec::new(), lines: 0 };
    let (outcome, instructions) = match opts.engine {
        Engine::Native => {
            let mut r = native_runner(opts, &info)?;
            let outcome = r.drive(&mut driver, opts.timeout)?;
            (outcome, Some(r.machine.instret))
        }
        Engine::Qemu => {
            let cfg = twinbed_qemu::RunConfig {
                board: opts.board.clone(),
                elf: opts.elf.clone(),
                icount_shift: Some(opts.icount_shift),
                timeout: opts.timeout,
                // Stop at samples only when someone needs it: a profile or a duration.
                sample_hook: info
                    .sample_hook
                    .filter(|_| opts.temperature.is_some() || opts.virtual_duration.is_some()),
                initial_temperature: opts.temperature.as_ref().map(|p| p.milli_c_at(0)),
                preload: opts.preload.clone(),
                serial1: None,
            };
            (runner::drive_qemu(&cfg, &mut driver)?, None)
        }
    };
    Ok(Report {
        outcome,
        samples: driver.samples,
        lines: driver.lines,
        wall: started.elapsed(),
        instructions,
    })
}

/// Exit statuses of `twinbed run` besides the guest's own.
pub mod exit_code {
    /// The wall-clock timeout passed before the guest exited.
    pub const TIMEOUT: i32 = 124;
    /// twinbed could not run the firmware: bad ELF or board, emulator missing or died.
    pub const EMULATOR_ERROR: i32 = 125;
    /// The run was stopped at the requested virtual duration (not a guest exit).
    pub const STOPPED: i32 = 0;
}

/// Sets up `tracing` on stderr: `-v` count maps to a level, `RUST_LOG` overrides.
pub fn init_logging(verbose: u8) {
    // rumqttd (the embedded broker) reports every client that goes away as an error, ours at
    // shutdown included: heard from at -vv and up only.
    let default = match verbose {
        0 => "warn,rumqttd=off",
        1 => "info,rumqttd=off",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
}

/// The reference application's console format (firmware/app), for checks on transcripts.
pub mod app {
    /// A reading line: `[     1000 ms] sample 0: temperature 21.5000 C`.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
    pub struct Reading {
        /// Uptime printed by the firmware.
        pub uptime_ms: u32,
        /// Sample index.
        pub index: u32,
        /// Temperature in ten-thousandths of a °C.
        pub centi_milli_c: i32,
    }

    /// Parses a reading line; `None` for any other line (banner, sensor errors).
    pub fn parse_reading(line: &str) -> Option<Reading> {
        let rest = line.trim_start().strip_prefix('[')?;
        let (uptime, rest) = rest.split_once(" ms] sample ")?;
        let (index, rest) = rest.split_once(": temperature ")?;
        let value = rest.strip_suffix(" C")?;
        let (neg, digits) = match value.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, value),
        };
        let (int, frac) = digits.split_once('.')?;
        if frac.len() != 4 {
            return None;
        }
        let magnitude =
            int.parse::<i32>().ok()?.checked_mul(10_000)?.checked_add(frac.parse::<i32>().ok()?)?;
        Some(Reading {
            uptime_ms: uptime.trim().parse().ok()?,
            index: index.parse().ok()?,
            centi_milli_c: if neg { -magnitude } else { magnitude },
        })
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn parses_reading_lines() {
            let r = super::parse_reading("[     3000 ms] sample 2: temperature -4.2500 C").unwrap();
            assert_eq!((r.uptime_ms, r.index, r.centi_milli_c), (3000, 2, -42_500));
            let r = super::parse_reading("[1000 ms] sample 0: temperature 0.0625 C").unwrap();
            assert_eq!(r.centi_milli_c, 625);
            assert_eq!(super::parse_reading("twinbed-app v0.1.0 on mps2-an385"), None);
            assert_eq!(super::parse_reading("[ 1000 ms] sample 0: sensor error BusStuck"), None);
        }
    }
}

/// The QEMU binary twinbed would launch, or why there is none.
pub fn qemu_binary() -> Result<PathBuf, twinbed_qemu::QemuError> {
    twinbed_qemu::find_qemu()
}

/// Helpers for twinbed's own test suites (the CLI, xtask and end-to-end tests share them).
pub mod testkit {
    use crate::firmware::{self, Firmware, Variant};
    use std::sync::{Mutex, OnceLock};

    /// Samples the test-mode app takes before exiting, in every test.
    pub const TEST_SAMPLES: u32 = 5;

    /// The value cached under `key`, or `build`'s, kept for the rest of the process.
    fn once_per<K: PartialEq + Copy, V: Clone>(
        cache: &OnceLock<Mutex<Vec<(K, V)>>>,
        key: K,
        build: impl FnOnce() -> V,
    ) -> V {
        let mut built = cache.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
        if let Some((_, v)) = built.iter().find(|(k, _)| *k == key) {
            return v.clone();
        }
        let v = build();
        built.push((key, v.clone()));
        v
    }

    /// The firmware ELFs of `variant`, built once per test process. Panics with the build error:
    /// a test cannot go on without them.
    pub fn firmware(variant: Variant) -> Firmware {
        static BUILT: OnceLock<Mutex<Vec<(Variant, Firmware)>>> = OnceLock::new();
        once_per(&BUILT, variant, || {
            firmware::build(variant, &mut |m| eprintln!("testkit: {m}"))
                .unwrap_or_else(|e| panic!("building the firmware ({variant:?}) failed: {e}"))
        })
    }

    /// The reference app in `flavour` ([`firmware::AppFlavour`]), built once per test process.
    pub fn app(flavour: firmware::AppFlavour) -> std::path::PathBuf {
        static BUILT: OnceLock<Mutex<Vec<(firmware::AppFlavour, std::path::PathBuf)>>> = OnceLock::new();
        once_per(&BUILT, flavour, || {
            firmware::build_app(flavour, &mut |m| eprintln!("testkit: {m}"))
                .unwrap_or_else(|e| panic!("building the app ({flavour:?}) failed: {e}"))
        })
    }

    /// The A/B firmware (bootloader, slot-linked test-mode apps of 2 samples), built once
    /// per test process.
    pub fn ab_firmware() -> firmware::AbFirmware {
        static BUILT: OnceLock<firmware::AbFirmware> = OnceLock::new();
        BUILT
            .get_or_init(|| {
                firmware::build_ab(2, &mut |m| eprintln!("testkit: {m}"))
                    .unwrap_or_else(|e| panic!("building the A/B firmware failed: {e}"))
            })
            .clone()
    }

    /// The test-mode firmware ([`TEST_SAMPLES`] samples, then exit 0).
    pub fn test_firmware() -> Firmware {
        firmware(Variant::Test { samples: TEST_SAMPLES })
    }

    /// Panics with how to install QEMU if it is missing (`cargo xtask test` installs it).
    pub fn require_qemu() {
        if let Err(e) = crate::qemu_binary() {
            panic!("this test needs QEMU: {e}");
        }
    }

    /// The mosquitto broker binary (Debian installs it in /usr/sbin, which is often not on
    /// PATH), if installed.
    pub fn mosquitto_binary() -> Option<std::path::PathBuf> {
        let on_path = std::env::var_os("PATH")
            .map(|p| std::env::split_paths(&p).map(|d| d.join("mosquitto")).collect::<Vec<_>>())
            .unwrap_or_default();
        on_path.into_iter().chain([std::path::PathBuf::from("/usr/sbin/mosquitto")]).find(|p| p.is_file())
    }

    /// Pids of running processes whose command line contains `marker` (arguments are separated
    /// by NUL there, e.g. `"-kernel\0/tmp/x/app.elf"`), zombies excluded (their command line is
    /// empty).
    pub fn processes_with(marker: &str) -> Vec<u32> {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        dir.filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                String::from_utf8_lossy(&cmdline).contains(marker)
            })
            .collect()
    }
}
