//! The connection state machine: [`Net`].

use core::fmt;

use modem_at::{Command, Config as ModemConfig, Error as AtError, Event as AtEvent, Modem, QoS, Serial};
use modem_at::{Imei, MAX_IN_FLIGHT};
use telemetry::json::{encode_record, encode_state, topic, Battery, Reported, TopicKind, MAX_RECORD_LEN};
use telemetry::{
    parse_down, Aggregator, AggregatorConfig, Backoff, Body, Down, DropRange, Event, Outbox, Slot, Version,
};

/// The broker's host name as the modem opens it (the testbed maps it to its broker).
pub const BROKER_HOST: &str = "broker.twinbed";
/// The broker's port (MQTT, no TLS).
pub const BROKER_PORT: u16 = 1883;

/// The battery is reported again when its charge moved by this much (‰) since the last report.
pub const BATTERY_STEP_PERMILLE: u32 = 10;

/// Readings per aggregation window: at the default 1 s period, one window is 10 s.
pub const WINDOW: u16 = 10;
/// Deadband, milli-°C: a window whose mean is within 0.1 °C of the last sent mean is folded
/// into the next record instead of being sent (the TMP105's resolution is 0.0625 °C, so this
/// is about two LSBs).
pub const DEADBAND_MILLI_C: u32 = 100;
/// Heartbeat: a record spans at most 6 windows (60 readings, one minute at 1 s), so a steady
/// temperature still reports.
pub const MAX_WINDOWS: u16 = 6;
/// Outbox slots (one reserved for the `dropped` event): 63 records of up to 60 readings, 2.5
/// KiB of RAM.
pub const OUTBOX_SLOTS: usize = 64;
/// Records awaiting their PUBACK at once (the modem client takes [`MAX_IN_FLIGHT`]; one more is
/// kept for the state message).
pub const RECORDS_IN_FLIGHT: usize = 3;
/// How long the first command (`AT`) waits for `OK` before the modem counts as absent. The
/// modem answers in about a millisecond; this also bounds how long a board without a modem
/// spends on each probe.
pub const PROBE_MS: u32 = 500;
/// How long to wait for registration (`+CEREG: 1`) before backing off and starting over from
/// `AT` (a modem that restarted or went away shows up there).
pub const REGISTER_MS: u32 = 60_000;
/// Reconnect backoff: the first delay is about 1 s ...
pub const BACKOFF_BASE_MS: u32 = 1_000;
/// ... doubling up to about 60 s (with jitter: each delay is drawn from `[c/2, c]`).
pub const BACKOFF_CAP_MS: u32 = 60_000;
/// How soon [`Net::wake_at`] asks to be polled again while the modem owes an answer (one
/// SysTick on the board).
pub const POLL_MS: u32 = 10;
/// Publish windows ([`Radio::Windows`]): how long the link stays up after the last message or
/// PUBACK from the broker (or after going online) once everything is sent and acked. The twin
/// answers a state message with `desired` when the desired state differs, one broker round
/// trip after the state's PUBACK: closing at once would miss it until the next window.
pub const LINGER_MS: u32 = 1_000;
/// Publish windows: the longest a window stays connected without completing (e.g. the twin
/// does not ack), counted from its first connect. Unacked records stay in the outbox and go
/// out again in the next window.
pub const WINDOW_MAX_MS: u32 = 60_000;
/// Longest sampling interval a desired state may set (one day); longer values are clamped, as
/// is 0 (to 1 s).
pub const MAX_INTERVAL_S: u32 = 86_400;
/// The IMEI digits used when `AT+GSN` fails: the device id is then `d000000000000000`.
pub const FALLBACK_IMEI: &str = "000000000000000";
/// Digits of an IMEI (3GPP TS 23.003 §6.2.1).
pub const IMEI_DIGITS: usize = 15;
/// Receive buffer the modem client needs: the down topic plus a 1024-byte payload (PROTOCOL.md
/// §2), with room to spare.
pub const RX_BUFFER: usize = 1024 + 64;
/// Transmit buffer: the longest payload published (a state message, about 130 bytes).
pub const TX_BUFFER: usize = 192;

/// What the app knows about itself, for the `boot` event and the state message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Identity {
    /// This boot's id (see [`crate::boot_id`]; 0 when it could not be kept in flash).
    pub boot: u32,
    /// The slot the image runs from (`a` for a plain build).
    pub slot: Slot,
    /// The running image's version.
    pub version: Version,
}

/// How the device uses its radio between publishes ([`Net::set_radio_policy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Radio {
    /// Stay registered and connected all the time (the default): records go out as they are
    /// made, desired states arrive at once; the modem idles registered (about 1.2 mA).
    AlwaysOn,
    /// Publish windows: connect, send, wait for the acks, close the link and (with
    /// `radio_off`) switch the radio off until the next window, `every_s` seconds after this
    /// one opened (clamped to `1..=`[`MAX_INTERVAL_S`]), or earlier when
    /// [`OUTBOX_SLOTS`]` / 2` records wait to be sent. A desired state set meanwhile arrives in
    /// the next window (the twin sends it after the window's state message).
    Windows {
        /// Seconds from one window's opening to the next.
        every_s: u32,
        /// `AT+CFUN=0` between windows (and `AT+CFUN=1`, registration, at each window); else
        /// the radio stays registered and only the MQTT link is closed.
        radio_off: bool,
    },
}

