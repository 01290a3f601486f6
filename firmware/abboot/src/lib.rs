//! A/B boot slots for direct-XIP images: the boot decision and the slot metadata state machine
//! of the bootloader, and the app's side of it (mark pending, confirm). `no_std`, no
//! allocation, generic over an `embedded-storage` [`NorFlash`]; tested on the host against a
//! strict in-memory NOR flash with power cuts at every operation (feature `testing`).
//!
//! Modelled on MCUboot's *direct-XIP with revert* mode (`MCUBOOT_DIRECT_XIP_REVERT`): two slots,
//! each image linked for its own slot, nothing is ever copied or swapped; the newest valid image
//! boots; a new image boots once on trial and must confirm itself, or the next boot reverts it.
//! The image format and its verification are not here: the bootloader passes a verifier as an
//! [`ImageCheck`] (`firmware/boot` verifies MCUboot images with the `mcuimage` crate; the host
//! tests check the toy format of the `testing` module).
//!
//! # Slot layout
//!
//! Two slots, A and B, anywhere in the flash, each a whole number of erase sectors. Each slot
//! holds an image at its start and a **trailer** in its last bytes, which the image must not
//! reach ([`Layout::image_area`] is what the checker gets). The trailer follows MCUboot's
//! (`docs/design.md`, "Image trailer"): fields of one *pitch* each ([`Layout::align`], MCUboot's
//! `BOOT_MAX_ALIGN`, imgtool's `--max-align`, 8 by default), so that each one is programmed on
//! its own. With the default pitch, from the end `E` of the slot:
//!
//! ```text
//! slot start                                                                         E
//! | image: header, code, TLVs | 0xFF ... | rejected | swap_info | trial | confirmed | magic |
//!                                        E-48       E-40        E-32    E-24        E-16
//! ```
//!
//! | field | MCUboot's name | written by | value |
//! |---|---|---|---|
//! | magic (16 bytes, 16 rounded up to the pitch) | `magic` | app: [`mark_pending`] | [`layout::MAGIC`] in the last 16 bytes |
//! | confirmed | `image_ok` | app: [`confirm`] | `0x01`, rest of the field 0xFF |
//! | trial | `copy_done` | bootloader: [`select`], before jumping to a pending image | `0x01`, rest 0xFF |
//! | swap_info | `swap_info` | nobody (MCUboot's `set_pending` writes it; ignored) | — |
//! | rejected | `swap_size` (swap modes only, unused in direct-XIP) | bootloader: [`select`] | `0x01`, rest 0xFF |
//!
//! So `imgtool sign --pad --confirm` gives a **confirmed** image (magic + `image_ok`), and
//! `imgtool sign --pad` a **pending** one, as with MCUboot (with `--max-align` equal to the
//! layout's pitch). imgtool reserves a larger trailer (MCUboot's swap status too); that only
//! makes its images smaller than [`Layout::image_area`] allows.
//!
//! **Reading a field**: erased (all 0xFF) or **set** (any bit programmed). A field holding
//! anything but its exact value (a torn write or erase) reads as set: see [`Mark`].
//! **Writing a field**: only when it reads erased, one write of one field (one write unit for a
//! flag, the 16 bytes of the magic), never a second time before an erase. abboot never erases
//! anything but through [`erase_slot`].
//!
//! # States
//!
//! A slot's state is decoded from its trailer, rejected first (`x` set, `-` erased, `·` either):
//!
//! | state | rejected | magic | confirmed | trial | at boot ([`select`]) | the app may |
//! |---|---|---|---|---|---|---|
//! | [`Blank`](SlotState::Blank) | - | - | - | - | skipped | [`mark_pending`] |
//! | [`Damaged`](SlotState::Damaged) | - | - | · | · (some set) | skipped | [`erase_slot`] |
//! | [`Pending`](SlotState::Pending) | - | x | - | - | checked; refused if a downgrade (→ Rejected); if chosen, trial recorded (→ Trial) and booted | — |
//! | [`Trial`](SlotState::Trial) | - | x | - | x | a trial that ended unconfirmed: → Rejected, never booted | [`confirm`] (→ Confirmed) |
//! | [`Confirmed`](SlotState::Confirmed) | - | x | x | · | checked; a candidate | — |
//! | [`Rejected`](SlotState::Rejected) | x | · | · | · | skipped | [`erase_slot`] |
//!
//! The decision among the candidates (valid confirmed and pending images) is [`select`]'s: the
//! highest [`Version`] boots; a pending image not strictly newer than a valid confirmed one
//! is a downgrade and is refused.
//!
//! An update, as the app and the bootloader see it (old image confirmed in A, running):
//!
//! 1. the OTA agent erases B ([`erase_slot`]), writes the image, verifies it, [`mark_pending`]
//!    (B: Blank → Pending), resets;
//! 2. [`select`] finds B pending, checks it, writes *trial* (B → Trial), boots B on trial;
//! 3. B's health check passes: [`confirm`] (B → Confirmed). From now on B boots (highest
//!    version), A stays as the older confirmed image, the target of the next update.
//! 4. Or B is reset before confirming (crash, watchdog, power): the next [`select`] finds B in
//!    trial, writes *rejected* (B → Rejected, [`Event::Reverted`]) and boots A. B is never
//!    tried again; the next attempt starts at 1 with a new download.
//!
//! # Why each transition is power-cut safe
//!
//! NOR semantics assumed: erase sets a sector to 0xFF, programming only turns bits from 1 to
//! 0, a power cut during an operation leaves the bits it was changing in any mix of old and new
//! ("torn") and does not touch anything else. Two facts carry every argument:
//!
//! - **One field, one slot per step.** Each transition programs exactly one field of one slot,
//!   and never a field of the image it falls back to: during an update the old image and its
//!   trailer are only read. A cut can therefore only leave the one field torn.
//! - **A torn field is safe both ways.** It reads as erased (no bit changed) or as set (some
//!   changed), and for every field both readings lead to an acceptable state. Because abboot
//!   only programs fields that read erased, a torn field that reads set is never programmed
//!   again (write-once holds, as ECC flashes require), and one that reads erased is a fresh
//!   field for the retry.
//!
//! | transition | write | cut, field reads erased | cut, field reads set |
//! |---|---|---|---|
//! | Blank → Pending ([`mark_pending`]) | magic | still Blank: not marked; mark again | Pending: the image was complete and verified before the call, and is checked again at boot |
//! | Pending → Trial ([`select`]) | trial | still Pending: the image never ran; its trial starts at the next boot | Trial: the next boot reverts it (as MCUboot: recording comes before the jump, so a cut after it counts as a failed trial); the old image is untouched |
//! | Trial → Confirmed ([`confirm`]) | confirmed | still Trial: the next boot reverts to the old image | Confirmed: what the app asked |
//! | Trial → Rejected ([`select`]) | rejected | still Trial: the next boot rejects it again | Rejected |
//! | Pending → Rejected (downgrade) | rejected | still Pending: refused again next boot | Rejected |
//!
//! The bootloader decides in RAM before it writes, and its writes only ever remove a candidate
//! (rejected) or record the one it boots (trial); a write that fails is reported as
//! [`Event::FlashError`] and the decision falls back as if the candidate had been refused. So
//! the confirmed old image is a candidate at every boot of an update, and the device is never
//! left without a valid choice while it holds one (the power-cut sweep in
//! `tests/power_cut.rs` checks this at every operation, clean and torn).
//!
//! ## Erasing a slot
//!
//! [`erase_slot`] erases the slot from its first sector to its last, so the image's header and
//! first bytes go first. Until that first sector changes, image and trailer are as before; once
//! any bit of it changed, the image no longer passes its check, whatever its trailer says,
//! including a trailer left as garbage by a torn erase of the last sector. [`mark_pending`]
//! accepts only a blank trailer, so garbage is never marked: an interrupted erase is repeated.
//! (Erasing the trailer first would be unsafe: a torn erase could clear a *rejected* or set
//! flag back to erased while the old image still checks, resurrecting a failed image.)
//!
//! ## Provisioning
//!
//! A factory image must be confirmed (imgtool `--pad --confirm`, or [`provision_confirmed`]):
//! a blank trailer is never booted, so that an update that is written but not yet marked can
//! never boot without a trial.
//!
//! # Differences from MCUboot
//!
//! - A failed trial is marked *rejected* (one flag write) where MCUboot erases the whole slot:
//!   fewer operations at boot, and the app can still report what was reverted.
//! - A field with a torn or foreign value counts as set (MCUboot: "bad", and it erases the slot).
//! - The build number is part of the version order, and the downgrade rule is explicit
//!   (MCUboot's direct-XIP relies on "highest version wins" and a hardware security counter).
//!
//! # Limits
//!
//! - Real flash can leave a torn bit *weak*, reading differently from one read to the next. The
//!   table above holds for either reading of a field, so each boot's decision is safe; but a
//!   weak field that reads erased may get programmed again (the only write-once breach, only
//!   after a cut in that very write).
//! - A confirmed image that later fails its check (bit rot) is passed over for the other slot's
//!   confirmed image even if older: better an older image than none.
//! - If both slots hold unconfirmed images (no confirmed image at all), both get one trial each;
//!   if neither confirms, nothing is left to boot ([`BootError::NoBootableImage`]).
//!
//! # Use
//!
//! ```no_run
//! use abboot::{confirm, select, state, Layout, Slot, SlotState, Version};
//! # fn demo<F: abboot::NorFlash>(flash: &mut F) {
//! let layout = Layout::new(0x1_0000..0x5_0000, 0x5_0000..0x9_0000);
//!
//! // Bootloader: the checker verifies the image in `area` and returns its version
//! // (`mcuimage::verify_from` in the real one).
//! let mut check = |_: &mut F, _: Slot, _area: core::ops::Range<u32>| -> Result<Version, &'static str> {
//!     Ok(Version::new(1, 0, 0, 0))
//! };
//! match select(flash, &layout, &mut check) {
//!     Ok(choice) => {
//!         for event in &choice.events {
//!             let _ = event; // print it (Display)
//!         }
//!         // jump to the image at `choice.image.start` (plus its header size)
//!     }
//!     Err(error) => {
//!         let _ = error; // print it and its events, halt
//!     }
//! }
//!
//! // App, running from slot `me`, once its health check passed:
//! let me = Slot::B;
//! if state(flash, &layout, me).ok() == Some(SlotState::Trial) {
//!     confirm(flash, &layout, me).ok();
//! }
//! # }
//! ```
#![no_std]

pub mod app;
pub mod boot;
pub mod event;
pub mod layout;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trailer;

pub use app::{
    confirm, erase_for_image, erase_slot, mark_pending, provision_confirmed, state, trailer, Error, Operation,
};
pub use boot::{select, BootChoice, BootError, ImageCheck};
pub use event::{Event, Events, FlashOp, RevertReason};
pub use layout::{Field, Layout, LayoutError};
pub use trailer::{Mark, SlotState, Trailer};
pub use twinbed_contract::version::{Slot, Version};

#[doc(no_inline)]
pub use embedded_storage::nor_flash::NorFlash;
