//! Corpus workload `fir-iir` (see [`twinbed_corpus::workloads::fir_iir`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::fir_iir::FirIir::new());
