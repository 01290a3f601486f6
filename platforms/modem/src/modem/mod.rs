//! The modem state machine: AT commands in, answers and URCs out, on virtual time.
//!
//! Internally a small discrete-event simulator: every input byte, fault, timer and answer is an
//! event at a virtual time; [`Modem::poll`] handles them in (time, order of scheduling) order up
//! to `now`. Network operations are made on the [`Link`] while their event is handled (the
//! engine is frozen meanwhile) and their outcome is scheduled at the modelled time.

use crate::at::{self, Command};
use crate::link::{Incoming, Link, LinkError, LinkStatus, Qos};
use crate::timing::{Timing, NS_PER_MS};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

#[cfg(test)]
mod tests;

/// Longest command line kept; longer lines are answered `ERROR` at their `\r`.
const MAX_LINE: usize = 2048;

/// Power state of the modem, for the energy model (PROTOCOL.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PowerState {
    /// Radio off (AT+CFUN=0).
    Off,
    /// Radio on, nothing moving (registered or searching).
    Idle,
    /// Receiving: waiting for a network answer (TCP open, CONNACK, SUBACK, PUBACK/PUBCOMP) or
    /// delivering a +QMTRECV.
    Rx,
    /// Transmitting a packet (OPEN, CONNECT, SUBSCRIBE, PUBLISH, DISCONNECT) at the uplink rate.
    Tx,
}

/// State of MQTT client 0 as the firmware sees it (changes when the answers are due, not when
/// the link call returns).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientState {
    /// No network connection.
    Closed,
    /// AT+QMTOPEN in progress.
    Opening,
    /// Network open (+QMTOPEN: 0,0), no MQTT session.
    Open,
    /// AT+QMTCONN in progress.
    Connecting,
    /// MQTT session up (+QMTCONN: 0,0,0).
    Connected,
}

/// Registration status as reported by +CEREG.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Registration {
    /// Radio off (`<stat>` 0).
    RadioOff,
    /// Registered on the home network (`<stat>` 1).
    Registered,
    /// Searching (`<stat>` 2): no coverage, or attach in progress.
    Searching,
}

impl Registration {
    /// The `<stat>` number of +CEREG.
    pub fn stat(self) -> u8 {
        match self {
            Self::RadioOff => 0,
            Self::Registered => 1,
            Self::Searching => 2,
        }
    }
}

/// What the modem has done, for reports and for runners that wait for quiescence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModemCounters {
    /// Publishes reported to the firmware as done (`+QMTPUBEX: 0,<id>,0`).
    pub publishes_ok: u64,
    /// Publishes reported as failed (`+QMTPUBEX: 0,<id>,2`).
    pub publishes_failed: u64,
    /// Messages taken from the link by [`Modem::deliver_incoming`].
    pub received: u64,
    /// Messages handed to the firmware as +QMTRECV.
    pub delivered: u64,
    /// Messages taken from the link while no MQTT session was up (lost, as on a real modem).
    pub discarded: u64,
    /// Command lines answered `ERROR`.
    pub errors: u64,
    /// Subscribes reported to the firmware (`+QMTSUB`, granted or not).
    #[serde(default)]
    pub subscribes: u64,
}

/// A fault injected at a virtual time ([`Modem::inject`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fault {
    /// Radio coverage lost (`false`) or back (`true`), see [`Modem::set_coverage`].
    Coverage(bool),
    /// Milliseconds added to every network answer from now on (0 removes it), see
    /// [`Modem::set_extra_latency`].
    ExtraLatencyMs(u64),
    /// The network connection drops once, see [`Modem::drop_link`].
    DropLink,
}

