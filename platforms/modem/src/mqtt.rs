//! [`MqttLink`]: the real network side, an MQTT 3.1.1 client built on `rumqttc`.
//!
//! # How it runs
//!
//! rumqttc's [`EventLoop`] must be polled continuously (it answers keep-alives, acknowledges
//! incoming QoS 1 messages and reads the socket). It runs as a task on a **private tokio
//! runtime** (one worker thread, owned by the link; [`MqttLink::with_runtime`] shares a
//! runtime between many links instead). The task forwards the packets the modem waits for
//! (CONNACK, SUBACK, PUBACK, PUBCOMP, and the "sent" events) over a std channel, and stores
//! incoming PUBLISHes in a queue shared with the link. The link's methods are plain blocking
//! calls: they send a request with rumqttc's non-async `try_*` client methods and wait on the
//! channel with a real-time timeout ([`MqttLinkConfig::timeout`]), so they work from any thread,
//! inside or outside an async context. The async client was chosen over rumqttc's sync
//! `Connection` because the task can be aborted: closing the link (coverage lost, injected drop,
//! AT+QMTCLOSE) drops the socket at once, without a DISCONNECT, as a radio loss would.
//!
//! rumqttc reconnects by itself when its event loop is polled after an error; this link does
//! not let it: the task ends at the first error and the link reports [`LinkStatus::Lost`] until
//! the modem closes and reopens it, as a real module reports +QMTSTAT and waits for the host.
//!
//! # QMTOPEN and QMTCONN
//!
//! rumqttc opens the TCP connection and sends CONNECT in one step. AT+QMTOPEN is modelled by a
//! TCP connection attempt to the broker that is closed again at once (so "broker down" shows at
//! QMTOPEN, as on a real module); AT+QMTCONN then starts rumqttc's connection and waits for
//! CONNACK. The broker sees one short extra TCP connection per QMTOPEN.

use crate::link::{Incoming, Link, LinkCounters, LinkError, LinkStatus, Qos};
use rumqttc::{
    AsyncClient, ConnectReturnCode, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet,
    SubscribeReasonCode,
};
use std::collections::VecDeque;
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::runtime::{Handle, Runtime};

/// Settings of an [`MqttLink`] (real time).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MqttLinkConfig {
    /// Longest real-time wait for one operation (TCP open, CONNACK, SUBACK, PUBACK). Default 5 s.
    pub timeout: Duration,
    /// MQTT keep-alive (at least 1 s; shorter values are raised to 1 s). Default 30 s.
    pub keep_alive: Duration,
    /// Largest MQTT packet sent or accepted, in bytes. Default 16 KiB.
    pub max_packet_size: usize,
}

impl Default for MqttLinkConfig {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            keep_alive: Duration::from_secs(30),
            max_packet_size: 16 * 1024,
        }
    }
}

/// What the event-loop task tells the waiting link.
enum Note {
    ConnAck,
    PublishSent(u16),
    SubscribeSent(u16),
    PubAck(u16),
    PubComp(u16),
    SubAck(u16, Option<SubscribeReasonCode>),
    DisconnectSent,
    Failed(ConnectionError),
}

/// State shared with the event-loop task.
#[derive(Default)]
struct Shared {
    incoming: Mutex<VecDeque<Incoming>>,
    published: AtomicU64,
    received: AtomicU64,
}

struct Session {
    client: AsyncClient,
    task: tokio::task::JoinHandle<()>,
    notes: mpsc::Receiver<Note>,
    /// Set by the task when the connection failed after CONNACK.
    lost: Arc<AtomicBool>,
    connected: bool,
}

enum Rt {
    Owned(Runtime),
    Shared(Handle),
}

/// A [`Link`] to a real MQTT broker (plain TCP, MQTT 3.1.1), see the module docs.
pub struct MqttLink {
    config: MqttLinkConfig,
    rt: Option<Rt>,
    target: Option<(String, u16)>,
    session: Option<Session>,
    shared: Arc<Shared>,
}

