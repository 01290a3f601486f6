//! Records: what the device publishes on `up/telemetry` and `up/event`.

use crate::aggregate::Aggregate;

/// The A/B image slot and the image version the `boot` event and the state report carry: the
/// contract's, shared with the bootloader and the image format. On the wire ([`crate::json`])
/// a slot is `"a"` / `"b"`, a version `"major.minor.revision"`, with `"+build"` appended only
/// when the build number is not 0 (`"1.0.0"`, `"1.2.3+4"`).
pub use twinbed_contract::version::{Slot, Version};

/// An event the app records (PROTOCOL.md §2, "Event kinds"). The `dropped` event is not here:
/// only the [`Outbox`](crate::Outbox) creates it ([`Body::Dropped`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// `"kind":"boot"`: the image booted, from this slot, with this version.
    Boot {
        /// The slot the image runs from.
        slot: Slot,
        /// The running image's version.
        version: Version,
    },
    /// `"kind":"confirm"`: the image confirmed itself after a trial boot.
    Confirm,
    /// `"kind":"revert"`: the bootloader reverted an unconfirmed trial image.
    Revert,
    /// `"kind":"desired_applied"`: the desired state of this version was applied.
    DesiredApplied {
        /// The twin's version of the desired state.
        version: u64,
    },
}

impl Event {
    /// The `kind` string on the wire.
    pub const fn kind(&self) -> &'static str {
        match self {
            Event::Boot { .. } => "boot",
            Event::Confirm => "confirm",
            Event::Revert => "revert",
            Event::DesiredApplied { .. } => "desired_applied",
        }
    }
}

/// Records `from..=to` (all telemetry, all dropped) and the readings they held: the body of a
/// `dropped` event, or the open range not yet turned into one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DropRange {
    /// First dropped seq.
    pub from: u32,
    /// Last dropped seq (inclusive).
    pub to: u32,
    /// Readings the dropped records held (saturating).
    pub readings: u32,
}

/// What a record carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Body {
    /// A telemetry record (`up/telemetry`).
    Telemetry(Aggregate),
    /// An event of the app (`up/event`).
    Event(Event),
    /// A `dropped` event (`up/event`, `"kind":"dropped"`): records `from..=to`, holding
    /// `readings` readings, were dropped by the outbox. Never dropped itself.
    Dropped(DropRange),
}

/// One record with its identity: `(boot, seq)` and the time it was created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record {
    /// Boot id (increasing across boots, kept in flash by the app).
    pub boot: u32,
    /// Sequence number: 1, 2, 3, ... per boot, shared by telemetry and events.
    pub seq: u32,
    /// Milliseconds since boot when the record was created.
    pub t: u32,
    /// Telemetry or event.
    pub body: Body,
}

impl Record {
    /// True for a telemetry record (the only kind the outbox may drop).
    pub const fn is_telemetry(&self) -> bool {
        matches!(self.body, Body::Telemetry(_))
    }
}
