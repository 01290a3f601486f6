//! The benchmark corpus (firmware/corpus) at its `tiny` size, CPU-bound, in both profiles
//! (opt-level "s" and 3): every workload on our engine with every block compiled at first
//! sight (`Jit::Eager`), on our engine interpreting only, and on QEMU. The three consoles must
//! be equal byte for byte and every run must exit 0 (each workload checks itself: known
//! answers, round trips, invariants). The same runners as `cargo xtask bench corpus`; figures
//! are printed, never asserted.

use twinbed::bench::corpus::{mismatch_text, run_corpus, CorpusOptions};
use twinbed::firmware::{corpus_workloads, CorpusMode, CorpusScale};
use twinbed::{testkit, Board, Jit};

#[test]
fn every_corpus_workload_checks_itself_and_prints_the_same_on_all_three_engines() {
    testkit::require_qemu();
    let board = Board::builtin("mps2-an385").unwrap();
    let mut opts = CorpusOptions::new(CorpusScale::Tiny);
    opts.modes = vec![CorpusMode::Cpu];
    opts.jit_on = Jit::Eager;
    opts.timeout = std::time::Duration::from_secs(60);
    let bench = run_corpus(&board, &opts, &mut |line| eprintln!("corpus: {line}")).unwrap();
    eprintln!("{}", bench.table());
    let workloads = corpus_workloads();
    assert_eq!(bench.rows.len(), workloads.len() * opts.profiles.len());
    let failures: Vec<String> =
        bench.rows.iter().filter(|r| !r.consoles_match()).map(mismatch_text).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for r in &bench.rows {
        let ok = format!("{}: check ok", r.workload);
        assert!(
            r.jit_on.console.contains(&ok),
            "{} (opt-level {}) did not report `{ok}`:\n{}",
            r.workload,
            r.profile.name(),
            r.jit_on.console.join("\n")
        );
    }
    assert!(workloads.len() >= 10, "the corpus has {} workloads, fewer than 10", workloads.len());
}
