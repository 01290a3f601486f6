//! A device on the network: the machine with the virtual cellular modem (`twinbed-modem`)
//! attached to its UART1, the modem's link a real MQTT connection, all on the machine's virtual
//! time.
//!
//! # How the loop goes
//! The machine runs until the modem's next deadline, the end of the run or a byte the firmware
//! sends on UART1 ([`Machine::attach_serial`] stops the run there). Bytes go to the modem
//! stamped with their virtual time; at each modem deadline the modem is polled (it talks to the
//! broker then, while the machine is frozen) and the bytes due for the firmware are put on the
//! UART. Virtual time never waits for the host network: the modem places every answer at a
//! modelled time.
//!
//! # Determinism
//! Messages the broker sends the device arrive on the host whenever they arrive. They enter the
//! virtual timeline only at **sync points**: after every completed publish or subscribe, and when
//! the scenario asks ([`NetDevice::sync`]). At a sync point the runner first waits (real time)
//! until the network is quiet, which only the backend can tell: [`Quiet::wait_quiet`] (the twin
//! knows what it received from the device and what it sent it). Then the modem hands the
//! messages that arrived to the firmware. So a run's transcript does not depend on how fast the
//! host, the broker or the twin are.
//!
//! The firmware reaches the broker as `broker.twinbed:1883`; the link connects to the real
//! broker instead ([`Redirect`]).

use crate::runner::{Runner, Sources};
use std::net::SocketAddr;
use std::time::Duration;
use twinbed_engine::{Machine, Stop};
use twinbed_modem::{
    Incoming, Link, LinkCounters, LinkError, LinkStatus, Modem, MqttLink, MqttLinkConfig, Qos,
};

/// The UART the modem sits on (mps2-an385's UART1).
pub const MODEM_UART: u8 = 1;

/// The broker's name as the firmware knows it.
pub const BROKER_HOST: &str = "broker.twinbed";
/// The broker's port as the firmware knows it.
pub const BROKER_PORT: u16 = 1883;

/// What the backend must say before incoming messages are handed to the firmware.
pub trait Quiet {
    /// Blocks until the backend has handled every message `device`'s link published
    /// (`link().published`) and everything the backend sent `device` has reached the link
    /// (`link().received`); an error if that does not happen in reasonable real time. `link`
    /// reads the link's counters now (they move while the host network works).
    fn wait_quiet(&mut self, device: &str, link: &dyn Fn() -> LinkCounters) -> Result<(), String>;

    /// `device` has no MQTT session now (its modem is off or its link closed between publish
    /// windows), and its sessions are clean: what the backend sent it until now can never
    /// arrive, so later [`Quiet::wait_quiet`] calls stop waiting for it. `link` is the link's
    /// counters now. Default: nothing to forget.
    fn forget_undelivered(&mut self, _device: &str, _link: LinkCounters) {}
}

/// No backend to ask: waits a fixed real time (50 ms) for stragglers. Not deterministic; for
/// runs against a broker nobody here controls.
pub struct GracePeriod;

impl Quiet for GracePeriod {
    fn wait_quiet(&mut self, _: &str, _: &dyn Fn() -> LinkCounters) -> Result<(), String> {
        std::thread::sleep(Duration::from_millis(50));
        Ok(())
    }
}

/// A [`Link`] that connects to `to` whatever host and port the firmware asks for, when it asks
/// for [`BROKER_HOST`], and keeps a transcript of the MQTT traffic.
pub struct Redirect<L> {
    /// The link.
    pub inner: L,
    /// Where `broker.twinbed` really is.
    pub to: SocketAddr,
    /// Virtual time (ms) to stamp transcript lines with; the runner sets it.
    pub now_ms: u64,
    /// `[   time ms] > topic payload` for publishes, `<` for messages received, `*` for
    /// connection events.
    pub transcript: Vec<String>,
}

impl<L> Redirect<L> {
    fn note(&mut self, dir: char, what: &str) {
        self.transcript.push(format!("[{:>9} ms] {dir} {what}", self.now_ms));
    }
}

