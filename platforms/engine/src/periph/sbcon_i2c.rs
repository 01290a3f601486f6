//! ARM SBCon two-wire serial bus interface (the "Versatile I2C" of ARM's FPGA boards; AN385
//! §3.12), as QEMU 7.2 models it (hw/i2c/arm_sbcon_i2c.c on hw/i2c/bitbang_i2c.c and the I2C
//! core hw/i2c/core.c; QEMU is the oracle). The guest bit-bangs I2C; the bus devices listed in
//! the board file answer.
//!
//! Registers: 0x00 read CONTROL (bit 0 SCL as driven, bit 1 SDA as seen on the bus), write
//! CONTROLS (set bits); 0x04 write CONTROLC (clear bits). Lines are open-drain: SDA reads low
//! if either the master or the addressed slave pulls it low. No interrupt.
//!
//! How QEMU behaves, reproduced here:
//! - Every write (even to a bad offset) presents SCL, then SDA, to the bit-bang state machine;
//!   CONTROL's SDA bit is what the SDA step returned. Slaves drive SDA only while SCL is high
//!   (they sample and answer on the rising edge and release on the falling edge).
//! - SDA falling while SCL is high is a START, rising is a STOP. After START, eight bits are
//!   shifted in on rising edges, then the ninth clock answers ACK (SDA low) if a device at that
//!   7-bit address exists (read bit = bit 0). A NACKed address or data byte ends the transfer
//!   as if by STOP. Reads: each byte is fetched from the slave at its first clock; a master
//!   NACK ends the read until the next START or STOP.
//! - Quirk: a repeated START keeps talking to the device selected by the first START of the
//!   transfer, whatever address follows (QEMU's I2C core only rescans the bus after a STOP).
//! - Address 0 (general call) selects every device; reads then return 0xFF.
//! - A read of a bad offset returns 0xFFFF_FFFF (QEMU returns -1), logged as a guest error.
//! - QEMU has no reset for this controller or its bus devices: `reset` keeps everything (line
//!   levels, a transfer in progress, sensor registers).
//!
//! Not modelled (QEMU neither): clock stretching, arbitration, 10-bit addresses.

use super::regs::{self, RegFile, Registers};
use super::tmp105::{I2cEvent, Tmp105};
use super::{Ctx, Device, FromBoard, IrqOutputs, PeriphError, RailSpec, RailState, RailView, Size};
use serde::{Deserialize, Serialize};

crate::registers! {
    /// The controller's registers.
    pub enum Reg for "sbcon-i2c", Any {
        /// CONTROL (read: SCL as driven, SDA as seen on the bus) / CONTROLS (write: set bits).
        #[doc(alias = "CONTROL", alias = "CONTROLS")]
        Control = 0x00, RW;
        /// CONTROLC (write: clear bits).
        #[doc(alias = "CONTROLC")]
        ControlC = 0x04, WO;
    }
}

const SCL: u8 = 1 << 0;
const SDA: u8 = 1 << 1;

/// A device on the bus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum I2cDevice {
    /// TI TMP105 temperature sensor.
    Tmp105(Tmp105),
}

impl I2cDevice {
    fn event(&mut self, e: I2cEvent) {
        match self {
            I2cDevice::Tmp105(t) => t.event(e),
        }
    }

    /// Returns true for ACK.
    fn send(&mut self, b: u8) -> bool {
        match self {
            I2cDevice::Tmp105(t) => {
                t.send(b);
                true
            }
        }
    }

    fn recv(&mut self) -> u8 {
        match self {
            I2cDevice::Tmp105(t) => t.recv(),
        }
    }
}

/// A device with its name and address.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Attached {
    name: String,
    address: u8,
    device: I2cDevice,
}

