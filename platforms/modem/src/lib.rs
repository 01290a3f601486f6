//! twinbed's virtual cellular modem: the module on UART1 of a testbed board, speaking a subset
//! of Quectel's MQTT AT commands, with a real MQTT connection behind it.
//!
//! # The reference it follows
//!
//! The command subset, answers and URCs are those of `twin/PROTOCOL.md` §1, taken from Quectel's
//! *BG95 & BG77 & BG600L Series MQTT Application Note* (AT+QMTOPEN, AT+QMTCONN, AT+QMTSUB,
//! AT+QMTPUBEX, AT+QMTDISC, AT+QMTCLOSE, +QMTRECV, +QMTSTAT) and the *AT Commands Manual*
//! (AT+CFUN, AT+CEREG, V.250 line syntax). Answers are sent as `<text>\r\n` (no leading
//! `\r\n`); the QMTPUBEX prompt is the single byte `>`. Echo is off.
//!
//! # The model
//!
//! [`Modem`] is a pure state machine in the style of rumqttc's `MqttState`: no sockets, no
//! clock. Its owner drives it with virtual time in nanoseconds:
//!
//! - [`Modem::write`] gives it a byte the firmware sent; [`Modem::poll`] brings it up to `now`
//!   (handling bytes, faults, timers and due answers in time order, and calling the [`Link`] for
//!   network operations); [`Modem::take_output`] hands over the bytes due for the firmware;
//!   [`Modem::next_deadline`] says when it next needs attention, so a scheduler can skip idle
//!   time.
//! - Every answer has a modelled due time ([`Timing`]): the UART carries one byte per
//!   `uart_byte_ns` (115200 baud, 8N1: 86.8 µs) in each direction, an immediate answer comes
//!   `cmd_latency_ns` after the command's `\r`, and a network operation takes its packet's
//!   transmit time at the uplink rate plus one round trip (`rtt_ns` + injected latency) when an
//!   answer is awaited. A network call on the [`Link`] blocks in real time while the engine is
//!   frozen; its result is placed at the modelled time, so the transcript does not depend on how
//!   fast the host network is.
//! - **Incoming messages are not delivered when they arrive in real time.** The link queues
//!   them; the modem turns them into +QMTRECV URCs only when its owner calls
//!   [`Modem::deliver_incoming`] at a virtual time of its choice (a scenario runner does so at
//!   sync points, after waiting until the network is quiet, e.g. by watching
//!   [`Link::counters`]). A connection the broker dropped is noticed at the same sync points,
//!   or when the next network operation fails. So, given the same firmware, the same faults at
//!   the same virtual times, and a broker that answers the same things, two runs produce the
//!   same bytes at the same virtual times.
//! - Faults ([`Modem::set_coverage`], [`Modem::set_extra_latency`], [`Modem::drop_link`], or
//!   [`Modem::inject`]) take effect at the virtual time the caller gives. Losing coverage or
//!   dropping the link closes the real MQTT connection (no DISCONNECT).
//! - Power states ([`PowerState`]): *off* (CFUN=0), *tx* while a packet is on the air, *rx*
//!   while waiting for a network answer and while a +QMTRECV is on the UART, *idle* otherwise
//!   (tx wins over rx). [`Modem::power_log`] lists every change with its virtual time; a wait
//!   cut short by a fault ends at the fault.
//!
//! # Driving it
//!
//! ```
//! use twinbed_modem::{Modem, MqttLink, MqttLinkConfig, Timing};
//!
//! let mut modem = Modem::new(Timing::default());
//! let mut link = MqttLink::new(MqttLinkConfig::default())?;
//! let mut now = 0u64; // virtual ns, from the engine
//! for b in *b"AT+CEREG?\r" {
//!     modem.write(now, b); // each byte the firmware writes to UART1
//! }
//! let mut to_firmware = Vec::new();
//! // The engine's scheduler: wake the modem at its deadlines (WFI skips straight there).
//! while let Some(deadline) = modem.next_deadline() {
//!     now = now.max(deadline);
//!     modem.poll(now, &mut link);
//!     to_firmware.extend(modem.take_output(now)); // into the UART's receive queue
//! }
//! assert_eq!(to_firmware, b"+CEREG: 0,1\r\nOK\r\n");
//! assert_eq!(now, 1_000_000 + 17 * 86_806); // 1 ms latency, then 17 bytes at 115200 baud
//! # Ok::<(), std::io::Error>(())
//! ```
//!
//! A scenario runner calls [`Modem::deliver_incoming`] and the fault methods between those
//! steps, at virtual times of its timeline.
//!
//! # Result codes chosen where the reference leaves room
//!
//! Syntax errors (unknown command, bad arguments, client index other than 0) answer `ERROR`.
//! Commands that are well-formed but impossible in the current network state answer `OK` and
//! report the failure in their URC: `+QMTOPEN: 0,-1` (a client is already open), `0,3` (no
//! radio / not registered), `0,5` (the broker cannot be reached); `+QMTCONN: 0,2,0` (not open,
//! or CONNECT failed; the client is then closed), `+QMTCONN: 0,0,<code>` for a CONNACK refusal;
//! `+QMTSUB: 0,<id>,2,128`; `+QMTPUBEX: 0,<id>,2`. AT+QMTDISC and AT+QMTCLOSE always succeed.
//! AT+CFUN=0 with an open client reports `+QMTSTAT: 0,7`. The `<msg_id>` of +QMTRECV is 0 for
//! QoS 0 and a counter 1, 2, ... (wrapping to 1) otherwise, chosen by the modem so that it does
//! not depend on the broker's packet ids.
//!
//! # Not modelled
//!
//! Other client indexes, TLS (AT+QMTCFG), username/password and will messages, QMTPUB without
//! length, retransmission results (result 1), QoS 2 handshake timing beyond two round trips,
//! AT+QMTUNS, PSM/eDRX, signal quality, the `\r\n`-prefixed verbose answer format, ESC/Ctrl-Z
//! in data mode, downlink air time (only the UART delivery of +QMTRECV counts as *rx*),
//! keep-alive traffic (it runs in real time inside the link and costs no modelled energy).
//!
//! # QEMU
//!
//! [`serve_chardev`] attaches the same modem to QEMU's UART1 through a `-chardev socket`, on
//! wall-clock time; that path is not deterministic in timing (see [`chardev`]).

pub mod at;
pub mod chardev;
#[cfg(test)]
mod fake;
mod link;
mod modem;
mod mqtt;
mod timing;

pub use chardev::{serve_chardev, ChardevBridge};
pub use link::{Incoming, Link, LinkCounters, LinkError, LinkStatus, Qos};
pub use modem::{ClientState, Fault, Modem, ModemCounters, PowerState, Registration};
pub use mqtt::{CountersHandle, MqttLink, MqttLinkConfig};
pub use timing::{Timing, NS_PER_MS};
