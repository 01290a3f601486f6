//! MPS2 FPGA system control and I/O block (ARM AN385 §3.9 "FPGA IO"; QEMU 7.2
//! hw/misc/mps2-fpgaio.c with mps2-an385's properties: 2 LEDs, no switches, no DBGCTRL,
//! prescale clock 25 MHz). QEMU is the oracle.
//!
//! Registers: LED0 0x00, BUTTON 0x08, CLK1HZ 0x10, CLK100HZ 0x14, COUNTER 0x18, PRESCALE 0x1C,
//! PSCNTR 0x20, MISC 0x4C. No interrupts.
//!
//! How QEMU behaves, reproduced here with virtual time in cycles (QEMU uses virtual ns; with
//! the 25 MHz core clock one cycle is 40 ns, and the conversions below are exact):
//! - CLK1HZ / CLK100HZ count seconds / hundredths since reset (or since written: a write sets
//!   the current count).
//! - PSCNTR counts down at the prescale clock (25 MHz = one per cycle here); one tick after it
//!   reaches 0 it reloads from PRESCALE and COUNTER increments. With PRESCALE = 0 it stays at 0
//!   and COUNTER increments every tick.
//! - LED0 keeps bits [1:0] (2 LEDs); BUTTON reads 0 (buttons not modelled); MISC reads back as
//!   written (its SPI/CLCD control bits have no effect; logged as unimplemented).
//! - DBGCTRL (0x04) and SWITCH (0x28) do not exist on this image: bad offsets (RAZ/WI, logged).
//!
//! Reset needs the time of reset, which `Device::reset` does not get: the model marks its time
//! base as pending and asks for `advance` at once (`next_deadline` = 0), which stamps `ctx.now`.

use super::regs::{self, RegFile, Registers};
use super::{Ctx, Device, FromBoard, IrqOutputs, PeriphError, Size};
use serde::{Deserialize, Serialize};

crate::registers! {
    /// The block's registers.
    pub enum Reg for "mps2-fpgaio", Any {
        /// User LEDs, one bit each.
        #[doc(alias = "LED0")]
        Led0 = 0x00, RW, reset = 0, mask = (1 << NUM_LEDS) - 1;
        /// User buttons (read 0: not modelled).
        #[doc(alias = "BUTTON")]
        Button = 0x08, RO, reset = 0;
        /// 1 Hz up-counter.
        #[doc(alias = "CLK1HZ")]
        Clk1Hz = 0x10, RW;
        /// 100 Hz up-counter.
        #[doc(alias = "CLK100HZ")]
        Clk100Hz = 0x14, RW;
        /// Increments each time PSCNTR wraps.
        #[doc(alias = "COUNTER")]
        Counter = 0x18, RW;
        /// Reload value of PSCNTR.
        #[doc(alias = "PRESCALE")]
        Prescale = 0x1c, RW;
        /// Prescale down-counter.
        #[doc(alias = "PSCNTR")]
        PsCntr = 0x20, RW;
        /// Miscellaneous control (SPI chip selects, CLCD): reads back.
        #[doc(alias = "MISC")]
        Misc = 0x4c, RW, reset = 0;
    }
}

const NUM_LEDS: u32 = 2;
/// QEMU's `prescale-clk` for mps2-an385.
const PRESCALE_CLK: u64 = 25_000_000;

/// The FPGAIO block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mps2FpgaIo {
    /// LED0, BUTTON, MISC.
    regs: RegFile<Reg>,
    /// PRESCALE (the counters are resynchronised with the old value before it changes).
    prescale: u32,
    /// Cycle at which CLK1HZ would have read 0 (may be "negative" after a write).
    clk1hz_origin: i128,
    /// Cycle at which CLK100HZ would have read 0.
    clk100hz_origin: i128,
    counter: u32,
    pscntr: u32,
    /// Cycle of the last PSCNTR tick accounted for.
    pscntr_sync: u64,
    /// Reset happened and the time base is not yet stamped.
    epoch_pending: bool,
}

