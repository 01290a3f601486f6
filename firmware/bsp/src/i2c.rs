//! SBCon two-wire serial bus (ARM "SBCon" in the MPS2 / Versatile FPGA images; QEMU
//! hw/i2c/arm_sbcon_i2c.c), driven as a bit-banged I2C master and offered as an
//! `embedded-hal` 1.0 [`I2c`].
//!
//! The SBCon is just two open-drain lines: writing 1 to CONTROLS releases (sets) a line, writing 1
//! to CONTROLC pulls it low; reading CONTROL returns the line levels (bit 0 SCL, bit 1 SDA).
//!
//! Not modelled here: clock stretching (no device on this board stretches), multi-master
//! arbitration (reported as [`Error::BusStuck`] when SDA will not rise), 10-bit addresses.
//! Timing: no delay between edges. Emulators do not need one; on the FPGA board the line rate is
//! then bounded by the APB access time (~4 cycles at 25 MHz per edge, well under the 400 kHz that
//! the TMP105 accepts only in fast mode; add delays before running this on a real MPS2 board).

use core::ptr::{read_volatile, write_volatile};
use embedded_hal::i2c::{self, ErrorKind, I2c, NoAcknowledgeSource, Operation, SevenBitAddress};

/// CONTROL (read) / CONTROLS (write: set bits).
const CONTROL_SET: usize = 0x00;
/// CONTROLC (write: clear bits).
const CONTROL_CLEAR: usize = 0x04;
const SCL: u32 = 1 << 0;
const SDA: u32 = 1 << 1;

/// Errors of the bit-banged bus.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The addressed device (or the data byte) was not acknowledged.
    NoAcknowledge(NoAcknowledgeSource),
    /// SDA stayed low when released: another master or a wedged device holds the bus.
    BusStuck,
}

impl i2c::Error for Error {
    fn kind(&self) -> ErrorKind {
        match *self {
            Error::NoAcknowledge(src) => ErrorKind::NoAcknowledge(src),
            Error::BusStuck => ErrorKind::Bus,
        }
    }
}

/// An SBCon controller used as an I2C master.
#[derive(Debug)]
pub struct SbConI2c {
    base: usize,
}

impl SbConI2c {
    /// The controller at `base` (e.g. [`crate::map::I2C_SENSORS`]). Releases both lines.
    pub fn new(base: usize) -> Self {
        let bus = Self { base };
        bus.set(SCL | SDA);
        bus
    }

    fn set(&self, bits: u32) {
        // SAFETY: `base` is an SBCon block on this board; the write only changes line levels.
        unsafe { write_volatile((self.base + CONTROL_SET) as *mut u32, bits) }
    }

    fn clear(&self, bits: u32) {
        // SAFETY: as in `set`.
        unsafe { write_volatile((self.base + CONTROL_CLEAR) as *mut u32, bits) }
    }

    fn sda_high(&self) -> bool {
        // SAFETY: as in `set`; reading CONTROL has no side effect.
        unsafe { read_volatile((self.base + CONTROL_SET) as *const u32) & SDA != 0 }
    }

    /// START (or repeated START): SDA falls while SCL is high.
    fn start(&self) -> Result<(), Error> {
        self.set(SDA);
        self.set(SCL);
        if !self.sda_high() {
            return Err(Error::BusStuck);
        }
        self.clear(SDA);
        self.clear(SCL);
        Ok(())
    }

    /// STOP: SDA rises while SCL is high.
    fn stop(&self) {
        self.clear(SDA);
        self.set(SCL);
        self.set(SDA);
    }

    /// Clocks one bit out (SCL is low on entry and exit).
    fn write_bit(&self, bit: bool) {
        if bit {
            self.set(SDA);
        } else {
            self.clear(SDA);
        }
        self.set(SCL);
        self.clear(SCL);
    }

    /// Clocks one bit in with SDA released (SCL is low on entry and exit).
    fn read_bit(&self) -> bool {
        self.set(SDA);
        self.set(SCL);
        let bit = self.sda_high();
        self.clear(SCL);
        bit
    }

    /// Sends a byte MSB first; returns whether the receiver acknowledged (pulled SDA low).
    fn write_byte(&self, byte: u8) -> bool {
        (0..8).rev().for_each(|i| self.write_bit(byte & (1 << i) != 0));
        !self.read_bit()
    }

    /// Receives a byte MSB first, then acknowledges it (`ack`) or not (the last byte of a read).
    fn read_byte(&self, ack: bool) -> u8 {
        let byte = (0..8).fold(0u8, |acc, _| (acc << 1) | u8::from(self.read_bit()));
        self.write_bit(!ack);
        byte
    }

    fn transaction_inner(
        &self,
        address: SevenBitAddress,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Error> {
        // embedded-hal 1.0 contract: a START (or repeated START) plus address only where the
        // direction changes; adjacent operations of the same kind continue without one.
        let mut previous_was_read: Option<bool> = None;
        for i in 0..operations.len() {
            let next_is_read = matches!(operations.get(i + 1), Some(Operation::Read(_)));
            let op = &mut operations[i];
            let is_read = matches!(op, Operation::Read(_));
            if previous_was_read != Some(is_read) {
                self.start()?;
                if !self.write_byte((address << 1) | u8::from(is_read)) {
                    return Err(Error::NoAcknowledge(NoAcknowledgeSource::Address));
                }
            }
            match op {
                Operation::Write(bytes) => {
                    for &b in bytes.iter() {
                        if !self.write_byte(b) {
                            return Err(Error::NoAcknowledge(NoAcknowledgeSource::Data));
                        }
                    }
                }
                Operation::Read(buf) => {
                    let n = buf.len();
                    for (j, b) in buf.iter_mut().enumerate() {
                        // NACK the last byte before a STOP or a direction change; ACK the rest,
                        // including the last one when the next operation continues the read.
                        let last = j + 1 == n && !next_is_read;
                        *b = self.read_byte(!last);
                    }
                }
            }
            previous_was_read = Some(is_read);
        }
        Ok(())
    }
}

impl i2c::ErrorType for SbConI2c {
    type Error = Error;
}

impl I2c<SevenBitAddress> for SbConI2c {
    fn transaction(
        &mut self,
        address: SevenBitAddress,
        operations: &mut [Operation<'_>],
    ) -> Result<(), Self::Error> {
        let result = self.transaction_inner(address, operations);
        self.stop();
        result
    }
}
