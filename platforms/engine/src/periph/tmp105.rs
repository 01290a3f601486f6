//! TI TMP105 digital temperature sensor (datasheet SBOS348) as an I2C slave, as QEMU 7.2 models
//! it (hw/sensor/tmp105.c; QEMU is the oracle, so the same reads give the same bytes).
//!
//! Pointer register (low 2 bits select): 0 temperature (read-only), 1 configuration, 2 T_LOW,
//! 3 T_HIGH.
//!
//! How QEMU behaves, reproduced here:
//! - The temperature is set in milli-°C (QEMU's `temperature` property) and kept as 8.8 fixed
//!   point: `raw = milli_c * 256 / 1000`, truncated toward zero (21500 -> 0x1580,
//!   -4250 -> 0xFBC0). Accepted range: -128000 <= milli_c < 128000.
//! - A temperature read gives the high byte, then the low byte masked to the resolution of
//!   configuration bits R1:R0 (12-bit: 0xF0, 11-bit: 0xE0, 10-bit: 0xC0, 9-bit: 0x80); further
//!   bytes read 0xFF. The bytes are latched at the (repeated) START of the read.
//! - The first byte of a write sets the pointer; a configuration write takes the next byte; a
//!   T_LOW/T_HIGH write takes effect after two data bytes. Writes to the temperature register
//!   are ignored. Every START (and STOP, NACK) resets the byte position.
//! - In shutdown mode (SD = 1) a write with OS = 1 clears OS (the one-shot "conversion" is
//!   instantaneous); otherwise OS reads back as written.
//! - Reset values: temperature 0, pointer 0, config 0 (9-bit), T_LOW 75 °C (0x4B00), T_HIGH
//!   80 °C (0x5000). QEMU resets the sensor only at creation, not at system reset; so does this
//!   model (see [`Tmp105::power_on`]).
//!
//! Not modelled: the ALERT pin (not wired on mps2-an385; the thermostat/alert state QEMU keeps
//! is not observable over I2C), conversion time, the fault queue.
//!
//! Energy: the sensor converts continuously while SD = 0 and is shut down while SD = 1; a
//! one-shot (OS = 1 written in shutdown) is counted ([`Tmp105::one_shots`]) so that the machine's
//! energy accounting can charge the conversion the datasheet specifies
//! ([`Tmp105::conversion_us`]) even though the model answers at once.

use super::{RailKind, RailSpec, RailState, RailView};
use serde::{Deserialize, Serialize};

/// Energy states of the sensor's rail.
mod rail {
    /// Converting (continuously, or a one-shot).
    pub const MEASURING: usize = 0;
    /// Shut down between conversions.
    pub const SHUTDOWN: usize = 1;
    /// The board's power is cut.
    pub const OFF: usize = 2;
}

const CONFIG_SD: u8 = 1 << 0;
const CONFIG_OS: u8 = 1 << 7;

/// Events a bus master causes on the addressed slave (QEMU's `enum i2c_event`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum I2cEvent {
    /// START (or repeated START) with the read bit set.
    StartRecv,
    /// START (or repeated START) with the read bit clear.
    StartSend,
    /// STOP.
    Finish,
    /// The master did not acknowledge a byte it received.
    Nack,
}

/// One TMP105.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tmp105 {
    /// Temperature, 1/256 °C.
    temperature: i16,
    pointer: u8,
    config: u8,
    /// T_LOW, T_HIGH (1/256 °C).
    limit: [i16; 2],
    /// Byte position within the current transfer.
    len: u8,
    buf: [u8; 2],
    /// One-shot conversions started since the sensor was made (for energy accounting).
    #[serde(default)]
    one_shots: u32,
}

impl Default for Tmp105 {
    fn default() -> Self {
        Self::new()
    }
}

impl Tmp105 {
    /// Lowest temperature accepted, milli-°C.
    pub const MIN_MILLI_C: i32 = -128_000;
    /// Highest temperature accepted, milli-°C.
    pub const MAX_MILLI_C: i32 = 127_999;

    /// A sensor in its power-on state (0 °C, 9-bit resolution).
    pub fn new() -> Self {
        Self {
            temperature: 0,
            pointer: 0,
            config: 0,
            limit: [0x4b00, 0x5000],
            len: 0,
            buf: [0; 2],
            one_shots: 0,
        }
    }

    /// Back to the power-on state, keeping the temperature (the environment, not the chip) and
    /// the one-shot count (a bookkeeping counter, not chip state).
    pub fn power_on(&mut self) {
        *self = Self { temperature: self.temperature, one_shots: self.one_shots, ..Self::new() };
    }

    /// Whether the sensor is shut down (configuration SD = 1): no conversions but one-shots.
    pub fn shut_down(&self) -> bool {
        self.config & CONFIG_SD != 0
    }

    /// One-shot conversions started (OS = 1 written in shutdown) since the sensor was made.
    pub fn one_shots(&self) -> u32 {
        self.one_shots
    }

    /// How long a conversion takes at the configured resolution (R1:R0), in µs: the typical
    /// conversion times of the datasheet's electrical characteristics (27.5 ms at 9 bits, 55,
    /// 110, 220 ms at 12 bits).
    pub fn conversion_us(&self) -> u64 {
        const US: [u64; 4] = [27_500, 55_000, 110_000, 220_000];
        US[usize::from((self.config >> 5) & 3)]
    }

