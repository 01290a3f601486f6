//! Energy accounting: the board's currents integrated over virtual time, per state, exactly;
//! and the battery they drain.
//!
//! # Rails and states
//! The board file's `[power]` table gives a current for each state of each part of the board
//! (`twinbed_board::Power`). The machine keeps one *rail* per part, each in exactly one state at
//! any cycle:
//!
//! | rail | kind | states | who changes it |
//! |---|---|---|---|
//! | `cpu` | [`RailKind::Cpu`] | `run`, `sleep`, `deep-sleep`, `off` | WFI/WFE entry (SCR.SLEEPDEEP picks deep sleep), wake-up, reset, power cut |
//! | each flash controller (its board name) | [`RailKind::Flash`] | `idle`, `program`, `erase` | the command that starts an operation; it returns to `idle` at the operation's completion cycle (a row program counts as `program`) |
//! | each TMP105 (its board name) | [`RailKind::Sensor`] | `measuring`, `shutdown`, `off` | configuration writes: SD = 0 converts continuously, SD = 1 shuts down; a one-shot measures for the datasheet's conversion time at the configured resolution |
//! | `modem` | [`RailKind::External`] | `off`, `idle`, `rx`, `tx` | the host (`Machine::set_external_state`): the modem model lives outside the engine; it starts `off` |
//!
//! The board draws the sum of its rails' currents. The flash controller's current comes on top
//! of the core's (the core keeps running, or sleeps, meanwhile).
//!
//! A peripheral's rails are declared by its model ([`Device::rails`]: names, states, currents
//! from `[power]`), and after every access or reset the model says which state each is in
//! ([`Device::rail_state`]); nothing here knows which models draw current.
//!
//! # Exactness
//! Currents are whole nA (the board file's µA with three decimals), time is whole core cycles,
//! and a rail's charge is accumulated in nA·cycles in a `u128`: `charge += current × cycles`,
//! integer arithmetic with no rounding. The machine brings the rails up to `now` only when a
//! state changes (WFI entry and wake-up, a flash command, a sensor configuration write, an
//! external change, reset, power cut) or when someone asks (a report, a fuel-gauge read), never
//! per instruction; a state change known in advance (a flash operation's completion, the end
//! of a one-shot conversion) is scheduled on the rail and applied at its exact cycle when the
//! rail is next brought up to date. As integer sums do not depend on where they are split, the
//! figures are the same whatever the run's slicing: run in one call or in thousands, queried
//! or not, a state accumulates the same cycles and the same nA·cycles. Conversions to nAh, ns
//! or µA are done only in reports, from the exact sums.
//!
//! # Battery
//! With a `[battery]` table, the charge drawn from the cell is the board's charge plus the
//! cell's self-discharge (linear in time: `self_discharge_pct_per_month` of the design capacity
//! per 30 days of virtual time, counted exactly from cycle 0) plus any host adjustment
//! ([`crate::Machine::set_battery_soc`]). The state of charge is what remains of the capacity;
//! the voltage is the board's curve at that state of charge, interpolated linearly. When the
//! charge is used up the state of charge stays at 0 (nothing stops the machine: the report and
//! the gauge say EMPTY).
//!
//! # Lifecycle
//! A system reset changes nothing but the core's state (back to `run`) and lets a flash
//! operation in flight finish at once (the rail goes `idle`). A power cut puts the rails the
//! engine owns in their zero-current states (`cpu` and sensors `off`, flash `idle`; a torn
//! operation stops drawing at the cut); external rails stay as the host set them (set the modem
//! `off` too if the cut takes it down). Power-on resumes (`cpu` runs, sensors follow their
//! configuration). Charge and the battery are never reset: they keep accumulating for the
//! machine's whole life, across resets and power cycles, and snapshots (clones, serde) carry
//! them.

use crate::periph::{Device, GaugeReading, Mapped, Model, RailSpec, RailView};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What a rail stands for (declared with the peripheral models, which describe their rails).
pub use crate::periph::RailKind;