impl Default for Mps2FpgaIo {
    fn default() -> Self {
        Self::new()
    }
}

impl Mps2FpgaIo {
    /// The block at power-on (time base at cycle 0).
    pub fn new() -> Self {
        Self {
            regs: RegFile::new(),
            prescale: 0,
            clk1hz_origin: 0,
            clk100hz_origin: 0,
            counter: 0,
            pscntr: 0,
            pscntr_sync: 0,
            epoch_pending: false,
        }
    }

    /// The user LEDs (bit n = LED n lit).
    pub fn leds(&self) -> u32 {
        self.regs[Reg::Led0]
    }

    fn stamp(&mut self, now: u64) {
        if self.epoch_pending {
            self.epoch_pending = false;
            self.clk1hz_origin = i128::from(now);
            self.clk100hz_origin = i128::from(now);
            self.pscntr_sync = now;
        }
    }

    /// Counts of a `hz` clock since `origin` (QEMU: muldiv64 of the elapsed ns, truncated).
    fn clk_count(now: u64, origin: i128, hz: u64, clock_hz: u32) -> u32 {
        let elapsed = i128::from(now) - origin;
        (elapsed * i128::from(hz) / i128::from(clock_hz.max(1))) as u32
    }

    /// Origin such that the `hz` clock reads `count` at `now`.
    fn clk_origin(now: u64, count: u32, hz: u64, clock_hz: u32) -> i128 {
        i128::from(now) - i128::from(count) * i128::from(clock_hz.max(1)) / i128::from(hz)
    }

    /// Brings PSCNTR and COUNTER to `now` (QEMU's `resync_counter`).
    fn resync(&mut self, now: u64, clock_hz: u32) {
        let clock = u128::from(clock_hz.max(1));
        let elapsed = u128::from(now.saturating_sub(self.pscntr_sync));
        let ticks = (elapsed * u128::from(PRESCALE_CLK) / clock) as u64;
        if ticks == 0 {
            return;
        }
        if ticks < u64::from(self.pscntr) {
            self.pscntr -= ticks as u32;
        } else if self.prescale == 0 {
            self.counter = self.counter.wrapping_add((ticks - u64::from(self.pscntr)) as u32);
            self.pscntr = 0;
        } else {
            // PSCNTR reloads from PRESCALE one tick after reaching 0, and COUNTER increments then.
            let period = u64::from(self.prescale) + 1;
            let y = ticks - u64::from(self.pscntr) + u64::from(self.prescale);
            self.pscntr = self.prescale - (y % period) as u32;
            self.counter = self.counter.wrapping_add((y / period) as u32);
        }
        // Only up to the last whole tick, so repeated resyncs lose no time.
        self.pscntr_sync += (u128::from(ticks) * clock / u128::from(PRESCALE_CLK)) as u64;
    }
}

impl Registers for Mps2FpgaIo {
    type Reg = Reg;

    fn regs(&mut self) -> &mut RegFile<Reg> {
        &mut self.regs
    }

    fn read_reg(&mut self, reg: Reg, stored: u32, ctx: &mut Ctx<'_>) -> u32 {
        match reg {
            Reg::Clk1Hz => Self::clk_count(ctx.now, self.clk1hz_origin, 1, ctx.clock_hz),
            Reg::Clk100Hz => Self::clk_count(ctx.now, self.clk100hz_origin, 100, ctx.clock_hz),
            Reg::Counter => {
                self.resync(ctx.now, ctx.clock_hz);
                self.counter
            }
            Reg::Prescale => self.prescale,
            Reg::PsCntr => {
                self.resync(ctx.now, ctx.clock_hz);
                self.pscntr
            }
            Reg::Led0 | Reg::Button | Reg::Misc => stored,
        }
    }

