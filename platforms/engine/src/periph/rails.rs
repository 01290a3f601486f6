//! How a model tells the energy accounts (`crate::power`) what it draws: the parts of it that
//! draw current (rails, each with named states and their currents from the board's `[power]`
//! table) and, after every access or reset, which state each part is in. A model that draws
//! nothing implements neither [`Device::rails`](super::Device::rails) nor
//! [`Device::rail_state`](super::Device::rail_state).

use serde::{Deserialize, Serialize};

/// What a rail stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RailKind {
    /// The core: `run`, `sleep`, `deep-sleep`, `off`.
    Cpu,
    /// A flash controller: `idle`, `program`, `erase`.
    Flash,
    /// A temperature sensor: `measuring`, `shutdown`, `off`.
    Sensor,
    /// A load the engine does not model, whose state the host sets: the modem (`off`, `idle`,
    /// `rx`, `tx`).
    External,
}

/// One part of a model that draws current, as the model declares it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RailSpec {
    /// The rail's name in reports (the part's board name).
    pub name: String,
    /// What it stands for.
    pub kind: RailKind,
    /// Its states: name and current in nA (from the board's `[power]` table).
    pub states: Vec<(&'static str, u64)>,
    /// The state at power-on.
    pub initial: usize,
    /// The state while the board's power is cut.
    pub off: usize,
    /// The model's event count at power-on (see [`RailView::seen`]).
    pub seen: u32,
}

/// A rail as the energy accounts hold it, for the model to decide its next state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RailView {
    /// Virtual time of the access or reset, in cycles.
    pub now: u64,
    /// Core clock (cycles per second).
    pub clock_hz: u32,
    /// The state set last.
    pub current: usize,
    /// A change scheduled then: at this cycle, to that state.
    pub until: Option<(u64, usize)>,
    /// The state at `now` (after a scheduled change due by then).
    pub state_now: usize,
    /// A count the model keeps on the rail between calls (e.g. the one-shot conversions it has
    /// already been charged for).
    pub seen: u32,
}

/// Which state a rail is in from now on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RailState {
    /// The state from now.
    pub state: usize,
    /// A change known in advance: at this cycle, to that state.
    pub until: Option<(u64, usize)>,
    /// The count to keep on the rail ([`RailView::seen`]).
    pub seen: u32,
}

impl RailView {
    /// The rail as it is: no change.
    pub fn unchanged(&self) -> RailState {
        RailState { state: self.current, until: self.until, seen: self.seen }
    }
}