/// Index of the core's rail (always the first).
const CPU: usize = 0;

/// Core states.
pub(crate) mod cpu {
    /// Running.
    pub const RUN: usize = 0;
    /// WFI/WFE.
    pub const SLEEP: usize = 1;
    /// WFI/WFE with SCR.SLEEPDEEP.
    pub const DEEP_SLEEP: usize = 2;
    /// Power cut.
    pub const OFF: usize = 3;
}

/// Why an energy-accounting request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PowerError {
    /// The board file has no `[power]` table.
    #[error("the board has no [power] table: energy is not accounted")]
    NotAccounted,
    /// No external load of that name.
    #[error("no external load `{name}`: the host can set {known}")]
    UnknownLoad {
        /// The name asked for.
        name: String,
        /// The external loads, comma-separated.
        known: String,
    },
    /// The load has no such state.
    #[error("external load `{load}` has no state `{state}`: it has {known}")]
    UnknownState {
        /// The load.
        load: String,
        /// The state asked for.
        state: String,
        /// Its states, comma-separated.
        known: String,
    },
    /// The board file has no `[battery]` table.
    #[error("the board has no [battery] table")]
    NoBattery,
    /// A state of charge above 1000 ‰.
    #[error("state of charge {permille} \u{2030} is above 1000 \u{2030}")]
    SocOutOfRange {
        /// The value asked for.
        permille: u32,
    },
}

/// One state of a rail and what it has accumulated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Acc {
    name: String,
    current_na: u64,
    cycles: u64,
    /// nA·cycles.
    charge: u128,
}

/// One part of the board, in one state at a time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Rail {
    name: String,
    kind: RailKind,
    /// The peripheral it belongs to (flash controller, the sensor's I2C controller).
    periph: Option<usize>,
    states: Vec<Acc>,
    current: usize,
    /// A change known in advance: at this cycle, to that state.
    until: Option<(u64, usize)>,
    /// A count the model keeps here between accesses (sensors: the one-shots charged for).
    seen: u32,
    /// The state while the power is cut.
    off: usize,
}

impl Rail {
    fn new(
        name: &str,
        kind: RailKind,
        periph: Option<usize>,
        states: &[(&str, u64)],
        current: usize,
    ) -> Self {
        Self {
            name: name.to_owned(),
            kind,
            periph,
            states: states
                .iter()
                .map(|&(n, na)| Acc { name: n.to_owned(), current_na: na, cycles: 0, charge: 0 })
                .collect(),
            current,
            until: None,
            seen: 0,
            off: 0,
        }
    }

    /// A peripheral's rail, as peripheral `periph` declares it.
    fn of_periph(spec: RailSpec, periph: usize) -> Self {
        let mut r = Self::new(&spec.name, spec.kind, Some(periph), &spec.states, spec.initial);
        r.seen = spec.seen;
        r.off = spec.off;
        r
    }

    /// Accumulates `dt` cycles in the current state.
    fn add(&mut self, dt: u64) {
        let s = &mut self.states[self.current];
        s.cycles += dt;
        s.charge += u128::from(s.current_na) * u128::from(dt);
    }

    /// Accumulates from `from` to `to`, applying a scheduled change that falls in between at
    /// its cycle.
    fn advance(&mut self, from: u64, to: u64) {
        let mut t = from;
        if let Some((end, next)) = self.until {
            if end <= to {
                let end = end.max(t);
                self.add(end - t);
                t = end;
                self.current = next;
                self.until = None;
            }
        }
        self.add(to - t);
    }

    /// The state at `now` (after a scheduled change due by then).
    fn state_at(&self, now: u64) -> usize {
        match self.until {
            Some((end, next)) if end <= now => next,
            _ => self.current,
        }
    }

    fn state_names(&self) -> String {
        self.states.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
    }
}