/// The bit-bang state machine's state (QEMU's `bitbang_i2c_state`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Phase {
    /// Bus idle (after STOP or NACK of an address/data byte).
    Stopped,
    /// Shifting in a byte from the master; the number is the bits still to come (8..=1).
    Sending(u8),
    /// Ninth clock of a byte from the master: the slave answers ACK/NACK.
    WaitingForAck,
    /// Shifting out a byte to the master; bits still to come (8..=1).
    Receiving(u8),
    /// Ninth clock of a byte to the master: the master answers.
    SendingAck,
    /// The master NACKed a byte it read; idle until START or STOP.
    SentNack,
}

/// The SBCon controller and its bus.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SbConI2c {
    /// No stored registers (the line levels below are the state); kept for the shared code.
    regs: RegFile<Reg>,
    /// Lines as the guest drives them (bits 0 SCL, 1 SDA).
    out: u8,
    /// SDA as last seen (bus level).
    sda_in: bool,
    phase: Phase,
    last_data: bool,
    last_clock: bool,
    device_out: bool,
    buffer: u8,
    /// Address byte of the current transfer (7-bit address << 1 | read).
    current_addr: Option<u8>,
    devices: Vec<Attached>,
    /// Indices of the devices selected by the current transfer (QEMU's `current_devs`).
    selected: Vec<usize>,
    broadcast: bool,
}

impl Default for SbConI2c {
    fn default() -> Self {
        Self::new()
    }
}

impl SbConI2c {
    /// A controller with an empty bus, lines as QEMU creates them.
    pub fn new() -> Self {
        Self {
            regs: RegFile::new(),
            out: 0,
            sda_in: false,
            phase: Phase::Stopped,
            last_data: true,
            last_clock: true,
            device_out: true,
            buffer: 0,
            current_addr: None,
            devices: Vec::new(),
            selected: Vec::new(),
            broadcast: false,
        }
    }

    /// Puts `device` on the bus at 7-bit `address`.
    pub fn attach(&mut self, name: &str, address: u8, device: I2cDevice) {
        self.devices.push(Attached { name: name.to_owned(), address: address & 0x7f, device });
    }

    /// The name of the device at `address`, if any.
    pub fn device_at(&self, address: u8) -> Option<&str> {
        self.devices.iter().find(|d| d.address == address).map(|d| d.name.as_str())
    }

    /// The device named `name`.
    pub fn device_mut(&mut self, name: &str) -> Option<&mut I2cDevice> {
        self.devices.iter_mut().find(|d| d.name == name).map(|d| &mut d.device)
    }

    /// The TMP105s on the bus, with their board names (for energy accounting).
    pub fn tmp105s(&self) -> impl Iterator<Item = (&str, &Tmp105)> {
        self.devices.iter().map(|d| match &d.device {
            I2cDevice::Tmp105(t) => (d.name.as_str(), t),
        })
    }

    /// The TMP105 named `name`.
    pub fn tmp105_mut(&mut self, name: &str) -> Option<&mut Tmp105> {
        match self.device_mut(name) {
            Some(I2cDevice::Tmp105(t)) => Some(t),
            None => None,
        }
    }

    // ---- the I2C core (QEMU hw/i2c/core.c) ----

    /// Returns true for ACK.
    fn start_transfer(&mut self, address: u8, recv: bool) -> bool {
        let scanned = self.selected.is_empty();
        if scanned {
            if address == 0 {
                self.broadcast = true;
            }
            self.selected = (0..self.devices.len())
                .filter(|&i| self.broadcast || self.devices[i].address == address)
                .collect();
        }
        if self.selected.is_empty() {
            return false;
        }
        let e = if recv { I2cEvent::StartRecv } else { I2cEvent::StartSend };
        for &i in &self.selected {
            self.devices[i].device.event(e);
        }
        true
    }

    fn end_transfer(&mut self) {
        for &i in &self.selected {
            self.devices[i].device.event(I2cEvent::Finish);
        }
        self.selected.clear();
        self.broadcast = false;
    }

