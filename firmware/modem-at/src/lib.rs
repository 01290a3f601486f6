//! A non-blocking AT client for the Quectel-style MQTT subset of twinbed's modem
//! (`twin/PROTOCOL.md` §1, after Quectel's BG96/BG95 "MQTT Application Note"): `no_std`, no
//! allocation, no panics on any input from the modem, host-tested against a scripted fake port.
//!
//! The app owns a [`Modem`] and calls [`Modem::poll`] from its main loop with the time in
//! milliseconds; commands ([`Modem::open`], [`Modem::connect`], [`Modem::subscribe`],
//! [`Modem::publish`], ...) only write a command line and return; their outcome comes out of
//! `poll` later as an [`Event`], as do the modem's unsolicited result codes (URCs): received
//! messages, link loss, registration changes. Every wait has a timeout ([`Config`]).
//!
//! # The serial port: a trait of our own
//!
//! [`Serial`] has two methods: a blocking `write(&[u8])` and a non-blocking
//! `read_byte() -> Option<u8>`. That is exactly what a UART driver without DMA has (the CMSDK
//! UART of the mps2-an385: a TX-full and an RX-full status bit), and what a poll loop needs.
//! `embedded-io`'s `Read` blocks until at least one byte arrives, so a poll loop would need
//! `ReadReady` as well, plus error types and partial writes that a UART cannot produce; an
//! adapter from an `embedded-io` port is five lines in the app (`read_ready()` then a one-byte
//! `read`), so the crate does not depend on it.
//!
//! # Why not `atat`
//!
//! DESIGN.md suggests `atat`; version 0.25 was evaluated (its source) against this modem:
//!
//! - the `>` prompt: supported (`DigestResult::Prompt`);
//! - `+QMTRECV: 0,<id>,"<topic>",<len>,"<payload>"`, whose payload may hold `\r\n` and `OK`
//!   and is delimited only by `<len>`: only through a hand-written URC parser over atat's
//!   ingress buffer (which must then hold the whole message, 1 KiB and more, at once); atat's
//!   own digester is line-based;
//! - no alloc: yes (heapless);
//! - but its clients are blocking (busy-waiting on `embassy-time`) or `async` (embassy): both
//!   need an `embassy-time` driver and the blocking one stalls the main loop for a whole
//!   command; the app has a plain main loop, a millisecond clock and deep sleep between
//!   samples, and wants to sample while a publish is outstanding. There is no poll-style API;
//! - its weight: `nom`, `serde_at` and derive macros, `heapless`, `embassy-sync`,
//!   `embassy-time`, `futures`, for ten commands, in a slot where code size counts.
//!
//! (Building it with toolchain 1.95 was not tried: the points above decided it.) So this crate
//! is a small line parser and state machine instead: about as much code as the atat glue
//! (command structs, URC enum, custom parser) would have been.
//!
//! # What the client does
//!
//! - One command on the line at a time ([`Modem::is_busy`]; a new one while busy is
//!   [`Error::Busy`]). `OK` / `ERROR` / `+CME ERROR: <n>` end it; a command without either
//!   within [`Config::command_ms`] ends with [`Error::Timeout`].
//! - `open`, `connect`, `subscribe`, `publish`, `disconnect` and `close` then wait for their URC
//!   (each with its own timeout). Their waits do not hold the command line: up to
//!   [`MAX_IN_FLIGHT`] publishes can await their PUBACK while other commands go on.
//! - `AT+GSN` ([`Modem::query_imei`]): its information line (bare digits, as Quectel answers)
//!   is taken only while `AT+GSN` is on the line and comes out as [`Event::Imei`] before the
//!   `Done`; digits at any other time are garbage.
//! - `AT+QMTPUBEX`: the payload is copied into the caller's TX buffer at `publish` and written
//!   when the `>` prompt arrives.
//! - `+QMTRECV`: the header is parsed as its bytes arrive; the next `<len>` bytes are the
//!   payload, whatever they hold, copied into the caller's RX buffer after the topic.
//! - `+QMTSTAT` (link lost) fails every open wait with [`Error::LinkLost`].
//! - URCs for which no wait exists (e.g. a late PUBACK after its timeout) are counted in
//!   [`Stats::stale`] and otherwise ignored; lines not understood in [`Stats::garbage`].
//!
//! A command's timeout counts from the first [`Modem::poll`] after it; a URC wait's from the
//! poll that read the command's `OK`. Timeouts are checked only when no byte is waiting, so an
//! answer already received never times out.
//!
//! Not handled (limitations of AT over one UART that the protocol does not need): a final
//! result arriving after its command timed out is taken as stale, but one arriving after a
//! *new* command was sent is taken as that command's; after a prompt timeout the modem may
//! still be waiting for payload bytes. After a timeout, the app should resynchronise (`AT`)
//! or power-cycle the modem ([`Modem::reset`] forgets all state).
#![cfg_attr(not(test), no_std)]

