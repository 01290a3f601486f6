//! The runner: one way to run firmware on an engine [`Machine`], used by every front end
//! (`twinbed run`, emulate, the A/B device, the sweep, the networked device, the benches).
//!
//! A [`Runner`] owns the machine and knows what the front ends would otherwise each decode on
//! their own:
//! - the **sample hook** (`twinbed_contract::hook`): the machine stops at the firmware's
//!   `twinbed_sample_hook`, and [`Runner::sample_point`] reads the hook's arguments from the
//!   core registers (the only place outside the engine that reads them);
//! - the **sensor**: the board's TMP105, looked up once from the board, set by
//!   [`Runner::set_temperature`];
//! - the **console**: which output sources are the console (UART0 and semihosting, as on QEMU's
//!   stdout) and how bytes become lines ([`Console`]);
//! - **stops to errors**: a guest asleep for good or locked up is a [`RunError`]
//!   ([`stop_error`]);
//! - the **wall-clock safety limit** and the caller's [`Driver`] ([`Runner::drive`]).
//!
//! The [`Driver`] contract is engine-neutral: [`crate::run`] drives QEMU's
//! [`twinbed_qemu::Session`] with the same driver ([`drive_qemu`]).

use crate::RunError;
use std::time::{Duration, Instant};
use twinbed_board::Board;
pub use twinbed_contract::hook::SamplePoint;
use twinbed_engine::periph::OutputSource;
use twinbed_engine::{Machine, Stop};

/// Whether to keep the run going.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop the run now ([`Outcome::Stopped`]).
    Stop,
}

/// The caller's side of a run, on either engine: sees the console and steers sensors.
pub trait Driver {
    /// One line of guest console output (UART0 and semihosting), without its line ending.
    fn on_line(&mut self, line: &str) -> Flow;
    /// The guest stopped at the sample hook. Returns the temperature (milli-°C) to set on the
    /// board's TMP105 before the guest reads it (`None`: leave it) and whether to go on.
    fn on_sample(&mut self, at: SamplePoint) -> (Option<i32>, Flow);
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The guest exited (semihosting SYS_EXIT / SYS_EXIT_EXTENDED) with this status.
    Exited(i32),
    /// The driver asked to stop.
    Stopped,
    /// The wall-clock timeout passed first.
    TimedOut,
}

/// Which of the machine's outputs a [`Console`] keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sources {
    /// UART0 and semihosting: what QEMU shows on its stdout (`-serial stdio` and
    /// `-semihosting-config target=native`), so both engines print the same console.
    Console,
    /// Every UART and semihosting (the A/B device judges its boots on everything it printed).
    Everything,
    /// Nothing (benchmarks: the output is dropped as it comes).
    Nothing,
}

impl Sources {
    /// Whether output from `source` belongs to the console.
    pub fn keeps(self, source: OutputSource) -> bool {
        match self {
            Sources::Console => matches!(source, OutputSource::Uart(0) | OutputSource::Semihosting),
            Sources::Everything => true,
            Sources::Nothing => false,
        }
    }
}

/// The guest's console output not yet taken, from the sources it keeps.
#[derive(Clone, Debug)]
pub struct Console {
    sources: Sources,
    bytes: Vec<u8>,
}

impl Console {
    /// An empty console keeping `sources`.
    pub fn new(sources: Sources) -> Self {
        Console { sources, bytes: Vec::new() }
    }

    /// Keeps what `output` holds from this console's sources.
    pub fn push(&mut self, output: Vec<(OutputSource, u8)>) {
        if self.sources == Sources::Nothing {
            return;
        }
        let sources = self.sources;
        self.bytes.extend(output.into_iter().filter(|&(s, _)| sources.keeps(s)).map(|(_, b)| b));
    }

    /// The complete lines so far (without `\n`, carriage returns dropped); a line still being
    /// written stays for later.
    pub fn take_lines(&mut self) -> Vec<String> {
        let Some(last_nl) = self.bytes.iter().rposition(|&b| b == b'\n') else {
            return Vec::new();
        };
        let rest = self.bytes.split_off(last_nl + 1);
        let done = std::mem::replace(&mut self.bytes, rest);
        done[..done.len() - 1].split(|&b| b == b'\n').map(line_text).collect()
    }

