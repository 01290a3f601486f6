//! A fake modem speaking PROTOCOL.md §1 as the virtual modem does (answers `<text>\r\n`, the
//! prompt a bare `>`, echo off), with a broker behind it that takes everything, and a rig that
//! drives a [`Net`] on it in 10 ms steps like the board's SysTick.
#![allow(dead_code)]

use std::collections::VecDeque;

use modem_at::{Config, Serial};
use telemetry::{Slot, Version};
use uplink::{Identity, Net, Note};

/// One message the fake broker got.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Published {
    /// When (the fake's clock).
    pub at: u32,
    pub msg_id: u16,
    pub qos: u8,
    pub retain: bool,
    pub topic: String,
    pub payload: String,
}

enum Rx {
    Line,
    Payload { msg_id: u16, qos: u8, retain: bool, topic: String, len: usize, got: Vec<u8> },
}

/// The fake modem (and broker).
pub struct FakeModem {
    /// The fake's clock: answers are due `latency_ms` after the command.
    pub now: u32,
    pub latency_ms: u32,
    /// False: nothing answers (a board without a modem); written bytes still go to `log`.
    pub present: bool,
    /// The answer to `AT+GSN` (`None`: `ERROR`).
    pub imei: Option<String>,
    pub coverage: bool,
    pub broker_up: bool,
    /// PUBACKs are held back in `held` instead of being sent.
    pub hold_pubacks: bool,
    pub held: Vec<u16>,
    pub radio: bool,
    pub open: bool,
    pub connected: bool,
    pub client_id: Option<String>,
    pub subscriptions: Vec<String>,
    /// Every command line received (without `\r\n`), with its time.
    pub log: Vec<(u32, String)>,
    pub published: Vec<Published>,
    line: Vec<u8>,
    rx: Rx,
    out: VecDeque<(u32, u8)>,
    next_recv_id: u16,
    after_cr: bool,
}

impl FakeModem {
    pub fn new(imei: &str) -> Self {
        FakeModem {
            now: 0,
            latency_ms: 0,
            present: true,
            imei: Some(imei.to_string()),
            coverage: true,
            broker_up: true,
            hold_pubacks: false,
            held: vec![],
            radio: false,
            open: false,
            connected: false,
            client_id: None,
            subscriptions: vec![],
            log: vec![],
            published: vec![],
            line: vec![],
            rx: Rx::Line,
            out: VecDeque::new(),
            next_recv_id: 1,
            after_cr: false,
        }
    }

    pub fn absent() -> Self {
        FakeModem { present: false, ..FakeModem::new("866425030012345") }
    }

    /// Queues `text\r\n` for the device.
    pub fn say(&mut self, text: &str) {
        let due = self.now + self.latency_ms;
        for b in text.bytes().chain(*b"\r\n") {
            self.out.push_back((due, b));
        }
    }

    fn say_raw(&mut self, bytes: &[u8]) {
        let due = self.now + self.latency_ms;
        self.out.extend(bytes.iter().map(|&b| (due, b)));
    }

    /// Bytes due and not read yet.
    pub fn pending(&self) -> bool {
        self.out.front().is_some_and(|&(due, _)| due <= self.now)
    }

    /// Only the command names of the log, e.g. `AT+QMTOPEN`.
    pub fn commands(&self) -> Vec<String> {
        self.log.iter().map(|(_, l)| l.split('=').next().unwrap().to_string()).collect()
    }

    /// Lines of the log starting with `prefix`, with their times.
    pub fn lines(&self, prefix: &str) -> Vec<(u32, String)> {
        self.log.iter().filter(|(_, l)| l.starts_with(prefix)).cloned().collect()
    }

    /// A `+QMTRECV` of `payload` on `topic`.
    pub fn deliver(&mut self, topic: &str, payload: &str) {
        let id = self.next_recv_id;
        self.next_recv_id += 1;
        let urc = format!("+QMTRECV: 0,{id},\"{topic}\",{},\"{payload}\"\r\n", payload.len());
        self.say_raw(urc.as_bytes());
    }

    /// The broker closes the connection (`+QMTSTAT: 0,<err>`).
    pub fn drop_link(&mut self, err: i32) {
        if self.open {
            self.open = false;
            self.connected = false;
            self.say(&format!("+QMTSTAT: 0,{err}"));
        }
    }

    pub fn set_coverage(&mut self, on: bool) {
        self.coverage = on;
        if self.radio {
            self.say(if on { "+CEREG: 1" } else { "+CEREG: 2" });
        }
        if !on {
            self.drop_link(7);
        }
    }

    /// The modem restarts: radio off, no client, nothing said (the device notices when its
    /// commands fail).
    pub fn restart(&mut self) {
        self.radio = false;
        self.open = false;
        self.connected = false;
        self.out.clear();
        self.rx = Rx::Line;
        self.line.clear();
    }

