//! The mps2-an385 memory map (AN385 §3, and QEMU hw/arm/mps2.c for the parts QEMU models).

/// CMSDK APB UART0, the console (QEMU: first `-serial`).
pub const UART0: usize = 0x4000_4000;
/// CMSDK APB UART1 (reserved for the cellular modem model).
pub const UART1: usize = 0x4000_5000;
/// SBCon I2C controller that carries the board's sensors (QEMU attaches `-device tmp105` here).
pub const I2C_SENSORS: usize = 0x4002_A000;
/// 7-bit I2C address of the TMP105 temperature sensor on [`I2C_SENSORS`].
pub const TMP105_ADDR: u8 = 0x48;
/// twinbed's NOR flash controller (a testbed device; QEMU reads 0 there).
pub const FLASH_CTRL: usize = 0x4003_0000;
