//! Peripheral models: one file each, named after the datasheet block, each with a header that
//! cites the manual (and QEMU's model where QEMU is the oracle) and lists what is not modelled.
//!
//! # The contract every model follows
//! - A model is plain data (`Clone + Send + Serialize + Deserialize`): a machine snapshot is a
//!   clone. No `Rc`, no `RefCell`, no trait objects, no host clock.
//! - Time is the machine's virtual clock in core-clock **cycles** (`Ctx::now`). A model never
//!   reads the wall clock. Counters are computed from `now` lazily (e.g. a timer stores the cycle
//!   at which it was loaded), not ticked cycle by cycle.
//! - `advance(ctx)` brings the model up to `ctx.now` (raise interrupts that came due);
//!   `next_deadline()` says when it next needs `advance` (absolute cycle), so the machine can
//!   skip idle time (WFI) straight to the earliest deadline. The machine calls `advance` before
//!   every access to the model and whenever `now` reaches its deadline.
//! - Registers are an enum of offsets; interrupt outputs change in one `update_irq()` per model
//!   (pending && enabled), which sets the line level through `ctx.irq`.
//! - Guest mistakes (bad offset, bad size, writing a read-only register) are logged with
//!   `tracing` target `"guest"` and answered as the hardware would (usually RAZ/WI); never a
//!   panic. Unimplemented features log with target `"unimp"`.


use serde::{Deserialize, Serialize};

/// Width of a bus access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Size {
    /// 8 bits.
    Byte = 1,
    /// 16 bits.
    Half = 2,
    /// 32 bits.
    Word = 4,
}

/// Interrupt request lines from peripherals to the NVIC: one level per external IRQ number.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqLines {
    level: u128,
    /// Lines that rose since the NVIC last looked (a rising edge pends even if it falls again).
    rose: u128,
}

impl IrqLines {
    /// Sets the level of external interrupt `irq` (0..128).
    pub fn set(&mut self, irq: u32, high: bool) {
        if irq >= 128 {
            return;
        }
        let bit = 1u128 << irq;
        if high {
            if self.level & bit == 0 {
                self.rose |= bit;
            }
            self.level |= bit;
        } else {
            self.level &= !bit;
        }
    }

    /// Current levels, one bit per IRQ.
    pub fn levels(&self) -> u128 {
        self.level
    }

    /// Lines that rose since the last call (and clears that record).
    pub fn take_rising(&mut self) -> u128 {
        std::mem::take(&mut self.rose)
    }
}

/// Bytes that left the machine (console output), in the order they were sent.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Everything transmitted, tagged with its source (e.g. `uart0`, `semihosting`), in order.
    pub bytes: Vec<(OutputSource, u8)>,
}

/// Where output bytes came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputSource {
    /// UART number n of the board.
    Uart(u8),
    /// Semihosting console calls (SYS_WRITEC, SYS_WRITE0, SYS_WRITE to stdout/stderr).
    Semihosting,
}

/// What a model may touch besides itself during an access or `advance`.
pub struct Ctx<'a> {
    /// Virtual time now, in core-clock cycles since power-on.
    pub now: u64,
    /// Core clock in Hz (the board's `clock_hz`).
    pub clock_hz: u32,
    /// Interrupt lines into the NVIC.
    pub irq: &'a mut IrqLines,
    /// Console output.
    pub out: &'a mut Output,
}

/// The interface of every memory-mapped model. Offsets are relative to the model's base.
pub trait Device {
    /// A read of `size` at `offset` (aligned to `size` by the bus; unaligned accesses to devices
    /// fault before they get here). Returns the value in the low bits.
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32;
    /// A write of `size` at `offset`; `value` holds the data in its low bits.
    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>);
    /// Brings the model's state up to `ctx.now`.
    fn advance(&mut self, ctx: &mut Ctx<'_>) {
        let _ = ctx;
    }
    /// The earliest cycle at which the model needs `advance`, if any.
    fn next_deadline(&self) -> Option<u64> {
        None
    }
    /// Back to the power-on state (system reset). Models that keep contents across reset
    /// (flash) keep them.
    fn reset(&mut self);
}
