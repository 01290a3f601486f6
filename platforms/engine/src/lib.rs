//! twinbed's embedded engine (work in progress): an ARMv7-M core, the system block, and board
//! peripherals, all on virtual time.
#![allow(dead_code)] // under construction

pub mod periph;
