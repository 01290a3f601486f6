//! Corpus workload `blake2s` (see [`twinbed_corpus::workloads::hash`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::hash::Blake2sStream::new());
