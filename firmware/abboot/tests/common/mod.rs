//! A device for the tests: a strict flash with two four-sector slots, the toy image format.
#![allow(dead_code)]

use abboot::testing::{image, StrictFlash, TestChecker, TestReject};
use abboot::{BootChoice, BootError, Event, Layout, Slot, SlotState, Version};

pub const V1: Version = Version::new(1, 0, 0, 0);
pub const V2: Version = Version::new(2, 0, 0, 0);
pub const V3: Version = Version::new(3, 0, 0, 0);

/// The device: flash, layout, and the image payload size (one and a half sectors, so images
/// span a sector boundary).
#[derive(Clone)]
pub struct Rig<const W: usize, const E: usize> {
    pub flash: StrictFlash<W, E>,
    pub layout: Layout,
    pub payload: usize,
}

impl<const W: usize, const E: usize> Rig<W, E> {
    /// Blank flash, slot A in sectors 0..4, B in 4..8, trailer pitch `align`.
    pub fn new(align: u32) -> Self {
        let e = E as u32;
        let layout = Layout::new(0..4 * e, 4 * e..8 * e).with_align(align);
        Rig { flash: StrictFlash::new(8 * E), layout, payload: E + E / 2 }
    }

    /// A factory device: `version` in A, confirmed; B blank.
    pub fn factory(align: u32, version: Version) -> Self {
        let mut rig = Self::new(align);
        rig.install(Slot::A, version);
        abboot::provision_confirmed(&mut rig.flash, &rig.layout, Slot::A).unwrap();
        rig
    }

    /// The image of `version`.
    pub fn image(&self, version: Version) -> Vec<u8> {
        image::build(version, self.payload)
    }

    /// Writes the image of `version` into a slot (which must be erased).
    pub fn install(&mut self, slot: Slot, version: Version) {
        let img = self.image(version);
        image::write(&mut self.flash, &self.layout, slot, &img).unwrap();
    }

    /// One boot decision.
    // The error carries the boot's events (a fixed-size list, no allocation): large by design.
    #[allow(clippy::result_large_err)]
    pub fn boot(&mut self) -> Result<BootChoice<TestReject>, BootError<TestReject>> {
        abboot::select(&mut self.flash, &self.layout, &mut TestChecker::default())
    }

    /// A slot's state.
    pub fn state(&mut self, slot: Slot) -> SlotState {
        abboot::state(&mut self.flash, &self.layout, slot).unwrap()
    }

    /// Program and erase operations so far.
    pub fn ops(&self) -> u64 {
        self.flash.stats().ops()
    }
}

/// A boot's events, as a list.
pub fn events(choice: &BootChoice<TestReject>) -> Vec<Event<TestReject>> {
    choice.events.iter().cloned().collect()
}
