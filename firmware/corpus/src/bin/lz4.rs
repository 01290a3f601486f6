//! Corpus workload `lz4` (see [`twinbed_corpus::workloads::lz4`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::lz4::Lz4RoundTrip::new());
