//! The ARMv7-M core, knowing no board: its state ([`CpuState`]), the decoder ([`decode`]), the
//! instruction set ([`instr`]), execution ([`execute`]) over what it needs from outside
//! ([`Host`]: memory, system registers, sleep, semihosting), and the cycle model ([`timing`]).
//! The machine ([`crate::machine`]) implements [`Host`] and owns the decode cache, the run loop
//! and exception entry and return.

mod alu;
pub mod decode;
pub mod execute;
pub mod host;
pub mod instr;
mod state;
pub mod timing;

pub use host::{Exc, Host, Size};
pub use state::CpuState;
