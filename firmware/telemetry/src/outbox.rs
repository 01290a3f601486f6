//! The outbox: this boot's records, kept until the twin acks them.
//!
//! Every record the device creates gets the next seq of its boot (1, 2, 3, ...; telemetry and
//! events share the counter) and goes into a buffer of `N` slots, in seq order. A record leaves
//! the buffer only when the twin acks it ([`Outbox::ack`]) or when the overflow policy drops it.
//!
//! # Overflow policy (PROTOCOL.md §2, "Buffer policy")
//!
//! One slot is **reserved for the `dropped` event**: ordinary records (telemetry and app
//! events) fit in `N - 1` slots. When a new record would take the reserved slot:
//!
//! 1. the **oldest telemetry record** in the buffer is dropped (events never are), its seq and
//!    its reading count go into the **open drop range**, and this repeats until there is room;
//! 2. if dropping telemetry cannot make room (no telemetry left, or only records whose drops
//!    each need a `dropped` event of their own, see below): a new *event* is refused before
//!    anything is dropped ([`Error::OutboxFull`], no seq taken: it was never created); a new
//!    *telemetry* record is created (it takes its seq) and, after the older telemetry, dropped
//!    at once into the open drop range.
//!
//! The open drop range is a [`DropRange`] `from..=to` of consecutive seqs that are **all**
//! dropped telemetry, with their total reading count. It is not a record yet: it holds the
//! reserved slot. It becomes a `dropped` event record ([`Body::Dropped`], with the next seq,
//! and as its `t` the time of the range's last drop)
//!
//! - when the next dropped seq is not `to + 1` (an event kept in the buffer lies between): the
//!   range is closed into the reserved slot and a new range opens. The telemetry record just
//!   dropped freed the slot the new range now reserves, so this never needs extra room;
//! - when the app asks for the next record to send ([`Outbox::next_unsent`], or
//!   [`Outbox::close_dropped`]), into the reserved slot. (The slot is always free then, but in
//!   one case: the buffer is full of events, a telemetry record created and dropped at once had
//!   to close the previous range into the reserved slot, and the new range waits. Every record
//!   in the buffer is then older than the range, so the twin can ack them all, and the range
//!   closes once an ack frees a slot. Nothing but acks can add records to such a buffer.)
//!
//! A `dropped` event itself is never dropped. The twin's watermark cannot pass a dropped seq
//! until its `dropped` event arrives, which is why the range is closed as soon as the app
//! sends rather than when the buffer has room again: the acks that free the buffer depend on
//! it.
//!
//! The result, checked by a randomised test over thousands of runs: every seq of the boot is
//! exactly one of *in the buffer*, *acked by the twin*, *inside a `dropped` event's range* or
//! *inside the open range*; every reading of the boot is in a telemetry record that is kept or
//! in the `readings` count of the range its record was dropped into.
//!
//! # A dropped record may have reached the twin
//!
//! A record handed out for sending but not acked yet can still be dropped (the ack may be on
//! its way, or the publish may have been lost: the device cannot tell). The twin may then hold
//! a record that a `dropped` event also lists. What is gone for good is the part of the range
//! the twin did not store: its readings are `readings` minus the `n` of the range's records the
//! twin has. (The randomised test checks the accounting in exactly these terms.)
//!
//! # Sending and replay
//!
//! [`Outbox::next_unsent`] hands out the records in seq order and remembers the last one handed
//! out; [`Outbox::rewind`] (after a reconnect, or when a publish failed) starts again from the
//! oldest unacked record, so everything not acked is sent again. The twin stores each
//! `(boot, seq)` once, so a record sent twice is harmless.

use crate::aggregate::Aggregate;
pub use crate::record::DropRange;
use crate::record::{Body, Event, Record};
use crate::Error;

const EMPTY: Record = Record { boot: 0, seq: 0, t: 0, body: Body::Event(Event::Confirm) };

