//! twinbed's fuel gauge (`twinbed-fuel-gauge`, at [`map::FUEL_GAUGE`]): the battery's voltage
//! and state of charge. A testbed device: [`FuelGauge::take`] returns `None` on QEMU, where its
//! ID reads 0. Register map: [`twinbed_contract::fuel_gauge`].

use crate::map;
use core::ptr::read_volatile;

use twinbed_contract::fuel_gauge::reg as r;
/// The ID register's value when the gauge is there ("TBFG").
pub use twinbed_contract::fuel_gauge::ID;

/// The gauge.
pub struct FuelGauge(());

impl FuelGauge {
    /// The gauge, if the board has one (twinbed's engine with a `[battery]` in its board file).
    pub fn take() -> Option<FuelGauge> {
        (reg(r::ID) == ID).then_some(FuelGauge(()))
    }

    /// Battery voltage, mV.
    pub fn voltage_mv(&self) -> u32 {
        reg(r::VOLTAGE_MV)
    }

    /// State of charge, ‰.
    pub fn soc_permille(&self) -> u32 {
        reg(r::SOC_PERMILLE)
    }
}

fn reg(offset: u32) -> u32 {
    // SAFETY: a register of the gauge (or a RAZ/WI hole on QEMU); reading these has no side
    // effects (AVG_CURRENT, which restarts its window when read, is not read here).
    unsafe { read_volatile((map::FUEL_GAUGE + offset as usize) as *const u32) }
}
