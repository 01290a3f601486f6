//! The outbox: seqs, acks, replay, and the overflow policy, with a randomised accounting test.

use std::collections::BTreeMap;

use telemetry::{
    Aggregate, Aggregator, AggregatorConfig, Body, DropRange, Error, Event, Outbox, Record, XorShift32,
};

const BOOT: u32 = 7;

fn tel(first: u32, n: u32) -> Aggregate {
    Aggregate { first, n, min: 0, max: 0, mean: 0 }
}

fn seqs<const N: usize>(o: &Outbox<N>) -> Vec<u32> {
    o.iter().map(|r| r.seq).collect()
}

#[test]
fn seqs_are_shared_and_acks_drop_prefixes() {
    let mut o = Outbox::<8>::new(BOOT);
    assert_eq!(o.push_telemetry(10, tel(0, 5)), 1);
    assert_eq!(o.push_event(11, Event::Confirm), Ok(2));
    assert_eq!(o.push_telemetry(12, tel(5, 5)), 3);
    assert_eq!(o.next_seq(), 4);
    assert_eq!(o.iter().map(|r| (r.boot, r.t)).collect::<Vec<_>>(), [(BOOT, 10), (BOOT, 11), (BOOT, 12)]);
    // Another boot's ack is ignored.
    assert_eq!(o.ack(BOOT - 1, 100), 0);
    assert_eq!(o.ack(BOOT, 0), 0);
    assert_eq!(o.ack(BOOT, 2), 2);
    assert_eq!(seqs(&o), [3]);
    // Acking again, or below, changes nothing.
    assert_eq!(o.ack(BOOT, 2), 0);
    assert_eq!(o.ack(BOOT, 3), 1);
    assert!(o.is_empty());
    assert_eq!(o.push_event(13, Event::Revert), Ok(4));
}

#[test]
fn replay_resends_everything_unacked_in_order() {
    let mut o = Outbox::<8>::new(BOOT);
    for i in 0..4 {
        o.push_telemetry(i, tel(i, 1));
    }
    assert_eq!(o.unsent(), 4);
    assert_eq!(o.next_unsent().map(|r| r.seq), Some(1));
    assert_eq!(o.next_unsent().map(|r| r.seq), Some(2));
    assert_eq!(o.unsent(), 2);
    // The link drops; the twin had acked 1.
    o.ack(BOOT, 1);
    o.rewind();
    let resent: Vec<u32> = std::iter::from_fn(|| o.next_unsent().map(|r| r.seq)).collect();
    assert_eq!(resent, [2, 3, 4]);
    assert_eq!(o.next_unsent(), None);
    // New records are sent after the cursor.
    o.push_event(9, Event::Confirm).unwrap();
    assert_eq!(o.next_unsent().map(|r| r.seq), Some(5));
}

#[test]
fn overflow_drops_oldest_telemetry_and_reports_a_range() {
    // 4 slots: 3 ordinary records + the reserved one.
    let mut o = Outbox::<4>::new(BOOT);
    o.push_telemetry(1, tel(0, 2)); // 1
    o.push_event(2, Event::Confirm).unwrap(); // 2
    o.push_telemetry(3, tel(2, 3)); // 3
    assert_eq!(o.push_telemetry(4, tel(5, 4)), 4); // drops 1
    assert_eq!(o.open_drop(), Some(DropRange { from: 1, to: 1, readings: 2 }));
    assert_eq!(seqs(&o), [2, 3, 4]);
    // Dropping 3 is not contiguous with 1 (event 2 is kept): range 1..=1 becomes event 5 (with
    // the time of its last drop), in the slot 3 freed, and a new range opens at 3; 4 is
    // contiguous with it and makes room for 6.
    assert_eq!(o.push_telemetry(6, tel(9, 1)), 6);
    assert_eq!(seqs(&o), [2, 5, 6]);
    let d5 = *o.iter().nth(1).unwrap();
    assert_eq!((d5.t, d5.body), (4, Body::Dropped(DropRange { from: 1, to: 1, readings: 2 })));
    assert_eq!(o.open_drop(), Some(DropRange { from: 3, to: 4, readings: 7 }));
    assert_eq!((o.dropped_records(), o.dropped_readings()), (3, 9));
    // Sending closes the open range into the reserved slot.
    assert_eq!(o.next_unsent().map(|r| r.seq), Some(2));
    assert_eq!(o.open_drop(), None);
    assert_eq!(seqs(&o), [2, 5, 6, 7]);
    let d7 = *o.iter().last().unwrap();
    assert_eq!((d7.t, d7.body), (6, Body::Dropped(DropRange { from: 3, to: 4, readings: 7 })));
    let sent: Vec<u32> = std::iter::from_fn(|| o.next_unsent().map(|r| r.seq)).collect();
    assert_eq!(sent, [5, 6, 7]);
    assert_eq!(o.ack(BOOT, 7), 4);
}

