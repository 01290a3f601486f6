//! Corpus workload `event-queue` (see [`twinbed_corpus::workloads::event_queue`]).
#![no_std]
#![no_main]

twinbed_corpus::corpus_main!(twinbed_corpus::workloads::event_queue::EventQueue::new());