mod client;
mod parse;

pub use client::{Modem, Stats, MAX_IN_FLIGHT};

/// A byte-level serial port (see the crate docs for why not `embedded-io`).
pub trait Serial {
    /// Writes all of `bytes`, blocking until the port took them.
    fn write(&mut self, bytes: &[u8]);
    /// One received byte if one is waiting; never blocks.
    fn read_byte(&mut self) -> Option<u8>;
}

impl<S: Serial + ?Sized> Serial for &mut S {
    fn write(&mut self, bytes: &[u8]) {
        (**self).write(bytes)
    }

    fn read_byte(&mut self) -> Option<u8> {
        (**self).read_byte()
    }
}

/// Timeouts, milliseconds. [`Default`] gives generous values for a cellular link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    /// A command's final result (`OK` / `ERROR`), and the `>` prompt of a publish (2 s).
    pub command_ms: u32,
    /// `+QMTOPEN` after `OK` (30 s).
    pub open_ms: u32,
    /// `+QMTCONN` after `OK` (30 s).
    pub connect_ms: u32,
    /// `+QMTSUB` after `OK` (30 s).
    pub subscribe_ms: u32,
    /// `+QMTPUBEX` (PUBACK for QoS 1) after `OK` (30 s).
    pub publish_ms: u32,
    /// `+QMTDISC` / `+QMTCLOSE` after `OK` (10 s).
    pub close_ms: u32,
    /// Longest silence inside a `+QMTRECV` payload before the rest is given up (1 s).
    pub recv_gap_ms: u32,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            command_ms: 2_000,
            open_ms: 30_000,
            connect_ms: 30_000,
            subscribe_ms: 30_000,
            publish_ms: 30_000,
            close_ms: 10_000,
            recv_gap_ms: 1_000,
        }
    }
}

/// MQTT quality of service.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QoS {
    /// At most once (no PUBACK; the message id on the wire is 0).
    AtMostOnce = 0,
    /// At least once (PUBACK).
    AtLeastOnce = 1,
    /// Exactly once.
    ExactlyOnce = 2,
}

/// The commands that end with a plain final result ([`Event::Done`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `AT`.
    At,
    /// `AT+CFUN=1` (`true`) or `AT+CFUN=0`.
    Radio(bool),
    /// `AT+CEREG?` (the stat comes as [`Event::Registration`] before `Done`).
    QueryRegistration,
    /// `AT+GSN` (the IMEI comes as [`Event::Imei`] before `Done`).
    Imei,
}

/// The modem's IMEI, from the answer line of `AT+GSN` (3GPP TS 27.007 §5.4; Quectel answers
/// the bare digits): 15 decimal digits on a real module; lines of 1 to 16 digits are taken
/// (16: an IMEISV), so the caller decides what it accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Imei {
    digits: [u8; Imei::MAX],
    len: u8,
}

impl Imei {
    /// The most digits kept.
    pub const MAX: usize = 16;

    /// From an answer line: `Some` if it is 1 to [`Imei::MAX`] ASCII digits.
    pub fn from_digits(line: &[u8]) -> Option<Imei> {
        if line.is_empty() || line.len() > Imei::MAX || !line.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let mut digits = [0u8; Imei::MAX];
        digits[..line.len()].copy_from_slice(line);
        Some(Imei { digits, len: line.len() as u8 })
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are stored.
        core::str::from_utf8(&self.digits[..usize::from(self.len)]).unwrap_or("")
    }
}

