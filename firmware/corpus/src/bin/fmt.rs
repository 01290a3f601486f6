//! Corpus workload `fmt` (see [`twinbed_corpus::workloads::fmt`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::fmt::FmtNumbers::new());