/// The outcome of a network operation, reported when it is due.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Outcome {
    Open { epoch: u64, code: i8 },
    Conn { epoch: u64, result: u8, ret: u8 },
    Sub { epoch: u64, msg_id: u16, result: u8, granted: u8, lost: bool },
    Pub { epoch: u64, msg_id: u16, ok: bool, lost: bool },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum Event {
    /// Put bytes on the UART towards the firmware; `rx` holds the *rx* power state while they
    /// are on the line (+QMTRECV).
    Emit {
        bytes: Vec<u8>,
        rx: bool,
    },
    /// A power interval starts or ends: recompute the power state.
    PowerCheck,
    Fault(Fault),
    /// Network registration completes (if `epoch` is still current).
    Attached {
        epoch: u64,
    },
    Outcome(Outcome),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Scheduled {
    time: u64,
    seq: u64,
    event: Event,
}

/// A *tx* or *rx* power interval. Intervals of a link operation carry the link epoch and are
/// cut short when the link goes away.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Hold {
    tx: bool,
    start: u64,
    end: u64,
    epoch: Option<u64>,
}

/// AT+QMTPUBEX waiting for its payload bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct DataMode {
    msg_id: u16,
    qos: u8,
    retain: bool,
    topic: String,
    len: usize,
    payload: Vec<u8>,
}

/// The virtual modem: a deterministic state machine for the AT subset of PROTOCOL.md §1.
///
/// Plain data (`Clone + Send + Serialize`): it holds no socket. The network is the [`Link`]
/// passed to [`Modem::poll`] and [`Modem::deliver_incoming`]. See the crate docs for the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Modem {
    timing: Timing,
    /// The IMEI `AT+GSN` answers (15 digits): the firmware makes its device id from it.
    #[serde(default = "default_imei")]
    imei: String,
    /// Virtual time handled so far.
    clock: u64,
    seq: u64,
    /// Pending events, sorted by (time, seq).
    events: Vec<Scheduled>,
    /// Bytes from the firmware not handled yet, with their arrival time.
    input: VecDeque<(u64, u8)>,
    /// Bytes on the UART towards the firmware, with the time each is fully received.
    line: VecDeque<(u64, u8)>,
    /// When the UART towards the firmware is free again.
    line_free: u64,
    cmd: Vec<u8>,
    cmd_overflow: bool,
    /// The previous byte was the `\r` ending a command (a `\n` right after it is skipped).
    after_cr: bool,
    data: Option<DataMode>,
    radio_on: bool,
    coverage: bool,
    registered: bool,
    reg_epoch: u64,
    extra_latency_ns: u64,
    client: ClientState,
    /// Bumped whenever the client is closed; outcomes of an older epoch report failure.
    link_epoch: u64,
    /// When the uplink is free for the next packet.
    uplink_free: u64,
    next_recv_id: u16,
    /// Messages taken from the link while the session was being set up.
    held: Vec<Incoming>,
    holds: Vec<Hold>,
    power: PowerState,
    power_log: Vec<(u64, PowerState)>,
    counters: ModemCounters,
}

impl Modem {
    /// A modem at virtual time 0 as after power-on: echo off, radio on (CFUN=1), in coverage
    /// and registered, no MQTT client open, power state *idle*.
    pub fn new(timing: Timing) -> Self {
        Self {
            timing,
            clock: 0,
            seq: 0,
            events: Vec::new(),
            input: VecDeque::new(),
            line: VecDeque::new(),
            line_free: 0,
            cmd: Vec::new(),
            cmd_overflow: false,
            after_cr: false,
            data: None,
            radio_on: true,
            coverage: true,
            registered: true,
            reg_epoch: 0,
            extra_latency_ns: 0,
            client: ClientState::Closed,
            link_epoch: 0,
            uplink_free: 0,
            next_recv_id: 1,
            held: Vec::new(),
            holds: Vec::new(),
            power: PowerState::Idle,
            power_log: vec![(0, PowerState::Idle)],
            counters: ModemCounters::default(),
            imei: default_imei(),
        }
    }

    /// Sets the IMEI `AT+GSN` answers; `None` (and nothing changes) unless it is 15 digits.
    pub fn set_imei(&mut self, imei: &str) -> Option<()> {
        (imei.len() == 15 && imei.bytes().all(|b| b.is_ascii_digit())).then(|| self.imei = imei.to_owned())
    }

    /// The IMEI `AT+GSN` answers.
    pub fn imei(&self) -> &str {
        &self.imei
    }