impl<L: Link> Link for Redirect<L> {
    fn open(&mut self, host: &str, port: u16) -> Result<(), LinkError> {
        let r = if host.eq_ignore_ascii_case(BROKER_HOST) && port == BROKER_PORT {
            let to = self.to;
            self.inner.open(&to.ip().to_string(), to.port())
        } else {
            self.inner.open(host, port)
        };
        self.note('*', &format!("open {host}:{port}: {}", if r.is_ok() { "ok" } else { "failed" }));
        r
    }
    fn connect(&mut self, client_id: &str) -> Result<(), LinkError> {
        let r = self.inner.connect(client_id);
        self.note('*', &format!("connect {client_id}: {}", if r.is_ok() { "ok" } else { "failed" }));
        r
    }
    fn subscribe(&mut self, topic: &str, qos: Qos) -> Result<u8, LinkError> {
        let r = self.inner.subscribe(topic, qos);
        self.note('*', &format!("subscribe {topic} qos {}: {r:?}", qos.as_u8()));
        r
    }
    fn publish(&mut self, topic: &str, payload: &[u8], qos: Qos, retain: bool) -> Result<(), LinkError> {
        let r = self.inner.publish(topic, payload, qos, retain);
        let flags = format!("qos {}{}", qos.as_u8(), if retain { " retain" } else { "" });
        let ok = if r.is_ok() { "" } else { " (failed)" };
        self.note('>', &format!("{topic} {} [{flags}]{ok}", String::from_utf8_lossy(payload)));
        r
    }
    fn disconnect(&mut self) {
        self.note('*', "disconnect");
        self.inner.disconnect()
    }
    fn close(&mut self) {
        self.note('*', "close");
        self.inner.close()
    }
    fn take_incoming(&mut self) -> Vec<Incoming> {
        let msgs = self.inner.take_incoming();
        for m in &msgs {
            self.note('<', &format!("{} {}", m.topic, String::from_utf8_lossy(&m.payload)));
        }
        msgs
    }
    fn status(&self) -> LinkStatus {
        self.inner.status()
    }
    fn counters(&self) -> LinkCounters {
        self.inner.counters()
    }
}