/// This boot's records until acked: `N` slots, one of them reserved for a `dropped` event
/// (see the module docs). `N` must be at least 2 (checked at compile time). A slot is 40 bytes
/// on thumbv7m (`Outbox<64>` is about 2.6 KiB).
#[derive(Clone, Debug)]
pub struct Outbox<const N: usize> {
    boot: u32,
    /// Seq the next record gets.
    next_seq: u32,
    /// `records[..len]`, in increasing seq order.
    records: [Record; N],
    len: usize,
    /// The open drop range, and the time of its last drop (the `t` of its event).
    open: Option<(DropRange, u32)>,
    /// Highest seq handed out by `next_unsent` since the last rewind (0: none).
    sent: u32,
    dropped_records: u32,
    dropped_readings: u32,
}

impl<const N: usize> Outbox<N> {
    /// An empty outbox for boot `boot`; the first record gets seq 1.
    pub const fn new(boot: u32) -> Self {
        const { assert!(N >= 2, "an Outbox needs at least 2 slots (one is reserved)") };
        Outbox {
            boot,
            next_seq: 1,
            records: [EMPTY; N],
            len: 0,
            open: None,
            sent: 0,
            dropped_records: 0,
            dropped_readings: 0,
        }
    }

    /// The boot id of every record.
    pub fn boot(&self) -> u32 {
        self.boot
    }

    /// The seq the next record will get (so `next_seq() - 1` records were created).
    pub fn next_seq(&self) -> u32 {
        self.next_seq
    }

    /// Slots, including the reserved one.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Records in the buffer (unacked).
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no record waits for an ack.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Telemetry records dropped this boot (the `dropped` of the state report).
    pub fn dropped_records(&self) -> u32 {
        self.dropped_records
    }

    /// Readings those records held (saturating).
    pub fn dropped_readings(&self) -> u32 {
        self.dropped_readings
    }

    /// The open drop range, not yet a `dropped` event.
    pub fn open_drop(&self) -> Option<DropRange> {
        self.open.map(|(r, _)| r)
    }

