//! Storage behind a trait ([`Store`]), implemented for SQLite ([`SqliteStore`](crate::SqliteStore)).
//!
//! The trait is deliberately small and synchronous: row-level operations plus explicit
//! transaction boundaries. The protocol logic (duplicates, watermarks, shadow merges, what to
//! publish) lives once, in [`Ingest`](crate::Ingest), on top of it. A PostgreSQL back end can
//! implement it with the synchronous `postgres` crate (`BEGIN`/`COMMIT`/`ROLLBACK`, the same
//! tables, `INSERT ... ON CONFLICT DO NOTHING` for `INSERT OR IGNORE`, `jsonb` or `text` for the
//! JSON columns) and report its errors as [`StoreError::Backend`]; every method takes
//! `&mut self` because that client needs it. Scaling out to several twin workers (shared MQTT
//! subscriptions) would additionally need the watermark update to lock its row
//! (`SELECT ... FOR UPDATE`), which a single-writer SQLite database does not need.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::error::StoreError;
use crate::shadow::{Document, Shadow};
use crate::wire::{Reason, Telemetry};

/// A counter kept next to the data (shown by `GET /stats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Counter {
    /// A new telemetry record was stored.
    StoredTelemetry,
    /// A new event was stored.
    StoredEvent,
    /// A state message was accepted (whether or not it changed the shadow).
    AcceptedState,
    /// A record whose (device, boot, seq) was already stored arrived again.
    Duplicate,
    /// A desired-state write changed a shadow.
    DesiredWrite,
}

impl Counter {
    /// Every counter, in a stable order.
    pub const ALL: [Counter; 5] = [
        Counter::StoredTelemetry,
        Counter::StoredEvent,
        Counter::AcceptedState,
        Counter::Duplicate,
        Counter::DesiredWrite,
    ];

    /// The counter's name in storage and in `GET /stats`.
    pub const fn name(self) -> &'static str {
        match self {
            Counter::StoredTelemetry => "stored_telemetry",
            Counter::StoredEvent => "stored_events",
            Counter::AcceptedState => "accepted_states",
            Counter::Duplicate => "duplicates",
            Counter::DesiredWrite => "desired_writes",
        }
    }
}

/// An event as stored: the common fields and the kind's own fields in `body`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StoredEvent {
    /// Boot id.
    pub boot: u32,
    /// Sequence number.
    pub seq: u32,
    /// Milliseconds since boot.
    pub t: u32,
    /// `boot`, `confirm`, `revert`, `dropped`, `desired_applied`.
    pub kind: String,
    /// The kind's fields (`slot`, `version`, `from`, ...), flattened into the JSON output.
    #[serde(flatten)]
    pub body: Document,
}

/// Per (device, boot): every seq up to `seq` is stored or declared dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Watermark {
    /// Boot id.
    pub boot: u32,
    /// The watermark (0: nothing contiguous from seq 1 yet).
    pub seq: u32,
}

/// A device as listed by `GET /devices`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DeviceInfo {
    /// Device id.
    pub id: String,
    /// Accepted messages from it (telemetry, events, states, duplicates included).
    pub received: u64,
    /// Duplicates among them.
    pub duplicates: u64,
    /// The highest boot id seen, if any record or state came.
    pub last_boot: Option<u32>,
    /// Shadow version (0 when it has no shadow yet).
    pub version: u64,
    /// Watermark of each boot seen.
    pub watermarks: Vec<Watermark>,
}

/// Filters for the history queries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryQuery {
    /// Only this boot.
    pub boot: Option<u32>,
    /// Only seqs strictly above this one (in every boot selected).
    pub since: Option<u32>,
    /// At most this many rows, ordered by (boot, seq).
    pub limit: u32,
}

impl Default for HistoryQuery {
    fn default() -> Self {
        HistoryQuery { boot: None, since: None, limit: 1000 }
    }
}

/// Totals from storage (`GET /stats`).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct StoreStats {
    /// Rejected inputs per reason (every reason listed, zeros included).
    pub rejected: BTreeMap<&'static str, u64>,
    /// Sum of `rejected`.
    pub rejected_total: u64,
    /// The [`Counter`]s by name (every counter listed).
    pub counters: BTreeMap<&'static str, u64>,
    /// Devices known.
    pub devices: u64,
}

/// The storage the twin needs (see the module docs for the contract and for PostgreSQL).
///
/// Writes are made between [`begin`](Store::begin) and [`commit`](Store::commit) by
/// [`Ingest`](crate::Ingest), one transaction per message or per batch, so a message is stored
/// whole or not at all.
pub trait Store: Send {
    /// Starts a transaction.
    fn begin(&mut self) -> Result<(), StoreError>;
    /// Commits the transaction.
    fn commit(&mut self) -> Result<(), StoreError>;
    /// Rolls the transaction back.
    fn rollback(&mut self) -> Result<(), StoreError>;

    /// Creates the device's row if it does not exist.
    fn ensure_device(&mut self, device: &str) -> Result<(), StoreError>;
    /// Records an accepted message from a device: creates its row if needed, counts it
    /// (`duplicate`: also as a duplicate) and raises `last_boot` to `boot`.
    fn device_seen(&mut self, device: &str, boot: u32, duplicate: bool) -> Result<(), StoreError>;

