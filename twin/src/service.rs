//! The running service: MQTT in and out (`rumqttc`), [`Ingest`] on SQLite, the HTTP API.
//!
//! # Tasks (all on the caller's tokio runtime)
//!
//! ```text
//!  broker ──publish──▶ event loop ──(unbounded queue)──▶ worker ──spawn_blocking──▶ Ingest+Store
//!    ▲                    │  ▲                              │ ack to broker after commit
//!    └────── PUBACKs ─────┘  └──── outbox (ordered) ◀── replies queued under the same lock
//! ```
//!
//! - **Event loop**: polls `rumqttc`'s `EventLoop` and never waits on anything else, so
//!   keep-alives, PUBACKs for our publishes and reconnects always proceed. Incoming publishes
//!   go to an unbounded queue; its depth is bounded by the broker's in-flight window because
//!   nothing is acknowledged before it is stored (below).
//! - **Worker**: takes what is queued (up to 256 messages), runs them through
//!   [`Ingest::handle_batch`] in one SQLite transaction on a blocking thread, then acknowledges
//!   each message to the broker. A message is therefore PUBACKed only after it is committed;
//!   if the process dies in between, the broker redelivers it and the duplicate is absorbed by
//!   the (device, boot, seq) key. A storage failure stops the service ([`Twin::wait`] returns
//!   it) without acknowledging: unacknowledged messages stay with the broker.
//! - **Outbox**: the replies of a batch (acks, desired) and of API writes are queued in the
//!   same critical section as the write that caused them, then published to
//!   `twinbed/<dev>/down` at QoS 1 in that order, so a device never receives an older desired
//!   state after a newer one.
//!
//! # rumqttc settings (nothing dropped silently)
//!
//! - `clean_session = false` with a fixed client id (`twinbed-twin` unless configured): the
//!   broker keeps the subscription and queues QoS 1 messages while the twin is away;
//!   `rumqttc` retransmits our unacknowledged publishes when the session resumes. If the
//!   broker reports that the session is gone (`session_present = false` on reconnect, e.g. a
//!   broker restarted without persistence), the twin subscribes again and logs a warning:
//!   down messages that were in flight at that moment are lost with the session and are
//!   re-sent only when the device triggers them again (a replayed record is re-acked, a state
//!   message re-sends desired).
//! - `manual_acks = true`: see the worker above.
//! - `inflight = 1024` outgoing QoS 1 messages, far above the broker's window towards us
//!   (100 for rumqttd). This avoids a deadlock: `rumqttc` stops reading its request channel
//!   while its outgoing window is full, and our manual PUBACKs travel through that channel;
//!   rumqttd, for its part, does not PUBACK a client's publishes while its own window towards
//!   that client is full. With both windows at 100, 100 unacknowledged incoming messages
//!   answered by 100 down messages stall both sides for good (seen in the benchmark before this
//!   was set). With 1024, the replies to a full incoming window (at most one reply per message,
//!   plus API writes) fit, our PUBACKs get out and the broker resumes.
//! - Request channel capacity 256: when full, the outbox task and the worker wait; nothing is
//!   dropped.
//! - Max packet size 1 MiB in, 64 KiB out: a too-large payload still reaches [`Ingest`] and is
//!   counted as `oversize` (rumqttc would otherwise kill the connection on it, and the broker
//!   would redeliver it forever).
//! - Keep-alive 30 s; reconnect with backoff 50 ms → 2 s; `TCP_NODELAY` (without it, Nagle's
//!   algorithm and delayed ACKs cost up to 40 ms per round trip of small packets: the
//!   benchmark ran 5x slower).
//!
//! # Stopping
//!
//! [`Twin::shutdown`] stops in order: HTTP, worker (the batch in progress is stored and
//! acknowledged), outbox (queued down messages are handed to the client), then DISCONNECT.
//! Dropping a [`Twin`] instead aborts its tasks at once (at-least-once delivery still holds:
//! whatever was not acknowledged is redelivered to the next session).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, Publish, QoS, SubscribeReasonCode};
use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::broker::{BrokerAddr, EmbeddedBroker};
use crate::error::{Error, StoreError};
use crate::ingest::{DesiredOutcome, Ingest, Verdict};
use crate::shared::{blocking, Core};
use crate::sqlite::SqliteStore;
use crate::store::Store;
use crate::traffic::Traffic;
use crate::wire::{Outgoing, UP_FILTER};

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbLocation {
    /// A fresh SQLite database in memory.
    Memory,
    /// A SQLite file (created if missing).
    File(PathBuf),
}

/// Which broker to use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BrokerChoice {
    /// Start an in-process `rumqttd` on this address (port 0: a free port).
    Embedded(SocketAddr),
    /// Connect to an external broker: `mqtt://host:port`.
    Url(String),
}

