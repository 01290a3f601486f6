//! Driver for the TI **TMP105** digital temperature sensor (datasheet SBOS348), on any
//! `embedded-hal` 1.0 [`I2c`] bus. `no_std`, no allocation; tested on the host with
//! `embedded-hal-mock`.
//!
//! The TMP105 has a pointer register that selects one of four registers (datasheet table 2):
//! temperature (read-only, 12-bit two's complement, left-justified in 16 bits), configuration,
//! T_LOW and T_HIGH. Reads return the register the pointer selects, so every read here first
//! writes the pointer (a write-then-read with a repeated START).
//!
//! Not covered: the thermostat (T_LOW/T_HIGH, ALERT pin), one-shot and shutdown modes.
#![cfg_attr(not(test), no_std)]

use core::fmt;
use embedded_hal::i2c::I2c;

/// Pointer register values (datasheet table 2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Register {
    /// Temperature, read-only.
    Temperature = 0x00,
    /// Configuration (resolution, fault queue, polarity, mode, shutdown).
    Configuration = 0x01,
    /// Thermostat low limit.
    TLow = 0x02,
    /// Thermostat high limit.
    THigh = 0x03,
}

/// Conversion resolution: configuration bits R1:R0 (datasheet table 8). Power-on default: 9 bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// 0.5 °C, 28 ms conversion.
    Bits9 = 0b00,
    /// 0.25 °C, 55 ms conversion.
    Bits10 = 0b01,
    /// 0.125 °C, 110 ms conversion.
    Bits11 = 0b10,
    /// 0.0625 °C, 220 ms conversion.
    Bits12 = 0b11,
}

impl Resolution {
    /// Conversion time in ms, typical (datasheet: 27.5, 55, 110, 220 ms), rounded up.
    pub const fn conversion_ms(self) -> u32 {
        match self {
            Resolution::Bits9 => 28,
            Resolution::Bits10 => 55,
            Resolution::Bits11 => 110,
            Resolution::Bits12 => 220,
        }
    }
}

/// Configuration bit SD: shutdown mode.
const CONFIG_SD: u8 = 1 << 0;
/// Configuration bit OS: one-shot conversion (written with SD = 1).
const CONFIG_OS: u8 = 1 << 7;

/// A temperature as the sensor reports it: the raw register, 1/256 °C per LSB (the low four
/// bits are always zero; fewer bits carry data at lower resolutions).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Temperature {
    raw: i16,
}

impl Temperature {
    /// From the raw 16-bit register value.
    pub const fn from_raw(raw: i16) -> Self {
        Self { raw }
    }

    /// The raw register value.
    pub const fn raw(self) -> i16 {
        self.raw
    }

    /// Ten-thousandths of a degree Celsius: exact for every value the register can hold
    /// (the 12-bit LSB is 0.0625 °C = 625 / 10 000).
    pub const fn centi_milli_celsius(self) -> i32 {
        (self.raw as i32 >> 4) * 625
    }

    /// Thousandths of a degree Celsius, rounded toward zero.
    pub const fn milli_celsius(self) -> i32 {
        self.centi_milli_celsius() / 10
    }
}

/// Prints degrees Celsius with the sensor's full precision, e.g. `21.5625` or `-0.0625`.
impl fmt::Display for Temperature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.centi_milli_celsius();
        let sign = if v < 0 { "-" } else { "" };
        let a = v.unsigned_abs();
        write!(f, "{sign}{}.{:04}", a / 10_000, a % 10_000)
    }
}

/// A TMP105 at a 7-bit address on an I2C bus.
#[derive(Debug)]
pub struct Tmp105<I2C> {
    i2c: I2C,
    address: u8,
}

/// The address with A0 tied low (the only address the TMP105's pinout offers besides 0x49).
pub const DEFAULT_ADDRESS: u8 = 0x48;

impl<I2C: I2c> Tmp105<I2C> {
    /// A driver for the sensor at `address` (see [`DEFAULT_ADDRESS`]). Does no bus traffic.
    pub fn new(i2c: I2C, address: u8) -> Self {
        Self { i2c, address }
    }

    /// Gives the bus back.
    pub fn release(self) -> I2C {
        self.i2c
    }

    /// Writes the configuration register: the given resolution, continuous conversion,
    /// comparator mode, fault queue 1.
    pub fn set_resolution(&mut self, resolution: Resolution) -> Result<(), I2C::Error> {
        let config = (resolution as u8) << 5;
        self.i2c.write(self.address, &[Register::Configuration as u8, config])
    }

    /// Shuts the sensor down at the given resolution (configuration SD = 1): no conversions,
    /// 0.1 µA instead of 50 µA; [`Tmp105::start_one_shot`] then converts once. The temperature
    /// register keeps the last result.
    pub fn shut_down(&mut self, resolution: Resolution) -> Result<(), I2C::Error> {
        let config = (resolution as u8) << 5 | CONFIG_SD;
        self.i2c.write(self.address, &[Register::Configuration as u8, config])
    }

    /// Starts one conversion while shut down (OS = 1 with SD = 1); the result is in the
    /// temperature register after [`Resolution::conversion_ms`], and the sensor shuts down
    /// again by itself.
    pub fn start_one_shot(&mut self, resolution: Resolution) -> Result<(), I2C::Error> {
        let config = CONFIG_OS | (resolution as u8) << 5 | CONFIG_SD;
        self.i2c.write(self.address, &[Register::Configuration as u8, config])
    }

