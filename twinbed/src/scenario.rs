//! The device and its twin together: a backend (the twin service with its broker, in this
//! process), devices on the network ([`crate::net`]), and the checks only a testbed can make:
//! the twin's history against the emulator's record of every reading the firmware took.

use crate::net::{Quiet, Reading};
use serde::Serialize;
use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};
use twinbed_modem::LinkCounters;
use twinbed_twin::{HistoryQuery, Shadow, StoredEvent, Traffic, Twin, TwinConfig};

pub use twinbed_twin::wire::Telemetry;

/// Why the backend could not do something.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The async runtime could not start.
    #[error("the backend's runtime could not start: {0}")]
    Runtime(std::io::Error),
    /// The twin service failed.
    #[error(transparent)]
    Twin(#[from] twinbed_twin::Error),
    /// The broker's address does not resolve.
    #[error("the broker {0} does not resolve to an address")]
    Resolve(String),
}

/// The twin service and its broker, on a runtime of their own.
pub struct Backend {
    rt: tokio::runtime::Runtime,
    twin: Option<Twin>,
    broker: SocketAddr,
    /// Shared by every [`TwinQuiet`] of this backend (see [`Quiet::forget_undelivered`]).
    forgotten: Forgotten,
}

/// Per device: (messages the twin had sent it, messages its link had received) when it last had
/// no session; what the twin sent before that is not waited for.
type Forgotten = Arc<std::sync::Mutex<std::collections::HashMap<String, (u64, u64)>>>;

impl Backend {
    /// Starts the twin (and, by default, its embedded broker).
    pub fn start(config: TwinConfig) -> Result<Self, BackendError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .thread_name("twin")
            .build()
            .map_err(BackendError::Runtime)?;
        let twin = rt.block_on(Twin::start(config))?;
        let b = twin.broker().clone();
        let broker = match twin.embedded_broker() {
            Some(addr) => addr,
            None => (b.host.as_str(), b.port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| BackendError::Resolve(format!("{}:{}", b.host, b.port)))?,
        };
        Ok(Backend { rt, twin: Some(twin), broker, forgotten: Forgotten::default() })
    }

    fn twin(&self) -> &Twin {
        self.twin.as_ref().expect("the twin runs until the backend is dropped")
    }

    /// Where the broker listens.
    pub fn broker(&self) -> SocketAddr {
        self.broker
    }

    /// Waits for quiet through the twin's traffic counters (see [`TwinQuiet`]).
    pub fn quiet(&self) -> TwinQuiet {
        TwinQuiet {
            traffic: self.twin().traffic().clone(),
            timeout: Duration::from_secs(20),
            forgotten: self.forgotten.clone(),
        }
    }

    /// A device's shadow.
    pub fn shadow(&self, device: &str) -> Result<Option<Shadow>, BackendError> {
        let dev = device.to_owned();
        Ok(self.rt.block_on(self.twin().query(move |s| s.shadow(&dev)))?)
    }

    /// A device's telemetry history, all boots, by (boot, seq).
    pub fn telemetry(&self, device: &str) -> Result<Vec<Telemetry>, BackendError> {
        let dev = device.to_owned();
        let q = HistoryQuery { limit: u32::MAX, ..Default::default() };
        Ok(self.rt.block_on(self.twin().query(move |s| s.telemetry(&dev, &q)))?)
    }

    /// A device's events, all boots, by (boot, seq).
    pub fn events(&self, device: &str) -> Result<Vec<StoredEvent>, BackendError> {
        let dev = device.to_owned();
        let q = HistoryQuery { limit: u32::MAX, ..Default::default() };
        Ok(self.rt.block_on(self.twin().query(move |s| s.events(&dev, &q)))?)
    }

    /// Sets desired state (optimistic locking on `version`, as the HTTP API does).
    pub fn set_desired(
        &self,
        device: &str,
        version: u64,
        state: serde_json::Value,
    ) -> Result<twinbed_twin::DesiredOutcome, BackendError> {
        Ok(self.rt.block_on(self.twin().set_desired(device, version, state))?)
    }

    /// Rejected inputs and other totals.
    pub fn stats(&self) -> Result<twinbed_twin::StoreStats, BackendError> {
        Ok(self.rt.block_on(self.twin().query(|s| s.stats()))?)
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        if let Some(twin) = self.twin.take() {
            self.rt.block_on(twin.shutdown());
        }
    }
}

/// [`Quiet`] from the twin's counters: everything the device's link published has been handled
/// by the twin, and everything the twin queued for the device has reached the link.
pub struct TwinQuiet {
    traffic: Arc<Traffic>,
    timeout: Duration,
    forgotten: Forgotten,
}

