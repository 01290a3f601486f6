//! MPS2 serial configuration controller, SCC (ARM MPS2 TRM 100112 and AN385 §3.10), as QEMU
//! 7.2 models it for mps2-an385 (hw/misc/mps2-scc.c with `scc-cfg4` = 0x2, `scc-aid` =
//! 0x0020_0008, `scc-id` = 0x4104_3850, OSCCLK = 50 MHz, 24.576 MHz, 25 MHz). QEMU is the oracle.
//!
//! Registers: CFG_REG0 0x000 (bit 0 = remap; read/write), CFG_REG1 0x004 (LEDs; read/write),
//! CFG_REG3 0x00C (DIP switches: reads 0), CFG_REG4 0x010 (board revision, reads 0x2),
//! SYS_CFGDATA_RTN 0x0A0, SYS_CFGDATA_OUT 0x0A4, SYS_CFGCTRL 0x0A8, SYS_CFGSTAT 0x0AC,
//! DLL 0x100, AID 0xFF8, ID 0xFFC.
//!
//! How QEMU behaves, reproduced here:
//! - SYS_CFGCTRL: writing clears SYS_CFGSTAT and stores the value without bits 31 (START),
//!   29:26 and 19:12. With START set the transfer completes at once: function 1 (OSCCLK) and
//!   device 0..2 read OSCCLK[device] into SYS_CFGDATA_RTN or write SYS_CFGDATA_OUT into it;
//!   anything else sets SYS_CFGSTAT.ERROR. SYS_CFGSTAT.DONE is set either way. Reset value
//!   0x0010_0000.
//! - DLL resets to 0xFFFF_0001 (all DLLs locked); only bits 31:24 (the lock mask) are writable.
//! - CFG_REG2/5/6/7 do not exist on AN385: bad offsets. CFG_REG3 and CFG_REG4 ignore writes
//!   (logged as guest errors).
//!
//! Not modelled (QEMU neither, on this board): CFG_REG0's remap of the block RAM (QEMU does not
//! wire the remap output on mps2-an385), the LEDs of CFG_REG1 beyond reading back.

use super::regs::{self, RegFile, Registers};
use super::{Ctx, Device, FromBoard, IrqOutputs, PeriphError, Size};
use serde::{Deserialize, Serialize};

crate::registers! {
    /// The SCC's registers, with the AN385 image's reset values.
    pub enum Reg for "mps2-scc", Any {
        /// CFG_REG0: remap control.
        #[doc(alias = "CFG_REG0")]
        Cfg0 = 0x000, RW, reset = 0;
        /// CFG_REG1: LEDs.
        #[doc(alias = "CFG_REG1")]
        Cfg1 = 0x004, RW, reset = 0;
        /// CFG_REG3: DIP switches (read 0).
        #[doc(alias = "CFG_REG3")]
        Cfg3 = 0x00c, RO, reset = 0;
        /// CFG_REG4: board revision.
        #[doc(alias = "CFG_REG4")]
        Cfg4 = 0x010, RO, reset = 0x2;
        /// SYS_CFGDATA_RTN: data read by a configuration transfer.
        #[doc(alias = "SYS_CFGDATA_RTN")]
        CfgDataRtn = 0x0a0, RO, reset = 0;
        /// SYS_CFGDATA_OUT: data for a configuration write.
        #[doc(alias = "SYS_CFGDATA_OUT")]
        CfgDataOut = 0x0a4, RW, reset = 0;
        /// SYS_CFGCTRL: START, WRITE, FUNCTION, DEVICE of a configuration transfer (START and
        /// the reserved bits are not stored).
        #[doc(alias = "SYS_CFGCTRL")]
        CfgCtrl = 0x0a8, RW, reset = 0x0010_0000, mask = !(CFGCTRL_RES1 | CFGCTRL_RES2 | CFGCTRL_START);
        /// SYS_CFGSTAT: DONE, ERROR.
        #[doc(alias = "SYS_CFGSTAT")]
        CfgStat = 0x0ac, RO, reset = 0;
        /// DLL lock status (all locked) and the writable lock mask (bits 31:24).
        #[doc(alias = "DLL")]
        Dll = 0x100, RW, reset = 0xffff_0001, mask = 0xff00_0000;
        /// Application note IP variant and revision.
        #[doc(alias = "AID")]
        Aid = 0xff8, RO, reset = 0x0020_0008;
        /// SCC ID.
        #[doc(alias = "ID")]
        Id = 0xffc, RO, reset = 0x4104_3850;
    }
}

