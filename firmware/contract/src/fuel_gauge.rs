//! The twinbed fuel gauge (`twinbed-fuel-gauge`): a testbed device showing the board's battery
//! as a coulomb-counting gauge would. The engine models it
//! (`platforms/engine/src/periph/fuel_gauge.rs`, which says where each figure comes from); the
//! BSP reads it (`firmware/bsp/src/fuel_gauge.rs`). QEMU has no such block: every register
//! reads 0 there.
//!
//! All registers are 32-bit, read-only and read as words; offsets are from the gauge's base.

/// The ID register's value: "TBFG" in little-endian bytes.
pub const ID: u32 = 0x4746_4254;

/// Register offsets.
pub mod reg {
    /// ID: [`super::ID`].
    pub const ID: u32 = 0x00;
    /// STATUS: [`super::status`] bits.
    pub const STATUS: u32 = 0x04;
    /// VOLTAGE_MV: cell voltage, mV.
    pub const VOLTAGE_MV: u32 = 0x08;
    /// SOC_PERMILLE: state of charge, 0..=1000 ‰.
    pub const SOC_PERMILLE: u32 = 0x0c;
    /// CURRENT_UA: the board's current now, µA.
    pub const CURRENT_UA: u32 = 0x10;
    /// AVG_CURRENT_UA: average current since the previous read of this register, µA (a read
    /// starts a new window).
    pub const AVG_CURRENT_UA: u32 = 0x14;
    /// CHARGE_USED_UAH: the coulomb counter, µAh (saturating).
    pub const CHARGE_USED_UAH: u32 = 0x18;
    /// CHARGE_USED_NAH_LO: the coulomb counter in nAh, low word; a read latches the high word.
    pub const CHARGE_USED_NAH_LO: u32 = 0x1c;
    /// CHARGE_USED_NAH_HI: the high word latched by the last CHARGE_USED_NAH_LO read.
    pub const CHARGE_USED_NAH_HI: u32 = 0x20;
    /// CAPACITY_UAH: the battery's design capacity, µAh (saturating).
    pub const CAPACITY_UAH: u32 = 0x24;
}

/// STATUS bits.
pub mod status {
    /// The gauge is there and running (reads 0 on QEMU, like every register).
    pub const READY: u32 = 1 << 0;
    /// State of charge below [`LOW_PERMILLE`].
    pub const LOW: u32 = 1 << 1;
    /// No charge left.
    pub const EMPTY: u32 = 1 << 2;
    /// STATUS.LOW is set below this state of charge (‰), the 10 % a BQ27441 flags by default.
    pub const LOW_PERMILLE: u32 = 100;
}
