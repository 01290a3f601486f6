//! CMSDK AHB GPIO (ARM Cortex-M System Design Kit TRM, DDI0479C §4.2): a 16-bit port.
//!
//! QEMU 7.2 has **no** model of this block: on mps2-an385 it maps the four ports as
//! unimplemented-device "cmsdk-ahb-gpio" (read 0, writes ignored), and the mps2-an385 board file
//! does the same (model `unimplemented`) so that the engine matches the oracle. This model
//! follows the TRM instead, for boards that want working GPIO; there is no QEMU to compare with.
//!
//! Registers: DATA 0x000 (read: pin levels; write: DATAOUT), DATAOUT 0x004, OUTENSET/CLR
//! 0x010/0x014, ALTFUNCSET/CLR 0x018/0x01C, INTENSET/CLR 0x020/0x024, INTTYPESET/CLR
//! 0x028/0x02C (1 = edge), INTPOLSET/CLR 0x030/0x034 (1 = high level / rising edge),
//! INTSTATUS/INTCLEAR 0x038, MASKLOWBYTE 0x400..0x7FC and MASKHIGHBYTE 0x800..0xBFC (address bits
//! [9:2] are the mask of the low / high byte), PID/CID 0xFD0..0xFFC (PID0 = 0x20).
//! Interrupt outputs: COMBINT, then GPIOINT[0..15].
//!
//! Reading of the TRM used here: a pin reads the output register where OUTEN is set, else the
//! external input ([`CmsdkGpio::set_inputs`]); level interrupts stay pending while the level
//! lasts (INTCLEAR only clears them if the level has gone); edge interrupts latch on the edge
//! and clear on INTCLEAR. The two-cycle input synchroniser is not modelled (inputs act at once).
//! ALTFUNC only reads back (no alternate functions on the pads).

use super::{bad_read, bad_write, cmsdk_id, truncate, Ctx, Device, IrqOutputs, Size};
use serde::{Deserialize, Serialize};

/// Register offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Reg {
    /// Pin levels (read) / output data (write).
    Data = 0x000,
    /// Output data register.
    DataOut = 0x004,
    /// Output enable set.
    OutEnSet = 0x010,
    /// Output enable clear.
    OutEnClr = 0x014,
    /// Alternate function set.
    AltFuncSet = 0x018,
    /// Alternate function clear.
    AltFuncClr = 0x01c,
    /// Interrupt enable set.
    IntEnSet = 0x020,
    /// Interrupt enable clear.
    IntEnClr = 0x024,
    /// Interrupt type set (edge).
    IntTypeSet = 0x028,
    /// Interrupt type clear (level).
    IntTypeClr = 0x02c,
    /// Interrupt polarity set (high / rising).
    IntPolSet = 0x030,
    /// Interrupt polarity clear (low / falling).
    IntPolClr = 0x034,
    /// Interrupt status (read) / INTCLEAR (write 1 to clear).
    #[doc(alias = "INTCLEAR")]
    IntStatus = 0x038,
}

/// PID4..PID7, PID0..PID3, CID0..CID3.
const IDS: [u8; 12] = [0x04, 0, 0, 0, 0x20, 0xb8, 0x1b, 0, 0x0d, 0xf0, 0x05, 0xb1];

/// One 16-bit CMSDK AHB GPIO port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmsdkGpio {
    irqs: IrqOutputs,
    dataout: u16,
    outen: u16,
    altfunc: u16,
    inten: u16,
    inttype: u16,
    intpol: u16,
    intstatus: u16,
    /// External input levels.
    inputs: u16,
    /// Pin levels at the last evaluation (for edge detection).
    last_pins: u16,
}

impl CmsdkGpio {
    /// A port in its reset state, outputs (COMBINT, GPIOINT0..15) wired as `irqs`.
    pub fn new(irqs: IrqOutputs) -> Self {
        Self {
            irqs,
            dataout: 0,
            outen: 0,
            altfunc: 0,
            inten: 0,
            inttype: 0,
            intpol: 0,
            intstatus: 0,
            inputs: 0,
            last_pins: 0,
        }
    }

    /// Pin levels as the port sees them.
    pub fn pins(&self) -> u16 {
        (self.dataout & self.outen) | (self.inputs & !self.outen)
    }

    /// The output register and output enables (what a board model drives off-chip).
    pub fn outputs(&self) -> (u16, u16) {
        (self.dataout, self.outen)
    }

    /// Sets the external input levels (a button, a sensor's ALERT line).
    pub fn set_inputs(&mut self, levels: u16, ctx: &mut Ctx<'_>) {
        self.inputs = levels;
        self.evaluate(ctx);
    }