/// Where a failed connection attempt goes back to once the backoff delay has passed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `AT` again: the modem did not answer, or refused the radio.
    Probe,
    /// Wait for registration (coverage), then open.
    Register,
    /// `AT+QMTOPEN` again.
    Open,
}

/// Where the state machine is. Each phase but [`Phase::Backoff`], [`Phase::Online`] and
/// [`Phase::Asleep`] sends one command and waits for its outcome (see the crate docs for the
/// transitions).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Waiting until `until` (ms), then `next`.
    Backoff {
        /// When the wait ends.
        until: u32,
        /// What comes then.
        next: Stage,
    },
    /// `AT`: is there a modem? ([`PROBE_MS`])
    Probe,
    /// `AT+GSN`: the IMEI, for the device id (once per boot).
    Imei,
    /// `AT+CFUN=1`: radio on.
    Radio,
    /// `AT+CEREG?`, then waiting for `+CEREG: 1` ([`REGISTER_MS`]).
    Register,
    /// `AT+QMTOPEN` to [`BROKER_HOST`]:[`BROKER_PORT`].
    Open,
    /// `AT+QMTCONN` with the device id.
    Connect,
    /// `AT+QMTSUB` to `twinbed/<dev>/down`, QoS 1.
    Subscribe,
    /// Connected: publishing the outbox and the state, taking acks and desired states.
    Online,
    /// `AT+QMTCLOSE` after a failure; then a backoff (`backoff`) or straight to `AT+QMTOPEN`.
    Close {
        /// Back off before reopening.
        backoff: bool,
    },
    /// Publish windows: `AT+QMTCLOSE` at the end of a window (everything acked, or
    /// [`WINDOW_MAX_MS`] passed); then [`Phase::RadioOff`] or [`Phase::Asleep`].
    EndWindow,
    /// Publish windows: `AT+CFUN=0` after [`Phase::EndWindow`] (`radio_off`).
    RadioOff,
    /// Publish windows: between two windows, nothing on the line. The next window opens at
    /// `until`, or earlier when [`OUTBOX_SLOTS`]` / 2` records wait to be sent: with
    /// [`Phase::Radio`] if the radio was switched off, else [`Phase::Open`] (or
    /// [`Phase::Register`] if the registration was lost meanwhile).
    Asleep {
        /// When the next window opens (ms).
        until: u32,
    },
}

/// Why a connection attempt failed (reported once per outage, [`Note::Offline`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reason {
    /// The modem refused or did not answer a command (`AT`, `AT+CFUN=1`, ...).
    Modem,
    /// Not registered in time, or `+QMTOPEN` result 3 (no PDP context): no coverage.
    NoCoverage,
    /// `+QMTOPEN` failed otherwise (5: network error, the broker is unreachable), or timed out.
    Open(Option<i32>),
    /// `+QMTCONN` failed: the broker refused (`ret_code`) or the CONNECT was not sent.
    Connect,
    /// `+QMTSUB` failed or was refused.
    Subscribe,
    /// A publish failed or got no PUBACK in time.
    Publish,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Modem => f.write_str("the modem did not answer"),
            Reason::NoCoverage => f.write_str("no coverage"),
            Reason::Open(Some(code)) => write!(f, "opening the broker link failed ({code})"),
            Reason::Open(None) => f.write_str("opening the broker link timed out"),
            Reason::Connect => f.write_str("the broker refused the connection"),
            Reason::Subscribe => f.write_str("subscribing failed"),
            Reason::Publish => f.write_str("a publish failed"),
        }
    }
}

/// What the app may want to tell the user: state changes only, never one per publish.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    /// The first `AT` got no answer within [`PROBE_MS`]: there is no modem (said once per boot;
    /// probing goes on quietly with backoff).
    NoModem,
    /// A modem answered after [`Note::NoModem`] was given.
    ModemFound,
    /// Connected and subscribed: records flow (see [`Net::device_id`]).
    Connected,
    /// A connection attempt failed; retrying with backoff. Said once per outage (again only
    /// after the next [`Note::Connected`]).
    Offline(Reason),
    /// The MQTT link went away (`+QMTSTAT`) while online; unacked records will be sent again.
    LinkLost {
        /// The `+QMTSTAT` error (1 closed by the peer, 7 link not alive).
        err: i32,
        /// Records not acked by the twin yet.
        unacked: usize,
    },
    /// A desired state set a new sampling interval ([`Net::interval_s`]).
    DesiredApplied {
        /// The twin's version of the desired state.
        version: u64,
        /// The interval in force now, seconds (clamped to `1..=`[`MAX_INTERVAL_S`]).
        interval_s: u32,
    },
    /// A `dropped` event goes out: the outbox overflowed and these records are gone.
    Dropped(DropRange),
}

