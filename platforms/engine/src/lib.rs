//! twinbed's embedded engine: an ARMv7-M core ([`cpu`]), the System Control Space
//! ([`system`]), board peripherals ([`periph`]) and the machine that ties them together on
//! virtual time ([`machine`]), with a block compiler (Cranelift) for hot code, and energy
//! accounting with a battery model ([`power`]). The machine is plain data: `Clone + Send`,
//! serde for files, so a snapshot is a clone and thousands of machines fit in one process.

pub mod cpu;
mod jit;
pub mod machine;
pub mod periph;
pub mod power;
pub mod system;

pub use cpu::timing;
pub use jit::{compile_stats, forget_compiled_blocks, set_tier_up_cycles, CompileStats, TIER_UP_CYCLES};
pub use machine::{Machine, MachineError, Stop, JIT_THRESHOLD};
pub use power::{EnergyReport, PowerError};