#[test]
fn events_are_never_dropped() {
    let mut o = Outbox::<3>::new(BOOT);
    assert_eq!(o.push_event(0, Event::Confirm), Ok(1));
    assert_eq!(o.push_event(0, Event::Revert), Ok(2));
    // Two ordinary records fill 3 slots; with no telemetry to drop, an event is refused and
    // takes no seq.
    assert_eq!(o.push_event(0, Event::Confirm), Err(Error::OutboxFull));
    assert_eq!(o.next_seq(), 3);
    // Telemetry is created (takes a seq) and dropped at once.
    assert_eq!(o.push_telemetry(5, tel(0, 4)), 3);
    assert_eq!(o.push_telemetry(6, tel(4, 4)), 4);
    assert_eq!(o.open_drop(), Some(DropRange { from: 3, to: 4, readings: 8 }));
    assert_eq!(seqs(&o), [1, 2]);
    assert_eq!(o.next_unsent().map(|r| r.seq), Some(1));
    assert_eq!(seqs(&o), [1, 2, 5]);
    // Full of events (incl. the dropped event): telemetry keeps being dropped into one range.
    assert_eq!(o.push_telemetry(7, tel(8, 1)), 6);
    assert_eq!(o.push_telemetry(8, tel(9, 1)), 7);
    assert_eq!(o.open_drop(), Some(DropRange { from: 6, to: 7, readings: 2 }));
    assert_eq!(o.next_unsent().map(|r| r.seq), Some(2));
    assert_eq!(o.next_unsent().map(|r| r.seq), Some(5));
    assert_eq!(o.next_unsent(), None); // no slot for the range yet
                                       // One slot freed: still no room for an ordinary event beside the dropped event 5.
    o.ack(BOOT, 1);
    assert_eq!(o.push_event(9, Event::Confirm), Err(Error::OutboxFull));
    o.ack(BOOT, 2);
    // An event fits again; it lies between the open range and the next drop.
    assert_eq!(o.push_event(9, Event::Confirm), Ok(8));
    assert_eq!(o.push_telemetry(10, tel(10, 1)), 10); // range 6..=7 closed as 9 first
    assert_eq!(seqs(&o), [5, 8, 9]);
    assert_eq!(o.open_drop(), Some(DropRange { from: 10, to: 10, readings: 1 }));
}

#[test]
fn smallest_outbox_works() {
    let mut o = Outbox::<2>::new(BOOT);
    assert_eq!(o.push_telemetry(0, tel(0, 1)), 1);
    assert_eq!(o.push_telemetry(0, tel(1, 1)), 2); // drops 1
    assert_eq!(o.push_telemetry(0, tel(2, 1)), 3); // drops 2
    assert_eq!(o.open_drop(), Some(DropRange { from: 1, to: 2, readings: 2 }));
    assert_eq!(o.next_unsent().map(|r| r.seq), Some(3));
    assert_eq!(
        o.next_unsent().map(|r| (r.seq, r.body)),
        Some((4, Body::Dropped(DropRange { from: 1, to: 2, readings: 2 })))
    );
    o.ack(BOOT, 4);
    assert!(o.is_empty());
}

/// What the test knows about each seq it saw created.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Made {
    Telemetry { first: u32, n: u32 },
    Event,
}

/// A model of the twin: stores each (boot, seq) once; acks the watermark.
#[derive(Default)]
struct Twin {
    stored: BTreeMap<u32, Record>,
}

impl Twin {
    fn receive(&mut self, r: Record) {
        assert_eq!(r.boot, BOOT);
        if let Some(old) = self.stored.get(&r.seq) {
            assert_eq!(*old, r, "a record sent twice must be the same both times");
        }
        self.stored.insert(r.seq, r);
    }

    fn declared(&self) -> impl Iterator<Item = DropRange> + '_ {
        self.stored.values().filter_map(|r| match r.body {
            Body::Dropped(d) => Some(d),
            _ => None,
        })
    }

    fn watermark(&self) -> u32 {
        let mut covered = std::collections::BTreeSet::new();
        covered.extend(self.stored.keys().copied());
        for d in self.declared() {
            covered.extend(d.from..=d.to);
        }
        let mut s = 0;
        while covered.contains(&(s + 1)) {
            s += 1;
        }
        s
    }
}

/// How often the interesting paths ran, over all runs of a test: each must have run.
#[derive(Default, Debug)]
struct Coverage {
    dropped: u32,
    dropped_at_once: u32,
    events_refused: u32,
    range_waits_for_slot: u32,
    dropped_after_reaching_twin: u32,
}

struct Sim<const N: usize> {
    cov: Coverage,
    rng: XorShift32,
    outbox: Outbox<N>,
    agg: Aggregator,
    twin: Twin,
    made: BTreeMap<u32, Made>,
    value: i32,
    t: u32,
    online: bool,
}

