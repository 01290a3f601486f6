//! The OTA agent: downloads an update offered on the OTA feed into the slot that does not run,
//! resumes an interrupted download, verifies the image, marks it pending and reboots into its
//! trial (the bootloader then starts it; the app confirms it after its health check).
//!
//! Resuming needs no bookkeeping: the agent compares the slot with the feed word by word. A word
//! that already holds its value is skipped, an erased one is programmed, and anything else (a
//! word torn by a power cut, an old image, a trailer from an earlier update) makes the agent
//! erase the slot and start over. An update rejected before (its trial failed) is not
//! downloaded again.

use abboot::{Layout, Slot, SlotState};
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use twinbed_bsp::flash::Flash;
use twinbed_bsp::map::ab;
use twinbed_bsp::ota::Feed;
use twinbed_bsp::println;

const ERASED: u32 = 0xffff_ffff;

fn flash_word(flash: &mut Flash, at: u32) -> u32 {
    let mut b = [0u8; 4];
    // A failed read reads as not erased, so the slot is rewritten rather than trusted.
    if flash.read(at, &mut b).is_err() {
        return 0;
    }
    u32::from_le_bytes(b)
}

/// What the slot holds compared with the first `words` words on offer that have arrived.
enum Compare {
    /// Every arrived word is in place (the whole image if all arrived).
    Same,
    /// Some words are still erased, none differs otherwise.
    Partial,
    /// Some word holds something else.
    Different,
}

fn compare(flash: &mut Flash, feed: &mut Feed, start: u32, words: u32) -> Compare {
    let mut partial = false;
    for i in 0..words {
        let Some(want) = feed.word(4 * i) else {
            return if partial { Compare::Partial } else { Compare::Same };
        };
        let have = flash_word(flash, start + 4 * i);
        if have != want {
            if have != ERASED {
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
    let words = size.div_ceil(4);
    let state = match abboot::state(flash, layout, other) {
        Ok(s) => s,
        Err(e) => {
            println!("ota: slot {other}'s state is unreadable ({e:?}); not updating");
            return;
        }
    };
    let same = compare(flash, &mut feed, area.start, words);
    match (state, &same) {
        (SlotState::Pending | SlotState::Trial, _) => {
            println!("ota: slot {other} already holds an update ({state})");
            return;
        }
        (SlotState::Rejected, Compare::Same) => {
            println!("ota: slot {other} holds this update, rejected before: not retrying");
            return;
        }
        (SlotState::Confirmed, Compare::Same) => {
            println!("ota: slot {other} holds this update, confirmed: nothing to do");
            return;
        }
        (SlotState::Blank, Compare::Same | Compare::Partial) => {}
        _ => {
            println!("ota: erasing slot {other} ({state})");
            if let Err(e) = abboot::erase_slot(flash, layout, other) {
                println!("ota: erasing slot {other} failed: {e:?}");
                return;
            }
        }
    }
    let (mut kept, mut written) = (0u32, 0u32);
    for i in 0..words {
        let Some(want) = feed.word(4 * i) else {
            println!("ota: slot {other}: {} of {size} bytes stored; waiting for the rest", 4 * i);
            return;
        };
        let at = area.start + 4 * i;
        let have = flash_word(flash, at);
        if have == want {
            kept += 1;
            continue;
        }
        if have != ERASED {
            println!(
                "ota: slot {other}: unexpected contents at +0x{:x}; erasing and starting over next boot",
                4 * i
            );
            let _ = abboot::erase_slot(flash, layout, other);
            return;
        }
        if let Err(e) = flash.write(at, &want.to_le_bytes()) {
            println!("ota: writing slot {other} failed at +0x{:x}: {e:?}", 4 * i);
            return;
        }
        written += 1;
    }
    if kept > 0 && written > 0 {
        println!("ota: slot {other}: resumed ({} bytes were already stored)", 4 * kept);
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
