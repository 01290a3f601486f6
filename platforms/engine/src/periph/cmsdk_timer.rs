//! CMSDK APB timer (ARM Cortex-M System Design Kit TRM, DDI0479C §4.4), as QEMU 7.2 models it
//! (hw/timer/cmsdk-apb-timer.c on a ptimer; QEMU is the oracle).
//!
//! Registers: CTRL 0x000 (EN, SELEXTEN, SELEXTCLK, IRQEN), VALUE 0x004, RELOAD 0x008,
//! INTSTATUS/INTCLEAR 0x00C, PID/CID 0xFD0..0xFFC (PID0 = 0x22). One interrupt output
//! (TIMERINT). The timer counts at PCLK, which on mps2-an385 is the 25 MHz system clock, i.e.
//! the core clock: one count per cycle.
//!
//! How QEMU reads the manual (and so this model):
//! - The interrupt fires when the count goes from 1 to 0; the counter then holds 0 for one
//!   clock before reloading from RELOAD, so a periodic timer with RELOAD = N fires first N
//!   cycles after it is started and then every N + 1 cycles. RELOAD = 0 runs once (one-shot).
//!   Count reads round up between clock edges (see `ptimer.rs`).
//! - INTSTATUS is set at underflow only if CTRL.IRQEN is set at that moment (the TRM sets the
//!   status regardless); INTCLEAR bit 0 is write-1-to-clear.
//! - Writing RELOAD also loads VALUE and (if enabled) restarts a stopped one-shot timer.
//! - Writing VALUE = 0 with RELOAD = 0 stops the timer.
//!
//! Not modelled (QEMU neither): EXTIN as enable or clock (CTRL bits 1 and 2 read back as
//! written, logged as unimplemented).
//!
//! Deadline: [`Device::next_deadline`] is the next underflow while the timer runs with IRQEN
//! set and no interrupt already pending; everything else is computed lazily from `ctx.now`.

use super::ptimer::Ptimer;
use super::regs::{self, RegFile, Registers};
use super::{Ctx, Device, FromBoard, IrqOutputs, PeriphError, Size};
use serde::{Deserialize, Serialize};

crate::registers! {
    /// The timer's registers.
    pub enum Reg for "cmsdk-apb-timer", Any {
        /// Control: EN (bit 0), SELEXTEN (1), SELEXTCLK (2), IRQEN (3).
        #[doc(alias = "CTRL")]
        Ctrl = 0x000, RW, reset = 0, mask = 0xf;
        /// Current count (the counter's).
        #[doc(alias = "VALUE")]
        Value = 0x004, RW;
        /// Reload value (the counter's limit).
        #[doc(alias = "RELOAD")]
        Reload = 0x008, RW;
        /// Interrupt status (read) / INTCLEAR (write 1 to bit 0).
        #[doc(alias = "INTSTATUS", alias = "INTCLEAR")]
        IntStatus = 0x00c, W1C, reset = 0, mask = 1;
        /// PID4..PID7, PID0..PID3, CID0..CID3.
        Id[12] = 0xfd0, RO;
    }
}

const CTRL_EN: u32 = 1 << 0;
const CTRL_IRQEN: u32 = 1 << 3;

/// PID4..PID7, PID0..PID3, CID0..CID3 (QEMU's values).
const IDS: [u8; 12] = [0x04, 0, 0, 0, 0x22, 0xb8, 0x1b, 0, 0x0d, 0xf0, 0x05, 0xb1];

/// One CMSDK APB timer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmsdkTimer {
    irqs: IrqOutputs,
    /// CTRL, INTSTATUS.
    regs: RegFile<Reg>,
    timer: Ptimer,
}

impl CmsdkTimer {
    /// A timer in its reset state, its TIMERINT output wired as `irqs`.
    pub fn new(irqs: IrqOutputs) -> Self {
        Self { irqs, regs: RegFile::new(), timer: Ptimer::new(1) }
    }

    fn update_irq(&mut self, ctx: &mut Ctx<'_>) {
        self.irqs.update(&[self.regs[Reg::IntStatus] & 1 != 0], ctx.irq);
    }
}

impl Registers for CmsdkTimer {
    type Reg = Reg;

    fn regs(&mut self) -> &mut RegFile<Reg> {
        &mut self.regs
    }

    fn read_reg(&mut self, reg: Reg, stored: u32, ctx: &mut Ctx<'_>) -> u32 {
        match reg {
            Reg::Value => self.timer.count(ctx.now) as u32,
            Reg::Reload => self.timer.limit() as u32,
            Reg::Id(i) => u32::from(IDS[i]),
            Reg::Ctrl | Reg::IntStatus => stored,
        }
    }

