//! The contract between twinbed's firmware and its emulator: every fact both sides must agree
//! on, defined once. The firmware (BSP, bootloader, app) and the host (engine models, the
//! `twinbed` library) both depend on this crate by path; it is `no_std` and has no
//! dependencies, so either side can use it anywhere.
//!
//! A constant that appears here must not be written again elsewhere in the tree: use it from
//! here (or generate from it, as the BSP's build script generates the linker script's memory
//! regions from [`layout`]).
//!
//! Besides the facts, the test kit both sides share: the seeded generator ([`rng`]) and the NOR
//! tearing physics ([`tear`]), so that a seed tears the same bytes in the engine's flash model
//! and in the bootloader library's host tests.
#![no_std]

pub mod fuel_gauge;
pub mod hook;
pub mod layout;
pub mod nor_flash;
pub mod ota_feed;
pub mod rng;
pub mod tear;
pub mod version;
