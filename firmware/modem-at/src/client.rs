//! The client state machine.

use crate::parse::{after, int, ints, recv_header, trim, valid_arg, Line};
use crate::{Command, Config, Error, Event, Imei, QoS, Serial};

/// Publishes that can await their `+QMTPUBEX` at once.
pub const MAX_IN_FLIGHT: usize = 4;

/// Longest line kept (a longer one is counted as garbage and skipped).
const LINE_MAX: usize = 128;

/// Largest `+QMTRECV` length taken as a header; a larger one is garbage (it would otherwise
/// swallow that many bytes of whatever follows).
const RECV_MAX: usize = 65_535;

/// Bytes read per [`Modem::poll`] at most, so a chatty modem cannot starve the main loop.
const BYTES_PER_POLL: usize = 512;

/// Counters of what the client ignored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Lines not understood (or too long), and final results with no command on the line.
    pub garbage: u32,
    /// URCs for which nothing waited (e.g. a PUBACK after its timeout).
    pub stale: u32,
    /// `+QMTRECV` payloads given up after [`Config::recv_gap_ms`] of silence.
    pub recv_aborted: u32,
}

/// What waits on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Plain(Command),
    Open,
    Connect,
    Subscribe,
    Publish,
    Disconnect,
    Close,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chan {
    Idle,
    /// Waiting for `OK`/`ERROR`.
    Final {
        op: Op,
        msg_id: u16,
    },
    /// Waiting for the `>` of `AT+QMTPUBEX`.
    Prompt {
        msg_id: u16,
    },
}

/// A URC being waited for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Wait {
    msg_id: u16,
    /// Set once the command's `OK` came (until then the command's own timeout runs).
    deadline: Option<u32>,
    /// Failed (link lost): reported at the next poll.
    failed: Option<Error>,
}