    /// The unfinished last line, if any (at the end of a run), carriage returns dropped.
    pub fn take_partial(&mut self) -> Option<String> {
        (!self.bytes.is_empty()).then(|| line_text(&std::mem::take(&mut self.bytes)))
    }

    /// Everything so far as text, carriage returns removed, lines unfinished included.
    pub fn take_text(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.bytes)).replace('\r', "")
    }

    /// Everything so far as text, exactly as printed (carriage returns kept).
    pub fn take_raw(&mut self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut self.bytes)).into_owned()
    }
}

/// One console line's text: its bytes without carriage returns, invalid UTF-8 replaced.
fn line_text(bytes: &[u8]) -> String {
    let kept: Vec<u8> = bytes.iter().copied().filter(|&b| b != b'\r').collect();
    String::from_utf8_lossy(&kept).into_owned()
}

/// The error a stop of the engine means for a run, if it is one: a guest asleep with nothing
/// that could wake it, or locked up.
pub fn stop_error(m: &Machine, stop: Stop) -> Option<RunError> {
    match stop {
        Stop::Idle => Some(RunError::GuestIdle { pc: m.cpu.r[15] }),
        Stop::Lockup { pc } => Some(RunError::GuestLockup { pc, cfsr: m.sys.cfsr, hfsr: m.sys.hfsr }),
        _ => None,
    }
}

/// Virtual time run between two looks at the wall clock and the output in [`Runner::drive`]:
/// 1 s at 25 MHz. A slice of busy code takes well under a second of wall time; a sleeping
/// guest skips it at once, and each slice costs a pass through the machine's scheduler, so
/// smaller slices slow down duty-cycled firmware (10 ms slices made 24 h of `bench-duty` 0.8 s
/// slower).
const SLICE_CYCLES: u64 = 25_000_000;

/// A machine with its firmware, and what running it needs (see the module docs).
#[derive(Clone)]
pub struct Runner {
    /// The machine.
    pub machine: Machine,
    /// The console output not yet taken.
    pub console: Console,
    /// The board's temperature sensor (its TMP105), by device name.
    sensor: Option<String>,
}

impl Runner {
    /// A runner around `machine` (built for `board`, firmware loaded) keeping `sources` as its
    /// console; the sample hook is off until [`Runner::set_sample_hook`].
    pub fn new(machine: Machine, board: &Board, sources: Sources) -> Self {
        let sensor = board.device_of_model("tmp105").map(|d| d.name.clone());
        Runner { machine, console: Console::new(sources), sensor }
    }

    /// A new machine of `board` with the ELF `data` loaded and reset, keeping the console
    /// (UART0 and semihosting).
    pub fn load(board: &Board, data: &[u8]) -> Result<Self, RunError> {
        let mut machine = Machine::new(board)?;
        machine.load_elf(data)?;
        Ok(Runner::new(machine, board, Sources::Console))
    }

    /// Stops at the firmware's sample hook at `addr` (its `twinbed_sample_hook` symbol;
    /// `None`: never stop there): [`Runner::step`] then returns [`Stop::StopPoint`].
    pub fn set_sample_hook(&mut self, addr: Option<u32>) {
        self.machine.set_stop_at(addr);
    }

    /// Sets the board's temperature sensor, if it has one (milli-°C).
    pub fn set_temperature(&mut self, milli_c: i32) {
        if let Some(s) = &self.sensor {
            self.machine.set_temperature(s, milli_c);
        }
    }

    /// Runs at most `cycles` of virtual time (less if something stops the machine first); the
    /// console keeps what was printed.
    pub fn step(&mut self, cycles: u64) -> Stop {
        let stop = self.machine.run(cycles);
        self.console.push(self.machine.take_output());
        stop
    }

    /// The sample hook's arguments, after [`Runner::step`] returned [`Stop::StopPoint`] there.
    pub fn sample_point(&self) -> SamplePoint {
        SamplePoint::from_registers(&self.machine.cpu.r)
    }