/// How to start a [`Twin`].
#[derive(Clone, Debug)]
pub struct TwinConfig {
    /// Storage.
    pub db: DbLocation,
    /// Broker.
    pub broker: BrokerChoice,
    /// Serve the HTTP API on this address (port 0: a free port); `None`: no HTTP server.
    pub http: Option<SocketAddr>,
    /// The twin's MQTT client id (fixed, for the persistent session).
    pub client_id: String,
    /// How long [`Twin::start`] waits for the broker session and subscription.
    pub connect_timeout: Duration,
}

impl Default for TwinConfig {
    /// In memory, embedded broker on a free loopback port, no HTTP.
    fn default() -> Self {
        TwinConfig {
            db: DbLocation::Memory,
            broker: BrokerChoice::Embedded(SocketAddr::from(([127, 0, 0, 1], 0))),
            http: None,
            client_id: "twinbed-twin".to_owned(),
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// Messages taken from the queue per transaction.
const BATCH: usize = 256;

/// Outgoing QoS 1 publishes in flight (see the module docs for why it is far above the
/// broker's window of 100).
const OUT_INFLIGHT: u16 = 1024;

/// Why the service stopped, once it has.
struct Stop {
    error: Mutex<Option<Error>>,
    stopped: watch::Sender<bool>,
}

impl Default for Stop {
    fn default() -> Self {
        Stop { error: Mutex::new(None), stopped: watch::channel(false).0 }
    }
}

impl Stop {
    fn fail(&self, error: Error) {
        if let Ok(mut slot) = self.error.lock() {
            slot.get_or_insert(error);
        }
        self.stopped.send_replace(true);
    }
}

/// A running twin service (see the module docs). Dropping it stops its tasks; the embedded
/// broker, if any, lives on until the process exits (rumqttd cannot be stopped).
pub struct Twin {
    core: Arc<Core>,
    broker: BrokerAddr,
    embedded: Option<EmbeddedBroker>,
    http: Option<SocketAddr>,
    client: AsyncClient,
    stop: Arc<Stop>,
    http_shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    worker_stop: watch::Sender<bool>,
    outbox_stop: watch::Sender<bool>,
    tasks: Tasks,
}

/// The service's tasks, stopped in this order by [`Twin::shutdown`].
struct Tasks {
    http: Option<JoinHandle<()>>,
    worker: JoinHandle<()>,
    outbox: JoinHandle<()>,
    eventloop: JoinHandle<()>,
}

impl Tasks {
    fn all(&self) -> impl Iterator<Item = &JoinHandle<()>> {
        self.http.iter().chain([&self.worker, &self.outbox, &self.eventloop])
    }
}

impl std::fmt::Debug for Twin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Twin").field("broker", &self.broker).field("http", &self.http).finish()
    }
}

impl Twin {
    /// Opens the database, starts or connects to the broker, subscribes to `twinbed/+/up/#`,
    /// starts the HTTP API; returns once the subscription is in place, so messages published
    /// after this returns are not missed.
    pub async fn start(config: TwinConfig) -> Result<Twin, Error> {
        let store: Box<dyn Store> = match &config.db {
            DbLocation::Memory => Box::new(SqliteStore::in_memory()?),
            DbLocation::File(path) => Box::new(SqliteStore::open(path)?),
        };
        Self::start_with_store(config, store).await
    }

    /// Like [`start`](Self::start), with a store of the caller's (`config.db` is ignored).
    pub async fn start_with_store(config: TwinConfig, store: Box<dyn Store>) -> Result<Twin, Error> {
        let (embedded, broker) = match &config.broker {
            BrokerChoice::Embedded(addr) => {
                let b = EmbeddedBroker::start(*addr).await?;
                let addr = BrokerAddr { host: b.addr().ip().to_string(), port: b.addr().port() };
                (Some(b), addr)
            }
            BrokerChoice::Url(url) => (None, BrokerAddr::parse(url)?),
        };

        // Bind the HTTP port before anything is spawned, so a busy port fails cleanly.
        let listener = match config.http {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|source| Error::HttpBind { addr, source })?,
            ),
            None => None,
        };
        let http_local = listener.as_ref().map(|l| l.local_addr()).transpose()?;

        let mut options = MqttOptions::new(config.client_id.clone(), broker.host.clone(), broker.port);
        options
            .set_keep_alive(Duration::from_secs(30))
            .set_clean_session(false)
            .set_manual_acks(true)
            .set_inflight(OUT_INFLIGHT)
            .set_max_packet_size(1024 * 1024, 64 * 1024);
        let (client, mut eventloop) = AsyncClient::new(options, 256);
        let mut network = eventloop.network_options();
        // Small packets (acks) must not wait for Nagle's algorithm and the peer's delayed ACK.
        network.set_tcp_nodelay(true);
        eventloop.set_network_options(network);

