//! The test doubles themselves: the strict flash refuses what NOR flash cannot do, and the
//! power-cut wrapper stops where it is told, tearing deterministically.

use abboot::testing::{PowerCut, PowerLost, StrictFlash, Tear};
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};

type Flash = StrictFlash<4, 256>;

#[test]
#[should_panic(expected = "programming a 0 bit back to 1")]
fn zero_to_one_panics() {
    let mut f = Flash::new(1024).allow_reprogram();
    f.write(0, &[0x00, 0xff, 0xff, 0xff]).unwrap();
    f.write(0, &[0x01, 0xff, 0xff, 0xff]).unwrap();
}

#[test]
#[should_panic(expected = "programmed twice")]
fn write_once_panics() {
    let mut f = Flash::new(1024);
    f.write(0, &[0xf0, 0xff, 0xff, 0xff]).unwrap();
    f.write(0, &[0x00, 0xff, 0xff, 0xff]).unwrap();
}

#[test]
fn reprogram_allowed_when_asked() {
    let mut f = Flash::new(1024).allow_reprogram();
    f.write(0, &[0xf0, 0xff, 0xff, 0xff]).unwrap();
    f.write(0, &[0x00, 0xff, 0xff, 0xff]).unwrap();
    assert_eq!(f.bytes()[0], 0);
}

#[test]
#[should_panic(expected = "not aligned")]
fn misaligned_write_panics() {
    Flash::new(1024).write(2, &[0; 4]).unwrap();
}

#[test]
#[should_panic(expected = "not aligned")]
fn short_write_panics() {
    Flash::new(1024).write(0, &[0; 3]).unwrap();
}

#[test]
#[should_panic(expected = "not aligned")]
fn misaligned_erase_panics() {
    Flash::new(1024).erase(0, 100).unwrap();
}

#[test]
#[should_panic(expected = "past the end")]
fn write_past_end_panics() {
    Flash::new(1024).write(1024, &[0; 4]).unwrap();
}

#[test]
fn erase_then_write_again_and_counts() {
    let mut f = Flash::new(1024);
    f.write(0, &[0; 8]).unwrap();
    f.erase(0, 512).unwrap();
    assert!(f.bytes()[..512].iter().all(|&b| b == 0xff));
    f.write(0, &[0; 8]).unwrap();
    let s = f.stats();
    assert_eq!((s.write_calls, s.programs, s.erase_calls, s.erases, s.ops()), (2, 4, 1, 2, 6));
}

#[test]
fn clean_cut_stops_at_the_operation() {
    let mut f = Flash::new(1024);
    let mut pc = PowerCut::cut_at(&mut f, 2, Tear::Clean);
    assert_eq!(pc.write(0, &[0; 16]), Err(PowerLost));
    assert!(pc.is_dead());
    assert_eq!(pc.ops(), 2);
    assert_eq!(pc.read(0, &mut [0; 4]), Err(PowerLost));
    assert_eq!(pc.write(64, &[0; 4]), Err(PowerLost));
    assert_eq!(pc.erase(0, 256), Err(PowerLost));
    assert_eq!(&f.bytes()[..16], &[0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    assert_eq!(f.bytes()[64], 0xff);
}

#[test]
fn torn_program_is_seeded_and_only_clears_bits_it_was_to_clear() {
    let data = [0x00, 0x0f, 0xf0, 0x5a];
    let tear = |seed| {
        let mut f = Flash::new(256);
        let mut pc = PowerCut::cut_at(&mut f, 0, Tear::Seeded(seed));
        assert_eq!(pc.write(0, &data), Err(PowerLost));
        assert_eq!(f.stats().torn, 1);
        <[u8; 4]>::try_from(&f.bytes()[..4]).unwrap()
    };
    assert_eq!(tear(7), tear(7));
    assert_ne!(tear(7), tear(8));
    for seed in 0..64 {
        for (got, want) in tear(seed).iter().zip(data) {
            assert_eq!(got & want, want, "a bit that was to stay 1 went to 0");
        }
    }
}

#[test]
fn torn_erase_only_sets_bits() {
    let mut f = Flash::new(768);
    f.write(0, &[0x5a; 768]).unwrap();
    let mut pc = PowerCut::cut_at(&mut f, 1, Tear::Seeded(3));
    assert_eq!(pc.erase(0, 768), Err(PowerLost));
    let b = f.bytes();
    assert!(b[..256].iter().all(|&x| x == 0xff), "sector 0 erased");
    assert!(b[256..512].iter().all(|&x| x & 0x5a == 0x5a), "sector 1 torn: bits only set");
    assert!(b[256..512].iter().any(|&x| x != 0x5a) && b[256..512].iter().any(|&x| x != 0xff));
    assert!(b[512..].iter().all(|&x| x == 0x5a), "sector 2 untouched");
}

/// A cut tears as the engine's flash controller model does: the same seed leaves the same bytes
/// (the bytes below are the contract's pinned ones, `twinbed_contract::tear`'s tests, taken from
/// the engine).
#[test]
fn a_seed_tears_the_same_bytes_as_in_the_engine() {
    // A word program of 0 over erased flash, cut: the engine's `tear` with seed 7.
    let mut f = Flash::new(256);
    let mut pc = PowerCut::cut_at(&mut f, 0, Tear::Seeded(7));
    assert_eq!(pc.write(0, &[0; 4]), Err(PowerLost));
    assert_eq!(f.bytes()[..4], [0x28, 0xf2, 0xcd, 0xa6]);
    // An erase of a programmed sector, cut: the engine's `tear` of a page erase with seed 1.
    let mut f = Flash::new(256);
    f.write(0, &[0; 256]).unwrap();
    let mut pc = PowerCut::cut_at(&mut f, 0, Tear::Seeded(1));
    assert_eq!(pc.erase(0, 256), Err(PowerLost));
    assert_eq!(
        f.bytes()[..20],
        [
            0xc1, 0x5c, 0x02, 0x89, 0xec, 0x2d, 0x0a, 0x91, 0x67, 0xec, 0x8e, 0x65, 0xa1, 0x8d, 0xeb, 0xbe,
            0x5e, 0x55, 0x32, 0xfb
        ]
    );
}