    fn send(&mut self, b: u8) -> bool {
        // QEMU: `ret = ret || send(...)`: stops at the first device that NACKs.
        let mut ack = true;
        for &i in &self.selected {
            if !self.devices[i].device.send(b) {
                ack = false;
                break;
            }
        }
        ack
    }

    fn recv(&mut self) -> u8 {
        match self.selected.first() {
            Some(&i) if !self.broadcast => self.devices[i].device.recv(),
            _ => 0xff,
        }
    }

    fn nack(&mut self) {
        for &i in &self.selected {
            self.devices[i].device.event(I2cEvent::Nack);
        }
    }

    // ---- the bit-bang state machine (QEMU hw/i2c/bitbang_i2c.c) ----

    fn enter_stop(&mut self) {
        if self.current_addr.is_some() {
            self.end_transfer();
        }
        self.current_addr = None;
        self.phase = Phase::Stopped;
    }

    /// The slave drives SDA to `level`; returns the bus level.
    fn ret(&mut self, level: bool) -> bool {
        self.device_out = level;
        level && self.last_data
    }

    fn nop(&mut self) -> bool {
        self.ret(self.device_out)
    }

    fn set_sda(&mut self, level: bool) -> bool {
        if level == self.last_data {
            return self.nop();
        }
        self.last_data = level;
        if !self.last_clock {
            return self.nop();
        }
        if level {
            tracing::trace!(target: "mmio", "sbcon-i2c: STOP");
            self.enter_stop();
        } else {
            tracing::trace!(target: "mmio", "sbcon-i2c: START");
            self.phase = Phase::Sending(8);
            self.current_addr = None;
        }
        self.ret(true)
    }

    fn set_scl(&mut self, level: bool) -> bool {
        let data = self.last_data;
        if level == self.last_clock {
            return self.nop();
        }
        self.last_clock = level;
        if !level {
            // Falling edge: the slave releases SDA.
            return self.ret(true);
        }
        match self.phase {
            Phase::Stopped | Phase::SentNack => self.ret(true),
            Phase::Sending(n) => {
                self.buffer = (self.buffer << 1) | u8::from(data);
                self.phase = if n > 1 { Phase::Sending(n - 1) } else { Phase::WaitingForAck };
                self.ret(true)
            }
            Phase::WaitingForAck => {
                let ack = match self.current_addr {
                    None => {
                        let a = self.buffer;
                        self.current_addr = Some(a);
                        self.start_transfer(a >> 1, a & 1 != 0)
                    }
                    Some(_) => self.send(self.buffer),
                };
                if !ack {
                    self.enter_stop();
                    return self.ret(true);
                }
                let read = self.current_addr.is_some_and(|a| a & 1 != 0);
                self.phase = if read { Phase::Receiving(8) } else { Phase::Sending(8) };
                self.ret(false)
            }
            Phase::Receiving(n) => {
                if n == 8 {
                    self.buffer = self.recv();
                }
                let bit = self.buffer & 0x80 != 0;
                self.buffer <<= 1;
                self.phase = if n > 1 { Phase::Receiving(n - 1) } else { Phase::SendingAck };
                self.ret(bit)
            }
            Phase::SendingAck => {
                if data {
                    self.phase = Phase::SentNack;
                    self.nack();
                } else {
                    self.phase = Phase::Receiving(8);
                }
                self.ret(true)
            }
        }
    }
}

impl Registers for SbConI2c {
    type Reg = Reg;

    fn regs(&mut self) -> &mut RegFile<Reg> {
        &mut self.regs
    }

    fn read_reg(&mut self, reg: Reg, _: u32, _: &mut Ctx<'_>) -> u32 {
        match reg {
            Reg::Control => u32::from(self.out & SCL) | (u32::from(self.sda_in) << 1),
            Reg::ControlC => 0, // write-only: answered by `read_unmapped`
        }
    }

