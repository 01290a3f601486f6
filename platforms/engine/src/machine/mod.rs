//! A whole emulated board: core, System Control Space, memory, peripherals, virtual time.
//!
//! The machine is plain data (`Clone + Send`, and serde for files): a snapshot is a clone.
//! Decoded instructions are cached per 1 KiB page of RAM in `Arc`s, so clones share the cache
//! until one of them writes to a page of code (which drops that page's cache on its side).
//!
//! # Virtual time
//! `now` counts core-clock cycles from power-on. Every instruction adds its cycle count (a
//! documented Cortex-M3 model, see [`crate::timing`]). Devices and SysTick expose deadlines; the
//! run loop services them when `now` reaches the earliest one, and WFI/WFE jump `now` straight to
//! it. Nothing reads the host clock: the same inputs give the same run, byte for byte.
//!
//! # Energy
//! With a `[power]` table in the board file the machine accounts the charge its parts draw, per
//! state, exactly in integers, touching the accounting only when a state changes (WFI/WFE
//! entry and wake-up, flash commands, sensor configuration, the host's external loads, reset,
//! power cut) or when asked ([`Machine::energy`], fuel-gauge reads), never per instruction. See
//! [`crate::power`].
//!
//! # Exceptions (ARMv7-M ARM B1.5)
//! Entry pushes the 8-word frame (with STKALIGN realignment), sets LR to EXC_RETURN, switches to
//! Handler mode on MSP and jumps through the vector table at VTOR. Return pops it when an
//! EXC_RETURN value is written to the PC in Handler mode (BX, POP, LDM, LDR). Tail-chaining is
//! functionally an unstack followed by a stack (same state, same memory contents); late arrival
//! is not modelled. Synchronous faults that are disabled or cannot preempt escalate to HardFault
//! (HFSR.FORCED); a fault that HardFault cannot take locks the core up ([`Stop::Lockup`]).
//! Deviations: a fault while stacking locks up, and one while unstacking goes straight to
//! HardFault (with CFSR.UNSTKERR), instead of deriving a BusFault with STKERR/UNSTKERR.
//!
//! # Where things are
//! - `mod.rs`: the machine, building it, loading firmware, snapshots, the public API;
//! - `run.rs`: the run loop, the scheduler (devices, SysTick, interrupt lines, sleep) and the
//!   per-instruction bookkeeping (IT blocks, PC, exception returns);
//! - `compiled.rs`: running blocks the block compiler made; `decode_cache.rs`: memory regions
//!   and their decoded instructions;
//! - `bus.rs`: the memory map (RAM, SCS, bit-band, devices) and the core's
//!   [`Host`](crate::cpu::Host) interface; `exceptions.rs`: entry, return, escalation, lockup;
//! - `semihosting.rs`, `flash.rs` (flash operations, power cut, power on), `serial.rs` (UARTs
//!   attached to models outside the machine).

mod bus;
mod compiled;
mod decode_cache;
mod exceptions;
mod flash;
mod run;
mod semihosting;
mod serial;

pub use decode_cache::Ram;

use crate::cpu::CpuState;
use crate::jit;
use crate::periph::{self, Device, IrqLines, Mapped, Output, OutputSource};
use crate::power::{self, EnergyReport, Power, PowerError};
use crate::system::System;
use decode_cache::Page;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// SCR.SEVONPEND (B3.2.7).
const SCR_SEVONPEND: u32 = 1 << 4;
/// SCR.SLEEPDEEP (B3.2.7): the sleep WFI/WFE enters is a deep sleep (energy accounting only).
const SCR_SLEEPDEEP: u32 = 1 << 2;

/// The block compiler's setting from `TWINBED_JIT` (`off`, `eager`, or a threshold), else the
/// default threshold.
fn jit_from_env() -> Option<u32> {
    match std::env::var("TWINBED_JIT").ok().as_deref().map(str::trim) {
        None | Some("") | Some("on") => Some(JIT_THRESHOLD),
        Some("off") | Some("0") => None,
        Some("eager") => Some(1),
        Some(n) => match n.parse::<u32>() {
            Ok(t) => Some(t),
            Err(_) => {
                tracing::warn!(target: "jit", "TWINBED_JIT={n:?} is not off, eager or a number: using {JIT_THRESHOLD}");
                Some(JIT_THRESHOLD)
            }
        },
    }
}

/// `stop_at` when there is no stop address: odd, so it never equals a PC.
const NO_STOP: u32 = 1;

/// Default for [`Machine::set_jit`]: compile a block once it has started this many times.
pub const JIT_THRESHOLD: u32 = 256;

