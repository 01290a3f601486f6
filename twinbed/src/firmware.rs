//! Builds the firmware workspace (`firmware/`) for the board, for the xtask and the tests.
//!
//! The firmware is its own cargo workspace with target thumbv7m-none-eabi; this runs `cargo
//! build --release` there, after making sure the Rust target is installed (`rustup target add`,
//! since these machines set RUSTUP_AUTO_INSTALL=0).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// The Rust target of the mps2-an385 firmware.
pub const TARGET: &str = "thumbv7m-none-eabi";

/// Which build of the firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// The device build: the app samples forever.
    Device,
    /// Test mode: the app exits through semihosting after this many samples.
    Test {
        /// Samples before exit.
        samples: u32,
    },
}

/// Built firmware ELFs.
#[derive(Clone, Debug)]
pub struct Firmware {
    /// The reference application.
    pub app: PathBuf,
    /// The `panic` self-test (prints a line, then panics: exit status 1).
    pub panic: PathBuf,
    /// The directory holding every firmware ELF of the build (see [`Firmware::bin`]).
    pub dir: PathBuf,
}

impl Firmware {
    /// The ELF of the firmware binary `name` (e.g. a conformance program `isa`).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Names of the conformance programs (the `twinbed-selftest` binaries besides `panic` and
    /// the `native-*` ones), sorted, read from firmware/selftest/src/bin/.
    pub fn conformance_programs() -> Vec<String> {
        selftest_bins(|n| n != "panic" && !n.starts_with(NATIVE_PREFIX))
    }

    /// The self-checking programs for twinbed's own engine only (`native-*` bins of
    /// firmware/selftest: testbed devices QEMU does not have; there they must detect that and
    /// exit 0), sorted.
    pub fn native_programs() -> Vec<String> {
        selftest_bins(|n| n.starts_with(NATIVE_PREFIX))
    }
}

/// The `twinbed-selftest` binaries whose names `keep` accepts, sorted.
fn selftest_bins(keep: impl Fn(&str) -> bool) -> Vec<String> {
    // Outside a checkout there are no programs to list (and nothing to build them with).
    let Ok(root) = repo_root() else { return Vec::new() };
    let dir = root.join("firmware/selftest/src/bin");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".rs").map(str::to_owned))
        .filter(|n| keep(n))
        .collect();
    names.sort();
    names
}

/// Name prefix of the self-checking programs that test twinbed's testbed devices.
pub const NATIVE_PREFIX: &str = "native-";

/// Why the firmware could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// A tool could not be started.
    #[error(
        "could not run `{tool}`: {source}. Is the Rust toolchain (rustup, cargo) installed and on PATH?"
    )]
    Spawn {
        /// The tool.
        tool: String,
        /// Why.
        source: std::io::Error,
    },
    /// `rustup target add` failed.
    #[error("`rustup target add {TARGET}` failed:\n{stderr}")]
    TargetAdd {
        /// Its stderr.
        stderr: String,
    },
    /// The current directory is not inside a twinbed checkout.
    #[error(transparent)]
    NotInCheckout(#[from] NotInCheckout),
    /// cargo failed (its output was shown as it ran).
    #[error("building the firmware failed (`cargo build` in {dir} exited with {status}); see the compiler output above")]
    Cargo {
        /// The firmware directory.
        dir: PathBuf,
        /// Its status.
        status: std::process::ExitStatus,
    },
}

/// Why twinbed cannot find the checkout it is to work in.
#[derive(Clone, Debug, thiserror::Error)]
#[error(
    "{} is not inside a twinbed checkout: no directory from there upwards has twinbed's \
     Cargo.toml with the firmware/ workspace next to it. Run this from (a directory of) your \
     checkout",
    cwd.display()
)]
pub struct NotInCheckout {
    /// Where the search started (the current directory).
    pub cwd: PathBuf,
}

/// The checkout that holds `dir`, found as cargo finds its workspace: the first directory from
/// `dir` upwards whose `Cargo.toml` is twinbed's host workspace (a `[workspace]` with the
/// `twinbed` member) and that has the firmware workspace (`firmware/Cargo.toml`) beside it.
pub fn find_repo_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| {
            let is_ours = std::fs::read_to_string(d.join("Cargo.toml"))
                .is_ok_and(|t| t.contains("[workspace]") && t.contains("\"twinbed\""));
            is_ours && d.join("firmware").join("Cargo.toml").is_file()
        })
        .map(Path::to_owned)
}

