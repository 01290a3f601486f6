//! Corpus workload `libm-math` (see [`twinbed_corpus::workloads::libm_math`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::libm_math::LibmMath::new());
