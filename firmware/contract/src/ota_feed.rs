//! The twinbed OTA feed (`twinbed-ota-feed`): a testbed device through which the host offers an
//! update image and the firmware reads it a word at a time, as much of it as has "arrived". The
//! engine models it (`platforms/engine/src/periph/ota_feed.rs`); the BSP drives it
//! (`firmware/bsp/src/ota.rs`). QEMU has no such block: every register reads 0 there.
//!
//! All registers are 32 bits wide and accessed as words; offsets are from the feed's base.

/// The ID register's value: "TBOT" in little-endian bytes.
pub const ID: u32 = 0x544F_4254;

/// Register offsets.
pub mod reg {
    /// ID (RO): [`super::ID`].
    pub const ID: u32 = 0x00;
    /// SIZE (RO): bytes of the image on offer (0: none).
    pub const SIZE: u32 = 0x04;
    /// AVAIL (RO): bytes that have arrived (at most SIZE).
    pub const AVAIL: u32 = 0x08;
    /// OFFSET (RW): byte offset of the next DATA read (word-aligned).
    pub const OFFSET: u32 = 0x0c;
    /// DATA (RO): the word at OFFSET, which then advances by 4; reading at or past AVAIL
    /// returns 0 and sets [`super::status::STALL`].
    pub const DATA: u32 = 0x10;
    /// STATUS (RO, write 1 to clear).
    pub const STATUS: u32 = 0x14;
}

/// STATUS bits.
pub mod status {
    /// A DATA read came before its data arrived.
    pub const STALL: u32 = 1 << 0;
}