    /// Sends the held PUBACKs.
    pub fn release_pubacks(&mut self) {
        for id in std::mem::take(&mut self.held) {
            self.say(&format!("+QMTPUBEX: 0,{id},0"));
        }
    }

    fn command(&mut self, line: &str) {
        self.log.push((self.now, line.to_string()));
        if !self.present {
            return;
        }
        let (name, args) = line.split_once('=').unwrap_or((line, ""));
        let args: Vec<&str> = if args.is_empty() { vec![] } else { args.split(',').collect() };
        let unq = |s: &str| s.trim_matches('"').to_string();
        match name {
            "AT" => self.say("OK"),
            "AT+GSN" => match self.imei.clone() {
                Some(i) => {
                    self.say(&i);
                    self.say("OK");
                }
                None => self.say("ERROR"),
            },
            // As the virtual modem: on, from off, registers (+CEREG: 1, here at once) or
            // searches (+CEREG: 2); off says nothing but drops an open client (+QMTSTAT: 0,7);
            // the same state again is just OK.
            "AT+CFUN" => match args[..] {
                ["1"] => {
                    self.say("OK");
                    if !self.radio {
                        self.radio = true;
                        self.say(if self.coverage { "+CEREG: 1" } else { "+CEREG: 2" });
                    }
                }
                ["0"] => {
                    self.say("OK");
                    if self.radio {
                        self.radio = false;
                        self.drop_link(7);
                    }
                }
                _ => self.say("ERROR"),
            },
            "AT+CEREG?" => {
                let stat = if !self.radio {
                    0
                } else if self.coverage {
                    1
                } else {
                    2
                };
                self.say(&format!("+CEREG: 0,{stat}"));
                self.say("OK");
            }
            "AT+QMTOPEN" => {
                self.say("OK");
                let result = if self.open {
                    -1
                } else if !self.radio || !self.coverage {
                    3
                } else if !self.broker_up {
                    5
                } else {
                    self.open = true;
                    0
                };
                self.say(&format!("+QMTOPEN: 0,{result}"));
            }
            "AT+QMTCONN" => {
                self.say("OK");
                if self.open {
                    self.connected = true;
                    self.client_id = Some(unq(args[1]));
                    self.say("+QMTCONN: 0,0,0");
                } else {
                    self.say("+QMTCONN: 0,2,0");
                }
            }
            "AT+QMTSUB" => {
                self.say("OK");
                self.subscriptions.push(unq(args[2]));
                self.say(&format!("+QMTSUB: 0,{},0,{}", args[1], args[3]));
            }
            "AT+QMTPUBEX" => {
                self.say_raw(b">");
                self.rx = Rx::Payload {
                    msg_id: args[1].parse().unwrap(),
                    qos: args[2].parse().unwrap(),
                    retain: args[3] == "1",
                    topic: unq(args[4]),
                    len: args[5].parse().unwrap(),
                    got: vec![],
                };
            }
            "AT+QMTCLOSE" | "AT+QMTDISC" => {
                self.say("OK");
                self.open = false;
                self.connected = false;
                self.say(&format!("+{}: 0,0", &name[3..]));
            }
            _ => self.say("ERROR"),
        }
    }

    fn payload_done(&mut self, msg_id: u16, qos: u8, retain: bool, topic: String, got: Vec<u8>) {
        self.say("OK");
        let payload = String::from_utf8(got).unwrap();
        if self.connected {
            self.published.push(Published { at: self.now, msg_id, qos, retain, topic, payload });
            if self.hold_pubacks {
                self.held.push(msg_id);
            } else {
                self.say(&format!("+QMTPUBEX: 0,{msg_id},0"));
            }
        } else {
            self.say(&format!("+QMTPUBEX: 0,{msg_id},2"));
        }
    }
}

impl Serial for FakeModem {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            let after_cr = std::mem::take(&mut self.after_cr);
            match &mut self.rx {
                Rx::Payload { got, len, .. } => {
                    // As the virtual modem: the `\n` of a command ended by "\r\n" is not payload.
                    if after_cr && b == b'\n' && got.is_empty() {
                        continue;
                    }
                    got.push(b);
                    if got.len() == *len {
                        let Rx::Payload { msg_id, qos, retain, topic, got, .. } =
                            std::mem::replace(&mut self.rx, Rx::Line)
                        else {
                            unreachable!()
                        };
                        if self.present {
                            self.payload_done(msg_id, qos, retain, topic, got);
                        }
                    }
                }
                Rx::Line => match b {
                    b'\r' => {
                        self.after_cr = true;
                        let line = String::from_utf8(std::mem::take(&mut self.line)).unwrap();
                        self.command(&line);
                    }
                    b'\n' => {}
                    _ => self.line.push(b),
                },
            }
        }
    }

    fn read_byte(&mut self) -> Option<u8> {
        match self.out.front() {
            Some(&(due, b)) if due <= self.now => {
                self.out.pop_front();
                Some(b)
            }
            _ => None,
        }
    }
}

