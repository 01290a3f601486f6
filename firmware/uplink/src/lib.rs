//! The device's MQTT uplink to the twin, between the app's main loop and the modem (`twin/PROTOCOL.md`):
//! `no_std`, no allocation, no floats, host-tested against a scripted fake modem that speaks
//! PROTOCOL.md §1 byte for byte.
//!
//! - [`Net`]: the connection state machine. It owns the [`modem_at::Modem`] client, the
//!   [`telemetry::Aggregator`] and the [`telemetry::Outbox`], is polled from the main loop and
//!   never blocks.
//! - [`boot_id`]: the boot id, issued from a log in two NOR flash pages that no power cut can
//!   make repeat.
//!
//! Like `rumqttc`'s `MqttState`, nothing here owns hardware: the serial port is a
//! [`modem_at::Serial`] (UART1 on the board, a fake in tests), time is the `now_ms` the caller
//! passes, and the flash is an `embedded-storage` `NorFlash`.
//!
//! # The state machine
//!
//! ```text
//! Probe ─AT OK─► Imei ─AT+GSN done─► Radio ─CFUN OK─► Register ─stat 1|5─► Open
//! Open ─+QMTOPEN: 0,0─► Connect ─+QMTCONN: 0,0,0─► Subscribe ─+QMTSUB ok─► Online
//! Backoff(stage) ─delay over─► Probe | Register | Open
//!
//! publish windows (Radio::Windows) only:
//! Online ─window over─► EndWindow ─+QMTCLOSE─► RadioOff ─CFUN=0 done─► Asleep
//!                                 └──────────(radio_off false)──────► Asleep
//! Asleep ─until, or OUTBOX_SLOTS/2 unsent─► Radio (radio was switched off) | Open | Register
//! ```
//!
//! With [`Radio::AlwaysOn`] (the default) the machine stays in Online until a failure. With
//! [`Radio::Windows`] ([`Net::set_radio_policy`]) the boot opens the first *publish window*;
//! a window is over when
//!
//! - it is done: nothing unsent, no PUBACK owed (the modem is idle), the state sent, no
//!   `desired_applied` event pending, every record acked by the twin (the outbox is empty), and
//!   [`LINGER_MS`] (1 s) passed since the last message or PUBACK from the broker (or since
//!   going online), so that the `desired` the twin sends in answer to the state message is
//!   taken in this window; or
//! - [`WINDOW_MAX_MS`] (60 s) passed since its first connect (e.g. the twin does not ack):
//!   the unacked records stay in the outbox and go out again in the next window. The limit
//!   counts from the connect, not from the window's opening: reaching the broker has its own
//!   timeouts and backoff, and a window whose connect took long still gets its time to send.
//!
//! Then the link is closed (`AT+QMTCLOSE`, as after a failure), the radio switched off
//! (`AT+CFUN=0`, with `radio_off`), and the machine sleeps until `every_s` after the window
//! opened (from now if that has passed), or until the records made since the last window fill
//! half the outbox ([`OUTBOX_SLOTS`]` / 2`), whichever is first: a long period must not
//! overflow the outbox only because the radio is off. The next window starts with `AT+CFUN=1`
//! and registration if the radio was switched off, else with `AT+QMTOPEN` (`AT+CEREG?` first
//! if a `+CEREG` said the registration was lost meanwhile); its connect rewinds the outbox and
//! sends the state, as every connect does. `+QMTSTAT` and other URCs that our own close or
//! `CFUN=0` cause are not a link loss: only Online acts on `+QMTSTAT`. Failures inside a window
//! are handled as always (backoff, with the radio on, however long it takes), and the window
//! after one keeps the cadence (it counts from when the failed window opened).
//!
//! Failures ("reopen" is Open when registered, else Register):
//!
//! - Probe: no `OK` within [`PROBE_MS`] → [`Note::NoModem`] the first time → Backoff(Probe).
//! - Imei: `ERROR` → the fallback id, Radio; no answer → Backoff(Probe).
//! - Radio: `ERROR` or no answer → Backoff(Probe).
//! - Register: stat 0 (radio off, e.g. the modem restarted) → Radio; no registration within
//!   [`REGISTER_MS`] → Backoff(Probe).
//! - Open: `-1` (a client is open already) → Close → Open at once; `3` (no PDP) →
//!   Backoff(Register); anything else → Backoff(Open), or reopen after a timeout.
//! - Connect, Subscribe: any failure → Close → Backoff(reopen).
//! - Online: `+QMTSTAT` → Backoff(reopen); a failed or unanswered publish → Close →
//!   Backoff(reopen).
//! - EndWindow, RadioOff: any outcome (`ERROR`, a timeout, a `+QMTSTAT`) → the next phase; a
//!   `CFUN=0` not answered `OK` leaves the radio counted as on (the next window finds out).
//!
//! | phase | command | ends on | timeout |
//! |---|---|---|---|
//! | Probe | `AT` | `OK` | [`PROBE_MS`] (500 ms), then "no modem" |
//! | Imei | `AT+GSN` | `OK`/`ERROR` | the client's `command_ms` (2 s), then Probe |
//! | Radio | `AT+CFUN=1` | `OK` | `command_ms` |
//! | Register | `AT+CEREG?` | stat 1 or 5 (answer or URC); 0: Radio | [`REGISTER_MS`] (60 s), then Probe |
//! | Open | `AT+QMTOPEN=0,"broker.twinbed",1883` | `+QMTOPEN` | `open_ms` (30 s) |
//! | Connect | `AT+QMTCONN=0,"d<IMEI>"` | `+QMTCONN` | `connect_ms` (30 s) |
//! | Subscribe | `AT+QMTSUB=0,<id>,"twinbed/d<IMEI>/down",1` | `+QMTSUB` | `subscribe_ms` (30 s) |
//! | Online | `AT+QMTPUBEX` ... | `+QMTSTAT`, a failed publish | `publish_ms` (30 s) per PUBACK |
//! | Close | `AT+QMTCLOSE=0` | `+QMTCLOSE` (any result) | `close_ms` (10 s) |
//! | EndWindow | `AT+QMTCLOSE=0` | `+QMTCLOSE` (any result) | `close_ms` (10 s) |
//! | RadioOff | `AT+CFUN=0` | `OK`/`ERROR` (the modem says nothing more) | `command_ms` |
//! | Asleep | none | `until`, or [`OUTBOX_SLOTS`]` / 2` records unsent | none |
//!
//! Backoff: [`telemetry::Backoff`] from [`BACKOFF_BASE_MS`] (1 s) doubling to
//! [`BACKOFF_CAP_MS`] (60 s), each delay drawn from `[c/2, c]`, seeded by [`backoff_seed`] from
//! the boot id and the IMEI digits (the fallback digits until `AT+GSN` answered), so runs are
//! deterministic. It resets when the device is online again.
//!
//! **Online.** On every connect the outbox is rewound: everything not acked by the twin is
//! published again (the twin stores each `(boot, seq)` once). The first unsent record goes
//! first (on the first connect of a boot, the `boot` event, seq 1), then the state message
//! (`up/state`, QoS 1, retained), then the other records in seq order, QoS 1, at most
//! [`RECORDS_IN_FLIGHT`] awaiting their PUBACK. A record leaves the outbox only when the twin's
//! `ack` on `twinbed/<dev>/down` covers it. A `desired` message whose `interval_s` differs from
//! the last one acted on sets the sampling interval, creates a `desired_applied` event and
//! publishes the state again.
//!
//! **Notes.** [`Net::poll`] returns a [`Note`] on state changes only (no modem, connected,
//! offline once per outage, link lost, desired applied, dropped records): the app prints them.
//! With no modem the only note ever is [`Note::NoModem`], once. [`Note::Connected`] is given
//! for the first connect of the boot and for the first after a [`Note::NoModem`],
//! [`Note::Offline`] or [`Note::LinkLost`], never for a routine publish window; closing a
//! window, the radio going off and on have no note.
//!
//! # Sleeping
//!
//! [`Net::wake_at`] says when the machine must be polled again: at the end of a backoff, one
//! tick ([`POLL_MS`]) later while the modem owes an answer, or never (`None`) while online with
//! nothing to send, when the app may sleep to its next sample. With publish windows, online
//! with nothing to send it is when the window may close (the end of [`LINGER_MS`] once all is
//! acked, else [`WINDOW_MAX_MS`]), and asleep it is when the next window opens: the app
//! samples in between, and a [`Net::reading`] that makes the outbox half full moves that to
//! now (the poll after it opens the window). A `+QMTRECV` that starts while
//! the app sleeps waits in the UART (the modem side holds bytes back while the 1-byte receive
//! buffer is full), so the app's sleep loop checks the UART's RX-full bit at every wake-up (the
//! SysTick clock wakes WFI every 10 ms) and polls when a byte is there.
//!
//! # Limits
//!
//! - The outbox lives in RAM: records not acked before a reset are lost (their boot id is not
//!   reused, so the twin sees the gap).
//! - After a publish's PUBACK the record waits for the twin's ack; if the twin never acks
//!   (the twin is down but the broker is up), records are sent again only at the next
//!   reconnect (with publish windows: the next window), and the outbox overflows by its policy
//!   meanwhile.
//! - Publish windows: the MQTT session is clean, so what the twin sends while the device is
//!   between windows is lost; that is harmless (the twin repeats its `ack` when records come
//!   again, and sends `desired` after each state message that differs from it), but a desired
//!   state takes effect only in the next window. A window that cannot connect keeps the radio
//!   on and retries with backoff, as always-on does.
//! - The device id is settled by the first `AT+GSN` the modem answers in a boot; if it answers
//!   `ERROR` (or not 15 digits), the id is `d000000000000000` for the whole boot.
#![cfg_attr(not(test), no_std)]

pub mod boot_id;
mod net;

pub use net::{
    backoff_seed, Identity, Net, Note, Phase, Radio, Reason, Stage, Stats, BACKOFF_BASE_MS, BACKOFF_CAP_MS,
    BATTERY_STEP_PERMILLE, BROKER_HOST, BROKER_PORT, DEADBAND_MILLI_C, FALLBACK_IMEI, IMEI_DIGITS, LINGER_MS,
    MAX_INTERVAL_S, MAX_WINDOWS, OUTBOX_SLOTS, POLL_MS, PROBE_MS, RECORDS_IN_FLIGHT, REGISTER_MS, RX_BUFFER,
    TX_BUFFER, WINDOW, WINDOW_MAX_MS,
};
