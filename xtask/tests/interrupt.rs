//! Stopping `cargo xtask emulate` from outside never leaves a QEMU behind.
//!
//! Each test runs the xtask binary (what `cargo xtask` runs) on a copy of the device firmware in
//! a fresh temporary directory, so the copy's path marks exactly this test's QEMU in
//! /proc/*/cmdline. It waits until the device has printed readings (QEMU is up and running),
//! checks that QEMU is there, stops the run, and checks that QEMU is gone.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use twinbed::firmware::Variant;
use twinbed::testkit;

struct Run {
    child: Child,
    marker: String,
    _dir: tempfile::TempDir,
}

/// Starts `xtask emulate` for an hour of virtual time, in a process group of its own (as a
/// shell job is), and returns once the device has printed its third reading.
fn start_emulate() -> Run {
    testkit::require_qemu();
    let fw = testkit::firmware(Variant::Device);
    let dir = tempfile::tempdir().unwrap();
    let elf = dir.path().join("app-under-interrupt-test.elf");
    std::fs::copy(&fw.app, &elf).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_xtask"))
        .args(["emulate", "--engine", "qemu", "--duration", "1h", "--elf"])
        .arg(&elf)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.unwrap();
        let done = line.contains("sample 2:");
        seen.push(line);
        if done {
            break;
        }
    }
    assert!(seen.last().is_some_and(|l| l.contains("sample 2:")), "emulate printed no readings: {seen:?}");
    // The xtask process has the path on its command line too; QEMU has it after `-kernel`.
    let marker = format!("-kernel\0{}", elf.display());
    let qemu = testkit::processes_with(&marker);
    assert_eq!(qemu.len(), 1, "exactly one QEMU runs {marker}");
    // The run's directory (QMP/gdb sockets, stderr log) is removed once QEMU is connected, so a
    // killed run cannot leave it behind.
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", qemu[0])).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    let sock = cmdline.split([' ', ',']).find_map(|w| w.strip_prefix("unix:")).expect("a unix socket");
    let run_dir = std::path::Path::new(sock).parent().unwrap();
    assert!(!run_dir.exists(), "{} still exists while QEMU runs", run_dir.display());
    Run { child, marker, _dir: dir }
}

/// Waits (at most 10 s) for `child` to end and for every process running the marker to go.
fn assert_all_gone(mut run: Run) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while run.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "xtask emulate did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
    loop {
        let left = testkit::processes_with(&run.marker);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "QEMU processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn ctrl_c_leaves_no_qemu_behind() {
    let run = start_emulate();
    // Ctrl-C in a terminal sends SIGINT to the whole foreground process group.
    let pgid = run.child.id() as i32;
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(-pgid, libc::SIGINT) }, 0);
    assert_all_gone(run);
}

#[test]
fn sigkill_of_the_runner_alone_leaves_no_qemu_behind() {
    let run = start_emulate();
    // Only the xtask process dies, abruptly, with no chance to clean up: QEMU's parent-death
    // signal must take it down.
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(run.child.id() as i32, libc::SIGKILL) }, 0);
    assert_all_gone(run);
}