/// The battery's figures and the host's adjustment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Battery {
    capacity_uah: u64,
    /// Thousandths of a percent of the capacity per 30 days.
    self_discharge_milli_pct: u64,
    /// `[permille, mV]`, validated by the board crate.
    curve: Vec<[u32; 2]>,
    /// Host adjustment of the charge drawn, nA·cycles (`set_soc`).
    adjust: i128,
}

impl Battery {
    /// Self-discharge by cycle `now`, nA·cycles: capacity × rate × now / month, where one
    /// 30-day month is 2_592_000 s of cycles and one nAh is 3600 s of cycles; the clock cancels
    /// out: `capacity_µAh × milli_pct × now / 72_000` (1000 nAh/µAh × 3600 / (100_000 ×
    /// 2_592_000)).
    fn self_discharge(&self, now: u64) -> u128 {
        u128::from(self.capacity_uah)
            .saturating_mul(u128::from(self.self_discharge_milli_pct))
            .saturating_mul(u128::from(now))
            / 72_000
    }

    /// The voltage at a state of charge in millionths, interpolated on the curve (rounded down).
    fn voltage_mv(&self, ppm: u64) -> u32 {
        let Some(&first) = self.curve.first() else { return 0 };
        let mut prev = first;
        for &p in &self.curve[1..] {
            let (s0, s1) = (u64::from(prev[0]) * 1000, u64::from(p[0]) * 1000);
            if ppm <= s1 {
                let (v0, v1) = (u64::from(prev[1]), u64::from(p[1]));
                let v = v0 + v1.saturating_sub(v0) * ppm.saturating_sub(s0) / (s1 - s0).max(1);
                return u32::try_from(v).unwrap_or(u32::MAX);
            }
            prev = p;
        }
        prev[1]
    }
}

/// The battery at one virtual time.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatteryReport {
    /// Design capacity, µAh.
    pub capacity_uah: u64,
    /// Charge gone from the cell: the board's charge, self-discharge and host adjustments, in
    /// nAh, rounded down (at most the capacity).
    pub drawn_nah: u64,
    /// Of which self-discharge, nAh, rounded down.
    pub self_discharge_nah: u64,
    /// State of charge, ‰, rounded down.
    pub soc_permille: u32,
    /// Cell voltage from the curve, mV.
    pub voltage_mv: u32,
    /// No charge left.
    pub empty: bool,
}

/// What one state of one rail has accumulated.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateEnergy {
    /// Rail name: `cpu`, a flash controller's or sensor's board name, `modem`.
    pub rail: String,
    /// What the rail stands for.
    pub kind: RailKind,
    /// State name (e.g. `run`, `deep-sleep`, `program`, `tx`).
    pub state: String,
    /// The state's current, nA.
    pub current_na: u64,
    /// Cycles spent in the state.
    pub cycles: u64,
    /// The same in ns, rounded down.
    pub time_ns: u64,
    /// Charge drawn in the state, nA·cycles: exact.
    pub charge: u128,
    /// The same in nAh, rounded down.
    pub charge_nah: u64,
}

/// Energy per state since the machine was made, at one virtual time ([`crate::Machine::energy`]).
///
/// Charges are exact integers in nA·cycles (`charge`, `total_charge`); the nAh, ns and µA
/// figures beside them are rounded down from those (so the per-state nAh may not add up to
/// `total_nah` exactly; the nA·cycles do).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnergyReport {
    /// Virtual time of the report, in cycles since the machine was made.
    pub now: u64,
    /// The same in ns, rounded down.
    pub time_ns: u64,
    /// Core clock (cycles per second).
    pub clock_hz: u32,
    /// The board's nominal supply voltage (for [`EnergyReport::energy_uwh`]), mV.
    pub supply_mv: u32,
    /// Every state of every rail, rails in board order (`cpu` first, external loads last).
    pub states: Vec<StateEnergy>,
    /// All the board drew, nA·cycles: exact (the sum of `states`).
    pub total_charge: u128,
    /// The same in nAh, rounded down.
    pub total_nah: u64,
    /// Average current since cycle 0, nA, rounded down (0 at cycle 0).
    pub average_na: u64,
    /// Current now, nA.
    pub current_na: u64,
    /// The battery, if the board has one.
    pub battery: Option<BatteryReport>,
}

