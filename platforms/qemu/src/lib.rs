//! twinbed's QEMU backend: runs a firmware ELF on `qemu-system-arm` for a board.
//!
//! A run is a [`Session`] the caller pulls [`Event`]s from (console lines, stops at the sample
//! hook, the guest's exit); the caller's side of the contract (what to do with a line, which
//! temperature to set at a sample, when to stop) lives in the `twinbed` library, which drives
//! this backend and its own engine the same way.
//!
//! - **Launch** through `duct`, paused (`-S`), with deterministic virtual time
//!   (`-icount shift=N,sleep=off`: N ns per instruction, idle time skipped), UART0 and semihosting
//!   on QEMU's stdout (read line by line), stderr kept in a file for error reports.
//! - **QMP** (QEMU's control protocol, through the `qapi` crate) sets sensor values
//!   (`qom-set /machine/peripheral/<id> temperature <milli-°C>`) and starts the machine.
//! - **Sync on virtual time**: if the ELF has the testbed hook `twinbed_sample_hook`, a breakpoint
//!   on it (through QEMU's gdbstub) stops the guest right before each sensor read. The virtual
//!   clock is frozen while the VM is stopped, so sensor values set then land at a reproducible
//!   point: the same inputs give the same console, byte for byte.
//! - **Lifecycle**: a wall-clock timeout, and no orphan QEMU ever: the child is killed when the
//!   run ends early or its handle is dropped, and it carries `PR_SET_PDEATHSIG` so the kernel kills
//!   it if our process dies (even by SIGKILL). Ctrl-C reaches QEMU through the process group.

pub mod gdb;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use twinbed_board::Board;

pub use twinbed_contract::hook::SamplePoint;

/// What can go wrong running QEMU. Guest failures are not errors: they are [`Event`]s.
#[derive(Debug, thiserror::Error)]
pub enum QemuError {
    /// The QEMU binary is not installed.
    #[error(
        "`{binary}` was not found on PATH (QEMU is not installed). Install it with \
         `sudo apt-get install -y qemu-system-arm` (Debian/Ubuntu), or point TWINBED_QEMU at the \
         binary; `cargo xtask test` and `cargo xtask emulate --engine qemu` install it for you."
    )]
    NotInstalled {
        /// The binary looked for.
        binary: String,
    },
    /// The board has no QEMU machine.
    #[error("board `{board}` has no [qemu] machine in its board file, so QEMU cannot run it")]
    NoMachine {
        /// Board name.
        board: String,
    },
    /// QEMU could not be started.
    #[error("could not start {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: String,
        /// Why.
        source: std::io::Error,
    },
    /// QEMU exited or broke before or while we were driving it.
    #[error("QEMU died: {what}.{}", stderr_tail(.stderr))]
    Died {
        /// What we were doing or what happened.
        what: String,
        /// The tail of QEMU's stderr.
        stderr: String,
    },
    /// A control channel (QMP or gdbstub) failed.
    #[error("QEMU's {channel} channel failed while {doing}: {detail}.{}", stderr_tail(.stderr))]
    Control {
        /// `QMP` or `gdbstub`.
        channel: &'static str,
        /// What we were doing.
        doing: String,
        /// The error.
        detail: String,
        /// The tail of QEMU's stderr.
        stderr: String,
    },
    /// Local I/O (temporary directory and such).
    #[error("I/O error while {doing}: {source}")]
    Io {
        /// What we were doing.
        doing: &'static str,
        /// The error.
        source: std::io::Error,
    },
}

fn stderr_tail(stderr: &str) -> String {
    if stderr.trim().is_empty() {
        String::new()
    } else {
        format!(" QEMU's stderr ended with:\n{}", stderr.trim_end())
    }
}

/// How to run a firmware.
#[derive(Clone, Debug)]
pub struct RunConfig {
    /// The board (its `[qemu] machine` and sensor devices are used).
    pub board: Board,
    /// The firmware ELF.
    pub elf: PathBuf,
    /// `-icount shift=N,sleep=off` (N ns of virtual time per instruction); `None` runs QEMU
    /// free (real time, not deterministic).
    pub icount_shift: Option<u8>,
    /// Wall-clock limit for the whole run.
    pub timeout: Duration,
    /// Address of the sample hook (from the ELF's symbols), if the firmware has one. With it,
    /// the session stops at every sample ([`Event::Sample`]).
    pub sample_hook: Option<u32>,
    /// Temperature (milli-°C) to set before the guest starts, if the board has a TMP105.
    pub initial_temperature: Option<i32>,
    /// Raw files to put into memory before the guest starts, at these addresses (QEMU's generic
    /// loader, `-device loader,file=F,addr=A,force-raw=on`), after the ELF.
    pub preload: Vec<(u32, PathBuf)>,
    /// The board's second UART (UART1, the modem's) as a TCP client of this server
    /// (`-chardev socket,...` and a second `-serial`): twinbed-modem's chardev bridge listens
    /// there. `None`: UART1 is left unconnected.
    pub serial1: Option<std::net::SocketAddr>,
}

