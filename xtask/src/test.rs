//! `cargo xtask test` (and `ci`): every test of the project, after installing what the suite
//! needs.

use crate::{prereq, say};
use anyhow::{bail, Context, Result};
use std::process::{Command, ExitCode};
use twinbed::firmware;

/// Firmware host tests, then `cargo test --workspace` with `cargo_args`; one closing line of
/// counts.
pub fn test(cargo_args: &[String]) -> Result<ExitCode> {
    firmware::ensure_target(&mut say)?;
    prereq::ensure_qemu(&mut say)?;
    prereq::ensure_unicorn(&mut say)?;
    prereq::ensure_imgtool(&mut say)?;
    prereq::ensure_mosquitto(&mut say)?;
    let root = firmware::repo_root()?;
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