impl EnergyReport {
    /// The entry of `state` on `rail`.
    pub fn state(&self, rail: &str, state: &str) -> Option<&StateEnergy> {
        self.states.iter().find(|s| s.rail == rail && s.state == state)
    }

    /// Everything drawn on `rail`, nA·cycles.
    pub fn rail_charge(&self, rail: &str) -> u128 {
        self.states.iter().filter(|s| s.rail == rail).map(|s| s.charge).sum()
    }

    /// All the board drew, µAh (floating point, for people).
    pub fn total_uah(&self) -> f64 {
        self.total_charge as f64 / (f64::from(self.clock_hz) * 3600.0 * 1000.0)
    }

    /// Average current, µA (floating point).
    pub fn average_ua(&self) -> f64 {
        if self.now == 0 {
            0.0
        } else {
            self.total_charge as f64 / self.now as f64 / 1000.0
        }
    }

    /// Energy at the nominal supply voltage, µWh (floating point).
    pub fn energy_uwh(&self) -> f64 {
        self.total_uah() * f64::from(self.supply_mv) / 1000.0
    }
}

impl fmt::Display for EnergyReport {
    /// A table: one line per state that has seen time (charge in µAh with six decimals, from
    /// the exact figure), then the totals and the battery.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let uah = |q: u128| q as f64 / (f64::from(self.clock_hz.max(1)) * 3600.0 * 1000.0);
        writeln!(
            f,
            "{:<12} {:<11} {:>12} {:>16} {:>16}",
            "rail", "state", "current µA", "time ns", "charge µAh"
        )?;
        for s in self.states.iter().filter(|s| s.cycles > 0) {
            writeln!(
                f,
                "{:<12} {:<11} {:>12.3} {:>16} {:>16.6}",
                s.rail,
                s.state,
                s.current_na as f64 / 1000.0,
                s.time_ns,
                uah(s.charge)
            )?;
        }
        write!(
            f,
            "total {:.6} µAh over {} ns: average {:.3} µA, now {:.3} µA",
            uah(self.total_charge),
            self.time_ns,
            self.average_ua(),
            self.current_na as f64 / 1000.0
        )?;
        if let Some(b) = &self.battery {
            write!(
                f,
                "\nbattery {} \u{2030}, {} mV ({} nAh of {} µAh drawn, {} nAh self-discharge){}",
                b.soc_permille,
                b.voltage_mv,
                b.drawn_nah,
                b.capacity_uah,
                b.self_discharge_nah,
                if b.empty { ", EMPTY" } else { "" }
            )?;
        }
        Ok(())
    }
}

/// The machine's energy accounting (present when the board has `[power]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Power {
    clock_hz: u32,
    supply_mv: u32,
    /// Every rail is accumulated up to this cycle.
    settled: u64,
    rails: Vec<Rail>,
    battery: Option<Battery>,
}

