//! Test doubles (feature `testing`, needs `alloc`): a strict in-memory NOR flash, a power-cut
//! wrapper that tears the operation it cuts, and a toy image format with its checker.
//!
//! Like MCUboot's `sim/simflash`, [`StrictFlash`] refuses what real NOR flash would not do,
//! and panics when asked to: a panic there is a bug in the code under test, never a condition
//! to handle. Every random choice is drawn from a seed ([`Rng`]), so a failure replays, and a
//! cut operation tears as the contract's NOR physics say (`twinbed_contract::tear`, the same
//! function the engine's flash controller model uses): a seed tears the same bits here and
//! there.

extern crate alloc;

use crate::{ImageCheck, Layout, Slot, Version};
use alloc::vec;
use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};
use twinbed_contract::tear;

/// The seeded generator of these doubles (torn bits, test data): the contract's SplitMix64,
/// the one the engine's flash model and the other host tests draw from.
pub type Rng = twinbed_contract::rng::SplitMix64;

/// Operation counts of a [`StrictFlash`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// `read` calls.
    pub reads: u64,
    /// `write` calls.
    pub write_calls: u64,
    /// Write units programmed (`WRITE_SIZE` bytes each).
    pub programs: u64,
    /// `erase` calls.
    pub erase_calls: u64,
    /// Sectors erased (`ERASE_SIZE` bytes each).
    pub erases: u64,
    /// Operations left torn by a [`PowerCut`].
    pub torn: u64,
}

impl Stats {
    /// Program and erase operations (units and sectors): what a [`PowerCut`] counts.
    pub const fn ops(&self) -> u64 {
        self.programs + self.erases
    }
}

/// An in-memory NOR flash with NOR's rules, enforced by panics:
/// - `erase` only whole `E`-byte sectors, which then read 0xFF;
/// - `write` only whole `W`-byte units at `W`-aligned offsets;
/// - programming can only turn bits from 1 to 0: a write asking for a 0 bit back to 1 panics;
/// - by default (**write-once**, as the `NorFlash` contract and ECC flashes demand) a unit may be
///   programmed only while it reads fully erased; [`StrictFlash::allow_reprogram`] relaxes this
///   to the bit rule alone.
#[derive(Clone, Debug)]
pub struct StrictFlash<const W: usize, const E: usize> {
    mem: Vec<u8>,
    write_once: bool,
    stats: Stats,
}

impl<const W: usize, const E: usize> StrictFlash<W, E> {
    /// `size` bytes (a whole number of sectors), erased.
    pub fn new(size: usize) -> Self {
        assert!(
            W > 0 && E.is_multiple_of(W) && size.is_multiple_of(E),
            "StrictFlash: bad geometry W={W} E={E} size={size}"
        );
        StrictFlash { mem: vec![0xff; size], write_once: true, stats: Stats::default() }
    }

    /// Allows programming a unit again (bits may still only go from 1 to 0).
    pub fn allow_reprogram(mut self) -> Self {
        self.write_once = false;
        self
    }

    /// The contents.
    pub fn bytes(&self) -> &[u8] {
        &self.mem
    }

