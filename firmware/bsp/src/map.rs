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
/// offsets equal addresses: the flash starts at 0). `firmware/bsp/build.rs` links programs for
/// these places (`TWINBED_SLOT=boot|a|b`); keep the two in step.
pub mod ab {
    use core::ops::Range;

    /// The bootloader.
    pub const BOOT: Range<u32> = 0x0000_0000..0x0002_0000;
    /// Slot A (512 KiB): an MCUboot image (header, code, TLVs), its trailer in the last bytes.
    pub const SLOT_A: Range<u32> = 0x0002_0000..0x000A_0000;
    /// Slot B (512 KiB).
    pub const SLOT_B: Range<u32> = 0x000A_0000..0x0012_0000;
    /// The MCUboot image header before the code (`imgtool sign --header-size 0x400`): 1 KiB, so
    /// that the vector table after it has the 1 KiB alignment cortex-m-rt requires.
    pub const HEADER: u32 = 0x400;

    /// The slot this program was linked for (`TWINBED_SLOT` at build time): `Some('A')`,
    /// `Some('B')`, or `None` for a plain or bootloader build.
    pub const LINKED_SLOT: Option<char> = match option_env!("TWINBED_SLOT") {
        Some(s) if s.len() == 1 && s.as_bytes()[0] == b'a' => Some('A'),
        Some(s) if s.len() == 1 && s.as_bytes()[0] == b'b' => Some('B'),
        _ => None,
    };
}

/// The boot id log (`netlink::boot_id`): two 4 KiB pages of the flash right after the A/B
/// layout, in flash offsets. Nothing else writes here: the bootloader and the OTA agent only
/// erase and program inside an abboot `Layout` of [`ab::SLOT_A`] and [`ab::SLOT_B`],
/// `firmware/bsp/build.rs` links slot programs inside their slots and the bootloader inside
/// [`ab::BOOT`], and a plain program (linked at 0 with the whole SSRAM1, QEMU-style) checks at
/// run time that its image ends before this area before it writes ([`crate::image::end`]).
pub const BOOT_ID: core::ops::Range<u32> = 0x0012_0000..0x0012_2000;

const _: () = assert!(BOOT_ID.start >= ab::SLOT_B.end && BOOT_ID.start >= ab::SLOT_A.end);
const _: () = assert!(BOOT_ID.start.is_multiple_of(4096) && BOOT_ID.end - BOOT_ID.start == 2 * 4096);
