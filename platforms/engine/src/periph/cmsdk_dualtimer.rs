//! CMSDK APB dual-input timer (ARM Cortex-M System Design Kit TRM, DDI0479C §4.5; the SP804
//! programmer's model), as QEMU 7.2 models it (hw/timer/cmsdk-apb-dualtimer.c; QEMU is the
//! oracle).
//!
//! Two modules at 0x00 and 0x20: LOAD, VALUE, CONTROL, INTCLR, RIS, MIS, BGLOAD. Then
//! TIMERITCR 0xF00, TIMERITOP 0xF04 (write-only), PID/CID 0xFD0..0xFFC (PID0 = 0x23).
//! Interrupt outputs, in QEMU's order: TIMINTC (OR of both), TIMINT1, TIMINT2; mps2-an385
//! wires only TIMINTC. TIMCLK is the 25 MHz system clock = the core clock; PRESCALE divides it
//! by 1, 16 or 256.
//!
//! How QEMU behaves, reproduced here:
//! - Counting follows QEMU's ptimer (see `ptimer.rs`): fire on 1 -> 0, hold 0 for one tick,
//!   then reload; reads round up between ticks.
//! - Reset state: CONTROL = 0x20 (INTEN set), free-running, 16-bit, VALUE reads 0xFFFFFFFF
//!   (upper half kept aside in 16-bit mode), LOAD 0.
//! - RIS is set at every expiry whatever INTEN is; MIS = RIS && INTEN; INTCLR (any value)
//!   clears RIS.
//! - Free-running mode wraps from 0 to 0xFFFF / 0xFFFFFFFF; LOAD then only sets the count.
//! - Periodic mode reloads from LOAD (BGLOAD changes the limit without touching the count).
//! - Quirk kept from QEMU: writing LOAD (non-zero) in periodic mode while enabled restarts the
//!   counter as *one-shot* (QEMU calls `ptimer_run(.., 1)` to restart expired one-shot timers),
//!   so a periodic timer stops after the next expiry until CONTROL is written again.
//! - PRESCALE = 0b11 (undefined) divides by 256, logged as a guest error.
//! - Sub-word accesses act on the whole register, zero-extended (QEMU: impl size 4); at an
//!   offset that is not a register they are bad offsets.
//! - In integration test mode (TIMERITCR = 1) the outputs follow TIMERITOP.
//!
//! Deadline: the earliest expiry of a running module with INTEN set and RIS clear.

use super::ptimer::Ptimer;
use super::regs::{self, RegFile, Registers};
use super::{Ctx, Device, FromBoard, IrqOutputs, PeriphError, Size};
use serde::{Deserialize, Serialize};

crate::registers! {
    /// The dual timer's registers: module n's at +0x20 × n.
    pub enum Reg for "cmsdk-apb-dualtimer", Any {
        /// Load: sets limit and count (periodic) or count (free-running).
        #[doc(alias = "TIMER1LOAD", alias = "TIMER2LOAD")]
        Load[2, 0x20] = 0x00, RW;
        /// Current count.
        #[doc(alias = "TIMER1VALUE", alias = "TIMER2VALUE")]
        Value[2, 0x20] = 0x04, RO;
        /// Control: ONESHOT 0, SIZE 1, PRESCALE 3:2, INTEN 5, MODE 6 (periodic), ENABLE 7.
        #[doc(alias = "TIMER1CONTROL", alias = "TIMER2CONTROL")]
        Control[2, 0x20] = 0x08, RW;
        /// Interrupt clear (write any value).
        #[doc(alias = "TIMER1INTCLR", alias = "TIMER2INTCLR")]
        IntClr[2, 0x20] = 0x0c, WO;
        /// Raw interrupt status.
        #[doc(alias = "TIMER1RIS", alias = "TIMER2RIS")]
        Ris[2, 0x20] = 0x10, RO;
        /// Masked interrupt status.
        #[doc(alias = "TIMER1MIS", alias = "TIMER2MIS")]
        Mis[2, 0x20] = 0x14, RO;
        /// Background load: the limit without touching the count.
        #[doc(alias = "TIMER1BGLOAD", alias = "TIMER2BGLOAD")]
        BgLoad[2, 0x20] = 0x18, RW;
        /// Integration test control: 1 = the outputs follow TIMERITOP.
        #[doc(alias = "TIMERITCR")]
        ItCr = 0xf00, RW, reset = 0, mask = 1;
        /// Integration test output set (TIMINT1, TIMINT2).
        #[doc(alias = "TIMERITOP")]
        ItOp = 0xf04, WO, reset = 0, mask = 3;
        /// PID4..PID7, PID0..PID3, CID0..CID3.
        Id[12] = 0xfd0, RO;
    }
}