impl MqttLink {
    /// A closed link with its own single-worker tokio runtime.
    pub fn new(config: MqttLinkConfig) -> std::io::Result<Self> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("twinbed-modem-mqtt")
            .enable_all()
            .build()?;
        Ok(Self::build(config, Rt::Owned(rt)))
    }

    /// A closed link whose event loop runs on an existing tokio runtime (for fleets: many links,
    /// one runtime). The runtime must have its time and I/O drivers enabled.
    pub fn with_runtime(config: MqttLinkConfig, handle: Handle) -> Self {
        Self::build(config, Rt::Shared(handle))
    }

    fn build(config: MqttLinkConfig, rt: Rt) -> Self {
        Self { config, rt: Some(rt), target: None, session: None, shared: Arc::default() }
    }

    fn handle(&self) -> Option<&Handle> {
        match self.rt.as_ref()? {
            Rt::Owned(rt) => Some(rt.handle()),
            Rt::Shared(h) => Some(h),
        }
    }

    /// Waits for the note `f` accepts (returns `Some`), until the configured timeout. A failure
    /// of the connection ends the wait with its error.
    fn wait<T>(&mut self, mut f: impl FnMut(Note) -> Option<T>) -> Result<T, LinkError> {
        let timeout = self.config.timeout;
        let deadline = Instant::now() + timeout;
        let (host, port) = self.target.clone().unwrap_or_default();
        let Some(session) = self.session.as_mut() else {
            return Err(LinkError::NotConnected);
        };
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match session.notes.recv_timeout(left) {
                Ok(Note::Failed(e)) => return Err(map_error(e, &host, port, timeout)),
                Ok(note) => {
                    if let Some(v) = f(note) {
                        return Ok(v);
                    }
                }
                Err(RecvTimeoutError::Timeout) => return Err(LinkError::Timeout(timeout)),
                Err(RecvTimeoutError::Disconnected) => return Err(LinkError::Lost),
            }
        }
    }

    /// The session, if it is connected and alive.
    fn live_session(&self) -> Result<&Session, LinkError> {
        match &self.session {
            Some(s) if s.lost.load(Ordering::Acquire) => Err(LinkError::Lost),
            Some(s) if s.connected => Ok(s),
            _ => Err(LinkError::NotConnected),
        }
    }

    fn end_session(&mut self) {
        if let Some(s) = self.session.take() {
            s.task.abort();
            // The task drops its sender when it ends; wait for that so the socket is closed
            // when `close` returns.
            let deadline = Instant::now() + self.config.timeout;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                match s.notes.recv_timeout(left) {
                    Ok(_) => {}
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(RecvTimeoutError::Timeout) => {
                        tracing::warn!(target: "modem", "MQTT event loop did not stop in time");
                        break;
                    }
                }
            }
        }
    }
}