impl Power {
    /// The accounting for `board` with its built peripherals, or `None` without `[power]`.
    pub(crate) fn new(board: &twinbed_board::Board, periphs: &[Mapped]) -> Option<Self> {
        let p = board.power.as_ref()?;
        let na = |m: twinbed_board::Milli| m.thousandths();
        let mut cpu = Rail::new(
            "cpu",
            RailKind::Cpu,
            None,
            &[
                ("run", na(p.cpu_run_ua)),
                ("sleep", na(p.cpu_sleep_ua)),
                ("deep-sleep", na(p.cpu_deep_sleep_ua)),
                ("off", 0),
            ],
            cpu::RUN,
        );
        cpu.off = cpu::OFF;
        let mut rails = vec![cpu];
        for (i, m) in periphs.iter().enumerate() {
            // The parts of each model that draw current, as the model declares them.
            rails.extend(m.model.rails(&m.name, p).into_iter().map(|spec| Rail::of_periph(spec, i)));
        }
        rails.push(Rail::new(
            "modem",
            RailKind::External,
            None,
            &[
                ("off", na(p.modem_off_ua)),
                ("idle", na(p.modem_idle_ua)),
                ("rx", na(p.modem_rx_ua)),
                ("tx", na(p.modem_tx_ua)),
            ],
            0,
        ));
        let battery = board.battery.as_ref().map(|b| Battery {
            capacity_uah: b.capacity_mah.thousandths(),
            self_discharge_milli_pct: b.self_discharge_pct_per_month.thousandths(),
            curve: b.curve.iter().map(|p| [p.permille, p.mv]).collect(),
            adjust: 0,
        });
        Some(Self { clock_hz: board.clock_hz, supply_mv: p.supply_mv, settled: 0, rails, battery })
    }

    /// Brings every rail up to `now`.
    fn settle(&mut self, now: u64) {
        if now > self.settled {
            let from = self.settled;
            for r in &mut self.rails {
                r.advance(from, now);
            }
            self.settled = now;
        }
    }

    /// Sets rail `rail` to `state` at `now`, with a scheduled change to follow.
    fn set(&mut self, now: u64, rail: usize, state: usize, until: Option<(u64, usize)>) {
        let r = &self.rails[rail];
        if r.current == state && r.until == until {
            return;
        }
        self.settle(now);
        let r = &mut self.rails[rail];
        r.current = state;
        r.until = until;
    }

    /// The core changes state at `now` ([`cpu`] states).
    pub(crate) fn set_cpu(&mut self, now: u64, state: usize) {
        self.set(now, CPU, state, None);
    }

    /// Follows the state of peripheral `i` (its rails, e.g. a flash controller's or the sensors
    /// on an I2C bus) at `now`, after an access or a reset: the model says each rail's state.
    pub(crate) fn sync_periph(&mut self, now: u64, i: usize, model: &Model) {
        let mut k = 0;
        for rail in 0..self.rails.len() {
            let r = &self.rails[rail];
            if r.periph != Some(i) {
                continue;
            }
            let view = RailView {
                now,
                clock_hz: self.clock_hz,
                current: r.current,
                until: r.until,
                state_now: r.state_at(now),
                seen: r.seen,
            };
            let next = model.rail_state(k, &view);
            k += 1;
            self.set(now, rail, next.state, next.until);
            self.rails[rail].seen = next.seen;
        }
    }

    /// Power cut at `now`: the engine's rails to their zero-current states.
    pub(crate) fn cut(&mut self, now: u64) {
        self.settle(now);
        for r in &mut self.rails {
            if r.kind == RailKind::External {
                continue;
            }
            r.current = r.off;
            r.until = None;
        }
    }

