//! THE sweep: every scenario is run once to count its flash operations N, then again for every
//! cut point i in 0..N, with the power cut clean (the operation did not start) and torn (a
//! seeded random subset of its bits changed). After each cut the device reboots as a device
//! would (boot after boot, the app confirming a trial when the scenario says it does) until a
//! boot writes nothing, and every boot and the end state are checked:
//!
//! - every boot picks an image that checks, of an expected version: the old image in A, or the
//!   new one in B (never the refused or rejected one);
//! - B boots on trial at most once, and otherwise only once confirmed;
//! - the device ends on the new image, confirmed, or on the old one with the update retryable
//!   (marking pending again, or if B was rejected or left half-erased, a new download, leads
//!   to the new image confirmed);
//! - it is never bricked: `select` never fails while A holds its valid confirmed image.
//!
//! Deterministic: the tears come from `ABBOOT_SWEEP_SEED` (default below); a failure prints the
//! scenario, cut point, variant and seeds. The counts print with `-- --nocapture`.

mod common;

use abboot::testing::{image, PowerCut, PowerLost, Rng, StrictFlash, Tear, TestChecker};
use abboot::{BootError, Error, ImageCheck, Layout, Slot, SlotState, Version};
use common::{Rig, V1, V2, V3};

const DEFAULT_SEED: u64 = 0x7b1d_5eed_0ab0_0b17;
/// Torn variants per cut point, besides the clean one.
const TORN_VARIANTS: u64 = 3;
/// Boots after a cut before the device must have settled.
const MAX_BOOTS: usize = 8;
/// The image B held before the update in `Reinstall` (a failed trial, rejected).
const V1_5: Version = Version::new(1, 5, 0, 0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scenario {
    /// Mark B pending, boot it on trial, confirm, boot.
    Confirm,
    /// Mark B pending, boot it on trial, reset unconfirmed, boot (revert), boot.
    Revert,
    /// B holds a rejected image: erase B, download the update, mark pending, trial, confirm.
    Reinstall,
    /// A holds 3.0 confirmed; B gets 2.0 marked pending: refused; boot, boot.
    Downgrade,
}

impl Scenario {
    const ALL: [Scenario; 4] =
        [Scenario::Confirm, Scenario::Revert, Scenario::Reinstall, Scenario::Downgrade];

    /// The image in A (confirmed throughout).
    fn old(self) -> Version {
        if self == Scenario::Downgrade {
            V3
        } else {
            V1
        }
    }

    /// The update.
    fn update(self) -> Version {
        V2
    }

    /// Whether the app confirms a trial.
    fn app_confirms(self) -> bool {
        matches!(self, Scenario::Confirm | Scenario::Reinstall)
    }

    /// Whether B may ever boot.
    fn b_may_boot(self) -> bool {
        self != Scenario::Downgrade
    }

    /// The device before the scenario.
    fn setup<const W: usize, const E: usize>(self, align: u32) -> Rig<W, E> {
        let mut rig = Rig::<W, E>::factory(align, self.old());
        match self {
            Scenario::Reinstall => {
                // A previous update that failed its trial.
                rig.install(Slot::B, V1_5);
                abboot::mark_pending(&mut rig.flash, &rig.layout, Slot::B).unwrap();
                assert!(rig.boot().unwrap().trial);
                assert_eq!(rig.boot().unwrap().slot, Slot::A);
                assert_eq!(rig.state(Slot::B), SlotState::Rejected);
            }
            _ => rig.install(Slot::B, self.update()),
        }
        rig
    }
}

/// The power went.
#[derive(Debug)]
struct Cut;

/// An app-side call through a power-cut flash: power loss is a cut, anything else a bug.
fn app<T>(r: Result<T, Error<PowerLost>>) -> Result<T, Cut> {
    match r {
        Ok(t) => Ok(t),
        Err(Error::Flash(PowerLost)) => Err(Cut),
        Err(e) => panic!("unexpected app-side error: {e}"),
    }
}

/// What the checks see of one run of the device.
#[derive(Default)]
struct Watch {
    b_trials: u32,
    boots: u32,
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    Completed,
    StayedOldRemarked,
    StayedOldRedownloaded,
    Bricked,
}

struct Case<'a> {
    scenario: Scenario,
    layout: &'a Layout,
    update: &'a [u8],
}

