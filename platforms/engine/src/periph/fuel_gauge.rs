//! twinbed fuel gauge (`twinbed-fuel-gauge`): the board's battery as firmware sees it through a
//! coulomb-counting gauge: voltage, state of charge, current and charge used.
//!
//! A testbed device of our own (there is no such block on the real AN385, and QEMU has none),
//! in the spirit of I2C gauges such as TI's BQ27441 (voltage, state of charge, average current,
//! coulomb counter) but memory-mapped, so that firmware reads it with plain loads. It sits in
//! address space QEMU leaves unimplemented: on QEMU every register reads 0, so firmware tells
//! the gauge is missing from ID (or STATUS.READY) and carries on without battery figures.
//!
//! # Where the figures come from
//! The gauge measures nothing itself: the machine integrates the board's currents over virtual
//! time (`crate::power`) and hands the gauge a [`GaugeReading`] taken at the virtual time of each
//! access, right before the access ([`FuelGauge::observe`]). So every register is exact at the
//! cycle the firmware reads it, and reads cost nothing when nobody reads.
//!
//! # Registers (offsets from the base; 32-bit reads only)
//! | offset | name | access | meaning |
//! |---|---|---|---|
//! | 0x00 | ID | RO | [`ID`] ("TBFG"); 0 on QEMU |
//! | 0x04 | STATUS | RO | bit 0 READY (always 1; 0 on QEMU), bit 1 LOW (state of charge below 100 ‰), bit 2 EMPTY (no charge left) |
//! | 0x08 | VOLTAGE_MV | RO | cell voltage in mV: the board's voltage curve at the present state of charge |
//! | 0x0C | SOC_PERMILLE | RO | state of charge, 0..=1000 ‰, rounded down |
//! | 0x10 | CURRENT_UA | RO | the board's current now, µA, rounded down |
//! | 0x14 | AVG_CURRENT_UA | RO, read restarts | average current since the previous read of this register (since the machine was made, for the first read), µA, rounded down; the current now if no time passed. A read starts a new window |
//! | 0x18 | CHARGE_USED_UAH | RO | charge the board has drawn since the machine was made (the coulomb counter), µAh, rounded down, saturating at 0xFFFF_FFFF |
//! | 0x1C | CHARGE_USED_NAH_LO | RO | the coulomb counter in nAh, low word; a read latches the high word |
//! | 0x20 | CHARGE_USED_NAH_HI | RO | high word of the nAh count, as latched by the last CHARGE_USED_NAH_LO read |
//! | 0x24 | CAPACITY_UAH | RO | the battery's design capacity (board file), µAh, saturating |
//!
//! How the manual (ours) is read where it could be ambiguous:
//! - State of charge and voltage include the battery's self-discharge and any host adjustment
//!   (`Machine::set_battery_soc`); the current and charge registers count only what the board
//!   draws, as a sense resistor would.
//! - The gauge is on the battery side: system reset and power cuts of the board leave its
//!   counters and the AVG_CURRENT window alone.
//!
//! The offsets, ID and STATUS bits are the contract's ([`twinbed_contract::fuel_gauge`]),
//! which the firmware's driver uses too.
//!
//! Not modelled: temperature, charging, ageing (full-charge capacity = design capacity), the
//! cell's internal resistance (the voltage is the open-circuit voltage, whatever the load),
//! alerts and interrupts, configuration registers. Writes are guest errors (logged, ignored);
//! so are byte and halfword accesses.

use super::regs::{self, RegFile, Registers};
use super::{Ctx, Device, FromBoard, IrqOutputs, PeriphError, Size};
use serde::{Deserialize, Serialize};
use twinbed_contract::fuel_gauge::reg;

/// STATUS bits.
pub use twinbed_contract::fuel_gauge::status;
/// The ID register's value ("TBFG" in little-endian bytes).
pub use twinbed_contract::fuel_gauge::ID;