/// Why [`Machine::run`] returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Stop {
    /// The guest exited through semihosting with this status.
    Exit(i32),
    /// The guest reached the stop address ([`Machine::set_stop_at`]); call `run` again to go on.
    StopPoint,
    /// The cycle budget of this call is used up.
    Budget,
    /// The core sleeps (WFI/WFE) and nothing can ever wake it.
    Idle,
    /// Unrecoverable fault: the core locked up at this PC.
    Lockup {
        /// PC of the instruction that could not be handled.
        pc: u32,
    },
    /// A flash controller started operation number `index` (counting from 0 since the machine
    /// was made), as asked with [`Machine::set_stop_at_flash_op`]; it is still in flight, so a
    /// [`Machine::power_cut`] now tears it.
    FlashOp {
        /// The operation's number.
        index: u32,
    },
    /// A UART attached with [`Machine::attach_serial`] transmitted; the bytes are waiting in
    /// [`Machine::take_serial_tx`], stamped with the virtual time they went out.
    Serial,
}

/// Errors building a machine.
#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    /// The board file's peripherals could not be built.
    #[error(transparent)]
    Periph(#[from] periph::PeriphError),
    /// The ELF could not be parsed.
    #[error("cannot load the firmware ELF: {0}")]
    Elf(String),
    /// A snapshot could not be written or read.
    #[error("machine snapshot: {0}")]
    Snapshot(String),
    /// A loadable segment lies outside the board's memory.
    #[error("the firmware ELF puts {size} bytes at 0x{addr:08x}, outside the board's memory ({map})")]
    OutsideMemory {
        /// Segment address.
        addr: u32,
        /// Segment size.
        size: u32,
        /// The board's memory regions.
        map: String,
    },
}

/// The emulated board.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Machine {
    /// The core's registers.
    pub cpu: CpuState,
    /// NVIC, SCB, SysTick.
    pub sys: System,
    /// Memory regions.
    pub mem: Vec<Ram>,
    /// Peripherals.
    pub periphs: Vec<Mapped>,
    /// Interrupt lines from peripherals.
    pub irq: IrqLines,
    /// Console output not yet taken by the caller.
    pub out: Output,
    /// Virtual time in core-clock cycles.
    pub now: u64,
    /// Core clock.
    pub clock_hz: u32,
    /// Instructions executed.
    pub instret: u64,
    /// Command line for SYS_GET_CMDLINE.
    pub cmdline: String,
    next_event: u64,
    budget_end: u64,
    sleeping: bool,
    /// The sleep is a WFE's, which an event (SEV, SEVONPEND) also ends; a WFI's is not.
    #[serde(default)]
    sleep_wfe: bool,
    /// The stop address, or [`NO_STOP`] (odd, so no PC ever equals it).
    stop_at: u32,
    skip_stop: bool,
    next_pc: u32,
    pending_return: Option<u32>,
    /// Decode-cache pages dropped while a block ran from them; freed between blocks.
    #[serde(skip)]
    retired: Vec<Arc<Page>>,
    semihost_errno: u32,
    pub(crate) pending_exit: Option<i32>,
    /// Block compiler: compile a block once it has started this many times; `None`: off.
    jit_threshold: Option<u32>,
    /// Stop when a flash controller starts this operation ([`Stop::FlashOp`]).
    flash_stop_at: Option<u32>,
    /// UARTs whose output goes to a device model outside the machine (bit n: UART n).
    #[serde(default)]
    serial_attached: u32,
    /// Their bytes: (virtual time, UART, byte), oldest first.
    #[serde(default)]
    serial_tx: Vec<(u64, u8, u8)>,
    /// Whether each memory region has an address window of its own (`jit::windowed`), so
    /// compiled code can reach memory directly.
    windowed: bool,
    /// Energy accounting, when the board file has `[power]` (see [`crate::power`]).
    /// Boxed: it is cold, and the hot fields stay together.
    #[serde(default)]
    power: Option<Box<Power>>,
}

