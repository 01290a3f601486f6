//! The A/B update layout of the board's flash: where the bootloader, the two image slots and the
//! boot id log lie, and what a slot holds besides the program.
//!
//! The flash is mps2-an385's SSRAM1 (4 MiB at address 0, which twinbed's NOR flash controller
//! programs); it starts at 0, so these flash offsets are also CPU addresses.
//!
//! ```text
//! 0x0000_0000  BOOT     the bootloader (128 KiB)
//! 0x0002_0000  SLOT_A   | HEADER (0x400) | code, TLVs ... | trailer page (4 KiB) |
//! 0x000A_0000  SLOT_B   the same (512 KiB each)
//! 0x0012_0000  BOOT_ID  the boot id log (two 4 KiB pages)
//! 0x0012_2000  ...      the rest of SSRAM1, unused by the layout
//! ```
//!
//! Who uses it: the BSP's build script links programs for these places (`TWINBED_SLOT=boot|a|b`
//! generates the linker script's `FLASH` region from [`BOOT`] and [`code`]); the bootloader and
//! the app build abboot's `Layout` from [`SLOT_A`] and [`SLOT_B`]; the app keeps its boot id in
//! [`BOOT_ID`]; the host (`twinbed::ab`) signs images for [`SLOT_SIZE`] with [`HEADER`] and
//! loads them at [`SLOT_A`] / [`SLOT_B`].

use crate::version::Slot;
use core::ops::Range;

/// The erase page the layout is built from: the twinbed NOR flash controller's page (4 KiB).
/// Every area below starts and ends on a page boundary.
pub const PAGE: u32 = crate::nor_flash::PAGE_SIZE;

/// The bootloader (128 KiB at the start of the flash, where the CPU fetches its vector table).
pub const BOOT: Range<u32> = 0x0000_0000..0x0002_0000;

/// Size of each image slot (512 KiB): what `imgtool sign --slot-size` takes.
pub const SLOT_SIZE: u32 = 0x0008_0000;

/// Slot A: an MCUboot image (header, code, TLVs), its trailer in the last bytes. Right after the
/// bootloader.
pub const SLOT_A: Range<u32> = BOOT.end..BOOT.end + SLOT_SIZE;

/// Slot B, right after slot A.
pub const SLOT_B: Range<u32> = SLOT_A.end..SLOT_A.end + SLOT_SIZE;

/// The MCUboot image header before a slot's code (`imgtool sign --header-size 0x400`): 1 KiB,
/// not imgtool's usual 0x200, because cortex-m-rt's vector table (16 + 240 entries) must be
/// aligned to 1 KiB and it comes right after the header.
pub const HEADER: u32 = 0x400;

/// The last page of each slot, kept for the slot's trailer (abboot's flags and MCUboot's
/// magic): no slot-linked program's code reaches it.
pub const TRAILER_PAGE: u32 = PAGE;

/// The boot id log (the uplink's `boot_id`): two pages right after slot B. Nothing else writes
/// here: the bootloader and the OTA agent only erase and program inside the slots, slot programs
/// are linked inside their slots ([`code`]) and the bootloader inside [`BOOT`], and a plain
/// program (linked at 0 with the whole SSRAM1, QEMU-style) checks at run time that its image
/// ends before this area before it writes.
pub const BOOT_ID: Range<u32> = SLOT_B.end..SLOT_B.end + 2 * PAGE;

/// The slot's area of the flash.
pub const fn slot(slot: Slot) -> Range<u32> {
    match slot {
        Slot::A => SLOT_A,
        Slot::B => SLOT_B,
    }
}

/// Where a program linked for `slot` puts its code (the linker script's `FLASH` region): after
/// the image header, up to the slot's trailer page.
pub const fn code(slot: Slot) -> Range<u32> {
    let area = self::slot(slot);
    area.start + HEADER..area.end - TRAILER_PAGE
}

// The areas follow each other without overlap, on page boundaries, and the boot id log comes
// after everything a program can be linked into.
const _: () = assert!(BOOT.end <= SLOT_A.start && SLOT_A.end <= SLOT_B.start && SLOT_B.end <= BOOT_ID.start);
const _: () = assert!(
    BOOT.start.is_multiple_of(PAGE)
        && BOOT.end.is_multiple_of(PAGE)
        && SLOT_SIZE.is_multiple_of(PAGE)
        && SLOT_A.start.is_multiple_of(PAGE)
        && SLOT_B.start.is_multiple_of(PAGE)
        && BOOT_ID.start.is_multiple_of(PAGE)
        && BOOT_ID.end - BOOT_ID.start == 2 * PAGE
);
const _: () = assert!(HEADER.is_multiple_of(0x400) && HEADER + TRAILER_PAGE < SLOT_SIZE);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layout_is_the_one_firmware_and_host_were_built_for() {
        // The addresses every signed image, linker script and README table were made with.
        assert_eq!(BOOT, 0x0000_0000..0x0002_0000);
        assert_eq!(SLOT_A, 0x0002_0000..0x000A_0000);
        assert_eq!(SLOT_B, 0x000A_0000..0x0012_0000);
        assert_eq!(BOOT_ID, 0x0012_0000..0x0012_2000);
        assert_eq!(code(Slot::A), 0x0002_0400..0x0009_F000);
        assert_eq!(code(Slot::B), 0x000A_0400..0x0011_F000);
        assert_eq!(slot(Slot::B), SLOT_B);
    }
}
