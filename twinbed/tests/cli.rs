//! The `twinbed` CLI as users and cargo call it: output, exit statuses, error messages.

use std::path::Path;
use std::process::{Command, Output};
use twinbed::firmware::{self, Variant};
use twinbed::testkit::{self, TEST_SAMPLES};

fn twinbed(args: &[&str], elf: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_twinbed"))
        .arg("run")
        .args(args)
        .arg(elf)
        .output()
        .expect("twinbed starts")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// An error is one paragraph for a person: no panic, no backtrace, no debug dump.
fn assert_clean_error(out: &Output, want: &str) {
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(twinbed::exit_code::EMULATOR_ERROR), "stderr: {stderr}");
    assert!(stderr.starts_with("twinbed: error: "), "{stderr}");
    assert!(stderr.contains(want), "expected `{want}` in: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE") && !stderr.contains("Os {"),
        "{stderr}"
    );
    assert_eq!(stderr.trim_end().lines().count(), 1, "one paragraph: {stderr}");
}

const ENGINES: [&str; 2] = ["native", "qemu"];

#[test]
fn test_mode_app_prints_banner_and_readings_then_exits_0() {
    testkit::require_qemu();
    let fw = testkit::test_firmware();
    for engine in ENGINES {
        let out = twinbed(&["--engine", engine, "--temperature", "21.5"], &fw.app);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
        assert!(stdout.starts_with("twinbed-app v0.1.0 on mps2-an385"), "{stdout}");
        let readings: Vec<_> = stdout.lines().filter_map(twinbed::app::parse_reading).collect();
        assert_eq!(readings.len(), TEST_SAMPLES as usize, "{stdout}");
        assert!(readings.iter().all(|r| r.centi_milli_c == 215_000), "{stdout}");
        assert!(stdout.trim_end().ends_with("test mode: 5 samples taken, exiting"), "{stdout}");
    }
}

#[test]
fn panicking_firmware_exits_1_and_shows_the_panic() {
    testkit::require_qemu();
    let fw = testkit::test_firmware();
    for engine in ENGINES {
        let out = twinbed(&["--engine", engine], &fw.panic);
        let stdout = text(&out.stdout);
        assert_eq!(out.status.code(), Some(1), "{engine}: {stdout}\nstderr: {}", text(&out.stderr));
        assert!(stdout.contains("selftest panic: about to panic"), "{stdout}");
        assert!(stdout.contains("deliberate panic"), "{stdout}");
    }
}

#[test]
fn a_guest_that_never_exits_hits_the_timeout() {
    testkit::require_qemu();
    // The device build samples forever.
    let fw = testkit::firmware(Variant::Device);
    for engine in ENGINES {
        let out = twinbed(&["--engine", engine, "--timeout", "1"], &fw.app);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(twinbed::exit_code::TIMEOUT), "{engine}: {stderr}");
        assert!(stderr.contains("did not exit within 1 s"), "{stderr}");
    }
}

#[test]
fn missing_corrupt_and_foreign_elfs_get_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    assert_clean_error(&twinbed(&[], &dir.path().join("nope.elf")), "does not exist");

    let fw = testkit::test_firmware();
    let bytes = std::fs::read(&fw.app).unwrap();
    let truncated = dir.path().join("truncated.elf");
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    assert_clean_error(&twinbed(&[], &truncated), "is not a valid ELF file");

    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, b"\x7fELF but not really, just some bytes that start like one").unwrap();
    assert_clean_error(&twinbed(&[], &garbage), "is not a valid ELF file");

    // The host's own executable is an ELF, for the wrong architecture.
    assert_clean_error(&twinbed(&[], Path::new(env!("CARGO_BIN_EXE_twinbed"))), "not for 32-bit ARM");
}

#[test]
fn missing_qemu_says_how_to_install_it() {
    let fw = testkit::test_firmware();
    let out = Command::new(env!("CARGO_BIN_EXE_twinbed"))
        .args(["run", "--engine", "qemu"])
        .arg(&fw.app)
        .env("TWINBED_QEMU", "/nonexistent/qemu-system-arm")
        .output()
        .unwrap();
    assert_clean_error(&out, "apt-get install -y qemu-system-arm");
}

#[test]
fn unknown_board_and_bad_profile_are_rejected() {
    let fw = testkit::test_firmware();
    assert_clean_error(&twinbed(&["--board", "nrf99"], &fw.app), "unknown board `nrf99`");
    let out = twinbed(&["--temperature", "0:20,0:30"], &fw.app);
    assert_eq!(out.status.code(), Some(2), "clap rejects bad arguments with 2");
    assert!(text(&out.stderr).contains("times must increase"), "{}", text(&out.stderr));
}

/// `cargo run` in firmware/ goes through firmware/.cargo/config.toml's runner
/// (scripts/twinbed-runner). TWINBED_BIN points the runner at this build of twinbed, so the
/// test does not start a second build of the host tools inside this one.
#[test]
fn cargo_run_in_firmware_runs_on_the_emulator() {
    testkit::require_qemu();
    let variant = Variant::Test { samples: TEST_SAMPLES };
    testkit::firmware(variant); // builds the same configuration; cargo run then only runs it
    let out = firmware::clean_command("cargo", &firmware::repo_root().unwrap().join("firmware"))
        .args(["run", "--release", "--quiet", "--features", "test-mode", "--target-dir"])
        .arg(firmware::target_dir(variant).unwrap())
        .args(["--", "--temperature", "-12.25"])
        .env("TWINBED_SAMPLES", TEST_SAMPLES.to_string())
        .env("TWINBED_BIN", env!("CARGO_BIN_EXE_twinbed"))
        .output()
        .unwrap();
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {}", text(&out.stderr));
    assert!(stdout.contains("sample 4: temperature -12.2500 C"), "{stdout}");
}

/// `twinbed emulate` is `cargo xtask emulate`'s run: the device's console prefixed with its
/// name on stdout, the summary on stderr, exit 0 when the checks hold.
#[test]
fn emulate_runs_the_device_alone_and_sums_up() {
    let fw = testkit::firmware(Variant::Device);
    let out = Command::new(env!("CARGO_BIN_EXE_twinbed"))
        .args(["emulate", "--no-twin", "--duration", "5s", "--device", "probe", "--elf"])
        .arg(&fw.app)
        .output()
        .expect("twinbed starts");
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.starts_with("[probe] twinbed-app v0.1.0 on mps2-an385"), "{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.contains("] sample ")).count(), 5, "{stdout}");
    assert!(
        stderr.contains(
            "twinbed: probe: stopped after 5 s of virtual time; 5 samples, 5 readings, sensor check ok;"
        ),
        "{stderr}"
    );
}

/// A flag that needs the twin cannot go with `--no-twin`: clap says so (status 2).
#[test]
fn emulate_rejects_twin_flags_without_the_twin() {
    let out = Command::new(env!("CARGO_BIN_EXE_twinbed"))
        .args(["emulate", "--no-twin", "--budget", "budgets.toml"])
        .output()
        .expect("twinbed starts");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("cannot be used with"), "{}", text(&out.stderr));
}