    /// The contents, to corrupt on purpose (bypasses every rule and count).
    pub fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.mem
    }

    /// The operation counts.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    fn check_range(&self, offset: u32, len: usize, align: usize, what: &str) {
        let offset = offset as usize;
        assert!(
            offset.is_multiple_of(align) && len.is_multiple_of(align),
            "StrictFlash: {what} of {len} bytes at {offset:#x} is not aligned to {align}"
        );
        assert!(
            offset.checked_add(len).is_some_and(|end| end <= self.mem.len()),
            "StrictFlash: {what} of {len} bytes at {offset:#x} is past the end ({:#x})",
            self.mem.len()
        );
    }

    fn program_unit(&mut self, offset: usize, data: &[u8]) {
        let old = &self.mem[offset..offset + data.len()];
        if let Some(i) = (0..data.len()).find(|&i| data[i] & !old[i] != 0) {
            panic!(
                "StrictFlash: programming a 0 bit back to 1 at {:#x} (has {:#04x}, asked {:#04x})",
                offset + i,
                old[i],
                data[i]
            );
        }
        if self.write_once && old.iter().any(|&b| b != 0xff) {
            panic!("StrictFlash: write unit at {offset:#x} programmed twice without an erase (write-once)");
        }
        for (m, d) in self.mem[offset..offset + data.len()].iter_mut().zip(data) {
            *m &= d;
        }
        self.stats.programs += 1;
    }

    fn erase_sector(&mut self, offset: usize) {
        self.mem[offset..offset + E].fill(0xff);
        self.stats.erases += 1;
    }

    /// A torn program of one unit: a random subset (drawn from `seed`) of the bits that were to
    /// go from 1 to 0 do, as the contract's NOR physics (and the engine's flash model) tear it.
    fn tear_program(&mut self, offset: usize, data: &[u8], seed: u64) {
        tear::program(&mut self.mem[offset..offset + data.len()], data, seed);
        self.stats.torn += 1;
    }

    /// A torn erase of one sector: a random subset (drawn from `seed`) of the 0 bits go to 1.
    fn tear_erase(&mut self, offset: usize, seed: u64) {
        tear::erase(&mut self.mem[offset..offset + E], seed);
        self.stats.torn += 1;
    }
}

impl<const W: usize, const E: usize> ErrorType for StrictFlash<W, E> {
    // Misuse panics; nothing else can fail.
    type Error = NorFlashErrorKind;
}

impl<const W: usize, const E: usize> ReadNorFlash for StrictFlash<W, E> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Self::Error> {
        self.check_range(offset, bytes.len(), 1, "read");
        bytes.copy_from_slice(&self.mem[offset as usize..offset as usize + bytes.len()]);
        self.stats.reads += 1;
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.mem.len()
    }
}

impl<const W: usize, const E: usize> NorFlash for StrictFlash<W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Self::Error> {
        assert!(from <= to, "StrictFlash: erase {from:#x}..{to:#x} is backwards");
        self.check_range(from, (to - from) as usize, E, "erase");
        self.stats.erase_calls += 1;
        for s in (from as usize..to as usize).step_by(E) {
            self.erase_sector(s);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Self::Error> {
        self.check_range(offset, bytes.len(), W, "write");
        self.stats.write_calls += 1;
        for (i, unit) in bytes.chunks(W).enumerate() {
            self.program_unit(offset as usize + i * W, unit);
        }
        Ok(())
    }
}

/// What the operation that a [`PowerCut`] cuts leaves behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tear {
    /// Nothing: the cut operation had not started.
    Clean,
    /// A random subset (drawn from this seed) of the bits it was to change did change.
    Seeded(u64),
}

/// The error of a [`PowerCut`] flash once the power is gone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PowerLost;

impl NorFlashError for PowerLost {
    fn kind(&self) -> NorFlashErrorKind {
        NorFlashErrorKind::Other
    }
}

/// A [`StrictFlash`] whose power fails at its `n`-th operation (0-based; one operation = one
/// write unit programmed or one sector erased, the way a controller works through a call).
/// Operations before it complete; it is left as [`Tear`] says; it and every later call fail
/// with [`PowerLost`] and change nothing. To "reboot", drop it and wrap the same flash in a
/// fresh one.
pub struct PowerCut<'a, const W: usize, const E: usize> {
    flash: &'a mut StrictFlash<W, E>,
    cut_at: Option<u64>,
    tear: Tear,
    ops: u64,
    dead: bool,
}

impl<'a, const W: usize, const E: usize> PowerCut<'a, W, E> {
    /// Power that never fails (counts operations).
    pub fn new(flash: &'a mut StrictFlash<W, E>) -> Self {
        PowerCut { flash, cut_at: None, tear: Tear::Clean, ops: 0, dead: false }
    }

    /// Power that fails at operation `n`, leaving it as `tear` says.
    pub fn cut_at(flash: &'a mut StrictFlash<W, E>, n: u64, tear: Tear) -> Self {
        PowerCut { flash, cut_at: Some(n), tear, ops: 0, dead: false }
    }