impl Wait {
    const fn new(msg_id: u16) -> Self {
        Wait { msg_id, deadline: None, failed: None }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rx {
    Lines,
    /// Inside a `+QMTRECV` payload: `got` of `len` bytes, the topic in `rx[..topic_len]`.
    Payload {
        msg_id: u16,
        topic_len: usize,
        len: usize,
        got: usize,
        last_ms: u32,
    },
}

/// What the byte parser found; [`Modem::poll`] turns it into an [`Event`] borrowing the RX
/// buffer.
enum Out {
    Event(Event<'static>),
    Received { msg_id: u16, topic_len: usize, len: usize },
}

/// The AT client: owns the serial port, borrows the caller's RX and TX buffers.
///
/// The RX buffer holds the topic and payload of the last `+QMTRECV` (size it for the longest
/// topic plus 1024 bytes of payload); the TX buffer holds a publish's payload until the modem's
/// `>` prompt (size it for the longest payload the app publishes).
pub struct Modem<'b, S: Serial> {
    serial: S,
    config: Config,
    rx: &'b mut [u8],
    tx: &'b mut [u8],
    tx_len: usize,
    line: [u8; LINE_MAX],
    line_len: usize,
    line_overflow: bool,
    mode: Rx,
    chan: Chan,
    /// When the command on the line times out; `None` until the first poll after it was sent.
    chan_deadline: Option<u32>,
    open: Option<Wait>,
    connect: Option<Wait>,
    subscribe: Option<Wait>,
    disconnect: Option<Wait>,
    close: Option<Wait>,
    publishes: [Option<Wait>; MAX_IN_FLIGHT],
    next_msg_id: u16,
    now: u32,
    stats: Stats,
}

fn expired(now: u32, deadline: u32) -> bool {
    now.wrapping_sub(deadline) as i32 >= 0
}

impl<'b, S: Serial> Modem<'b, S> {
    /// A client on `serial`, with the caller's receive and transmit buffers.
    pub fn new(serial: S, config: Config, rx: &'b mut [u8], tx: &'b mut [u8]) -> Self {
        Modem {
            serial,
            config,
            rx,
            tx,
            tx_len: 0,
            line: [0; LINE_MAX],
            line_len: 0,
            line_overflow: false,
            mode: Rx::Lines,
            chan: Chan::Idle,
            chan_deadline: None,
            open: None,
            connect: None,
            subscribe: None,
            disconnect: None,
            close: None,
            publishes: [None; MAX_IN_FLIGHT],
            next_msg_id: 1,
            now: 0,
            stats: Stats::default(),
        }
    }

    /// The serial port (e.g. for a test to feed it).
    pub fn serial_mut(&mut self) -> &mut S {
        &mut self.serial
    }

    /// Gives the serial port back.
    pub fn release(self) -> S {
        self.serial
    }

    /// The timeouts in force.
    pub fn config(&self) -> Config {
        self.config
    }

    /// What was ignored so far.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// True while a command is on the line (a new one would be [`Error::Busy`]).
    pub fn is_busy(&self) -> bool {
        self.chan != Chan::Idle
    }

    /// Publishes awaiting their `+QMTPUBEX`.
    pub fn publishes_in_flight(&self) -> usize {
        self.publishes.iter().flatten().count()
    }

    /// True when nothing is on the line and no URC is awaited.
    pub fn is_idle(&self) -> bool {
        !self.is_busy()
            && self.publishes_in_flight() == 0
            && [self.open, self.connect, self.subscribe, self.disconnect, self.close]
                .iter()
                .all(Option::is_none)
    }

    /// Forgets every command, wait and partial line, without events (e.g. after the app
    /// power-cycled the modem). Counters stay.
    pub fn reset(&mut self) {
        self.chan = Chan::Idle;
        self.chan_deadline = None;
        self.open = None;
        self.connect = None;
        self.subscribe = None;
        self.disconnect = None;
        self.close = None;
        self.publishes = [None; MAX_IN_FLIGHT];
        self.mode = Rx::Lines;
        self.line_len = 0;
        self.line_overflow = false;
    }

    /// `AT`: is the modem there? Ends with [`Event::Done`].
    pub fn at(&mut self) -> Result<(), Error> {
        self.idle()?;
        self.send(Op::Plain(Command::At), 0, Line::new("AT\r\n").bytes());
        Ok(())
    }

    /// `AT+CFUN=1` / `AT+CFUN=0`: radio on / off. Ends with [`Event::Done`]; registration
    /// changes follow as [`Event::Registration`].
    pub fn set_radio(&mut self, on: bool) -> Result<(), Error> {
        self.idle()?;
        let line = Line::new(if on { "AT+CFUN=1\r\n" } else { "AT+CFUN=0\r\n" });
        self.send(Op::Plain(Command::Radio(on)), 0, line.bytes());
        Ok(())
    }

    /// `AT+CEREG?`: gives [`Event::Registration`], then [`Event::Done`].
    pub fn query_registration(&mut self) -> Result<(), Error> {
        self.idle()?;
        self.send(Op::Plain(Command::QueryRegistration), 0, Line::new("AT+CEREG?\r\n").bytes());
        Ok(())
    }

    /// `AT+GSN`: the modem's IMEI. Gives [`Event::Imei`] (if the modem answers a line of
    /// digits), then [`Event::Done`].
    pub fn query_imei(&mut self) -> Result<(), Error> {
        self.idle()?;
        self.send(Op::Plain(Command::Imei), 0, Line::new("AT+GSN\r\n").bytes());
        Ok(())
    }

    /// `AT+QMTOPEN=0,"<host>",<port>`: opens the network link to the broker. Ends with
    /// [`Event::Opened`].
    pub fn open(&mut self, host: &str, port: u16) -> Result<(), Error> {
        self.idle()?;
        Self::free(&self.open)?;
        Self::arg(host)?;
        let mut line = Line::new("AT+QMTOPEN=0,");
        line.quoted(host).push(b",").num(port.into()).push(b"\r\n");
        self.open = Some(Wait::new(0));
        self.send(Op::Open, 0, line.bytes());
        Ok(())
    }

    /// `AT+QMTCONN=0,"<client_id>"`: MQTT CONNECT. Ends with [`Event::Connected`].
    pub fn connect(&mut self, client_id: &str) -> Result<(), Error> {
        self.idle()?;
        Self::free(&self.connect)?;
        Self::arg(client_id)?;
        let mut line = Line::new("AT+QMTCONN=0,");
        line.quoted(client_id).push(b"\r\n");
        self.connect = Some(Wait::new(0));
        self.send(Op::Connect, 0, line.bytes());
        Ok(())
    }

    /// `AT+QMTSUB=0,<msg_id>,"<topic>",<qos>`; returns the message id. Ends with
    /// [`Event::Subscribed`]. One subscribe at a time.
    pub fn subscribe(&mut self, topic: &str, qos: QoS) -> Result<u16, Error> {
        self.idle()?;
        Self::free(&self.subscribe)?;
        Self::arg(topic)?;
        let msg_id = self.take_msg_id();
        let mut line = Line::new("AT+QMTSUB=0,");
        line.num(msg_id.into()).push(b",").quoted(topic).push(b",").num(qos as u32).push(b"\r\n");
        self.subscribe = Some(Wait::new(msg_id));
        self.send(Op::Subscribe, msg_id, line.bytes());
        Ok(msg_id)
    }

    /// `AT+QMTPUBEX=0,<msg_id>,<qos>,<retain>,"<topic>",<len>`, then the payload at the `>`
    /// prompt; returns the message id (0 for QoS 0, as on the wire). Ends with
    /// [`Event::Published`]. The payload is copied: the caller's slice is free at once.
    pub fn publish(&mut self, topic: &str, payload: &[u8], qos: QoS, retain: bool) -> Result<u16, Error> {
        self.idle()?;
        let slot = self.publishes.iter().position(Option::is_none).ok_or(Error::InFlight)?;
        Self::arg(topic)?;
        let dst = self.tx.get_mut(..payload.len()).ok_or(Error::TooLong)?;
        if payload.len() > usize::from(u16::MAX) {
            return Err(Error::TooLong);
        }
        dst.copy_from_slice(payload);
        self.tx_len = payload.len();
        let msg_id = if qos == QoS::AtMostOnce { 0 } else { self.take_msg_id() };
        let mut line = Line::new("AT+QMTPUBEX=0,");
        line.num(msg_id.into()).push(b",").num(qos as u32).push(b",").num(retain.into());
        line.push(b",").quoted(topic).push(b",").num(payload.len() as u32).push(b"\r\n");
        self.publishes[slot] = Some(Wait::new(msg_id));
        self.serial.write(line.bytes());
        self.chan = Chan::Prompt { msg_id };
        self.chan_deadline = None;
        Ok(msg_id)
    }

    /// `AT+QMTDISC=0`: MQTT DISCONNECT. Ends with [`Event::Disconnected`].
    pub fn disconnect(&mut self) -> Result<(), Error> {
        self.idle()?;
        Self::free(&self.disconnect)?;
        self.disconnect = Some(Wait::new(0));
        self.send(Op::Disconnect, 0, Line::new("AT+QMTDISC=0\r\n").bytes());
        Ok(())
    }

    /// `AT+QMTCLOSE=0`: closes the network link. Ends with [`Event::Closed`].
    pub fn close(&mut self) -> Result<(), Error> {
        self.idle()?;
        Self::free(&self.close)?;
        self.close = Some(Wait::new(0));
        self.send(Op::Close, 0, Line::new("AT+QMTCLOSE=0\r\n").bytes());
        Ok(())
    }

    /// Runs the client: reads what the modem sent (at most 512 bytes per call), then, once
    /// nothing more is waiting, checks the timeouts (so an answer that is already there never
    /// times out, however late the poll). Returns at most one event; call again until `None`
    /// before sleeping.
    ///
    /// A command's timeout starts at the first poll after it was sent.
    pub fn poll(&mut self, now_ms: u32) -> Option<Event<'_>> {
        self.now = now_ms;
        if self.chan != Chan::Idle && self.chan_deadline.is_none() {
            self.chan_deadline = Some(now_ms.wrapping_add(self.config.command_ms));
        }
        let mut out = None;
        let mut drained = false;
        for _ in 0..BYTES_PER_POLL {
            let Some(b) = self.serial.read_byte() else {
                drained = true;
                break;
            };
            out = self.feed(b);
            if out.is_some() {
                break;
            }
        }
        if out.is_none() && drained {
            return self.check_timeouts();
        }
        match out? {
            Out::Event(ev) => Some(ev),
            Out::Received { msg_id, topic_len, len } => {
                let topic = core::str::from_utf8(&self.rx[..topic_len]).unwrap_or("");
                Some(Event::Received { msg_id, topic, payload: &self.rx[topic_len..topic_len + len] })
            }
        }
    }

    fn idle(&self) -> Result<(), Error> {
        if self.is_busy() {
            Err(Error::Busy)
        } else {
            Ok(())
        }
    }

    fn free(wait: &Option<Wait>) -> Result<(), Error> {
        if wait.is_some() {
            Err(Error::InFlight)
        } else {
            Ok(())
        }
    }

    fn arg(s: &str) -> Result<(), Error> {
        if valid_arg(s) {
            Ok(())
        } else {
            Err(Error::InvalidArgument)
        }
    }

    /// The next message id for QoS ≥ 1: 1..=65535, skipping ids still awaited.
    fn take_msg_id(&mut self) -> u16 {
        loop {
            let id = self.next_msg_id;
            self.next_msg_id = if id == u16::MAX { 1 } else { id + 1 };
            let in_use = self.publishes.iter().flatten().chain(self.subscribe.iter()).any(|w| w.msg_id == id);
            if !in_use {
                return id;
            }
        }
    }

    fn send(&mut self, op: Op, msg_id: u16, line: &[u8]) {
        self.serial.write(line);
        self.chan = Chan::Final { op, msg_id };
        self.chan_deadline = None;
    }

    /// The wait slot of an operation with a URC (`None` for plain commands).
    fn wait_mut(&mut self, op: Op, msg_id: u16) -> Option<&mut Option<Wait>> {
        match op {
            Op::Plain(_) => None,
            Op::Open => Some(&mut self.open),
            Op::Connect => Some(&mut self.connect),
            Op::Subscribe => Some(&mut self.subscribe),
            Op::Disconnect => Some(&mut self.disconnect),
            Op::Close => Some(&mut self.close),
            Op::Publish => self.publishes.iter_mut().find(|w| w.is_some_and(|w| w.msg_id == msg_id)),
        }
    }

    /// The event that ends an operation with `result`.
    fn ending(op: Op, msg_id: u16, result: Result<(), Error>) -> Event<'static> {
        match op {
            Op::Plain(command) => Event::Done { command, result },
            Op::Open => Event::Opened(result),
            Op::Connect => Event::Connected(result),
            Op::Subscribe => Event::Subscribed { msg_id, result: result.map(|()| 0) },
            Op::Publish => Event::Published { msg_id, result },
            Op::Disconnect => Event::Disconnected(result),
            Op::Close => Event::Closed(result),
        }
    }

