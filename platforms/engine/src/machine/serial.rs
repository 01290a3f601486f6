//! UARTs attached to device models outside the machine (a modem): their output is diverted
//! and stamped with its virtual time, and bytes for the firmware go in.

use super::Machine;
use crate::periph::{Ctx, Device, OutputSource};

impl Machine {
    /// Attaches (or detaches) UART `uart` to a device model outside the machine, such as a
    /// modem: from now on its output no longer goes to [`Machine::take_output`] but to
    /// [`Machine::take_serial_tx`], and every byte it sends ends [`Machine::run`] with
    /// [`Stop::Serial`](super::Stop::Serial) right after the store that sent it, so the model sees it at its virtual
    /// time. Bytes for the firmware go in with [`Machine::serial_rx`].
    pub fn attach_serial(&mut self, uart: u8, attached: bool) {
        let bit = 1u32.checked_shl(u32::from(uart)).unwrap_or(0);
        if attached {
            self.serial_attached |= bit;
        } else {
            self.serial_attached &= !bit;
        }
    }

    /// The bytes attached UARTs sent since the last call: (virtual time in cycles, UART, byte).
    pub fn take_serial_tx(&mut self) -> Vec<(u64, u8, u8)> {
        std::mem::take(&mut self.serial_tx)
    }

    /// Queues `bytes` for UART `uart` to receive, now (the UART takes them as fast as the
    /// firmware reads them, as QEMU's character backends do). False if the board has no such
    /// UART.
    pub fn serial_rx(&mut self, uart: u8, bytes: &[u8]) -> bool {
        let Some(i) = self.periphs.iter().position(|p| p.model.serial_port() == Some(uart)) else {
            return false;
        };
        self.irq.select_source(i);
        let mut ctx = Ctx { now: self.now, clock_hz: self.clock_hz, irq: &mut self.irq, out: &mut self.out };
        for &b in bytes {
            self.periphs[i].model.serial_rx(b, &mut ctx);
        }
        self.next_event = 0;
        true
    }

    /// Moves the bytes of attached UARTs among the output since `from` to `serial_tx`.
    pub(super) fn divert_serial(&mut self, from: usize) {
        if self.serial_attached == 0 || self.out.bytes.len() <= from {
            return;
        }
        let (now, attached) = (self.now, self.serial_attached);
        let mut kept = from;
        for k in from..self.out.bytes.len() {
            let (source, byte) = self.out.bytes[k];
            match source {
                OutputSource::Uart(n) if attached & 1u32.checked_shl(u32::from(n)).unwrap_or(0) != 0 => {
                    self.serial_tx.push((now, n, byte));
                }
                _ => {
                    self.out.bytes[kept] = (source, byte);
                    kept += 1;
                }
            }
        }
        self.out.bytes.truncate(kept);
    }
}
