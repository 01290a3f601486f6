//! twinbed's fuel gauge (`twinbed-fuel-gauge`, at [`map::FUEL_GAUGE`]): the battery's voltage
//! and state of charge. A testbed device: [`FuelGauge::take`] returns `None` on QEMU, where its
//! ID reads 0. Register map: `platforms/engine/src/periph/fuel_gauge.rs` in the twinbed
//! repository.

use crate::map;
use core::ptr::read_volatile;

/// The ID register's value when the gauge is there ("TBFG").
pub const ID: u32 = 0x4746_4254;

const REG_ID: usize = 0x00;
const REG_VOLTAGE_MV: usize = 0x08;
const REG_SOC_PERMILLE: usize = 0x0c;

/// The gauge.
pub struct FuelGauge(());

impl FuelGauge {
    /// The gauge, if the board has one (twinbed's engine with a `[battery]` in its board file).
    pub fn take() -> Option<FuelGauge> {
        (reg(REG_ID) == ID).then_some(FuelGauge(()))
    }

    /// Battery voltage, mV.
    pub fn voltage_mv(&self) -> u32 {
        reg(REG_VOLTAGE_MV)
    }

    /// State of charge, ‰.
    pub fn soc_permille(&self) -> u32 {
        reg(REG_SOC_PERMILLE)
    }
}

fn reg(offset: usize) -> u32 {
    // SAFETY: a register of the gauge (or a RAZ/WI hole on QEMU); reading these has no side
    // effects (AVG_CURRENT, which restarts its window when read, is not read here).
    unsafe { read_volatile((map::FUEL_GAUGE + offset) as *const u32) }
}