        let traffic = Arc::new(Traffic::default());
        let (outbox_tx, outbox_rx) = mpsc::unbounded_channel();
        let core = Arc::new(Core::new(Ingest::new(store), outbox_tx, traffic));
        let stop = Arc::new(Stop::default());
        let (ready_tx, mut ready_rx) = watch::channel(false);
        let last_error = Arc::new(Mutex::new(None::<String>));
        let (queue_tx, queue_rx) = mpsc::unbounded_channel();

        let (worker_stop, worker_stop_rx) = watch::channel(false);
        let (outbox_stop, outbox_stop_rx) = watch::channel(false);
        let mut tasks = Tasks {
            http: None,
            eventloop: tokio::spawn(run_eventloop(
                eventloop,
                client.clone(),
                queue_tx,
                ready_tx,
                last_error.clone(),
            )),
            worker: tokio::spawn(run_worker(
                core.clone(),
                queue_rx,
                client.clone(),
                stop.clone(),
                worker_stop_rx,
            )),
            outbox: tokio::spawn(run_outbox(outbox_rx, client.clone(), stop.clone(), outbox_stop_rx)),
        };

        let mut http = None;
        let mut http_shutdown = None;
        if let (Some(listener), Some(local)) = (listener, http_local) {
            let (tx, rx) = tokio::sync::oneshot::channel::<()>();
            let app = crate::api::router(core.clone());
            let stop2 = stop.clone();
            tasks.http = Some(tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(async move {
                        let _ = rx.await;
                    })
                    .await;
                if let Err(e) = served {
                    stop2.fail(Error::Io(e));
                }
            }));
            tracing::info!(target: "twin", addr = %local, "HTTP API listening");
            http = Some(local);
            http_shutdown = Some(tx);
        }

        let twin = Twin {
            core,
            broker,
            embedded,
            http,
            client,
            stop,
            http_shutdown,
            worker_stop,
            outbox_stop,
            tasks,
        };
        let waited = tokio::time::timeout(config.connect_timeout, ready_rx.wait_for(|r| *r)).await;
        if !matches!(waited, Ok(Ok(_))) {
            let last_error =
                last_error.lock().ok().and_then(|e| e.clone()).unwrap_or_else(|| "none".to_owned());
            return Err(Error::MqttConnect {
                broker: twin.broker.to_string(),
                waited_ms: u64::try_from(config.connect_timeout.as_millis()).unwrap_or(u64::MAX),
                last_error,
            });
        }
        tracing::info!(target: "twin", broker = %twin.broker, "subscribed to {UP_FILTER}");
        Ok(twin)
    }

    /// The broker the twin is connected to.
    pub fn broker(&self) -> &BrokerAddr {
        &self.broker
    }

    /// The embedded broker's address, if the twin started one.
    pub fn embedded_broker(&self) -> Option<SocketAddr> {
        self.embedded.as_ref().map(EmbeddedBroker::addr)
    }

    /// The HTTP API's address, if it is served.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
    }

    /// The traffic counters (see [`crate::traffic`]).
    pub fn traffic(&self) -> &Arc<Traffic> {
        self.core.traffic()
    }

    /// Sets desired state as `PUT /devices/{id}/shadow/desired` does (and publishes it).
    pub async fn set_desired(
        &self,
        device: &str,
        version: u64,
        state: Value,
    ) -> Result<DesiredOutcome, Error> {
        let core = self.core.clone();
        let device = device.to_owned();
        blocking(move || core.set_desired(&device, version, &state)).await
    }

    /// Runs a read-only query on the store (on a blocking thread).
    pub async fn query<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut dyn Store) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, Error> {
        let core = self.core.clone();
        blocking(move || core.query(f)).await
    }

    /// Waits until the service stops by itself (a storage failure): returns why.
    pub async fn wait(&self) -> Error {
        let mut stopped = self.stop.stopped.subscribe();
        let _ = stopped.wait_for(|s| *s).await;
        self.stop.error.lock().ok().and_then(|mut e| e.take()).unwrap_or(Error::Stopped)
    }

    /// Stops gracefully, each step bounded by 5 s: the HTTP server (requests in progress
    /// finish), then the worker (the batch in progress is stored and acknowledged to the
    /// broker), then the outbox (every queued down message is handed to the MQTT client), then
    /// the MQTT connection (DISCONNECT after all of that). Messages the broker delivers
    /// meanwhile are not acknowledged: the broker redelivers them to the next session.
    pub async fn shutdown(mut self) {
        const STEP: Duration = Duration::from_secs(5);
        async fn join(task: &mut JoinHandle<()>) {
            if tokio::time::timeout(STEP, &mut *task).await.is_err() {
                task.abort();
            }
        }
        if let Some(tx) = self.http_shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.tasks.http.as_mut() {
            join(task).await;
        }
        tracing::debug!(target: "twin", "shutdown: HTTP stopped");
        self.worker_stop.send_replace(true);
        join(&mut self.tasks.worker).await;
        tracing::debug!(target: "twin", "shutdown: worker stopped");
        self.outbox_stop.send_replace(true);
        join(&mut self.tasks.outbox).await;
        tracing::debug!(target: "twin", "shutdown: outbox drained");
        if tokio::time::timeout(STEP, self.client.disconnect()).await.is_ok() {
            join(&mut self.tasks.eventloop).await;
        }
        tracing::debug!(target: "twin", "shutdown: MQTT disconnected");
        // Drop aborts whatever is left.
    }
}

