//! The conformance programs (firmware/selftest) on both engines: each must pass on each (exit
//! status 0) and print the same bytes on both, apart from lines marked `deviation` (checks where
//! QEMU departs from the ARMv7-M Architecture Reference Manual; twinbed follows the manual).

use twinbed::firmware::Firmware;
use twinbed::testkit;
use twinbed::{Board, Engine, Jit, Outcome, RunOptions};

fn run(engine: Engine, elf: &std::path::Path) -> (Outcome, String) {
    let (outcome, text, _) = run_with(engine, Jit::Auto, elf);
    (outcome, text)
}

/// Runs `elf`; also returns the instructions the native engine counted.
fn run_with(engine: Engine, jit: Jit, elf: &std::path::Path) -> (Outcome, String, Option<u64>) {
    let mut opts = RunOptions::new(Board::builtin("mps2-an385").unwrap(), elf);
    opts.engine = engine;
    opts.jit = jit;
    opts.timeout = std::time::Duration::from_secs(60);
    let mut text = String::new();
    let report = twinbed::run(&opts, &mut |l| {
        text.push_str(l);
        text.push('\n');
    })
    .unwrap_or_else(|e| panic!("{} on {engine}: {e}", elf.display()));
    (report.outcome, text, report.instructions)
}

fn comparable(text: &str) -> String {
    text.lines().filter(|l| !l.contains("deviation")).map(|l| format!("{l}\n")).collect()
}

#[test]
fn conformance_programs_pass_and_agree_on_both_engines() {
    testkit::require_qemu();
    let fw = testkit::test_firmware();
    let programs = Firmware::conformance_programs();
    assert!(!programs.is_empty(), "no conformance programs found in firmware/selftest/src/bin");
    let mut failures = Vec::new();
    for name in &programs {
        let elf = fw.bin(name);
        let (q_out, q_text) = run(Engine::Qemu, &elf);
        let (n_out, n_text) = run(Engine::Native, &elf);
        if q_out != Outcome::Exited(0) {
            failures.push(format!("{name} on QEMU: {q_out:?}\n{q_text}"));
        }
        if n_out != Outcome::Exited(0) {
            failures.push(format!("{name} on native: {n_out:?}\n{n_text}"));
        }
        if comparable(&q_text) != comparable(&n_text) {
            failures.push(format!("{name}: outputs differ\n--- qemu\n{q_text}--- native\n{n_text}"));
        }
        // The block compiler changes nothing: the same bytes (deviation lines included) and
        // the same instruction count with every block compiled as without any.
        let (i_out, i_text, i_count) = run_with(Engine::Native, Jit::Off, &elf);
        let (e_out, e_text, e_count) = run_with(Engine::Native, Jit::Eager, &elf);
        if (i_out, &i_text, i_count) != (e_out, &e_text, e_count) {
            failures.push(format!(
                "{name}: interpreted and compiled runs differ ({i_out:?}, {i_count:?} instructions vs \
                 {e_out:?}, {e_count:?})\n--- interpreted\n{i_text}--- compiled\n{e_text}"
            ));
        }
        if i_text != n_text {
            failures.push(format!("{name}: default and interpreted runs differ\n{n_text}---\n{i_text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn native_programs_pass_on_the_native_engine_and_skip_cleanly_on_qemu() {
    testkit::require_qemu();
    let fw = testkit::test_firmware();
    let programs = Firmware::native_programs();
    assert!(!programs.is_empty(), "no native-* programs found in firmware/selftest/src/bin");
    let mut failures = Vec::new();
    for name in &programs {
        let elf = fw.bin(name);
        for jit in [Jit::Off, Jit::Eager] {
            let (out, text, _) = run_with(Engine::Native, jit, &elf);
            if out != Outcome::Exited(0) || !text.contains(", 0 failed") || text.contains("skipped") {
                failures.push(format!("{name} on native ({jit:?}): {out:?}\n{text}"));
            }
        }
        // QEMU has no testbed devices: the program must notice and exit 0 without checks.
        let (out, text) = run(Engine::Qemu, &elf);
        if out != Outcome::Exited(0) || !text.contains("skipped") {
            failures.push(format!("{name} on QEMU: {out:?}\n{text}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_reference_app_prints_the_same_bytes_on_both_engines() {
    testkit::require_qemu();
    let fw = testkit::test_firmware();
    let profile: twinbed::TemperatureProfile = "0:21.5,3:-4.25,5:30".parse().unwrap();
    let mut texts = Vec::new();
    for engine in [Engine::Qemu, Engine::Native] {
        let mut opts = RunOptions::new(Board::builtin("mps2-an385").unwrap(), &fw.app);
        opts.engine = engine;
        opts.temperature = Some(profile.clone());
        let mut text = String::new();
        let report = twinbed::run(&opts, &mut |l| {
            text.push_str(l);
            text.push('\n');
        })
        .unwrap();
        assert_eq!(report.outcome, Outcome::Exited(0), "{engine}: {text}");
        texts.push(text);
    }
    assert_eq!(texts[0], texts[1], "QEMU and native transcripts differ");
}
