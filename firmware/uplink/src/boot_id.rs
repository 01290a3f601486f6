//! The boot id (PROTOCOL.md §2, `boot`): a number that grows with every boot of the device,
//! kept in a small log in NOR flash, so that `(boot, seq)` names a record for good.
//!
//! # Layout
//!
//! Two erase pages (`area`, e.g. `twinbed_bsp::map::BOOT_ID`: 2 × 4 KiB outside the A/B
//! layout). Each page is a log of 8-byte **records**: the id as a little-endian `u32`, then its
//! bitwise complement. A record is *valid* when the second word is the complement of the first;
//! a slot is *blank* when both words read 0xFFFF_FFFF. Ids start at 1 and only grow.
//!
//! # One boot ([`next`])
//!
//! 1. Read both pages: the highest valid id `m` (none: `m = 0`), the page holding it, and in
//!    that page the last slot that is not blank.
//! 2. The new id is `m + 1`.
//! 3. If the page of `m` has a slot after its last non-blank one, program the record there
//!    (two word programs: the id, then the complement). Otherwise (the page is full, or there is
//!    no valid record yet) **erase the other page** and program the record into its first slot.
//!    The page holding `m` is never erased by this boot.
//! 4. Read the record back; only then is the id returned. The app uses the id for records only
//!    after this, so an id the twin has ever seen is always one whose record was complete.
//!
//! A page holds 512 records, so each page is erased once every 1,024 boots.
//!
//! # Power cuts (NOR: a cut program clears only some of the bits it was clearing, a cut erase
//! sets only some of the bits it was setting)
//!
//! - **During the programs of step 3**: the slot holds a torn record. A torn first word with
//!   the second still erased is valid only if the first reads 0, which needs the id 0 (never
//!   written); a complete first word with a torn second is valid only if the second is complete.
//!   So a torn record is never valid: the next boot finds the same `m`, issues the same id
//!   `m + 1` again and writes it *after* the torn slot (a slot that is not blank is never
//!   programmed again). The id `m + 1` was not used by the cut boot (step 4 never finished), so
//!   nothing repeats.
//! - **During the erase of step 3**: the other page is left half erased, its words somewhere
//!   between their old contents and 0xFFFF_FFFF (bits only set). A record that was valid and is
//!   still valid after such a change is unchanged: with `a' = a | r0`, `b' = b | r1` and
//!   `b = !a`, `b' = !a'` forces `r0 ⊆ a` and `r1 ⊆ !a`, i.e. `a' = a`, `b' = b`. A record
//!   torn by a cut program stays invalid: a valid pair `(x, !x)` reached from it by setting bits
//!   would have `x ⊇ id` and `!x ⊇ !id`, so `x = id`, and then the torn word must already have
//!   been complete. So the half-erased page holds only old ids (below `m`) or garbage, `m`
//!   itself sits untouched in the page that was not erased, and the next boot finds the same `m`
//!   and erases that page again.
//! - **Hence**: every id this function has returned is below every id it returns later, across
//!   any sequence of cuts at any flash operation, torn any way the model allows. The host tests
//!   cut at every operation of 1,054 boots (two page switches), clean and with seeded torn
//!   states, and check exactly that.
//!
//! # Limits, stated plainly
//!
//! - **A page that never went through an erase** (a new device whose flash holds zeros or other
//!   data there) may, if an erase of it is cut, turn into words that happen to form a valid
//!   record with an arbitrary id (each 8-byte slot with probability 2⁻³²). Ids then jump forward
//!   (harmless: larger, never repeated), unless the jump lands near `u32::MAX`, where the ids
//!   run out early. Once both pages have been erased completely this cannot happen any more.
//! - **Ids run out** after `u32::MAX` boots: [`Error::Exhausted`], never a wrap.
//! - The proof assumes what the flash model (and this crate's test flash) does: a cut leaves
//!   each bit either old or new, and the bits read the same at every later read. A real NOR cell
//!   cut half way can read back unstably (a marginal 1 that reads 0 later). Always erasing a
//!   page before reusing it (never trusting that it reads blank) keeps that away from *new*
//!   records; a marginal bit inside an *old, unchanged-looking* record of a half-erased page is
//!   not defended against (it could only turn that record invalid or, with a second flip,
//!   into another old-looking value; it cannot reach `m` because that page was not erased).
//! - Flash errors (the controller refuses) are returned; the caller decides (the app then runs
//!   with boot id 0, which repeats, and says so).

use core::ops::Range;
use embedded_storage::nor_flash::NorFlash;

/// Bytes of one record: the id and its complement, one little-endian word each.
pub const RECORD: usize = 8;

/// Bytes read at a time while scanning.
const CHUNK: usize = 256;