    /// The command on the line ended with `result` (`OK`, `ERROR` or a timeout).
    fn finish_command(&mut self, mut result: Result<(), Error>) -> Option<Event<'static>> {
        let (op, msg_id) = match core::mem::replace(&mut self.chan, Chan::Idle) {
            Chan::Idle => {
                self.stats.garbage += 1;
                return None;
            }
            Chan::Final { op, msg_id } => (op, msg_id),
            // A final result instead of the prompt (even `OK`): the payload was not sent.
            Chan::Prompt { msg_id } => {
                result = result.and(Err(Error::Rejected));
                (Op::Publish, msg_id)
            }
        };
        let (now, config) = (self.now, self.config);
        let Some(wait) = self.wait_mut(op, msg_id) else {
            return Some(Self::ending(op, msg_id, result));
        };
        match (result, wait.as_mut()) {
            // The URC came already, or the wait failed meanwhile: nothing more to do here.
            (_, None) => None,
            (Ok(()), Some(w)) => {
                let ms = match op {
                    Op::Open => config.open_ms,
                    Op::Connect => config.connect_ms,
                    Op::Subscribe => config.subscribe_ms,
                    Op::Publish => config.publish_ms,
                    _ => config.close_ms,
                };
                w.deadline = Some(now.wrapping_add(ms));
                None
            }
            (Err(e), Some(_)) => {
                *wait = None;
                Some(Self::ending(op, msg_id, Err(e)))
            }
        }
    }

    fn check_timeouts(&mut self) -> Option<Event<'static>> {
        let now = self.now;
        if let Rx::Payload { last_ms, .. } = self.mode {
            if expired(now, last_ms.wrapping_add(self.config.recv_gap_ms)) {
                self.mode = Rx::Lines;
                self.stats.recv_aborted += 1;
            }
        }
        if let Some(deadline) = self.chan_deadline {
            if self.chan != Chan::Idle && expired(now, deadline) {
                if let Some(ev) = self.finish_command(Err(Error::Timeout)) {
                    return Some(ev);
                }
            }
        }
        let ops = [Op::Open, Op::Connect, Op::Subscribe, Op::Disconnect, Op::Close];
        let singles =
            [&mut self.open, &mut self.connect, &mut self.subscribe, &mut self.disconnect, &mut self.close];
        let all = ops.into_iter().zip(singles).chain(self.publishes.iter_mut().map(|w| (Op::Publish, w)));
        for (op, slot) in all {
            let Some(w) = *slot else { continue };
            let error = match (w.failed, w.deadline) {
                (Some(e), _) => e,
                (None, Some(d)) if expired(now, d) => Error::Timeout,
                _ => continue,
            };
            *slot = None;
            return Some(Self::ending(op, w.msg_id, Err(error)));
        }
        None
    }

    /// One byte from the modem.
    fn feed(&mut self, b: u8) -> Option<Out> {
        if let Rx::Payload { msg_id, topic_len, len, got, .. } = self.mode {
            if let Some(dst) = self.rx.get_mut(topic_len + got) {
                *dst = b;
            }
            return self.payload_byte(msg_id, topic_len, len, got + 1);
        }
        if b == b'\r' || b == b'\n' {
            if self.line_len == 0 && !self.line_overflow {
                return None;
            }
            let out = if self.line_overflow {
                self.stats.garbage += 1;
                None
            } else {
                self.line_done()
            };
            self.line_len = 0;
            self.line_overflow = false;
            return out;
        }
        if self.line_len < LINE_MAX {
            self.line[self.line_len] = b;
            self.line_len += 1;
        } else {
            self.line_overflow = true;
            return None;
        }
        if b == b'>' {
            if let Chan::Prompt { msg_id } = self.chan {
                if trim(&self.line[..self.line_len]) == b">" {
                    self.line_len = 0;
                    self.serial.write(&self.tx[..self.tx_len]);
                    self.chan = Chan::Final { op: Op::Publish, msg_id };
                    self.chan_deadline = Some(self.now.wrapping_add(self.config.command_ms));
                }
            }
        } else if b == b'"' {
            if let Some((msg_id, topic, len)) = recv_header(&self.line[..self.line_len]) {
                if len <= RECV_MAX {
                    return self.start_payload(msg_id, topic.len(), len);
                }
            }
        }
        None
    }

    /// A complete `+QMTRECV` header is in the line buffer: copy the topic, read the payload.
    fn start_payload(&mut self, msg_id: u16, topic_len: usize, len: usize) -> Option<Out> {
        // The topic ends just before `",<len>,"`: find it again from the line's first quote.
        let line = &self.line[..self.line_len];
        let start = line.iter().position(|&b| b == b'"').map_or(0, |p| p + 1);
        let topic = &line[start..start + topic_len];
        let fits = topic_len + len <= self.rx.len() && core::str::from_utf8(topic).is_ok();
        if fits {
            self.rx[..topic_len].copy_from_slice(topic);
        }
        self.line_len = 0;
        // When it does not fit, the bytes go nowhere (`rx.get_mut` past the end, or a topic
        // length that makes every index miss).
        let topic_len = if fits { topic_len } else { usize::MAX / 2 };
        self.mode = Rx::Payload { msg_id, topic_len, len, got: 0, last_ms: self.now };
        if len == 0 {
            return self.payload_byte(msg_id, topic_len, 0, 0);
        }
        None
    }

    fn payload_byte(&mut self, msg_id: u16, topic_len: usize, len: usize, got: usize) -> Option<Out> {
        if got < len {
            self.mode = Rx::Payload { msg_id, topic_len, len, got, last_ms: self.now };
            return None;
        }
        // Done: the closing `"` and `\r\n` that follow form a line of their own, skipped.
        self.mode = Rx::Lines;
        if topic_len == usize::MAX / 2 {
            Some(Out::Event(Event::ReceiveTooLong { msg_id, len }))
        } else {
            Some(Out::Received { msg_id, topic_len, len })
        }
    }

    /// A complete line (without its `\r\n`).
    fn line_done(&mut self) -> Option<Out> {
        let line = trim(&self.line[..self.line_len]);
        let ev = if line.is_empty() {
            // Spaces only (e.g. what follows a `> ` prompt).
            None
        } else if line == b"OK" {
            self.finish_command(Ok(()))
        } else if line == b"ERROR" || line.starts_with(b"+CME ERROR") || line.starts_with(b"+CMS ERROR") {
            self.finish_command(Err(Error::Rejected))
        } else if line == b"\"" || line == b">" {
            // The end of a +QMTRECV payload; a prompt nobody waits for.
            None
        } else if line.starts_with(b"+") {
            self.urc()
        } else if let (Chan::Final { op: Op::Plain(Command::Imei), .. }, Some(imei)) =
            (self.chan, Imei::from_digits(line))
        {
            // The information line of AT+GSN: only while it is on the line.
            Some(Event::Imei(imei))
        } else {
            self.stats.garbage += 1;
            None
        };
        ev.map(Out::Event)
    }

    /// A line starting with `+`.
    fn urc(&mut self) -> Option<Event<'static>> {
        let mut line = [0u8; LINE_MAX];
        let n = self.line_len;
        line[..n].copy_from_slice(&self.line[..n]);
        let line = trim(&line[..n]);
        if let Some(rest) = after(line, b"+CEREG:") {
            // "+CEREG: <stat>" (URC) or "+CEREG: <n>,<stat>[,...]" (answer to AT+CEREG?).
            let mut fields = rest.split(|&b| b == b',');
            let first = fields.next().and_then(int);
            let stat = match fields.next() {
                None => first,
                Some(second) => first.and(int(second)),
            };
            return match stat.and_then(|s| u8::try_from(s).ok()) {
                Some(s) => Some(Event::Registration(s)),
                None => self.garbage(),
            };
        }
        if let Some(rest) = after(line, b"+QMTSTAT:") {
            let Some([_, err]) = ints::<2>(rest) else { return self.garbage() };
            let failed = Some(Error::LinkLost { err });
            let singles = [
                &mut self.open,
                &mut self.connect,
                &mut self.subscribe,
                &mut self.disconnect,
                &mut self.close,
            ];
            for w in singles.into_iter().chain(self.publishes.iter_mut()).flatten() {
                w.failed = failed;
            }
            return Some(Event::LinkLost { err });
        }
        if let Some(rest) = after(line, b"+QMTOPEN:") {
            let Some([_, result]) = ints::<2>(rest) else { return self.garbage() };
            return self.urc_result(Op::Open, 0, code(result));
        }
        if let Some(rest) = after(line, b"+QMTCONN:") {
            let Some([_, result]) = ints::<2>(rest) else { return self.garbage() };
            let ret_code = ints::<3>(rest).map_or(0, |[_, _, r]| r);
            return match (result, ret_code) {
                (1, _) => None, // retransmission: not final
                (0, 0) => self.urc_result(Op::Connect, 0, Ok(())),
                (0, ret_code) => self.urc_result(Op::Connect, 0, Err(Error::Refused { ret_code })),
                (code, _) => self.urc_result(Op::Connect, 0, Err(Error::Failed { code })),
            };
        }
        if let Some(rest) = after(line, b"+QMTSUB:") {
            let Some([_, id, result]) = ints::<3>(rest) else { return self.garbage() };
            let Ok(msg_id) = u16::try_from(id) else { return self.garbage() };
            let value = ints::<4>(rest).map_or(0, |[_, _, _, v]| v);
            if result == 1 {
                return None; // retransmission
            }
            let granted = match (result, value) {
                (0, 0..=2) => Ok(value as u8),
                (0, code) => Err(Error::Failed { code }),
                (code, _) => Err(Error::Failed { code }),
            };
            return match self.subscribe {
                Some(w) if w.msg_id == msg_id => {
                    self.subscribe = None;
                    Some(Event::Subscribed { msg_id, result: granted })
                }
                _ => self.stale(),
            };
        }
        if let Some(rest) = after(line, b"+QMTPUBEX:") {
            let Some([_, id, result]) = ints::<3>(rest) else { return self.garbage() };
            let Ok(msg_id) = u16::try_from(id) else { return self.garbage() };
            if result == 1 {
                return None; // retransmission
            }
            return self.urc_result(Op::Publish, msg_id, code(result));
        }
        if let Some(rest) = after(line, b"+QMTDISC:") {
            let Some([_, result]) = ints::<2>(rest) else { return self.garbage() };
            return self.urc_result(Op::Disconnect, 0, code(result));
        }
        if let Some(rest) = after(line, b"+QMTCLOSE:") {
            let Some([_, result]) = ints::<2>(rest) else { return self.garbage() };
            return self.urc_result(Op::Close, 0, code(result));
        }
        self.garbage()
    }

    /// The URC that ends `op`: reported only if something waits for it.
    fn urc_result(&mut self, op: Op, msg_id: u16, result: Result<(), Error>) -> Option<Event<'static>> {
        match self.wait_mut(op, msg_id) {
            Some(slot @ Some(_)) => {
                *slot = None;
                Some(Self::ending(op, msg_id, result))
            }
            _ => self.stale(),
        }
    }

    fn garbage(&mut self) -> Option<Event<'static>> {
        self.stats.garbage += 1;
        None
    }

    fn stale(&mut self) -> Option<Event<'static>> {
        self.stats.stale += 1;
        None
    }
}

/// A URC `<result>`: 0 is success.
fn code(result: i32) -> Result<(), Error> {
    if result == 0 {
        Ok(())
    } else {
        Err(Error::Failed { code: result })
    }
}
