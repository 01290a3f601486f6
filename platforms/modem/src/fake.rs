//! A scripted [`Link`] for the crate's unit tests: records every call, answers from queues of
//! scripted results (success when a queue is empty).

use crate::link::{Incoming, Link, LinkCounters, LinkError, LinkStatus, Qos};
use std::collections::VecDeque;

#[derive(Default)]
pub(crate) struct FakeLink {
    /// Every call, as text ("open h:1883", "publish t 1 false 5", ...).
    pub calls: Vec<String>,
    pub open: VecDeque<Result<(), LinkError>>,
    pub connect: VecDeque<Result<(), LinkError>>,
    pub subscribe: VecDeque<Result<u8, LinkError>>,
    pub publish: VecDeque<Result<(), LinkError>>,
    /// Messages "received from the broker", handed out by `take_incoming`.
    pub incoming: Vec<Incoming>,
    /// Messages the broker sends right after the next successful `connect`.
    pub on_connect: Vec<Incoming>,
    pub status: Option<LinkStatus>,
    pub counters: LinkCounters,
}

impl FakeLink {
    pub fn new() -> Self {
        Self::default()
    }

    /// The broker sends a message.
    pub fn receive(&mut self, topic: &str, payload: &[u8], qos: Qos) {
        self.counters.received += 1;
        self.incoming.push(Incoming { topic: topic.into(), payload: payload.to_vec(), qos, retain: false });
    }
}

impl Link for FakeLink {
    fn open(&mut self, host: &str, port: u16) -> Result<(), LinkError> {
        self.calls.push(format!("open {host}:{port}"));
        let r = self.open.pop_front().unwrap_or(Ok(()));
        if r.is_ok() {
            self.status = Some(LinkStatus::Open);
        }
        r
    }

    fn connect(&mut self, client_id: &str) -> Result<(), LinkError> {
        self.calls.push(format!("connect {client_id}"));
        let r = self.connect.pop_front().unwrap_or(Ok(()));
        if r.is_ok() {
            self.status = Some(LinkStatus::Connected);
            self.counters.received += self.on_connect.len() as u64;
            self.incoming.append(&mut self.on_connect);
        }
        r
    }

    fn subscribe(&mut self, topic: &str, qos: Qos) -> Result<u8, LinkError> {
        self.calls.push(format!("subscribe {topic} {}", qos.as_u8()));
        self.subscribe.pop_front().unwrap_or(Ok(qos.as_u8()))
    }

    fn publish(&mut self, topic: &str, payload: &[u8], qos: Qos, retain: bool) -> Result<(), LinkError> {
        self.calls.push(format!(
            "publish {topic} {} {retain} {}",
            qos.as_u8(),
            String::from_utf8_lossy(payload)
        ));
        let r = self.publish.pop_front().unwrap_or(Ok(()));
        if r.is_ok() {
            self.counters.published += 1;
        }
        r
    }

    fn disconnect(&mut self) {
        self.calls.push("disconnect".into());
        self.status = Some(LinkStatus::Closed);
    }

    fn close(&mut self) {
        self.calls.push("close".into());
        self.status = Some(LinkStatus::Closed);
    }

    fn take_incoming(&mut self) -> Vec<Incoming> {
        std::mem::take(&mut self.incoming)
    }

    fn status(&self) -> LinkStatus {
        self.status.unwrap_or(LinkStatus::Closed)
    }

    fn counters(&self) -> LinkCounters {
        self.counters
    }
}