    /// Latches edges and levels into INTSTATUS and drives the outputs.
    fn evaluate(&mut self, ctx: &mut Ctx<'_>) {
        let pins = self.pins();
        let rising = pins & !self.last_pins;
        let falling = !pins & self.last_pins;
        let edge = (rising & self.intpol) | (falling & !self.intpol);
        let level = (pins & self.intpol) | (!pins & !self.intpol);
        self.intstatus |= self.inten & ((self.inttype & edge) | (!self.inttype & level));
        self.last_pins = pins;
        let s = self.intstatus;
        let mut levels = [false; 17];
        levels[0] = s != 0;
        for (i, l) in levels[1..].iter_mut().enumerate() {
            *l = s & (1 << i) != 0;
        }
        self.irqs.update(&levels, ctx.irq);
    }
}

impl Device for CmsdkGpio {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        let _ = ctx;
        let v = match offset {
            0x000 => u32::from(self.pins()),
            0x004 => u32::from(self.dataout),
            0x010 | 0x014 => u32::from(self.outen),
            0x018 | 0x01c => u32::from(self.altfunc),
            0x020 | 0x024 => u32::from(self.inten),
            0x028 | 0x02c => u32::from(self.inttype),
            0x030 | 0x034 => u32::from(self.intpol),
            0x038 => u32::from(self.intstatus),
            0x400..=0x7ff => u32::from(self.pins()) & ((offset >> 2) & 0xff),
            0x800..=0xbff => u32::from(self.pins()) & (((offset >> 2) & 0xff) << 8),
            _ => cmsdk_id(offset, &IDS).unwrap_or_else(|| {
                bad_read("cmsdk-ahb-gpio", offset, size);
                0
            }),
        };
        truncate(v, size)
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        let v = value as u16;
        match offset {
            0x000 | 0x004 => self.dataout = v,
            0x010 => self.outen |= v,
            0x014 => self.outen &= !v,
            0x018 => self.altfunc |= v,
            0x01c => self.altfunc &= !v,
            0x020 => self.inten |= v,
            0x024 => self.inten &= !v,
            0x028 => self.inttype |= v,
            0x02c => self.inttype &= !v,
            0x030 => self.intpol |= v,
            0x034 => self.intpol &= !v,
            0x038 => self.intstatus &= !v,
            0x400..=0x7ff => {
                let mask = ((offset >> 2) & 0xff) as u16;
                self.dataout = (self.dataout & !mask) | (v & mask);
            }
            0x800..=0xbff => {
                let mask = (((offset >> 2) & 0xff) << 8) as u16;
                self.dataout = (self.dataout & !mask) | (v & mask);
            }
            _ => {
                bad_write("cmsdk-ahb-gpio", offset, size, value);
                return;
            }
        }
        self.evaluate(ctx);
    }

    fn reset(&mut self) {
        let inputs = self.inputs;
        *self = Self::new(self.irqs.clone());
        self.irqs.reset();
        self.inputs = inputs;
        self.last_pins = inputs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periph::{IrqLines, Output};

    #[test]
    fn outputs_masked_writes_and_edge_interrupt() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut g = CmsdkGpio::new(IrqOutputs::new(&[6]));
        let mut ctx = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        g.write(0x010, Size::Word, 0x00ff, &mut ctx);
        g.write(0x000, Size::Word, 0xffff, &mut ctx);
        assert_eq!(g.read(0x000, Size::Word, &mut ctx), 0x00ff, "inputs low on 8..15");
        g.write(0x400 + (0x0f << 2), Size::Word, 0, &mut ctx); // clear bits 0..3 only
        assert_eq!(g.read(0x004, Size::Word, &mut ctx), 0xfff0);
        assert_eq!(g.read(0x800 + (0xff << 2), Size::Word, &mut ctx), 0);

        // Pin 8: rising-edge interrupt.
        g.write(0x028, Size::Word, 1 << 8, &mut ctx);
        g.write(0x030, Size::Word, 1 << 8, &mut ctx);
        g.write(0x020, Size::Word, 1 << 8, &mut ctx);
        assert_eq!(ctx.irq.levels(), 0);
        g.set_inputs(1 << 8, &mut ctx);
        assert_eq!(g.read(0x038, Size::Word, &mut ctx), 1 << 8);
        assert_eq!(ctx.irq.levels(), 1 << 6);
        g.write(0x038, Size::Word, 1 << 8, &mut ctx);
        assert_eq!(ctx.irq.levels(), 0, "edge interrupts clear while the level stays");
        assert_eq!(g.read(0xfe0, Size::Word, &mut ctx), 0x20);
    }
}
