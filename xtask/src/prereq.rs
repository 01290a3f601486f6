//! Installs what the tasks need on a fresh machine, saying what it installs.

use anyhow::{bail, Context, Result};
use std::process::Command;

/// Firmware crates whose unit tests run on the host.
pub const FIRMWARE_HOST_TESTED: &[&str] =
    &["tmp105", "mcuimage", "abboot", "telemetry", "modem-at", "uplink", "twinbed-contract"];

/// Makes sure `qemu-system-arm` is there (or `$TWINBED_QEMU`); installs Debian's package with
/// apt-get otherwise (as root, or through sudo).
pub fn ensure_qemu(say: &mut dyn FnMut(&str)) -> Result<()> {
    ensure_apt(
        say,
        twinbed_qemu_found,
        "qemu-system-arm",
        "qemu-system-arm",
        "the QEMU backend and its tests",
    )
}

/// Makes sure `mosquitto` (the broker of the MQTT interop test) is there; installs Debian's
/// package with apt-get otherwise. The package's service is not started: the test starts its
/// own broker on a loopback port.
pub fn ensure_mosquitto(say: &mut dyn FnMut(&str)) -> Result<()> {
    ensure_apt(say, mosquitto_found, "mosquitto", "mosquitto", "the MQTT broker of the interop test")
}

/// The mosquitto binary, if installed (Debian puts it in /usr/sbin, often not on PATH).
pub fn mosquitto_found() -> bool {
    twinbed::testkit::mosquitto_binary().is_some()
}

/// Installs Debian package `package` with apt-get (as root, or through sudo) unless `found()`,
/// saying so and why (`what`).
fn ensure_apt(
    say: &mut dyn FnMut(&str),
    found: fn() -> bool,
    binary: &str,
    package: &str,
    what: &str,
) -> Result<()> {
    if found() {
        return Ok(());
    }
    say(&format!("{binary} not found: installing the Debian package {package} with apt-get, for {what}"));
    let root = is_root();
    let apt = |args: &[&str]| -> Result<()> {
        let mut c = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            c.arg("apt-get");
        }
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let status = c.status().with_context(|| format!("running apt-get {}", args.join(" ")))?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status}); install {package} by hand", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-q"])?;
    apt(&["install", "-y", "-q", package])?;
    if !found() {
        bail!("{binary} is still not found after installing {package}");
    }
    say(&format!("{package} installed"));
    Ok(())
}

fn twinbed_qemu_found() -> bool {
    twinbed::qemu_binary().is_ok()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The Unicorn version the differential test's oracle (`scripts/oracle-unicorn.py`) is run with.
pub const UNICORN_VERSION: &str = "2.1.4";

/// Makes sure `python3` can import `unicorn` (the oracle of the engine's differential test);
/// installs `unicorn==2.1.4` from PyPI with pip otherwise (plain `pip install`, falling back
/// to `--user`, then to `--break-system-packages` for an externally managed Python).
pub fn ensure_unicorn(say: &mut dyn FnMut(&str)) -> Result<()> {
    ensure_python_package(
        say,
        "unicorn",
        "unicorn",
        UNICORN_VERSION,
        "the oracle of the engine's differential test",
    )
}

/// imgtool from PyPI: MCUboot's signing tool, which the image-format tests (firmware/mcuimage)
/// check our images against, both ways.
pub const IMGTOOL_VERSION: &str = "2.5.0";

/// Makes sure python3 can import imgtool; installs it with pip otherwise, saying so.
pub fn ensure_imgtool(say: &mut dyn FnMut(&str)) -> Result<()> {
    ensure_python_package(
        say,
        "imgtool.main",
        "imgtool",
        IMGTOOL_VERSION,
        "MCUboot's signing tool, for the image-format interop tests",
    )
}

/// Makes sure python3 can import `module`; installs `package==version` with pip otherwise
/// (plain, then `--user`, then `--break-system-packages`), saying so and why (`what`).
fn ensure_python_package(
    say: &mut dyn FnMut(&str),
    module: &str,
    package: &str,
    version: &str,
    what: &str,
) -> Result<()> {
    if python_imports(module)? {
        return Ok(());
    }
    say(&format!("python3 cannot import {module}: installing {package}=={version} (PyPI) with pip, {what}"));
    let spec = format!("{package}=={version}");
    let attempts: [&[&str]; 3] = [&[], &["--user"], &["--break-system-packages"]];
    for extra in attempts {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(extra)
            .arg(&spec)
            .status()
            .context("running python3 -m pip")?;
        if status.success() && python_imports(module)? {
            say(&format!("{package} {version} installed"));
            return Ok(());
        }
    }
    bail!("could not install {spec} with pip; install it by hand (python3 -m pip install {spec})")
}

fn python_imports(module: &str) -> Result<bool> {
    let status = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("running python3 (the tests need it)")?;
    Ok(status.success())
}