/// Why no boot id could be issued.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error<E: core::fmt::Debug> {
    /// `area` is not two whole, aligned erase pages of at least 256 bytes, or the flash's
    /// write or read unit does not divide a record.
    #[error("the boot id area is not two aligned erase pages")]
    Area,
    /// A flash operation failed.
    #[error("flash operation failed: {0:?}")]
    Flash(E),
    /// The record just written does not read back as written.
    #[error("the boot id record at {offset:#x} does not read back")]
    Verify {
        /// Flash offset of the record.
        offset: u32,
    },
    /// The highest id is `u32::MAX`: there is no next one.
    #[error("boot ids used up")]
    Exhausted,
}

/// What a scan found in one page.
#[derive(Clone, Copy, Debug, Default)]
struct Page {
    /// Highest valid id.
    max: Option<u32>,
    /// Index of the last slot that is not blank.
    last_used: Option<usize>,
}

fn check_area<F: NorFlash>(area: &Range<u32>) -> Result<u32, Error<F::Error>> {
    let page = F::ERASE_SIZE as u32;
    let ok = page as usize >= CHUNK
        && (page as usize).is_multiple_of(CHUNK)
        && RECORD.is_multiple_of(F::WRITE_SIZE)
        && RECORD.is_multiple_of(F::READ_SIZE)
        && area.start.is_multiple_of(page)
        && area.end.checked_sub(area.start) == Some(2 * page);
    if ok {
        Ok(page)
    } else {
        Err(Error::Area)
    }
}

fn scan<F: NorFlash>(flash: &mut F, start: u32, page: u32) -> Result<Page, Error<F::Error>> {
    let mut found = Page::default();
    let mut buf = [0u8; CHUNK];
    for chunk in 0..page / CHUNK as u32 {
        let at = start + chunk * CHUNK as u32;
        flash.read(at, &mut buf).map_err(Error::Flash)?;
        for (i, rec) in buf.chunks_exact(RECORD).enumerate() {
            let a = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
            let b = u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]);
            let slot = (chunk as usize * CHUNK + i * RECORD) / RECORD;
            if a != u32::MAX || b != u32::MAX {
                found.last_used = Some(slot);
            }
            if b == !a {
                found.max = Some(found.max.map_or(a, |m| m.max(a)));
            }
        }
    }
    Ok(found)
}

/// The highest boot id recorded in `area` (flash offsets), without writing anything; `None` if
/// there is none.
pub fn current<F: NorFlash>(flash: &mut F, area: Range<u32>) -> Result<Option<u32>, Error<F::Error>> {
    let page = check_area::<F>(&area)?;
    let a = scan(flash, area.start, page)?;
    let b = scan(flash, area.start + page, page)?;
    Ok(a.max.max(b.max))
}

/// Issues this boot's id: the highest recorded plus one, recorded before it is returned (see
/// the module docs). `area` is two erase pages, in flash offsets.
pub fn next<F: NorFlash>(flash: &mut F, area: Range<u32>) -> Result<u32, Error<F::Error>> {
    let page = check_area::<F>(&area)?;
    let pages = [scan(flash, area.start, page)?, scan(flash, area.start + page, page)?];
    let slots = page as usize / RECORD;
    // The page holding the highest id (ids only grow, so it holds the newest record).
    let best = match (pages[0].max, pages[1].max) {
        (None, None) => None,
        (Some(a), Some(b)) => Some(if b > a { (b, 1) } else { (a, 0) }),
        (Some(a), None) => Some((a, 0)),
        (None, Some(b)) => Some((b, 1)),
    };
    let id = match best {
        None => 1,
        Some((m, _)) => m.checked_add(1).ok_or(Error::Exhausted)?,
    };
    let free = |p: usize| pages[p].last_used.map_or(0, |u| u + 1);
    let (target, slot) = match best {
        Some((_, p)) if free(p) < slots => (p, free(p)),
        // Full, or nothing valid anywhere: start the other page (page 0 on a new device).
        other => {
            let p = other.map_or(0, |(_, p)| 1 - p);
            let start = area.start + p as u32 * page;
            flash.erase(start, start + page).map_err(Error::Flash)?;
            (p, 0)
        }
    };
    let offset = area.start + target as u32 * page + (slot * RECORD) as u32;
    let mut rec = [0u8; RECORD];
    rec[..4].copy_from_slice(&id.to_le_bytes());
    rec[4..].copy_from_slice(&(!id).to_le_bytes());
    flash.write(offset, &rec).map_err(Error::Flash)?;
    let mut back = [0u8; RECORD];
    flash.read(offset, &mut back).map_err(Error::Flash)?;
    if back != rec {
        return Err(Error::Verify { offset });
    }
    Ok(id)
}