/// The checkout this process works in: found from the current directory upwards at run time
/// ([`find_repo_root`]), once per process. A binary built in one checkout and run in another
/// works on the one it is run in (see [`checkout_note`]).
pub fn repo_root() -> Result<PathBuf, NotInCheckout> {
    static FOUND: OnceLock<Result<PathBuf, NotInCheckout>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
            find_repo_root(&cwd).ok_or(NotInCheckout { cwd })
        })
        .clone()
}

/// The checkout this binary was built in (known at compile time; only to tell the user when
/// the one in use is another).
fn built_in() -> Option<PathBuf> {
    Path::new(option_env!("CARGO_MANIFEST_DIR")?).parent().map(Path::to_owned)
}

/// A line saying which checkout is used, when it is not the one this binary was built in
/// (e.g. a target directory copied from another checkout); `None` when they are the same.
pub fn checkout_note(root: &Path) -> Option<String> {
    let built = built_in()?;
    let same = match (root.canonicalize(), built.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => root == built,
    };
    (!same).then(|| {
        format!("using the checkout at {} (this binary was built in {})", root.display(), built.display())
    })
}

/// [`repo_root`], telling `log` once per process which checkout is used when it is not the one
/// the binary was built in.
fn root(log: &mut dyn FnMut(&str)) -> Result<PathBuf, BuildError> {
    static TOLD: AtomicBool = AtomicBool::new(false);
    let root = repo_root()?;
    if let Some(note) = checkout_note(&root) {
        if !TOLD.swap(true, Ordering::Relaxed) {
            log(&note);
        }
    }
    Ok(root)
}

/// A `Command` for `program` in `dir`, with the host build's cargo variables removed, so a
/// nested cargo builds the firmware workspace with its own configuration.
pub fn clean_command(program: &str, dir: &Path) -> Command {
    let mut c = Command::new(program);
    c.current_dir(dir);
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if k.starts_with("CARGO_") && k != "CARGO_HOME" || k == "RUSTFLAGS" || k == "RUSTDOCFLAGS" {
            c.env_remove(k);
        }
    }
    c
}

/// Runs a firmware `cargo build` (its output goes to this process's stderr).
fn run_cargo(cmd: &mut Command, dir: &Path) -> Result<(), BuildError> {
    let status = cmd.status().map_err(|source| BuildError::Spawn { tool: "cargo".into(), source })?;
    if !status.success() {
        return Err(BuildError::Cargo { dir: dir.to_owned(), status });
    }
    Ok(())
}

/// Installs the firmware's Rust target if the pinned toolchain lacks it, telling `log` so.
pub fn ensure_target(log: &mut dyn FnMut(&str)) -> Result<(), BuildError> {
    let root = root(log)?;
    let out = clean_command("rustup", &root)
        .args(["target", "list", "--installed"])
        .output()
        .map_err(|source| BuildError::Spawn { tool: "rustup".into(), source })?;
    if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET) {
        return Ok(());
    }
    log(&format!("installing the Rust target {TARGET} (rustup target add {TARGET})"));
    let out = clean_command("rustup", &root)
        .args(["target", "add", TARGET])
        .output()
        .map_err(|source| BuildError::Spawn { tool: "rustup".into(), source })?;
    if !out.status.success() {
        return Err(BuildError::TargetAdd { stderr: String::from_utf8_lossy(&out.stderr).into_owned() });
    }
    Ok(())
}

/// Where a variant is built: each has its own target dir, so building one never overwrites the
/// other's ELF (`firmware/target` for the device build, `firmware/target/test-mode` for tests).
pub fn target_dir(variant: Variant) -> Result<PathBuf, NotInCheckout> {
    let base = repo_root()?.join("firmware").join("target");
    Ok(match variant {
        Variant::Device => base,
        Variant::Test { .. } => base.join("test-mode"),
    })
}

