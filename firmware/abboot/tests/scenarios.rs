//! Scenario tests of the boot decision and the app side, on several flash geometries.

mod common;

use abboot::testing::TestReject;
use abboot::{
    layout, BootError, Error, Event, FlashOp, Mark, Operation, RevertReason, Slot, SlotState, Version,
};
use common::{events, Rig, V1, V2, V3};

/// Runs each listed test on each geometry: (write size, erase size, trailer pitch).
macro_rules! on_geometries {
    ($($name:ident),* $(,)?) => {
        mod w4_e4096 { $( #[test] fn $name() { super::$name::<4, 4096>(8) } )* }
        mod w8_e2048 { $( #[test] fn $name() { super::$name::<8, 2048>(8) } )* }
        mod w1_e256 { $( #[test] fn $name() { super::$name::<1, 256>(8) } )* }
        mod w16_e1024 { $( #[test] fn $name() { super::$name::<16, 1024>(16) } )* }
    };
}

on_geometries!(
    fresh_device_boots_a,
    update_boots_b_on_trial,
    confirm_keeps_b,
    unconfirmed_trial_reverts_and_is_never_tried_again,
    retry_after_revert,
    downgrade_refused,
    corrupt_update_stays_on_a,
    no_valid_image_is_an_error,
    highest_confirmed_wins_and_falls_back,
    erase_refused_during_trial,
    metadata_writes_touch_only_trailers,
    mark_pending_is_idempotent_and_needs_blank,
    torn_fields_read_as_set,
    interrupted_provisioning_is_damaged_then_finished,
);

fn fresh_device_boots_a<const W: usize, const E: usize>(align: u32) {
    let mut rig = Rig::<W, E>::factory(align, V1);
    assert_eq!(rig.state(Slot::A), SlotState::Confirmed);
    assert_eq!(rig.state(Slot::B), SlotState::Blank);
    let ops = rig.ops();
    let choice = rig.boot().unwrap();
    assert_eq!((choice.slot, choice.version, choice.trial), (Slot::A, V1, false));
    assert_eq!(choice.image, rig.layout.image_area(Slot::A));
    assert_eq!(events(&choice), [Event::Booted { slot: Slot::A, version: V1, trial: false }]);
    assert_eq!(rig.ops(), ops, "a plain boot writes nothing");
}

/// The update: B written, verified, marked pending.
fn updated<const W: usize, const E: usize>(align: u32) -> Rig<W, E> {
    let mut rig = Rig::<W, E>::factory(align, V1);
    rig.install(Slot::B, V2);
    abboot::mark_pending(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    assert_eq!(rig.state(Slot::B), SlotState::Pending);
    rig
}

/// The update, booted once (on trial).
fn on_trial<const W: usize, const E: usize>(align: u32) -> Rig<W, E> {
    let mut rig = updated::<W, E>(align);
    let choice = rig.boot().unwrap();
    assert_eq!((choice.slot, choice.version, choice.trial), (Slot::B, V2, true));
    rig
}

fn update_boots_b_on_trial<const W: usize, const E: usize>(align: u32) {
    let mut rig = updated::<W, E>(align);
    let ops = rig.ops();
    let choice = rig.boot().unwrap();
    assert_eq!((choice.slot, choice.version, choice.trial), (Slot::B, V2, true));
    assert_eq!(
        events(&choice),
        [
            Event::TrialStarted { slot: Slot::B, version: V2 },
            Event::Booted { slot: Slot::B, version: V2, trial: true },
        ]
    );
    assert_eq!(rig.ops(), ops + 1, "one write: trial started");
    assert_eq!(rig.state(Slot::B), SlotState::Trial);
    assert_eq!(rig.state(Slot::A), SlotState::Confirmed);
}

fn confirm_keeps_b<const W: usize, const E: usize>(align: u32) {
    let mut rig = on_trial::<W, E>(align);
    abboot::confirm(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    assert_eq!(rig.state(Slot::B), SlotState::Confirmed);
    let ops = rig.ops();
    abboot::confirm(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    assert_eq!(rig.ops(), ops, "confirming again writes nothing");
    for _ in 0..3 {
        let choice = rig.boot().unwrap();
        assert_eq!(events(&choice), [Event::Booted { slot: Slot::B, version: V2, trial: false }]);
    }
    assert_eq!(rig.ops(), ops);
    assert_eq!(rig.state(Slot::A), SlotState::Confirmed, "the old image stays, for the next update");
}

fn unconfirmed_trial_reverts_and_is_never_tried_again<const W: usize, const E: usize>(align: u32) {
    let mut rig = on_trial::<W, E>(align);
    // B resets (watchdog) before confirming.
    let choice = rig.boot().unwrap();
    assert_eq!(
        events(&choice),
        [
            Event::Reverted { slot: Slot::B, reason: RevertReason::NotConfirmed },
            Event::Booted { slot: Slot::A, version: V1, trial: false },
        ]
    );
    assert_eq!(rig.state(Slot::B), SlotState::Rejected);
    let ops = rig.ops();
    for _ in 0..3 {
        let choice = rig.boot().unwrap();
        assert_eq!(events(&choice), [Event::Booted { slot: Slot::A, version: V1, trial: false }]);
    }
    assert_eq!(rig.ops(), ops);
    // The app cannot bring it back.
    let e = abboot::confirm(&mut rig.flash, &rig.layout, Slot::B).unwrap_err();
    assert!(matches!(
        e,
        Error::WrongState { slot: Slot::B, state: SlotState::Rejected, op: Operation::Confirm }
    ));
    let e = abboot::mark_pending(&mut rig.flash, &rig.layout, Slot::B).unwrap_err();
    assert!(matches!(e, Error::WrongState { op: Operation::MarkPending, .. }), "{e}");
}

fn retry_after_revert<const W: usize, const E: usize>(align: u32) {
    let mut rig = on_trial::<W, E>(align);
    rig.boot().unwrap(); // reverted
    abboot::erase_slot(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    assert_eq!(rig.state(Slot::B), SlotState::Blank);
    rig.install(Slot::B, V3);
    abboot::mark_pending(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    let choice = rig.boot().unwrap();
    assert_eq!((choice.slot, choice.version, choice.trial), (Slot::B, V3, true));
    abboot::confirm(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    let choice = rig.boot().unwrap();
    assert_eq!((choice.slot, choice.version, choice.trial), (Slot::B, V3, false));
}

fn downgrade_refused<const W: usize, const E: usize>(align: u32) {
    for (pending, refused) in [(V1, true), (V2, true), (Version::new(2, 0, 0, 1), false)] {
        let mut rig = Rig::<W, E>::factory(align, V2);
        rig.install(Slot::B, pending);
        abboot::mark_pending(&mut rig.flash, &rig.layout, Slot::B).unwrap();
        let choice = rig.boot().unwrap();
        if refused {
            assert_eq!(
                events(&choice),
                [
                    Event::DowngradeRefused { slot: Slot::B, version: pending, confirmed: V2 },
                    Event::Booted { slot: Slot::A, version: V2, trial: false },
                ],
                "{pending}"
            );
            assert_eq!(rig.state(Slot::B), SlotState::Rejected);
            let choice = rig.boot().unwrap();
            assert_eq!(events(&choice), [Event::Booted { slot: Slot::A, version: V2, trial: false }]);
        } else {
            // The build number counts: 2.0.0+1 is newer than 2.0.0+0.
            assert_eq!((choice.slot, choice.version, choice.trial), (Slot::B, pending, true));
        }
    }
}

fn corrupt_update_stays_on_a<const W: usize, const E: usize>(align: u32) {
    let mut rig = Rig::<W, E>::factory(align, V1);
    rig.install(Slot::B, V2);
    let at = rig.layout.image_area(Slot::B).start as usize + 100;
    rig.flash.bytes_mut()[at] ^= 0x10;
    abboot::mark_pending(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    let ops = rig.ops();
    for _ in 0..2 {
        let choice = rig.boot().unwrap();
        assert_eq!(
            events(&choice),
            [
                Event::ImageRejected {
                    slot: Slot::B,
                    state: SlotState::Pending,
                    reason: TestReject::HashMismatch
                },
                Event::Booted { slot: Slot::A, version: V1, trial: false },
            ]
        );
    }
    assert_eq!(rig.ops(), ops, "a check failure writes nothing");
    assert_eq!(rig.state(Slot::B), SlotState::Pending);
}

fn no_valid_image_is_an_error<const W: usize, const E: usize>(align: u32) {
    let mut rig = Rig::<W, E>::new(align);
    match rig.boot() {
        Err(BootError::NoBootableImage { events }) => assert!(events.is_empty()),
        other => panic!("{other:?}"),
    }
    // A corrupt, B pending but corrupt too.
    let mut rig = Rig::<W, E>::factory(align, V1);
    rig.install(Slot::B, V2);
    abboot::mark_pending(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    for slot in Slot::ALL {
        let at = rig.layout.image_area(slot).start as usize;
        rig.flash.bytes_mut()[at] = 0;
    }
    match rig.boot() {
        Err(BootError::NoBootableImage { events }) => assert_eq!(
            events.iter().cloned().collect::<Vec<_>>(),
            [
                Event::ImageRejected {
                    slot: Slot::A,
                    state: SlotState::Confirmed,
                    reason: TestReject::BadMagic
                },
                Event::ImageRejected {
                    slot: Slot::B,
                    state: SlotState::Pending,
                    reason: TestReject::BadMagic
                },
            ]
        ),
        other => panic!("{other:?}"),
    }
    // The error prints.
    assert_eq!(rig.boot().unwrap_err().to_string(), "no bootable image in either slot");
}

fn highest_confirmed_wins_and_falls_back<const W: usize, const E: usize>(align: u32) {
    let mut rig = Rig::<W, E>::factory(align, V1);
    rig.install(Slot::B, V2);
    abboot::provision_confirmed(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    assert_eq!(rig.boot().unwrap().slot, Slot::B);
    let at = rig.layout.image_area(Slot::B).start as usize + 40;
    rig.flash.bytes_mut()[at] ^= 1;
    let choice = rig.boot().unwrap();
    assert_eq!(
        events(&choice),
        [
            Event::ImageRejected {
                slot: Slot::B,
                state: SlotState::Confirmed,
                reason: TestReject::HashMismatch
            },
            Event::Booted { slot: Slot::A, version: V1, trial: false },
        ]
    );
}

fn erase_refused_during_trial<const W: usize, const E: usize>(align: u32) {
    let mut rig = on_trial::<W, E>(align);
    for slot in Slot::ALL {
        let e = abboot::erase_slot(&mut rig.flash, &rig.layout, slot).unwrap_err();
        assert!(matches!(e, Error::TrialInProgress { running: Slot::B, .. }), "{e}");
    }
    abboot::confirm(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    abboot::erase_slot(&mut rig.flash, &rig.layout, Slot::A).unwrap();
    assert_eq!(rig.state(Slot::A), SlotState::Blank);
    assert!(rig.flash.bytes()[rig.layout.slot(Slot::A).start as usize..][..4 * E].iter().all(|&b| b == 0xff));
}

fn metadata_writes_touch_only_trailers<const W: usize, const E: usize>(align: u32) {
    let mut rig = Rig::<W, E>::factory(align, V1);
    rig.install(Slot::B, V2);
    let before = rig.flash.bytes().to_vec();
    abboot::mark_pending(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    rig.boot().unwrap();
    abboot::confirm(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    rig.boot().unwrap();
    let trailers = [rig.layout.trailer(Slot::A), rig.layout.trailer(Slot::B)];
    for (i, (a, b)) in before.iter().zip(rig.flash.bytes()).enumerate() {
        if !trailers.iter().any(|t| t.contains(&(i as u32))) {
            assert_eq!(a, b, "byte {i:#x} outside the trailers changed");
        }
    }
    // A's trailer was never written during the update.
    let t = rig.layout.trailer(Slot::A);
    assert_eq!(before[t.start as usize..t.end as usize], rig.flash.bytes()[t.start as usize..t.end as usize]);
    let stats = rig.flash.stats();
    assert_eq!(stats.torn, 0);
}

fn mark_pending_is_idempotent_and_needs_blank<const W: usize, const E: usize>(align: u32) {
    let mut rig = updated::<W, E>(align);
    let ops = rig.ops();
    abboot::mark_pending(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    assert_eq!(rig.ops(), ops);
    let e = abboot::mark_pending(&mut rig.flash, &rig.layout, Slot::A).unwrap_err();
    assert!(matches!(e, Error::WrongState { slot: Slot::A, state: SlotState::Confirmed, .. }));
}

fn torn_fields_read_as_set<const W: usize, const E: usize>(align: u32) {
    let mut rig = Rig::<W, E>::factory(align, V1);
    rig.install(Slot::B, V2);
    // Half a magic, as a cut during mark_pending may leave it.
    let magic = rig.layout.field(Slot::B, abboot::Field::Magic);
    rig.flash.bytes_mut()[magic.end as usize - 16] = layout::MAGIC[0];
    let t = abboot::trailer(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    assert_eq!(t.magic, Mark::Other);
    assert_eq!(t.state(), SlotState::Pending);
    let ops = rig.ops();
    abboot::mark_pending(&mut rig.flash, &rig.layout, Slot::B).unwrap();
    assert_eq!(rig.ops(), ops, "a torn magic is never programmed again");
    let choice = rig.boot().unwrap();
    assert_eq!((choice.slot, choice.trial), (Slot::B, true));
    // A torn confirm (one stray bit in the padding) counts as confirmed.
    let confirmed = rig.layout.field(Slot::B, abboot::Field::Confirmed);
    rig.flash.bytes_mut()[confirmed.end as usize - 1] = 0xfe;
    assert_eq!(rig.state(Slot::B), SlotState::Confirmed);
}

fn interrupted_provisioning_is_damaged_then_finished<const W: usize, const E: usize>(align: u32) {
    let mut rig = Rig::<W, E>::new(align);
    rig.install(Slot::A, V1);
    let confirmed = rig.layout.field(Slot::A, abboot::Field::Confirmed);
    rig.flash.bytes_mut()[confirmed.start as usize] = layout::FLAG_SET;
    assert_eq!(rig.state(Slot::A), SlotState::Damaged);
    assert!(matches!(rig.boot(), Err(BootError::NoBootableImage { .. })));
    abboot::provision_confirmed(&mut rig.flash, &rig.layout, Slot::A).unwrap();
    assert_eq!(rig.state(Slot::A), SlotState::Confirmed);
    assert_eq!(rig.boot().unwrap().slot, Slot::A);
}

/// What `imgtool sign --pad [--confirm]` (max-align 8) leaves at the end of a slot: the magic in
/// the last 16 bytes, `image_ok` = 0x01 8 bytes before it.
#[test]
fn imgtool_padded_trailers() {
    for confirm in [true, false] {
        let mut rig = Rig::<4, 4096>::factory(8, V1);
        rig.install(Slot::B, V2);
        let end = rig.layout.slot(Slot::B).end as usize;
        let mem = rig.flash.bytes_mut();
        mem[end - 16..end].copy_from_slice(&layout::MAGIC);
        if confirm {
            mem[end - 24] = 0x01;
        }
        let t = abboot::trailer(&mut rig.flash, &rig.layout, Slot::B).unwrap();
        assert_eq!(t.magic, Mark::Written);
        let expected = if confirm { SlotState::Confirmed } else { SlotState::Pending };
        assert_eq!(t.state(), expected);
        let choice = rig.boot().unwrap();
        assert_eq!((choice.slot, choice.trial), (Slot::B, !confirm));
    }
}

/// The trailer's field offsets with the default pitch, from the end of the slot.
#[test]
fn trailer_offsets() {
    let l = abboot::Layout::new(0..0x1000, 0x1000..0x2000);
    assert_eq!(l.trailer_len(), 48);
    assert_eq!(l.field(Slot::B, abboot::Field::Magic), 0x2000 - 16..0x2000);
    assert_eq!(l.field(Slot::B, abboot::Field::Confirmed), 0x2000 - 24..0x2000 - 16);
    assert_eq!(l.field(Slot::B, abboot::Field::Trial), 0x2000 - 32..0x2000 - 24);
    assert_eq!(l.field(Slot::B, abboot::Field::SwapInfo), 0x2000 - 40..0x2000 - 32);
    assert_eq!(l.field(Slot::B, abboot::Field::Rejected), 0x2000 - 48..0x2000 - 40);
    assert_eq!(l.image_area(Slot::A), 0..0x1000 - 48);
}

#[test]
fn layout_errors() {
    use abboot::testing::StrictFlash;
    use abboot::{Layout, LayoutError};
    let flash = StrictFlash::<4, 4096>::new(8 * 4096);
    assert_eq!(Layout::new(0..0x4000, 0x4000..0x8000).check(&flash), Ok(()));
    assert!(matches!(
        Layout::new(0..0x4000, 0x4000..0x8100).check(&flash),
        Err(LayoutError::NotSectorAligned { slot: Slot::B, .. })
    ));
    assert!(matches!(
        Layout::new(0..0x4000, 0x4000..0x9000).check(&flash),
        Err(LayoutError::OutOfBounds { slot: Slot::B, .. })
    ));
    assert_eq!(Layout::new(0..0x5000, 0x4000..0x8000).check(&flash), Err(LayoutError::Overlap));
    assert!(matches!(
        Layout::new(0..0x4000, 0x4000..0x8000).with_align(12).check(&flash),
        Err(LayoutError::BadAlign { .. })
    ));
    let wide = StrictFlash::<16, 4096>::new(8 * 4096);
    assert!(matches!(
        Layout::new(0..0x4000, 0x4000..0x8000).check(&wide),
        Err(LayoutError::BadAlign { write_size: 16, .. })
    ));
}

/// A flash that fails every write: the bootloader reports it and does not boot an update whose
/// trial it could not record, but still boots the confirmed image.
#[test]
fn failed_trial_mark_falls_back() {
    use abboot::testing::TestChecker;
    let mut rig = updated::<4, 4096>(8);
    let choice =
        abboot::select(&mut FailWrites(&mut rig.flash), &rig.layout, &mut TestChecker::default()).unwrap();
    assert_eq!(
        events(&choice),
        [
            Event::FlashError {
                slot: Slot::B,
                op: FlashOp::MarkTrial,
                kind: embedded_storage::nor_flash::NorFlashErrorKind::Other
            },
            Event::Booted { slot: Slot::A, version: V1, trial: false },
        ]
    );
    assert_eq!(rig.state(Slot::B), SlotState::Pending);
}

/// Reads pass through, writes and erases fail.
struct FailWrites<'a>(&'a mut abboot::testing::StrictFlash<4, 4096>);

impl embedded_storage::nor_flash::ErrorType for FailWrites<'_> {
    type Error = embedded_storage::nor_flash::NorFlashErrorKind;
}

impl embedded_storage::nor_flash::ReadNorFlash for FailWrites<'_> {
    const READ_SIZE: usize = 1;
    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.0.read(offset, bytes)
    }
    fn capacity(&self) -> usize {
        self.0.capacity()
    }
}

impl embedded_storage::nor_flash::NorFlash for FailWrites<'_> {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = 4096;
    fn erase(&mut self, _: u32, _: u32) -> Result<(), Self::Error> {
        Err(embedded_storage::nor_flash::NorFlashErrorKind::Other)
    }
    fn write(&mut self, _: u32, _: &[u8]) -> Result<(), Self::Error> {
        Err(embedded_storage::nor_flash::NorFlashErrorKind::Other)
    }
}

/// Events print.
#[test]
fn events_display() {
    let e: Event<TestReject> = Event::Reverted { slot: Slot::B, reason: RevertReason::NotConfirmed };
    assert_eq!(e.to_string(), "slot B reverted: its trial was not confirmed");
    let e: Event<TestReject> = Event::DowngradeRefused { slot: Slot::B, version: V1, confirmed: V2 };
    assert_eq!(e.to_string(), "slot B (1.0.0+0) refused: not newer than the confirmed 2.0.0+0");
    let e: Event<TestReject> =
        Event::ImageRejected { slot: Slot::A, state: SlotState::Pending, reason: TestReject::HashMismatch };
    assert_eq!(e.to_string(), "slot A (pending) rejected by the image check: image hash mismatch");
    let e: Event<TestReject> = Event::Booted { slot: Slot::B, version: V2, trial: true };
    assert_eq!(e.to_string(), "booting slot B (2.0.0+0) on trial");
}
