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

use super::{bad_read, bad_write, truncate, Ctx, Device, Size};
use serde::{Deserialize, Serialize};

/// Register offsets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Reg {
    /// CFG_REG0: remap control.
    Cfg0 = 0x000,
    /// CFG_REG1: LEDs.
    Cfg1 = 0x004,
    /// CFG_REG3: DIP switches (read 0).
    Cfg3 = 0x00c,
    /// CFG_REG4: board revision.
    Cfg4 = 0x010,
    /// SYS_CFGDATA_RTN: data read by a configuration transfer.
    CfgDataRtn = 0x0a0,
    /// SYS_CFGDATA_OUT: data for a configuration write.
    CfgDataOut = 0x0a4,
    /// SYS_CFGCTRL: START, WRITE, FUNCTION, DEVICE of a configuration transfer.
    CfgCtrl = 0x0a8,
    /// SYS_CFGSTAT: DONE, ERROR.
    CfgStat = 0x0ac,
    /// DLL lock status and mask.
    Dll = 0x100,
    /// Application note IP variant and revision.
    Aid = 0xff8,
    /// SCC ID.
    Id = 0xffc,
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
    cfg0: u32,
    cfg1: u32,
    cfg4: u32,
    cfgdata_rtn: u32,
    cfgdata_out: u32,
    cfgctrl: u32,
    cfgstat: u32,
    dll: u32,
    aid: u32,
    id: u32,
    oscclk: [u32; 3],
}

impl Mps2Scc {
    /// The SCC of the AN385 image, in its reset state.
    pub fn an385() -> Self {
        Self {
            cfg0: 0,
            cfg1: 0,
            cfg4: 0x2,
            cfgdata_rtn: 0,
            cfgdata_out: 0,
            cfgctrl: 0x0010_0000,
            cfgstat: 0,
            dll: 0xffff_0001,
            aid: 0x0020_0008,
            id: 0x4104_3850,
            oscclk: OSCCLK_RESET,
        }
    }

    /// The user LEDs driven by CFG_REG1.
    pub fn leds(&self) -> u32 {
        self.cfg1
    }

    fn cfg_transfer(&mut self) {
        let device = (self.cfgctrl & 0xfff) as usize;
        let function = (self.cfgctrl >> 20) & 0x3f;
        self.cfgstat = CFGSTAT_DONE;
        let slot = if function == 1 { self.oscclk.get_mut(device) } else { None };
        match slot {
            Some(clk) if self.cfgctrl & CFGCTRL_WRITE != 0 => *clk = self.cfgdata_out,
            Some(clk) => self.cfgdata_rtn = *clk,
            None => {
                tracing::warn!(target: "guest", "mps2-scc: config transfer to bad function {function} device {device}");
                self.cfgstat |= CFGSTAT_ERROR;
            }
        }
    }
}

impl Device for Mps2Scc {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        let _ = ctx;
        let v = match offset {
            0x000 => self.cfg0,
            0x004 => self.cfg1,
            0x00c => 0,
            0x010 => self.cfg4,
            0x0a0 => self.cfgdata_rtn,
            0x0a4 => self.cfgdata_out,
            0x0a8 => self.cfgctrl,
            0x0ac => self.cfgstat,
            0x100 => self.dll,
            0xff8 => self.aid,
            0xffc => self.id,
            _ => {
                bad_read("mps2-scc", offset, size);
                0
            }
        };
        truncate(v, size)
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        let _ = ctx;
        match offset {
            0x000 => self.cfg0 = value,
            0x004 => self.cfg1 = value,
            0x0a4 => self.cfgdata_out = value,
            0x0a8 => {
                self.cfgstat = 0;
                self.cfgctrl = value & !(CFGCTRL_RES1 | CFGCTRL_RES2 | CFGCTRL_START);
                if value & CFGCTRL_START != 0 {
                    self.cfg_transfer();
                }
            }
            0x100 => self.dll = (self.dll & 0x00ff_ffff) | (value & 0xff00_0000),
            _ => bad_write("mps2-scc", offset, size, value),
        }
    }

    fn reset(&mut self) {
        *self = Self::an385();
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
