//! The network side of the modem: the [`Link`] trait, and the types it speaks.
//!
//! A link performs one MQTT operation per call and blocks until the operation is answered (or a
//! real-time timeout passes). The [`Modem`](crate::Modem) calls it only while it processes an
//! event at a known virtual time, so the engine is frozen while the link waits and the answer is
//! placed on the virtual timeline by the modem's [`Timing`](crate::Timing), not by the host's
//! network speed.
//!
//! Implementations: [`MqttLink`](crate::MqttLink) (real, rumqttc) and, for the crate's own unit
//! tests, a scripted fake.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// MQTT quality of service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Qos {
    /// QoS 0: at most once (no acknowledgement).
    AtMostOnce = 0,
    /// QoS 1: at least once (PUBACK).
    AtLeastOnce = 1,
    /// QoS 2: exactly once (PUBREC/PUBREL/PUBCOMP).
    ExactlyOnce = 2,
}

impl Qos {
    /// The QoS for the AT argument value `n` (0, 1 or 2).
    pub fn from_u8(n: u8) -> Option<Self> {
        match n {
            0 => Some(Self::AtMostOnce),
            1 => Some(Self::AtLeastOnce),
            2 => Some(Self::ExactlyOnce),
            _ => None,
        }
    }

    /// The numeric value (0, 1 or 2).
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// A message the broker sent on a subscribed topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incoming {
    /// Topic it was published on.
    pub topic: String,
    /// Payload bytes.
    pub payload: Vec<u8>,
    /// QoS it was delivered with.
    pub qos: Qos,
    /// Retain flag as delivered.
    pub retain: bool,
}

/// The state of the link as the network side sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkStatus {
    /// Nothing open.
    Closed,
    /// `open` succeeded; no MQTT session yet.
    Open,
    /// An MQTT session is up (CONNACK accepted).
    Connected,
    /// The session went away without being asked to (broker down, connection reset, keep-alive
    /// failure). Stays so until the next `close` or `open`.
    Lost,
}

/// Real-time counters of a link, for runners that wait for network quiescence.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkCounters {
    /// Publishes completed: PUBACK (QoS 1) or PUBCOMP (QoS 2) received, or written to the
    /// socket (QoS 0).
    pub published: u64,
    /// Messages received from the broker (on subscribed topics), whether or not the modem has
    /// taken them yet.
    pub received: u64,
}

/// Why a link operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LinkError {
    /// The host name does not resolve to any address.
    #[error("cannot resolve host {host:?}")]
    Resolve {
        /// Host name as given.
        host: String,
    },
    /// No TCP connection could be made (connection refused, unreachable, ...).
    #[error("cannot connect to {host}:{port}")]
    Unreachable {
        /// Host name as given.
        host: String,
        /// TCP port.
        port: u16,
        /// The last connection error.
        #[source]
        source: std::io::Error,
    },
    /// No answer within the link's real-time timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The broker answered CONNECT with a refusal (MQTT 3.1.1 CONNACK return code 1..=5).
    #[error("the broker refused the connection (CONNACK return code {code})")]
    Refused {
        /// CONNACK return code.
        code: u8,
    },
    /// The connection went away (closed by the peer, reset, keep-alive timeout).
    #[error("the connection was lost")]
    Lost,
    /// The operation needs an open link / a session and there is none.
    #[error("the link is not open or not connected")]
    NotConnected,
    /// The operation's arguments were refused before anything was sent (e.g. an MQTT client
    /// library rejecting a topic).
    #[error("invalid argument for {operation}")]
    Invalid {
        /// Which operation ("publish", "subscribe", "connect").
        operation: &'static str,
    },
}

/// The network side of the modem: one MQTT client, operations that block until answered.
///
/// Every call is made by the modem at a known virtual time while the engine is frozen; a call
/// must return within the implementation's real-time timeout.
pub trait Link {
    /// Opens the network connection to the broker (AT+QMTOPEN). Fails when the broker cannot be
    /// reached.
    fn open(&mut self, host: &str, port: u16) -> Result<(), LinkError>;
    /// Starts the MQTT session on the opened link (AT+QMTCONN) and waits for CONNACK.
    fn connect(&mut self, client_id: &str) -> Result<(), LinkError>;
    /// Subscribes to one topic filter and waits for SUBACK. Returns the granted QoS (0..=2) or
    /// 0x80 when the broker refused the subscription.
    fn subscribe(&mut self, topic: &str, qos: Qos) -> Result<u8, LinkError>;
    /// Publishes and waits until the message is acknowledged (QoS 1: PUBACK, QoS 2: PUBCOMP)
    /// or written (QoS 0).
    fn publish(&mut self, topic: &str, payload: &[u8], qos: Qos, retain: bool) -> Result<(), LinkError>;
    /// Ends the session politely (MQTT DISCONNECT) and closes the connection. Never fails: a
    /// link that is already gone is simply closed.
    fn disconnect(&mut self);
    /// Closes the connection at once, without DISCONNECT (coverage loss, injected drop,
    /// AT+QMTCLOSE). Idempotent.
    fn close(&mut self);
    /// Takes the messages received from the broker since the last call, oldest first.
    fn take_incoming(&mut self) -> Vec<Incoming>;
    /// The link's current status.
    fn status(&self) -> LinkStatus;
    /// Real-time counters (see [`LinkCounters`]).
    fn counters(&self) -> LinkCounters;
}
