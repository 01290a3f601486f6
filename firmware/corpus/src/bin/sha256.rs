//! Corpus workload `sha256` (see [`twinbed_corpus::workloads::hash`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::hash::Sha256Stream::new());