const ONESHOT: u32 = 1 << 0;
const SIZE32: u32 = 1 << 1;
const PRESCALE_SHIFT: u32 = 2;
const INTEN: u32 = 1 << 5;
const MODE_PERIODIC: u32 = 1 << 6;
const ENABLE: u32 = 1 << 7;
const CONTROL_VALID: u32 = ONESHOT | SIZE32 | (3 << PRESCALE_SHIFT) | INTEN | MODE_PERIODIC | ENABLE;

/// PID4..PID7, PID0..PID3, CID0..CID3 (QEMU's values).
const IDS: [u8; 12] = [0x04, 0, 0, 0, 0x23, 0xb8, 0x1b, 0, 0x0d, 0xf0, 0x05, 0xb1];

fn divisor(control: u32) -> u64 {
    match (control >> PRESCALE_SHIFT) & 3 {
        0 => 1,
        1 => 16,
        _ => 256,
    }
}

/// Low 16 bits from `low`, the rest from `high` (QEMU's `deposit32(high, 0, 16, low)`).
fn deposit16(high: u32, low: u64) -> u32 {
    (high & 0xffff_0000) | (low as u32 & 0xffff)
}

/// One of the two counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Module {
    control: u32,
    intstatus: bool,
    /// LOAD as written (also holds the upper half in 16-bit mode).
    load: u32,
    /// Upper half of VALUE in 16-bit mode.
    value: u32,
    timer: Ptimer,
}

impl Module {
    fn new() -> Self {
        let mut timer = Ptimer::new(1);
        timer.set_limit(0xffff, true);
        Self { control: INTEN, intstatus: false, load: 0, value: 0xffff_ffff, timer }
    }

    fn mis(&self) -> bool {
        self.intstatus && self.control & INTEN != 0
    }

    fn write_control(&mut self, newctrl: u32, now: u64) {
        let newctrl = newctrl & CONTROL_VALID;
        let changed = self.control ^ newctrl;
        if changed & !newctrl & ENABLE != 0 {
            self.timer.stop(now);
        }
        if changed & (3 << PRESCALE_SHIFT) != 0 {
            if (newctrl >> PRESCALE_SHIFT) & 3 == 3 {
                tracing::warn!(target: "guest", "cmsdk-apb-dualtimer: CONTROL.PRESCALE = 0b11 is undefined (treated as /256)");
            }
            self.timer.set_period(divisor(newctrl), now);
        }
        if changed & MODE_PERIODIC != 0 {
            let mut load = if newctrl & MODE_PERIODIC != 0 {
                self.load
            } else {
                let mut l = self.timer.limit() as u32;
                if self.control & SIZE32 == 0 {
                    l = deposit16(self.load, u64::from(l));
                }
                self.load = l;
                0xffff_ffff
            };
            if self.control & SIZE32 == 0 {
                load &= 0xffff;
            }
            self.timer.set_limit(u64::from(load), false);
        }
        if changed & SIZE32 != 0 {
            let mut value = self.timer.count(now) as u32;
            let mut load = self.timer.limit() as u32;
            if newctrl & SIZE32 != 0 {
                value = deposit16(self.value, u64::from(value));
            } else {
                self.value = value;
                value &= 0xffff;
            }
            if newctrl & MODE_PERIODIC != 0 {
                if newctrl & SIZE32 != 0 {
                    load = deposit16(self.load, u64::from(load));
                } else {
                    self.load = load;
                    load &= 0xffff;
                }
            } else {
                load = if newctrl & SIZE32 != 0 { 0xffff_ffff } else { 0xffff };
            }
            self.timer.set_count(u64::from(value));
            self.timer.set_limit(u64::from(load), false);
        }
        if newctrl & ENABLE != 0 {
            // Started even if ENABLE was already set (restarts an expired one-shot timer).
            self.timer.start(newctrl & ONESHOT != 0);
        }
        self.control = newctrl;
        self.timer.commit(now);
    }