/// Builds every firmware binary for `variant` and returns the ELF paths. Compiler output goes
/// to this process's stderr.
pub fn build(variant: Variant, log: &mut dyn FnMut(&str)) -> Result<Firmware, BuildError> {
    ensure_target(log)?;
    let dir = root(log)?.join("firmware");
    let target_dir = target_dir(variant)?;
    let mut cmd = clean_command("cargo", &dir);
    // The benchmark firmware (sha2, ed25519; the corpus) builds only for `cargo xtask bench`, the
    // bootloader only for its area (`build_ab`).
    cmd.args([
        "build",
        "--release",
        "--quiet",
        "--workspace",
        "--exclude",
        "twinbed-bench",
        "--exclude",
        "twinbed-boot",
        "--exclude",
        "twinbed-corpus",
        "--target-dir",
    ])
    .arg(&target_dir);
    if let Variant::Test { samples } = variant {
        cmd.args(["--features", "twinbed-app/test-mode"]).env("TWINBED_SAMPLES", samples.to_string());
    }
    run_cargo(&mut cmd, &dir)?;
    let out = target_dir.join(TARGET).join("release");
    Ok(Firmware { app: out.join("app"), panic: out.join("panic"), dir: out })
}

/// A build of the reference app alone with a setting of its own (each in its own target dir
/// under `firmware/target/app-*`, beside the [`Variant`] builds).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppFlavour {
    /// The modem online all the time, no publish windows (`TWINBED_PUBLISH_S=0`): the twin-loop
    /// scenarios that exercise the protocol (acks, replays, reconnects, desired state) use it,
    /// as a device on mains power would run.
    AlwaysOnline,
    /// The documented energy bug (feature `energy-bug`): between publish windows the app closes
    /// the MQTT link but leaves the modem registered (`AT+CFUN=0` forgotten), so it idles at
    /// ~1.2 mA instead of ~0.6 mA. For the battery-budget regression test.
    EnergyBug,
}

impl AppFlavour {
    fn name(self) -> &'static str {
        match self {
            AppFlavour::AlwaysOnline => "app-online",
            AppFlavour::EnergyBug => "app-energy-bug",
        }
    }
}

/// Builds the reference app (device build, samples forever) in `flavour` and returns its ELF.
pub fn build_app(flavour: AppFlavour, log: &mut dyn FnMut(&str)) -> Result<PathBuf, BuildError> {
    ensure_target(log)?;
    let dir = root(log)?.join("firmware");
    let target_dir = dir.join("target").join(flavour.name());
    let mut cmd = clean_command("cargo", &dir);
    cmd.args(["build", "--release", "--quiet", "-p", "twinbed-app", "--target-dir"]).arg(&target_dir);
    match flavour {
        AppFlavour::AlwaysOnline => {
            cmd.env("TWINBED_PUBLISH_S", "0");
        }
        AppFlavour::EnergyBug => {
            cmd.args(["--features", "twinbed-app/energy-bug"]);
        }
    }
    run_cargo(&mut cmd, &dir)?;
    Ok(target_dir.join(TARGET).join("release").join("app"))
}

/// The A/B update firmware: the bootloader and the test-mode app linked for each slot.
#[derive(Clone, Debug)]
pub struct AbFirmware {
    /// The bootloader (`firmware/boot`), linked at 0.
    pub boot: PathBuf,
    /// The test-mode app linked for slot A.
    pub app_a: PathBuf,
    /// The test-mode app linked for slot B.
    pub app_b: PathBuf,
    /// The test-mode app for slot B whose health check fails (feature `fail-health-check`).
    pub app_b_unhealthy: PathBuf,
}

/// Builds the A/B firmware (`--profile boot`, which keeps Ed25519 small): the bootloader
/// (`TWINBED_SLOT=boot`) and the
/// test-mode app (`samples` samples, then exit) for slots A and B, and for slot B once more
/// with a failing health check. Each goes to its own target dir under `firmware/target/ab-*`
/// (the slot changes the binary). Compiler output goes to this process's stderr.
pub fn build_ab(samples: u32, log: &mut dyn FnMut(&str)) -> Result<AbFirmware, BuildError> {
    ensure_target(log)?;
    let dir = root(log)?.join("firmware");
    let base = dir.join("target");
    let build = |package: &str, slot: &str, profile: &str, features: &str, name: &str| {
        let target_dir = base.join(format!("ab-{name}"));
        let mut cmd = clean_command("cargo", &dir);
        cmd.args(["build", "--quiet", "--profile", profile, "--package", package, "--target-dir"])
            .arg(&target_dir)
            .env("TWINBED_SLOT", slot)
            .env("TWINBED_SAMPLES", samples.to_string());
        if !features.is_empty() {
            cmd.args(["--features", features]);
        }
        run_cargo(&mut cmd, &dir)?;
        Ok::<_, BuildError>(target_dir.join(TARGET).join(profile))
    };
    let boot = build("twinbed-boot", "boot", "boot", "", "boot")?.join("boot");
    // The slot apps verify downloads with Ed25519 too: the `boot` profile keeps that small.
    let app_a = build("twinbed-app", "a", "boot", "test-mode", "a")?.join("app");
    let app_b = build("twinbed-app", "b", "boot", "test-mode", "b")?.join("app");
    let app_b_unhealthy =
        build("twinbed-app", "b", "boot", "test-mode,fail-health-check", "b-unhealthy")?.join("app");
    Ok(AbFirmware { boot, app_a, app_b, app_b_unhealthy })
}