impl<const N: usize> Sim<N> {
    fn new(seed: u32) -> Self {
        let mut rng = XorShift32::new(seed);
        let cfg = AggregatorConfig::new(1 + rng.up_to(4) as u16, rng.up_to(50), 1 + rng.up_to(3) as u16);
        Sim {
            cov: Coverage::default(),
            rng,
            outbox: Outbox::new(BOOT),
            agg: Aggregator::new(cfg),
            twin: Twin::default(),
            made: BTreeMap::new(),
            value: 0,
            t: 0,
            online: false,
        }
    }

    fn telemetry(&mut self, a: Aggregate) {
        let full_of_events = self.outbox.len() + 2 > N && !self.outbox.iter().any(Record::is_telemetry);
        let seq = self.outbox.push_telemetry(self.t, a);
        assert!(self.made.insert(seq, Made::Telemetry { first: a.first, n: a.n }).is_none());
        if full_of_events {
            assert!(!self.outbox.iter().any(|r| r.seq == seq), "dropped at once");
            self.cov.dropped_at_once += 1;
        }
    }

    fn step(&mut self) {
        self.t += 1 + self.rng.up_to(100);
        match self.rng.up_to(99) {
            // Sample (most common).
            0..=54 => {
                self.value += self.rng.up_to(100) as i32 - 50;
                if let Some(a) = self.agg.push(self.value) {
                    self.telemetry(a);
                }
            }
            55..=59 => {
                let before = self.outbox.next_seq();
                match self.outbox.push_event(self.t, Event::DesiredApplied { version: u64::from(self.t) }) {
                    Ok(seq) => {
                        // Dropped events made while making room come first.
                        assert!(seq >= before && seq == self.outbox.next_seq() - 1);
                        self.made.insert(seq, Made::Event);
                    }
                    Err(Error::OutboxFull) => {
                        assert_eq!(self.outbox.next_seq(), before, "a refused event takes no seq");
                        assert!(self.outbox.len() + 2 > N);
                        self.cov.events_refused += 1;
                    }
                    Err(e) => panic!("{e:?}"),
                }
            }
            60..=61 => {
                if let Some(a) = self.agg.flush() {
                    self.telemetry(a);
                }
            }
            // Connectivity changes; a reconnect replays from the oldest unacked record.
            62..=66 => {
                self.online = !self.online;
                if self.online {
                    self.outbox.rewind();
                }
            }
            // Send a few records; some publishes fail (the app rewinds).
            67..=89 => {
                if self.online {
                    for _ in 0..=self.rng.up_to(3) {
                        let Some(r) = self.outbox.next_unsent() else { break };
                        if self.outbox.open_drop().is_some() {
                            self.cov.range_waits_for_slot += 1;
                        }
                        if self.rng.up_to(9) == 0 {
                            self.outbox.rewind();
                        } else {
                            self.twin.receive(r);
                        }
                    }
                }
            }
            // The twin acks its watermark (only what it stored or saw declared).
            90..=97 => {
                if self.online {
                    let w = self.twin.watermark();
                    self.outbox.ack(BOOT, w);
                }
            }
            // Acks of other boots are ignored.
            _ => {
                assert_eq!(self.outbox.ack(BOOT + 1 + self.rng.up_to(3), u32::MAX), 0);
            }
        }
        self.check();
    }