impl Machine {
    /// A machine for `board` with nothing loaded (all RAM zero, core in reset).
    pub fn new(board: &twinbed_board::Board) -> Result<Self, MachineError> {
        let mem = board.memory.iter().map(|m| Ram::new(&m.name, m.base, m.size)).collect();
        let periphs = periph::build_peripherals(board)?;
        let power = Power::new(board, &periphs).map(Box::new);
        Ok(Self {
            cpu: CpuState::default(),
            sys: System::default(),
            mem,
            periphs,
            irq: IrqLines::default(),
            out: Output::default(),
            now: 0,
            clock_hz: board.clock_hz,
            instret: 0,
            cmdline: String::new(),
            next_event: 0,
            budget_end: 0,
            sleeping: false,
            sleep_wfe: false,
            stop_at: NO_STOP,
            skip_stop: false,
            next_pc: 0,
            pending_return: None,
            retired: Vec::new(),
            semihost_errno: 0,
            pending_exit: None,
            jit_threshold: jit_from_env(),
            flash_stop_at: None,
            serial_attached: 0,
            serial_tx: Vec::new(),
            windowed: jit::windowed(&board.memory.iter().map(|m| (m.base, m.size)).collect::<Vec<_>>()),
            power,
        })
    }

    /// Loads an ELF's loadable segments at their physical (load) addresses and resets the core.
    pub fn load_elf(&mut self, data: &[u8]) -> Result<(), MachineError> {
        use object::read::elf::{ElfFile32, FileHeader, ProgramHeader};
        let file =
            ElfFile32::<object::LittleEndian>::parse(data).map_err(|e| MachineError::Elf(e.to_string()))?;
        let endian = file.endian();
        let mut image = Vec::new();
        for ph in file.elf_program_headers() {
            if ph.p_type(endian) != object::elf::PT_LOAD || ph.p_filesz(endian) == 0 {
                continue;
            }
            let bytes = ph
                .data(endian, data)
                .map_err(|()| MachineError::Elf("a segment lies outside the file".into()))?;
            // Load at the physical address (LMA): .data's initial values live in code memory.
            image.push((ph.p_paddr(endian), bytes.to_vec()));
        }
        let _ = file.elf_header().e_entry(endian);
        for (addr, bytes) in &image {
            if !self.poke(*addr, bytes) {
                let map = self
                    .mem
                    .iter()
                    .map(|r| format!("{} 0x{:08x}+0x{:x}", r.name, r.base, r.data.len()))
                    .collect::<Vec<_>>()
                    .join(", ");
                return Err(MachineError::OutsideMemory { addr: *addr, size: bytes.len() as u32, map });
            }
        }
        self.reset();
        Ok(())
    }

    /// Writes bytes straight into RAM (no side effects); false if they do not fit one region.
    pub fn poke(&mut self, addr: u32, bytes: &[u8]) -> bool {
        for r in &mut self.mem {
            let off = addr.wrapping_sub(r.base) as usize;
            if off < r.data.len() && off + bytes.len() <= r.data.len() {
                r.data[off..off + bytes.len()].copy_from_slice(bytes);
                r.clear_code();
                return true;
            }
        }
        false
    }

    /// Reads bytes straight from RAM; `None` outside RAM.
    pub fn peek(&self, addr: u32, len: usize) -> Option<&[u8]> {
        self.mem.iter().find_map(|r| {
            let off = addr.wrapping_sub(r.base) as usize;
            (off < r.data.len() && off + len <= r.data.len()).then(|| &r.data[off..off + len])
        })
    }

    /// System reset: core, SCS and peripherals to their reset state, RAM kept, vector table
    /// read from address 0 (VTOR resets to 0).
    pub fn reset(&mut self) {
        self.cpu = CpuState::default();
        self.sys = System::default();
        self.irq = IrqLines::default();
        for p in &mut self.periphs {
            p.model.reset();
        }
        // A flash operation in flight finishes on reset (a power cut is what tears one).
        self.apply_flash_ops();
        self.sleeping = false;
        if let Some(p) = &mut self.power {
            p.set_cpu(self.now, power::cpu::RUN);
            for (i, m) in self.periphs.iter().enumerate() {
                p.sync_periph(self.now, i, &m.model);
            }
        }
        self.pending_return = None;
        let sp = self.peek_u32(0).unwrap_or(0);
        let pc = self.peek_u32(4).unwrap_or(0);
        self.cpu.r[13] = sp & !3;
        self.cpu.r[14] = 0xffff_ffff;
        self.cpu.r[15] = pc & !1;
        self.cpu.thumb = pc & 1 != 0;
        self.next_event = 0;
    }