impl Drop for Twin {
    fn drop(&mut self) {
        for task in self.tasks.all() {
            task.abort();
        }
    }
}

async fn run_eventloop(
    mut eventloop: EventLoop,
    client: AsyncClient,
    queue: mpsc::UnboundedSender<Publish>,
    ready: watch::Sender<bool>,
    last_error: Arc<Mutex<Option<String>>>,
) {
    const MIN_BACKOFF: Duration = Duration::from_millis(50);
    let mut backoff = MIN_BACKOFF;
    let mut had_session = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if queue.send(p).is_err() {
                    return; // The worker is gone: the service is stopping.
                }
            }
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                backoff = MIN_BACKOFF;
                if ack.session_present {
                    tracing::info!(target: "twin", "MQTT session resumed");
                    ready.send_replace(true);
                } else {
                    if had_session {
                        tracing::warn!(
                            target: "twin",
                            "the broker lost the twin's MQTT session: subscribing again; \
                             down messages in flight were lost with it"
                        );
                    }
                    // Not from this task: the request channel may be full and only this
                    // task drains it.
                    let c = client.clone();
                    tokio::spawn(async move {
                        if let Err(e) = c.subscribe(UP_FILTER, QoS::AtLeastOnce).await {
                            tracing::error!(target: "twin", error = %e, "cannot subscribe");
                        }
                    });
                }
                had_session = true;
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                if ack.return_codes.iter().any(|c| matches!(c, SubscribeReasonCode::Failure)) {
                    tracing::error!(target: "twin", "the broker refused the subscription to {UP_FILTER}");
                } else {
                    ready.send_replace(true);
                }
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) => return,
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(target: "twin", error = %e, "MQTT connection error; reconnecting in {backoff:?}");
                if let Ok(mut slot) = last_error.lock() {
                    *slot = Some(e.to_string());
                }
                // Reconnect backoff (not synchronisation): the next poll reconnects.
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}

async fn run_worker(
    core: Arc<Core>,
    mut queue: mpsc::UnboundedReceiver<Publish>,
    client: AsyncClient,
    stop: Arc<Stop>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let first = tokio::select! {
            biased;
            _ = stopping.wait_for(|s| *s) => return,
            p = queue.recv() => match p {
                Some(p) => p,
                None => return,
            },
        };
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match queue.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let core2 = core.clone();
        let joined = tokio::task::spawn_blocking(move || {
            let result = core2.handle_batch(&batch);
            (batch, result)
        })
        .await;
        let (batch, outcomes) = match joined {
            Ok((batch, Ok(outcomes))) => (batch, outcomes),
            Ok((_, Err(e))) => {
                tracing::error!(target: "twin", error = %e, "storage failed: stopping without acknowledging");
                stop.fail(e);
                return;
            }
            Err(_) => {
                stop.fail(Error::Internal { what: "ingest worker panicked" });
                return;
            }
        };
        for (p, outcome) in batch.iter().zip(&outcomes) {
            if let Verdict::Rejected(r) = &outcome.verdict {
                tracing::debug!(target: "twin", topic = %p.topic, reason = %r, "rejected");
            }
            if let Err(e) = client.ack(p).await {
                stop.fail(Error::MqttClient(e));
                return;
            }
        }
    }
}

async fn run_outbox(
    mut outbox: mpsc::UnboundedReceiver<Outgoing>,
    client: AsyncClient,
    stop: Arc<Stop>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        // Biased towards the queue: when asked to stop, what is queued is still sent.
        let out = tokio::select! {
            biased;
            out = outbox.recv() => match out {
                Some(out) => out,
                None => return,
            },
            _ = stopping.wait_for(|s| *s) => return,
        };
        if let Err(e) = client.publish(out.topic(), QoS::AtLeastOnce, false, out.payload()).await {
            stop.fail(Error::MqttClient(e));
            return;
        }
    }
}