pub const IMEI: &str = "866425030012345";
pub const DEV: &str = "d866425030012345";
pub const BOOT: u32 = 7;

pub fn identity(boot: u32) -> Identity {
    Identity { boot, slot: Slot::A, version: Version::new(1, 2, 3, 0) }
}

/// The app's main loop, without the hardware: 10 ms ticks, a reading every `period_ms`.
pub struct Rig {
    pub net: Net<'static, FakeModem>,
    pub now: u32,
    pub notes: Vec<(u32, Note)>,
}

impl Rig {
    pub fn new(fake: FakeModem) -> Rig {
        Rig::with(fake, BOOT)
    }

    pub fn with(fake: FakeModem, boot: u32) -> Rig {
        let rx = Box::leak(vec![0u8; uplink::RX_BUFFER].into_boxed_slice());
        let tx = Box::leak(vec![0u8; uplink::TX_BUFFER].into_boxed_slice());
        let net = Net::new(fake, rx, tx, Config::default(), identity(boot), 1, 0);
        Rig { net, now: 0, notes: vec![] }
    }

    pub fn fake(&mut self) -> &mut FakeModem {
        self.net.serial_mut()
    }

    /// Polls at the current time until the machine and the fake are quiet.
    pub fn poll(&mut self) {
        let now = self.now;
        self.fake().now = now;
        for _ in 0..10_000 {
            match self.net.poll(now) {
                Some(n) => self.notes.push((now, n)),
                None if !self.fake().pending() => return,
                None => {}
            }
        }
        panic!("poll never settles");
    }

    /// Runs `ms` of time in 10 ms ticks.
    pub fn run(&mut self, ms: u32) {
        self.poll();
        let end = self.now + ms;
        while self.now < end {
            self.now += 10;
            self.poll();
        }
    }

    /// Runs `n` readings of `value(i)` at 1 s, the time between them in 10 ms ticks.
    pub fn readings(&mut self, n: u32, value: impl Fn(u32) -> i32) {
        for i in 0..n {
            self.run(1000);
            let v = value(i);
            self.net.reading(self.now, v);
            self.poll();
        }
    }

    /// Runs until `done` or `limit_ms` passed (then panics).
    pub fn run_until(&mut self, limit_ms: u32, mut done: impl FnMut(&mut Rig) -> bool) {
        let end = self.now + limit_ms;
        self.poll();
        while !done(self) {
            assert!(self.now < end, "not done after {limit_ms} ms; notes {:?}", self.notes);
            self.now += 10;
            self.poll();
        }
    }

    pub fn notes(&self) -> Vec<Note> {
        self.notes.iter().map(|(_, n)| *n).collect()
    }

    /// Delivers a down message on the device's down topic.
    pub fn down(&mut self, payload: &str) {
        let topic = format!("twinbed/{DEV}/down");
        self.fake().deliver(&topic, payload);
        self.poll();
    }

    /// The twin: acks every record published so far (the highest seq whose predecessors were
    /// all published or declared dropped).
    pub fn ack_published(&mut self) {
        let boot = self.net.identity().boot;
        let mut have = std::collections::BTreeSet::new();
        for p in &self.fake().published {
            if p.topic.ends_with("/state") {
                continue;
            }
            have.insert(field(&p.payload, "seq").unwrap());
            if p.payload.contains("\"kind\":\"dropped\"") {
                for s in field(&p.payload, "from").unwrap()..=field(&p.payload, "to").unwrap() {
                    have.insert(s);
                }
            }
        }
        let mut mark = 0;
        while have.contains(&(mark + 1)) {
            mark += 1;
        }
        if mark > 0 {
            self.down(&format!("{{\"type\":\"ack\",\"boot\":{boot},\"seq\":{mark}}}"));
        }
    }

    /// The seqs published (records only), in order.
    pub fn published_seqs(&mut self) -> Vec<u64> {
        self.fake()
            .published
            .iter()
            .filter(|p| !p.topic.ends_with("/state"))
            .map(|p| field(&p.payload, "seq").unwrap())
            .collect()
    }
}

/// An unsigned integer field of a JSON payload (the device's payloads are flat but for
/// `reported`, and have no spaces).
pub fn field(payload: &str, key: &str) -> Option<u64> {
    let at = payload.find(&format!("\"{key}\":"))? + key.len() + 3;
    let digits: String = payload[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}