/// What a running [`Session`] reports next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// One line of guest console output (UART0 and semihosting), without its line ending.
    Line(String),
    /// The guest stopped at the sample hook, right before it reads its sensors; the virtual
    /// clock is frozen until [`Session::resume`].
    Sample(SamplePoint),
    /// The guest exited (semihosting SYS_EXIT / SYS_EXIT_EXTENDED) with this status.
    Exited(i32),
    /// The wall-clock timeout passed first (QEMU has been killed).
    TimedOut,
}

/// The QEMU binary to use: `$TWINBED_QEMU`, else `qemu-system-arm` on PATH.
pub fn find_qemu() -> Result<PathBuf, QemuError> {
    let binary = std::env::var("TWINBED_QEMU").unwrap_or_else(|_| "qemu-system-arm".to_owned());
    let p = Path::new(&binary);
    if p.components().count() > 1 {
        return if p.is_file() { Ok(p.to_owned()) } else { Err(QemuError::NotInstalled { binary }) };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&binary))
        .find(|c| c.is_file())
        .ok_or(QemuError::NotInstalled { binary })
}

/// The command line (without the binary) for a run; public so users can reproduce a run by hand.
pub fn command_line(cfg: &RunConfig, qmp: &Path, gdb: Option<&Path>) -> Result<Vec<String>, QemuError> {
    let machine =
        cfg.board.qemu.as_ref().ok_or_else(|| QemuError::NoMachine { board: cfg.board.name.clone() })?;
    let mut args: Vec<String> = vec![
        "-M".into(),
        machine.machine.clone(),
        "-display".into(),
        "none".into(),
        "-monitor".into(),
        "none".into(),
        "-serial".into(),
        "stdio".into(),
        "-semihosting-config".into(),
        "enable=on,target=native".into(),
        "-S".into(),
        "-qmp".into(),
        format!("unix:{},server=on,wait=off", qmp.display()),
    ];
    if let Some(addr) = cfg.serial1 {
        // `-serial` options are taken in UART order: stdio above is UART0, this one UART1.
        args.extend([
            "-chardev".into(),
            format!("socket,id=uart1,host={},port={}", addr.ip(), addr.port()),
            "-serial".into(),
            "chardev:uart1".into(),
        ]);
    }
    if let Some(shift) = cfg.icount_shift {
        args.extend(["-icount".into(), format!("shift={shift},sleep=off")]);
    }
    if let Some(g) = gdb {
        args.extend(["-gdb".into(), format!("unix:{},server=on,wait=off", g.display())]);
    }
    for d in &cfg.board.devices {
        match d.model.as_str() {
            "tmp105" => {
                args.extend(["-device".into(), format!("tmp105,address=0x{:x},id={}", d.address, d.name)])
            }
            other => {
                tracing::warn!(target: "qemu", "device `{}` (model {other}) has no QEMU equivalent; left out", d.name)
            }
        }
    }
    args.extend(["-kernel".into(), cfg.elf.display().to_string()]);
    for (addr, file) in &cfg.preload {
        args.extend([
            "-device".into(),
            format!("loader,file={},addr=0x{addr:x},force-raw=on", file.display()),
        ]);
    }
    Ok(args)
}

/// A running QEMU, killed on drop.
struct Child {
    reader: Arc<duct::ReaderHandle>,
    /// QEMU's stderr log, opened for reading; it stays readable after its directory is removed.
    stderr_file: std::fs::File,
}

