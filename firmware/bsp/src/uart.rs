//! CMSDK APB UART (ARM Cortex-M System Design Kit Technical Reference Manual, DDI 0479, §4.3).
//!
//! Polled. The console is UART0 (transmit only); [`println!`](crate::println) writes to it. The
//! modem's UART1 also receives ([`crate::modem_uart`]).
//!
//! Receive: STATE.RXFULL set means DATA holds a byte; reading DATA takes it and clears RXFULL.
//! The buffer is one byte; a byte arriving while it is full sets STATE.RXOVERRUN (write 1 to
//! clear).

use core::fmt;
use core::ptr::{read_volatile, write_volatile};

/// Register offsets (CMSDK TRM table 4-5).
#[repr(usize)]
#[derive(Clone, Copy)]
enum Reg {
    /// DATA: write to transmit, read to receive.
    Data = 0x00,
    /// STATE: bit 0 TX buffer full, bit 1 RX buffer full.
    State = 0x04,
    /// CTRL: bit 0 TX enable, bit 1 RX enable, bit 3 RX interrupt enable.
    Ctrl = 0x08,
    /// INTSTATUS (read) / INTCLEAR (write 1 to clear): bit 0 TX, bit 1 RX interrupt.
    IntStatus = 0x0C,
    /// BAUDDIV: baud rate divider, at least 16.
    BaudDiv = 0x10,
}

const STATE_TX_FULL: u32 = 1 << 0;
const STATE_RX_FULL: u32 = 1 << 1;
/// Write 1 to clear.
const STATE_RX_OVERRUN: u32 = 1 << 3;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;
const CTRL_RX_INT_EN: u32 = 1 << 3;
const INT_RX: u32 = 1 << 1;

/// One CMSDK UART, by base address. Zero-sized handle: copies are free and share the device.
#[derive(Clone, Copy, Debug)]
pub struct Uart {
    base: usize,
}

impl Uart {
    /// The UART at `base`.
    pub const fn new(base: usize) -> Self {
        Self { base }
    }

    /// UART0, the console.
    pub const fn console() -> Self {
        Self::new(crate::map::UART0)
    }

    fn read(&self, reg: Reg) -> u32 {
        // SAFETY: `base` is a CMSDK UART on this board; registers are 32-bit and side-effect free
        // to read except DATA, which is not read here.
        unsafe { read_volatile((self.base + reg as usize) as *const u32) }
    }

    fn write(&self, reg: Reg, value: u32) {
        // SAFETY: as in `read`; writing these registers has no effect on memory safety.
        unsafe { write_volatile((self.base + reg as usize) as *mut u32, value) }
    }

    /// Enables the transmitter. BAUDDIV is set to 16 (the minimum; 1.56 Mbaud at 25 MHz), which
    /// no emulator checks but real hardware needs to be non-zero.
    pub fn enable_tx(&self) {
        self.write(Reg::BaudDiv, 16);
        self.write(Reg::Ctrl, self.read(Reg::Ctrl) | CTRL_TX_EN);
    }

    /// Enables the receiver (and sets BAUDDIV as [`Uart::enable_tx`] does).
    pub fn enable_rx(&self) {
        self.write(Reg::BaudDiv, 16);
        self.write(Reg::Ctrl, self.read(Reg::Ctrl) | CTRL_RX_EN);
    }

    /// Enables the receive interrupt: the UART's RX interrupt output rises when a byte arrives
    /// and stays up until [`Uart::clear_rx_interrupt`].
    pub fn enable_rx_interrupt(&self) {
        self.write(Reg::Ctrl, self.read(Reg::Ctrl) | CTRL_RX_INT_EN);
    }

    /// Clears the receive interrupt status (a byte waiting in DATA stays there).
    pub fn clear_rx_interrupt(&self) {
        self.write(Reg::IntStatus, INT_RX);
    }

    /// Sends one byte, waiting while the transmit buffer is full.
    pub fn write_byte(&self, byte: u8) {
        while self.read(Reg::State) & STATE_TX_FULL != 0 {}
        self.write(Reg::Data, u32::from(byte));
    }

    /// True when a received byte waits in DATA.
    pub fn rx_ready(&self) -> bool {
        self.read(Reg::State) & STATE_RX_FULL != 0
    }

    /// The received byte, if one waits (non-blocking), and whether an overrun had been flagged
    /// (the flag is cleared).
    pub fn read_byte(&self) -> (Option<u8>, bool) {
        let state = self.read(Reg::State);
        let overrun = state & STATE_RX_OVERRUN != 0;
        if overrun {
            self.write(Reg::State, STATE_RX_OVERRUN);
        }
        // SAFETY: as in `read`; reading DATA takes the received byte, which is what is wanted.
        let byte = (state & STATE_RX_FULL != 0)
            .then(|| unsafe { read_volatile((self.base + Reg::Data as usize) as *const u32) } as u8);
        (byte, overrun)
    }
}

impl fmt::Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(|b| self.write_byte(b));
        Ok(())
    }
}

/// Prints to the UART0 console, like `std::print!`.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = write!($crate::uart::Uart::console(), $($arg)*);
    }};
}

/// Prints a line to the UART0 console, like `std::println!`.
#[macro_export]
macro_rules! println {
    () => { $crate::print!("\n") };
    ($($arg:tt)*) => {{
        use core::fmt::Write as _;
        let _ = writeln!($crate::uart::Uart::console(), $($arg)*);
    }};
}
