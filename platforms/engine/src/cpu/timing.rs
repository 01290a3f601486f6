//! Cycle counts per instruction: a documented approximation of the Cortex-M3 Technical
//! Reference Manual (ARM DDI 0337, table 18-1 "Cortex-M3 instruction set summary"), with zero
//! wait-state memory.
//!
//! | class | cycles |
//! |---|---|
//! | data processing, MOV, compare, extend, bitfield, saturate, MUL | 1 |
//! | taken branch, BX/BLX, any write to PC | 1 + P, P = 2 (pipeline refill) |
//! | LDR/STR single | 2 |
//! | LDM/STM/PUSH/POP, LDRD/STRD | 1 + N registers (+ P if PC is loaded) |
//! | MLA, MLS | 2 |
//! | long multiplies | 4 (the TRM gives 3 to 5, data dependent) |
//! | SDIV, UDIV | 7 (the TRM gives 2 to 12, data dependent) |
//! | exception entry / return | 12 / 10 |
//! | WFI/WFE | 1, then the clock jumps to the next deadline |
//!
//! Guest-visible behaviour (what software prints) does not depend on these numbers except
//! through timers; they decide how much virtual time code takes, which matters for energy and
//! for the ratio of work to timer periods.

/// Pipeline refill after a branch.
pub const REFILL: u32 = 2;
/// Single load/store.
pub const LOAD_STORE: u32 = 2;
/// MLA/MLS.
pub const MUL_ACC: u32 = 2;
/// Long multiplies.
pub const LONG_MUL: u32 = 4;
/// Divides.
pub const DIV: u32 = 7;
/// Exception entry.
pub const EXCEPTION_ENTRY: u64 = 12;
/// Exception return.
pub const EXCEPTION_RETURN: u64 = 10;
