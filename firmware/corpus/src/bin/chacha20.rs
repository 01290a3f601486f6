//! Corpus workload `chacha20` (see [`twinbed_corpus::workloads::chacha20`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::chacha20::ChaChaRoundTrip::new());