const CFGCTRL_START: u32 = 1 << 31;
const CFGCTRL_WRITE: u32 = 1 << 30;
const CFGCTRL_RES1: u32 = 0xff << 12;
const CFGCTRL_RES2: u32 = 0xf << 26;
const CFGSTAT_DONE: u32 = 1 << 0;
const CFGSTAT_ERROR: u32 = 1 << 1;
/// OSCCLK reset values on the MPS2 FPGA images QEMU models.
const OSCCLK_RESET: [u32; 3] = [50_000_000, 24_576_000, 25_000_000];

/// The SCC.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mps2Scc {
    regs: RegFile<Reg>,
    oscclk: [u32; 3],
}

impl Mps2Scc {
    /// The SCC of the AN385 image, in its reset state.
    pub fn an385() -> Self {
        Self { regs: RegFile::new(), oscclk: OSCCLK_RESET }
    }

    /// The user LEDs driven by CFG_REG1.
    pub fn leds(&self) -> u32 {
        self.regs[Reg::Cfg1]
    }

    fn cfg_transfer(&mut self) {
        let cfgctrl = self.regs[Reg::CfgCtrl];
        let device = (cfgctrl & 0xfff) as usize;
        let function = (cfgctrl >> 20) & 0x3f;
        self.regs[Reg::CfgStat] = CFGSTAT_DONE;
        let slot = if function == 1 { self.oscclk.get_mut(device) } else { None };
        match slot {
            Some(clk) if cfgctrl & CFGCTRL_WRITE != 0 => *clk = self.regs[Reg::CfgDataOut],
            Some(clk) => self.regs[Reg::CfgDataRtn] = *clk,
            None => {
                tracing::warn!(target: "guest", "mps2-scc: config transfer to bad function {function} device {device}");
                self.regs[Reg::CfgStat] |= CFGSTAT_ERROR;
            }
        }
    }
}

impl Registers for Mps2Scc {
    type Reg = Reg;

    fn regs(&mut self) -> &mut RegFile<Reg> {
        &mut self.regs
    }

    fn write_reg(&mut self, reg: Reg, value: u32, _: &mut Ctx<'_>) {
        if reg == Reg::CfgCtrl {
            // A write clears SYS_CFGSTAT; with START the transfer completes at once.
            self.regs[Reg::CfgStat] = 0;
            if value & CFGCTRL_START != 0 {
                self.cfg_transfer();
            }
        }
    }
}

impl Device for Mps2Scc {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        regs::read(self, offset, size, ctx)
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        regs::write(self, offset, size, value, ctx);
    }

    fn reset(&mut self) {
        *self = Self::an385();
    }
}

impl FromBoard for Mps2Scc {
    const IRQ_OUTPUTS: usize = 0;

    fn from_board(
        _: &twinbed_board::Peripheral,
        _: u8,
        _: IrqOutputs,
        _: &twinbed_board::Board,
    ) -> Result<Self, PeriphError> {
        Ok(Self::an385())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periph::{IrqLines, Output};

    #[test]
    fn an385_ids_and_oscclk_transfers() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut ctx = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        let mut s = Mps2Scc::an385();
        assert_eq!(s.read(0xffc, Size::Word, &mut ctx), 0x4104_3850);
        assert_eq!(s.read(0xff8, Size::Word, &mut ctx), 0x0020_0008);
        assert_eq!(s.read(0x010, Size::Word, &mut ctx), 2);
        assert_eq!(s.read(0x100, Size::Word, &mut ctx), 0xffff_0001);
        assert_eq!(s.read(0x0a8, Size::Word, &mut ctx), 0x0010_0000);
        // Read OSCCLK2 (function 1, device 2).
        s.write(0x0a8, Size::Word, CFGCTRL_START | (1 << 20) | 2, &mut ctx);
        assert_eq!(s.read(0x0ac, Size::Word, &mut ctx), CFGSTAT_DONE);
        assert_eq!(s.read(0x0a0, Size::Word, &mut ctx), 25_000_000);
        assert_eq!(s.read(0x0a8, Size::Word, &mut ctx), (1 << 20) | 2);
        // Bad device.
        s.write(0x0a8, Size::Word, CFGCTRL_START | CFGCTRL_WRITE | (1 << 20) | 3, &mut ctx);
        assert_eq!(s.read(0x0ac, Size::Word, &mut ctx), CFGSTAT_DONE | CFGSTAT_ERROR);
        s.write(0x100, Size::Word, 0, &mut ctx);
        assert_eq!(s.read(0x100, Size::Word, &mut ctx), 0x00ff_0001);
        s.write(0x010, Size::Word, 7, &mut ctx);
        assert_eq!(s.read(0x010, Size::Word, &mut ctx), 2);
        assert_eq!(s.read(0x008, Size::Word, &mut ctx), 0, "no CFG_REG2 on AN385");
    }
}
