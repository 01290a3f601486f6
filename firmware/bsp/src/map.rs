//! The mps2-an385 memory map (AN385 §3, and QEMU hw/arm/mps2.c for the parts QEMU models).

/// CMSDK APB UART0, the console (QEMU: first `-serial`).
pub const UART0: usize = 0x4000_4000;
/// CMSDK APB UART1: the cellular modem (twinbed's virtual modem, PROTOCOL.md §1; nothing
/// answers on QEMU or on an engine without a modem). See [`crate::modem_uart`].
pub const UART1: usize = 0x4000_5000;
/// UART1's receive interrupt (RXINT) on mps2-an385's NVIC.
pub const UART1_RX_IRQ: u32 = 2;
/// CMSDK APB timer0 (the uptime clock's QEMU kick, [`crate::clock`]).
pub const TIMER0: usize = 0x4000_0000;
/// MPS2 FPGA I/O block (AN385 §3.9): its COUNTER is the uptime clock's time base
/// ([`crate::clock`]).
pub const FPGAIO: usize = 0x4002_8000;
/// SBCon I2C controller that carries the board's sensors (QEMU attaches `-device tmp105` here).
pub const I2C_SENSORS: usize = 0x4002_A000;
/// 7-bit I2C address of the TMP105 temperature sensor on [`I2C_SENSORS`].
pub const TMP105_ADDR: u8 = 0x48;
/// Data RAM (ZBT SSRAM2/3) base.
pub const RAM_BASE: u32 = 0x2000_0000;
/// Data RAM size (4 MiB).
pub const RAM_SIZE: u32 = 0x0040_0000;
/// twinbed's OTA feed, the host-side update channel of tests (a testbed device; QEMU reads 0).
pub const OTA_FEED: usize = 0x4003_1000;
/// twinbed's NOR flash controller (a testbed device; QEMU reads 0 there).
pub const FLASH_CTRL: usize = 0x4003_0000;
/// twinbed's fuel gauge (a testbed device; QEMU reads 0 there).
pub const FUEL_GAUGE: usize = 0x4003_2000;
/// The flash controller's interrupt (IRQ 31 on mps2-an385; not wired on QEMU).
pub const FLASH_IRQ: u32 = 31;

/// The A/B update layout of SSRAM1, the flash the [`crate::flash`] controller programs (flash
/// offsets equal addresses: the flash starts at 0): the contract's
/// [`twinbed_contract::layout`], which `firmware/bsp/build.rs` also links programs for
/// (`TWINBED_SLOT=boot|a|b`), plus the slot this program was linked for.
pub mod ab {
    pub use twinbed_contract::layout::{
        code, slot, BOOT, HEADER, PAGE, SLOT_A, SLOT_B, SLOT_SIZE, TRAILER_PAGE,
    };
    use twinbed_contract::version::Slot;

    /// The slot this program was linked for (`TWINBED_SLOT` at build time): `Some(Slot::A)`,
    /// `Some(Slot::B)`, or `None` for a plain or bootloader build.
    pub const LINKED_SLOT: Option<Slot> = match option_env!("TWINBED_SLOT") {
        Some(s) if s.len() == 1 && s.as_bytes()[0] == b'a' => Some(Slot::A),
        Some(s) if s.len() == 1 && s.as_bytes()[0] == b'b' => Some(Slot::B),
        _ => None,
    };
}

/// The boot id log (`uplink::boot_id`): two 4 KiB pages of the flash right after the A/B
/// layout, in flash offsets ([`twinbed_contract::layout::BOOT_ID`], which says why nothing else
/// writes there). A plain program checks at run time that its image ends before this area
/// before it writes ([`crate::image::end`]).
pub use twinbed_contract::layout::BOOT_ID;