/// Counters of what was ignored or refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Times the state machine reached [`Phase::Online`].
    pub connects: u32,
    /// Down messages that did not parse (or were of an unknown type).
    pub down_rejected: u32,
    /// Messages on another topic, or too long for the receive buffer.
    pub down_ignored: u32,
    /// Acks applied.
    pub acks: u32,
    /// Events that could not be created (the outbox was full of events).
    pub events_refused: u32,
    /// Publish windows closed ([`Phase::Asleep`] reached).
    pub windows: u32,
}

/// A modem event without borrows (a received message is parsed at once).
enum In {
    Modem(AtEvent<'static>),
    Down(Result<Down, telemetry::Error>),
    Ignored,
}

fn reached(now: u32, t: u32) -> bool {
    now.wrapping_sub(t) as i32 >= 0
}

/// The earlier of two times (on the wrapping millisecond clock).
fn earlier(a: u32, b: u32) -> u32 {
    if reached(a, b) {
        b
    } else {
        a
    }
}

/// FNV-1a of the IMEI digits mixed with the boot id: the backoff's jitter seed, so that each
/// device and each boot has its own delays and every run of a scenario has the same.
pub fn backoff_seed(boot: u32, imei: &[u8]) -> u32 {
    let h = imei.iter().fold(0x811c_9dc5u32, |h, b| (h ^ u32::from(*b)).wrapping_mul(0x0100_0193));
    h ^ boot.wrapping_mul(0x9e37_79b1)
}

/// The device's network side: owns the modem client, the aggregator and the outbox. Poll it
/// from the main loop ([`Net::poll`] until `None`), feed it readings ([`Net::reading`]), and
/// sleep until [`Net::wake_at`] (or a byte from the modem, or the next sample).
pub struct Net<'b, S: Serial> {
    modem: Modem<'b, S>,
    phase: Phase,
    /// The current phase's command went out.
    sent: bool,
    /// Deadline of [`Phase::Probe`] and [`Phase::Register`].
    deadline: u32,
    id: Identity,
    interval_s: u32,
    aggregator: Aggregator,
    outbox: Outbox<OUTBOX_SLOTS>,
    backoff: Backoff,
    /// `d` + 15 digits.
    dev: [u8; 1 + IMEI_DIGITS],
    imei_known: bool,
    registered: bool,
    state_dirty: bool,
    /// The battery as last reported (state messages carry it).
    battery: Option<Battery>,
    /// Message id of the state publish awaiting its PUBACK.
    state_msg: Option<u16>,
    /// Records published since the last connect (the first goes before the state message).
    sent_since_connect: u32,
    /// The raw `interval_s` of the last desired state applied.
    last_desired: Option<u32>,
    /// A `desired_applied` event the full outbox refused; retried.
    pending_applied: Option<u64>,
    /// Highest seq of a `dropped` event already announced ([`Note::Dropped`]).
    dropped_noted: u32,
    said_no_modem: bool,
    said_offline: bool,
    /// The next connect is told ([`Note::Connected`]): the first of the boot, and the first
    /// after the user was told of trouble; never a routine publish window's.
    tell_connect: bool,
    /// What the radio does between publishes.
    radio: Radio,
    /// When the current publish window opened (boot, or the wake-up from [`Phase::Asleep`]).
    window_opened: u32,
    /// When the current window first went online ([`WINDOW_MAX_MS`] counts from there).
    window_online: Option<u32>,
    /// The last message or PUBACK from the broker, or going online ([`LINGER_MS`]).
    heard_at: u32,
    /// `AT+CFUN=0` was answered `OK` at the end of a window: the next window starts with
    /// `AT+CFUN=1`.
    radio_off: bool,
    stats: Stats,
}

impl<'b, S: Serial> Net<'b, S> {
    /// The network side for boot `id`, sampling every `interval_s` seconds, on `serial` (with
    /// the modem client's buffers, [`RX_BUFFER`] and [`TX_BUFFER`] bytes are enough). Creates
    /// the `boot` event (seq 1) at `now_ms`; the first [`poll`](Self::poll) sends `AT`.
    pub fn new(
        serial: S,
        rx: &'b mut [u8],
        tx: &'b mut [u8],
        config: ModemConfig,
        id: Identity,
        interval_s: u32,
        now_ms: u32,
    ) -> Self {
        let mut dev = [b'0'; 1 + IMEI_DIGITS];
        dev[0] = b'd';
        let mut net = Net {
            modem: Modem::new(serial, config, rx, tx),
            phase: Phase::Probe,
            sent: false,
            deadline: 0,
            id,
            interval_s: interval_s.clamp(1, MAX_INTERVAL_S),
            aggregator: Aggregator::new(AggregatorConfig::new(WINDOW, DEADBAND_MILLI_C, MAX_WINDOWS)),
            outbox: Outbox::new(id.boot),
            backoff: Backoff::new(
                BACKOFF_BASE_MS,
                BACKOFF_CAP_MS,
                backoff_seed(id.boot, FALLBACK_IMEI.as_bytes()),
            ),
            dev,
            imei_known: false,
            registered: false,
            state_dirty: true,
            battery: None,
            state_msg: None,
            sent_since_connect: 0,
            last_desired: None,
            pending_applied: None,
            dropped_noted: 0,
            said_no_modem: false,
            said_offline: false,
            tell_connect: true,
            radio: Radio::AlwaysOn,
            window_opened: now_ms,
            window_online: None,
            heard_at: now_ms,
            radio_off: false,
            stats: Stats::default(),
        };
        net.event(now_ms, Event::Boot { slot: id.slot, version: id.version });
        net
    }

