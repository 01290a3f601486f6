//! `twinbed`: run Cortex-M firmware on an emulated board.
use clap::{Parser, Subcommand};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;
use twinbed::{exit_code, Board, Engine, Jit, Outcome, RunOptions, TemperatureProfile};

/// Run real Cortex-M firmware on an emulated board, deterministically.
#[derive(Parser)]
#[command(version, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// More log output on stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
}

#[derive(Subcommand)]
enum Command {
    /// Run a firmware ELF until it exits; print its console (UART0 and semihosting) on stdout.
    ///
    /// Exit status: the guest's semihosting exit status (0 success, 1 failure, e.g. a panic
    /// through panic-semihosting); 124 if the wall-clock timeout passes first; 125 if twinbed
    /// cannot run it (bad ELF, unknown board, emulator missing or crashed); 2 for bad arguments.
    ///
    /// Works as a cargo runner: in firmware/.cargo/config.toml,
    /// `runner = "../scripts/twinbed-runner"` makes `cargo run` run on the emulator.
    #[command(
        after_help = "Examples:\n  twinbed run firmware/target/thumbv7m-none-eabi/release/app\n  twinbed run --temperature 0:20,60:25 --timeout 30 app.elf"
    )]
    Run {
        /// The firmware ELF (built for thumbv7m-none-eabi).
        elf: PathBuf,
        /// Emulator: `native` (twinbed's own, in-process, deterministic) or `qemu`
        /// (qemu-system-arm, launched as a process with -icount virtual time).
        #[arg(long, value_enum, default_value_t = Engine::Native)]
        engine: Engine,
        /// Built-in board name or path of a board file (.toml).
        #[arg(long, default_value = "mps2-an385")]
        board: String,
        /// Wall-clock limit in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
        /// Temperature the board's TMP105 shows over virtual time: `21.5` or `0:20,60:25,120:18`
        /// (seconds:°C, linear in between). Needs the testbed hook in the firmware to follow a
        /// profile; a constant works with any firmware.
        #[arg(long, allow_hyphen_values = true)]
        temperature: Option<TemperatureProfile>,
        /// Native engine: the block compiler. `auto` compiles blocks once they are hot (or as
        /// the TWINBED_JIT environment variable says: off, eager or a number of starts);
        /// `off` interprets everything; `eager` compiles every block at first sight. Output,
        /// cycle and instruction counts are the same with each; only speed differs.
        #[arg(long, value_enum, default_value_t = Jit::Auto)]
        jit: Jit,
        /// Put a raw file into memory before the guest starts: `ADDR:FILE` (ADDR in hex with
        /// 0x, or decimal), e.g. a signed image into an A/B slot next to the bootloader ELF.
        /// Repeatable.
        #[arg(long, value_name = "ADDR:FILE", value_parser = parse_load)]
        load: Vec<(u32, PathBuf)>,
    },
    /// Boot the firmware next to its digital twin, drive its sensor, check the run (as `cargo
    /// xtask emulate`).
    ///
    /// Drives the sensor from a temperature profile and streams the console, prefixed with the
    /// device name.
    /// Without --elf it builds the reference app (firmware/app) of the checkout you run it in.
    /// On the native engine (the default) the device's virtual modem speaks MQTT to a broker
    /// and the twin service stores what arrives: both start in this process (an embedded
    /// rumqttd on a free loopback port, SQLite in memory or --db FILE), or use --broker URL.
    /// At the end it prints the device's shadow and checks the twin's history against every
    /// reading the firmware took. With --engine qemu (or --no-twin) the device runs alone.
    ///
    /// Stops after --duration of virtual time and prints a summary; the sensor check compares
    /// every reading the firmware printed with the temperature set on the sensor model at that
    /// moment. Exit status 1 if a check fails, 125 if the run cannot happen.
    #[command(
        after_help = "Examples:\n  twinbed emulate\n  twinbed emulate --duration 10m --temperature 0:20,300:30,600:20 --json out/run.json"
    )]
    Emulate(twinbed::emulate::EmulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    twinbed::init_logging(cli.verbose);
    match cli.command {
        Command::Run { elf, engine, board, timeout, temperature, jit, load } => {
            let code = run(elf, engine, &board, timeout, temperature, jit, load);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Command::Emulate(args) => ExitCode::from(u8::try_from(emulate(&args)).unwrap_or(1)),
    }
}

/// `twinbed emulate`: 0 if the run passed its checks, 1 if not, 125 if it could not run.
fn emulate(args: &twinbed::emulate::EmulateArgs) -> i32 {
    let mut say = |m: &str| eprintln!("twinbed: {m}");
    let mut stdout = std::io::stdout();
    let mut out = twinbed::emulate::Output { say: &mut say, out: &mut stdout };
    let finished = twinbed::emulate::run(args, &mut out).and_then(|e| e.finish(&mut out));
    match finished {
        Ok(true) => 0,
        Ok(false) => 1,
        Err(e) => fail(&error_chain(&e)),
    }
}

/// An error and its causes, `: `-separated (as `cargo xtask` prints them).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

fn run(
    elf: PathBuf,
    engine: Engine,
    board: &str,
    timeout: u64,
    temperature: Option<TemperatureProfile>,
    jit: Jit,
    load: Vec<(u32, PathBuf)>,
) -> i32 {
    let board = match Board::load(board) {
        Ok(b) => b,
        Err(e) => return fail(&e),
    };
    let mut opts = RunOptions::new(board, elf);
    opts.engine = engine;
    opts.timeout = Duration::from_secs(timeout);
    opts.temperature = temperature;
    opts.jit = jit;
    opts.preload = load;
    let stdout = std::io::stdout();
    let mut print = |line: &str| {
        let mut out = stdout.lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    };
    match twinbed::run(&opts, &mut print) {
        Ok(report) => match report.outcome {
            Outcome::Exited(code) => code,
            Outcome::Stopped => exit_code::STOPPED,
            Outcome::TimedOut => {
                eprintln!("twinbed: timeout: the guest did not exit within {timeout} s of wall-clock time (use --timeout to allow more)");
                exit_code::TIMEOUT
            }
        },
        Err(e) => fail(&e),
    }
}

/// `ADDR:FILE`.
fn parse_load(s: &str) -> Result<(u32, PathBuf), String> {
    let (addr, file) =
        s.split_once(':').ok_or_else(|| format!("`{s}`: expected ADDR:FILE, e.g. 0x20000:app-a.img"))?;
    let addr = match addr.strip_prefix("0x").or_else(|| addr.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(&h.replace('_', ""), 16),
        None => addr.replace('_', "").parse(),
    }
    .map_err(|_| format!("`{addr}` is not an address (0x-hex or decimal)"))?;
    if file.is_empty() {
        return Err(format!("`{s}`: no file after the colon"));
    }
    Ok((addr, PathBuf::from(file)))
}

fn fail(e: &dyn std::fmt::Display) -> i32 {
    eprintln!("twinbed: error: {e}");
    exit_code::EMULATOR_ERROR
}
