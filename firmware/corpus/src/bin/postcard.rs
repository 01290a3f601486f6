//! Corpus workload `postcard` (see [`twinbed_corpus::workloads::postcard`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::postcard::PostcardRoundTrip::new());