impl Drop for MqttLink {
    fn drop(&mut self) {
        self.end_session();
        // Dropping a runtime inside an async context panics; shutting it down in the background
        // does not.
        if let Some(Rt::Owned(rt)) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

fn map_error(e: ConnectionError, host: &str, port: u16, timeout: Duration) -> LinkError {
    tracing::debug!(target: "modem", error = %e, "MQTT connection error");
    match e {
        ConnectionError::ConnectionRefused(code) => LinkError::Refused { code: connack_code(code) },
        ConnectionError::NetworkTimeout | ConnectionError::FlushTimeout => LinkError::Timeout(timeout),
        ConnectionError::Io(source) if source.kind() == std::io::ErrorKind::ConnectionRefused => {
            LinkError::Unreachable { host: host.to_owned(), port, source }
        }
        _ => LinkError::Lost,
    }
}

fn connack_code(c: ConnectReturnCode) -> u8 {
    match c {
        ConnectReturnCode::Success => 0,
        ConnectReturnCode::RefusedProtocolVersion => 1,
        ConnectReturnCode::BadClientId => 2,
        ConnectReturnCode::ServiceUnavailable => 3,
        ConnectReturnCode::BadUserNamePassword => 4,
        ConnectReturnCode::NotAuthorized => 5,
    }
}

fn to_rumqttc(q: Qos) -> rumqttc::QoS {
    match q {
        Qos::AtMostOnce => rumqttc::QoS::AtMostOnce,
        Qos::AtLeastOnce => rumqttc::QoS::AtLeastOnce,
        Qos::ExactlyOnce => rumqttc::QoS::ExactlyOnce,
    }
}

fn from_rumqttc(q: rumqttc::QoS) -> Qos {
    match q {
        rumqttc::QoS::AtMostOnce => Qos::AtMostOnce,
        rumqttc::QoS::AtLeastOnce => Qos::AtLeastOnce,
        rumqttc::QoS::ExactlyOnce => Qos::ExactlyOnce,
    }
}

/// The event-loop task: polls rumqttc until the first error or until DISCONNECT is sent.
async fn drive(mut el: EventLoop, notes: mpsc::Sender<Note>, shared: Arc<Shared>, lost: Arc<AtomicBool>) {
    loop {
        let note = match el.poll().await {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let m = Incoming {
                    topic: p.topic,
                    payload: p.payload.to_vec(),
                    qos: from_rumqttc(p.qos),
                    retain: p.retain,
                };
                shared.incoming.lock().unwrap_or_else(PoisonError::into_inner).push_back(m);
                shared.received.fetch_add(1, Ordering::AcqRel);
                continue;
            }
            Ok(Event::Incoming(Packet::ConnAck(_))) => Note::ConnAck,
            Ok(Event::Incoming(Packet::PubAck(a))) => {
                shared.published.fetch_add(1, Ordering::AcqRel);
                Note::PubAck(a.pkid)
            }
            Ok(Event::Incoming(Packet::PubComp(a))) => {
                shared.published.fetch_add(1, Ordering::AcqRel);
                Note::PubComp(a.pkid)
            }
            Ok(Event::Incoming(Packet::SubAck(s))) => Note::SubAck(s.pkid, s.return_codes.first().copied()),
            Ok(Event::Outgoing(Outgoing::Publish(pkid))) => {
                if pkid == 0 {
                    shared.published.fetch_add(1, Ordering::AcqRel);
                }
                Note::PublishSent(pkid)
            }
            Ok(Event::Outgoing(Outgoing::Subscribe(pkid))) => Note::SubscribeSent(pkid),
            Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                let _ = notes.send(Note::DisconnectSent);
                return;
            }
            Ok(_) => continue,
            Err(e) => {
                lost.store(true, Ordering::Release);
                let _ = notes.send(Note::Failed(e));
                return;
            }
        };
        if notes.send(note).is_err() {
            return;
        }
    }
}

