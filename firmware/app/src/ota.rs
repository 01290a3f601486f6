//! The OTA agent: downloads an update offered on the OTA feed into the slot that does not run,
//! resumes an interrupted download, verifies the image, marks it pending and reboots into its
//! trial (the bootloader then starts it; the app confirms it after its health check).
//!
//! Resuming needs no bookkeeping: the agent compares the slot with the feed row by row (256
//! bytes, one flash operation each). A row that already holds its bytes is skipped, one whose
//! other words are still erased is programmed, and anything else (a row torn by a power cut,
//! an old image, a trailer from an earlier update) makes the agent erase what the image needs
//! and start over. An update rejected before (its trial failed) is not downloaded again.

use abboot::{Layout, Slot, SlotState};
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use twinbed_bsp::flash::Flash;
use twinbed_bsp::map::ab;
use twinbed_bsp::ota::Feed;
use twinbed_bsp::println;

/// The agent moves the image in rows: the flash controller programs a 256-byte row in one
/// operation.
const ROW: usize = twinbed_bsp::flash::ROW_SIZE;

/// What a stretch of the slot holds compared with the image's bytes for it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Compare {
    /// Every word is in place.
    Same,
    /// Some words are still erased, the others in place: programming finishes it.
    Partial,
    /// Some word holds something else (a torn row, an older image): only an erase helps.
    Different,
}

fn compare_row(have: &[u8], want: &[u8]) -> Compare {
    let mut partial = false;
    for (h, w) in have.chunks_exact(4).zip(want.chunks_exact(4)) {
        if h != w {
            if h != [0xff; 4] {
                return Compare::Different;
            }
            partial = true;
        }
    }
    if partial {
        Compare::Partial
    } else {
        Compare::Same
    }
}

/// The image's row at `off` and the slot's bytes there; `None` if the row has not fully
/// arrived. Past the image's `len` bytes (a multiple of 4) the row is 0xFF, which programming
/// leaves as it is, so the last row too is one operation.
fn row<'a>(
    flash: &mut Flash,
    feed: &mut Feed,
    start: u32,
    off: u32,
    len: u32,
    bufs: &'a mut ([u8; ROW], [u8; ROW]),
) -> Option<(&'a [u8], &'a [u8])> {
    let (want, have) = (&mut bufs.0[..], &mut bufs.1[..]);
    let n = (len - off).min(ROW as u32) as usize;
    if !feed.read(off, &mut want[..n]) {
        return None;
    }
    want[n..].fill(0xff);
    // A failed read reads as garbage, so the slot is rewritten rather than trusted.
    if flash.read(start + off, have).is_err() {
        have.fill(0);
    }
    Some((want, have))
}

/// The slot against the image's bytes that have arrived, row by row.
fn compare(flash: &mut Flash, feed: &mut Feed, start: u32, len: u32) -> Compare {
    let mut bufs = ([0u8; ROW], [0u8; ROW]);
    let mut all = Compare::Same;
    for off in (0..len).step_by(ROW) {
        let Some((want, have)) = row(flash, feed, start, off, len, &mut bufs) else { break };
        match compare_row(have, want) {
            Compare::Different => return Compare::Different,
            Compare::Partial => all = Compare::Partial,
            Compare::Same => {}
        }
    }
    all
}

/// Erases what an image of `size` bytes needs in `slot`; false (and says why) if that failed.
fn erase(flash: &mut Flash, layout: &Layout, slot: Slot, size: u32, state: SlotState) -> bool {
    println!("ota: erasing slot {slot} for {size} bytes ({state})");
    match abboot::erase_for_image(flash, layout, slot, size.next_multiple_of(4)) {
        Ok(()) => true,
        Err(e) => {
            println!("ota: erasing slot {slot} failed: {e:?}");
            false
        }
    }
}