    /// Every seq is in the outbox, or (exclusively) in a declared or open drop range, or else
    /// at the twin (a record sent but not acked can be dropped afterwards: then it is both at
    /// the twin and in a range); every reading is in a record that is not dropped, or counted
    /// in a range.
    fn check(&mut self) {
        let o = &self.outbox;
        assert!(o.len() <= N);
        let boxed: Vec<u32> = seqs(o);
        assert!(boxed.windows(2).all(|w| w[0] < w[1]), "buffer in seq order");
        assert!(o.iter().all(|r| r.boot == BOOT));

        // All dropped ranges: in the outbox, at the twin (dedup by the event's seq), open.
        let mut ranges: BTreeMap<u32, DropRange> = BTreeMap::new();
        for r in o.iter().chain(self.twin.stored.values()) {
            if let Body::Dropped(d) = r.body {
                ranges.insert(r.seq, d);
            }
        }
        let mut all: Vec<DropRange> = ranges.values().copied().collect();
        all.extend(o.open_drop());

        let last = o.next_seq() - 1;
        let mut dropped = vec![false; last as usize + 1];
        let mut dropped_readings = 0u32;
        for d in &all {
            assert!(d.from <= d.to && d.to <= last, "{d:?}");
            let mut readings = 0;
            for s in d.from..=d.to {
                assert!(!dropped[s as usize], "seq {s} in two ranges");
                dropped[s as usize] = true;
                match self.made.get(&s) {
                    Some(Made::Telemetry { n, .. }) => readings += n,
                    other => panic!("seq {s} dropped but it is {other:?}"),
                }
            }
            assert_eq!(d.readings, readings, "{d:?}");
            dropped_readings += readings;
        }
        assert_eq!(o.dropped_records() as usize, dropped.iter().filter(|&&d| d).count());
        self.cov.dropped = self.cov.dropped.max(o.dropped_records());
        assert_eq!(o.dropped_readings(), dropped_readings);

        let mut kept_readings = 0;
        for s in 1..=last {
            let boxed = boxed.binary_search(&s).is_ok();
            let at_twin = self.twin.stored.contains_key(&s);
            assert!(!(boxed && dropped[s as usize]), "seq {s} both in the outbox and dropped");
            assert!(boxed || at_twin || dropped[s as usize], "seq {s} lost without a trace");
            let kept = !dropped[s as usize];
            self.cov.dropped_after_reaching_twin += u32::from(at_twin && !kept);
            match self.made.get(&s) {
                Some(Made::Telemetry { n, .. }) if kept => kept_readings += n,
                Some(_) => {}
                // Not created by a push: a dropped event.
                None => {
                    assert!(ranges.contains_key(&s), "seq {s} is neither pushed nor a dropped event")
                }
            }
        }
        // Telemetry records cover consecutive readings from 0, and every emitted reading is in
        // a kept record or counted in a range.
        let mut next = 0;
        for m in self.made.values() {
            if let Made::Telemetry { first, n } = *m {
                assert_eq!(first, next);
                next += n;
            }
        }
        assert_eq!(next, self.agg.next_reading() - self.agg.pending_readings());
        assert_eq!(kept_readings + dropped_readings, next);
    }

    /// Back online for good: everything reaches the twin, the watermark reaches the last seq.
    fn drain(&mut self) {
        if let Some(a) = self.agg.flush() {
            self.telemetry(a);
        }
        self.outbox.rewind();
        for _ in 0..10 * N + 10 {
            while let Some(r) = self.outbox.next_unsent() {
                self.twin.receive(r);
            }
            self.outbox.ack(BOOT, self.twin.watermark());
            self.check();
            if self.outbox.is_empty() && self.outbox.open_drop().is_none() {
                break;
            }
        }
        assert!(self.outbox.is_empty() && self.outbox.open_drop().is_none(), "drained");
        assert_eq!(self.twin.watermark(), self.outbox.next_seq() - 1);
        // The twin's view: every reading of the boot is in a stored record, or lost for good:
        // in a declared range, minus the records of the range the twin stored anyway.
        let mut covered = vec![0u8; self.agg.next_reading() as usize];
        let mut stored_in_ranges = 0;
        for (&seq, r) in &self.twin.stored {
            if let Body::Telemetry(a) = r.body {
                covered[a.first as usize..(a.first + a.n) as usize].iter_mut().for_each(|c| *c += 1);
                if self.twin.declared().any(|d| (d.from..=d.to).contains(&seq)) {
                    stored_in_ranges += a.n;
                }
            }
        }
        let declared: u32 = self.twin.declared().map(|d| d.readings).sum();
        let stored = covered.iter().filter(|&&c| c == 1).count() as u32;
        assert!(covered.iter().all(|&c| c <= 1), "a reading in two stored records");
        assert_eq!(stored + declared - stored_in_ranges, self.agg.next_reading());
    }
}

fn property<const N: usize>(runs: u32, steps: u32) {
    let mut total = Coverage::default();
    for seed in 1..=runs {
        let mut sim = Sim::<N>::new(seed.wrapping_mul(0x9E37_79B9) ^ N as u32);
        for _ in 0..steps {
            sim.step();
        }
        sim.drain();
        total.dropped += sim.cov.dropped;
        total.dropped_at_once += sim.cov.dropped_at_once;
        total.events_refused += sim.cov.events_refused;
        total.range_waits_for_slot += sim.cov.range_waits_for_slot;
        total.dropped_after_reaching_twin += sim.cov.dropped_after_reaching_twin;
    }
    println!("N = {N}: {total:?}");
    assert!(total.dropped > 0 && total.dropped_at_once > 0 && total.events_refused > 0, "{total:?}");
    assert!(total.range_waits_for_slot > 0 && total.dropped_after_reaching_twin > 0, "{total:?}");
}

#[test]
fn accounting_holds_over_random_runs_n2() {
    property::<2>(600, 200);
}

#[test]
fn accounting_holds_over_random_runs_n3() {
    property::<3>(600, 200);
}

#[test]
fn accounting_holds_over_random_runs_n5() {
    property::<5>(800, 300);
}

#[test]
fn accounting_holds_over_random_runs_n16() {
    property::<16>(600, 400);
}
