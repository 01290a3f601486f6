//! The workloads, one module each.

pub mod chacha20;
pub mod crc;
pub mod event_queue;
pub mod fir_iir;
pub mod fmt;
pub mod hash;
pub mod libm_math;
pub mod lz4;
pub mod postcard;
pub mod sort;