/// Why a networked run stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// The link could not be set up.
    #[error("the modem's network link could not start: {0}")]
    Link(std::io::Error),
    /// The backend did not go quiet.
    #[error("the network did not go quiet at virtual time {at_ms} ms: {why}")]
    NotQuiet {
        /// Virtual time of the sync point.
        at_ms: u64,
        /// What the backend said.
        why: String,
    },
    /// The board has no UART for the modem.
    #[error("the board has no UART{0} for the modem")]
    NoUart(u8),
    /// The firmware could not be read.
    #[error("cannot read the firmware {path}: {source}")]
    Read {
        /// The ELF.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The firmware is not an ELF the tools can use.
    #[error(transparent)]
    Elf(#[from] crate::elf::ElfError),
    /// The machine could not be built or loaded.
    #[error(transparent)]
    Machine(#[from] twinbed_engine::MachineError),
}

/// A reading the firmware took, as the emulator saw it at the sample hook (ground truth).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Boots of the device before this one (0: the first run).
    pub boot: u32,
    /// The firmware's reading number in this boot.
    pub index: u32,
    /// Its uptime then, ms.
    pub uptime_ms: u32,
    /// The temperature the sensor gave, m°C.
    pub milli_c: i32,
}

/// The machine, its modem and the modem's link.
pub struct NetDevice {
    /// The machine, its sensor and console.
    runner: Runner,
    /// The modem (plain data).
    pub modem: Modem,
    link: Redirect<MqttLink>,
    clock_hz: u64,
    /// Publishes and subscribes completed when the last sync point was made.
    synced: (u64, u64),
    /// Readings the firmware took, in order.
    pub readings: Vec<Reading>,
    boots: u32,
    last_index: Option<u32>,
    sample_hook: Option<u32>,
    temperature: i32,
    /// Entries of the modem's power log already handed to the machine's `modem` rail.
    power_applied: usize,
}

impl NetDevice {
    /// The ELF at `elf` on a new machine of `board`, with its modem (IMEI `imei`) linked to
    /// `broker`: the ELF's sample hook and the board's TMP105 (if it has one) wired up as
    /// [`NetDevice::new`] wants them.
    pub fn boot(
        board: &twinbed_board::Board,
        elf: &std::path::Path,
        imei: &str,
        broker: SocketAddr,
    ) -> Result<Self, NetError> {
        let data = std::fs::read(elf)
            .map_err(|source| NetError::Read { path: elf.display().to_string(), source })?;
        let mut machine = Machine::new(board)?;
        machine.load_elf(&data)?;
        let info = crate::elf::inspect(elf)?;
        Self::new(Runner::new(machine, board, Sources::Console), imei, broker, info.sample_hook)
    }

    /// `runner`'s machine (firmware loaded, reset) with a modem of IMEI `imei` whose link goes
    /// to the broker at `broker`. `sample_hook` is the firmware's `twinbed_sample_hook`
    /// (readings are recorded there).
    pub fn new(
        mut runner: Runner,
        imei: &str,
        broker: SocketAddr,
        sample_hook: Option<u32>,
    ) -> Result<Self, NetError> {
        let link = MqttLink::new(MqttLinkConfig::default()).map_err(NetError::Link)?;
        let mut modem = Modem::new(twinbed_modem::Timing::default());
        modem.set_imei(imei);
        runner.machine.attach_serial(MODEM_UART, true);
        if !runner.machine.serial_rx(MODEM_UART, &[]) {
            return Err(NetError::NoUart(MODEM_UART));
        }
        runner.set_sample_hook(sample_hook);
        let clock_hz = u64::from(runner.machine.clock_hz);
        Ok(NetDevice {
            runner,
            modem,
            link: Redirect { inner: link, to: broker, now_ms: 0, transcript: Vec::new() },
            clock_hz,
            synced: (0, 0),
            readings: Vec::new(),
            boots: 0,
            last_index: None,
            sample_hook,
            temperature: 0,
            power_applied: 0,
        })
        .map(|mut d| {
            d.apply_modem_power();
            d
        })
    }

    /// The machine.
    pub fn machine(&self) -> &Machine {
        &self.runner.machine
    }

    /// The machine, to change (poke memory, inject faults into its devices).
    pub fn machine_mut(&mut self) -> &mut Machine {
        &mut self.runner.machine
    }

    /// The device id the firmware uses: `d` and the IMEI.
    pub fn device_id(&self) -> String {
        format!("d{}", self.modem.imei())
    }

    /// Virtual time now, ms.
    pub fn now_ms(&self) -> u64 {
        self.runner.machine.now * 1000 / self.clock_hz
    }

    fn ns(&self, cycles: u64) -> u64 {
        (u128::from(cycles) * 1_000_000_000 / u128::from(self.clock_hz)) as u64
    }

    fn cycles(&self, ns: u64) -> u64 {
        (u128::from(ns) * u128::from(self.clock_hz)).div_ceil(1_000_000_000) as u64
    }

    /// Sets the sensor's temperature (m°C).
    pub fn set_temperature(&mut self, milli_c: i32) {
        self.runner.set_temperature(milli_c);
        self.temperature = milli_c;
    }

    /// A sync point now: waits until the network is quiet, then hands what arrived to the
    /// firmware (as +QMTRECV URCs at the current virtual time).
    pub fn sync(&mut self, quiet: &mut dyn Quiet) -> Result<(), NetError> {
        let id = self.device_id();
        let link = &self.link;
        // Sessions are clean: with no session, or a session that subscribed since the last sync
        // point, what the twin sent before cannot arrive.
        if self.modem.client_state() != twinbed_modem::ClientState::Connected
            || self.modem_subscribes() != self.synced.1
        {
            quiet.forget_undelivered(&id, link.counters());
        }
        quiet
            .wait_quiet(&id, &|| link.counters())
            .map_err(|why| NetError::NotQuiet { at_ms: self.now_ms(), why })?;
        let now = self.ns(self.runner.machine.now);
        self.link.now_ms = self.now_ms();
        self.modem.deliver_incoming(now, &mut self.link);
        self.push_modem_output();
        let c = self.modem.counters();
        self.synced = (c.publishes_ok + c.publishes_failed, self.modem_subscribes());
        Ok(())
    }

    fn modem_subscribes(&self) -> u64 {
        self.modem.counters().subscribes
    }

    /// Hands the modem's power-state changes to the machine's `modem` rail (boards with a
    /// `[power]` table), at the machine's `now`: the runner polls the modem at its deadlines,
    /// which is where its state changes, so `now` is within a cycle of each change.
    fn apply_modem_power(&mut self) {
        let log = self.modem.power_log();
        for &(_, state) in &log[self.power_applied.min(log.len())..] {
            let name = match state {
                twinbed_modem::PowerState::Off => "off",
                twinbed_modem::PowerState::Idle => "idle",
                twinbed_modem::PowerState::Rx => "rx",
                twinbed_modem::PowerState::Tx => "tx",
            };
            // Boards without a [power] table keep no accounts: nothing to tell.
            let _ = self.runner.machine.set_external_state("modem", name);
        }
        self.power_applied = log.len();
    }

    fn push_modem_output(&mut self) {
        let now = self.ns(self.runner.machine.now);
        let bytes = self.modem.take_output(now);
        if !bytes.is_empty() {
            self.runner.machine.serial_rx(MODEM_UART, &bytes);
        }
        self.apply_modem_power();
    }

    /// Runs for `cycles` of virtual time (or until the guest exits or something stops it);
    /// `on_sample` picks the temperature at each reading (None: leave it). Returns the stop
    /// that ended the run: [`Stop::Budget`] when the time is up.
    pub fn run(
        &mut self,
        cycles: u64,
        quiet: &mut dyn Quiet,
        on_sample: &mut dyn FnMut(&Reading) -> Option<i32>,
    ) -> Result<Stop, NetError> {
        let end = self.runner.machine.now.saturating_add(cycles);
        loop {
            // Whatever is due for the modem now.
            let now_ns = self.ns(self.runner.machine.now);
            if self.modem.next_deadline().is_some_and(|d| d <= now_ns) {
                self.link.now_ms = self.now_ms();
                self.modem.poll(now_ns, &mut self.link);
                self.push_modem_output();
                let c = self.modem.counters();
                if (c.publishes_ok + c.publishes_failed, self.modem_subscribes()) != self.synced {
                    self.sync(quiet)?;
                }
                continue;
            }
            if self.runner.machine.now >= end {
                return Ok(Stop::Budget);
            }
            let next = self.modem.next_deadline().map_or(end, |d| self.cycles(d).min(end));
            let stop = self.runner.step(next.saturating_sub(self.machine().now).max(1));
            for (t, _, byte) in self.runner.machine.take_serial_tx() {
                let t = self.ns(t);
                self.modem.write(t, byte);
            }
            match stop {
                Stop::Serial | Stop::Budget => {}
                Stop::StopPoint => {
                    let at = self.runner.sample_point();
                    let (uptime_ms, index) = (at.uptime_ms, at.index);
                    if self.last_index.is_some_and(|last| index <= last) {
                        self.boots += 1;
                    }
                    self.last_index = Some(index);
                    let mut r = Reading { boot: self.boots, index, uptime_ms, milli_c: 0 };
                    if let Some(t) = on_sample(&r) {
                        self.set_temperature(t);
                    }
                    r.milli_c = self.temperature;
                    self.readings.push(r);
                }
                other => return Ok(other),
            }
        }
    }

    /// The sample hook address this device records readings at.
    pub fn sample_hook(&self) -> Option<u32> {
        self.sample_hook
    }

    /// The modem's link (counters, status).
    pub fn link(&self) -> &dyn Link {
        &self.link
    }

    /// The console output so far (UART0 and semihosting); taking it empties it.
    pub fn take_console(&mut self) -> String {
        self.runner.console.take_text()
    }

    /// The MQTT transcript so far (see [`Redirect::transcript`]); taking it empties it.
    pub fn take_transcript(&mut self) -> Vec<String> {
        std::mem::take(&mut self.link.transcript)
    }

    /// Injects a modem fault (no coverage, extra latency, a dropped link) now.
    pub fn inject(&mut self, fault: twinbed_modem::Fault) {
        let now = self.ns(self.runner.machine.now);
        self.modem.inject(now, fault);
        self.apply_modem_power();
    }

    /// The modem and its link, for anything [`NetDevice::inject`] does not cover, at the current
    /// virtual time. Power-state changes made through it reach the machine at the next poll.
    pub fn modem_and_link(&mut self) -> (&mut Modem, &mut dyn Link, u64) {
        let now = self.ns(self.runner.machine.now);
        self.power_applied = self.power_applied.min(self.modem.power_log().len());
        (&mut self.modem, &mut self.link, now)
    }

    /// Power-cycles the device: the machine loses its RAM (flash stays), and the modem too
    /// (its link closes).
    pub fn power_cycle(&mut self) {
        let now = self.ns(self.runner.machine.now);
        self.runner.machine.power_cut(0);
        self.runner.machine.power_on();
        self.modem.power_cycle(now, &mut self.link);
        self.last_index = None;
        self.boots += 1;
    }
}
