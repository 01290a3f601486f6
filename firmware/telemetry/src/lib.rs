//! The device side of twinbed's telemetry wire format (`twin/PROTOCOL.md` §2): `no_std`, no
//! allocation, no floats, host-tested.
//!
//! The pieces, in the order a reading travels through them:
//!
//! 1. [`Aggregator`]: sensor readings (milli-°C) into windows of a configurable number of
//!    readings, each summarised as min / max / integer mean; a **deadband** folds a window whose
//!    mean is close to the last emitted one into the next emitted [`Aggregate`], so consecutive
//!    aggregates always cover consecutive readings (`first .. first + n`).
//! 2. [`Outbox`]: the records of this boot, telemetry and events, each with its `(boot, seq)`
//!    (seq 1, 2, 3, ... shared by both kinds, no gaps), kept in a bounded buffer until the twin
//!    acks them. When it is full the oldest *telemetry* record is dropped and reported by a
//!    `dropped` event; events are never dropped. A send cursor replays everything unacked after
//!    a reconnect. See [`outbox`] for the exact policy and its slot reservation.
//! 3. [`json`]: each [`Record`], the `state` message ([`Reported`]) and the topic names, encoded
//!    byte-exact into a caller's `&mut [u8]`.
//! 4. [`down`]: the twin's `ack` and `desired` messages parsed from a payload, tolerating
//!    unknown keys and refusing malformed input with an [`Error`], never a panic.
//! 5. [`Backoff`]: exponential reconnect delays with jitter from a seeded [`XorShift32`], so a
//!    run is deterministic.
//!
//! # Why JSON by hand
//!
//! The encoder and the parser are written here rather than with `serde-json-core`: the records
//! are a handful of fixed shapes of integers and short ASCII strings, and the wire contract is
//! byte-exact (key order, no spaces), which a hand-written writer states in a few lines per
//! record. It costs no `serde` derive code, no float formatting and no `core::fmt` (integers
//! are formatted by [`json`]'s own routine), which matters in a 512 KiB slot that already holds
//! an Ed25519 verifier. The parser only needs four keys out of two shapes, must skip unknown
//! keys of any JSON type and must never panic: a small validating scanner (bounded nesting, no
//! recursion) does that with a few hundred bytes of code and no buffer.
//!
//! # Out of scope
//!
//! Records of an earlier boot: the outbox lives in RAM and starts empty at every boot, so every
//! record in it has the current boot id. If it were persisted in flash, the records of the
//! previous boot would need their own cursor and acks (`ack` only drops records of the boot it
//! names; see [`Outbox::ack`]); that is not implemented.
#![cfg_attr(not(test), no_std)]

pub mod aggregate;
mod backoff;
pub mod down;
pub mod json;
pub mod outbox;
mod record;

pub use aggregate::{Aggregate, Aggregator, AggregatorConfig};
pub use backoff::{Backoff, XorShift32};
pub use down::{parse_down, Desired, Down};
pub use json::{encode_record, encode_state, topic, Battery, Reported, TopicKind, MAX_RECORD_LEN};
pub use outbox::{DropRange, Outbox};
pub use record::{Body, Event, Record, Slot, Version};

/// Everything that can go wrong in this crate: one enum, `Copy`, no allocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The caller's output buffer is too small for the encoded message.
    #[error("output buffer too small")]
    BufferTooSmall,
    /// The outbox holds only events (which are never dropped) and cannot take another one.
    #[error("outbox full of events")]
    OutboxFull,
    /// The device id is not `[A-Za-z0-9_-]{1,32}`.
    #[error("invalid device id")]
    InvalidDeviceId,
    /// A down message is not well-formed JSON (or nests deeper than the parser allows); `at` is
    /// the byte offset where parsing stopped.
    #[error("malformed JSON at byte {at}")]
    Syntax {
        /// Byte offset into the payload.
        at: usize,
    },
    /// A down message lacks a key its type requires.
    #[error("missing key {key:?}")]
    MissingKey {
        /// The key, as on the wire.
        key: &'static str,
    },
    /// A known key holds a value of the wrong type or out of range (e.g. a negative seq).
    #[error("bad value for key {key:?}")]
    BadValue {
        /// The key, as on the wire.
        key: &'static str,
    },
    /// A well-formed down message whose `type` this firmware does not know (ignore it).
    #[error("unknown message type")]
    UnknownType,
}