impl Quiet for TwinQuiet {
    fn wait_quiet(&mut self, device: &str, link: &dyn Fn() -> LinkCounters) -> Result<(), String> {
        let start = Instant::now();
        loop {
            let (t, l) = (self.traffic.device(device), link());
            let (sent_before, received_before) = self
                .forgotten
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(device)
                .copied()
                .unwrap_or((0, 0));
            if t.received >= l.published && l.received + sent_before >= t.published + received_before {
                return Ok(());
            }
            if start.elapsed() > self.timeout {
                return Err(format!(
                    "after {:?}: the twin handled {} of the {} messages the device published, \
                     and the device received {} of the {} the twin sent it",
                    self.timeout, t.received, l.published, l.received, t.published
                ));
            }
            // The twin's counters have a condition variable, the link's do not: look again soon.
            let _ = self.traffic.wait_until_blocking(Duration::from_millis(2), |s| s.device(device) != t);
        }
    }

    fn forget_undelivered(&mut self, device: &str, link: LinkCounters) {
        let t = self.traffic.device(device);
        self.forgotten
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(device.to_owned(), (t.published, link.received));
    }
}

/// How far a reported value may be from the temperature the emulator set: the sensor reads at
/// 12 bits (1/16 °C), so the firmware sees the set value rounded down to a step of 62.5 m°C.
pub const SENSOR_LSB_MILLI_C: i32 = 63;

/// The twin's history against the emulator's readings: every reading must be in exactly one
/// stored telemetry record, or counted as dropped by the device's buffer policy, or still on
/// the device at the end of the run (the tail of the last boot).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct GroundTruth {
    /// Readings the firmware took (the emulator saw them at the sample hook).
    pub readings: u64,
    /// Readings in exactly one stored record.
    pub stored_once: u64,
    /// Readings the device declared dropped (its buffer overflowed), not stored.
    pub dropped: u64,
    /// Readings of the last boot not sent yet when the run ended (an open window, an unsent
    /// record).
    pub pending: u64,
    /// Readings stored more than once (a broken idempotency): (boot, reading), at most 20.
    pub duplicated: Vec<(u32, u32)>,
    /// Readings neither stored nor declared dropped nor pending: lost silently. At most 20.
    pub missing: Vec<(u32, u32)>,
    /// Stored readings the emulator never saw taken. At most 20.
    pub invented: Vec<(u32, u32)>,
    /// Telemetry records whose min/max/mean disagree with the readings they cover. At most 20.
    pub wrong_values: Vec<(u32, u32)>,
    /// Boot ids the twin knows for the device, in order, matched to the emulator's boots.
    pub boot_ids: Vec<u32>,
}

impl GroundTruth {
    /// Nothing was lost silently, duplicated, invented or misreported.
    pub fn holds(&self) -> bool {
        self.duplicated.is_empty()
            && self.missing.is_empty()
            && self.invented.is_empty()
            && self.wrong_values.is_empty()
            && self.stored_once + self.dropped + self.pending == self.readings
    }
}

fn push_capped(v: &mut Vec<(u32, u32)>, item: (u32, u32)) {
    if v.len() < 20 {
        v.push(item);
    }
}

