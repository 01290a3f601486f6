//! The protocol state of the twin, without sockets (in the style of `rumqttc`'s `MqttState`):
//! [`Ingest`] takes `(topic, payload)` and a [`Store`], and returns what it stored or rejected
//! and which [`Outgoing`] messages to publish. The MQTT service and the HTTP API drive it; the
//! unit tests drive it directly.
//!
//! # Rules (PROTOCOL.md §2–§3)
//!
//! - **Idempotency**: a telemetry record or event is stored once per `(device, boot, seq)`
//!   (telemetry and events share the seq space). A second arrival is a *duplicate*: counted
//!   (per device and in total), not stored.
//! - **Watermark** per `(device, boot)`: the highest `S` such that every seq `1..=S` is stored
//!   or lies in the range of a stored `dropped` event. Records may arrive in any order; a hole
//!   keeps the watermark below it until it is filled (or declared dropped), then the watermark
//!   jumps over everything contiguous. Each boot has its own watermark, starting at 0; records
//!   of an older boot arriving late are still stored and acked under their boot.
//! - **Acks**: an `ack` with the new watermark is published when the watermark moves. A
//!   duplicate at or below the watermark is answered with the current `ack` again: the device
//!   replays unacked records after a reconnect, so it re-sends exactly those whose ack it
//!   missed, and without a fresh ack it would keep them forever. (PROTOCOL.md says "publishes
//!   an ack when it moves"; this is the reading that lets a device recover from a lost ack.)
//! - **State**: `reported` is merged into the shadow ([`Shadow::merge_reported`]); the version
//!   moves only if the document changed. After every accepted state message whose `reported`
//!   differs from `desired` (a non-empty delta), the `desired` message is published.
//! - **Desired** ([`Ingest::set_desired`]): merged with optimistic locking on the shadow
//!   version; a change is published to the device.
//! - **Bad input** is rejected with a [`Reason`], counted, and changes nothing else (no
//!   device row, no shadow change).
//!
//! Each call runs in one storage transaction; [`Ingest::handle_batch`] runs many messages in
//! one transaction (what the service does under load).

use serde_json::Value;

use crate::error::{DesiredProblem, Error, StoreError};
use crate::shadow::{first_non_integer, Document, Shadow};
use crate::store::{Counter, Store, StoredEvent};
use crate::wire::{self, Down, EventKind, Outgoing, Reason, Rejection, Up, MAX_PAYLOAD};

/// The largest `reported` document a shadow may hold, in bytes of compact JSON. A state
/// message that would grow it past this is rejected ([`Reason::ShadowTooLarge`]). (AWS IoT
/// caps a whole shadow at 8 KiB.)
pub const MAX_REPORTED: usize = 8 * 1024;

/// Telemetry or event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecordKind {
    /// `up/telemetry`.
    Telemetry,
    /// `up/event`.
    Event,
}

/// What happened to one input message.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    /// A new record was stored.
    Stored {
        /// Which kind.
        kind: RecordKind,
        /// Boot id.
        boot: u32,
        /// Seq.
        seq: u32,
    },
    /// The record's key was already stored: counted, not stored again.
    Duplicate {
        /// Which kind (of the message that arrived).
        kind: RecordKind,
        /// Boot id.
        boot: u32,
        /// Seq.
        seq: u32,
    },
    /// A state message was merged into the shadow.
    State {
        /// The shadow version after the merge.
        version: u64,
        /// Whether `reported` changed.
        changed: bool,
    },
    /// The message was rejected and counted.
    Rejected(Rejection),
}

/// The result of [`Ingest::handle`].
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    /// The device the message is from, when the topic names a valid one.
    pub device: Option<String>,
    /// What happened.
    pub verdict: Verdict,
    /// What to publish, in order.
    pub publish: Vec<Outgoing>,
}

/// The result of a successful [`Ingest::set_desired`].
#[derive(Clone, Debug, PartialEq)]
pub struct DesiredOutcome {
    /// The shadow after the write.
    pub shadow: Shadow,
    /// Whether `desired` changed (if not, the version did not move and nothing is published).
    pub changed: bool,
    /// The `desired` message to publish (when changed).
    pub publish: Option<Outgoing>,
}