/// Why a command or a wait failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A command is on the line already: poll until [`Modem::is_busy`] is false.
    #[error("a command is in progress")]
    Busy,
    /// This kind of wait is taken (an open, connect, subscribe, disconnect or close already
    /// awaits its URC, or [`MAX_IN_FLIGHT`] publishes do).
    #[error("too many operations in flight")]
    InFlight,
    /// A string argument is empty, longer than 128 bytes, or holds a `"` or a byte outside
    /// printable ASCII.
    #[error("invalid argument")]
    InvalidArgument,
    /// The payload does not fit the TX buffer.
    #[error("payload too long")]
    TooLong,
    /// The modem answered `ERROR` (or `+CME ERROR`).
    #[error("modem answered ERROR")]
    Rejected,
    /// No answer in time.
    #[error("timeout")]
    Timeout,
    /// The URC reported a failure: `<result>` (e.g. `+QMTOPEN` 3: no PDP, 5: network error;
    /// `+QMTPUBEX` 2: failed to send), or a SUBACK refusal (128).
    #[error("modem reported failure {code}")]
    Failed {
        /// The result code.
        code: i32,
    },
    /// `+QMTCONN: 0,0,<ret_code>` with a CONNACK return code other than 0.
    #[error("broker refused the connection ({ret_code})")]
    Refused {
        /// CONNACK return code.
        ret_code: i32,
    },
    /// `+QMTSTAT: 0,<err>` arrived while this waited.
    #[error("link lost ({err})")]
    LinkLost {
        /// The `+QMTSTAT` error code.
        err: i32,
    },
}

/// What [`Modem::poll`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// `AT`, `AT+CFUN` or `AT+CEREG?` ended.
    Done {
        /// Which one.
        command: Command,
        /// `OK`, or why not.
        result: Result<(), Error>,
    },
    /// `+CEREG`: registration stat (1 registered, 2 searching, 0 radio off), from the URC or
    /// the answer to [`Modem::query_registration`].
    Registration(u8),
    /// The answer line of [`Modem::query_imei`] (`AT+GSN`); its `Done` follows.
    Imei(Imei),
    /// [`Modem::open`] ended (`+QMTOPEN`).
    Opened(Result<(), Error>),
    /// [`Modem::connect`] ended (`+QMTCONN`).
    Connected(Result<(), Error>),
    /// [`Modem::subscribe`] ended (`+QMTSUB`).
    Subscribed {
        /// The id `subscribe` returned.
        msg_id: u16,
        /// The granted QoS, or why not.
        result: Result<u8, Error>,
    },
    /// [`Modem::publish`] ended (`+QMTPUBEX`: sent for QoS 0, PUBACK for QoS 1).
    Published {
        /// The id `publish` returned.
        msg_id: u16,
        /// Sent, or why not.
        result: Result<(), Error>,
    },
    /// A message on a subscribed topic (`+QMTRECV`), in the caller's RX buffer.
    Received {
        /// The message id the modem gave it.
        msg_id: u16,
        /// The topic.
        topic: &'a str,
        /// The payload, exactly `<len>` bytes.
        payload: &'a [u8],
    },
    /// A `+QMTRECV` whose topic and payload did not fit the RX buffer (or whose topic was not
    /// UTF-8); its bytes were skipped.
    ReceiveTooLong {
        /// The message id.
        msg_id: u16,
        /// The payload length announced.
        len: usize,
    },
    /// `+QMTSTAT`: the MQTT link went away (1 closed by peer, 7 link not alive): open and
    /// connect again.
    LinkLost {
        /// The error code.
        err: i32,
    },
    /// [`Modem::disconnect`] ended (`+QMTDISC`).
    Disconnected(Result<(), Error>),
    /// [`Modem::close`] ended (`+QMTCLOSE`).
    Closed(Result<(), Error>),
}
