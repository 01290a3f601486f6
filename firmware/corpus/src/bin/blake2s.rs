//! Corpus workload `blake2s` (see [`twinbed_corpus::workloads::blake2s`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::blake2s::Blake2sStream::new());