/// Checks the twin's `telemetry` and `events` of a device against the `readings` the emulator
/// saw. The emulator's boots (0, 1, ...) are matched to the twin's boot ids in increasing order.
pub fn ground_truth(readings: &[Reading], telemetry: &[Telemetry], events: &[StoredEvent]) -> GroundTruth {
    let mut g = GroundTruth { readings: readings.len() as u64, ..Default::default() };
    let mut ids: Vec<u32> = telemetry.iter().map(|t| t.boot).chain(events.iter().map(|e| e.boot)).collect();
    ids.sort_unstable();
    ids.dedup();
    g.boot_ids = ids.clone();
    // Coverage count per (emulator boot, reading), and the values of each reading.
    let mut taken: BTreeMap<(u32, u32), i32> = BTreeMap::new();
    for r in readings {
        taken.insert((r.boot, r.index), r.milli_c);
    }
    let boot_of = |id: u32| ids.iter().position(|&b| b == id).map(|k| k as u32);
    let mut covered: BTreeMap<(u32, u32), u32> = BTreeMap::new();
    for t in telemetry {
        let Some(boot) = boot_of(t.boot) else { continue };
        let values: Vec<i32> = (t.first..t.first.saturating_add(t.n))
            .filter_map(|i| {
                *covered.entry((boot, i)).or_default() += 1;
                taken.get(&(boot, i)).copied()
            })
            .collect();
        if values.len() == t.n as usize && !values.is_empty() {
            let min = values.iter().min().copied().unwrap_or(0);
            let max = values.iter().max().copied().unwrap_or(0);
            let sum: i64 = values.iter().map(|&v| i64::from(v)).sum();
            let mean = (sum as f64 / f64::from(t.n)).round() as i32;
            let off = |a: i32, b: i32| (i64::from(a) - i64::from(b)).abs() > i64::from(SENSOR_LSB_MILLI_C);
            if off(min, t.min) || off(max, t.max) || off(mean, t.mean) {
                push_capped(&mut g.wrong_values, (t.boot, t.seq));
            }
        }
    }
    // Readings declared dropped: the `dropped` events' counts, less what the twin stored of the
    // records in their ranges (PROTOCOL.md: a record may be stored before its ack came back).
    let mut dropped_by_boot: BTreeMap<u32, u64> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == "dropped") {
        let Some(boot) = boot_of(e.boot) else { continue };
        let field = |k: &str| e.body.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let (from, to, n) = (field("from"), field("to"), field("readings"));
        let stored: u64 = telemetry
            .iter()
            .filter(|t| t.boot == e.boot && (from..=to).contains(&u64::from(t.seq)))
            .map(|t| u64::from(t.n))
            .sum();
        *dropped_by_boot.entry(boot).or_default() += n.saturating_sub(stored);
    }
    let last_boot = readings.last().map(|r| r.boot);
    let last_covered: BTreeMap<u32, u32> = covered.keys().fold(BTreeMap::new(), |mut m, &(b, i)| {
        let e = m.entry(b).or_insert(i);
        *e = (*e).max(i);
        m
    });
    let mut uncovered_by_boot: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
    for &(boot, index) in taken.keys() {
        match covered.get(&(boot, index)) {
            Some(1) => g.stored_once += 1,
            Some(_) => push_capped(&mut g.duplicated, (boot, index)),
            None => uncovered_by_boot.entry(boot).or_default().push(index),
        }
    }
    for (boot, uncovered) in uncovered_by_boot {
        let mut declared = dropped_by_boot.get(&boot).copied().unwrap_or(0);
        let tail_from = last_covered.get(&boot).map_or(0, |&i| i + 1);
        for index in uncovered {
            if Some(boot) == last_boot && index >= tail_from {
                g.pending += 1;
            } else if declared > 0 {
                declared -= 1;
                g.dropped += 1;
            } else {
                push_capped(&mut g.missing, (boot, index));
            }
        }
    }
    for &(boot, index) in covered.keys() {
        if !taken.contains_key(&(boot, index)) {
            push_capped(&mut g.invented, (boot, index));
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(boot: u32, seq: u32, first: u32, n: u32, v: i32) -> Telemetry {
        Telemetry { boot, seq, t: 0, first, n, min: v, max: v, mean: v }
    }

    fn readings(boot: u32, n: u32, v: i32) -> Vec<Reading> {
        (0..n).map(|index| Reading { boot, index, uptime_ms: 1000 * (index + 1), milli_c: v }).collect()
    }

    #[test]
    fn every_reading_once_holds_and_a_gap_a_duplicate_or_a_wrong_value_does_not() {
        let r = readings(0, 25, 21_000);
        let t = vec![rec(7, 1, 0, 10, 21_000), rec(7, 2, 10, 10, 21_000)];
        let g = ground_truth(&r, &t, &[]);
        assert!(g.holds(), "{g:?}");
        assert_eq!((g.stored_once, g.pending, g.boot_ids.clone()), (20, 5, vec![7]));

        let gap = vec![rec(7, 1, 0, 10, 21_000), rec(7, 3, 12, 8, 21_000)];
        let g = ground_truth(&r, &gap, &[]);
        assert!(!g.holds());
        assert_eq!(g.missing, vec![(0, 10), (0, 11)]);

        let dup = vec![rec(7, 1, 0, 10, 21_000), rec(7, 2, 5, 15, 21_000)];
        assert_eq!(ground_truth(&r, &dup, &[]).duplicated.len(), 5);

        let wrong = vec![rec(7, 1, 0, 10, 20_900)];
        assert_eq!(ground_truth(&r, &wrong, &[]).wrong_values, vec![(7, 1)]);

        let invented = vec![rec(7, 1, 0, 30, 21_000)];
        assert_eq!(ground_truth(&r, &invented, &[]).invented.len(), 5);
    }

    #[test]
    fn a_declared_drop_accounts_for_its_readings_less_what_was_stored() {
        let r = readings(0, 30, 0);
        // Records 2 (readings 10..20) and 3 (20..30) were dropped on the device, but record 3
        // reached the twin before its ack came back.
        let t = vec![rec(1, 1, 0, 10, 0), rec(1, 3, 20, 10, 0)];
        let mut body = twinbed_twin::Document::new();
        body.insert("from".into(), 2.into());
        body.insert("to".into(), 3.into());
        body.insert("readings".into(), 20.into());
        let e = StoredEvent { boot: 1, seq: 4, t: 0, kind: "dropped".into(), body };
        let g = ground_truth(&r, &t, std::slice::from_ref(&e));
        assert!(g.holds(), "{g:?}");
        assert_eq!((g.stored_once, g.dropped, g.pending), (20, 10, 0));
    }
}