    fn write_reg(&mut self, reg: Reg, value: u32, ctx: &mut Ctx<'_>) {
        match reg {
            Reg::Clk1Hz => self.clk1hz_origin = Self::clk_origin(ctx.now, value, 1, ctx.clock_hz),
            Reg::Clk100Hz => self.clk100hz_origin = Self::clk_origin(ctx.now, value, 100, ctx.clock_hz),
            Reg::Counter => {
                self.resync(ctx.now, ctx.clock_hz);
                self.counter = value;
            }
            Reg::Prescale => {
                self.resync(ctx.now, ctx.clock_hz);
                self.prescale = value;
            }
            Reg::PsCntr => {
                self.resync(ctx.now, ctx.clock_hz);
                self.pscntr = value;
            }
            Reg::Misc => {
                tracing::debug!(target: "unimp", "mps2-fpgaio: MISC control bits (0x{value:x}) have no effect");
            }
            Reg::Led0 | Reg::Button => {}
        }
    }
}

impl Device for Mps2FpgaIo {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        self.stamp(ctx.now);
        regs::read(self, offset, size, ctx)
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        self.stamp(ctx.now);
        regs::write(self, offset, size, value, ctx);
    }

    fn advance(&mut self, ctx: &mut Ctx<'_>) {
        self.stamp(ctx.now);
    }

    fn next_deadline(&self) -> Option<u64> {
        self.epoch_pending.then_some(0)
    }

    fn reset(&mut self) {
        *self = Self { epoch_pending: true, ..Self::new() };
    }
}

impl FromBoard for Mps2FpgaIo {
    const IRQ_OUTPUTS: usize = 0;

    fn from_board(
        _: &twinbed_board::Peripheral,
        _: u8,
        _: IrqOutputs,
        _: &twinbed_board::Board,
    ) -> Result<Self, PeriphError> {
        Ok(Self::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periph::{IrqLines, Output};

    #[test]
    fn clocks_and_prescaled_counter_follow_virtual_time() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut f = Mps2FpgaIo::new();
        let mut ctx = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        ctx.now = 62_500_000; // 2.5 s
        assert_eq!(f.read(0x10, Size::Word, &mut ctx), 2);
        assert_eq!(f.read(0x14, Size::Word, &mut ctx), 250);
        f.write(0x10, Size::Word, 100, &mut ctx);
        ctx.now += 25_000_000;
        assert_eq!(f.read(0x10, Size::Word, &mut ctx), 101);

        // PRESCALE 5, PSCNTR 7 (QEMU's worked example): COUNTER +1 after 8 ticks, +2 after 14.
        f.write(0x1c, Size::Word, 5, &mut ctx);
        f.write(0x20, Size::Word, 7, &mut ctx);
        f.write(0x18, Size::Word, 0, &mut ctx);
        let t0 = ctx.now;
        ctx.now = t0 + 7;
        assert_eq!((f.read(0x20, Size::Word, &mut ctx), f.read(0x18, Size::Word, &mut ctx)), (0, 0));
        ctx.now = t0 + 8;
        assert_eq!((f.read(0x20, Size::Word, &mut ctx), f.read(0x18, Size::Word, &mut ctx)), (5, 1));
        ctx.now = t0 + 14;
        assert_eq!((f.read(0x20, Size::Word, &mut ctx), f.read(0x18, Size::Word, &mut ctx)), (5, 2));

        f.write(0x00, Size::Word, 0xff, &mut ctx);
        assert_eq!(f.read(0x00, Size::Word, &mut ctx), 3);
        assert_eq!(f.read(0x28, Size::Word, &mut ctx), 0, "no SWITCH on AN385");
    }

    #[test]
    fn reset_restarts_the_clocks_at_the_reset_time() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut f = Mps2FpgaIo::new();
        let mut ctx = Ctx { now: 100_000_000, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        f.reset();
        assert_eq!(f.next_deadline(), Some(0));
        f.advance(&mut ctx);
        assert_eq!(f.next_deadline(), None);
        ctx.now += 25_000_000;
        assert_eq!(f.read(0x10, Size::Word, &mut ctx), 1);
    }
}