impl Case<'_> {
    /// One boot: the decision, checked. `Err(Cut)` if the power went during it (the device
    /// never jumped). `Ok(None)`: bricked.
    fn boot<const W: usize, const E: usize>(
        &self,
        pc: &mut PowerCut<'_, W, E>,
        watch: &mut Watch,
    ) -> Result<Result<Option<abboot::BootChoice<abboot::testing::TestReject>>, String>, Cut> {
        let b_before = app(abboot::state(pc, self.layout, Slot::B))?;
        let result = abboot::select(pc, self.layout, &mut TestChecker::default());
        if pc.is_dead() {
            return Err(Cut);
        }
        watch.boots += 1;
        let choice = match result {
            Ok(c) => c,
            Err(BootError::NoBootableImage { .. }) => return Ok(Ok(None)),
            Err(e) => panic!("{e}"),
        };
        let verdict = (|| {
            let checked = TestChecker::default().check(pc, choice.slot, self.layout.image_area(choice.slot));
            if checked != Ok(choice.version) {
                return Err(format!("booted slot {} whose image checks as {checked:?}", choice.slot));
            }
            match choice.slot {
                Slot::A if choice.version != self.scenario.old() || choice.trial => {
                    Err(format!("slot A booted as {} trial={}", choice.version, choice.trial))
                }
                Slot::A => Ok(()),
                Slot::B if !self.scenario.b_may_boot() || choice.version != self.scenario.update() => {
                    Err(format!("slot B booted with {} (refused or rejected image)", choice.version))
                }
                Slot::B if choice.trial => {
                    watch.b_trials += 1;
                    if watch.b_trials > 1 {
                        Err("slot B tried again after a trial that was not confirmed".into())
                    } else if b_before != SlotState::Pending {
                        Err(format!("slot B booted on trial from state {b_before}"))
                    } else {
                        Ok(())
                    }
                }
                Slot::B if b_before != SlotState::Confirmed => {
                    Err(format!("slot B booted without trial from state {b_before}"))
                }
                Slot::B => Ok(()),
            }
        })();
        Ok(verdict.map(|()| Some(choice)))
    }

    /// The scripted scenario, up to its end or the cut.
    fn script<const W: usize, const E: usize>(
        &self,
        pc: &mut PowerCut<'_, W, E>,
        watch: &mut Watch,
    ) -> Result<Result<(), String>, Cut> {
        let l = self.layout;
        let boot = |pc: &mut PowerCut<'_, W, E>,
                    watch: &mut Watch,
                    trial: bool|
         -> Result<Result<(), String>, Cut> {
            Ok(match self.boot(pc, watch)? {
                Ok(Some(c)) if c.trial == trial => {
                    if trial && self.scenario.app_confirms() {
                        app(abboot::confirm(pc, l, c.slot))?;
                    }
                    Ok(())
                }
                Ok(Some(c)) => {
                    Err(format!("scripted boot: slot {} trial={}, expected trial={trial}", c.slot, c.trial))
                }
                Ok(None) => Err("scripted boot: no bootable image".into()),
                Err(e) => Err(e),
            })
        };
        macro_rules! step {
            ($e:expr) => {
                if let Err(e) = $e? {
                    return Ok(Err(e));
                }
            };
        }
        match self.scenario {
            Scenario::Confirm => {
                app(abboot::mark_pending(pc, l, Slot::B))?;
                step!(boot(pc, watch, true));
                step!(boot(pc, watch, false));
            }
            Scenario::Revert => {
                app(abboot::mark_pending(pc, l, Slot::B))?;
                step!(boot(pc, watch, true));
                step!(boot(pc, watch, false));
                step!(boot(pc, watch, false));
            }
            Scenario::Reinstall => {
                app(abboot::erase_for_image(pc, l, Slot::B, self.update.len() as u32))?;
                image::write(pc, l, Slot::B, self.update).map_err(|PowerLost| Cut)?;
                app(abboot::mark_pending(pc, l, Slot::B))?;
                step!(boot(pc, watch, true));
                step!(boot(pc, watch, false));
            }
            Scenario::Downgrade => {
                app(abboot::mark_pending(pc, l, Slot::B))?;
                step!(boot(pc, watch, false));
                step!(boot(pc, watch, false));
            }
        }
        Ok(Ok(()))
    }

    /// After a cut: boots until one writes nothing, then checks where the device ended.
    fn recover<const W: usize, const E: usize>(
        &self,
        flash: &mut StrictFlash<W, E>,
        watch: &mut Watch,
    ) -> Result<End, String> {
        for _ in 0..MAX_BOOTS {
            let before = flash.stats().ops();
            let mut pc = PowerCut::new(flash);
            let choice = match self.boot(&mut pc, watch).expect("no cut after the cut")? {
                Some(c) => c,
                None => return Ok(End::Bricked),
            };
            let confirmed = choice.trial && self.scenario.app_confirms();
            if confirmed {
                let state = abboot::state(&mut pc, self.layout, choice.slot).unwrap();
                if state != SlotState::Trial {
                    return Err(format!("running a trial of slot {} in state {state}", choice.slot));
                }
                abboot::confirm(&mut pc, self.layout, choice.slot).unwrap();
            }
            if !confirmed && flash.stats().ops() == before {
                return self.settled(flash, choice.slot);
            }
        }
        Err(format!("not settled after {MAX_BOOTS} boots"))
    }

    /// Where a settled device ended; if on the old image, proves the update can be retried.
    fn settled<const W: usize, const E: usize>(
        &self,
        flash: &StrictFlash<W, E>,
        slot: Slot,
    ) -> Result<End, String> {
        let mut rig = Rig::<W, E> { flash: flash.clone(), layout: self.layout.clone(), payload: 0 };
        let (a, b) = (rig.state(Slot::A), rig.state(Slot::B));
        if a != SlotState::Confirmed {
            return Err(format!("slot A ended {a}"));
        }
        if slot == Slot::B {
            return if self.scenario.app_confirms() && b == SlotState::Confirmed {
                Ok(End::Completed)
            } else {
                Err(format!("ended on slot B in state {b}"))
            };
        }
        // On the old image: retry the update.
        let b_image = TestChecker::default().check(&mut rig.flash, Slot::B, self.layout.image_area(Slot::B));
        let (retry, end) = match b_image {
            Ok(v) if matches!(b, SlotState::Blank | SlotState::Pending) && self.scenario.b_may_boot() => {
                (v, End::StayedOldRemarked)
            }
            _ => {
                let retry = if self.scenario == Scenario::Downgrade { Version::new(4, 0, 0, 0) } else { V3 };
                abboot::erase_slot(&mut rig.flash, &rig.layout, Slot::B)
                    .map_err(|e| format!("retry: {e}"))?;
                let img = image::build(retry, self.update.len() - image::HEADER_LEN - 8);
                image::write(&mut rig.flash, &rig.layout, Slot::B, &img).unwrap();
                (retry, End::StayedOldRedownloaded)
            }
        };
        abboot::mark_pending(&mut rig.flash, &rig.layout, Slot::B)
            .map_err(|e| format!("retry: mark pending: {e}"))?;
        let c = rig.boot().map_err(|e| format!("retry: {e}"))?;
        if (c.slot, c.version, c.trial) != (Slot::B, retry, true) {
            return Err(format!("retry: booted slot {} {} trial={}", c.slot, c.version, c.trial));
        }
        abboot::confirm(&mut rig.flash, &rig.layout, Slot::B).map_err(|e| format!("retry: {e}"))?;
        let c = rig.boot().map_err(|e| format!("retry: {e}"))?;
        if (c.slot, c.version, c.trial) != (Slot::B, retry, false) {
            return Err(format!("retry: then booted slot {} {} trial={}", c.slot, c.version, c.trial));
        }
        Ok(end)
    }
}