impl Link for MqttLink {
    fn open(&mut self, host: &str, port: u16) -> Result<(), LinkError> {
        self.close();
        let addrs: Vec<_> = match (host, port).to_socket_addrs() {
            Ok(a) => a.collect(),
            Err(_) => Vec::new(),
        };
        if addrs.is_empty() {
            return Err(LinkError::Resolve { host: host.to_owned() });
        }
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, self.config.timeout) {
                Ok(probe) => {
                    drop(probe);
                    self.target = Some((host.to_owned(), port));
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        let source = last.unwrap_or_else(|| std::io::ErrorKind::NotConnected.into());
        Err(LinkError::Unreachable { host: host.to_owned(), port, source })
    }

    fn connect(&mut self, client_id: &str) -> Result<(), LinkError> {
        self.end_session();
        let Some((host, port)) = self.target.clone() else {
            return Err(LinkError::NotConnected);
        };
        if client_id.is_empty() {
            return Err(LinkError::Invalid { operation: "connect" });
        }
        let mut opts = MqttOptions::new(client_id, host, port);
        opts.set_keep_alive(self.config.keep_alive.max(Duration::from_secs(1)))
            .set_clean_session(true)
            .set_max_packet_size(self.config.max_packet_size, self.config.max_packet_size);
        let (client, mut el) = AsyncClient::new(opts, 16);
        let mut net = el.network_options();
        net.set_connection_timeout(self.config.timeout.as_secs().max(1));
        // Each publish waits for its PUBACK while the engine is frozen: without TCP_NODELAY,
        // Nagle's algorithm holds small packets back ~40 ms per round trip.
        net.set_tcp_nodelay(true);
        el.set_network_options(net);
        let (tx, notes) = mpsc::channel();
        let lost = Arc::new(AtomicBool::new(false));
        let Some(handle) = self.handle() else {
            return Err(LinkError::NotConnected);
        };
        let task = handle.spawn(drive(el, tx, self.shared.clone(), lost.clone()));
        self.session = Some(Session { client, task, notes, lost, connected: false });
        match self.wait(|n| matches!(n, Note::ConnAck).then_some(())) {
            Ok(()) => {
                if let Some(s) = &mut self.session {
                    s.connected = true;
                }
                Ok(())
            }
            Err(e) => {
                self.end_session();
                // A refused or failed CONNECT leaves no usable connection.
                self.target = None;
                Err(e)
            }
        }
    }

    fn subscribe(&mut self, topic: &str, qos: Qos) -> Result<u8, LinkError> {
        let s = self.live_session()?;
        s.client
            .try_subscribe(topic, to_rumqttc(qos))
            .map_err(|_| LinkError::Invalid { operation: "subscribe" })?;
        let pkid = self.wait(|n| match n {
            Note::SubscribeSent(p) => Some(p),
            _ => None,
        })?;
        let code = self.wait(|n| match n {
            Note::SubAck(p, code) if p == pkid => Some(code),
            _ => None,
        })?;
        Ok(match code {
            Some(SubscribeReasonCode::Success(q)) => from_rumqttc(q).as_u8(),
            _ => 0x80,
        })
    }

    fn publish(&mut self, topic: &str, payload: &[u8], qos: Qos, retain: bool) -> Result<(), LinkError> {
        let s = self.live_session()?;
        s.client
            .try_publish(topic, to_rumqttc(qos), retain, payload)
            .map_err(|_| LinkError::Invalid { operation: "publish" })?;
        let pkid = self.wait(|n| match n {
            Note::PublishSent(p) => Some(p),
            _ => None,
        })?;
        match qos {
            Qos::AtMostOnce => Ok(()),
            Qos::AtLeastOnce => self.wait(|n| matches!(n, Note::PubAck(p) if p == pkid).then_some(())),
            Qos::ExactlyOnce => self.wait(|n| matches!(n, Note::PubComp(p) if p == pkid).then_some(())),
        }
    }

    fn disconnect(&mut self) {
        if let Ok(s) = self.live_session() {
            if s.client.try_disconnect().is_ok() {
                let _ = self.wait(|n| matches!(n, Note::DisconnectSent).then_some(()));
            }
        }
        self.close();
    }

    fn close(&mut self) {
        self.end_session();
        self.target = None;
    }

    fn take_incoming(&mut self) -> Vec<Incoming> {
        self.shared.incoming.lock().unwrap_or_else(PoisonError::into_inner).drain(..).collect()
    }

    fn status(&self) -> LinkStatus {
        match &self.session {
            Some(s) if s.lost.load(Ordering::Acquire) => LinkStatus::Lost,
            Some(s) if s.connected => LinkStatus::Connected,
            _ if self.target.is_some() => LinkStatus::Open,
            _ => LinkStatus::Closed,
        }
    }

    fn counters(&self) -> LinkCounters {
        LinkCounters {
            published: self.shared.published.load(Ordering::Acquire),
            received: self.shared.received.load(Ordering::Acquire),
        }
    }
}

impl MqttLink {
    /// A handle on this link's counters that another thread can read while the link is in use
    /// (e.g. a scenario runner waiting for quiescence while the engine owns the link).
    pub fn counters_handle(&self) -> CountersHandle {
        CountersHandle(self.shared.clone())
    }
}

/// Reads an [`MqttLink`]'s [`LinkCounters`] from any thread.
#[derive(Clone)]
pub struct CountersHandle(Arc<Shared>);

impl CountersHandle {
    /// The counters now.
    pub fn get(&self) -> LinkCounters {
        LinkCounters {
            published: self.0.published.load(Ordering::Acquire),
            received: self.0.received.load(Ordering::Acquire),
        }
    }
}

impl std::fmt::Debug for CountersHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("CountersHandle").field(&self.get()).finish()
    }
}

impl std::fmt::Debug for MqttLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttLink")
            .field("config", &self.config)
            .field("target", &self.target)
            .field("status", &self.status())
            .field("counters", &self.counters())
            .finish()
    }
}
