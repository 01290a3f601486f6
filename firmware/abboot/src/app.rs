//! The application's side: mark an update pending, confirm the running image, read states,
//! erase a slot for the next update, provision a factory image.

use crate::layout::{Field, Layout, LayoutError};
use crate::trailer::{self, Mark, SlotState, Trailer};
use crate::Slot;
use core::fmt;
use embedded_storage::nor_flash::NorFlash;

/// The app-side operations, for [`Error::WrongState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// [`mark_pending`].
    MarkPending,
    /// [`confirm`].
    Confirm,
    /// [`provision_confirmed`].
    Provision,
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Operation::MarkPending => "mark pending",
            Operation::Confirm => "confirm",
            Operation::Provision => "provision",
        })
    }
}

/// Why an app-side operation failed. `E` is the flash's error.
#[derive(Debug, thiserror::Error)]
pub enum Error<E: fmt::Debug> {
    /// The flash failed.
    #[error("flash error: {0:?}")]
    Flash(E),
    /// The slot's state does not allow the operation (see the state table in the crate docs).
    #[error("cannot {op} slot {slot}: it is {state}")]
    WrongState {
        /// The slot.
        slot: Slot,
        /// Its state.
        state: SlotState,
        /// What was asked.
        op: Operation,
    },
    /// [`erase_slot`] refused: a slot runs an unconfirmed trial, so erasing either slot would
    /// erase the trial image (which runs) or its fallback.
    #[error("slot {running} runs an unconfirmed trial: confirm it before erasing slot {slot}")]
    TrialInProgress {
        /// The slot asked to be erased.
        slot: Slot,
        /// The slot in trial.
        running: Slot,
    },
    /// The layout does not fit the flash.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

/// A slot's raw trailer (diagnostics).
pub fn trailer<F: NorFlash>(flash: &mut F, layout: &Layout, slot: Slot) -> Result<Trailer, Error<F::Error>> {
    layout.check(flash)?;
    trailer::read(flash, layout, slot).map_err(Error::Flash)
}

/// A slot's state.
pub fn state<F: NorFlash>(flash: &mut F, layout: &Layout, slot: Slot) -> Result<SlotState, Error<F::Error>> {
    Ok(trailer(flash, layout, slot)?.state())
}

/// Marks the image in `slot` for a trial on the next boot: call it after the OTA agent wrote
/// the image into the (inactive) slot and verified it. Writes the magic.
///
/// The trailer must be blank (the slot was erased with [`erase_slot`] before the image was
/// written). Idempotent: a slot already pending is left alone, so an interrupted call can
/// simply be repeated.
pub fn mark_pending<F: NorFlash>(flash: &mut F, layout: &Layout, slot: Slot) -> Result<(), Error<F::Error>> {
    match state(flash, layout, slot)? {
        SlotState::Pending => Ok(()),
        SlotState::Blank => trailer::program(flash, layout, slot, Field::Magic).map_err(Error::Flash),
        state => Err(Error::WrongState { slot, state, op: Operation::MarkPending }),
    }
}

/// Confirms the image in `slot` (the running one, after its health check): it stays. Writes
/// `image_ok`. Accepts a slot in trial; a confirmed slot is left alone.
pub fn confirm<F: NorFlash>(flash: &mut F, layout: &Layout, slot: Slot) -> Result<(), Error<F::Error>> {
    match state(flash, layout, slot)? {
        SlotState::Confirmed => Ok(()),
        SlotState::Trial => trailer::program(flash, layout, slot, Field::Confirmed).map_err(Error::Flash),
        state => Err(Error::WrongState { slot, state, op: Operation::Confirm }),
    }
}

/// Erases a whole slot for the next update, sector by sector **from its first sector to its
/// last** (the order matters: see "Erasing a slot" in the crate docs). Never call it on the
/// running slot; refused while either slot is in trial.
///
/// An interrupted erase is not resumable: erase again from the start.
pub fn erase_slot<F: NorFlash>(flash: &mut F, layout: &Layout, slot: Slot) -> Result<(), Error<F::Error>> {
    let area = layout.image_area(slot);
    erase_for_image(flash, layout, slot, area.end - area.start)
}

/// Erases what an image of `len` bytes needs: the sectors holding its first `len` bytes, first
/// to last, then the trailer's sector(s), as [`erase_slot`] does for the whole slot. Sectors in
/// between keep what they held; nothing reads them (an image's check covers only its own
/// bytes). `len` beyond the image area is clipped to it. Same rules as [`erase_slot`].
pub fn erase_for_image<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    slot: Slot,
    len: u32,
) -> Result<(), Error<F::Error>> {
    for s in [slot, slot.other()] {
        if state(flash, layout, s)? == SlotState::Trial {
            return Err(Error::TrialInProgress { slot, running: s });
        }
    }
    let range = layout.slot(slot);
    let sector = F::ERASE_SIZE as u32;
    let area = layout.image_area(slot);
    let image_end = range.start + len.min(area.end - area.start);
    let trailer_start = layout.trailer(slot).start / sector * sector;
    let mut at = range.start;
    while at < range.end {
        if at < image_end || at >= trailer_start {
            flash.erase(at, at + sector).map_err(Error::Flash)?;
        }
        at += sector;
    }
    Ok(())
}

/// Marks a factory-written image confirmed (what `imgtool sign --pad --confirm` puts in the
/// trailer): `image_ok` first, then the magic, so that an interrupted provisioning leaves a
/// damaged (unbootable) slot, never a pending one whose trial could reject the factory image.
/// Repeating it finishes an interrupted run. A bench step, not one for devices in the field.
pub fn provision_confirmed<F: NorFlash>(
    flash: &mut F,
    layout: &Layout,
    slot: Slot,
) -> Result<(), Error<F::Error>> {
    let t = trailer(flash, layout, slot)?;
    let only_confirmed = t.magic == Mark::Erased
        && t.confirmed.is_set()
        && !t.trial.is_set()
        && !t.swap_info.is_set()
        && !t.rejected.is_set();
    match t.state() {
        SlotState::Confirmed => Ok(()),
        SlotState::Blank => {
            trailer::program(flash, layout, slot, Field::Confirmed).map_err(Error::Flash)?;
            trailer::program(flash, layout, slot, Field::Magic).map_err(Error::Flash)
        }
        SlotState::Damaged if only_confirmed => {
            trailer::program(flash, layout, slot, Field::Magic).map_err(Error::Flash)
        }
        state => Err(Error::WrongState { slot, state, op: Operation::Provision }),
    }
}