    /// Whether a telemetry record or an event with this key is stored.
    fn record_exists(&mut self, device: &str, boot: u32, seq: u32) -> Result<bool, StoreError>;
    /// Stores a telemetry record; false if the key was already taken (nothing written).
    fn insert_telemetry(&mut self, device: &str, rec: &Telemetry) -> Result<bool, StoreError>;
    /// Stores an event; false if the key was already taken (nothing written).
    fn insert_event(&mut self, device: &str, event: &StoredEvent) -> Result<bool, StoreError>;
    /// Records that seqs `from..=to` of a boot are gone for good (a `dropped` event).
    fn insert_dropped(&mut self, device: &str, boot: u32, from: u32, to: u32) -> Result<(), StoreError>;
    /// If `seq` is covered (stored, or inside a declared-dropped range), the highest seq of the
    /// stretch that covers it: `seq` itself for a stored record, or the largest `to` of the
    /// dropped ranges holding it, whichever is larger. `None` if not covered.
    fn coverage_end(&mut self, device: &str, boot: u32, seq: u32) -> Result<Option<u32>, StoreError>;

    /// The watermark of (device, boot); 0 if none yet.
    fn watermark(&mut self, device: &str, boot: u32) -> Result<u32, StoreError>;
    /// Sets the watermark of (device, boot).
    fn set_watermark(&mut self, device: &str, boot: u32, seq: u32) -> Result<(), StoreError>;
    /// Every boot's watermark of a device, by boot.
    fn watermarks(&mut self, device: &str) -> Result<Vec<Watermark>, StoreError>;

    /// The device's shadow, if it has one.
    fn shadow(&mut self, device: &str) -> Result<Option<Shadow>, StoreError>;
    /// Writes the device's shadow.
    fn put_shadow(&mut self, device: &str, shadow: &Shadow) -> Result<(), StoreError>;

    /// Adds one to a rejection reason's counter.
    fn count_rejection(&mut self, reason: Reason) -> Result<(), StoreError>;
    /// Adds one to a counter.
    fn bump(&mut self, counter: Counter) -> Result<(), StoreError>;

    /// All devices, by id.
    fn devices(&mut self) -> Result<Vec<DeviceInfo>, StoreError>;
    /// Whether the device is known.
    fn device_exists(&mut self, device: &str) -> Result<bool, StoreError>;
    /// A device's telemetry, by (boot, seq).
    fn telemetry(&mut self, device: &str, query: &HistoryQuery) -> Result<Vec<Telemetry>, StoreError>;
    /// A device's events, by (boot, seq).
    fn events(&mut self, device: &str, query: &HistoryQuery) -> Result<Vec<StoredEvent>, StoreError>;
    /// Counters and totals.
    fn stats(&mut self) -> Result<StoreStats, StoreError>;
}

impl<S: Store + ?Sized> Store for Box<S> {
    fn begin(&mut self) -> Result<(), StoreError> {
        (**self).begin()
    }
    fn commit(&mut self) -> Result<(), StoreError> {
        (**self).commit()
    }
    fn rollback(&mut self) -> Result<(), StoreError> {
        (**self).rollback()
    }
    fn ensure_device(&mut self, device: &str) -> Result<(), StoreError> {
        (**self).ensure_device(device)
    }
    fn device_seen(&mut self, device: &str, boot: u32, duplicate: bool) -> Result<(), StoreError> {
        (**self).device_seen(device, boot, duplicate)
    }
    fn record_exists(&mut self, device: &str, boot: u32, seq: u32) -> Result<bool, StoreError> {
        (**self).record_exists(device, boot, seq)
    }
    fn insert_telemetry(&mut self, device: &str, rec: &Telemetry) -> Result<bool, StoreError> {
        (**self).insert_telemetry(device, rec)
    }
    fn insert_event(&mut self, device: &str, event: &StoredEvent) -> Result<bool, StoreError> {
        (**self).insert_event(device, event)
    }
    fn insert_dropped(&mut self, device: &str, boot: u32, from: u32, to: u32) -> Result<(), StoreError> {
        (**self).insert_dropped(device, boot, from, to)
    }
    fn coverage_end(&mut self, device: &str, boot: u32, seq: u32) -> Result<Option<u32>, StoreError> {
        (**self).coverage_end(device, boot, seq)
    }
    fn watermark(&mut self, device: &str, boot: u32) -> Result<u32, StoreError> {
        (**self).watermark(device, boot)
    }
    fn set_watermark(&mut self, device: &str, boot: u32, seq: u32) -> Result<(), StoreError> {
        (**self).set_watermark(device, boot, seq)
    }
    fn watermarks(&mut self, device: &str) -> Result<Vec<Watermark>, StoreError> {
        (**self).watermarks(device)
    }
    fn shadow(&mut self, device: &str) -> Result<Option<Shadow>, StoreError> {
        (**self).shadow(device)
    }
    fn put_shadow(&mut self, device: &str, shadow: &Shadow) -> Result<(), StoreError> {
        (**self).put_shadow(device, shadow)
    }
    fn count_rejection(&mut self, reason: Reason) -> Result<(), StoreError> {
        (**self).count_rejection(reason)
    }
    fn bump(&mut self, counter: Counter) -> Result<(), StoreError> {
        (**self).bump(counter)
    }
    fn devices(&mut self) -> Result<Vec<DeviceInfo>, StoreError> {
        (**self).devices()
    }
    fn device_exists(&mut self, device: &str) -> Result<bool, StoreError> {
        (**self).device_exists(device)
    }
    fn telemetry(&mut self, device: &str, query: &HistoryQuery) -> Result<Vec<Telemetry>, StoreError> {
        (**self).telemetry(device, query)
    }
    fn events(&mut self, device: &str, query: &HistoryQuery) -> Result<Vec<StoredEvent>, StoreError> {
        (**self).events(device, query)
    }
    fn stats(&mut self) -> Result<StoreStats, StoreError> {
        (**self).stats()
    }
}