    fn write_reg(&mut self, reg: Reg, value: u32, _: &mut Ctx<'_>) {
        match reg {
            Reg::Control => self.out |= (value & 3) as u8,
            Reg::ControlC => self.out &= !(value as u8),
        }
    }

    fn read_unmapped(&mut self, offset: u32, size: Size) -> u32 {
        tracing::warn!(target: "guest", "sbcon-i2c: read of bad offset 0x{offset:03x} ({size:?}) returns all ones");
        u32::MAX
    }
}

impl Device for SbConI2c {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        regs::read(self, offset, size, ctx)
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        regs::write(self, offset, size, value, ctx);
        // Every write, even to a bad offset, presents SCL then SDA to the bit-bang machine.
        self.set_scl(self.out & SCL != 0);
        self.sda_in = self.set_sda(self.out & SDA != 0);
    }

    /// QEMU does not reset this controller or its bus devices.
    fn reset(&mut self) {}

    fn rails(&self, _: &str, power: &twinbed_board::Power) -> Vec<RailSpec> {
        self.tmp105s().map(|(name, t)| t.rail(name, power)).collect()
    }

    fn rail_state(&self, k: usize, rail: &RailView) -> RailState {
        match self.tmp105s().nth(k) {
            Some((_, t)) => t.rail_state(rail),
            None => rail.unchanged(),
        }
    }

    fn set_temperature(&mut self, device: &str, milli_c: i32) -> bool {
        self.tmp105_mut(device).is_some_and(|t| t.set_temperature(milli_c).is_ok())
    }
}

impl FromBoard for SbConI2c {
    const IRQ_OUTPUTS: usize = 0;

    fn from_board(
        _: &twinbed_board::Peripheral,
        _: u8,
        _: IrqOutputs,
        _: &twinbed_board::Board,
    ) -> Result<Self, PeriphError> {
        Ok(Self::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periph::{IrqLines, Output};

    /// A bit-banging master doing what firmware/bsp/src/i2c.rs does, register by register.
    struct Master<'a> {
        bus: &'a mut SbConI2c,
        irq: IrqLines,
        out: Output,
    }

    impl Master<'_> {
        fn ctx(&mut self) -> (&mut SbConI2c, Ctx<'_>) {
            (self.bus, Ctx { now: 0, clock_hz: 25_000_000, irq: &mut self.irq, out: &mut self.out })
        }
        fn set(&mut self, bits: u8) {
            let (b, mut c) = self.ctx();
            b.write(0x00, Size::Word, u32::from(bits), &mut c);
        }
        fn clear(&mut self, bits: u8) {
            let (b, mut c) = self.ctx();
            b.write(0x04, Size::Word, u32::from(bits), &mut c);
        }
        fn sda_high(&mut self) -> bool {
            let (b, mut c) = self.ctx();
            b.read(0x00, Size::Word, &mut c) & u32::from(SDA) != 0
        }
        fn start(&mut self) {
            self.set(SDA);
            self.set(SCL);
            assert!(self.sda_high(), "bus stuck");
            self.clear(SDA);
            self.clear(SCL);
        }
        fn stop(&mut self) {
            self.clear(SDA);
            self.set(SCL);
            self.set(SDA);
        }
        fn write_bit(&mut self, bit: bool) {
            if bit {
                self.set(SDA)
            } else {
                self.clear(SDA)
            }
            self.set(SCL);
            self.clear(SCL);
        }
        fn read_bit(&mut self) -> bool {
            self.set(SDA);
            self.set(SCL);
            let b = self.sda_high();
            self.clear(SCL);
            b
        }
        /// Returns ACK.
        fn write_byte(&mut self, byte: u8) -> bool {
            (0..8).rev().for_each(|i| self.write_bit(byte & (1 << i) != 0));
            !self.read_bit()
        }
        fn read_byte(&mut self, ack: bool) -> u8 {
            let b = (0..8).fold(0u8, |acc, _| (acc << 1) | u8::from(self.read_bit()));
            self.write_bit(!ack);
            b
        }
        /// write [bytes] then (if n > 0) repeated START and read n bytes; None on address NACK.
        fn write_read(&mut self, addr: u8, bytes: &[u8], n: usize) -> Option<Vec<u8>> {
            self.start();
            if !self.write_byte(addr << 1) {
                self.stop();
                return None;
            }
            for &b in bytes {
                assert!(self.write_byte(b));
            }
            let mut out = Vec::new();
            if n > 0 {
                self.start();
                assert!(self.write_byte((addr << 1) | 1));
                for i in 0..n {
                    out.push(self.read_byte(i + 1 < n));
                }
            }
            self.stop();
            Some(out)
        }
    }

