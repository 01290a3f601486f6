//! The boot decision.

use crate::event::{Event, Events, FlashOp, RevertReason};
use crate::layout::{Field, Layout, LayoutError};
use crate::trailer::{self, SlotState};
use crate::{Slot, Version};
use core::fmt;
use core::ops::Range;
use embedded_storage::nor_flash::{NorFlash, NorFlashError};

/// The image verifier (MCUboot format: header, hash, signature), as the bootloader sees it.
///
/// Implemented for every `FnMut(&mut F, Slot, Range<u32>) -> Result<Version, R>`, so a
/// closure will do.
pub trait ImageCheck<F: ?Sized> {
    /// Why an image was refused (printed in [`Event::ImageRejected`]).
    type Reject: fmt::Debug + fmt::Display;

    /// Verifies the image of `slot`, which must lie within `image` (flash offsets: the slot
    /// less its trailer), and returns its version. Read failures are rejections too.
    fn check(&mut self, flash: &mut F, slot: Slot, image: Range<u32>) -> Result<Version, Self::Reject>;
}

impl<F: ?Sized, R: fmt::Debug + fmt::Display, C> ImageCheck<F> for C
where
    C: FnMut(&mut F, Slot, Range<u32>) -> Result<Version, R>,
{
    type Reject = R;
    fn check(&mut self, flash: &mut F, slot: Slot, image: Range<u32>) -> Result<Version, R> {
        self(flash, slot, image)
    }
}

/// What to boot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BootChoice<R> {
    /// The slot to jump to.
    pub slot: Slot,
    /// Its image's version.
    pub version: Version,
    /// Whether the image runs on trial: the app must [`confirm`](crate::confirm) it, or the
    /// next boot reverts it.
    pub trial: bool,
    /// The slot's image area (flash offsets): the image's header is at its start.
    pub image: Range<u32>,
    /// What happened on the way, in order; the last one is [`Event::Booted`].
    pub events: Events<R>,
}

/// Why nothing can be booted.
#[derive(Debug, thiserror::Error)]
pub enum BootError<R: fmt::Debug> {
    /// Neither slot holds a bootable image (a confirmed or pending image that checks, not
    /// refused). `events` says why each slot was passed over.
    #[error("no bootable image in either slot")]
    NoBootableImage {
        /// What happened on the way.
        events: Events<R>,
    },
    /// The layout does not fit the flash.
    #[error(transparent)]
    Layout(#[from] LayoutError),
}

#[derive(Clone, Copy)]
struct Candidate {
    version: Version,
    confirmed: bool,
}

/// Decides which slot to boot, and records the decision in the trailers.
///
/// Rules (MCUboot's direct-XIP with revert, plus a downgrade rule):
/// 1. A slot found **in trial** is a trial that ended without a confirm: it is rejected
///    (recorded, [`Event::Reverted`]) and never booted again.
/// 2. **Confirmed** and **pending** slots are checked with `checker`; only images that check
///    are candidates ([`Event::ImageRejected`] otherwise; nothing is written, since the
///    verdict is the same on every boot). Blank, damaged and rejected slots are skipped.
/// 3. **Downgrade rule**: a pending image whose version is not strictly greater than that of a
///    confirmed candidate in the other slot is refused and rejected
///    ([`Event::DowngradeRefused`]). A confirmed image that fails its check does not count.
/// 4. The candidate with the **highest version** boots (on a tie a confirmed one, then slot A).
///    If it is pending, "trial started" is recorded first ([`Event::TrialStarted`]); if that
///    write fails, it is not booted and the next candidate is.
/// 5. No candidate: [`BootError::NoBootableImage`].
///
/// Flash errors while recording are reported as [`Event::FlashError`] and never make a worse
/// choice: a slot that could not be marked rejected is still skipped.
pub fn select<F: NorFlash, C: ImageCheck<F>>(
    flash: &mut F,
    layout: &Layout,
    checker: &mut C,
) -> Result<BootChoice<C::Reject>, BootError<C::Reject>> {
    layout.check(flash)?;
    let mut events = Events::new();
    let mut candidates: [Option<Candidate>; 2] = [None, None];

    for slot in Slot::ALL {
        let state = match trailer::read(flash, layout, slot) {
            Ok(t) => t.state(),
            Err(e) => {
                events.push(Event::FlashError { slot, op: FlashOp::ReadTrailer, kind: e.kind() });
                continue;
            }
        };
        match state {
            SlotState::Trial => {
                events.push(Event::Reverted { slot, reason: RevertReason::NotConfirmed });
                reject(flash, layout, slot, &mut events);
            }
            SlotState::Pending | SlotState::Confirmed => {
                match checker.check(flash, slot, layout.image_area(slot)) {
                    Ok(version) => {
                        candidates[slot.index()] =
                            Some(Candidate { version, confirmed: state == SlotState::Confirmed })
                    }
                    Err(reason) => events.push(Event::ImageRejected { slot, state, reason }),
                }
            }
            SlotState::Blank | SlotState::Damaged | SlotState::Rejected => {}
        }
    }

    for slot in Slot::ALL {
        let (Some(pending), Some(confirmed)) = (candidates[slot.index()], candidates[slot.other().index()])
        else {
            continue;
        };
        if !pending.confirmed && confirmed.confirmed && pending.version <= confirmed.version {
            events.push(Event::DowngradeRefused {
                slot,
                version: pending.version,
                confirmed: confirmed.version,
            });
            reject(flash, layout, slot, &mut events);
            candidates[slot.index()] = None;
        }
    }

    loop {
        let best = Slot::ALL.into_iter().filter_map(|s| candidates[s.index()].map(|c| (s, c))).max_by(
            |(sa, a), (sb, b)| a.version.cmp(&b.version).then(a.confirmed.cmp(&b.confirmed)).then(sb.cmp(sa)),
        );
        let Some((slot, candidate)) = best else {
            return Err(BootError::NoBootableImage { events });
        };
        let trial = !candidate.confirmed;
        if trial {
            if let Err(e) = trailer::program(flash, layout, slot, Field::Trial) {
                events.push(Event::FlashError { slot, op: FlashOp::MarkTrial, kind: e.kind() });
                candidates[slot.index()] = None;
                continue;
            }
            events.push(Event::TrialStarted { slot, version: candidate.version });
        }
        events.push(Event::Booted { slot, version: candidate.version, trial });
        return Ok(BootChoice {
            slot,
            version: candidate.version,
            trial,
            image: layout.image_area(slot),
            events,
        });
    }
}

/// Records "rejected" (its field reads erased here: a slot whose rejected field is set decodes
/// as rejected and never gets this far).
fn reject<F: NorFlash, R>(flash: &mut F, layout: &Layout, slot: Slot, events: &mut Events<R>) {
    if let Err(e) = trailer::program(flash, layout, slot, Field::Rejected) {
        events.push(Event::FlashError { slot, op: FlashOp::MarkRejected, kind: e.kind() });
    }
}