/// Sizes of the benchmark firmware (`firmware/bench`), fixed at build time through
/// `TWINBED_BENCH_KIB` and `TWINBED_BENCH_HOURS`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BenchSizes {
    /// KiB of data `bench-cpu` hashes.
    pub kib: u32,
    /// Hours of virtual time `bench-duty` runs (one wake per second).
    pub hours: u32,
}

/// Built benchmark ELFs.
#[derive(Clone, Debug)]
pub struct BenchFirmware {
    /// `bench-cpu`: SHA-256 of [`BenchSizes::kib`] KiB, then one Ed25519 verify.
    pub cpu: PathBuf,
    /// `bench-duty`: a timer wake every second of virtual time for [`BenchSizes::hours`] hours.
    pub duty: PathBuf,
    /// The sizes they were built with.
    pub sizes: BenchSizes,
}

/// Where the benchmark firmware of `sizes` is built: `firmware/target/bench-<kib>-<hours>`, so
/// builds of different sizes never overwrite each other (nor the device or test builds).
pub fn bench_target_dir(sizes: BenchSizes) -> Result<PathBuf, NotInCheckout> {
    Ok(repo_root()?.join("firmware").join("target").join(format!("bench-{}-{}", sizes.kib, sizes.hours)))
}

/// Builds the benchmark firmware (package `twinbed-bench`) for `sizes` and returns its ELFs.
/// Compiler output goes to this process's stderr.
pub fn build_bench(sizes: BenchSizes, log: &mut dyn FnMut(&str)) -> Result<BenchFirmware, BuildError> {
    ensure_target(log)?;
    let dir = root(log)?.join("firmware");
    let target_dir = bench_target_dir(sizes)?;
    let mut cmd = clean_command("cargo", &dir);
    cmd.args(["build", "--release", "--quiet", "--package", "twinbed-bench", "--target-dir"])
        .arg(&target_dir)
        .env("TWINBED_BENCH_KIB", sizes.kib.to_string())
        .env("TWINBED_BENCH_HOURS", sizes.hours.to_string());
    run_cargo(&mut cmd, &dir)?;
    let out = target_dir.join(TARGET).join("release");
    Ok(BenchFirmware { cpu: out.join("bench-cpu"), duty: out.join("bench-duty"), sizes })
}

/// How the corpus firmware drives its workload (`TWINBED_CORPUS_MODE`, see firmware/corpus).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorpusMode {
    /// The slices back to back, no interrupts.
    Cpu,
    /// One slice per wake of timer 0, once per second of virtual time, WFI in between.
    Duty,
}

impl CorpusMode {
    /// The knob's value, also the name in tables.
    pub fn name(self) -> &'static str {
        match self {
            CorpusMode::Cpu => "cpu",
            CorpusMode::Duty => "duty",
        }
    }
}

/// How much work the corpus firmware does (`TWINBED_CORPUS_SCALE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorpusScale {
    /// 1,000 slices (a few M instructions): for the test.
    Tiny,
    /// 8,640 slices: the bench's default.
    Quick,
    /// 86,400 slices (24 h of wakes in duty mode; 100-500 M instructions CPU-bound).
    Full,
}

impl CorpusScale {
    /// The knob's value.
    pub fn name(self) -> &'static str {
        match self {
            CorpusScale::Tiny => "tiny",
            CorpusScale::Quick => "quick",
            CorpusScale::Full => "full",
        }
    }

    /// Slices each workload runs at this scale (as firmware/corpus/src/lib.rs defines them).
    pub fn slices(self) -> u32 {
        match self {
            CorpusScale::Tiny => 1_000,
            CorpusScale::Quick => 8_640,
            CorpusScale::Full => 86_400,
        }
    }
}