    /// Operations completed.
    pub fn ops(&self) -> u64 {
        self.ops
    }

    /// Whether the power failed.
    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// The flash behind.
    pub fn flash(&self) -> &StrictFlash<W, E> {
        self.flash
    }

    /// Whether the next operation is the one to cut (and if so, the power is gone after it).
    fn cutting(&mut self) -> Result<bool, PowerLost> {
        if self.dead {
            return Err(PowerLost);
        }
        if self.cut_at == Some(self.ops) {
            self.dead = true;
            return Ok(true);
        }
        self.ops += 1;
        Ok(false)
    }

    /// The seed of the torn operation, if it tears.
    fn tear_seed(&self) -> Option<u64> {
        match self.tear {
            Tear::Clean => None,
            Tear::Seeded(seed) => Some(seed),
        }
    }
}

impl<const W: usize, const E: usize> ErrorType for PowerCut<'_, W, E> {
    type Error = PowerLost;
}

impl<const W: usize, const E: usize> ReadNorFlash for PowerCut<'_, W, E> {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), PowerLost> {
        if self.dead {
            return Err(PowerLost);
        }
        self.flash.read(offset, bytes).map_err(|_| PowerLost)
    }

    fn capacity(&self) -> usize {
        self.flash.capacity()
    }
}

impl<const W: usize, const E: usize> NorFlash for PowerCut<'_, W, E> {
    const WRITE_SIZE: usize = W;
    const ERASE_SIZE: usize = E;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), PowerLost> {
        if self.dead {
            return Err(PowerLost);
        }
        assert!(from <= to, "PowerCut: erase {from:#x}..{to:#x} is backwards");
        self.flash.check_range(from, (to - from) as usize, E, "erase");
        self.flash.stats.erase_calls += 1;
        for s in (from as usize..to as usize).step_by(E) {
            if self.cutting()? {
                if let Some(seed) = self.tear_seed() {
                    self.flash.tear_erase(s, seed);
                }
                return Err(PowerLost);
            }
            self.flash.erase_sector(s);
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), PowerLost> {
        if self.dead {
            return Err(PowerLost);
        }
        self.flash.check_range(offset, bytes.len(), W, "write");
        self.flash.stats.write_calls += 1;
        for (i, unit) in bytes.chunks(W).enumerate() {
            let at = offset as usize + i * W;
            if self.cutting()? {
                if let Some(seed) = self.tear_seed() {
                    self.flash.tear_program(at, unit, seed);
                }
                return Err(PowerLost);
            }
            self.flash.program_unit(at, unit);
        }
        Ok(())
    }
}

/// The toy image format of these tests (a stand-in for MCUboot's, which `mcuimage` checks):
///
/// | offset | size | |
/// |---|---|---|
/// | 0 | 4 | magic `TBIM` |
/// | 4 | 8 | version: major u8, minor u8, revision u16 LE, build u32 LE |
/// | 12 | 4 | payload length `n`, u32 LE |
/// | 16 | n | payload |
/// | 16 + n | 8 | FNV-1a 64 of everything before, LE |
pub mod image {
    use super::*;

    /// The magic.
    pub const MAGIC: [u8; 4] = *b"TBIM";
    /// Header length.
    pub const HEADER_LEN: usize = 16;