    /// Reads the configuration register.
    pub fn configuration(&mut self) -> Result<u8, I2C::Error> {
        let mut buf = [0u8; 1];
        self.i2c.write_read(self.address, &[Register::Configuration as u8], &mut buf)?;
        Ok(buf[0])
    }

    /// Reads the temperature register.
    pub fn read_temperature(&mut self) -> Result<Temperature, I2C::Error> {
        let mut buf = [0u8; 2];
        self.i2c.write_read(self.address, &[Register::Temperature as u8], &mut buf)?;
        Ok(Temperature::from_raw(i16::from_be_bytes(buf)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::i2c::ErrorKind;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    fn read_temp(bytes: [u8; 2]) -> Temperature {
        let expectations = [Transaction::write_read(0x48, vec![0x00], bytes.to_vec())];
        let mut sensor = Tmp105::new(Mock::new(&expectations), DEFAULT_ADDRESS);
        let t = sensor.read_temperature().expect("mocked read succeeds");
        sensor.release().done();
        t
    }

    #[rustfmt::skip]
    #[test]
    fn temperatures_from_the_datasheet_table() {
        // Datasheet table 5 (12-bit), bytes as they come off the wire (MSB first).
        let cases: &[([u8; 2], i32, &str)] = &[
            ([0x7F, 0xF0],  1_279_375, "127.9375"),
            ([0x64, 0x00],  1_000_000, "100.0000"),
            ([0x50, 0x00],    800_000, "80.0000"),
            ([0x4B, 0x00],    750_000, "75.0000"),
            ([0x32, 0x00],    500_000, "50.0000"),
            ([0x19, 0x00],    250_000, "25.0000"),
            ([0x15, 0x80],    215_000, "21.5000"),
            ([0x00, 0x40],      2_500, "0.2500"),
            ([0x00, 0x00],          0, "0.0000"),
            ([0xFF, 0xC0],     -2_500, "-0.2500"),
            ([0xFF, 0xF0],       -625, "-0.0625"),
            ([0xE7, 0x00],   -250_000, "-25.0000"),
            ([0xC9, 0x00],   -550_000, "-55.0000"),
        ];
        for &(bytes, centi_milli, text) in cases {
            let t = read_temp(bytes);
            assert_eq!(t.centi_milli_celsius(), centi_milli, "{bytes:02x?}");
            assert_eq!(format!("{t}"), text, "{bytes:02x?}");
        }
    }

    #[test]
    fn milli_celsius_rounds_toward_zero() {
        assert_eq!(Temperature::from_raw(0x0010).milli_celsius(), 62); // 0.0625
        assert_eq!(Temperature::from_raw(-0x0010).milli_celsius(), -62);
    }

    #[test]
    fn set_resolution_writes_the_configuration_register() {
        let expectations = [
            Transaction::write(0x49, vec![0x01, 0x60]),
            Transaction::write_read(0x49, vec![0x01], vec![0x60]),
            Transaction::write(0x49, vec![0x01, 0x00]),
        ];
        let mut sensor = Tmp105::new(Mock::new(&expectations), 0x49);
        sensor.set_resolution(Resolution::Bits12).unwrap();
        assert_eq!(sensor.configuration().unwrap(), 0x60);
        sensor.set_resolution(Resolution::Bits9).unwrap();
        sensor.release().done();
    }

    #[test]
    fn shutdown_and_one_shot_write_sd_and_os() {
        let expectations = [
            // 12-bit, SD: 0b0110_0001.
            Transaction::write(0x48, vec![0x01, 0x61]),
            // OS too: 0b1110_0001.
            Transaction::write(0x48, vec![0x01, 0xE1]),
            Transaction::write(0x48, vec![0x01, 0x01]),
        ];
        let mut sensor = Tmp105::new(Mock::new(&expectations), DEFAULT_ADDRESS);
        sensor.shut_down(Resolution::Bits12).unwrap();
        sensor.start_one_shot(Resolution::Bits12).unwrap();
        sensor.shut_down(Resolution::Bits9).unwrap();
        sensor.release().done();
        assert_eq!(Resolution::Bits12.conversion_ms(), 220);
        assert_eq!(Resolution::Bits9.conversion_ms(), 28);
    }

    #[test]
    fn bus_errors_reach_the_caller() {
        let expectations = [
            Transaction::write_read(0x48, vec![0x00], vec![0, 0])
                .with_error(ErrorKind::NoAcknowledge(embedded_hal::i2c::NoAcknowledgeSource::Address)),
            Transaction::write(0x48, vec![0x01, 0x60]).with_error(ErrorKind::Bus),
            Transaction::write_read(0x48, vec![0x00], vec![0x19, 0x00]),
        ];
        let mut sensor = Tmp105::new(Mock::new(&expectations), DEFAULT_ADDRESS);
        assert_eq!(
            sensor.read_temperature().unwrap_err(),
            ErrorKind::NoAcknowledge(embedded_hal::i2c::NoAcknowledgeSource::Address)
        );
        assert_eq!(sensor.set_resolution(Resolution::Bits12).unwrap_err(), ErrorKind::Bus);
        // The driver keeps no state that an error could corrupt: the next read works.
        assert_eq!(sensor.read_temperature().unwrap().milli_celsius(), 25_000);
        sensor.release().done();
    }
}
