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
//! - Sleeping ([`ModemUart::sleep_until`]): WFI, woken by the SysTick clock every tick
//!   (10 ms), looking at STATE.RXFULL at each wake-up. No interrupt: waking on the RX
//!   interrupt as a WFE event (SCR.SEVONPEND) works on twinbed's engine, but QEMU's WFE is
//!   only a yield, and under `-icount` a WFE loop made virtual time crawl (the no-modem test run
//!   timed out after one sample). On twinbed's engine a waiting message arrives whole as soon
//!   as the first byte is read (the model delivers the next byte as the buffer empties); on
//!   QEMU the next byte comes from its I/O loop a little later, possibly only after the next
//!   tick, so a `+QMTRECV` may take several ticks there (not measured: QEMU with a modem is not
//!   deterministic anyway).

use crate::uart::Uart;
use core::sync::atomic::{AtomicU32, Ordering};

static OVERRUNS: AtomicU32 = AtomicU32::new(0);

/// A CMSDK UART used both ways ([`Uart`] with its receiver on). Copies share the device.
#[derive(Clone, Copy, Debug)]
pub struct ModemUart {
    uart: Uart,
}

impl ModemUart {
    /// The UART at `base`, with TX and RX enabled and BAUDDIV at 16 (the minimum; the
    /// emulators do not time bytes, a board would set the divider for 115200 baud).
    pub fn new(base: usize) -> Self {
        let uart = Uart::new(base);
        uart.enable_tx();
        uart.enable_rx();
        ModemUart { uart }
    }

    /// UART1, the modem's.
    pub fn uart1() -> Self {
        Self::new(crate::map::UART1)
    }

    /// True when a received byte waits in DATA.
    pub fn rx_ready(&self) -> bool {
        self.uart.rx_ready()
    }

    /// Sleeps (WFI) until the uptime clock reaches `deadline_ms` (wrapping-aware) or a received
    /// byte waits, whichever is first; the byte is seen at the first SysTick after it came.
    pub fn sleep_until(&self, deadline_ms: u32) {
        while (deadline_ms.wrapping_sub(crate::clock::uptime_ms()) as i32) > 0 && !self.rx_ready() {
            cortex_m::asm::wfi();
        }
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