    /// Records an event of the app (e.g. `confirm`) at `now_ms`; false if the outbox is full of
    /// events and refused it (PROTOCOL.md §2: events are never dropped for telemetry).
    pub fn event(&mut self, now_ms: u32, event: Event) -> bool {
        let ok = self.outbox.push_event(now_ms, event).is_ok();
        if !ok {
            self.stats.events_refused += 1;
        }
        ok
    }

    /// One sensor reading (milli-°C) taken at `now_ms`: into the aggregator, and an emitted
    /// aggregate into the outbox.
    pub fn reading(&mut self, now_ms: u32, milli_c: i32) {
        if let Some(aggregate) = self.aggregator.push(milli_c) {
            self.outbox.push_telemetry(now_ms, aggregate);
        }
    }

    /// What the fuel gauge says now. The state is reported again when the charge moved by
    /// [`BATTERY_STEP_PERMILLE`] or more since the last report (or the gauge appeared), not on
    /// every small change: each state message costs radio time.
    pub fn battery(&mut self, battery: Battery) {
        let moved =
            self.battery.is_none_or(|last| last.permille.abs_diff(battery.permille) >= BATTERY_STEP_PERMILLE);
        if moved {
            self.battery = Some(battery);
            self.state_dirty = true;
        }
    }

    /// How the radio is used between publishes ([`Radio::AlwaysOn`] until set). Set it right
    /// after [`new`](Self::new): the boot's first window then counts from `now_ms` there. A
    /// change takes effect at the next decision: a device asleep between windows wakes at once
    /// when switched to [`Radio::AlwaysOn`]; one online when switched to windows closes the link
    /// when done, or [`WINDOW_MAX_MS`] after the switch, and counts its next window from when
    /// the last one opened (the boot, if there was none), as always.
    pub fn set_radio_policy(&mut self, radio: Radio) {
        if self.radio == Radio::AlwaysOn {
            // A link that was up before counts as a window from the next poll on.
            self.window_online = None;
        }
        self.radio = match radio {
            Radio::Windows { every_s, radio_off } => {
                Radio::Windows { every_s: every_s.clamp(1, MAX_INTERVAL_S), radio_off }
            }
            r => r,
        };
    }

    /// The radio policy in force ([`set_radio_policy`](Self::set_radio_policy)).
    pub fn radio_policy(&self) -> Radio {
        self.radio
    }

    /// The sampling interval in force, seconds (a desired state changes it).
    pub fn interval_s(&self) -> u32 {
        self.interval_s
    }

    /// The device id and MQTT client id: `d` and the IMEI (`d000000000000000` until the modem
    /// told it, or if it could not).
    pub fn device_id(&self) -> &str {
        // Only ASCII is stored.
        core::str::from_utf8(&self.dev).unwrap_or("d")
    }

    /// This boot's identity.
    pub fn identity(&self) -> Identity {
        self.id
    }

    /// Where the state machine is.
    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The records of this boot not yet acked.
    pub fn outbox(&self) -> &Outbox<OUTBOX_SLOTS> {
        &self.outbox
    }

    /// The aggregator (readings not yet in a record, the next reading's number).
    pub fn aggregator(&self) -> &Aggregator {
        &self.aggregator
    }