impl Child {
    fn stderr(&self) -> String {
        use std::io::{Seek, SeekFrom};
        let mut f = &self.stderr_file;
        let mut text = String::new();
        if f.seek(SeekFrom::Start(0)).is_ok() {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn died(&self, what: impl Into<String>) -> QemuError {
        QemuError::Died { what: what.into(), stderr: self.stderr() }
    }

    fn kill(&self) {
        if let Err(e) = self.reader.kill() {
            tracing::debug!(target: "qemu", "kill: {e}");
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}

fn connect(path: &Path, child: &Child, deadline: Instant, what: &str) -> Result<UnixStream, QemuError> {
    loop {
        match UnixStream::connect(path) {
            Ok(s) => return Ok(s),
            Err(_) if Instant::now() < deadline => {
                if let Ok(Some(out)) = child.reader.try_wait() {
                    return Err(
                        child.died(format!("it exited ({}) before its {what} socket came up", out.status))
                    );
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(child.died(format!("its {what} socket did not come up in time ({e})"))),
        }
    }
}

type Qmp = qapi::Qmp<qapi::Stream<BufReader<UnixStream>, UnixStream>>;

fn qmp_err(child: &Child, doing: impl Into<String>, e: impl std::fmt::Display) -> QemuError {
    QemuError::Control { channel: "QMP", doing: doing.into(), detail: e.to_string(), stderr: child.stderr() }
}

fn set_temperature(qmp: &mut Qmp, child: &Child, device: &str, milli_c: i32) -> Result<(), QemuError> {
    let path = format!("/machine/peripheral/{device}");
    qmp.execute(&qapi::qmp::qom_set {
        path: path.clone(),
        property: "temperature".into(),
        value: milli_c.into(),
    })
    .map_err(|e| qmp_err(child, format!("setting {path} temperature to {milli_c}"), e))?;
    Ok(())
}

/// What the reader threads send the session.
enum Msg {
    Line(String),
    StdoutClosed,
    Gdb(String),
    GdbClosed,
}

/// A running QEMU: pull its [`Event`]s with [`Session::next_event`]; after an
/// [`Event::Sample`], [`Session::resume`] sets the sensor and lets the guest go on. Dropping the
/// session kills QEMU, so a caller that wants to stop early just drops it.
pub struct Session {
    child: Child,
    rx: Receiver<Msg>,
    qmp: Qmp,
    gdb: Option<gdb::GdbClient>,
    /// Console lines that arrived while a gdb reply was awaited: handed out first.
    pending: VecDeque<String>,
    /// The board's TMP105 device id, if it has one.
    tmp105: Option<String>,
    sample_hook: Option<u32>,
    deadline: Instant,
}

impl Session {
    /// Starts `cfg.elf` on QEMU: the guest runs until it exits or, with a sample hook, reaches
    /// it; [`Session::next_event`] reports what happens.
    pub fn start(cfg: &RunConfig) -> Result<Session, QemuError> {
        let binary = find_qemu()?;
        let dir = tempfile::Builder::new()
            .prefix("twinbed-qemu-")
            .tempdir()
            .map_err(|source| QemuError::Io { doing: "creating a temporary directory", source })?;
        let qmp_path = dir.path().join("qmp.sock");
        let gdb_path = dir.path().join("gdb.sock");
        let stderr_path = dir.path().join("stderr.log");
        let args = command_line(cfg, &qmp_path, cfg.sample_hook.map(|_| gdb_path.as_path()))?;
        tracing::info!(target: "qemu", "{} {}", binary.display(), args.join(" "));

        let reader = duct::cmd(&binary, &args)
            .stdin_null()
            .stderr_path(&stderr_path)
            .unchecked()
            .before_spawn(|command| {
                use std::os::unix::process::CommandExt;
                // SAFETY: only async-signal-safe calls between fork and exec.
                unsafe {
                    command.pre_exec(|| {
                        // The kernel kills QEMU when the thread that spawned it dies: no orphans.
                        if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                            return Err(std::io::Error::last_os_error());
                        }
                        Ok(())
                    });
                }
                Ok(())
            })
            .reader()
            .map_err(|source| QemuError::Spawn { binary: binary.display().to_string(), source })?;
        let stderr_file = std::fs::File::open(&stderr_path)
            .map_err(|source| QemuError::Io { doing: "opening QEMU's stderr log", source })?;
        let child = Child { reader: Arc::new(reader), stderr_file };
        let deadline = Instant::now() + cfg.timeout;
        let startup_deadline = Instant::now() + Duration::from_secs(10).min(cfg.timeout);

        let (tx, rx) = mpsc::channel::<Msg>();
        spawn_stdout_reader(Arc::clone(&child.reader), tx.clone());

        let qmp_stream = connect(&qmp_path, &child, startup_deadline, "QMP")?;
        let qmp_reader = qmp_stream.try_clone().map_err(|e| qmp_err(&child, "cloning the socket", e))?;
        let mut qmp: Qmp = qapi::Qmp::new(qapi::Stream::new(BufReader::new(qmp_reader), qmp_stream));
        qmp.handshake().map_err(|e| qmp_err(&child, "negotiating capabilities", e))?;

        let tmp105 = cfg.board.device_of_model("tmp105").map(|d| d.name.clone());
        if let (Some(dev), Some(t)) = (&tmp105, cfg.initial_temperature) {
            set_temperature(&mut qmp, &child, dev, t)?;
        }

        let mut session = Session {
            child,
            rx,
            qmp,
            gdb: None,
            pending: VecDeque::new(),
            tmp105,
            sample_hook: cfg.sample_hook,
            deadline,
        };
        match cfg.sample_hook {
            Some(addr) => {
                let stream = connect(&gdb_path, &session.child, startup_deadline, "gdbstub")?;
                let (client, read_half) =
                    gdb::GdbClient::new(stream).map_err(|e| session.gdb_err("connecting", e))?;
                gdb::spawn_reader(read_half, tx.clone(), Msg::Gdb, Msg::GdbClosed);
                session.gdb = Some(client);
                // Thumb function symbols have bit 0 set; the breakpoint goes on the instruction.
                let doing = "setting the hook breakpoint";
                session.gdb_send(&format!("Z0,{:x},2", addr & !1), doing)?;
                session.expect_gdb(doing, |p| p == "OK")?;
                session.gdb_send("c", "starting the guest")?;
            }
            None => {
                // A guest that exits at once (semihosting) can take QEMU down before QMP
                // answers `cont`: the command was delivered, so a lost reply is not an error
                // here. `next_event` sees QEMU's exit (stdout closes) and reports the guest's
                // status; if QEMU really stopped working, that shows there too.
                if let Err(e) = session.qmp.execute(&qapi::qmp::cont {}) {
                    tracing::debug!(target: "qemu", "no QMP reply to `cont` ({e}); waiting for QEMU's output");
                }
            }
        }
        drop(tx);
        // Both sockets are connected and the log is open: remove the run's directory now, so
        // nothing is left behind even if this process is killed (SIGINT, SIGKILL) later.
        if let Err(e) = dir.close() {
            tracing::debug!(target: "qemu", "removing the run directory: {e}");
        }
        Ok(session)
    }

    /// The next thing that happens: a console line, a stop at the sample hook (answer it with
    /// [`Session::resume`]), the guest's exit or the wall-clock timeout (after those two,
    /// QEMU is gone).
    pub fn next_event(&mut self) -> Result<Event, QemuError> {
        if let Some(line) = self.pending.pop_front() {
            return Ok(Event::Line(line));
        }
        loop {
            let now = Instant::now();
            if now >= self.deadline {
                self.child.kill();
                return Ok(Event::TimedOut);
            }
            match self.rx.recv_timeout(self.deadline - now) {
                Ok(Msg::Line(line)) => return Ok(Event::Line(line)),
                Ok(Msg::StdoutClosed) | Err(RecvTimeoutError::Disconnected) => {
                    return finish(&self.child, self.deadline)
                }
                Ok(Msg::Gdb(packet)) => {
                    if self.gdb.is_none() {
                        continue;
                    }
                    if packet.starts_with('W') || packet.starts_with('X') {
                        // The guest ended (exit or signal); stdout's EOF follows.
                        continue;
                    }
                    if !(packet.starts_with('T') || packet.starts_with('S')) {
                        tracing::debug!(target: "qemu", "gdbstub said {packet:?} while running");
                        continue;
                    }
                    let doing = "reading registers";
                    self.gdb_send("g", doing)?;
                    let regs = self.expect_gdb(doing, |p| p.len() >= 128)?;
                    let Some(regs) = regs.as_deref().and_then(gdb::parse_core_registers) else {
                        return Err(self.child.died("the gdbstub's register reply could not be parsed"));
                    };
                    return Ok(Event::Sample(SamplePoint::from_registers(&regs)));
                }
                Ok(Msg::GdbClosed) => {}
                Err(RecvTimeoutError::Timeout) => {}
            }
        }
    }

    /// After an [`Event::Sample`]: sets the board's TMP105 to `temperature` (milli-°C; `None`
    /// leaves it) and lets the guest go on.
    pub fn resume(&mut self, temperature: Option<i32>) -> Result<(), QemuError> {
        if let (Some(dev), Some(t)) = (&self.tmp105, temperature) {
            set_temperature(&mut self.qmp, &self.child, dev, t)?;
        }
        // QEMU stops again at once if we continue on the breakpoint, so step over it the way
        // gdb does: remove it, single-step, put it back, continue.
        let bp = format!("{:x},2", self.sample_hook.unwrap_or(0) & !1);
        let doing = "stepping over the hook";
        self.gdb_send(&format!("z0,{bp}"), doing)?;
        self.expect_gdb(doing, |p| p == "OK")?;
        self.gdb_send("s", doing)?;
        self.expect_gdb(doing, |p| p.starts_with('T') || p.starts_with('S'))?;
        self.gdb_send(&format!("Z0,{bp}"), doing)?;
        self.expect_gdb(doing, |p| p == "OK")?;
        self.gdb_send("c", "resuming the guest")
    }

    fn gdb_err(&self, doing: &str, e: std::io::Error) -> QemuError {
        QemuError::Control {
            channel: "gdbstub",
            doing: doing.into(),
            detail: e.to_string(),
            stderr: self.child.stderr(),
        }
    }

    fn gdb_send(&mut self, packet: &str, doing: &str) -> Result<(), QemuError> {
        let sent = match self.gdb.as_mut() {
            Some(client) => client.send(packet),
            None => Err(std::io::Error::new(std::io::ErrorKind::NotConnected, "no gdbstub connection")),
        };
        sent.map_err(|e| self.gdb_err(doing, e))
    }

    /// Waits for a gdb packet accepted by `ok`, keeping console lines that arrive meanwhile for
    /// [`Session::next_event`]. `Ok(None)` when the guest ended first (QEMU exited: its status
    /// is then read by [`finish`]).
    fn expect_gdb(&mut self, doing: &str, ok: impl Fn(&str) -> bool) -> Result<Option<String>, QemuError> {
        loop {
            let left = self.deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(Msg::Line(line)) => self.pending.push_back(line),
                Ok(Msg::Gdb(p)) if ok(&p) => return Ok(Some(p)),
                Ok(Msg::Gdb(p)) => {
                    return Err(QemuError::Control {
                        channel: "gdbstub",
                        doing: doing.into(),
                        detail: format!("unexpected reply {p:?}"),
                        stderr: self.child.stderr(),
                    })
                }
                Ok(Msg::GdbClosed) | Ok(Msg::StdoutClosed) | Err(_) => {
                    return Err(self.child.died(format!("the connection closed while {doing}")))
                }
            }
        }
    }
}

/// After stdout closed: QEMU is exiting; its status is the guest's semihosting exit status,
/// unless QEMU itself failed (a signal, or an error message on stderr).
fn finish(child: &Child, deadline: Instant) -> Result<Event, QemuError> {
    loop {
        match child.reader.try_wait() {
            Ok(Some(out)) => {
                let stderr = child.stderr();
                return match out.status.code() {
                    // QEMU reports its own failures on stderr ("qemu-system-arm: <error>",
                    // "qemu: fatal: ..."); a guest exit leaves at most warnings there
                    // (semihosting output goes to stdout).
                    Some(code) if !stderr.lines().any(is_qemu_error) => Ok(Event::Exited(code)),
                    Some(code) => Err(child.died(format!("it exited with status {code}"))),
                    None => Err(child.died(format!("it was killed ({})", out.status))),
                };
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(2)),
            Ok(None) => {
                child.kill();
                return Ok(Event::TimedOut);
            }
            Err(e) => return Err(child.died(format!("waiting for it failed: {e}"))),
        }
    }
}

/// Whether a line of QEMU's stderr reports an error of QEMU's own (not a warning).
fn is_qemu_error(line: &str) -> bool {
    (line.starts_with("qemu-system-") || line.starts_with("qemu: ")) && !line.contains(": warning: ")
}

/// Lines QEMU's own device models print to its stdout, which is also the console's serial
/// (`-serial stdio`): not the guest's output, so they are dropped. QEMU 7.2's TMP105 model
/// prints `tmp105_write: TMP105 shutdown` (a `printf` in hw/sensor/tmp105.c) when the guest
/// sets the configuration's SD bit, as the reference app does at boot to convert one-shot.
const QEMU_STDOUT_NOISE: &[&str] = &["tmp105_write: TMP105 shutdown"];

fn spawn_stdout_reader(reader: Arc<duct::ReaderHandle>, tx: Sender<Msg>) {
    std::thread::spawn(move || {
        let mut r = BufReader::new(&*reader);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n' | b'\r')) {
                        buf.pop();
                    }
                    if QEMU_STDOUT_NOISE.iter().any(|n| buf == n.as_bytes()) {
                        continue;
                    }
                    if tx.send(Msg::Line(String::from_utf8_lossy(&buf).into_owned())).is_err() {
                        return;
                    }
                }
            }
        }
        // Drain whatever is left so QEMU never blocks on a full pipe while exiting.
        let _ = std::io::copy(&mut r.take(u64::MAX), &mut std::io::sink());
        let _ = tx.send(Msg::StdoutClosed);
    });
}
