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

use super::regs::{self, RegFile, Registers};
use super::{Ctx, Device, FromBoard, IrqOutputs, PeriphError, Size};
use serde::{Deserialize, Serialize};

crate::registers! {
    /// The port's registers. Each SET/CLR pair reads and writes one value (stored under SET).
    pub enum Reg for "cmsdk-ahb-gpio", Any {
        /// Pin levels (read) / output data (write: DATAOUT).
        #[doc(alias = "DATA")]
        Data = 0x000, RW, of = DataOut, mask = 0xffff;
        /// Output data register.
        #[doc(alias = "DATAOUT")]
        DataOut = 0x004, RW, reset = 0, mask = 0xffff;
        /// Output enable set.
        #[doc(alias = "OUTENSET")]
        OutEnSet = 0x010, W1S, reset = 0, mask = 0xffff;
        /// Output enable clear.
        #[doc(alias = "OUTENCLR")]
        OutEnClr = 0x014, W1C, of = OutEnSet, mask = 0xffff;
        /// Alternate function set.
        #[doc(alias = "ALTFUNCSET")]
        AltFuncSet = 0x018, W1S, reset = 0, mask = 0xffff;
        /// Alternate function clear.
        #[doc(alias = "ALTFUNCCLR")]
        AltFuncClr = 0x01c, W1C, of = AltFuncSet, mask = 0xffff;
        /// Interrupt enable set.
        #[doc(alias = "INTENSET")]
        IntEnSet = 0x020, W1S, reset = 0, mask = 0xffff;
        /// Interrupt enable clear.
        #[doc(alias = "INTENCLR")]
        IntEnClr = 0x024, W1C, of = IntEnSet, mask = 0xffff;
        /// Interrupt type set (edge).
        #[doc(alias = "INTTYPESET")]
        IntTypeSet = 0x028, W1S, reset = 0, mask = 0xffff;
        /// Interrupt type clear (level).
        #[doc(alias = "INTTYPECLR")]
        IntTypeClr = 0x02c, W1C, of = IntTypeSet, mask = 0xffff;
        /// Interrupt polarity set (high / rising).
        #[doc(alias = "INTPOLSET")]
        IntPolSet = 0x030, W1S, reset = 0, mask = 0xffff;
        /// Interrupt polarity clear (low / falling).
        #[doc(alias = "INTPOLCLR")]
        IntPolClr = 0x034, W1C, of = IntPolSet, mask = 0xffff;
        /// Interrupt status (read) / INTCLEAR (write 1 to clear).
        #[doc(alias = "INTSTATUS", alias = "INTCLEAR")]
        IntStatus = 0x038, W1C, reset = 0, mask = 0xffff;
        /// Masked access to the low byte: address bits 9:2 are the mask. Every byte of the
        /// window decodes (bits 1:0 are not looked at).
        #[doc(alias = "MASKLOWBYTE")]
        MaskLowByte[0x400, 1] = 0x400, RW;
        /// Masked access to the high byte: address bits 9:2 are the mask (of bits 15:8).
        #[doc(alias = "MASKHIGHBYTE")]
        MaskHighByte[0x400, 1] = 0x800, RW;
        /// PID4..PID7, PID0..PID3, CID0..CID3.
        Id[12] = 0xfd0, RO;
    }
}

/// PID4..PID7, PID0..PID3, CID0..CID3.
const IDS: [u8; 12] = [0x04, 0, 0, 0, 0x20, 0xb8, 0x1b, 0, 0x0d, 0xf0, 0x05, 0xb1];

/// One 16-bit CMSDK AHB GPIO port.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmsdkGpio {
    irqs: IrqOutputs,
    /// DATAOUT, OUTEN, ALTFUNC, INTEN, INTTYPE, INTPOL, INTSTATUS (16 bits each).
    regs: RegFile<Reg>,
    /// External input levels.
    inputs: u16,
    /// Pin levels at the last evaluation (for edge detection).
    last_pins: u16,
}

impl CmsdkGpio {
    /// A port in its reset state, outputs (COMBINT, GPIOINT0..15) wired as `irqs`.
    pub fn new(irqs: IrqOutputs) -> Self {
        Self { irqs, regs: RegFile::new(), inputs: 0, last_pins: 0 }
    }

    /// Pin levels as the port sees them.
    pub fn pins(&self) -> u16 {
        let (dataout, outen) = self.outputs();
        (dataout & outen) | (self.inputs & !outen)
    }

    /// The output register and output enables (what a board model drives off-chip).
    pub fn outputs(&self) -> (u16, u16) {
        (self.reg16(Reg::DataOut), self.reg16(Reg::OutEnSet))
    }

    fn reg16(&self, reg: Reg) -> u16 {
        self.regs[reg] as u16
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
        let (intpol, inttype, inten) =
            (self.reg16(Reg::IntPolSet), self.reg16(Reg::IntTypeSet), self.reg16(Reg::IntEnSet));
        let edge = (rising & intpol) | (falling & !intpol);
        let level = (pins & intpol) | (!pins & !intpol);
        self.regs[Reg::IntStatus] |= u32::from(inten & ((inttype & edge) | (!inttype & level)));
        self.last_pins = pins;
        let s = self.reg16(Reg::IntStatus);
        let mut levels = [false; 17];
        levels[0] = s != 0;
        for (i, l) in levels[1..].iter_mut().enumerate() {
            *l = s & (1 << i) != 0;
        }
        self.irqs.update(&levels, ctx.irq);
    }
}

impl Registers for CmsdkGpio {
    type Reg = Reg;

    fn regs(&mut self) -> &mut RegFile<Reg> {
        &mut self.regs
    }

    fn read_reg(&mut self, reg: Reg, stored: u32, _: &mut Ctx<'_>) -> u32 {
        match reg {
            Reg::Data => u32::from(self.pins()),
            Reg::MaskLowByte(i) => u32::from(self.pins()) & ((i as u32 >> 2) & 0xff),
            Reg::MaskHighByte(i) => u32::from(self.pins()) & (((i as u32 >> 2) & 0xff) << 8),
            Reg::Id(i) => u32::from(IDS[i]),
            _ => stored,
        }
    }

    fn write_reg(&mut self, reg: Reg, value: u32, ctx: &mut Ctx<'_>) {
        // Masked writes change only the DATAOUT bits the address selects.
        let mask = match reg {
            Reg::MaskLowByte(i) => Some(((i >> 2) & 0xff) as u16),
            Reg::MaskHighByte(i) => Some((((i >> 2) & 0xff) << 8) as u16),
            _ => None,
        };
        if let Some(mask) = mask {
            let dataout = self.reg16(Reg::DataOut);
            self.regs[Reg::DataOut] = u32::from((dataout & !mask) | (value as u16 & mask));
        }
        self.evaluate(ctx);
    }
}

impl Device for CmsdkGpio {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        regs::read(self, offset, size, ctx)
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        regs::write(self, offset, size, value, ctx);
    }

    fn reset(&mut self) {
        let inputs = self.inputs;
        *self = Self::new(self.irqs.clone());
        self.irqs.reset();
        self.inputs = inputs;
        self.last_pins = inputs;
    }
}

impl FromBoard for CmsdkGpio {
    const IRQ_OUTPUTS: usize = 17;

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
