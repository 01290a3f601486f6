//! The twin's shared state ([`Core`]: the ingest state behind one lock, the outbox, the
//! traffic counters) and the helper that runs its blocking work off the async threads. Both
//! the service's worker ([`crate::service`]) and the HTTP API ([`crate::api`]) use it; neither
//! knows the other.

use std::sync::{Arc, Mutex, MutexGuard};

use rumqttc::Publish;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::error::{Error, StoreError};
use crate::ingest::{DesiredOutcome, Ingest, Outcome};
use crate::store::Store;
use crate::traffic::Traffic;
use crate::wire::{topic_device, Outgoing};

/// State shared by the worker, the HTTP handlers and [`crate::Twin`].
pub(crate) struct Core {
    ingest: Mutex<Ingest<Box<dyn Store>>>,
    outbox: mpsc::UnboundedSender<Outgoing>,
    traffic: Arc<Traffic>,
}

impl Core {
    /// The shared state around `ingest`; replies go to `outbox`, traffic is counted in `traffic`.
    pub(crate) fn new(
        ingest: Ingest<Box<dyn Store>>,
        outbox: mpsc::UnboundedSender<Outgoing>,
        traffic: Arc<Traffic>,
    ) -> Self {
        Core { ingest: Mutex::new(ingest), outbox, traffic }
    }

    fn lock(&self) -> Result<MutexGuard<'_, Ingest<Box<dyn Store>>>, Error> {
        self.ingest.lock().map_err(|_| Error::Internal { what: "ingest state poisoned by a panic" })
    }

    /// Runs a batch and queues its replies, counting traffic, all under the ingest lock.
    pub(crate) fn handle_batch(&self, batch: &[Publish]) -> Result<Vec<Outcome>, Error> {
        let mut ingest = self.lock()?;
        let outcomes = ingest.handle_batch(batch.iter().map(|p| (p.topic.as_str(), p.payload.as_ref())))?;
        let mut published = Vec::new();
        for outcome in &outcomes {
            for out in &outcome.publish {
                published.push(out.device.as_str());
                // The receiver lives as long as the service; when it is gone we are stopping.
                let _ = self.outbox.send(out.clone());
            }
        }
        self.traffic.record(batch.iter().map(|p| topic_device(&p.topic)), published);
        Ok(outcomes)
    }

    /// [`Ingest::set_desired`], queueing the `desired` message.
    pub(crate) fn set_desired(
        &self,
        device: &str,
        version: u64,
        state: &Value,
    ) -> Result<DesiredOutcome, Error> {
        let mut ingest = self.lock()?;
        let outcome = ingest.set_desired(device, version, state)?;
        if let Some(out) = &outcome.publish {
            let _ = self.outbox.send(out.clone());
            self.traffic.record([], [out.device.as_str()]);
        }
        Ok(outcome)
    }

    /// Runs a query on the store.
    pub(crate) fn query<T>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, StoreError>,
    ) -> Result<T, Error> {
        let mut ingest = self.lock()?;
        Ok(f(ingest.store().as_mut())?)
    }

    pub(crate) fn traffic(&self) -> &Arc<Traffic> {
        &self.traffic
    }
}

/// Runs blocking work (SQLite) off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    tokio::task::spawn_blocking(f).await.map_err(|_| Error::Internal { what: "blocking task panicked" })?
}
