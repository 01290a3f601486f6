//! The boot id log on a strict NOR flash: ids grow across boots and page switches, and a power
//! cut at any flash operation, torn in any seeded way, never makes an issued id come again.

use abboot::testing::{PowerCut, Rng, StrictFlash, Tear};
use uplink::boot_id::{self, Error};

/// Word-programmed, 4 KiB pages, like the board's controller; the log in pages 1 and 2 (page
/// 0 stands for what lies before it).
type Flash = StrictFlash<4, 4096>;
const AREA: core::ops::Range<u32> = 0x1000..0x3000;
const RECORDS_PER_PAGE: u32 = 4096 / 8;

fn flash() -> Flash {
    StrictFlash::new(0x4000)
}

#[test]
fn ids_count_up_across_page_switches() {
    let mut f = flash();
    assert_eq!(boot_id::current(&mut f, AREA), Ok(None));
    for want in 1..=3 * RECORDS_PER_PAGE + 5 {
        assert_eq!(boot_id::next(&mut f, AREA), Ok(want));
        assert_eq!(boot_id::current(&mut f, AREA), Ok(Some(want)));
    }
    // Two programs a boot, and an erase at each switch (the first boot's page 0 included).
    assert_eq!(f.stats().erases, 4);
    assert_eq!(f.stats().programs, 2 * u64::from(3 * RECORDS_PER_PAGE + 5));
    assert!(f.bytes()[..0x1000].iter().all(|&b| b == 0xff), "nothing outside the area");
    assert!(f.bytes()[0x3000..].iter().all(|&b| b == 0xff), "nothing outside the area");
}

#[test]
fn a_new_device_with_zeros_or_garbage_there_starts_at_1() {
    for fill in [0x00u8, 0x5a] {
        let mut f = flash();
        f.bytes_mut()[AREA.start as usize..AREA.end as usize].fill(fill);
        assert_eq!(boot_id::next(&mut f, AREA), Ok(1));
        assert_eq!(boot_id::next(&mut f, AREA), Ok(2));
    }
}

#[test]
fn records_have_the_documented_layout() {
    let mut f = flash();
    for _ in 0..3 {
        boot_id::next(&mut f, AREA).unwrap();
    }
    let page = &f.bytes()[AREA.start as usize..];
    assert_eq!(page[..8], [1, 0, 0, 0, 0xfe, 0xff, 0xff, 0xff]);
    assert_eq!(page[16..24], [3, 0, 0, 0, 0xfc, 0xff, 0xff, 0xff]);
    assert_eq!(page[24..32], [0xff; 8]);
}

#[test]
fn bad_areas_and_the_last_id_are_errors() {
    let mut f = flash();
    assert_eq!(boot_id::next(&mut f, 0x1000..0x2000), Err(Error::Area));
    assert_eq!(boot_id::next(&mut f, 0x1100..0x3100), Err(Error::Area));
    let max = u32::MAX;
    let rec: Vec<u8> = max.to_le_bytes().into_iter().chain((!max).to_le_bytes()).collect();
    f.bytes_mut()[0x2000..0x2008].copy_from_slice(&rec);
    assert_eq!(boot_id::next(&mut f, AREA), Err(Error::Exhausted));
}

/// What a sequence of boots issued, cut at operation `cut` (counted over the whole sequence),
/// torn as `tear` says. Every boot after the cut runs on the same flash, uncut.
fn boots_with_a_cut(f: &mut Flash, boots: u32, cut: Option<u64>, tear: Tear) -> Vec<u32> {
    let mut issued = vec![];
    let mut done_ops = 0u64;
    let mut cut = cut;
    for _ in 0..boots {
        let (r, ops, dead) = {
            let mut p = match cut {
                Some(n) if n >= done_ops => PowerCut::cut_at(f, n - done_ops, tear),
                _ => PowerCut::new(f),
            };
            let r = boot_id::next(&mut p, AREA);
            (r, p.ops(), p.is_dead())
        };
        done_ops += ops;
        if dead {
            assert!(r.is_err(), "a cut boot returns no id");
            done_ops += 1;
            cut = None;
            continue;
        }
        issued.push(r.expect("an uncut boot issues an id"));
    }
    issued
}

#[test]
fn a_power_cut_at_any_operation_never_repeats_an_issued_id() {
    // Boots enough to switch pages twice (page 1 → page 2 → page 1, erasing each once after
    // its first use), cut at every operation, clean and torn.
    let boots = 2 * RECORDS_PER_PAGE + 30;
    let total = {
        let mut f = flash();
        let mut p = PowerCut::new(&mut f);
        for _ in 0..boots {
            boot_id::next(&mut p, AREA).unwrap();
        }
        p.ops()
    };
    assert_eq!(total, 2 * u64::from(boots) + 3, "two programs a boot, three erases");
    let mut rng = Rng::new(0x5eed_b007);
    let mut cuts = 0;
    for cut in 0..total {
        // Cuts at every erase and around the switches with four torn variants; elsewhere one.
        let variants =
            if cut < 8 || (cut as i64 - 2 * i64::from(RECORDS_PER_PAGE)).abs() < 8 { 4 } else { 1 };
        for v in 0..=variants {
            let tear = if v == 0 { Tear::Clean } else { Tear::Seeded(rng.next_u64()) };
            let mut f = flash();
            let issued = boots_with_a_cut(&mut f, boots + 2, Some(cut), tear);
            assert!(
                issued.windows(2).all(|w| w[0] < w[1]),
                "cut at op {cut} ({tear:?}): ids not strictly increasing: {issued:?}"
            );
            // One boot was lost to the cut; the others issued ids; nothing was skipped but
            // (at most) the id the cut boot was writing.
            assert_eq!(issued.len() as u32, boots + 1, "cut at op {cut} ({tear:?})");
            assert!(*issued.last().unwrap() <= boots + 2);
            cuts += 1;
        }
    }
    assert!(cuts > 2 * total, "{cuts}");
}

#[test]
fn a_torn_erase_of_a_full_page_keeps_the_highest_id() {
    // Fill page 1, then cut the erase of page 2 with many torn states: the next boots go on
    // from the highest id in page 1.
    let mut base = flash();
    for _ in 0..RECORDS_PER_PAGE {
        boot_id::next(&mut base, AREA).unwrap();
    }
    // Page 2 held old records once: put some there (ids below page 1's).
    for (i, id) in (100u32..140).enumerate() {
        let at = 0x2000 + 8 * i;
        let id = id - 100 + 1;
        base.bytes_mut()[at..at + 4].copy_from_slice(&id.to_le_bytes());
        base.bytes_mut()[at + 4..at + 8].copy_from_slice(&(!id).to_le_bytes());
    }
    for seed in 0..200 {
        let mut f = base.clone();
        {
            let mut p = PowerCut::cut_at(&mut f, 0, Tear::Seeded(seed));
            assert!(boot_id::next(&mut p, AREA).is_err());
        }
        assert_eq!(boot_id::current(&mut f, AREA), Ok(Some(RECORDS_PER_PAGE)), "seed {seed}");
        assert_eq!(boot_id::next(&mut f, AREA), Ok(RECORDS_PER_PAGE + 1), "seed {seed}");
        assert_eq!(boot_id::next(&mut f, AREA), Ok(RECORDS_PER_PAGE + 2), "seed {seed}");
    }
}
