//! The modem's serial port: a CMSDK APB UART (DDI 0479, §4.3) with transmitter and receiver
//! on, polled, as a [`modem_at::Serial`]. The modem is on UART1 ([`map::UART1`](crate::map::UART1)).
//!
//! - Transmit: each byte waits for STATE.TXFULL to clear, then goes to DATA (the emulators
//!   send at once, so this never waits there).
//! - Receive: non-blocking. STATE.RXFULL set means DATA holds a byte; reading DATA takes it and
//!   clears RXFULL. The receive buffer is one byte: QEMU's character backend and twinbed's
//!   engine hold further input back while it is full (no overrun from the modem's side), so
//!   polling loses nothing however late it comes. Real hardware would overrun after one byte
//!   time (87 µs at 115200 baud): STATE.RXOVERRUN is cleared (write 1) and counted in
//!   [`ModemUart::overruns`], and the AT client's parser recovers at the next line.
//! - Sleeping ([`ModemUart::sleep_until`]): tickless (`crate::clock::sleep_until`), woken by
//!   the deadline or by the receive interrupt: CTRL.RXINTEN is on, and UART1's RX interrupt
//!   (IRQ 2) is enabled in the NVIC only while the core sleeps; the program's `DefaultHandler`
//!   must hand it to `crate::clock::on_wake_interrupt` (the app does). A byte that came while
//!   the core was awake is seen before sleeping (RXFULL). No WFE: QEMU's WFE is only a yield, and under `-icount` a WFE
//!   loop made virtual time crawl. On twinbed's engine a waiting message arrives whole as soon
//!   as the first byte is read (the model delivers the next byte as the buffer empties); on
//!   QEMU the next byte comes from its I/O loop a little later (not measured: QEMU with a
//!   modem is not deterministic anyway).

use crate::uart::Uart;
use core::sync::atomic::{AtomicU32, Ordering};

static OVERRUNS: AtomicU32 = AtomicU32::new(0);

/// A CMSDK UART used both ways ([`Uart`] with its receiver on). Copies share the device.
#[derive(Clone, Copy, Debug)]
pub struct ModemUart {
    uart: Uart,
    /// The NVIC number of the UART's receive interrupt.
    rx_irq: u32,
}

impl ModemUart {
    /// The UART at `base`, with TX and RX enabled and BAUDDIV at 16 (the minimum; the
    /// emulators do not time bytes, a board would set the divider for 115200 baud).
    /// `rx_irq` is its receive interrupt's NVIC number (used to wake from sleep).
    pub fn new(base: usize, rx_irq: u32) -> Self {
        let uart = Uart::new(base);
        uart.enable_tx();
        uart.enable_rx();
        uart.enable_rx_interrupt();
        ModemUart { uart, rx_irq }
    }

    /// UART1, the modem's.
    pub fn uart1() -> Self {
        Self::new(crate::map::UART1, crate::map::UART1_RX_IRQ)
    }

    /// True when a received byte waits in DATA.
    pub fn rx_ready(&self) -> bool {
        self.uart.rx_ready()
    }

    /// Sleeps until the uptime clock reaches `deadline_ms` (wrapping-aware) or a received byte
    /// waits, whichever is first. `depth` [`Depth::Deep`](crate::clock::Depth) only when no
    /// byte is expected: on the MCUs this board stands for, a UART does not receive in deep
    /// sleep (twinbed's engine and QEMU deliver the byte anyway).
    pub fn sleep_until(&self, deadline_ms: u32, depth: crate::clock::Depth) {
        let uart = self.uart;
        crate::clock::sleep_until(deadline_ms, depth, Some(self.rx_irq), || {
            uart.clear_rx_interrupt();
            uart.rx_ready()
        });
    }

    /// Receive overruns seen since boot (never on the emulators).
    pub fn overruns() -> u32 {
        OVERRUNS.load(Ordering::Relaxed)
    }
}

impl modem_at::Serial for ModemUart {
    fn write(&mut self, bytes: &[u8]) {
        bytes.iter().for_each(|&b| self.uart.write_byte(b));
    }

    fn read_byte(&mut self) -> Option<u8> {
        let (byte, overrun) = self.uart.read_byte();
        if overrun {
            OVERRUNS.fetch_add(1, Ordering::Relaxed);
        }
        byte
    }
}