/// Looks at the feed and acts; returns only when there is nothing (more) to do now.
pub fn run(own: Slot, flash: &mut Flash, layout: &Layout) {
    let Some(mut feed) = Feed::take() else { return };
    let size = feed.size();
    if size == 0 {
        return;
    }
    let other = own.other();
    let area = layout.image_area(other);
    // Which slot the image is for: its reset vector, right after the header.
    let mut vt = [0u8; 8];
    if !feed.read(ab::HEADER, &mut vt) {
        println!("ota: an update of {size} bytes is on offer; waiting for its first bytes");
        return;
    }
    let reset = u32::from_le_bytes([vt[4], vt[5], vt[6], vt[7]]) & !1;
    let code = flash.base() + area.start + ab::HEADER..flash.base() + area.end;
    if !code.contains(&reset) {
        println!("ota: the update on offer is linked for slot {own}, which runs: nothing to do");
        return;
    }
    if size > area.end - area.start {
        println!("ota: the update on offer ({size} bytes) does not fit slot {other}; ignored");
        return;
    }
    // Whole words: the image's length rounded up.
    let len = size.next_multiple_of(4);
    let state = match abboot::state(flash, layout, other) {
        Ok(s) => s,
        Err(e) => {
            println!("ota: slot {other}'s state is unreadable ({e:?}); not updating");
            return;
        }
    };
    // A blank trailer may sit over a download cut short: resume it. A slot holding an image
    // that ran (or was refused) is compared first: the same update is not taken twice.
    let mut erased = false;
    match state {
        SlotState::Pending | SlotState::Trial => {
            println!("ota: slot {other} already holds an update ({state})");
            return;
        }
        SlotState::Blank => {}
        SlotState::Rejected | SlotState::Confirmed | SlotState::Damaged => {
            match (state, compare(flash, &mut feed, area.start, len)) {
                (SlotState::Rejected, Compare::Same) => {
                    println!("ota: slot {other} holds this update, rejected before: not retrying");
                    return;
                }
                (SlotState::Confirmed, Compare::Same) => {
                    println!("ota: slot {other} holds this update, confirmed: nothing to do");
                    return;
                }
                _ => {}
            }
            if !erase(flash, layout, other, size, state) {
                return;
            }
            erased = true;
        }
    }
    let (mut kept, mut written) = (0u32, 0u32);
    let mut bufs = ([0u8; ROW], [0u8; ROW]);
    let mut off = 0;
    while off < len {
        let Some((want, have)) = row(flash, &mut feed, area.start, off, len, &mut bufs) else {
            println!("ota: slot {other}: {off} of {size} bytes stored; waiting for the rest");
            return;
        };
        match compare_row(have, want) {
            Compare::Same => kept += want.len() as u32,
            Compare::Partial => {
                // Programming a word that already holds its value changes nothing, so the
                // whole row goes in one operation.
                if let Err(e) = flash.write(area.start + off, want) {
                    println!("ota: writing slot {other} failed at +0x{off:x}: {e:?}");
                    return;
                }
                written += want.len() as u32;
            }
            Compare::Different if !erased => {
                // A row torn by a power cut, or what an earlier image left: start over.
                println!("ota: slot {other}: unexpected contents at +0x{off:x}; starting over");
                if !erase(flash, layout, other, size, state) {
                    return;
                }
                (erased, kept, written, off) = (true, 0, 0, 0);
                continue;
            }
            Compare::Different => {
                println!("ota: slot {other}: +0x{off:x} differs right after an erase; giving up");
                return;
            }
        }
        off += ROW as u32;
    }
    if kept > 0 && written > 0 && !erased {
        println!("ota: slot {other}: resumed ({kept} bytes were already stored)");
    }
    let start = area.start;
    let mut read = |off: u32, buf: &mut [u8]| flash.read(start + off, buf);
    let version = match mcuimage::verify_from(&mut read, area.end - area.start, &mcuimage::DEV_PUBLIC_KEY) {
        Ok(image) => image.version(),
        Err(e) => {
            println!("ota: the update in slot {other} does not verify ({e:?}); erasing it");
            let _ = abboot::erase_slot(flash, layout, other);
            return;
        }
    };
    if let Err(e) = abboot::mark_pending(flash, layout, other) {
        println!("ota: marking slot {other} pending failed: {e:?}");
        return;
    }
    println!("ota: update {version} stored in slot {other} and verified; rebooting into its trial");
    cortex_m::peripheral::SCB::sys_reset();
}