crate::registers! {
    /// The gauge's registers (all read-only).
    pub enum Reg for "fuel-gauge", Word {
        /// Identification: "TBFG".
        #[doc(alias = "ID")]
        Id = reg::ID, RO, reset = ID;
        /// READY, LOW, EMPTY.
        #[doc(alias = "STATUS")]
        Status = reg::STATUS, RO;
        /// Cell voltage, mV.
        #[doc(alias = "VOLTAGE_MV")]
        VoltageMv = reg::VOLTAGE_MV, RO;
        /// State of charge, ‰.
        #[doc(alias = "SOC_PERMILLE")]
        SocPermille = reg::SOC_PERMILLE, RO;
        /// Current now, µA.
        #[doc(alias = "CURRENT_UA")]
        CurrentUa = reg::CURRENT_UA, RO;
        /// Average current since the previous read, µA.
        #[doc(alias = "AVG_CURRENT_UA")]
        AvgCurrentUa = reg::AVG_CURRENT_UA, RO;
        /// Coulomb counter, µAh.
        #[doc(alias = "CHARGE_USED_UAH")]
        ChargeUsedUah = reg::CHARGE_USED_UAH, RO;
        /// Coulomb counter, nAh, low word (latches the high word).
        #[doc(alias = "CHARGE_USED_NAH_LO")]
        ChargeUsedNahLo = reg::CHARGE_USED_NAH_LO, RO;
        /// Coulomb counter, nAh, high word (latched).
        #[doc(alias = "CHARGE_USED_NAH_HI")]
        ChargeUsedNahHi = reg::CHARGE_USED_NAH_HI, RO;
        /// Design capacity, µAh.
        #[doc(alias = "CAPACITY_UAH")]
        CapacityUah = reg::CAPACITY_UAH, RO;
    }
}

/// The battery and the board's consumption at one virtual time, as the machine computes them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GaugeReading {
    /// Virtual time of the reading, in cycles.
    pub now: u64,
    /// Core clock (cycles per second).
    pub clock_hz: u32,
    /// Charge the board has drawn since the machine was made, in nA·cycles.
    pub load_charge: u128,
    /// The board's current now, nA.
    pub current_na: u64,
    /// State of charge in millionths (0..=1_000_000).
    pub soc_ppm: u32,
    /// Cell voltage, mV.
    pub voltage_mv: u32,
    /// Design capacity, µAh.
    pub capacity_uah: u64,
}

impl GaugeReading {
    /// nA·cycles per nAh: 3600 seconds of cycles.
    fn per_nah(&self) -> u128 {
        u128::from(self.clock_hz.max(1)) * 3600
    }

    /// The coulomb counter in nAh, rounded down.
    pub fn charge_used_nah(&self) -> u64 {
        u64::try_from(self.load_charge / self.per_nah()).unwrap_or(u64::MAX)
    }
}

/// The gauge.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FuelGauge {
    /// The last reading the machine gave (refreshed before every access).
    reading: GaugeReading,
    /// Start of the AVG_CURRENT window: (cycle, charge drawn by then in nA·cycles).
    window: (u64, u128),
    /// CHARGE_USED_NAH_HI as latched by the last CHARGE_USED_NAH_LO read.
    nah_hi: u32,
    /// ID (the only stored register: the others show the reading).
    regs: RegFile<Reg>,
}

impl FuelGauge {
    /// A gauge whose AVG_CURRENT window starts at cycle 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// The battery and consumption at the time of the coming access (the machine calls this
    /// right before every access).
    pub fn observe(&mut self, reading: GaugeReading) {
        self.reading = reading;
    }

    /// The last reading.
    pub fn reading(&self) -> &GaugeReading {
        &self.reading
    }

    fn status(&self) -> u32 {
        let permille = self.reading.soc_ppm / 1000;
        let mut s = status::READY;
        if permille < status::LOW_PERMILLE {
            s |= status::LOW;
        }
        if self.reading.soc_ppm == 0 {
            s |= status::EMPTY;
        }
        s
    }

    /// AVG_CURRENT_UA: the average over the window, which the read then restarts.
    fn take_average_ua(&mut self) -> u32 {
        let r = self.reading;
        let (t0, q0) = self.window;
        let dt = r.now.saturating_sub(t0);
        let avg_na = if dt == 0 {
            u128::from(r.current_na)
        } else {
            r.load_charge.saturating_sub(q0) / u128::from(dt)
        };
        self.window = (r.now, r.load_charge);
        u32::try_from(avg_na / 1000).unwrap_or(u32::MAX)
    }
}

impl Registers for FuelGauge {
    type Reg = Reg;

    fn regs(&mut self) -> &mut RegFile<Reg> {
        &mut self.regs
    }

    fn read_reg(&mut self, reg: Reg, stored: u32, _: &mut Ctx<'_>) -> u32 {
        let r = self.reading;
        let sat = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        match reg {
            Reg::Id => stored,
            Reg::Status => self.status(),
            Reg::VoltageMv => r.voltage_mv,
            Reg::SocPermille => r.soc_ppm / 1000,
            Reg::CurrentUa => sat(r.current_na / 1000),
            Reg::AvgCurrentUa => self.take_average_ua(),
            Reg::ChargeUsedUah => sat(r.charge_used_nah() / 1000),
            Reg::ChargeUsedNahLo => {
                let nah = r.charge_used_nah();
                self.nah_hi = (nah >> 32) as u32;
                nah as u32
            }
            Reg::ChargeUsedNahHi => self.nah_hi,
            Reg::CapacityUah => sat(r.capacity_uah),
        }
    }
}

