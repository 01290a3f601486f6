//! Backoff: bounds, growth, cap, reset, determinism.

use telemetry::{Backoff, XorShift32};

#[test]
fn delays_stay_within_equal_jitter_bounds() {
    for seed in 0..200 {
        let mut b = Backoff::new(500, 60_000, seed);
        for k in 0..40u32 {
            let c = (500u64 << k.min(32)).min(60_000) as u32;
            assert_eq!(b.ceiling(), c);
            let d = b.next_delay();
            assert!(
                d >= c.div_ceil(2) && d <= c,
                "seed {seed} attempt {k}: {d} not in [{}, {c}]",
                c.div_ceil(2)
            );
        }
        assert_eq!(b.ceiling(), 60_000);
        b.reset();
        assert_eq!(b.attempts(), 0);
        let d = b.next_delay();
        assert!((250..=500).contains(&d));
    }
}

#[test]
fn same_seed_same_delays_different_seeds_differ() {
    let run = |seed| {
        let mut b = Backoff::new(1000, 30_000, seed);
        (0..12).map(|_| b.next_delay()).collect::<Vec<_>>()
    };
    assert_eq!(run(42), run(42));
    assert_ne!(run(42), run(43));
    // Pinned: a change of the PRNG or of the formula shows up here.
    assert_eq!(run(1), run(1));
    let mut x = XorShift32::new(1);
    assert_eq!([x.next_u32(), x.next_u32(), x.next_u32()], [270369, 67634689, 2647435461]);
}

#[test]
fn jitter_spreads_over_the_whole_range() {
    let mut b = Backoff::new(1000, 1000, 9);
    let (mut lo, mut hi) = (u32::MAX, 0);
    for _ in 0..10_000 {
        let d = b.next_delay();
        lo = lo.min(d);
        hi = hi.max(d);
    }
    assert!(lo <= 510 && hi >= 990, "{lo}..{hi}");
}

#[test]
fn degenerate_parameters() {
    // base 0 reads as 1, cap below base reads as base, seed 0 is not a fixed point.
    let mut b = Backoff::new(0, 0, 0);
    for _ in 0..100 {
        assert_eq!(b.next_delay(), 1);
    }
    let mut b = Backoff::new(u32::MAX, u32::MAX, 0);
    for _ in 0..100 {
        assert!(b.next_delay() >= u32::MAX / 2);
    }
    let mut x = XorShift32::new(0);
    assert_ne!(x.next_u32(), 0);
    let mut x = XorShift32::new(5);
    for _ in 0..1000 {
        assert!(x.up_to(6) <= 6);
        assert_eq!(x.up_to(0), 0);
    }
}
