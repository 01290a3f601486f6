//! What a boot decision did, for the bootloader binary to print and the app to report.

use crate::{Slot, SlotState, Version};
use core::fmt;
use embedded_storage::nor_flash::NorFlashErrorKind;

/// Why a trial image was reverted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RevertReason {
    /// A boot found the trial started and not confirmed: the image was reset (watchdog, crash,
    /// power loss, or a reset before its health check passed). The bootloader cannot tell
    /// these apart; the reset cause register can.
    NotConfirmed,
}

/// Which metadata access failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FlashOp {
    /// Reading the trailer: the slot was skipped.
    ReadTrailer,
    /// Recording "trial started": the image was not booted (no trial without that record).
    MarkTrial,
    /// Recording "rejected": the image is skipped anyway, and the next boot tries again.
    MarkRejected,
}

/// One thing [`select`](crate::select) saw or did. `R` is the image checker's rejection reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event<R> {
    /// The decision: boot this slot.
    Booted {
        /// The slot.
        slot: Slot,
        /// Its image's version.
        version: Version,
        /// Whether it runs as a trial (the app must confirm it).
        trial: bool,
    },
    /// A pending image's trial started ("trial started" is recorded before the jump).
    TrialStarted {
        /// The slot.
        slot: Slot,
        /// Its image's version.
        version: Version,
    },
    /// A trial that was not confirmed was reverted: the slot is now rejected.
    Reverted {
        /// The slot of the failed trial.
        slot: Slot,
        /// Why.
        reason: RevertReason,
    },
    /// A pending image not newer than the confirmed image in the other slot was refused (and
    /// rejected).
    DowngradeRefused {
        /// The slot of the refused image.
        slot: Slot,
        /// Its version.
        version: Version,
        /// The confirmed image's version.
        confirmed: Version,
    },
    /// The image checker refused a slot's image (nothing is written: it is refused again on
    /// every boot until the slot is rewritten).
    ImageRejected {
        /// The slot.
        slot: Slot,
        /// Its trailer's state.
        state: SlotState,
        /// The checker's reason.
        reason: R,
    },
    /// A metadata read or write failed.
    FlashError {
        /// The slot.
        slot: Slot,
        /// What was being done.
        op: FlashOp,
        /// The flash's error kind.
        kind: NorFlashErrorKind,
    },
}

impl<R: fmt::Display> fmt::Display for Event<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Booted { slot, version, trial: true } => {
                write!(f, "booting slot {slot} ({version}) on trial")
            }
            Event::Booted { slot, version, trial: false } => write!(f, "booting slot {slot} ({version})"),
            Event::TrialStarted { slot, version } => write!(f, "trial of slot {slot} ({version}) started"),
            Event::Reverted { slot, reason: RevertReason::NotConfirmed } => {
                write!(f, "slot {slot} reverted: its trial was not confirmed")
            }
            Event::DowngradeRefused { slot, version, confirmed } => {
                write!(f, "slot {slot} ({version}) refused: not newer than the confirmed {confirmed}")
            }
            Event::ImageRejected { slot, state, reason } => {
                write!(f, "slot {slot} ({state}) rejected by the image check: {reason}")
            }
            Event::FlashError { slot, op, kind } => {
                write!(f, "slot {slot}: flash error during {op:?}: {kind}")
            }
        }
    }
}

/// Capacity of [`Events`]: a boot records at most two events per slot, two failed trial
/// marks, the trial start and the decision.
pub const MAX_EVENTS: usize = 8;

/// The events of one boot decision, in order (a fixed-capacity list: no allocation).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Events<R> {
    items: [Option<Event<R>>; MAX_EVENTS],
    len: usize,
}

impl<R> Events<R> {
    /// No events.
    pub const fn new() -> Events<R> {
        Events { items: [const { None }; MAX_EVENTS], len: 0 }
    }

    pub(crate) fn push(&mut self, event: Event<R>) {
        // MAX_EVENTS bounds what `select` can record; past it, later events are dropped.
        if let Some(place) = self.items.get_mut(self.len) {
            *place = Some(event);
            self.len += 1;
        }
    }

    /// How many.
    pub const fn len(&self) -> usize {
        self.len
    }

    /// None at all.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// In order.
    pub fn iter(&self) -> impl Iterator<Item = &Event<R>> {
        self.items[..self.len].iter().flatten()
    }
}

impl<R> Default for Events<R> {
    fn default() -> Self {
        Events::new()
    }
}

impl<'a, R> IntoIterator for &'a Events<R> {
    type Item = &'a Event<R>;
    type IntoIter = core::iter::Flatten<core::slice::Iter<'a, Option<Event<R>>>>;
    fn into_iter(self) -> Self::IntoIter {
        self.items[..self.len].iter().flatten()
    }
}