#[derive(Default, Debug)]
struct Counts {
    operations: u64,
    cuts: u64,
    torn: u64,
    completed: u64,
    stayed_old: u64,
    remarked: u64,
    redownloaded: u64,
    bricked: u64,
}

fn base_seed() -> u64 {
    match std::env::var("ABBOOT_SWEEP_SEED") {
        Ok(s) => {
            let s = s.trim();
            let parsed = match s.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => s.parse(),
            };
            parsed.unwrap_or_else(|_| panic!("ABBOOT_SWEEP_SEED={s} is not a number"))
        }
        Err(_) => DEFAULT_SEED,
    }
}

fn sweep<const W: usize, const E: usize>(align: u32) {
    let seed = base_seed();
    println!("power-cut sweep, write size {W}, erase size {E}, pitch {align}, seed {seed:#x}");
    for (si, scenario) in Scenario::ALL.into_iter().enumerate() {
        let rig0 = scenario.setup::<W, E>(align);
        let update = rig0.image(scenario.update());
        let case = Case { scenario, layout: &rig0.layout, update: &update };

        // The clean run: count the operations, check where it ends.
        let mut flash = rig0.flash.clone();
        let mut watch = Watch::default();
        let mut pc = PowerCut::new(&mut flash);
        case.script(&mut pc, &mut watch)
            .expect("no cut")
            .unwrap_or_else(|e| panic!("{scenario:?}, no cut: {e}"));
        let n = pc.ops();
        let end =
            case.recover(&mut flash, &mut watch).unwrap_or_else(|e| panic!("{scenario:?}, no cut: {e}"));
        let expected = if scenario.app_confirms() { End::Completed } else { End::StayedOldRedownloaded };
        assert_eq!(end, expected, "{scenario:?} without a cut");

        let mut counts = Counts { operations: n, ..Counts::default() };
        for i in 0..n {
            for variant in 0..=TORN_VARIANTS {
                let tear = match variant {
                    0 => Tear::Clean,
                    k => Tear::Seeded(Rng::new(seed ^ (si as u64) << 56 ^ i << 8 ^ k).next_u64()),
                };
                let fail = |what: String| -> ! {
                    panic!(
                        "{scenario:?} (W={W} E={E}): cut at operation {i} of {n}, {tear:?}, sweep seed {seed:#x} \
                         (replay: ABBOOT_SWEEP_SEED={seed:#x}): {what}"
                    )
                };
                let mut flash = rig0.flash.clone();
                let mut watch = Watch::default();
                let mut pc = PowerCut::cut_at(&mut flash, i, tear);
                match case.script(&mut pc, &mut watch) {
                    Err(Cut) => {}
                    Ok(Ok(())) => fail("the scenario ended before the cut".into()),
                    Ok(Err(e)) => fail(e),
                }
                counts.cuts += 1;
                counts.torn += u64::from(variant > 0);
                match case.recover(&mut flash, &mut watch) {
                    Ok(End::Completed) => counts.completed += 1,
                    Ok(End::StayedOldRemarked) => {
                        counts.stayed_old += 1;
                        counts.remarked += 1;
                    }
                    Ok(End::StayedOldRedownloaded) => {
                        counts.stayed_old += 1;
                        counts.redownloaded += 1;
                    }
                    Ok(End::Bricked) => counts.bricked += 1,
                    Err(e) => fail(e),
                }
            }
        }
        println!(
            "  {scenario:?}: operations {}, cuts {} ({} torn variants each, {} torn), completed {}, \
             stayed old {} (retry by marking again {}, by a new download {}), bricked {}",
            counts.operations,
            counts.cuts,
            TORN_VARIANTS,
            counts.torn,
            counts.completed,
            counts.stayed_old,
            counts.remarked,
            counts.redownloaded,
            counts.bricked
        );
        assert_eq!(counts.cuts, n * (TORN_VARIANTS + 1));
        assert_eq!(counts.completed + counts.stayed_old + counts.bricked, counts.cuts);
        assert_eq!(counts.bricked, 0, "{scenario:?}: bricked (seed {seed:#x})");
        if !scenario.app_confirms() {
            assert_eq!(counts.completed, 0, "{scenario:?} must never end on B");
        }
    }
}

#[test]
fn sweep_w4_e4096() {
    sweep::<4, 4096>(8);
}

#[test]
fn sweep_w8_e2048() {
    sweep::<8, 2048>(8);
}

#[test]
fn sweep_w1_e256() {
    sweep::<1, 256>(8);
}

#[test]
fn sweep_w16_e1024() {
    sweep::<16, 1024>(16);
}