/// The twin's protocol state over a [`Store`] (see the module docs).
#[derive(Debug)]
pub struct Ingest<S> {
    store: S,
}

impl<S: Store> Ingest<S> {
    /// Wraps a store.
    pub fn new(store: S) -> Self {
        Ingest { store }
    }

    /// The store, for queries.
    pub fn store(&mut self) -> &mut S {
        &mut self.store
    }

    /// Gives the store back.
    pub fn into_store(self) -> S {
        self.store
    }

    /// Handles one message in its own transaction. Only a storage failure is an error (and
    /// then nothing of the message is stored: the caller must not acknowledge it).
    pub fn handle(&mut self, topic: &str, payload: &[u8]) -> Result<Outcome, StoreError> {
        self.in_transaction(|this| this.process(topic, payload))
    }

    /// Handles messages in order, in one transaction: all stored or (on a storage error)
    /// none.
    pub fn handle_batch<'a, I>(&mut self, messages: I) -> Result<Vec<Outcome>, StoreError>
    where
        I: IntoIterator<Item = (&'a str, &'a [u8])>,
    {
        self.in_transaction(|this| messages.into_iter().map(|(t, p)| this.process(t, p)).collect())
    }

    /// Merges `state` into the device's desired document if the shadow is at
    /// `expected_version` (optimistic locking); see [`crate::shadow`] for the merge. A device
    /// never seen has version 0: writing with version 0 creates its shadow (desired
    /// configuration can be set before a device first connects).
    pub fn set_desired(
        &mut self,
        device: &str,
        expected_version: u64,
        state: &Value,
    ) -> Result<DesiredOutcome, Error> {
        if !wire::valid_device_id(device) {
            return Err(Error::InvalidDeviceId { device: device.to_owned() });
        }
        let Value::Object(update) = state else {
            return Err(Error::InvalidDesired { reason: DesiredProblem::NotAnObject });
        };
        if let Some(path) = first_non_integer(state) {
            return Err(Error::InvalidDesired { reason: DesiredProblem::NotInteger { path } });
        }
        self.in_transaction(|this| {
            let mut shadow = this.store.shadow(device)?.unwrap_or_default();
            if shadow.version != expected_version {
                return Ok(Err(Error::StaleVersion {
                    device: device.to_owned(),
                    expected: expected_version,
                    current: shadow.version,
                }));
            }
            let changed = shadow.merge_desired(update);
            if !changed {
                return Ok(Ok(DesiredOutcome { shadow, changed, publish: None }));
            }
            let message = Down::Desired { version: shadow.version, state: shadow.desired.clone() };
            let len = message.encode().len();
            if len > MAX_PAYLOAD {
                return Ok(Err(Error::InvalidDesired {
                    reason: DesiredProblem::TooLarge { len, max: MAX_PAYLOAD },
                }));
            }
            this.store.ensure_device(device)?;
            this.store.put_shadow(device, &shadow)?;
            this.store.bump(Counter::DesiredWrite)?;
            let publish = Some(Outgoing { device: device.to_owned(), message });
            Ok(Ok(DesiredOutcome { shadow, changed, publish }))
        })?
    }