    /// An image of `version` with `payload_len` bytes of payload (drawn from the version).
    pub fn build(version: Version, payload_len: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + payload_len + 8);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(&[version.major, version.minor]);
        out.extend_from_slice(&version.revision.to_le_bytes());
        out.extend_from_slice(&version.build.to_le_bytes());
        out.extend_from_slice(&(payload_len as u32).to_le_bytes());
        let mut rng = Rng::new(u64::from(version.build) << 32 | u64::from(version.revision) << 16 | 0xa5);
        out.extend((0..payload_len).map(|_| rng.next_u8()));
        let hash = fnv1a(0xcbf2_9ce4_8422_2325, &out);
        out.extend_from_slice(&hash.to_le_bytes());
        out
    }

    /// Writes `image` at the start of the slot's image area (in 256-byte writes, padded with
    /// 0xFF to the write size), the way an OTA agent would after erasing the slot.
    pub fn write<F: NorFlash>(
        flash: &mut F,
        layout: &Layout,
        slot: Slot,
        image: &[u8],
    ) -> Result<(), F::Error> {
        let area = layout.image_area(slot);
        assert!(image.len() <= area.len(), "image of {} bytes does not fit slot {slot}", image.len());
        let chunk = 256usize.div_ceil(F::WRITE_SIZE) * F::WRITE_SIZE;
        let mut buf = vec![0xffu8; chunk];
        for (i, part) in image.chunks(chunk).enumerate() {
            let len = part.len().div_ceil(F::WRITE_SIZE) * F::WRITE_SIZE;
            buf.fill(0xff);
            buf[..part.len()].copy_from_slice(part);
            flash.write(area.start + (i * chunk) as u32, &buf[..len])?;
        }
        Ok(())
    }

    pub(super) fn fnv1a(mut h: u64, bytes: &[u8]) -> u64 {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        h
    }
}

/// Why the [`TestChecker`] refused an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TestReject {
    /// The first word reads erased: no image.
    Empty,
    /// Not the toy format's magic.
    BadMagic,
    /// The image runs past the image area.
    TooLong,
    /// The hash does not match.
    HashMismatch,
    /// Reading failed.
    Read(NorFlashErrorKind),
}

impl fmt::Display for TestReject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TestReject::Empty => f.write_str("no image"),
            TestReject::BadMagic => f.write_str("bad image magic"),
            TestReject::TooLong => f.write_str("image runs past its slot"),
            TestReject::HashMismatch => f.write_str("image hash mismatch"),
            TestReject::Read(kind) => write!(f, "read failed: {kind}"),
        }
    }
}

/// Checks [`image`]s in flash; counts its calls.
#[derive(Clone, Debug, Default)]
pub struct TestChecker {
    /// Calls so far.
    pub checks: u32,
}

impl<F: ReadNorFlash> ImageCheck<F> for TestChecker {
    type Reject = TestReject;

    fn check(&mut self, flash: &mut F, _slot: Slot, area: Range<u32>) -> Result<Version, TestReject> {
        self.checks += 1;
        let read = |flash: &mut F, at: u32, buf: &mut [u8]| {
            flash.read(at, buf).map_err(|e| TestReject::Read(e.kind()))
        };
        let mut header = [0u8; image::HEADER_LEN];
        read(flash, area.start, &mut header)?;
        if header[..4] == [0xff; 4] {
            return Err(TestReject::Empty);
        }
        if header[..4] != image::MAGIC {
            return Err(TestReject::BadMagic);
        }
        let version = Version::new(
            header[4],
            header[5],
            u16::from_le_bytes([header[6], header[7]]),
            u32::from_le_bytes([header[8], header[9], header[10], header[11]]),
        );
        let len = u32::from_le_bytes([header[12], header[13], header[14], header[15]]) as u64;
        let total = image::HEADER_LEN as u64 + len + 8;
        if total > u64::from(area.end - area.start) {
            return Err(TestReject::TooLong);
        }
        let mut hash = image::fnv1a(0xcbf2_9ce4_8422_2325, &header);
        let mut at = area.start + image::HEADER_LEN as u32;
        let body_end = area.start + image::HEADER_LEN as u32 + len as u32;
        let mut buf = [0u8; 256];
        while at < body_end {
            let n = ((body_end - at) as usize).min(buf.len());
            read(flash, at, &mut buf[..n])?;
            hash = image::fnv1a(hash, &buf[..n]);
            at += n as u32;
        }
        let mut stored = [0u8; 8];
        read(flash, body_end, &mut stored)?;
        if u64::from_le_bytes(stored) != hash {
            return Err(TestReject::HashMismatch);
        }
        Ok(version)
    }
}
