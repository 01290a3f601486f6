//! Installs what the tasks need on a fresh machine, saying what it installs.

use anyhow::{bail, Context, Result};
use std::process::Command;

/// Firmware crates whose unit tests run on the host.
pub const FIRMWARE_HOST_TESTED: &[&str] = &["tmp105"];

/// Makes sure `qemu-system-arm` is there (or `$TWINBED_QEMU`); installs Debian's package with
/// apt-get otherwise (as root, or through sudo).
pub fn ensure_qemu(say: &mut dyn FnMut(&str)) -> Result<()> {
    if twinbed_qemu_found() {
        return Ok(());
    }
    say("qemu-system-arm not found: installing the Debian package qemu-system-arm with apt-get");
    let root = is_root();
    let apt = |args: &[&str]| -> Result<()> {
        let mut c = if root { Command::new("apt-get") } else { Command::new("sudo") };
        if !root {
            c.arg("apt-get");
        }
        c.args(args).env("DEBIAN_FRONTEND", "noninteractive");
        let status = c.status().with_context(|| format!("running apt-get {}", args.join(" ")))?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status}); install qemu-system-arm by hand", args.join(" "));
        }
        Ok(())
    };
    apt(&["update", "-q"])?;
    apt(&["install", "-y", "-q", "qemu-system-arm"])?;
    if !twinbed_qemu_found() {
        bail!("qemu-system-arm is still not on PATH after installing it");
    }
    say("qemu-system-arm installed");
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
    if unicorn_found()? {
        return Ok(());
    }
    say(&format!(
        "python3 cannot import unicorn: installing unicorn=={UNICORN_VERSION} (PyPI) with pip, the \
         oracle of the engine's differential test"
    ));
    let package = format!("unicorn=={UNICORN_VERSION}");
    let attempts: [&[&str]; 3] = [&[], &["--user"], &["--break-system-packages"]];
    for extra in attempts {
        let status = Command::new("python3")
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(extra)
            .arg(&package)
            .status()
            .context("running python3 -m pip")?;
        if status.success() && unicorn_found()? {
            say(&format!("unicorn {UNICORN_VERSION} installed"));
            return Ok(());
        }
    }
    bail!("could not install {package} with pip; install it by hand (python3 -m pip install {package})")
}

fn unicorn_found() -> Result<bool> {
    let status = Command::new("python3")
        .args(["-c", "import unicorn"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .context("running python3 (the differential test needs it)")?;
    Ok(status.success())
}