    /// What was ignored or refused.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The modem client (its own counters, its serial port).
    pub fn modem(&self) -> &Modem<'b, S> {
        &self.modem
    }

    /// The serial port (e.g. for a test to drive the fake modem behind it).
    pub fn serial_mut(&mut self) -> &mut S {
        self.modem.serial_mut()
    }

    /// Runs the state machine at `now_ms`: reads what the modem sent, acts on it, sends the
    /// next command or publish. Returns at most one [`Note`]; call again until `None` before
    /// sleeping.
    pub fn poll(&mut self, now_ms: u32) -> Option<Note> {
        // Bounded: each call reads at most 512 bytes, and the sleep loop comes back while
        // bytes are waiting.
        for _ in 0..16 {
            let Some(input) = self.next_input(now_ms) else { break };
            if let Some(note) = self.on_input(now_ms, input) {
                return Some(note);
            }
        }
        if let Some(version) = self.pending_applied {
            if self.event(now_ms, Event::DesiredApplied { version }) {
                self.pending_applied = None;
            }
        }
        self.step(now_ms)
    }

    /// When the state machine needs [`poll`](Self::poll) again at the latest, if nothing
    /// arrives from the modem first: `None` when it only waits for the modem or the next
    /// reading (online and idle: sleep to the next sample, but wake for bytes from the modem).
    ///
    /// With publish windows: online and idle, when the window may close ([`LINGER_MS`] after
    /// the last word from the broker once everything is acked, else [`WINDOW_MAX_MS`] after
    /// the window's first connect); asleep, when the next window opens (`now_ms` once
    /// [`OUTBOX_SLOTS`]` / 2` records wait, e.g. after a [`reading`](Self::reading)).
    pub fn wake_at(&self, now_ms: u32) -> Option<u32> {
        match self.phase {
            Phase::Backoff { until, .. } => Some(until),
            Phase::Online
                if self.modem.is_idle()
                    && !self.state_dirty
                    && self.pending_applied.is_none()
                    && self.outbox.unsent() == 0 =>
            {
                let Radio::Windows { .. } = self.radio else { return None };
                let limit = self.window_limit();
                if self.all_acked() {
                    Some(earlier(self.heard_at.wrapping_add(LINGER_MS), limit))
                } else {
                    Some(limit)
                }
            }
            Phase::Asleep { until } => Some(if self.wake_early() { now_ms } else { until }),
            _ => Some(now_ms.wrapping_add(POLL_MS)),
        }
    }

    fn next_input(&mut self, now: u32) -> Option<In> {
        let mut buf = [0u8; 48];
        let dev = core::str::from_utf8(&self.dev).unwrap_or("d");
        let down = topic(dev, TopicKind::Down, &mut buf).unwrap_or("");
        let ev = self.modem.poll(now)?;
        Some(match ev {
            AtEvent::Received { topic, payload, .. } if topic == down => In::Down(parse_down(payload)),
            AtEvent::Received { .. } | AtEvent::ReceiveTooLong { .. } => In::Ignored,
            // Every other event holds no borrow.
            AtEvent::Done { command, result } => In::Modem(AtEvent::Done { command, result }),
            AtEvent::Registration(s) => In::Modem(AtEvent::Registration(s)),
            AtEvent::Imei(i) => In::Modem(AtEvent::Imei(i)),
            AtEvent::Opened(r) => In::Modem(AtEvent::Opened(r)),
            AtEvent::Connected(r) => In::Modem(AtEvent::Connected(r)),
            AtEvent::Subscribed { msg_id, result } => In::Modem(AtEvent::Subscribed { msg_id, result }),
            AtEvent::Published { msg_id, result } => In::Modem(AtEvent::Published { msg_id, result }),
            AtEvent::LinkLost { err } => In::Modem(AtEvent::LinkLost { err }),
            AtEvent::Disconnected(r) => In::Modem(AtEvent::Disconnected(r)),
            AtEvent::Closed(r) => In::Modem(AtEvent::Closed(r)),
        })
    }

    fn enter(&mut self, phase: Phase) {
        self.phase = phase;
        self.sent = false;
    }

    /// After a failure: wait a backoff delay, then go back to `next`. Everything unacked will
    /// be sent again.
    fn back_off(&mut self, now: u32, next: Stage) {
        let until = now.wrapping_add(self.backoff.next_delay());
        self.enter(Phase::Backoff { until, next });
        self.outbox.rewind();
        self.state_msg = None;
        self.state_dirty = true;
    }

    /// The note for a failure: the first of an outage only.
    fn offline(&mut self, reason: Reason) -> Option<Note> {
        if self.said_offline {
            return None;
        }
        self.said_offline = true;
        self.tell_connect = true;
        Some(Note::Offline(reason))
    }

    fn fail(&mut self, now: u32, reason: Reason, next: Stage) -> Option<Note> {
        self.back_off(now, next);
        self.offline(reason)
    }

    /// Close the MQTT client, then back off: for failures after `AT+QMTOPEN` succeeded.
    fn close_and_fail(&mut self, reason: Reason) -> Option<Note> {
        self.outbox.rewind();
        self.enter(Phase::Close { backoff: true });
        self.offline(reason)
    }

    /// The phase of [`reopen_stage`](Self::reopen_stage).
    fn reopen_phase(&self) -> Phase {
        if self.registered {
            Phase::Open
        } else {
            Phase::Register
        }
    }

    fn reopen_stage(&self) -> Stage {
        if self.registered {
            Stage::Open
        } else {
            Stage::Register
        }
    }

    fn on_input(&mut self, now: u32, input: In) -> Option<Note> {
        if matches!(input, In::Down(_) | In::Ignored | In::Modem(AtEvent::Published { .. })) {
            self.heard_at = now;
        }
        let ev = match input {
            In::Modem(ev) => ev,
            In::Down(down) => return self.on_down(now, down),
            In::Ignored => {
                self.stats.down_ignored += 1;
                return None;
            }
        };
        match (self.phase, ev) {
            (phase, AtEvent::Registration(stat)) => {
                // 1 registered (home), 5 registered (roaming), 0 radio off (e.g. the modem
                // restarted): then the radio goes on again.
                self.registered = stat == 1 || stat == 5;
                if stat == 0 && phase == Phase::Register {
                    self.enter(Phase::Radio);
                }
                None
            }
            (Phase::Probe, AtEvent::Done { command: Command::At, result }) => match result {
                Ok(()) => {
                    self.enter(if self.imei_known { Phase::Radio } else { Phase::Imei });
                    if self.said_no_modem {
                        self.said_no_modem = false;
                        self.said_offline = false;
                        return Some(Note::ModemFound);
                    }
                    None
                }
                Err(_) => self.fail(now, Reason::Modem, Stage::Probe),
            },
            (Phase::Imei, AtEvent::Imei(imei)) => {
                self.take_imei(imei);
                None
            }
            // No answer at all: the modem went away; ask again when it is back.
            (Phase::Imei, AtEvent::Done { command: Command::Imei, result: Err(AtError::Timeout) }) => {
                self.fail(now, Reason::Modem, Stage::Probe)
            }
            (Phase::Imei, AtEvent::Done { command: Command::Imei, .. }) => {
                // The modem answered: the id is settled for this boot (the fallback if it did
                // not tell), so that every record of the boot goes under one id.
                self.imei_known = true;
                let seed = backoff_seed(self.id.boot, &self.dev[1..]);
                self.backoff = Backoff::new(BACKOFF_BASE_MS, BACKOFF_CAP_MS, seed);
                self.enter(Phase::Radio);
                None
            }
            (Phase::Radio, AtEvent::Done { command: Command::Radio(true), result }) => match result {
                Ok(()) => {
                    self.radio_off = false;
                    self.enter(Phase::Register);
                    None
                }
                Err(_) => self.fail(now, Reason::Modem, Stage::Probe),
            },
            (Phase::Open, AtEvent::Opened(result)) => match result {
                Ok(()) => {
                    self.enter(Phase::Connect);
                    None
                }
                // -1: a client is open already (e.g. from before a reset of the device): close
                // it and open again at once.
                Err(AtError::Failed { code: -1 }) => {
                    self.enter(Phase::Close { backoff: false });
                    None
                }
                Err(AtError::Failed { code: 3 }) => {
                    self.registered = false;
                    self.fail(now, Reason::NoCoverage, Stage::Register)
                }
                Err(AtError::Failed { code }) => self.fail(now, Reason::Open(Some(code)), Stage::Open),
                Err(_) => self.fail(now, Reason::Open(None), self.reopen_stage()),
            },
            (Phase::Connect, AtEvent::Connected(result)) => match result {
                Ok(()) => {
                    self.enter(Phase::Subscribe);
                    None
                }
                Err(_) => self.close_and_fail(Reason::Connect),
            },
            (Phase::Subscribe, AtEvent::Subscribed { result, .. }) => match result {
                Ok(_) => self.go_online(now),
                Err(_) => self.close_and_fail(Reason::Subscribe),
            },
            (phase, AtEvent::Published { msg_id, result }) => {
                if self.state_msg == Some(msg_id) {
                    self.state_msg = None;
                    if result.is_err() {
                        self.state_dirty = true;
                    }
                }
                match (phase, result) {
                    // A link loss is handled by its own event.
                    (Phase::Online, Err(e)) if !matches!(e, AtError::LinkLost { .. }) => {
                        self.close_and_fail(Reason::Publish)
                    }
                    _ => None,
                }
            }
            (Phase::Online, AtEvent::LinkLost { err }) => {
                self.back_off(now, self.reopen_stage());
                // The outage is announced by this note.
                self.said_offline = true;
                self.tell_connect = true;
                Some(Note::LinkLost { err, unacked: self.outbox.len() })
            }
            // The end of a publish window. Whatever the outcome (also a +QMTSTAT that failed
            // the wait: the link went away by itself), the client is not open now. Not a link
            // loss: nothing is announced, nothing is rewound (the next window's connect
            // rewinds; until then `unsent` counts only the records made since).
            (Phase::EndWindow, AtEvent::Closed(_)) => {
                if !self.modem.is_busy() {
                    self.modem.reset();
                }
                self.state_msg = None;
                match self.radio {
                    Radio::Windows { radio_off: true, .. } => self.enter(Phase::RadioOff),
                    _ => self.fall_asleep(now),
                }
                None
            }
            (Phase::RadioOff, AtEvent::Done { command: Command::Radio(false), result }) => {
                // The modem says nothing more (no +CEREG: 0): not registered from here on. If
                // it did not answer, the next window finds out.
                if result.is_ok() {
                    self.radio_off = true;
                    self.registered = false;
                }
                self.fall_asleep(now);
                None
            }
            (Phase::Close { backoff }, AtEvent::Closed(_)) => {
                // Whatever the outcome, the client is not open now. Forget the publishes that
                // will never be answered (the line is idle: this URC came after the OK).
                if !self.modem.is_busy() {
                    self.modem.reset();
                }
                if backoff {
                    self.back_off(now, self.reopen_stage());
                } else {
                    self.enter(Phase::Open);
                }
                None
            }
            // Outcomes of earlier phases (after a failure moved on), AT+CEREG?'s Done: nothing.
            _ => None,
        }
    }

    fn take_imei(&mut self, imei: Imei) {
        let digits = imei.as_str().as_bytes();
        if digits.len() == IMEI_DIGITS {
            self.dev[1..].copy_from_slice(digits);
        }
    }

    fn go_online(&mut self, now: u32) -> Option<Note> {
        self.enter(Phase::Online);
        self.backoff.reset();
        self.outbox.rewind();
        self.state_dirty = true;
        self.state_msg = None;
        self.sent_since_connect = 0;
        self.said_offline = false;
        self.stats.connects += 1;
        self.heard_at = now;
        if self.window_online.is_none() {
            self.window_online = Some(now);
        }
        // A routine publish window is not news.
        let tell = self.tell_connect;
        self.tell_connect = false;
        tell.then_some(Note::Connected)
    }

    /// Everything published is acked by the twin (nothing in the outbox, no drop range
    /// waiting to become a `dropped` event).
    fn all_acked(&self) -> bool {
        self.outbox.is_empty() && self.outbox.open_drop().is_none()
    }

    /// When the current window must close even if not done ([`WINDOW_MAX_MS`]).
    fn window_limit(&self) -> u32 {
        self.window_online.unwrap_or(self.heard_at).wrapping_add(WINDOW_MAX_MS)
    }

    /// Online with publish windows: is the window over? Done (everything sent and acked, no
    /// PUBACK owed, the state sent, [`LINGER_MS`] of quiet from the broker), or too long.
    fn window_over(&self, now: u32) -> bool {
        let Radio::Windows { .. } = self.radio else { return false };
        if reached(now, self.window_limit()) {
            return true;
        }
        self.modem.is_idle()
            && !self.state_dirty
            && self.state_msg.is_none()
            && self.pending_applied.is_none()
            && self.all_acked()
            && reached(now, self.heard_at.wrapping_add(LINGER_MS))
    }

    /// The window's link is closed (and the radio off, if so): sleep until the next window,
    /// `every_s` after this one opened, or `every_s` from now if that has passed.
    fn fall_asleep(&mut self, now: u32) {
        let period = match self.radio {
            Radio::Windows { every_s, .. } => every_s.saturating_mul(1000),
            Radio::AlwaysOn => 0,
        };
        let mut until = self.window_opened.wrapping_add(period);
        if reached(now, until) {
            until = now.wrapping_add(period);
        }
        self.stats.windows += 1;
        self.enter(Phase::Asleep { until });
    }

    /// Asleep: open the next window before its time? When the records made since the last
    /// window fill half the outbox (a long period must not overflow it only because the radio
    /// is off), or when the policy is not windows any more.
    fn wake_early(&self) -> bool {
        !matches!(self.radio, Radio::Windows { .. }) || self.outbox.unsent() >= OUTBOX_SLOTS / 2
    }

    fn on_down(&mut self, now: u32, down: Result<Down, telemetry::Error>) -> Option<Note> {
        match down {
            Ok(Down::Ack { boot, seq }) => {
                self.outbox.ack(boot, seq);
                self.stats.acks += 1;
                None
            }
            Ok(Down::Desired(d)) => {
                // Acted on when the requested interval differs from the last one acted on, not
                // per version: the twin re-sends desired (with a new version) after every state
                // message whose reported state differs, e.g. when the value was clamped or the
                // desired state holds keys this firmware does not know.
                let want = d.interval_s?;
                if self.last_desired == Some(want) {
                    return None;
                }
                self.last_desired = Some(want);
                self.interval_s = want.clamp(1, MAX_INTERVAL_S);
                self.state_dirty = true;
                if !self.event(now, Event::DesiredApplied { version: d.version }) {
                    self.pending_applied = Some(d.version);
                }
                Some(Note::DesiredApplied { version: d.version, interval_s: self.interval_s })
            }
            Err(_) => {
                self.stats.down_rejected += 1;
                None
            }
        }
    }

    /// Sends the phase's command once; a busy line or a wait still taken just delays it.
    fn issue(
        &mut self,
        now: u32,
        f: impl FnOnce(&mut Modem<'b, S>, &str) -> Result<(), AtError>,
    ) -> Option<Note> {
        if self.sent {
            return None;
        }
        let mut buf = [0u8; 48];
        let dev = core::str::from_utf8(&self.dev).unwrap_or("d");
        let arg = match self.phase {
            Phase::Connect => dev,
            _ => topic(dev, TopicKind::Down, &mut buf).unwrap_or(""),
        };
        match f(&mut self.modem, arg) {
            Ok(()) => {
                self.sent = true;
                None
            }
            Err(AtError::Busy | AtError::InFlight) => None,
            // An argument the modem cannot take: a bug; back off rather than spin.
            Err(_) => self.fail(now, Reason::Modem, Stage::Probe),
        }
    }

    fn step(&mut self, now: u32) -> Option<Note> {
        match self.phase {
            Phase::Backoff { until, next } => {
                if reached(now, until) {
                    self.enter(match next {
                        Stage::Probe => Phase::Probe,
                        Stage::Register => Phase::Register,
                        Stage::Open => Phase::Open,
                    });
                    return self.step(now);
                }
                None
            }
            Phase::Probe => {
                if !self.sent {
                    self.deadline = now.wrapping_add(PROBE_MS);
                    return self.issue(now, |m, _| m.at());
                }
                if !reached(now, self.deadline) {
                    return None;
                }
                // No answer: forget the command (its own, longer timeout would come later).
                self.modem.reset();
                let first = !self.said_no_modem && !self.said_offline;
                self.back_off(now, Stage::Probe);
                if first {
                    self.said_no_modem = true;
                    self.said_offline = true;
                    self.tell_connect = true;
                    return Some(Note::NoModem);
                }
                None
            }
            Phase::Imei => self.issue(now, |m, _| m.query_imei()),
            Phase::Radio => self.issue(now, |m, _| m.set_radio(true)),
            Phase::Register => {
                if self.registered {
                    self.enter(Phase::Open);
                    return self.step(now);
                }
                if !self.sent {
                    self.deadline = now.wrapping_add(REGISTER_MS);
                    return self.issue(now, |m, _| m.query_registration());
                }
                if reached(now, self.deadline) {
                    // From the top: a modem that restarted or went away shows up there.
                    return self.fail(now, Reason::NoCoverage, Stage::Probe);
                }
                None
            }
            Phase::Open => self.issue(now, |m, _| m.open(BROKER_HOST, BROKER_PORT)),
            Phase::Connect => self.issue(now, |m, dev| m.connect(dev)),
            Phase::Subscribe => self.issue(now, |m, down| m.subscribe(down, QoS::AtLeastOnce).map(|_| ())),
            Phase::Close { .. } | Phase::EndWindow => self.issue(now, |m, _| m.close()),
            Phase::RadioOff => self.issue(now, |m, _| m.set_radio(false)),
            Phase::Online => {
                if self.window_online.is_none() && self.radio != Radio::AlwaysOn {
                    self.window_online = Some(now);
                }
                if self.window_over(now) {
                    self.enter(Phase::EndWindow);
                    return self.step(now);
                }
                self.pump(now)
            }
            Phase::Asleep { until } => {
                let early = self.wake_early();
                if !early && !reached(now, until) {
                    return None;
                }
                // The next window: on schedule it counts from `until` (the cadence does not
                // drift with the poll's lateness), early from now.
                self.window_opened = if reached(now, until) { until } else { now };
                self.window_online = None;
                let next = if self.radio_off { Phase::Radio } else { self.reopen_phase() };
                self.enter(next);
                self.step(now)
            }
        }
    }

    /// Online: the next publish, if the line and the in-flight limits allow. The first record
    /// of a connection goes first (the `boot` event on the first), then the state, then the
    /// rest in seq order.
    fn pump(&mut self, now: u32) -> Option<Note> {
        if self.modem.is_busy() {
            return None;
        }
        let in_flight = self.modem.publishes_in_flight();
        if in_flight >= MAX_IN_FLIGHT {
            return None;
        }
        let records_in_flight = in_flight - usize::from(self.state_msg.is_some());
        let state_first = self.sent_since_connect > 0 || self.outbox.unsent() == 0;
        if self.state_dirty && self.state_msg.is_none() && state_first {
            self.publish_state(now);
            return None;
        }
        if records_in_flight >= RECORDS_IN_FLIGHT {
            return None;
        }
        let rec = self.outbox.next_unsent()?;
        let mut payload = [0u8; MAX_RECORD_LEN];
        let mut buf = [0u8; 48];
        let dev = core::str::from_utf8(&self.dev).unwrap_or("d");
        let sent = match (encode_record(&rec, &mut payload), topic(dev, rec.topic_kind(), &mut buf)) {
            (Ok(n), Ok(t)) => self.modem.publish(t, &payload[..n], QoS::AtLeastOnce, false).is_ok(),
            _ => false,
        };
        if !sent {
            // Not handed to the modem: send it (and what follows) again.
            self.outbox.rewind();
            return None;
        }
        self.sent_since_connect += 1;
        match rec.body {
            Body::Dropped(range) if rec.seq > self.dropped_noted => {
                self.dropped_noted = rec.seq;
                Some(Note::Dropped(range))
            }
            _ => None,
        }
    }

    fn publish_state(&mut self, now: u32) {
        let reported = Reported {
            slot: self.id.slot,
            version: self.id.version,
            interval_s: self.interval_s,
            buffered: self.outbox.len() as u32,
            dropped: self.outbox.dropped_records(),
            battery: self.battery,
        };
        let mut payload = [0u8; TX_BUFFER];
        let mut buf = [0u8; 48];
        let dev = core::str::from_utf8(&self.dev).unwrap_or("d");
        let (Ok(n), Ok(t)) = (
            encode_state(self.id.boot, now, &reported, &mut payload),
            topic(dev, TopicKind::State, &mut buf),
        ) else {
            return;
        };
        if let Ok(id) = self.modem.publish(t, &payload[..n], QoS::AtLeastOnce, TopicKind::State.retain()) {
            self.state_msg = Some(id);
            self.state_dirty = false;
        }
    }
}