impl Device for FuelGauge {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        regs::read(self, offset, size, ctx)
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        // Every register is read-only: a guest error, whatever the offset.
        regs::write(self, offset, size, value, ctx);
    }

    fn reset(&mut self) {
        // Battery side: a system reset of the board leaves the gauge alone.
    }

    fn senses_battery(&self) -> bool {
        true
    }

    fn observe_battery(&mut self, reading: GaugeReading) {
        self.observe(reading);
    }
}

impl FromBoard for FuelGauge {
    const IRQ_OUTPUTS: usize = 0;

    fn from_board(
        p: &twinbed_board::Peripheral,
        _: u8,
        _: IrqOutputs,
        board: &twinbed_board::Board,
    ) -> Result<Self, PeriphError> {
        if board.battery.is_none() || board.power.is_none() {
            return Err(PeriphError::NoBattery { name: p.name.clone() });
        }
        Ok(Self::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periph::{IrqLines, Output};

    fn read(g: &mut FuelGauge, reg: Reg) -> u32 {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut ctx = Ctx { now: g.reading.now, clock_hz: 1_000_000, irq: &mut irq, out: &mut out };
        g.read(reg as u32, Size::Word, &mut ctx)
    }

    fn reading(now: u64, load_charge: u128, current_na: u64, soc_ppm: u32) -> GaugeReading {
        GaugeReading {
            now,
            clock_hz: 1_000_000,
            load_charge,
            current_na,
            soc_ppm,
            voltage_mv: 3700,
            capacity_uah: 2_000_000,
        }
    }

    #[test]
    fn registers_show_the_reading() {
        let mut g = FuelGauge::new();
        // 1 MHz: 3.6e9 cycles per hour; 7.2e12 nA·cycles = 2000 nAh.
        g.observe(reading(3_600_000_000, 7_200_000_000_000 + 5, 2_500, 550_123));
        assert_eq!(read(&mut g, Reg::Id), ID);
        assert_eq!(read(&mut g, Reg::Status), status::READY);
        assert_eq!(read(&mut g, Reg::VoltageMv), 3700);
        assert_eq!(read(&mut g, Reg::SocPermille), 550);
        assert_eq!(read(&mut g, Reg::CurrentUa), 2);
        assert_eq!(read(&mut g, Reg::ChargeUsedUah), 2);
        assert_eq!(read(&mut g, Reg::ChargeUsedNahHi), 0, "nothing latched yet");
        assert_eq!(read(&mut g, Reg::ChargeUsedNahLo), 2000);
        assert_eq!(read(&mut g, Reg::CapacityUah), 2_000_000);
        // The first window runs from cycle 0: 7.2e12 / 3.6e9 = 2000 nA.
        assert_eq!(read(&mut g, Reg::AvgCurrentUa), 2);
        // No time since: the current now.
        assert_eq!(read(&mut g, Reg::AvgCurrentUa), 2);
        // 1e6 cycles at 50 µA.
        g.observe(reading(3_601_000_000, 7_200_000_000_005 + 50_000 * 1_000_000, 0, 550_000));
        assert_eq!(read(&mut g, Reg::AvgCurrentUa), 50);
    }

    #[test]
    fn the_high_word_is_latched_by_the_low_word() {
        let mut g = FuelGauge::new();
        let per_nah = 3600 * 1_000_000u128;
        g.observe(reading(1, per_nah * ((5u128 << 32) + 7), 0, 1_000_000));
        assert_eq!(read(&mut g, Reg::ChargeUsedNahLo), 7);
        g.observe(reading(2, per_nah * ((5000u128 << 32) + 1), 0, 1_000_000));
        assert_eq!(read(&mut g, Reg::ChargeUsedNahHi), 5, "latched at the LO read");
        assert_eq!(read(&mut g, Reg::ChargeUsedUah), u32::MAX, "µAh saturates");
    }

    #[test]
    fn status_flags_low_and_empty_and_writes_are_ignored() {
        let mut g = FuelGauge::new();
        g.observe(reading(0, 0, 0, 99_999));
        assert_eq!(read(&mut g, Reg::Status), status::READY | status::LOW);
        g.observe(reading(0, 0, 0, 0));
        assert_eq!(read(&mut g, Reg::Status), status::READY | status::LOW | status::EMPTY);
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut ctx = Ctx { now: 0, clock_hz: 1_000_000, irq: &mut irq, out: &mut out };
        g.write(Reg::SocPermille as u32, Size::Word, 1000, &mut ctx);
        assert_eq!(g.read(Reg::SocPermille as u32, Size::Word, &mut ctx), 0);
        assert_eq!(g.read(Reg::Id as u32, Size::Byte, &mut ctx), 0, "byte reads are guest errors");
        assert_eq!(g.read(0x28, Size::Word, &mut ctx), 0);
    }
}
