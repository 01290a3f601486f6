//! `cargo xtask`: the project's tasks (matklad's xtask convention). Each task is thin and calls
//! the `twinbed` library; this file only parses the command line and dispatches to the task's
//! module. Run `cargo xtask` for the list.

mod bench;
mod emulate;
mod firmware;
mod prereq;
mod sign;
mod sweep;
mod test;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

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
    /// set on the sensor model at that moment. `twinbed emulate` is the same run.
    #[command(
        after_help = "Examples:\n  cargo xtask emulate\n  cargo xtask emulate --duration 10m --temperature 0:20,300:30,600:20 --json out/run.json"
    )]
    Emulate(twinbed::emulate::EmulateArgs),
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
    Sweep(sweep::SweepArgs),
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
    Sign(sign::SignArgs),
    /// Benchmarks of the emulators; `cargo xtask bench` lists them.
    Bench {
        #[command(subcommand)]
        bench: Option<bench::Bench>,
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
        Task::BuildFirmware { test_mode } => firmware::run(test_mode),
        Task::Emulate(args) => emulate::run(&args),
        Task::Test { cargo_args } => test::test(&cargo_args),
        Task::Ci => test::test(&[]),
        Task::Sweep(args) => sweep::run(args),
        Task::Sign(args) => sign::run(args),
        Task::Bench { bench: None } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            cmd.build(); // fills in the subcommands' usage names (`cargo xtask bench`)
            if let Some(bench) = cmd.find_subcommand_mut("bench") {
                let _ = bench.print_help();
            }
            Ok(ExitCode::SUCCESS)
        }
        Task::Bench { bench: Some(bench) } => bench::run(bench),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A note for the user on stderr, prefixed `xtask:`.
fn say(msg: &str) {
    eprintln!("xtask: {msg}");
}
