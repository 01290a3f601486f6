//! Where the slots and their trailers are.

use crate::Slot;
use core::ops::Range;
use embedded_storage::nor_flash::NorFlash;

/// MCUboot's trailer magic (`boot_img_magic`, four little-endian words `0xf395c277 0x7fefd260
/// 0x0f505235 0x8079b62c`), the last 16 bytes of a slot once it is marked.
pub const MAGIC: [u8; 16] =
    [0x77, 0xc2, 0x95, 0xf3, 0x60, 0xd2, 0xef, 0x7f, 0x35, 0x52, 0x50, 0x0f, 0x2c, 0xb6, 0x79, 0x80];

/// The field pitch of the trailer by default: MCUboot's `BOOT_MAX_ALIGN` and imgtool's
/// default `--max-align`, 8 bytes.
pub const DEFAULT_ALIGN: u32 = 8;

/// The largest field pitch supported (fields are read into a stack buffer of this size).
pub const MAX_ALIGN: u32 = 64;

/// The value of a set flag in its field's first byte (MCUboot's `BOOT_FLAG_SET`); the rest of
/// the field stays erased.
pub const FLAG_SET: u8 = 0x01;

/// The fields of a slot's trailer, from the end of the slot backwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    /// MCUboot's magic: the slot holds a complete image that was marked (pending or confirmed).
    Magic,
    /// MCUboot's `image_ok`: the image is confirmed.
    Confirmed,
    /// MCUboot's `copy_done`, which direct-XIP-with-revert uses as "selected to run": the
    /// bootloader started this image's trial.
    Trial,
    /// MCUboot's `swap_info`: never written by abboot (MCUboot's own `set_pending` writes it;
    /// abboot ignores it, but a blank trailer needs it erased).
    SwapInfo,
    /// abboot's own flag, in the place of MCUboot's `swap_size` (used by MCUboot's swap modes
    /// only, never in direct-XIP): the image was refused for good (failed trial, downgrade).
    Rejected,
}

impl Field {
    /// Every field, in address order (lowest first).
    pub const ALL: [Field; 5] =
        [Field::Rejected, Field::SwapInfo, Field::Trial, Field::Confirmed, Field::Magic];
}

/// The two slots and the trailer's field pitch. Offsets are in the flash's own address space
/// (as passed to `NorFlash::read`/`write`/`erase`), not the CPU's memory map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    slots: [Range<u32>; 2],
    align: u32,
}

/// Why a [`Layout`] does not fit a flash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// The field pitch must be a power of two from 8 to [`MAX_ALIGN`] and a multiple of the
    /// flash's write and read sizes (so each field is programmed on its own).
    #[error("trailer alignment {align} does not suit write size {write_size} / read size {read_size} (a power of two, 8..=64, multiple of both)")]
    BadAlign {
        /// The pitch asked for.
        align: u32,
        /// The flash's `WRITE_SIZE`.
        write_size: usize,
        /// The flash's `READ_SIZE`.
        read_size: usize,
    },
    /// A slot does not start and end on erase-sector boundaries.
    #[error("slot {slot} is not aligned to the {erase_size}-byte erase sectors")]
    NotSectorAligned {
        /// The slot.
        slot: Slot,
        /// The flash's `ERASE_SIZE`.
        erase_size: usize,
    },
    /// A slot ends past the end of the flash.
    #[error("slot {slot} ends past the flash's {capacity} bytes")]
    OutOfBounds {
        /// The slot.
        slot: Slot,
        /// The flash's capacity.
        capacity: usize,
    },
    /// The slots overlap.
    #[error("slots A and B overlap")]
    Overlap,
    /// A slot has no room for an image besides its trailer.
    #[error("slot {slot} ({len} bytes) has no room besides its {trailer}-byte trailer")]
    TooSmall {
        /// The slot.
        slot: Slot,
        /// Its length.
        len: u32,
        /// The trailer's length.
        trailer: u32,
    },
}

impl Layout {
    /// Slots A and B at these flash offsets, with the default field pitch ([`DEFAULT_ALIGN`]).
    pub const fn new(a: Range<u32>, b: Range<u32>) -> Layout {
        Layout { slots: [a, b], align: DEFAULT_ALIGN }
    }

    /// The same slots with another field pitch (imgtool's `--max-align`; needed when the
    /// flash's write size is above 8).
    pub const fn with_align(self, align: u32) -> Layout {
        Layout { slots: self.slots, align }
    }

    /// The field pitch.
    pub const fn align(&self) -> u32 {
        self.align
    }

    /// The whole slot.
    pub fn slot(&self, slot: Slot) -> Range<u32> {
        self.slots[slot.index()].clone()
    }

    /// Length of the magic field: 16 bytes rounded up to the pitch.
    pub const fn magic_len(&self) -> u32 {
        16u32.div_ceil(self.align) * self.align
    }

    /// Length of the trailer: magic, then four flag fields of one pitch each.
    pub const fn trailer_len(&self) -> u32 {
        self.magic_len() + 4 * self.align
    }

    /// Where the image may be: the slot less its trailer. This is what the checker must
    /// confine the image to.
    pub fn image_area(&self, slot: Slot) -> Range<u32> {
        let s = self.slot(slot);
        s.start..s.end - self.trailer_len()
    }

    /// The trailer, at the end of the slot.
    pub fn trailer(&self, slot: Slot) -> Range<u32> {
        let s = self.slot(slot);
        s.end - self.trailer_len()..s.end
    }

    /// One field of a slot's trailer.
    pub fn field(&self, slot: Slot, field: Field) -> Range<u32> {
        let end = self.slot(slot).end;
        let (m, a) = (self.magic_len(), self.align);
        let below_magic = match field {
            Field::Magic => return end - m..end,
            Field::Confirmed => 1,
            Field::Trial => 2,
            Field::SwapInfo => 3,
            Field::Rejected => 4,
        };
        let start = end - m - below_magic * a;
        start..start + a
    }

    /// Checks the layout against a flash's geometry.
    pub fn check<F: NorFlash>(&self, flash: &F) -> Result<(), LayoutError> {
        let (w, r, e) = (F::WRITE_SIZE, F::READ_SIZE, F::ERASE_SIZE);
        let a = self.align as usize;
        if !a.is_power_of_two()
            || !(8..=MAX_ALIGN as usize).contains(&a)
            || w == 0
            || r == 0
            || !a.is_multiple_of(w)
            || !a.is_multiple_of(r)
            || !e.is_multiple_of(w)
        {
            return Err(LayoutError::BadAlign { align: self.align, write_size: w, read_size: r });
        }
        for slot in Slot::ALL {
            let s = self.slot(slot);
            if !(s.start as usize).is_multiple_of(e)
                || !(s.end as usize).is_multiple_of(e)
                || s.end <= s.start
            {
                return Err(LayoutError::NotSectorAligned { slot, erase_size: e });
            }
            if s.end as usize > flash.capacity() {
                return Err(LayoutError::OutOfBounds { slot, capacity: flash.capacity() });
            }
            if s.len() as u32 <= self.trailer_len() {
                return Err(LayoutError::TooSmall { slot, len: s.len() as u32, trailer: self.trailer_len() });
            }
        }
        let (a, b) = (self.slot(Slot::A), self.slot(Slot::B));
        if a.start < b.end && b.start < a.end {
            return Err(LayoutError::Overlap);
        }
        Ok(())
    }
}