    /// LOAD and BGLOAD read the same.
    fn load(&self) -> u32 {
        if self.control & MODE_PERIODIC != 0 {
            let r = self.timer.limit();
            if self.control & SIZE32 == 0 {
                deposit16(self.load, r)
            } else {
                r as u32
            }
        } else {
            self.load
        }
    }

    fn value(&self, now: u64) -> u32 {
        let r = self.timer.count(now);
        if self.control & SIZE32 == 0 {
            deposit16(self.value, r)
        } else {
            r as u32
        }
    }

    fn write_load(&mut self, value: u32, now: u64) {
        self.load = value;
        self.value = value;
        let v = if self.control & SIZE32 == 0 { value & 0xffff } else { value };
        if self.control & MODE_PERIODIC == 0 {
            self.timer.set_count(u64::from(v));
        } else {
            if v == 0 {
                self.timer.stop(now);
            }
            self.timer.set_limit(u64::from(v), true);
            if v != 0 && self.control & ENABLE != 0 {
                self.timer.start(true); // QEMU quirk: see the file header
            }
        }
        self.timer.commit(now);
    }

    fn write_bgload(&mut self, value: u32, now: u64) {
        self.load = value;
        if self.control & MODE_PERIODIC != 0 {
            let v = if self.control & SIZE32 == 0 { value & 0xffff } else { value };
            self.timer.set_limit(u64::from(v), false);
            self.timer.commit(now);
        }
    }
}

/// The CMSDK APB dual timer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmsdkDualTimer {
    irqs: IrqOutputs,
    modules: [Module; 2],
    /// TIMERITCR, TIMERITOP.
    regs: RegFile<Reg>,
}

impl CmsdkDualTimer {
    /// A dual timer in its reset state, outputs (TIMINTC, TIMINT1, TIMINT2) wired as `irqs`.
    pub fn new(irqs: IrqOutputs) -> Self {
        Self { irqs, modules: [Module::new(), Module::new()], regs: RegFile::new() }
    }

    fn update_irq(&mut self, ctx: &mut Ctx<'_>) {
        let (t1, t2) = if self.regs[Reg::ItCr] != 0 {
            let itop = self.regs[Reg::ItOp];
            (itop & 1 != 0, itop & 2 != 0)
        } else {
            (self.modules[0].mis(), self.modules[1].mis())
        };
        self.irqs.update(&[t1 || t2, t1, t2], ctx.irq);
    }
}

impl Registers for CmsdkDualTimer {
    type Reg = Reg;

    fn regs(&mut self) -> &mut RegFile<Reg> {
        &mut self.regs
    }

    fn read_reg(&mut self, reg: Reg, stored: u32, ctx: &mut Ctx<'_>) -> u32 {
        match reg {
            Reg::Load(i) | Reg::BgLoad(i) => self.modules[i].load(),
            Reg::Value(i) => self.modules[i].value(ctx.now),
            Reg::Control(i) => self.modules[i].control,
            Reg::Ris(i) => u32::from(self.modules[i].intstatus),
            Reg::Mis(i) => u32::from(self.modules[i].mis()),
            Reg::Id(i) => u32::from(IDS[i]),
            Reg::ItCr | Reg::ItOp | Reg::IntClr(_) => stored,
        }
    }

