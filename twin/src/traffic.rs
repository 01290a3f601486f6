//! Per-device MQTT traffic counters that an in-process test runner can wait on.
//!
//! - `received[dev]`: messages from `twinbed/<dev>/...` the twin has **finished** with: stored,
//!   counted as duplicate or rejected, and every reply queued (rejected input included; the
//!   key is the topic's device level as written, `""` for topics outside `twinbed/`).
//! - `published[dev]`: down messages queued for `twinbed/<dev>/down` (acks, desired), in the
//!   order they will be sent; they go to the MQTT client in that order right after.
//!
//! Both move together under one lock, in the same critical section as the storage
//! transaction that caused them, so a reader never sees a message counted as received
//! without its replies counted as published. A runner can therefore wait for a quiet network
//! with e.g. "received from dev ≥ N and published to dev == M" ([`Traffic::wait_until`], or
//! [`Traffic::wait_until_blocking`] from a plain thread) without sleeping.

use std::collections::BTreeMap;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;

use crate::error::Error;

/// Counters of one device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DeviceTraffic {
    /// Messages from the device that the twin has finished with (see the module docs).
    pub received: u64,
    /// Down messages queued for the device.
    pub published: u64,
}

/// A consistent copy of all counters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct TrafficSnapshot {
    /// By device id (the topic's device level).
    pub devices: BTreeMap<String, DeviceTraffic>,
}

impl TrafficSnapshot {
    /// One device's counters (zeros if it never appeared).
    pub fn device(&self, dev: &str) -> DeviceTraffic {
        self.devices.get(dev).copied().unwrap_or_default()
    }

    /// Sums over all devices.
    pub fn totals(&self) -> DeviceTraffic {
        self.devices.values().fold(DeviceTraffic::default(), |acc, d| DeviceTraffic {
            received: acc.received + d.received,
            published: acc.published + d.published,
        })
    }
}

/// The counters (see the module docs). Shared as `Arc<Traffic>`.
#[derive(Debug)]
pub struct Traffic {
    state: Mutex<TrafficSnapshot>,
    changed: Condvar,
    generation: watch::Sender<u64>,
}

impl Default for Traffic {
    fn default() -> Self {
        Traffic {
            state: Mutex::new(TrafficSnapshot::default()),
            changed: Condvar::new(),
            generation: watch::channel(0).0,
        }
    }
}

impl Traffic {
    fn lock(&self) -> MutexGuard<'_, TrafficSnapshot> {
        // Counters stay meaningful even if a holder panicked: take them anyway.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts, in one step, messages received from `received` devices (one per entry) and
    /// messages published to `published` devices (one per entry).
    pub(crate) fn record<'a>(
        &self,
        received: impl IntoIterator<Item = &'a str>,
        published: impl IntoIterator<Item = &'a str>,
    ) {
        {
            let mut state = self.lock();
            for dev in received {
                state.devices.entry(dev.to_owned()).or_default().received += 1;
            }
            for dev in published {
                state.devices.entry(dev.to_owned()).or_default().published += 1;
            }
        }
        self.changed.notify_all();
        self.generation.send_modify(|g| *g += 1);
    }

    /// One device's counters.
    pub fn device(&self, dev: &str) -> DeviceTraffic {
        self.lock().device(dev)
    }

    /// All counters, consistently.
    pub fn snapshot(&self) -> TrafficSnapshot {
        self.lock().clone()
    }

    /// Waits (async) until `done` holds for the counters; returns the snapshot that satisfied
    /// it, or [`Error::Timeout`].
    pub async fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&TrafficSnapshot) -> bool,
    ) -> Result<TrafficSnapshot, Error> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut changes = self.generation.subscribe();
        loop {
            // Subscribed before reading: a change after this read wakes the wait below.
            changes.borrow_and_update();
            let snap = self.snapshot();
            if done(&snap) {
                return Ok(snap);
            }
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => {}
                // The sender lives in `self`: it cannot be gone while we borrow it.
                Ok(Err(_)) => return Err(Error::Stopped),
                Err(_) => return Err(timeout_error(timeout)),
            }
        }
    }

    /// Like [`wait_until`](Self::wait_until), blocking the calling thread (for runners that
    /// are not async). Do not call it on an async runtime's worker thread.
    pub fn wait_until_blocking(
        &self,
        timeout: Duration,
        done: impl Fn(&TrafficSnapshot) -> bool,
    ) -> Result<TrafficSnapshot, Error> {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        loop {
            if done(&state) {
                return Ok(state.clone());
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(timeout_error(timeout));
            }
            state = match self.changed.wait_timeout(state, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }
}

fn timeout_error(timeout: Duration) -> Error {
    Error::Timeout {
        what: "traffic counters",
        waited_ms: u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn counts_and_totals() {
        let t = Traffic::default();
        t.record(["a", "a", "b"], ["a"]);
        assert_eq!(t.device("a"), DeviceTraffic { received: 2, published: 1 });
        assert_eq!(t.snapshot().totals(), DeviceTraffic { received: 3, published: 1 });
        assert_eq!(t.device("zzz"), DeviceTraffic::default());
    }

    #[test]
    fn blocking_wait_wakes_on_change_and_times_out() {
        let t = Arc::new(Traffic::default());
        let t2 = t.clone();
        let waiter = std::thread::spawn(move || {
            t2.wait_until_blocking(Duration::from_secs(10), |s| s.device("d").received >= 2)
        });
        t.record(["d"], []);
        t.record(["d"], []);
        assert_eq!(waiter.join().unwrap().unwrap().device("d").received, 2);
        let err = t.wait_until_blocking(Duration::from_millis(10), |s| s.device("d").received > 5);
        assert!(matches!(err, Err(Error::Timeout { .. })));
    }

    #[tokio::test]
    async fn async_wait_wakes_on_change() {
        let t = Arc::new(Traffic::default());
        let t2 = t.clone();
        let waiter = tokio::spawn(async move {
            t2.wait_until(Duration::from_secs(10), |s| s.device("d").published == 1).await
        });
        tokio::task::yield_now().await;
        t.record([], ["d"]);
        assert!(waiter.await.unwrap().is_ok());
    }
}
