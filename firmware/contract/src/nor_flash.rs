//! The twinbed NOR flash controller (`twinbed-nor-flash`): a testbed device that programs and
//! erases one memory region of the board with NOR rules, in virtual time. The engine models it
//! (`platforms/engine/src/periph/nor_flash.rs`, which also says how it behaves); the BSP drives
//! it (`firmware/bsp/src/flash.rs`). QEMU has no such block: every register reads 0 there.
//!
//! All registers are 32 bits wide and accessed as words; offsets are from the controller's base.

/// The ID register's value: "TBFL" in little-endian bytes.
pub const ID: u32 = 0x4C46_4254;

/// Erase granularity, bytes (a page).
pub const PAGE_SIZE: u32 = 4096;
/// Row-program granularity, bytes (the row buffer's size).
pub const ROW_SIZE: u32 = 256;
/// Words in a row.
pub const ROW_WORDS: usize = ROW_SIZE as usize / 4;

/// Register offsets.
pub mod reg {
    /// ID (RO): [`super::ID`].
    pub const ID: u32 = 0x00;
    /// STATUS (RO, write 1 to clear [`super::status::W1C`]).
    pub const STATUS: u32 = 0x04;
    /// CTRL (RW): bit 0 raises the interrupt on DONE or any error.
    pub const CTRL: u32 = 0x08;
    /// ADDR (RW): absolute address of the word (PROGRAM), row (PROGRAM_ROW) or page (ERASE).
    pub const ADDR: u32 = 0x0c;
    /// DATA (RW): the word to program.
    pub const DATA: u32 = 0x10;
    /// CMD (WO): one of [`super::cmd`].
    pub const CMD: u32 = 0x14;
    /// PAGE_SIZE (RO): [`super::PAGE_SIZE`].
    pub const PAGE_SIZE: u32 = 0x18;
    /// BASE (RO): first address of the flash.
    pub const BASE: u32 = 0x1c;
    /// SIZE (RO): bytes of flash.
    pub const SIZE: u32 = 0x20;
    /// OPS (RO): operations started since the machine was built.
    pub const OPS: u32 = 0x24;
    /// ROW_SIZE (RO): [`super::ROW_SIZE`].
    pub const ROW_SIZE: u32 = 0x28;
    /// ROW[0..64] (RW): the row buffer PROGRAM_ROW programs, one word per 4 bytes.
    pub const ROW: u32 = 0x100;
}

/// CMD values.
pub mod cmd {
    /// Program the word DATA at ADDR (bits can only be cleared).
    pub const PROGRAM: u32 = 1;
    /// Erase the page at ADDR to 0xFF.
    pub const ERASE: u32 = 2;
    /// Program the row at ADDR from the row buffer.
    pub const PROGRAM_ROW: u32 = 3;
}

/// STATUS bits.
pub mod status {
    /// An operation is in flight.
    pub const BUSY: u32 = 1 << 0;
    /// The last operation completed.
    pub const DONE: u32 = 1 << 1;
    /// Misaligned address.
    pub const ALIGN_ERR: u32 = 1 << 2;
    /// Address outside the flash.
    pub const RANGE_ERR: u32 = 1 << 3;
    /// A PROGRAM asked for a 0 -> 1 change.
    pub const PROG_ERR: u32 = 1 << 4;
    /// A command came while busy.
    pub const BUSY_ERR: u32 = 1 << 5;
    /// Every error bit.
    pub const ERRORS: u32 = ALIGN_ERR | RANGE_ERR | PROG_ERR | BUSY_ERR;
    /// Bits the guest clears by writing 1 (DONE and the errors).
    pub const W1C: u32 = DONE | ERRORS;
}