    fn write_reg(&mut self, reg: Reg, value: u32, ctx: &mut Ctx<'_>) {
        let now = ctx.now;
        match reg {
            Reg::Load(i) => self.modules[i].write_load(value, now),
            Reg::BgLoad(i) => self.modules[i].write_bgload(value, now),
            Reg::Control(i) => self.modules[i].write_control(value, now),
            Reg::IntClr(i) => self.modules[i].intstatus = false,
            // Stored by the table; read-only ones never get here.
            Reg::ItCr | Reg::ItOp | Reg::Value(_) | Reg::Ris(_) | Reg::Mis(_) | Reg::Id(_) => {}
        }
        self.update_irq(ctx);
    }
}

impl Device for CmsdkDualTimer {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        regs::read(self, offset, size, ctx)
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        regs::write(self, offset, size, value, ctx);
    }

    fn advance(&mut self, ctx: &mut Ctx<'_>) {
        let mut fired = false;
        for m in &mut self.modules {
            if m.timer.advance(ctx.now) > 0 {
                m.intstatus = true;
                fired = true;
            }
        }
        if fired {
            self.update_irq(ctx);
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        self.modules
            .iter()
            .filter(|m| m.control & INTEN != 0 && !m.intstatus)
            .filter_map(|m| m.timer.next_event())
            .min()
    }

    fn reset(&mut self) {
        *self = Self::new(self.irqs.clone());
        self.irqs.reset();
    }
}

impl FromBoard for CmsdkDualTimer {
    const IRQ_OUTPUTS: usize = 3;

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
    fn reset_state_and_periodic_32bit_with_prescale() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut d = CmsdkDualTimer::new(IrqOutputs::new(&[10]));
        let mut ctx = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        assert_eq!(d.read(0x08, Size::Word, &mut ctx), 0x20);
        assert_eq!(d.read(0x04, Size::Word, &mut ctx), 0xffff_ffff);
        assert_eq!(d.read(0xfe0, Size::Word, &mut ctx), 0x23);

        // Timer 2: 32-bit periodic, /16, LOAD 100 -> fires after 1600 cycles.
        d.write(0x28, Size::Word, SIZE32 | MODE_PERIODIC | INTEN | (1 << PRESCALE_SHIFT), &mut ctx);
        d.write(0x20, Size::Word, 100, &mut ctx);
        d.write(0x28, Size::Word, SIZE32 | MODE_PERIODIC | INTEN | (1 << PRESCALE_SHIFT) | ENABLE, &mut ctx);
        assert_eq!(d.next_deadline(), Some(1600));
        ctx.now = 1599;
        d.advance(&mut ctx);
        assert_eq!(d.read(0x30, Size::Word, &mut ctx), 0);
        ctx.now = 1600;
        d.advance(&mut ctx);
        assert_eq!((d.read(0x30, Size::Word, &mut ctx), d.read(0x34, Size::Word, &mut ctx)), (1, 1));
        assert_eq!(ctx.irq.levels(), 1 << 10);
        d.write(0x2c, Size::Word, 0, &mut ctx);
        assert_eq!(ctx.irq.levels(), 0);
        assert_eq!(d.next_deadline(), Some(1600 + 101 * 16));
    }

    #[test]
    fn free_running_16bit_wraps_and_ris_ignores_inten() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut d = CmsdkDualTimer::new(IrqOutputs::new(&[10]));
        let mut ctx = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        d.write(0x08, Size::Word, ENABLE, &mut ctx); // free-running, 16-bit, INTEN off
        ctx.now = 10;
        assert_eq!(d.read(0x04, Size::Word, &mut ctx), 0xffff_0000 | (0xffff - 10 + 1));
        ctx.now = 0xffff;
        d.advance(&mut ctx);
        assert_eq!(d.read(0x10, Size::Word, &mut ctx), 1);
        assert_eq!(d.read(0x14, Size::Word, &mut ctx), 0);
        assert_eq!(ctx.irq.levels(), 0);
        // Sub-word access at a register acts on the register; elsewhere it is a bad offset.
        assert_eq!(d.read(0x08, Size::Byte, &mut ctx), u32::from(ENABLE as u8));
        assert_eq!(d.read(0x09, Size::Byte, &mut ctx), 0);
        d.write(0x0c, Size::Byte, 0, &mut ctx);
        assert_eq!(d.read(0x10, Size::Word, &mut ctx), 0);
    }
}