    /// The timing model in use.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// The virtual time the modem has been brought up to (by [`Modem::poll`]).
    pub fn now(&self) -> u64 {
        self.clock
    }

    // ---------------------------------------------------------------------------------------
    // The byte interface
    // ---------------------------------------------------------------------------------------

    /// A byte the firmware sent on the UART at virtual time `now` (ns). It is handled by the
    /// next [`Modem::poll`] (`next_deadline` returns `now` until then). Times earlier than the
    /// modem's clock are taken as the clock.
    pub fn write(&mut self, now: u64, byte: u8) {
        let t = now.max(self.clock).max(self.input.back().map_or(0, |&(t, _)| t));
        self.input.push_back((t, byte));
    }

    /// Brings the modem up to virtual time `now`: handles the firmware's bytes, faults, timers
    /// and due answers in time order, calling `net` for network operations (which may block in
    /// real time). Returns how many bytes for the firmware are due at `now`
    /// ([`Modem::take_output`]).
    pub fn poll(&mut self, now: u64, net: &mut dyn Link) -> usize {
        loop {
            let ev = self.events.first().map(|e| e.time).filter(|&t| t <= now);
            let inp = self.input.front().map(|&(t, _)| t).filter(|&t| t <= now);
            match (ev, inp) {
                // On a tie, scheduled events go first: they were caused earlier.
                (Some(te), Some(ti)) if te <= ti => self.handle_event(net),
                (Some(_), None) => self.handle_event(net),
                (_, Some(_)) => {
                    if let Some((t, b)) = self.input.pop_front() {
                        self.clock = self.clock.max(t);
                        self.handle_byte(t, b, net);
                        self.update_power(t);
                    }
                }
                (None, None) => break,
            }
        }
        self.clock = self.clock.max(now);
        self.holds.retain(|h| h.end > self.clock);
        self.line.iter().take_while(|&&(due, _)| due <= now).count()
    }

    /// Takes the bytes for the firmware that are fully received at `now` (call after
    /// [`Modem::poll`]).
    pub fn take_output(&mut self, now: u64) -> Vec<u8> {
        let n = self.line.iter().take_while(|&&(due, _)| due <= now).count();
        self.line.drain(..n).map(|(_, b)| b).collect()
    }

    /// Takes the next byte for the firmware if it is fully received at `now`.
    pub fn pop_output(&mut self, now: u64) -> Option<u8> {
        match self.line.front() {
            Some(&(due, b)) if due <= now => {
                self.line.pop_front();
                Some(b)
            }
            _ => None,
        }
    }