    /// Runs `f` in a transaction: committed if it returns `Ok`, rolled back otherwise. (A
    /// logical refusal inside, like a stale version, is returned as `Ok(Err(..))` by the
    /// callers and nothing was written by then.)
    fn in_transaction<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.store.begin()?;
        match f(self) {
            Ok(v) => {
                self.store.commit()?;
                Ok(v)
            }
            Err(e) => {
                // The original error matters more than a failed rollback.
                let _ = self.store.rollback();
                Err(e)
            }
        }
    }

    fn process(&mut self, topic: &str, payload: &[u8]) -> Result<Outcome, StoreError> {
        let (device, up) = match wire::parse(topic, payload) {
            Ok(ok) => ok,
            Err(rejection) => {
                self.store.count_rejection(rejection.reason)?;
                let device = wire::parse_topic(topic).ok().map(|(d, _)| d.to_owned());
                return Ok(Outcome { device, verdict: Verdict::Rejected(rejection), publish: Vec::new() });
            }
        };
        match up {
            Up::Telemetry(rec) => self.record(device, RecordKind::Telemetry, rec.boot, rec.seq, |s| {
                s.insert_telemetry(device, &rec)
            }),
            Up::Event(ev) => {
                let stored = StoredEvent {
                    boot: ev.boot,
                    seq: ev.seq,
                    t: ev.t,
                    kind: ev.kind.name().to_owned(),
                    body: ev.kind.body(),
                };
                self.record(device, RecordKind::Event, ev.boot, ev.seq, |s| {
                    let inserted = s.insert_event(device, &stored)?;
                    if let (true, EventKind::Dropped { from, to, .. }) = (inserted, &ev.kind) {
                        s.insert_dropped(device, ev.boot, *from, *to)?;
                    }
                    Ok(inserted)
                })
            }
            Up::State(state) => self.state(device, state.boot, &state.reported),
        }
    }

    fn record(
        &mut self,
        device: &str,
        kind: RecordKind,
        boot: u32,
        seq: u32,
        insert: impl FnOnce(&mut S) -> Result<bool, StoreError>,
    ) -> Result<Outcome, StoreError> {
        let mut publish = Vec::new();
        let ack = |seq| Outgoing { device: device.to_owned(), message: Down::Ack { boot, seq } };
        let duplicate = self.store.record_exists(device, boot, seq)? || !insert(&mut self.store)?;
        self.store.device_seen(device, boot, duplicate)?;
        let verdict = if duplicate {
            self.store.bump(Counter::Duplicate)?;
            let w = self.store.watermark(device, boot)?;
            if seq <= w {
                publish.push(ack(w));
            }
            Verdict::Duplicate { kind, boot, seq }
        } else {
            self.store.bump(match kind {
                RecordKind::Telemetry => Counter::StoredTelemetry,
                RecordKind::Event => Counter::StoredEvent,
            })?;
            let before = self.store.watermark(device, boot)?;
            let mut w = before;
            while w < u32::MAX {
                match self.store.coverage_end(device, boot, w + 1)? {
                    Some(end) => w = end.max(w + 1),
                    None => break,
                }
            }
            if w != before {
                self.store.set_watermark(device, boot, w)?;
                publish.push(ack(w));
            }
            Verdict::Stored { kind, boot, seq }
        };
        Ok(Outcome { device: Some(device.to_owned()), verdict, publish })
    }

    fn state(&mut self, device: &str, boot: u32, reported: &Document) -> Result<Outcome, StoreError> {
        let mut shadow = self.store.shadow(device)?.unwrap_or_default();
        let changed = shadow.merge_reported(reported);
        if changed && serde_json::to_vec(&shadow.reported).map_or(usize::MAX, |v| v.len()) > MAX_REPORTED {
            let rejection = Rejection { reason: Reason::ShadowTooLarge, field: Some("reported".into()) };
            self.store.count_rejection(rejection.reason)?;
            return Ok(Outcome {
                device: Some(device.to_owned()),
                verdict: Verdict::Rejected(rejection),
                publish: Vec::new(),
            });
        }
        self.store.device_seen(device, boot, false)?;
        self.store.bump(Counter::AcceptedState)?;
        if changed {
            self.store.put_shadow(device, &shadow)?;
        }
        let mut publish = Vec::new();
        if !shadow.delta().is_empty() {
            publish.push(Outgoing {
                device: device.to_owned(),
                message: Down::Desired { version: shadow.version, state: shadow.desired.clone() },
            });
        }
        Ok(Outcome {
            device: Some(device.to_owned()),
            verdict: Verdict::State { version: shadow.version, changed },
            publish,
        })
    }
}

#[cfg(test)]
mod tests;