/// The cargo profile a corpus workload is built in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CorpusProfile {
    /// `release`: opt-level "s", LTO, one codegen unit (what the firmware workspace ships).
    Size,
    /// `corpus-o3`: release with opt-level 3.
    Speed,
}

impl CorpusProfile {
    /// Both, in table order.
    pub const ALL: [CorpusProfile; 2] = [CorpusProfile::Size, CorpusProfile::Speed];

    /// The cargo profile's name (also its directory under the target dir).
    pub fn cargo_profile(self) -> &'static str {
        match self {
            CorpusProfile::Size => "release",
            CorpusProfile::Speed => "corpus-o3",
        }
    }

    /// The name in tables: the opt-level.
    pub fn name(self) -> &'static str {
        match self {
            CorpusProfile::Size => "s",
            CorpusProfile::Speed => "3",
        }
    }
}

/// The corpus workloads (the bins of firmware/corpus/src/bin/), sorted.
pub fn corpus_workloads() -> Vec<String> {
    let Ok(root) = repo_root() else { return Vec::new() };
    let mut names: Vec<String> = std::fs::read_dir(root.join("firmware/corpus/src/bin"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str()?.strip_suffix(".rs").map(str::to_owned))
        .collect();
    names.sort();
    names
}

/// Where the corpus of `mode` and `scale` is built: `firmware/target/corpus-<mode>-<scale>`
/// (each profile in its own directory below it), so no build overwrites another.
pub fn corpus_target_dir(mode: CorpusMode, scale: CorpusScale) -> Result<PathBuf, NotInCheckout> {
    Ok(repo_root()?.join("firmware").join("target").join(format!("corpus-{}-{}", mode.name(), scale.name())))
}

/// Builds every corpus workload (package `twinbed-corpus`) for `mode` and `scale` in `profile`
/// and returns the directory holding their ELFs (one per workload, named as the workload).
/// Compiler output goes to this process's stderr.
pub fn build_corpus(
    mode: CorpusMode,
    scale: CorpusScale,
    profile: CorpusProfile,
    log: &mut dyn FnMut(&str),
) -> Result<PathBuf, BuildError> {
    ensure_target(log)?;
    let dir = root(log)?.join("firmware");
    let target_dir = corpus_target_dir(mode, scale)?;
    let mut cmd = clean_command("cargo", &dir);
    cmd.args(["build", "--quiet", "--profile", profile.cargo_profile(), "--package", "twinbed-corpus"])
        .arg("--target-dir")
        .arg(&target_dir)
        .env("TWINBED_CORPUS_MODE", mode.name())
        .env("TWINBED_CORPUS_SCALE", scale.name());
    run_cargo(&mut cmd, &dir)?;
    Ok(target_dir.join(TARGET).join(profile.cargo_profile()))
}

#[cfg(test)]
mod tests {
    use super::find_repo_root;
    use std::fs;

    #[test]
    fn the_checkout_is_the_first_twinbed_workspace_upwards() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("checkout");
        fs::create_dir_all(root.join("firmware/app/src")).unwrap();
        fs::create_dir_all(root.join("twinbed/src")).unwrap();
        fs::write(root.join("Cargo.toml"), "[workspace]\nmembers = [\"twinbed\", \"xtask\"]\n").unwrap();
        fs::write(root.join("firmware/Cargo.toml"), "[workspace]\nmembers = [\"app\"]\n").unwrap();
        // A member's own Cargo.toml (no [workspace]) and the firmware workspace are passed by.
        fs::write(root.join("twinbed/Cargo.toml"), "[package]\nname = \"twinbed\"\n").unwrap();
        assert_eq!(find_repo_root(&root.join("twinbed/src")), Some(root.clone()));
        assert_eq!(find_repo_root(&root.join("firmware/app/src")), Some(root.clone()));
        assert_eq!(find_repo_root(&root), Some(root.clone()));
        // Another workspace, or one without firmware/, is not a checkout.
        let other = tmp.path().join("other");
        fs::create_dir_all(other.join("firmware")).unwrap();
        fs::write(other.join("Cargo.toml"), "[workspace]\nmembers = [\"foo\"]\n").unwrap();
        assert_eq!(find_repo_root(&other), None);
        fs::remove_file(root.join("firmware/Cargo.toml")).unwrap();
        assert_eq!(find_repo_root(&root.join("twinbed")), None);
    }
}
