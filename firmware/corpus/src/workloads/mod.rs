//! The workloads, one module each.

pub mod crc;
pub mod sha256;
pub mod sort;
