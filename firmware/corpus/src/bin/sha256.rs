//! Corpus workload `sha256` (see [`twinbed_corpus::workloads::sha256`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::sha256::Sha256Stream::new());
