//! Corpus workload `sort-search` (see [`twinbed_corpus::workloads::sort`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::sort::SortSearch::new());
