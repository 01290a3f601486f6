//! Board support for the **mps2-an385** (ARM AN385: a Cortex-M3 on the MPS2 FPGA board) as QEMU's
//! `-M mps2-an385` and twinbed's own engine model it.
//!
//! What is here: the memory map ([`map`]), the CMSDK APB UART used as console ([`uart`],
//! [`println!`]), a SysTick uptime clock ([`clock`]), the SBCon bit-banged I2C controller as an
//! `embedded-hal` 1.0 [`I2c`](embedded_hal::i2c::I2c) ([`i2c`]), the twinbed NOR flash controller as an `embedded-storage` `NorFlash` ([`flash`]), the
//! modem's UART1 as a `modem_at::Serial` ([`modem_uart`]), where the program lies in the
//! flash ([`image`]) and the testbed hooks ([`testbed`]).
//!
//! Everything is polled and single-core; nothing here allocates.
#![no_std]

pub mod clock;
pub mod flash;
pub mod fuel_gauge;
pub mod i2c;
pub mod image;
pub mod map;
pub mod modem_uart;
pub mod ota;
pub mod testbed;
pub mod uart;

/// Core clock of the board in Hz (QEMU's mps2 `SYSCLK_FRQ`, the AN385 FPGA image's 25 MHz).
pub const SYSCLK_HZ: u32 = 25_000_000;

/// Brings up what every program on this board needs: the UART0 console and the SysTick uptime
/// clock (interrupts on). Call once, first thing in `main`.
pub fn init() {
    uart::Uart::console().enable_tx();
    if let Some(p) = cortex_m::Peripherals::take() {
        clock::start(p.SYST);
    }
}