    /// Energy: the sensor's rail, named `name` (its board name): `measuring` (the board's
    /// `sensor_ua`), `shutdown` (`sensor_shutdown_ua`), `off` (power cut).
    pub fn rail(&self, name: &str, power: &twinbed_board::Power) -> RailSpec {
        RailSpec {
            name: name.to_owned(),
            kind: RailKind::Sensor,
            states: vec![
                ("measuring", power.sensor_ua.thousandths()),
                ("shutdown", power.sensor_shutdown_ua.thousandths()),
                ("off", 0),
            ],
            initial: if self.shut_down() { rail::SHUTDOWN } else { rail::MEASURING },
            off: rail::OFF,
            seen: self.one_shots,
        }
    }

    /// Energy: the rail's state after a bus access: SD = 0 converts continuously; a one-shot
    /// not yet charged for (`rail.seen` counts those) measures for [`Tmp105::conversion_us`];
    /// a conversion already scheduled goes on; otherwise shut down.
    pub fn rail_state(&self, rail: &RailView) -> RailState {
        let one_shot = rail.seen != self.one_shots;
        let (state, until) = if !self.shut_down() {
            (rail::MEASURING, None)
        } else if one_shot {
            let cycles = self.conversion_us() * u64::from(rail.clock_hz) / 1_000_000;
            (rail::MEASURING, Some((rail.now + cycles.max(1), rail::SHUTDOWN)))
        } else if rail.state_now == rail::MEASURING && rail.until.is_some() {
            (rail.current, rail.until) // a one-shot conversion still going on
        } else {
            (rail::SHUTDOWN, None)
        };
        RailState { state, until, seen: self.one_shots }
    }

    /// Sets the temperature in milli-°C; `Err((min, max))` if outside the range QEMU accepts.
    pub fn set_temperature(&mut self, milli_c: i32) -> Result<(), (i32, i32)> {
        if !(Self::MIN_MILLI_C..=Self::MAX_MILLI_C).contains(&milli_c) {
            return Err((Self::MIN_MILLI_C, Self::MAX_MILLI_C));
        }
        // In range, so the quotient fits i16; Rust's `/` truncates toward zero like C's.
        self.temperature = (i64::from(milli_c) * 256 / 1000) as i16;
        Ok(())
    }

    /// The temperature in milli-°C as QEMU reports it (`raw * 1000 / 256`, truncated).
    pub fn temperature(&self) -> i32 {
        i32::from(self.temperature) * 1000 / 256
    }

    /// The raw 8.8 temperature register.
    pub fn raw_temperature(&self) -> i16 {
        self.temperature
    }

    /// The configuration register.
    pub fn config(&self) -> u8 {
        self.config
    }

    fn latch_read(&mut self) {
        self.len = 0;
        let [hi, lo] = match self.pointer & 3 {
            0 => {
                let [hi, lo] = (self.temperature as u16).to_be_bytes();
                let shift = (!self.config >> 5) & 3;
                [hi, lo & (0xf0u16 << shift) as u8]
            }
            1 => [self.config, 0],
            2 => (self.limit[0] as u16).to_be_bytes(),
            _ => (self.limit[1] as u16).to_be_bytes(),
        };
        self.buf = [hi, lo];
    }

    fn apply_write(&mut self) {
        match self.pointer & 3 {
            0 => {}
            1 => {
                self.config = self.buf[0];
                if self.config & CONFIG_SD != 0 && self.config & CONFIG_OS != 0 {
                    self.config &= !CONFIG_OS;
                    self.one_shots = self.one_shots.wrapping_add(1);
                }
            }
            p => {
                if self.len >= 3 {
                    self.limit[usize::from(p & 1)] = i16::from_be_bytes(self.buf);
                }
            }
        }
    }

    /// A bus event addressed to this sensor. Always acknowledged.
    pub fn event(&mut self, event: I2cEvent) {
        if event == I2cEvent::StartRecv {
            self.latch_read();
        }
        self.len = 0;
    }

    /// A byte written by the master. Always acknowledged.
    pub fn send(&mut self, data: u8) {
        if self.len == 0 {
            self.pointer = data;
            self.len = 1;
        } else {
            if self.len <= 2 {
                self.buf[usize::from(self.len - 1)] = data;
            }
            self.len = self.len.saturating_add(1);
            self.apply_write();
        }
    }

    /// A byte read by the master.
    pub fn recv(&mut self) -> u8 {
        if self.len < 2 {
            let b = self.buf[usize::from(self.len)];
            self.len += 1;
            b
        } else {
            0xff
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantises_like_qemu() {
        let mut t = Tmp105::new();
        // (milli-°C set, value QEMU 7.2 reports back), measured with qom-set/qom-get.
        for (set, get) in [
            (21500, 21500),
            (21501, 21500),
            (-4250, -4250),
            (-4251, -4250),
            (-999, -996),
            (999, 996),
            (127_999, 127_996),
            (-128_000, -128_000),
        ] {
            t.set_temperature(set).expect("in range");
            assert_eq!(t.temperature(), get, "{set}");
        }
        assert!(t.set_temperature(128_000).is_err());
        assert!(t.set_temperature(-128_001).is_err());
    }
}
