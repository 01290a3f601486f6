//! A fake serial port and a rig around the client, for the host tests.
#![allow(dead_code)]

use std::collections::VecDeque;

use modem_at::{Command, Config, Error, Event, Modem, Serial};

/// A serial port whose input the test scripts and whose output it inspects.
#[derive(Default)]
pub struct FakePort {
    /// Everything the client wrote and the test did not take yet.
    pub written: Vec<u8>,
    /// Bytes the modem "sent", not yet read by the client.
    pub rx: VecDeque<u8>,
}

impl Serial for FakePort {
    fn write(&mut self, bytes: &[u8]) {
        self.written.extend_from_slice(bytes);
    }

    fn read_byte(&mut self) -> Option<u8> {
        self.rx.pop_front()
    }
}

/// An [`Event`] with owned data, to compare in tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Done(Command, Result<(), Error>),
    Registration(u8),
    Imei(String),
    Opened(Result<(), Error>),
    Connected(Result<(), Error>),
    Subscribed(u16, Result<u8, Error>),
    Published(u16, Result<(), Error>),
    Received(u16, String, Vec<u8>),
    ReceiveTooLong(u16, usize),
    LinkLost(i32),
    Disconnected(Result<(), Error>),
    Closed(Result<(), Error>),
}

pub fn own(e: Event<'_>) -> Ev {
    match e {
        Event::Done { command, result } => Ev::Done(command, result),
        Event::Registration(s) => Ev::Registration(s),
        Event::Imei(i) => Ev::Imei(i.as_str().to_string()),
        Event::Opened(r) => Ev::Opened(r),
        Event::Connected(r) => Ev::Connected(r),
        Event::Subscribed { msg_id, result } => Ev::Subscribed(msg_id, result),
        Event::Published { msg_id, result } => Ev::Published(msg_id, result),
        Event::Received { msg_id, topic, payload } => {
            Ev::Received(msg_id, topic.to_string(), payload.to_vec())
        }
        Event::ReceiveTooLong { msg_id, len } => Ev::ReceiveTooLong(msg_id, len),
        Event::LinkLost { err } => Ev::LinkLost(err),
        Event::Disconnected(r) => Ev::Disconnected(r),
        Event::Closed(r) => Ev::Closed(r),
    }
}

pub type M = Modem<'static, FakePort>;

/// The client on a fake port, with a clock.
pub struct Rig {
    pub m: M,
    pub now: u32,
}

pub fn config() -> Config {
    Config {
        command_ms: 300,
        open_ms: 5_000,
        connect_ms: 6_000,
        subscribe_ms: 7_000,
        publish_ms: 8_000,
        close_ms: 4_000,
        recv_gap_ms: 1_000,
    }
}

impl Rig {
    pub fn new() -> Self {
        Rig::with_buffers(1200, 1100)
    }

    pub fn with_buffers(rx: usize, tx: usize) -> Self {
        let rx = Box::leak(vec![0u8; rx].into_boxed_slice());
        let tx = Box::leak(vec![0u8; tx].into_boxed_slice());
        Rig { m: Modem::new(FakePort::default(), config(), rx, tx), now: 1000 }
    }

    /// What the client wrote since the last call.
    pub fn tx(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.m.serial_mut().written)
    }

    pub fn expect_tx(&mut self, want: &[u8]) {
        let got = self.tx();
        assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.m.serial_mut().rx.extend(bytes);
    }

    /// Polls at the current time until nothing more happens.
    pub fn events(&mut self) -> Vec<Ev> {
        let mut out = Vec::new();
        for _ in 0..10_000 {
            let ev = self.m.poll(self.now).map(own);
            match ev {
                Some(e) => out.push(e),
                None if self.m.serial_mut().rx.is_empty() => return out,
                None => {}
            }
        }
        panic!("poll never settles: {out:?}");
    }

    /// Feeds `bytes` and polls.
    pub fn reply(&mut self, bytes: &[u8]) -> Vec<Ev> {
        self.feed(bytes);
        self.events()
    }

    /// Advances the clock and polls.
    pub fn advance(&mut self, ms: u32) -> Vec<Ev> {
        self.now = self.now.wrapping_add(ms);
        self.events()
    }
}
