//! Runs firmware on twinbed's embedded engine (`--engine native`), with the same driver
//! contract as the QEMU backend: console lines out, sensor values in at the sample hook.

use crate::elf::FirmwareInfo;
use crate::RunError;
use std::time::Instant;
use twinbed_engine::periph::OutputSource;
use twinbed_engine::{Machine, Stop};
use twinbed_qemu::{Driver, Flow, Outcome, SamplePoint};

/// Virtual time run between two looks at the wall clock and the output: 1 s at 25 MHz. A
/// slice of busy code takes well under a second of wall time; a sleeping guest skips it
/// at once, and each slice costs a pass through the machine's scheduler, so smaller slices
/// slow down duty-cycled firmware (10 ms slices made 24 h of `bench-duty` 0.8 s slower).
const SLICE_CYCLES: u64 = 25_000_000;

/// Runs `opts.elf` on the embedded engine; returns how it ended and the guest instructions
/// executed.
pub fn run(
    opts: &crate::RunOptions,
    info: &FirmwareInfo,
    driver: &mut dyn Driver,
) -> Result<(Outcome, u64), RunError> {
    let data = std::fs::read(&opts.elf)
        .map_err(|source| crate::elf::ElfError::Read { path: opts.elf.clone(), source })?;
    let mut m = Machine::new(&opts.board)?;
    match opts.jit {
        crate::Jit::Auto => {}
        crate::Jit::Off => m.set_jit(None),
        crate::Jit::Eager => m.set_jit(Some(1)),
    }
    m.load_elf(&data)?;
    for (addr, path) in &opts.preload {
        let bytes = std::fs::read(path).map_err(|e| RunError::Preload {
            path: path.clone(),
            addr: *addr,
            reason: e.to_string(),
        })?;
        if !m.poke(*addr, &bytes) {
            return Err(RunError::Preload {
                path: path.clone(),
                addr: *addr,
                reason: format!("{} bytes there do not fit one memory region of the board", bytes.len()),
            });
        }
    }
    if !opts.preload.is_empty() {
        m.reset();
    }
    let tmp105 = opts.board.device_of_model("tmp105").map(|d| d.name.clone());
    if let (Some(dev), Some(p)) = (&tmp105, &opts.temperature) {
        m.set_temperature(dev, p.milli_c_at(0));
    }
    let use_hook = opts.temperature.is_some() || opts.virtual_duration.is_some();
    m.set_stop_at(info.sample_hook.filter(|_| use_hook));
    let deadline = Instant::now() + opts.timeout;
    let mut line: Vec<u8> = Vec::new();
    let mut flow = Flow::Continue;
    let outcome = loop {
        let stop = m.run(SLICE_CYCLES);
        for (source, byte) in m.take_output() {
            // The console is UART0 plus semihosting, as on QEMU's stdout.
            if !matches!(source, OutputSource::Uart(0) | OutputSource::Semihosting) {
                continue;
            }
            match byte {
                b'\n' => {
                    let text = String::from_utf8_lossy(&line).into_owned();
                    line.clear();
                    if driver.on_line(&text) == Flow::Stop {
                        flow = Flow::Stop;
                    }
                }
                b'\r' => {}
                b => line.push(b),
            }
        }
        if flow == Flow::Stop {
            break Outcome::Stopped;
        }
        match stop {
            Stop::Exit(code) => break Outcome::Exited(code),
            Stop::StopPoint => {
                let at = SamplePoint { uptime_ms: m.cpu.r[0], index: m.cpu.r[1] };
                let (temperature, f) = driver.on_sample(at);
                if f == Flow::Stop {
                    break Outcome::Stopped;
                }
                if let (Some(dev), Some(t)) = (&tmp105, temperature) {
                    m.set_temperature(dev, t);
                }
            }
            Stop::Budget => {
                if Instant::now() >= deadline {
                    break Outcome::TimedOut;
                }
            }
            Stop::Idle => return Err(RunError::GuestIdle { pc: m.cpu.r[15] }),
            // Only when asked for (`set_stop_at_flash_op`, `attach_serial`), which this runner
            // never does.
            Stop::FlashOp { .. } | Stop::Serial => {}
            Stop::Lockup { pc } => {
                return Err(RunError::GuestLockup { pc, cfsr: m.sys.cfsr, hfsr: m.sys.hfsr })
            }
        }
    };
    if !line.is_empty() {
        let _ = driver.on_line(&String::from_utf8_lossy(&line));
    }
    Ok((outcome, m.instret))
}