    /// The buffered records, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Record> + '_ {
        self.records[..self.len].iter()
    }

    /// Adds a telemetry record created at `t` (ms since boot); returns its seq. It always takes
    /// a seq, even when the buffer is full of events and it is dropped at once (see the module
    /// docs).
    pub fn push_telemetry(&mut self, t: u32, aggregate: Aggregate) -> u32 {
        if !self.make_room(t) {
            // Dropped at once. Close a range this seq cannot extend *before* taking the seq, so
            // that the `dropped` event does not sit between this record and the next one: a run
            // of telemetry dropped this way stays one range.
            if let Some((range, _)) = self.open {
                if range.to.wrapping_add(1) != self.next_seq {
                    self.close_open();
                }
            }
            let seq = self.take_seq();
            self.count_drop(seq, aggregate.n, t);
            return seq;
        }
        self.append(t, Body::Telemetry(aggregate))
    }

    /// Adds an event created at `t`; returns its seq, or [`Error::OutboxFull`] when dropping
    /// telemetry cannot make room for it (the buffer holds (almost) nothing but events): the
    /// event is then not created, takes no seq and nothing is dropped; retry after acks.
    pub fn push_event(&mut self, t: u32, event: Event) -> Result<u32, Error> {
        // Refuse before dropping anything: telemetry dropped for an event that then does not
        // fit would be lost for nothing.
        if !self.room_possible() || !self.make_room(t) {
            return Err(Error::OutboxFull);
        }
        Ok(self.append(t, Body::Event(event)))
    }

    /// Turns the open drop range into a `dropped` event now, if there is one and a slot is free
    /// (see the module docs); returns whether it did. [`next_unsent`](Self::next_unsent) calls
    /// it.
    pub fn close_dropped(&mut self) -> bool {
        if self.open.is_some() && self.len < N {
            self.close_open();
            true
        } else {
            false
        }
    }

    /// The next record to publish: the oldest buffered record not handed out since the last
    /// [`rewind`](Self::rewind). Closes the open drop range first (see
    /// [`close_dropped`](Self::close_dropped)), so a `dropped` event goes out after the records
    /// older than it.
    pub fn next_unsent(&mut self) -> Option<Record> {
        self.close_dropped();
        let rec = *self.records[..self.len].iter().find(|r| r.seq > self.sent)?;
        self.sent = rec.seq;
        Some(rec)
    }

    /// Buffered records not handed out since the last rewind.
    pub fn unsent(&self) -> usize {
        self.records[..self.len].iter().filter(|r| r.seq > self.sent).count()
    }

    /// Starts sending again from the oldest unacked record: after a reconnect, or when a
    /// publish failed.
    pub fn rewind(&mut self) {
        self.sent = 0;
    }

    /// The twin's ack: every record of boot `boot` with seq ≤ `seq` is stored (or declared
    /// dropped) and leaves the buffer. An ack for another boot is ignored (this outbox only
    /// holds the current boot's records). Returns how many records left.
    pub fn ack(&mut self, boot: u32, seq: u32) -> usize {
        if boot != self.boot {
            return 0;
        }
        let k = self.records[..self.len].iter().take_while(|r| r.seq <= seq).count();
        self.records.copy_within(k..self.len, 0);
        self.len -= k;
        k
    }

    fn take_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    /// Appends a new record (the caller made room).
    fn append(&mut self, t: u32, body: Body) -> u32 {
        let seq = self.take_seq();
        if self.len < N {
            self.records[self.len] = Record { boot: self.boot, seq, t, body };
            self.len += 1;
        } else {
            // Unreachable by the policy (see the module docs); never overwrite a record.
            debug_assert!(false, "outbox: append without room");
        }
        seq
    }

    /// Whether [`make_room`](Self::make_room) would succeed, without changing anything: it
    /// replays its decisions (a drop that extends the open range, or opens one, frees a slot;
    /// one that closes a range and opens another frees none, the `dropped` event takes it).
    fn room_possible(&self) -> bool {
        let mut len = self.len;
        let mut last = self.open.map(|(r, _)| r.to);
        for rec in self.records[..self.len].iter().filter(|r| r.is_telemetry()) {
            if len + 2 <= N {
                break;
            }
            match last {
                Some(to) if to.wrapping_add(1) != rec.seq => {}
                _ => len -= 1,
            }
            last = Some(rec.seq);
        }
        len + 2 <= N
    }

    /// Drops oldest telemetry records until an ordinary record fits beside the reserved slot;
    /// false if that is impossible (no telemetry left).
    fn make_room(&mut self, t: u32) -> bool {
        while self.len + 2 > N {
            let Some(i) = self.records[..self.len].iter().position(Record::is_telemetry) else {
                return false;
            };
            let rec = self.records[i];
            self.records.copy_within(i + 1..self.len, i);
            self.len -= 1;
            let n = match rec.body {
                Body::Telemetry(a) => a.n,
                _ => 0,
            };
            self.count_drop(rec.seq, n, t);
        }
        true
    }

    /// Records that telemetry record `seq` (holding `readings`) is gone.
    fn count_drop(&mut self, seq: u32, readings: u32, t: u32) {
        self.dropped_records = self.dropped_records.saturating_add(1);
        self.dropped_readings = self.dropped_readings.saturating_add(readings);
        let new = DropRange { from: seq, to: seq, readings };
        match &mut self.open {
            Some((range, at)) if range.to.wrapping_add(1) == seq => {
                range.to = seq;
                range.readings = range.readings.saturating_add(readings);
                *at = t;
                return;
            }
            Some(_) => self.close_open(),
            None => {}
        }
        self.open = Some((new, t));
    }

    /// Turns the open range into a `dropped` event record.
    fn close_open(&mut self) {
        if let Some((range, at)) = self.open.take() {
            self.append(at, Body::Dropped(range));
        }
    }
}