    fn bus_with_sensor() -> SbConI2c {
        let mut bus = SbConI2c::new();
        bus.attach("temp", 0x48, I2cDevice::Tmp105(Tmp105::new()));
        let mut m = Master { bus: &mut bus, irq: IrqLines::default(), out: Output::default() };
        m.set(SCL | SDA); // what SbConI2c::new() of the firmware does
        bus
    }

    #[test]
    fn tmp105_reads_at_12_and_9_bit_resolution() {
        let mut bus = bus_with_sensor();
        // 21562 m°C truncates to 0x158F (below 21.5625 °C), so 12 bits still read 21.5 °C.
        for (milli_c, bits12, bits9) in [
            (21_500, [0x15, 0x80], [0x15, 0x80]),
            (-4_250, [0xfb, 0xc0], [0xfb, 0x80]),
            (21_562, [0x15, 0x80], [0x15, 0x80]),
            (21_563, [0x15, 0x90], [0x15, 0x80]),
        ] {
            bus.tmp105_mut("temp").expect("attached").set_temperature(milli_c).expect("in range");
            let mut m = Master { bus: &mut bus, irq: IrqLines::default(), out: Output::default() };
            // Default configuration: 9 bits.
            assert_eq!(m.write_read(0x48, &[0x00], 2), Some(bits9.to_vec()), "{milli_c} at 9 bits");
            // Configuration: R1:R0 = 11 (12 bits), as the reference app does.
            assert_eq!(m.write_read(0x48, &[0x01, 0x60], 0), Some(vec![]));
            assert_eq!(m.write_read(0x48, &[0x01], 1), Some(vec![0x60]));
            assert_eq!(m.write_read(0x48, &[0x00], 2), Some(bits12.to_vec()), "{milli_c} at 12 bits");
            assert_eq!(m.write_read(0x48, &[0x01, 0x00], 0), Some(vec![]));
        }
    }

    #[test]
    fn absent_address_is_nacked_and_bus_recovers() {
        let mut bus = bus_with_sensor();
        let mut m = Master { bus: &mut bus, irq: IrqLines::default(), out: Output::default() };
        assert_eq!(m.write_read(0x49, &[0x00], 2), None);
        assert!(m.sda_high());
        assert_eq!(m.write_read(0x48, &[0x02], 2), Some(vec![0x4b, 0x00]), "T_LOW reset value");
        // Extra bytes past the register read 0xFF.
        assert_eq!(m.write_read(0x48, &[0x03], 3), Some(vec![0x50, 0x00, 0xff]));
    }

    #[test]
    fn limits_are_written_after_two_bytes_and_bad_offset_reads_ones() {
        let mut bus = bus_with_sensor();
        let mut m = Master { bus: &mut bus, irq: IrqLines::default(), out: Output::default() };
        assert_eq!(m.write_read(0x48, &[0x03, 0x12, 0x34], 0), Some(vec![]));
        assert_eq!(m.write_read(0x48, &[0x03], 2), Some(vec![0x12, 0x34]));
        let (b, mut c) = m.ctx();
        assert_eq!(b.read(0x08, Size::Word, &mut c), u32::MAX);
    }
}
