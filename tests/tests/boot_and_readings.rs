//! The reference app on QEMU: boot banner and the first readings under a fixed temperature
//! profile, snapshotted. Virtual time (`-icount`) plus the sample-hook sync make the transcript
//! byte-identical across runs; the test checks that too, and that every reading the firmware
//! printed is what the sensor model was set to (to the TMP105's 0.0625 °C resolution).

use twinbed::testkit::{self, TEST_SAMPLES};
use twinbed::{Board, Outcome, RunOptions, TemperatureProfile};

/// Crosses zero and ends above the start, so signs and interpolation both show.
const PROFILE: &str = "0:21.5,3:-4.25,5:30";

fn transcript(engine: twinbed::Engine) -> (String, twinbed::Report) {
    let fw = testkit::test_firmware();
    let board = Board::builtin("mps2-an385").unwrap();
    let mut opts = RunOptions::new(board, fw.app);
    opts.engine = engine;
    opts.temperature = Some(PROFILE.parse::<TemperatureProfile>().unwrap());
    let mut text = String::new();
    let report = twinbed::run(&opts, &mut |line| {
        text.push_str(line);
        text.push('\n');
    })
    .unwrap_or_else(|e| panic!("run failed: {e}"));
    (text, report)
}

fn check(engine: twinbed::Engine) {
    let (first, report) = transcript(engine);
    assert_eq!(report.outcome, Outcome::Exited(0), "{first}");
    assert_eq!(report.samples.len(), TEST_SAMPLES as usize);

    // Ground truth: each printed reading is the value set on the model at that sample.
    let readings: Vec<_> = first.lines().filter_map(twinbed::app::parse_reading).collect();
    assert_eq!(readings.len(), report.samples.len(), "{first}");
    for (r, s) in readings.iter().zip(&report.samples) {
        assert_eq!((r.index, r.uptime_ms), (s.index, s.uptime_ms));
        let set = s.temperature_milli_c.expect("a profile sets every sample");
        let diff = i64::from(r.centi_milli_c) - i64::from(set) * 10;
        assert!(diff.abs() < 625, "sample {}: read {} set {set}", r.index, r.centi_milli_c);
    }

    let (second, _) = transcript(engine);
    assert_eq!(first, second, "two runs of the same inputs must print the same bytes");
    // One snapshot for both engines: they must agree byte for byte.
    insta::assert_snapshot!("boot_and_5_readings", first);
}

#[test]
fn boot_banner_and_first_readings_are_stable_on_qemu() {
    testkit::require_qemu();
    check(twinbed::Engine::Qemu);
}

#[test]
fn boot_banner_and_first_readings_are_stable_on_the_native_engine() {
    check(twinbed::Engine::Native);
}
