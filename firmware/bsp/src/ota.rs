//! The twinbed OTA feed (`twinbed-ota-feed`, at [`map::OTA_FEED`]): the host-side channel an
//! OTA agent downloads an update from in tests (the modem and MQTT path comes later). A
//! testbed device: [`Feed::take`] returns `None` on QEMU, where its ID reads 0.
//!
//! Register map: `platforms/engine/src/periph/ota_feed.rs` in the twinbed repository.

use crate::map;
use core::ptr::{read_volatile, write_volatile};

/// The ID register's value when the feed is there.
pub const ID: u32 = 0x544F_4254;

/// The feed.
pub struct Feed(());

impl Feed {
    /// The feed, if the board has one (twinbed's engine).
    pub fn take() -> Option<Feed> {
        (reg(0x00) == ID).then_some(Feed(()))
    }

    /// Bytes of the image on offer (0: nothing).
    pub fn size(&self) -> u32 {
        reg(0x04)
    }

    /// Bytes that have arrived so far.
    pub fn available(&self) -> u32 {
        reg(0x08)
    }

    /// The word at byte `offset` (word-aligned, below [`Feed::available`]); `None` if it has
    /// not arrived.
    pub fn word(&mut self, offset: u32) -> Option<u32> {
        set(0x0c, offset);
        let w = reg(0x10);
        if reg(0x14) & 1 != 0 {
            set(0x14, 1);
            return None;
        }
        Some(w)
    }

    /// Copies the image's bytes at `offset` into `buf` (whole words; `offset` and `buf.len()`
    /// multiples of 4); false if some have not arrived. One register read per word: DATA
    /// advances OFFSET by itself.
    pub fn read(&mut self, offset: u32, buf: &mut [u8]) -> bool {
        set(0x14, 1);
        set(0x0c, offset);
        for chunk in buf.chunks_mut(4) {
            chunk.copy_from_slice(&reg(0x10).to_le_bytes()[..chunk.len()]);
        }
        if reg(0x14) & 1 != 0 {
            set(0x14, 1);
            return false;
        }
        true
    }
}

fn reg(offset: usize) -> u32 {
    // SAFETY: a register of the feed (or a RAZ/WI hole on QEMU); reading DATA advances the
    // feed's position, which `word` sets before each read.
    unsafe { read_volatile((map::OTA_FEED + offset) as *const u32) }
}

fn set(offset: usize, value: u32) {
    // SAFETY: a register of the feed; writes go nowhere on QEMU.
    unsafe { write_volatile((map::OTA_FEED + offset) as *mut u32, value) }
}
