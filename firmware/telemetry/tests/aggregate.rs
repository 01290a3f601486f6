//! Aggregation tables: windows, deadband, heartbeat, flush, rounding.

use telemetry::aggregate::mean;
use telemetry::{Aggregate, Aggregator, AggregatorConfig};

fn agg(first: u32, n: u32, min: i32, max: i32, mean: i32) -> Aggregate {
    Aggregate { first, n, min, max, mean }
}

/// (window, deadband, max_windows), readings, the aggregates emitted.
type Case<'a> = ((u16, u32, u16), &'a [i32], &'a [Aggregate]);

fn run(cfg: AggregatorConfig, readings: &[i32]) -> Vec<Aggregate> {
    let mut a = Aggregator::new(cfg);
    readings.iter().filter_map(|&r| a.push(r)).collect()
}

#[rustfmt::skip]
#[test]
fn windows_and_deadband() {
    // (window, deadband, max_windows), readings, aggregates emitted
    let cases: &[Case<'_>] = &[
        // No deadband: every window.
        ((3, 0, 10), &[1, 2, 3, 4, 5, 6, 7], &[agg(0, 3, 1, 3, 2), agg(3, 3, 4, 6, 5)]),
        // Window of one: every reading.
        ((1, 0, 1), &[5, -5], &[agg(0, 1, 5, 5, 5), agg(1, 1, -5, -5, -5)]),
        // First window always; a window within the deadband folds into the next emitted one.
        ((3, 100, 10), &[1000, 1000, 1000, 1050, 1050, 1050, 1200, 1200, 1200],
            &[agg(0, 3, 1000, 1000, 1000), agg(3, 6, 1050, 1200, 1125)]),
        // Exactly the deadband away is emitted ("less than" folds).
        ((2, 100, 10), &[0, 0, 100, 100, 150, 150], &[agg(0, 2, 0, 0, 0), agg(2, 2, 100, 100, 100)]),
        // Negative drift counts the same as positive.
        ((2, 100, 10), &[0, 0, -99, -99, -100, -100],
            &[agg(0, 2, 0, 0, 0), agg(2, 4, -100, -99, -99)]),
        // Comparison is against the last *emitted* mean, not the last window: slow drift of 60
        // per window with deadband 100 emits every second window.
        ((1, 100, 10), &[0, 60, 120, 180, 240, 300],
            &[agg(0, 1, 0, 0, 0), agg(1, 2, 60, 120, 90), agg(3, 2, 180, 240, 210), ]),
        // Heartbeat: a steady value still reports every max_windows windows.
        ((2, 1000, 3), &[7; 14], &[agg(0, 2, 7, 7, 7), agg(2, 6, 7, 7, 7), agg(8, 6, 7, 7, 7)]),
        // max_windows 1: no folding at all.
        ((2, 1000, 1), &[7, 7, 7, 7], &[agg(0, 2, 7, 7, 7), agg(2, 2, 7, 7, 7)]),
        // Extremes do not overflow.
        ((2, 0, 10), &[i32::MAX, i32::MAX, i32::MIN, i32::MIN, i32::MIN, i32::MAX],
            &[agg(0, 2, i32::MAX, i32::MAX, i32::MAX), agg(2, 2, i32::MIN, i32::MIN, i32::MIN),
              agg(4, 2, i32::MIN, i32::MAX, 0)]),
        // Zero window / max_windows read as 1.
        ((0, 0, 0), &[3, 4], &[agg(0, 1, 3, 3, 3), agg(1, 1, 4, 4, 4)]),
    ];
    for &((w, db, mw), readings, want) in cases {
        let got = run(AggregatorConfig::new(w, db, mw), readings);
        assert_eq!(got, want, "window {w}, deadband {db}, max_windows {mw}, readings {readings:?}");
    }
}

#[rustfmt::skip]
#[test]
fn mean_rounds_to_nearest_ties_toward_plus_infinity() {
    let cases: &[(i64, u32, i32)] = &[
        (3, 2, 2),    //  1.5  -> 2
        (-3, 2, -1),  // -1.5  -> -1
        (-5, 2, -2),  // -2.5  -> -2
        (5, 2, 3),    //  2.5  -> 3
        (4, 3, 1),    //  1.33 -> 1
        (5, 3, 2),    //  1.67 -> 2
        (-4, 3, -1),  // -1.33 -> -1
        (-5, 3, -2),  // -1.67 -> -2
        (0, 7, 0),
        (i64::from(i32::MIN) * 4, 4, i32::MIN),
        (i64::from(i32::MAX) * 4, 4, i32::MAX),
        (i64::from(i32::MAX) * 2 - 1, 2, i32::MAX), // MAX - 0.5 -> MAX
    ];
    for &(sum, n, want) in cases {
        assert_eq!(mean(sum, n), want, "{sum}/{n}");
    }
}

#[test]
fn consecutive_aggregates_cover_consecutive_readings() {
    // Seeded random walk, random config: no gaps, no overlaps; flush at the end covers the rest.
    let mut rng = telemetry::XorShift32::new(7);
    for _ in 0..300 {
        let cfg = AggregatorConfig::new(1 + rng.up_to(9) as u16, rng.up_to(300), 1 + rng.up_to(5) as u16);
        let mut a = Aggregator::new(cfg);
        let total = rng.up_to(500);
        let mut value = 20_000i32;
        let mut next = 0u32;
        let check = |g: Aggregate, next: &mut u32| {
            assert_eq!(g.first, *next);
            assert!(g.n >= 1);
            assert!(g.n <= u32::from(cfg.window) * u32::from(cfg.max_windows));
            assert!(g.min <= g.mean && g.mean <= g.max);
            *next += g.n;
        };
        for _ in 0..total {
            value += rng.up_to(200) as i32 - 100;
            if let Some(g) = a.push(value) {
                check(g, &mut next);
            }
        }
        assert_eq!(a.pending_readings(), total - next);
        if let Some(g) = a.flush() {
            check(g, &mut next);
        }
        assert_eq!(next, total);
        assert_eq!(a.next_reading(), total);
        assert_eq!(a.flush(), None);
    }
}

#[test]
fn flush_and_reconfigure() {
    let mut a = Aggregator::new(AggregatorConfig::new(4, 0, 4));
    assert_eq!(a.push(10), None);
    assert_eq!(a.push(20), None);
    // A partial window is flushed with a new configuration, which starts at the next reading.
    assert_eq!(a.set_config(AggregatorConfig::new(2, 0, 4)), Some(agg(0, 2, 10, 20, 15)));
    assert_eq!(a.push(30), None);
    assert_eq!(a.push(40), Some(agg(2, 2, 30, 40, 35)));
    assert_eq!(a.flush(), None);
    // Deadband compares with the flushed mean too.
    a.set_config(AggregatorConfig::new(1, 10, 9));
    assert_eq!(a.push(41), None);
    assert_eq!(a.push(45), Some(agg(4, 2, 41, 45, 43)));
}