    fn peek_u32(&self, addr: u32) -> Option<u32> {
        self.peek(addr, 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Makes [`Machine::run`] stop with [`Stop::StopPoint`] before executing the instruction
    /// at `addr` (e.g. the testbed sample hook), every time it gets there.
    pub fn set_stop_at(&mut self, addr: Option<u32>) {
        self.stop_at = addr.map_or(NO_STOP, |a| a & !1);
        // The instruction at the stop address is never cached, so blocks stop there without a
        // per-instruction check (see `run_block`): drop the cache so that holds for a new one.
        for r in &mut self.mem {
            r.clear_code();
        }
    }

    /// Turns the block compiler on (compiling a block once it has started `threshold` times;
    /// 1 compiles everything at first sight) or off (`None`: the interpreter runs everything).
    /// The default is [`JIT_THRESHOLD`], or what the `TWINBED_JIT` environment variable says:
    /// `off`, `eager` (1) or a number. Either way the machine computes exactly the same
    /// results, cycle counts and instruction counts; only speed differs.
    pub fn set_jit(&mut self, threshold: Option<u32>) {
        self.jit_threshold = threshold.map(|t| t.max(1));
    }

    /// Energy per state since the machine was made, up to `now` (see [`crate::power`]);
    /// `None` if the board file has no `[power]` table. Querying changes nothing.
    pub fn energy(&self) -> Option<EnergyReport> {
        self.power.as_ref().map(|p| p.report(self.now))
    }

    /// What the board draws now, in µA; `None` without `[power]`.
    pub fn current_ua(&self) -> Option<f64> {
        self.current_na().map(|na| na as f64 / 1000.0)
    }

    /// What the board draws now, in nA (exact); `None` without `[power]`.
    pub fn current_na(&self) -> Option<u64> {
        self.power.as_ref().map(|p| p.current_na(self.now))
    }

    /// Sets the state of a load the engine does not model itself, from `now` on: the host calls
    /// this at the virtual time the load changes, e.g. `("modem", "tx")` when its modem model
    /// starts transmitting. The board file's `[power]` gives the currents (`modem_off_ua`,
    /// `modem_idle_ua`, `modem_rx_ua`, `modem_tx_ua`); the modem starts `off`.
    pub fn set_external_state(&mut self, load: &str, state: &str) -> Result<(), PowerError> {
        self.power.as_mut().ok_or(PowerError::NotAccounted)?.set_external(self.now, load, state)
    }

    /// Makes the battery's state of charge `permille` (0..=1000) now, e.g. to start a scenario
    /// on a half-empty battery; the board's consumption and self-discharge go on from there.
    pub fn set_battery_soc(&mut self, permille: u32) -> Result<(), PowerError> {
        self.power.as_mut().ok_or(PowerError::NotAccounted)?.set_soc(self.now, permille)
    }

    /// The board's OTA feed (`twinbed-ota-feed`), if it has one: offer an update image to the
    /// firmware, all of it or part of it arrived.
    pub fn ota_feed(&mut self) -> Option<&mut periph::OtaFeed> {
        self.periphs.iter_mut().find_map(|p| p.model.get_mut::<periph::OtaFeed>())
    }

    /// Takes the console output produced so far.
    pub fn take_output(&mut self) -> Vec<(OutputSource, u8)> {
        std::mem::take(&mut self.out.bytes)
    }

    /// The whole machine as bytes (postcard): a snapshot to keep in a file. The decode cache is
    /// not included; it is rebuilt as code runs.
    pub fn to_bytes(&self) -> Result<Vec<u8>, MachineError> {
        postcard::to_stdvec(self).map_err(|e| MachineError::Snapshot(e.to_string()))
    }

    /// A machine from [`Machine::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, MachineError> {
        postcard::from_bytes(bytes).map_err(|e| MachineError::Snapshot(e.to_string()))
    }

    /// Saves the machine to a file ([`Machine::to_bytes`]).
    pub fn save_file(&self, path: &std::path::Path) -> Result<(), MachineError> {
        std::fs::write(path, self.to_bytes()?)
            .map_err(|e| MachineError::Snapshot(format!("writing {}: {e}", path.display())))
    }

    /// Loads a machine saved with [`Machine::save_file`].
    pub fn load_file(path: &std::path::Path) -> Result<Self, MachineError> {
        let bytes = std::fs::read(path)
            .map_err(|e| MachineError::Snapshot(format!("reading {}: {e}", path.display())))?;
        Self::from_bytes(&bytes)
    }

    /// Sets the temperature (milli-°C) of the TMP105 named `device` in the board file; false if
    /// the board has no such sensor.
    pub fn set_temperature(&mut self, device: &str, milli_c: i32) -> bool {
        self.periphs.iter_mut().any(|p| p.model.set_temperature(device, milli_c))
    }

    /// Finds a peripheral by its board name.
    pub fn periph_mut(&mut self, name: &str) -> Option<&mut periph::Model> {
        self.periphs.iter_mut().find(|p| p.name == name).map(|p| &mut p.model)
    }
}
