//! Reading and writing a slot's trailer (the metadata at the end of each slot).

use crate::layout::{Field, Layout, FLAG_SET, MAGIC, MAX_ALIGN};
use crate::Slot;
use core::fmt;
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

/// What one trailer field holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mark {
    /// Every byte reads 0xFF: never programmed since the last erase.
    Erased,
    /// Exactly the value abboot (and MCUboot) writes there.
    Written,
    /// Some bits programmed, but not that value: a torn program or erase, or another tool's
    /// value. Reads as set, like `Written`: abboot never programs a field that is not erased.
    Other,
}

impl Mark {
    /// Whether the field counts as set: any bit programmed.
    pub const fn is_set(self) -> bool {
        !matches!(self, Mark::Erased)
    }
}

/// A slot's trailer as read from flash, field by field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Trailer {
    /// The magic (pending mark).
    pub magic: Mark,
    /// `image_ok`: confirmed.
    pub confirmed: Mark,
    /// `copy_done`: trial started.
    pub trial: Mark,
    /// MCUboot's `swap_info` (ignored, but must be erased for the trailer to be blank).
    pub swap_info: Mark,
    /// abboot's rejected flag.
    pub rejected: Mark,
}

/// The state of a slot, decoded from its [`Trailer`] (the state table in the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SlotState {
    /// The trailer is fully erased: an image may be being written; not bootable. The only
    /// state [`mark_pending`](crate::mark_pending) accepts.
    Blank,
    /// No magic, but other fields programmed: an interrupted erase or provisioning. Not
    /// bootable; erase the slot ([`erase_slot`](crate::erase_slot)).
    Damaged,
    /// Marked by the app after writing and verifying an update; the next boot starts its trial
    /// (if it checks and is no downgrade).
    Pending,
    /// The bootloader started its trial. Seen by the app: it runs this image and must confirm
    /// it. Seen by the bootloader: the trial ended (reset, watchdog, crash) without a confirm,
    /// so the image is rejected.
    Trial,
    /// Confirmed by the app after its health check (or provisioned so): bootable.
    Confirmed,
    /// Refused for good (failed trial, downgrade): never booted again until the slot is erased
    /// and rewritten.
    Rejected,
}

impl fmt::Display for SlotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlotState::Blank => "blank",
            SlotState::Damaged => "damaged",
            SlotState::Pending => "pending",
            SlotState::Trial => "in trial",
            SlotState::Confirmed => "confirmed",
            SlotState::Rejected => "rejected",
        })
    }
}

impl Trailer {
    /// Every field erased.
    pub const fn is_blank(&self) -> bool {
        !(self.magic.is_set()
            || self.confirmed.is_set()
            || self.trial.is_set()
            || self.swap_info.is_set()
            || self.rejected.is_set())
    }

    /// The slot's state. Precedence: rejected, then no magic (blank or damaged), then
    /// confirmed, then trial, then pending.
    pub const fn state(&self) -> SlotState {
        if self.rejected.is_set() {
            SlotState::Rejected
        } else if !self.magic.is_set() {
            if self.is_blank() {
                SlotState::Blank
            } else {
                SlotState::Damaged
            }
        } else if self.confirmed.is_set() {
            SlotState::Confirmed
        } else if self.trial.is_set() {
            SlotState::Trial
        } else {
            SlotState::Pending
        }
    }
}

/// Reads a slot's trailer. The layout must have been checked against this flash.
pub(crate) fn read<F: ReadNorFlash>(flash: &mut F, layout: &Layout, slot: Slot) -> Result<Trailer, F::Error> {
    let mut mark = |field: Field| -> Result<Mark, F::Error> {
        let range = layout.field(slot, field);
        let mut buf = [0u8; MAX_ALIGN as usize];
        let buf = &mut buf[..range.len()];
        flash.read(range.start, buf)?;
        if buf.iter().all(|&b| b == 0xff) {
            return Ok(Mark::Erased);
        }
        let (pad, value) = match field {
            Field::Magic => buf.split_at(buf.len() - MAGIC.len()),
            _ => (&buf[1..], &buf[..1]),
        };
        let written = pad.iter().all(|&b| b == 0xff)
            && match field {
                Field::Magic => value == MAGIC,
                Field::SwapInfo => false,
                _ => value == [FLAG_SET],
            };
        Ok(if written { Mark::Written } else { Mark::Other })
    };
    Ok(Trailer {
        magic: mark(Field::Magic)?,
        confirmed: mark(Field::Confirmed)?,
        trial: mark(Field::Trial)?,
        swap_info: mark(Field::SwapInfo)?,
        rejected: mark(Field::Rejected)?,
    })
}

/// Programs one field with its value, in one write of as few write units as it takes: one unit
/// for a flag (its first byte [`FLAG_SET`], the rest 0xFF), the last 16 bytes (or one unit, if
/// larger) for the magic. The caller has read the field as erased.
pub(crate) fn program<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    slot: Slot,
    field: Field,
) -> Result<(), F::Error> {
    let range = layout.field(slot, field);
    let mut buf = [0xffu8; MAX_ALIGN as usize];
    match field {
        Field::Magic => {
            let len = F::WRITE_SIZE.max(MAGIC.len());
            buf[len - MAGIC.len()..len].copy_from_slice(&MAGIC);
            flash.write(range.end - len as u32, &buf[..len])
        }
        _ => {
            buf[0] = FLAG_SET;
            flash.write(range.start, &buf[..F::WRITE_SIZE])
        }
    }
}
