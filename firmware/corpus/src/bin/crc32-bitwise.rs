//! Corpus workload `crc32-bitwise` (see [`twinbed_corpus::workloads::crc`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::crc::Crc32Bitwise::new());