    fn write_reg(&mut self, reg: Reg, value: u32, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        match reg {
            Reg::Ctrl => {
                if value & 6 != 0 {
                    tracing::debug!(target: "unimp", "cmsdk-apb-timer: EXTIN input (CTRL 0x{value:x}) not modelled");
                }
                if self.regs[Reg::Ctrl] & CTRL_EN != 0 {
                    self.timer.start(self.timer.limit() == 0);
                } else {
                    self.timer.stop(now);
                }
                self.timer.commit(now);
            }
            Reg::Reload => {
                if value == 0 {
                    self.timer.stop(now);
                }
                self.timer.set_limit(u64::from(value), true);
                if value != 0 && self.regs[Reg::Ctrl] & CTRL_EN != 0 {
                    // Restart a one-shot timer that has already expired.
                    self.timer.start(false);
                }
                self.timer.commit(now);
            }
            Reg::Value => {
                if value == 0 && self.timer.limit() == 0 {
                    self.timer.stop(now);
                }
                self.timer.set_count(u64::from(value));
                if value != 0 && self.regs[Reg::Ctrl] & CTRL_EN != 0 {
                    self.timer.start(self.timer.limit() == 0);
                }
                self.timer.commit(now);
            }
            // INTCLEAR: write 1 to clear (by the table).
            Reg::IntStatus => self.update_irq(ctx),
            Reg::Id(_) => {}
        }
    }
}

impl Device for CmsdkTimer {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        regs::read(self, offset, size, ctx)
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        regs::write(self, offset, size, value, ctx);
    }

    fn advance(&mut self, ctx: &mut Ctx<'_>) {
        if self.timer.advance(ctx.now) > 0 && self.regs[Reg::Ctrl] & CTRL_IRQEN != 0 {
            self.regs[Reg::IntStatus] |= 1;
            self.update_irq(ctx);
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        if self.regs[Reg::Ctrl] & CTRL_IRQEN != 0 && self.regs[Reg::IntStatus] == 0 {
            self.timer.next_event()
        } else {
            None
        }
    }

    fn reset(&mut self) {
        *self = Self::new(self.irqs.clone());
        self.irqs.reset();
    }
}

impl FromBoard for CmsdkTimer {
    const IRQ_OUTPUTS: usize = 1;

    fn from_board(
        _: &twinbed_board::Peripheral,
        _: u8,
        irqs: IrqOutputs,
        _: &twinbed_board::Board,
    ) -> Result<Self, PeriphError> {
        Ok(Self::new(irqs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periph::{IrqLines, Output};

    #[test]
    fn periodic_underflow_raises_irq_at_the_right_cycle() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut t = CmsdkTimer::new(IrqOutputs::new(&[8]));
        let mut ctx = Ctx { now: 1000, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        t.write(0x008, Size::Word, 25_000, &mut ctx); // 1 ms
        t.write(0x000, Size::Word, CTRL_EN | CTRL_IRQEN, &mut ctx);
        assert_eq!(t.read(0x004, Size::Word, &mut ctx), 25_000);
        assert_eq!(t.next_deadline(), Some(26_000));

        ctx.now = 25_999;
        t.advance(&mut ctx);
        assert_eq!(t.read(0x00c, Size::Word, &mut ctx), 0);
        assert_eq!(t.read(0x004, Size::Word, &mut ctx), 2, "rounds up between edges");
        ctx.now = 26_000;
        t.advance(&mut ctx);
        assert_eq!(t.read(0x00c, Size::Word, &mut ctx), 1);
        assert_eq!(ctx.irq.levels(), 1 << 8);
        assert_eq!(t.next_deadline(), None, "pending: nothing new to raise");

        t.write(0x00c, Size::Word, 1, &mut ctx);
        assert_eq!(ctx.irq.levels(), 0);
        // Then every RELOAD + 1 cycles.
        assert_eq!(t.next_deadline(), Some(26_000 + 25_001));
        ctx.now = 26_000 + 25_001 * 3;
        t.advance(&mut ctx);
        assert_eq!(ctx.irq.levels(), 1 << 8);
        assert_eq!(t.read(0x004, Size::Word, &mut ctx), 0, "holds 0 for a cycle after wrapping");
        ctx.now += 2;
        assert_eq!(t.read(0x004, Size::Word, &mut ctx), 25_000);
    }

    #[test]
    fn irqen_clear_means_no_status_and_one_shot_with_reload_zero() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut t = CmsdkTimer::new(IrqOutputs::new(&[9]));
        let mut ctx = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        t.write(0x004, Size::Word, 100, &mut ctx);
        t.write(0x000, Size::Word, CTRL_EN, &mut ctx); // RELOAD = 0: one-shot
        assert_eq!(t.next_deadline(), None);
        ctx.now = 500;
        t.advance(&mut ctx);
        assert_eq!(t.read(0x00c, Size::Word, &mut ctx), 0, "IRQEN was clear at underflow");
        assert_eq!(t.read(0x004, Size::Word, &mut ctx), 0);
        t.write(0x000, Size::Word, CTRL_EN | CTRL_IRQEN, &mut ctx);
        t.write(0x004, Size::Word, 10, &mut ctx);
        assert_eq!(t.next_deadline(), Some(510));
        ctx.now = 510;
        t.advance(&mut ctx);
        assert_eq!(ctx.irq.levels(), 1 << 9);
        assert_eq!(t.next_deadline(), None);
        t.reset();
        assert_eq!(t.read(0x000, Size::Word, &mut ctx), 0);
    }
}