    /// The earliest virtual time at which the modem needs [`Modem::poll`] or has a byte for the
    /// firmware; `None` when it is idle until the firmware or the owner does something.
    pub fn next_deadline(&self) -> Option<u64> {
        [
            self.events.first().map(|e| e.time),
            self.input.front().map(|&(t, _)| t),
            self.line.front().map(|&(t, _)| t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---------------------------------------------------------------------------------------
    // The owner's interface: incoming messages, faults, observation
    // ---------------------------------------------------------------------------------------

    /// Sync point: brings the modem up to `now`, takes every message the link has received so
    /// far and schedules them as +QMTRECV URCs from `now` on (in arrival order). Then, if the
    /// link reports the session lost, reports `+QMTSTAT: 0,1`.
    ///
    /// This is the only place where broker-originated events (messages, a dropped connection)
    /// enter the virtual timeline, so a run stays deterministic when the owner calls it at
    /// fixed virtual times after waiting for network quiescence. Messages that arrive while the
    /// session is still being set up (+QMTCONN not yet reported) are held for the next call;
    /// messages of a session that has been closed are discarded (counted), as on a real modem.
    /// Returns the number of URCs scheduled.
    pub fn deliver_incoming(&mut self, now: u64, net: &mut dyn Link) -> usize {
        self.poll(now, net);
        let t = self.clock;
        let msgs = net.take_incoming();
        self.counters.received += msgs.len() as u64;
        self.held.extend(msgs);
        let mut delivered = 0;
        match self.client {
            ClientState::Connected => {
                for m in std::mem::take(&mut self.held) {
                    self.schedule_recv(t, m);
                    delivered += 1;
                }
            }
            ClientState::Closed => self.discard_held(),
            _ => {}
        }
        self.counters.delivered += delivered as u64;
        if self.client != ClientState::Closed && net.status() == LinkStatus::Lost {
            self.lose_client(t, 1, net);
        }
        self.poll(now, net);
        delivered
    }

    fn discard_held(&mut self) {
        for m in self.held.drain(..) {
            tracing::debug!(target: "modem", topic = %m.topic, "message discarded: no MQTT session");
            self.counters.discarded += 1;
        }
    }

    /// Injects `fault` at virtual time `now`: it takes effect when the next [`Modem::poll`]
    /// reaches `now` (a time before the modem's clock is taken as the clock).
    pub fn inject(&mut self, now: u64, fault: Fault) {
        self.schedule(now.max(self.clock), Event::Fault(fault));
    }

    /// Fault: coverage lost (`false`) or back (`true`) at virtual time `now`. Lost: `+CEREG: 2`
    /// (if registered), the link is closed and an open client gets `+QMTSTAT: 0,7`. Back: after
    /// the attach time, `+CEREG: 1`. Takes effect at the next [`Modem::poll`]; a time before the
    /// modem's clock is taken as the clock.
    pub fn set_coverage(&mut self, now: u64, covered: bool) {
        self.inject(now, Fault::Coverage(covered));
    }

    /// Fault: from virtual time `now` on, every network answer comes `ms` milliseconds later
    /// (0 removes the extra latency).
    pub fn set_extra_latency(&mut self, now: u64, ms: u64) {
        self.inject(now, Fault::ExtraLatencyMs(ms));
    }

    /// Fault: the network connection drops once at virtual time `now` (`+QMTSTAT: 0,1`; the
    /// real connection is closed). No effect if no client is open then.
    pub fn drop_link(&mut self, now: u64) {
        self.inject(now, Fault::DropLink);
    }

    /// Power cycle of the module at `now`: the link is closed, pending answers and unread
    /// output are lost, and the modem is as after [`Modem::new`] (radio on; registered if in
    /// coverage, else searching). The power log, counters and the injected faults (coverage,
    /// extra latency) are kept.
    pub fn power_cycle(&mut self, now: u64, net: &mut dyn Link) {
        self.poll(now, net);
        let t = self.clock;
        if self.client != ClientState::Closed {
            net.close();
        }
        let fresh = Modem::new(self.timing.clone());
        let kept_faults: Vec<Scheduled> =
            self.events.drain(..).filter(|e| matches!(e.event, Event::Fault(_))).collect();
        *self = Modem {
            clock: t,
            seq: self.seq,
            events: kept_faults,
            line_free: t,
            coverage: self.coverage,
            registered: self.coverage,
            reg_epoch: self.reg_epoch + 1,
            extra_latency_ns: self.extra_latency_ns,
            link_epoch: self.link_epoch + 1,
            uplink_free: t,
            power: self.power,
            power_log: std::mem::take(&mut self.power_log),
            counters: self.counters,
            ..fresh
        };
        self.update_power(t);
    }

    /// Current power state.
    pub fn power_state(&self) -> PowerState {
        self.power
    }

    /// Every power state change, `(virtual ns, new state)`, starting with `(0, Idle)`.
    pub fn power_log(&self) -> &[(u64, PowerState)] {
        &self.power_log
    }

    /// Registration as +CEREG would report it now.
    pub fn registration(&self) -> Registration {
        if !self.radio_on {
            Registration::RadioOff
        } else if self.registered {
            Registration::Registered
        } else {
            Registration::Searching
        }
    }

    /// State of MQTT client 0.
    pub fn client_state(&self) -> ClientState {
        self.client
    }

    /// Whether the modem is reading QMTPUBEX payload bytes (after the `>` prompt).
    pub fn in_data_mode(&self) -> bool {
        self.data.is_some()
    }

    /// Counters of what the modem did.
    pub fn counters(&self) -> ModemCounters {
        self.counters
    }

    // ---------------------------------------------------------------------------------------
    // Scheduling
    // ---------------------------------------------------------------------------------------

    fn schedule(&mut self, time: u64, event: Event) {
        let time = time.max(self.clock);
        self.seq += 1;
        let at = self.events.partition_point(|e| (e.time, e.seq) <= (time, self.seq));
        self.events.insert(at, Scheduled { time, seq: self.seq, event });
    }

    /// Queues a text line (`\r\n` added) for the firmware at `time`.
    fn emit(&mut self, time: u64, text: &str) {
        let mut bytes = Vec::with_capacity(text.len() + 2);
        bytes.extend_from_slice(text.as_bytes());
        bytes.extend_from_slice(b"\r\n");
        self.schedule(time, Event::Emit { bytes, rx: false });
    }

    /// When the immediate answer to a command that ended at `t` is due.
    fn answer_time(&self, t: u64) -> u64 {
        t.saturating_add(self.timing.cmd_latency_ns)
    }

    fn answer(&mut self, t: u64, text: &str) {
        self.emit(self.answer_time(t), text);
    }

    fn error(&mut self, t: u64) {
        self.counters.errors += 1;
        self.answer(t, "ERROR");
    }

    /// Models a packet of `bytes` sent from `t` on, then (if `wait_rtts` > 0) that many network
    /// round trips waiting for the answer. Adds the power intervals and returns when the answer
    /// is in.
    /// The intervals carry `epoch`: closing that link epoch cuts them short.
    fn network_op(&mut self, t: u64, bytes: usize, wait_rtts: u64, epoch: Option<u64>) -> u64 {
        let start = t.max(self.uplink_free);
        let tx_end = start.saturating_add(self.timing.tx_ns(bytes));
        self.uplink_free = tx_end;
        self.add_hold(Hold { tx: true, start, end: tx_end, epoch });
        if wait_rtts == 0 {
            return tx_end;
        }
        let wait = self.timing.rtt_ns.saturating_add(self.extra_latency_ns).saturating_mul(wait_rtts);
        let end = tx_end.saturating_add(wait);
        self.add_hold(Hold { tx: false, start: tx_end, end, epoch });
        end
    }

    fn add_hold(&mut self, h: Hold) {
        if h.end <= h.start {
            return;
        }
        self.schedule(h.start, Event::PowerCheck);
        self.schedule(h.end, Event::PowerCheck);
        self.holds.push(h);
    }

    fn update_power(&mut self, t: u64) {
        let active = |tx: bool| self.holds.iter().any(|h| h.tx == tx && h.start <= t && t < h.end);
        let p = if !self.radio_on {
            PowerState::Off
        } else if active(true) {
            PowerState::Tx
        } else if active(false) {
            PowerState::Rx
        } else {
            PowerState::Idle
        };
        if p != self.power {
            self.power = p;
            self.power_log.push((t, p));
        }
    }

    // ---------------------------------------------------------------------------------------
    // Event handling
    // ---------------------------------------------------------------------------------------

    fn handle_event(&mut self, net: &mut dyn Link) {
        let Scheduled { time: t, event, .. } = self.events.remove(0);
        self.clock = self.clock.max(t);
        match event {
            Event::Emit { bytes, rx } => self.put_on_line(t, &bytes, rx),
            Event::PowerCheck => {}
            Event::Fault(f) => self.handle_fault(t, f, net),
            Event::Attached { epoch } => {
                if epoch == self.reg_epoch && self.radio_on && self.coverage && !self.registered {
                    self.registered = true;
                    self.emit(t, "+CEREG: 1");
                }
            }
            Event::Outcome(o) => self.handle_outcome(t, o, net),
        }
        self.update_power(t);
    }

    fn put_on_line(&mut self, t: u64, bytes: &[u8], rx: bool) {
        if bytes.is_empty() {
            return;
        }
        if tracing::enabled!(target: "modem", tracing::Level::DEBUG) {
            tracing::debug!(target: "modem", t, out = %String::from_utf8_lossy(bytes).trim_end(), "modem -> firmware");
        }
        let start = t.max(self.line_free);
        let mut due = start;
        for &b in bytes {
            due = due.saturating_add(self.timing.uart_byte_ns);
            self.line.push_back((due, b));
        }
        self.line_free = due;
        if rx {
            self.add_hold(Hold { tx: false, start, end: due, epoch: None });
        }
    }

    fn handle_fault(&mut self, t: u64, f: Fault, net: &mut dyn Link) {
        tracing::debug!(target: "modem", t, fault = ?f, "fault");
        match f {
            Fault::Coverage(false) => {
                if !self.coverage {
                    return;
                }
                self.coverage = false;
                self.reg_epoch += 1;
                if self.radio_on && self.registered {
                    self.registered = false;
                    self.emit(t, "+CEREG: 2");
                }
                self.lose_client(t, 7, net);
            }
            Fault::Coverage(true) => {
                if self.coverage {
                    return;
                }
                self.coverage = true;
                if self.radio_on {
                    self.start_attach(t);
                }
            }
            Fault::ExtraLatencyMs(ms) => self.extra_latency_ns = ms.saturating_mul(NS_PER_MS),
            Fault::DropLink => self.lose_client(t, 1, net),
        }
    }

    fn start_attach(&mut self, t: u64) {
        self.reg_epoch += 1;
        let epoch = self.reg_epoch;
        self.schedule(t.saturating_add(self.timing.attach_ns), Event::Attached { epoch });
    }

    /// Closes the client because the link went away (+QMTSTAT: 0,`err` if it was open).
    fn lose_client(&mut self, t: u64, err: u8, net: &mut dyn Link) {
        let was = self.client;
        if was == ClientState::Closed {
            return;
        }
        net.close();
        self.close_client(t);
        // While opening there is nothing to report yet: the pending +QMTOPEN reports failure.
        if was != ClientState::Opening {
            self.emit(t, &format!("+QMTSTAT: 0,{err}"));
        }
    }

    /// Client state to closed; pending outcomes become failures and their power intervals end.
    fn close_client(&mut self, t: u64) {
        let old = self.link_epoch;
        for h in self.holds.iter_mut().filter(|h| h.epoch == Some(old)) {
            h.end = h.end.min(t);
            h.start = h.start.min(h.end);
        }
        self.uplink_free = self.uplink_free.min(t);
        self.link_epoch += 1;
        self.client = ClientState::Closed;
        self.discard_held();
    }

    fn handle_outcome(&mut self, t: u64, o: Outcome, net: &mut dyn Link) {
        match o {
            Outcome::Open { epoch, code } => {
                let code = if epoch != self.link_epoch {
                    if self.registered {
                        5
                    } else {
                        3
                    }
                } else {
                    self.client = if code == 0 { ClientState::Open } else { ClientState::Closed };
                    code
                };
                self.emit(t, &format!("+QMTOPEN: 0,{code}"));
            }
            Outcome::Conn { epoch, result, ret } => {
                if epoch != self.link_epoch {
                    self.emit(t, "+QMTCONN: 0,2,0");
                    return;
                }
                if result == 0 && ret == 0 {
                    self.client = ClientState::Connected;
                } else {
                    // The link was closed when the attempt failed.
                    self.close_client(t);
                }
                self.emit(t, &format!("+QMTCONN: 0,{result},{ret}"));
            }
            Outcome::Sub { epoch, msg_id, result, granted, lost } => {
                let current = epoch == self.link_epoch;
                let (result, granted) = if current { (result, granted) } else { (2, 128) };
                self.emit(t, &format!("+QMTSUB: 0,{msg_id},{result},{granted}"));
                self.counters.subscribes += 1;
                if current && lost {
                    self.lose_client(t, 1, net);
                }
            }
            Outcome::Pub { epoch, msg_id, ok, lost } => {
                let current = epoch == self.link_epoch;
                let ok = ok && current;
                if ok {
                    self.counters.publishes_ok += 1;
                } else {
                    self.counters.publishes_failed += 1;
                }
                self.emit(t, &format!("+QMTPUBEX: 0,{msg_id},{}", if ok { 0 } else { 2 }));
                if current && lost {
                    self.lose_client(t, 1, net);
                }
            }
        }
    }

    fn schedule_recv(&mut self, t: u64, m: Incoming) {
        let msg_id = if m.qos == Qos::AtMostOnce {
            0
        } else {
            let id = self.next_recv_id;
            self.next_recv_id = self.next_recv_id.checked_add(1).unwrap_or(1);
            id
        };
        let mut bytes = format!("+QMTRECV: 0,{msg_id},\"{}\",{},\"", m.topic, m.payload.len()).into_bytes();
        bytes.extend_from_slice(&m.payload);
        bytes.extend_from_slice(b"\"\r\n");
        self.schedule(t, Event::Emit { bytes, rx: true });
    }

    // ---------------------------------------------------------------------------------------
    // Commands
    // ---------------------------------------------------------------------------------------

    fn handle_byte(&mut self, t: u64, b: u8, net: &mut dyn Link) {
        let after_cr = std::mem::take(&mut self.after_cr);
        if let Some(d) = &mut self.data {
            // The `\n` of a command ended by "\r\n" is not payload.
            if after_cr && b == b'\n' && d.payload.is_empty() {
                return;
            }
            d.payload.push(b);
            if d.payload.len() >= d.len {
                if let Some(d) = self.data.take() {
                    self.publish(t, d, net);
                }
            }
            return;
        }
        match b {
            b'\r' => {
                self.after_cr = true;
                let line = std::mem::take(&mut self.cmd);
                let overflow = std::mem::take(&mut self.cmd_overflow);
                if overflow {
                    self.error(t);
                } else if !line.is_empty() {
                    if tracing::enabled!(target: "modem", tracing::Level::DEBUG) {
                        tracing::debug!(target: "modem", t, cmd = %String::from_utf8_lossy(&line), "firmware -> modem");
                    }
                    match at::parse(&line) {
                        Some(cmd) => self.execute(t, cmd, net),
                        None => self.error(t),
                    }
                }
            }
            // Line feeds are not part of commands (S4); the terminator is `\r` (S3).
            b'\n' => {}
            _ if self.cmd.len() >= MAX_LINE => self.cmd_overflow = true,
            _ => self.cmd.push(b),
        }
    }

    fn execute(&mut self, t: u64, cmd: Command, net: &mut dyn Link) {
        let a = self.answer_time(t);
        match cmd {
            Command::At => self.answer(t, "OK"),
            Command::Gsn => {
                let imei = self.imei.clone();
                self.answer(t, &format!("{imei}\r\nOK"));
            }
            Command::CeregQuery => {
                let stat = self.registration().stat();
                self.answer(t, &format!("+CEREG: 0,{stat}\r\nOK"));
            }
            Command::Cfun(on) => {
                self.answer(t, "OK");
                if on && !self.radio_on {
                    self.radio_on = true;
                    self.registered = false;
                    if self.coverage {
                        self.start_attach(t);
                    } else {
                        self.emit(a, "+CEREG: 2");
                    }
                } else if !on && self.radio_on {
                    self.radio_on = false;
                    self.registered = false;
                    self.reg_epoch += 1;
                    self.lose_client(a, 7, net);
                }
            }
            Command::QmtOpen { host, port } => {
                self.answer(t, "OK");
                if self.client != ClientState::Closed {
                    self.emit(a, "+QMTOPEN: 0,-1");
                } else if !self.radio_on || !self.registered {
                    self.emit(a, "+QMTOPEN: 0,3");
                } else {
                    let code = match net.open(&host, port) {
                        Ok(()) => 0,
                        Err(e) => {
                            tracing::info!(target: "modem", %host, port, error = %e, "QMTOPEN failed");
                            5
                        }
                    };
                    self.client = ClientState::Opening;
                    let epoch = self.link_epoch;
                    let due = self.network_op(a, 0, 1, Some(epoch));
                    self.schedule(due, Event::Outcome(Outcome::Open { epoch, code }));
                }
            }
            Command::QmtConn { client_id } => {
                self.answer(t, "OK");
                if self.client != ClientState::Open {
                    self.emit(a, "+QMTCONN: 0,2,0");
                    return;
                }
                let (result, ret) = match net.connect(&client_id) {
                    Ok(()) => (0, 0),
                    Err(e) => {
                        tracing::info!(target: "modem", %client_id, error = %e, "QMTCONN failed");
                        net.close();
                        match e {
                            LinkError::Refused { code } => (0, code),
                            _ => (2, 0),
                        }
                    }
                };
                self.client = ClientState::Connecting;
                let epoch = self.link_epoch;
                let due = self.network_op(a, client_id.len() + 12, 1, Some(epoch));
                self.schedule(due, Event::Outcome(Outcome::Conn { epoch, result, ret }));
            }
            Command::QmtSub { msg_id, topic, qos } => {
                self.answer(t, "OK");
                if self.client != ClientState::Connected {
                    self.emit(a, &format!("+QMTSUB: 0,{msg_id},2,128"));
                    return;
                }
                let qos = Qos::from_u8(qos).unwrap_or(Qos::AtMostOnce);
                let (result, granted, lost) = match net.subscribe(&topic, qos) {
                    Ok(g) => (0, g, false),
                    Err(e) => {
                        tracing::info!(target: "modem", %topic, error = %e, "QMTSUB failed");
                        (2, 128, matches!(e, LinkError::Lost) || net.status() == LinkStatus::Lost)
                    }
                };
                let epoch = self.link_epoch;
                let due = self.network_op(a, topic.len() + 5, 1, Some(epoch));
                self.schedule(due, Event::Outcome(Outcome::Sub { epoch, msg_id, result, granted, lost }));
            }
            Command::QmtPubEx { msg_id, qos, retain, topic, len } => {
                // The prompt; the payload follows (data mode) and the publish happens after it.
                self.schedule(a, Event::Emit { bytes: b">".to_vec(), rx: false });
                self.data =
                    Some(DataMode { msg_id, qos, retain, topic, len, payload: Vec::with_capacity(len) });
            }
            Command::QmtDisc => {
                self.answer(t, "OK");
                let due = if self.client != ClientState::Closed {
                    net.disconnect();
                    self.close_client(a);
                    // DISCONNECT is sent after the client is closed: its tx time is not cut.
                    self.network_op(a, 2, 0, None)
                } else {
                    a
                };
                self.emit(due, "+QMTDISC: 0,0");
            }
            Command::QmtClose => {
                self.answer(t, "OK");
                if self.client != ClientState::Closed {
                    net.close();
                    self.close_client(a);
                }
                self.emit(a, "+QMTCLOSE: 0,0");
            }
        }
    }

    /// The last payload byte of AT+QMTPUBEX arrived at `t`.
    fn publish(&mut self, t: u64, d: DataMode, net: &mut dyn Link) {
        self.answer(t, "OK");
        let a = self.answer_time(t);
        let msg_id = d.msg_id;
        if self.client != ClientState::Connected {
            self.counters.publishes_failed += 1;
            self.emit(a, &format!("+QMTPUBEX: 0,{msg_id},2"));
            return;
        }
        let qos = Qos::from_u8(d.qos).unwrap_or(Qos::AtMostOnce);
        let (ok, lost) = match net.publish(&d.topic, &d.payload, qos, d.retain) {
            Ok(()) => (true, false),
            Err(e) => {
                tracing::info!(target: "modem", topic = %d.topic, error = %e, "QMTPUBEX failed");
                (false, matches!(e, LinkError::Lost) || net.status() == LinkStatus::Lost)
            }
        };
        // PUBLISH: 2-byte topic length, 2-byte packet id for QoS > 0.
        let bytes = d.topic.len() + d.payload.len() + 2 + if d.qos > 0 { 2 } else { 0 };
        let epoch = self.link_epoch;
        let due = self.network_op(a, bytes, u64::from(d.qos), Some(epoch));
        self.schedule(due, Event::Outcome(Outcome::Pub { epoch, msg_id, ok, lost }));
    }
}

/// The IMEI of a modem nobody gave one (a test-range TAC, serial 1).
fn default_imei() -> String {
    "861234050000001".to_owned()
}