    /// Runs until `end` (an absolute cycle count of the machine's clock) or another stop;
    /// at each sample hook `on_sample` picks the temperature (`None`: leave it). Returns
    /// [`Stop::Budget`] when `end` is reached, otherwise the stop that ended the run.
    pub fn run_until(&mut self, end: u64, on_sample: &mut dyn FnMut(SamplePoint) -> Option<i32>) -> Stop {
        while self.machine.now < end {
            match self.step(end - self.machine.now) {
                Stop::StopPoint => {
                    if let Some(t) = on_sample(self.sample_point()) {
                        self.set_temperature(t);
                    }
                }
                Stop::Budget => {}
                other => return other,
            }
        }
        Stop::Budget
    }

    /// Runs until the guest exits, `driver` stops it or `timeout` of wall-clock time passes:
    /// console lines go to [`Driver::on_line`], each sample hook to [`Driver::on_sample`].
    pub fn drive(&mut self, driver: &mut dyn Driver, timeout: Duration) -> Result<Outcome, RunError> {
        let deadline = Instant::now() + timeout;
        let outcome = loop {
            let stop = self.step(SLICE_CYCLES);
            let mut flow = Flow::Continue;
            for line in self.console.take_lines() {
                if driver.on_line(&line) == Flow::Stop {
                    flow = Flow::Stop;
                }
            }
            if flow == Flow::Stop {
                break Outcome::Stopped;
            }
            match stop {
                Stop::Exit(code) => break Outcome::Exited(code),
                Stop::StopPoint => {
                    let (temperature, f) = driver.on_sample(self.sample_point());
                    if f == Flow::Stop {
                        break Outcome::Stopped;
                    }
                    if let Some(t) = temperature {
                        self.set_temperature(t);
                    }
                }
                Stop::Budget => {
                    if Instant::now() >= deadline {
                        break Outcome::TimedOut;
                    }
                }
                // Only when asked for (`set_stop_at_flash_op`, `attach_serial`), which a driven
                // run never does.
                Stop::FlashOp { .. } | Stop::Serial => {}
                other => {
                    if let Some(e) = stop_error(&self.machine, other) {
                        return Err(e);
                    }
                }
            }
        };
        if let Some(line) = self.console.take_partial() {
            let _ = driver.on_line(&line);
        }
        Ok(outcome)
    }
}

/// Drives a QEMU run with `driver`, as [`Runner::drive`] does the engine's: the session ends
/// (QEMU is killed) when the driver stops it.
pub fn drive_qemu(cfg: &twinbed_qemu::RunConfig, driver: &mut dyn Driver) -> Result<Outcome, RunError> {
    use twinbed_qemu::Event;
    let mut session = twinbed_qemu::Session::start(cfg)?;
    loop {
        match session.next_event()? {
            Event::Line(line) => {
                if driver.on_line(&line) == Flow::Stop {
                    return Ok(Outcome::Stopped);
                }
            }
            Event::Sample(at) => {
                let (temperature, flow) = driver.on_sample(at);
                if flow == Flow::Stop {
                    return Ok(Outcome::Stopped);
                }
                session.resume(temperature)?;
            }
            Event::Exited(code) => return Ok(Outcome::Exited(code)),
            Event::TimedOut => return Ok(Outcome::TimedOut),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Console, OutputSource, Sources};

    fn out(s: &str, source: OutputSource) -> Vec<(OutputSource, u8)> {
        s.bytes().map(|b| (source, b)).collect()
    }

    #[test]
    fn console_assembles_lines_across_pushes_and_keeps_its_sources() {
        let mut c = Console::new(Sources::Console);
        c.push(out("hel", OutputSource::Uart(0)));
        c.push(out("AT\r\n", OutputSource::Uart(1)));
        assert!(c.take_lines().is_empty());
        c.push(out("lo\r\nwor", OutputSource::Uart(0)));
        assert_eq!(c.take_lines(), ["hello"]);
        c.push(out("ld\n\nbye", OutputSource::Semihosting));
        assert_eq!(c.take_lines(), ["world", ""]);
        assert_eq!(c.take_partial().as_deref(), Some("bye"));
        assert_eq!(c.take_partial(), None);

        let mut all = Console::new(Sources::Everything);
        all.push(out("AT\r\n", OutputSource::Uart(1)));
        assert_eq!(all.take_raw(), "AT\r\n");
        let mut none = Console::new(Sources::Nothing);
        none.push(out("x\n", OutputSource::Uart(0)));
        assert_eq!(none.take_text(), "");
    }
}
