//! The twinbed OTA feed (`twinbed-ota-feed`, at [`map::OTA_FEED`]): the host-side channel an
//! OTA agent downloads an update from in tests (the modem and MQTT path comes later). A
//! testbed device: [`Feed::take`] returns `None` on QEMU, where its ID reads 0.
//!
//! Register map: [`twinbed_contract::ota_feed`].

use crate::map;
use core::ptr::{read_volatile, write_volatile};

/// The ID register's value when the feed is there ("TBOT").
pub use twinbed_contract::ota_feed::ID;
use twinbed_contract::ota_feed::{reg as r, status::STALL};

/// The feed.
pub struct Feed(());

impl Feed {
    /// The feed, if the board has one (twinbed's engine).
    pub fn take() -> Option<Feed> {
        (reg(r::ID) == ID).then_some(Feed(()))
    }

    /// Bytes of the image on offer (0: nothing).
    pub fn size(&self) -> u32 {
        reg(r::SIZE)
    }

    /// Bytes that have arrived so far.
    pub fn available(&self) -> u32 {
        reg(r::AVAIL)
    }

    /// The word at byte `offset` (word-aligned, below [`Feed::available`]); `None` if it has
    /// not arrived.
    pub fn word(&mut self, offset: u32) -> Option<u32> {
        set(r::OFFSET, offset);
        let w = reg(r::DATA);
        if reg(r::STATUS) & STALL != 0 {
            set(r::STATUS, STALL);
            return None;
        }
        Some(w)
    }

    /// Copies the image's bytes at `offset` into `buf` (whole words; `offset` and `buf.len()`
    /// multiples of 4); false if some have not arrived. One register read per word: DATA
    /// advances OFFSET by itself.
    pub fn read(&mut self, offset: u32, buf: &mut [u8]) -> bool {
        set(r::STATUS, STALL);
        set(r::OFFSET, offset);
        for chunk in buf.chunks_mut(4) {
            chunk.copy_from_slice(&reg(r::DATA).to_le_bytes()[..chunk.len()]);
        }
        if reg(r::STATUS) & STALL != 0 {
            set(r::STATUS, STALL);
            return false;
        }
        true
    }
}

fn reg(offset: u32) -> u32 {
    // SAFETY: a register of the feed (or a RAZ/WI hole on QEMU); reading DATA advances the
    // feed's position, which `word` sets before each read.
    unsafe { read_volatile((map::OTA_FEED + offset as usize) as *const u32) }
}

fn set(offset: u32, value: u32) {
    // SAFETY: a register of the feed; writes go nowhere on QEMU.
    unsafe { write_volatile((map::OTA_FEED + offset as usize) as *mut u32, value) }
}