    /// Sets external load `name` to `state` at `now`.
    pub(crate) fn set_external(&mut self, now: u64, name: &str, state: &str) -> Result<(), PowerError> {
        let externals = || {
            self.rails
                .iter()
                .filter(|r| r.kind == RailKind::External)
                .map(|r| format!("`{}`", r.name))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let Some(rail) = self.rails.iter().position(|r| r.kind == RailKind::External && r.name == name)
        else {
            return Err(PowerError::UnknownLoad { name: name.to_owned(), known: externals() });
        };
        let r = &self.rails[rail];
        let Some(s) = r.states.iter().position(|s| s.name == state) else {
            return Err(PowerError::UnknownState {
                load: name.to_owned(),
                state: state.to_owned(),
                known: r.state_names(),
            });
        };
        self.set(now, rail, s, None);
        Ok(())
    }

    /// The board's current at `now`, nA.
    pub(crate) fn current_na(&self, now: u64) -> u64 {
        self.rails.iter().map(|r| r.states[r.state_at(now)].current_na).sum()
    }

    /// The board's charge up to `now`, nA·cycles (brings the rails up to `now`).
    fn load_charge(&mut self, now: u64) -> u128 {
        self.settle(now);
        self.rails.iter().flat_map(|r| &r.states).map(|s| s.charge).sum()
    }

    /// nA·cycles per nAh.
    fn per_nah(&self) -> u128 {
        u128::from(self.clock_hz) * 3600
    }

    /// The cell at `now` given the board's charge `load` by then: (capacity, drawn,
    /// self-discharge) in nA·cycles, drawn clamped to 0..=capacity, and the state of charge in
    /// millionths.
    fn cell_at(&self, now: u64, load: u128) -> Option<(u128, u128, u128, u64)> {
        let b = self.battery.as_ref()?;
        let capacity = u128::from(b.capacity_uah) * 1000 * self.per_nah();
        let sd = b.self_discharge(now);
        let cap = i128::try_from(capacity).unwrap_or(i128::MAX);
        let natural = i128::try_from(load.saturating_add(sd)).unwrap_or(i128::MAX);
        let drawn = natural.saturating_add(b.adjust).clamp(0, cap) as u128;
        let ppm = (capacity - drawn).saturating_mul(1_000_000) / capacity.max(1);
        Some((capacity, drawn, sd, u64::try_from(ppm).unwrap_or(1_000_000)))
    }

    /// The battery at `now` given the board's charge `load` by then.
    fn battery_at(&self, now: u64, load: u128) -> Option<BatteryReport> {
        let b = self.battery.as_ref()?;
        let (capacity, drawn, sd, ppm) = self.cell_at(now, load)?;
        let per_nah = self.per_nah();
        Some(BatteryReport {
            capacity_uah: b.capacity_uah,
            drawn_nah: u64::try_from(drawn / per_nah).unwrap_or(u64::MAX),
            self_discharge_nah: u64::try_from(sd / per_nah).unwrap_or(u64::MAX),
            soc_permille: (ppm / 1000) as u32,
            voltage_mv: b.voltage_mv(ppm),
            empty: drawn == capacity,
        })
    }

    /// What the fuel gauge shows at `now` (`None` without a battery).
    pub(crate) fn gauge_reading(&mut self, now: u64) -> Option<GaugeReading> {
        self.battery.as_ref()?;
        let load = self.load_charge(now);
        let b = self.battery.as_ref()?;
        let (_, _, _, ppm) = self.cell_at(now, load)?;
        Some(GaugeReading {
            now,
            clock_hz: self.clock_hz,
            load_charge: load,
            current_na: self.current_na(now),
            soc_ppm: ppm as u32,
            voltage_mv: b.voltage_mv(ppm),
            capacity_uah: b.capacity_uah,
        })
    }

    /// Adjusts the battery so that its state of charge is `permille` at `now`.
    pub(crate) fn set_soc(&mut self, now: u64, permille: u32) -> Result<(), PowerError> {
        if permille > 1000 {
            return Err(PowerError::SocOutOfRange { permille });
        }
        let load = self.load_charge(now);
        let per_nah = self.per_nah();
        let b = self.battery.as_mut().ok_or(PowerError::NoBattery)?;
        let capacity = u128::from(b.capacity_uah) * 1000 * per_nah;
        let want = capacity * u128::from(1000 - permille) / 1000;
        let natural = load.saturating_add(b.self_discharge(now));
        b.adjust = i128::try_from(want).unwrap_or(i128::MAX) - i128::try_from(natural).unwrap_or(i128::MAX);
        Ok(())
    }

    /// The report at `now` (the rails are brought up to `now` on a copy).
    pub(crate) fn report(&self, now: u64) -> EnergyReport {
        let mut p = self.clone();
        let load = p.load_charge(now.max(p.settled));
        let now = p.settled.max(now);
        let hz = u128::from(self.clock_hz.max(1));
        let ns = |cycles: u64| u64::try_from(u128::from(cycles) * 1_000_000_000 / hz).unwrap_or(u64::MAX);
        let per_nah = p.per_nah().max(1);
        let nah = |q: u128| u64::try_from(q / per_nah).unwrap_or(u64::MAX);
        let states = p
            .rails
            .iter()
            .flat_map(|r| {
                r.states.iter().map(|s| StateEnergy {
                    rail: r.name.clone(),
                    kind: r.kind,
                    state: s.name.clone(),
                    current_na: s.current_na,
                    cycles: s.cycles,
                    time_ns: ns(s.cycles),
                    charge: s.charge,
                    charge_nah: nah(s.charge),
                })
            })
            .collect();
        EnergyReport {
            now,
            time_ns: ns(now),
            clock_hz: self.clock_hz,
            supply_mv: self.supply_mv,
            states,
            total_charge: load,
            total_nah: nah(load),
            average_na: if now == 0 { 0 } else { u64::try_from(load / u128::from(now)).unwrap_or(u64::MAX) },
            current_na: p.current_na(now),
            battery: p.battery_at(now, load),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn battery(curve: &[[u32; 2]]) -> Battery {
        Battery { capacity_uah: 1000, self_discharge_milli_pct: 0, curve: curve.to_vec(), adjust: 0 }
    }

    #[test]
    fn the_curve_is_interpolated_linearly_and_clamped() {
        let b = battery(&[[0, 3000], [500, 3600], [1000, 4200]]);
        assert_eq!(b.voltage_mv(0), 3000);
        assert_eq!(b.voltage_mv(250_000), 3300);
        assert_eq!(b.voltage_mv(500_000), 3600);
        assert_eq!(b.voltage_mv(750_000), 3900);
        assert_eq!(b.voltage_mv(1_000_000), 4200);
        assert_eq!(b.voltage_mv(2_000_000), 4200);
        // A flat segment.
        let b = battery(&[[0, 3000], [100, 3500], [900, 3500], [1000, 4000]]);
        assert_eq!(b.voltage_mv(500_000), 3500);
        assert_eq!(b.voltage_mv(950_000), 3750);
    }

    #[test]
    fn self_discharge_is_the_monthly_rate_of_the_capacity() {
        let b =
            Battery { capacity_uah: 2_000_000, self_discharge_milli_pct: 3_000, curve: vec![], adjust: 0 };
        // One 30-day month at 1 MHz: 3 % of 2000 mAh = 60 mAh = 6e7 nAh = 6e7 × 3.6e9 nA·cycles.
        let month = 2_592_000 * 1_000_000u64;
        assert_eq!(b.self_discharge(month), 60_000_000 * 3_600_000_000u128);
        assert_eq!(b.self_discharge(month / 2), 30_000_000 * 3_600_000_000u128);
    }

    /// A 1 MHz board with a TMP105 and nothing else drawing.
    fn sensor_board() -> (twinbed_board::Board, Vec<Mapped>, usize) {
        let board = twinbed_board::Board::parse(
            "name = \"s\"\ncpu = \"cortex-m3\"\nclock_hz = 1000000\n\
             [[peripheral]]\nname = \"i2c\"\nmodel = \"sbcon-i2c\"\nbase = 0x4002A000\n\
             [[device]]\nname = \"temp\"\nmodel = \"tmp105\"\nbus = \"i2c\"\naddress = 0x48\n\
             [power]\nsupply_mv = 3300\ncpu_run_ua = 0\ncpu_sleep_ua = 0\ncpu_deep_sleep_ua = 0\n\
             flash_program_ua = 0\nflash_erase_ua = 0\nsensor_ua = 50\nsensor_shutdown_ua = 0.1\n\
             modem_off_ua = 0\nmodem_idle_ua = 0\nmodem_rx_ua = 0\nmodem_tx_ua = 0\n",
            "sensor board",
        )
        .expect("valid board");
        let periphs = crate::periph::build_peripherals(&board).expect("known models");
        let i = periphs.iter().position(|m| m.name == "i2c").expect("the bus");
        (board, periphs, i)
    }

    /// Writes the TMP105's configuration register over the bus, as the firmware would.
    fn write_config(periphs: &mut [Mapped], i: usize, config: u8) {
        use crate::periph::tmp105::I2cEvent;
        let t = periphs[i].model.as_i2c_mut().and_then(|b| b.tmp105_mut("temp")).expect("the sensor");
        t.event(I2cEvent::StartSend);
        t.send(1);
        t.send(config);
        t.event(I2cEvent::Finish);
    }

    #[test]
    fn the_sensor_converts_until_shut_down_and_a_one_shot_measures_for_its_conversion_time() {
        const SD: u8 = 1;
        const OS: u8 = 0x80;
        const R12: u8 = 0x60;
        let (board, mut periphs, i) = sensor_board();
        let mut p = Power::new(&board, &periphs).expect("[power]");
        assert_eq!(p.current_na(0), 50_000, "converting from power-on (SD = 0)");
        write_config(&mut periphs, i, SD);
        p.sync_periph(1_000, i, &periphs[i].model);
        assert_eq!(p.current_na(1_000), 100);
        // A one-shot at 9 bits: 27.5 ms of conversion, then shutdown again.
        write_config(&mut periphs, i, SD | OS);
        p.sync_periph(5_000, i, &periphs[i].model);
        assert_eq!(p.current_na(5_000), 50_000);
        p.sync_periph(6_000, i, &periphs[i].model); // another access: the conversion goes on
        assert_eq!(p.current_na(32_499), 50_000);
        assert_eq!(p.current_na(32_500), 100);
        let r = p.report(40_000);
        let get = |r: &EnergyReport, s: &str| r.state("temp", s).map(|s| (s.cycles, s.charge));
        assert_eq!(get(&r, "measuring"), Some((1_000 + 27_500, (1_000 + 27_500) * 50_000)));
        assert_eq!(get(&r, "shutdown"), Some((4_000 + 7_500, (4_000 + 7_500) * 100)));
        // A 12-bit one-shot takes 220 ms; clearing SD in the middle converts continuously.
        write_config(&mut periphs, i, SD | OS | R12);
        p.sync_periph(50_000, i, &periphs[i].model);
        assert_eq!(p.current_na(269_999), 50_000);
        assert_eq!(p.current_na(270_000), 100);
        write_config(&mut periphs, i, R12);
        p.sync_periph(60_000, i, &periphs[i].model);
        assert_eq!(p.current_na(1_000_000), 50_000, "continuous");
        let r = p.report(100_000);
        assert_eq!(get(&r, "measuring").map(|m| m.0), Some(28_500 + 50_000));
        assert_eq!(get(&r, "shutdown").map(|m| m.0), Some(11_500 + 10_000));
        // A power cut turns it off; the accounting keeps what it had.
        p.cut(100_000);
        assert_eq!(p.current_na(100_001), 0);
        assert_eq!(p.report(200_000).state("temp", "off").map(|s| s.cycles), Some(100_000));
    }

    #[test]
    fn a_scheduled_change_is_applied_at_its_cycle() {
        let mut r = Rail::new("f", RailKind::Flash, Some(0), &[("idle", 0), ("program", 7)], 1);
        r.until = Some((100, 0));
        r.advance(10, 60);
        assert_eq!((r.current, r.states[1].cycles), (1, 50));
        r.advance(60, 500);
        assert_eq!((r.current, r.until), (0, None));
        assert_eq!((r.states[1].cycles, r.states[1].charge), (90, 630));
        assert_eq!(r.states[0].cycles, 400);
    }
}
