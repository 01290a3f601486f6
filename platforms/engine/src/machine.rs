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

use crate::cpu::decode::{decode, is_32bit};
use crate::cpu::instr::Instr;
use crate::cpu::CpuState;
use crate::jit::{self, Compiled, JitIo, JitRegion};
use crate::periph::nor_flash::{self, FlashOp};
use crate::periph::{self, Ctx, Device, IrqLines, Mapped, Output, OutputSource, Size};
use crate::power::{self, EnergyReport, Power, PowerError};
use crate::system::{cfsr, exc, hfsr, ScsEffect, System};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

#[path = "cpu/execute.rs"]
mod execute;

/// Longest compiled block, in instructions.
const MAX_BLOCK: usize = jit::MAX_INSTRS;
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

/// Bytes per decode-cache page.
const PAGE: u32 = 1024;
/// Cache entries (halfwords) per page.
const PAGE_ENTRIES: usize = (PAGE / 2) as usize;

/// One page of decoded instructions: (instruction, size in bytes); size 0 = not decoded yet.
type Page = [(Instr, u8); PAGE_ENTRIES];

/// Where a block may start: how often the interpreter got there, or its compiled code.
#[derive(Clone, Copy, Debug)]
enum Slot {
    /// Reached this many times.
    Cold(u32),
    /// Compiled.
    Hot(&'static Compiled),
    /// Not compilable (its first instruction is one the compiler does not know).
    Never,
}

/// The block-compiler slots of one decode-cache page.
type JitPage = [Slot; PAGE_ENTRIES];

/// Default for [`Machine::set_jit`]: compile a block once it has started this many times.
pub const JIT_THRESHOLD: u32 = 256;

/// A RAM (or code SRAM) region with its decode cache.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ram {
    /// Region name from the board file.
    pub name: String,
    /// First address.
    pub base: u32,
    /// Contents.
    pub data: Vec<u8>,
    #[serde(skip)]
    code: Vec<Option<Arc<Page>>>,
    /// One byte per page: 1 where `code` has the page (compiled blocks bail on stores there).
    #[serde(skip)]
    has_code: Vec<u8>,
    /// Block-compiler slots per page; a page has them only while `code` has it.
    #[serde(skip)]
    jit: Vec<Option<Box<JitPage>>>,
}

impl Ram {
    fn new(name: &str, base: u32, size: u32) -> Self {
        Self {
            name: name.to_owned(),
            base,
            data: vec![0; size as usize],
            code: Vec::new(),
            has_code: Vec::new(),
            jit: Vec::new(),
        }
    }

    /// Drops the whole decode cache and the compiled blocks' slots.
    fn clear_code(&mut self) {
        self.code.clear();
        self.jit.clear();
        self.has_code.fill(0);
    }

    /// Drops the decode cache of the pages `len` bytes at `offset` touch, moving them to
    /// `retired` (a running block may still read them); true if one existed.
    #[inline]
    fn invalidate(&mut self, offset: usize, len: usize, retired: &mut Vec<Arc<Page>>) -> bool {
        let mut any = false;
        for page in [offset / PAGE as usize, (offset + len - 1) / PAGE as usize] {
            if let Some(p) = self.code.get_mut(page).and_then(Option::take) {
                retired.push(p);
                any = true;
                self.has_code[page] = 0;
                if let Some(j) = self.jit.get_mut(page) {
                    *j = None;
                }
            }
        }
        any
    }
}

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

/// A synchronous exception raised while executing an instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exc {
    /// A fault: exception number, CFSR bits, and for BusFaults the faulting address.
    Fault { n: u32, cfsr: u32, addr: Option<u32> },
    /// SVC.
    Svc,
    /// BKPT (other than semihosting) with no debugger: a debug event.
    Debug,
    /// Semihosting exit.
    Exit(i32),
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

    // ---- flash and power ----

    /// Makes [`Machine::run`] stop with [`Stop::FlashOp`] right after a flash controller starts
    /// operation number `index` (0 is the first since the machine was made), once.
    pub fn set_stop_at_flash_op(&mut self, index: Option<u32>) {
        self.flash_stop_at = index;
    }

    /// The memory each flash controller programs, as (base, size): what survives a power cycle.
    pub fn flash_regions(&self) -> Vec<(u32, u32)> {
        self.periphs.iter().filter_map(|p| p.model.flash_region()).collect()
    }

    /// A 128-bit digest of everything the flash controllers keep across power cycles, to tell
    /// power-on states apart (the power-cut sweep memoises on it). Not cryptographic: two lanes
    /// of multiply-rotate mixing over 64-bit words; for the ~10^5 states of a sweep a chance
    /// collision is ~2^-90.
    pub fn flash_digest(&self) -> u128 {
        let (mut a, mut b) = (0x243f_6a88_85a3_08d3u64, 0x1319_8a2e_0370_7344u64);
        for (base, size) in self.flash_regions() {
            let Some(bytes) = self.peek(base, size as usize) else { continue };
            let mut words = bytes.chunks_exact(8);
            for w in &mut words {
                let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
                a = (a ^ w).wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left(29);
                b = (b.rotate_left(17) ^ w).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
            }
            for &byte in words.remainder() {
                a = (a ^ u64::from(byte)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            }
            a ^= u64::from(base);
            b ^= u64::from(size);
        }
        u128::from(a) << 64 | u128::from(b)
    }

    /// Flash operations started since the machine was made (all flash controllers).
    pub fn flash_ops(&self) -> u32 {
        self.periphs.iter().map(|p| p.model.flash_ops()).sum()
    }

    /// Applies the operations flash controllers have completed to memory.
    fn apply_flash_ops(&mut self) {
        for i in 0..self.periphs.len() {
            self.apply_flash_ops_of(i);
        }
    }

    /// Applies the operations peripheral `i` completed, if it is a flash controller.
    fn apply_flash_ops_of(&mut self, i: usize) {
        let Some(f) = self.periphs[i].model.as_flash_mut() else { return };
        for op in f.take_done() {
            if self.write_flash(op, None) {
                if let Some(f) = self.periphs[i].model.as_flash_mut() {
                    f.flag_program_error();
                }
            }
        }
    }

    /// Writes a flash operation's result into memory (torn from `tear_seed` if given), dropping
    /// decoded code there; true if a program asked to set bits (PROG_ERR).
    fn write_flash(&mut self, op: FlashOp, tear_seed: Option<u64>) -> bool {
        let (addr, len) = (op.addr(), op.size());
        let Some(r) = self.mem.iter_mut().find(|r| {
            let off = addr.wrapping_sub(r.base) as usize;
            off < r.data.len() && r.data.len() - off >= len
        }) else {
            return false; // the controller checked the range against its region
        };
        let off = (addr - r.base) as usize;
        let bytes = &mut r.data[off..off + len];
        let prog_err = match tear_seed {
            Some(seed) => {
                nor_flash::tear(op, bytes, seed);
                false
            }
            None => op.apply(bytes),
        };
        if !r.code.is_empty() {
            r.invalidate(off, len, &mut self.retired);
        }
        self.next_event = 0;
        prog_err
    }

    /// Cuts the power: a flash operation in flight stops half way and leaves a torn state
    /// chosen by `seed` (the same seed, the same bytes); operations already complete are
    /// applied. Returns the torn operation, if there was one. The machine is then off until
    /// [`Machine::power_on`].
    ///
    /// Energy accounting (if any) goes on: the rails the engine owns drop to their zero-current
    /// states until [`Machine::power_on`] (see [`crate::power`]); charge drawn so far is kept.
    pub fn power_cut(&mut self, seed: u64) -> Option<FlashOp> {
        self.apply_flash_ops();
        let mut torn = None;
        for i in 0..self.periphs.len() {
            if let Some(op) = self.periphs[i].model.as_flash_mut().and_then(|f| f.cut()) {
                self.write_flash(op, Some(seed));
                torn = Some(op);
            }
        }
        if let Some(p) = &mut self.power {
            p.cut(self.now);
        }
        torn
    }

    /// Powers the machine on after [`Machine::power_cut`]: memory that no flash controller
    /// programs is volatile and comes back zeroed; flash keeps its contents; the core and the
    /// peripherals reset, and the firmware boots from the vector table in memory. Virtual time
    /// goes on from where it was.
    pub fn power_on(&mut self) {
        let flash = self.flash_regions();
        for r in &mut self.mem {
            if !flash.iter().any(|&(base, _)| base == r.base) {
                r.data.fill(0);
                r.clear_code();
            }
        }
        self.reset();
    }

    // ---- energy ----

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

    /// Attaches (or detaches) UART `uart` to a device model outside the machine, such as a
    /// modem: from now on its output no longer goes to [`Machine::take_output`] but to
    /// [`Machine::take_serial_tx`], and every byte it sends ends [`Machine::run`] with
    /// [`Stop::Serial`] right after the store that sent it, so the model sees it at its virtual
    /// time. Bytes for the firmware go in with [`Machine::serial_rx`].
    pub fn attach_serial(&mut self, uart: u8, attached: bool) {
        let bit = 1u32.checked_shl(u32::from(uart)).unwrap_or(0);
        if attached {
            self.serial_attached |= bit;
        } else {
            self.serial_attached &= !bit;
        }
    }

    /// The bytes attached UARTs sent since the last call: (virtual time in cycles, UART, byte).
    pub fn take_serial_tx(&mut self) -> Vec<(u64, u8, u8)> {
        std::mem::take(&mut self.serial_tx)
    }

    /// Queues `bytes` for UART `uart` to receive, now (the UART takes them as fast as the
    /// firmware reads them, as QEMU's character backends do). False if the board has no such
    /// UART.
    pub fn serial_rx(&mut self, uart: u8, bytes: &[u8]) -> bool {
        let Some(i) = self.periphs.iter().position(|p| p.model.serial_port() == Some(uart)) else {
            return false;
        };
        self.irq.select_source(i);
        let mut ctx = Ctx { now: self.now, clock_hz: self.clock_hz, irq: &mut self.irq, out: &mut self.out };
        for &b in bytes {
            self.periphs[i].model.serial_rx(b, &mut ctx);
        }
        self.next_event = 0;
        true
    }

    /// Moves the bytes of attached UARTs among the output since `from` to `serial_tx`.
    fn divert_serial(&mut self, from: usize) {
        if self.serial_attached == 0 || self.out.bytes.len() <= from {
            return;
        }
        let (now, attached) = (self.now, self.serial_attached);
        let mut kept = from;
        for k in from..self.out.bytes.len() {
            let (source, byte) = self.out.bytes[k];
            match source {
                OutputSource::Uart(n) if attached & 1u32.checked_shl(u32::from(n)).unwrap_or(0) != 0 => {
                    self.serial_tx.push((now, n, byte));
                }
                _ => {
                    self.out.bytes[kept] = (source, byte);
                    kept += 1;
                }
            }
        }
        self.out.bytes.truncate(kept);
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

    /// Executes exactly one instruction at the PC, or enters the exception it raises; no
    /// interrupts, devices or deadlines are looked at. For differential tests against other
    /// emulators: compare the state after each instruction.
    pub fn step_one(&mut self) -> Option<Stop> {
        let pc = self.cpu.r[15];
        match self.step() {
            Ok(()) => None,
            Err(e) => self.raise(e, pc),
        }
    }

    /// Runs until something in [`Stop`] happens or `budget` cycles of virtual time pass.
    pub fn run(&mut self, budget: u64) -> Stop {
        self.budget_end = self.now.saturating_add(budget);
        self.next_event = 0;
        loop {
            if self.now >= self.next_event {
                if let Some(stop) = self.service() {
                    return stop;
                }
                if self.now >= self.budget_end {
                    return Stop::Budget;
                }
            }
            if self.sleeping {
                continue;
            }
            let pc = self.cpu.r[15];
            if self.stop_at == pc {
                if !self.skip_stop {
                    self.skip_stop = true;
                    return Stop::StopPoint;
                }
                self.skip_stop = false;
                if let Err((e, at)) = self.step().map_err(|e| (e, pc)) {
                    if let Some(stop) = self.raise(e, at) {
                        return stop;
                    }
                }
                continue;
            }
            if let Err((e, at)) = self.run_block() {
                if let Some(stop) = self.raise(e, at) {
                    return stop;
                }
            }
        }
    }

    /// Executes straight-line code from the decode cache without looking anything up again:
    /// instructions follow one another in the same cached page until one branches, an event is
    /// due (`next_event`, which any device access, SCS write or code-page write also forces),
    /// or the stop address comes up. Falls back to [`Machine::step`] for code that is not
    /// decoded yet. On a fault, returns it with the faulting instruction's address.
    #[inline]
    fn run_block(&mut self) -> Result<(), (Exc, u32)> {
        if !self.retired.is_empty() {
            self.retired.clear();
        }
        let mut pc = self.cpu.r[15];
        let Some((page, mut idx)) = self.cached_page(pc) else {
            return self.step().map_err(|e| (e, pc));
        };
        let page_base = pc.wrapping_sub(2 * idx as u32);
        if !self.cpu.thumb {
            return self.step().map_err(|e| (e, pc));
        }
        let jit_on = self.jit_threshold.is_some();
        if jit_on && self.cpu.it == 0 {
            if let Some(r) = self.try_jit(pc) {
                return r;
            }
        }
        // Fast forms run and not yet added to `now` and `instret` (each takes one cycle), and
        // how many may run before the next event is due.
        let mut pending: u64 = 0;
        let mut room = self.next_event.saturating_sub(self.now);
        loop {
            // SAFETY: `page` points into an `Arc<Page>` held by `self.mem[..].code` or, once a
            // store has invalidated it during this block, by `self.retired`; neither is
            // dropped before this function returns (`retired` is cleared only above, between
            // blocks), and a page is never written through while it is shared (`make_mut` in
            // `decode_into_cache` runs only outside this loop). So the pointer stays valid
            // and the page unchanged for the whole block. Using it instead of an `Arc` clone
            // saves two atomic operations per block.
            let entry: &(Instr, u8) = unsafe { &(*page)[idx] };
            let size = entry.1;
            // (EPSR.T only clears through `bx_write_pc`/BLX, which end the block.)
            if size == 0 {
                self.now += pending;
                self.instret += pending;
                self.cpu.r[15] = pc;
                // Not decoded yet, or the stop address (never cached): `run` stops there.
                if pc == self.stop_at {
                    return Ok(());
                }
                return self.step().map_err(|e| (e, pc));
            }
            // Outside IT blocks, the fast forms skip the PC/IT/exception-return bookkeeping:
            // they neither read nor write the PC, so `cpu.r[15]` is written back only when the
            // loop hands over (and `exec_decoded` sets it itself).
            if self.cpu.it == 0 && self.fast(&entry.0, false).is_some() {
                pending += 1;
                pc = pc.wrapping_add(u32::from(size));
                idx += usize::from(size / 2);
                if idx >= PAGE_ENTRIES || pending >= room {
                    self.now += pending;
                    self.instret += pending;
                    self.cpu.r[15] = pc;
                    return Ok(());
                }
                continue;
            }
            self.now += pending;
            self.instret += pending;
            pending = 0;
            self.exec_decoded(pc, &entry.0, size).map_err(|e| (e, pc))?;
            let next = self.cpu.r[15];
            // Branches within the same page (loops) stay in this loop too, unless the block
            // compiler is on: then every branch goes back to `run`, so that the block at its
            // target counts as started (and runs compiled once it is hot).
            let in_page = next.wrapping_sub(page_base);
            if in_page >= PAGE
                || self.now >= self.next_event
                || (jit_on && next != pc.wrapping_add(u32::from(size)))
            {
                return Ok(());
            }
            room = self.next_event - self.now;
            idx = (in_page / 2) as usize;
            pc = next;
        }
    }

    /// Runs the compiled block at `pc` if there is one (compiling it once it is hot) and it
    /// fits before the next event; `None` to let the interpreter run instead. The caller
    /// checked that `pc` is in a decode-cache page, Thumb state and no IT block.
    fn try_jit(&mut self, pc: u32) -> Option<Result<(), (Exc, u32)>> {
        let threshold = self.jit_threshold?;
        let ri = self.mem.iter().position(|r| (pc.wrapping_sub(r.base) as usize) < r.data.len())?;
        let off = (pc - self.mem[ri].base) as usize;
        let (page, idx) = (off / PAGE as usize, (off % PAGE as usize) / 2);
        let block = match self.jit_slot(ri, page, idx) {
            Slot::Hot(b) => b,
            Slot::Never => return None,
            Slot::Cold(n) => {
                if n < threshold {
                    return None;
                }
                let compiled = self.compile_block(ri, pc, MAX_BLOCK, true);
                self.set_jit_slot(ri, page, idx, compiled.map_or(Slot::Never, Slot::Hot));
                // Straight-line code longer than a block: the block that follows runs as
                // often as this one, so it compiles on its first start instead of warming up
                // again (unrolled SHA-256: 3.5 M of 44 M instructions were interpreted that way).
                if let Some(next) = compiled.and_then(|c| c.fallthrough) {
                    let off = next.wrapping_sub(self.mem[ri].base) as usize;
                    if off / PAGE as usize == page {
                        let idx = (off % PAGE as usize) / 2;
                        if let Some(Some(slots)) = self.mem[ri].jit.get_mut(page) {
                            if let Slot::Cold(n) = &mut slots[idx] {
                                *n = (*n).max(threshold - 1);
                            }
                        }
                    }
                }
                compiled?
            }
        };
        if block.max_cycles > self.next_event.saturating_sub(self.now) {
            return None;
        }
        Some(self.run_compiled(block))
    }

    /// The slot of a block start, counting this visit if it is cold.
    fn jit_slot(&mut self, ri: usize, page: usize, idx: usize) -> Slot {
        let r = &mut self.mem[ri];
        if r.jit.len() != r.code.len() {
            r.jit.resize_with(r.code.len(), || None);
        }
        let slots = r.jit[page].get_or_insert_with(|| Box::new([Slot::Cold(0); PAGE_ENTRIES]));
        if let Slot::Cold(n) = &mut slots[idx] {
            *n = n.saturating_add(1);
        }
        slots[idx]
    }

    fn set_jit_slot(&mut self, ri: usize, page: usize, idx: usize, slot: Slot) {
        if let Some(Some(slots)) = self.mem[ri].jit.get_mut(page) {
            slots[idx] = slot;
        }
    }

    /// Compiles the block at `pc` (in region `ri`), or `None` if it cannot be compiled.
    fn compile_block(
        &self,
        ri: usize,
        pc: u32,
        max_instrs: usize,
        looping: bool,
    ) -> Option<&'static Compiled> {
        let r = &self.mem[ri];
        let off = (pc - r.base) as usize;
        let end = ((off / PAGE as usize + 1) * PAGE as usize).min(r.data.len());
        jit::compile(pc, &r.data[off..end], self.stop_at, max_instrs, looping)
    }

    /// Runs a compiled block from the current state, then the compiled blocks that follow it
    /// for as long as they fit before the next event and do not reach the stop address; an
    /// instruction a block bails on is executed by the interpreter right away (so a block that
    /// bails on its first instruction still makes progress).
    fn run_compiled(&mut self, mut block: &'static Compiled) -> Result<(), (Exc, u32)> {
        let mut regions = [JitRegion::NONE; jit::WINDOWS];
        if self.windowed {
            for r in &mut self.mem {
                let pages = r.data.len().div_ceil(PAGE as usize);
                if r.has_code.len() != pages {
                    r.has_code.resize(pages, 0);
                }
                regions[(r.base >> jit::WINDOW_SHIFT) as usize] =
                    JitRegion::new(r.data.as_mut_ptr(), r.has_code.as_ptr(), r.base, r.data.len() as u32);
            }
        }
        let mut io = JitIo { cpu: std::ptr::null_mut(), room: 0, cycles: 0, instret: 0, regions };
        loop {
            io.cpu = &mut self.cpu;
            io.room = self.next_event.saturating_sub(self.now);
            // SAFETY: `io` points at this machine's core and at every region's bytes and page
            // map, each covering its region whole (resized above), in the order of the layout
            // the block was compiled for (`compile_block`: the machine's regions never
            // change); nothing else touches them during the call, and between calls nothing
            // resizes them.
            let exit = unsafe { block.call(&mut io) };
            self.now += io.cycles;
            self.instret += io.instret;
            let pc = self.cpu.r[15];
            if exit == jit::EXIT_BAIL {
                return self.step().map_err(|e| (e, pc));
            }
            if self.now >= self.next_event || pc == self.stop_at {
                return Ok(());
            }
            match self.hot_block(pc) {
                Some(next) if next.max_cycles <= self.next_event - self.now => block = next,
                _ => return Ok(()),
            }
        }
    }

    /// The compiled block at `pc`, if there is one.
    #[inline]
    fn hot_block(&self, pc: u32) -> Option<&'static Compiled> {
        for r in &self.mem {
            let off = pc.wrapping_sub(r.base) as usize;
            if off < r.data.len() {
                let slots = r.jit.get(off / PAGE as usize)?.as_ref()?;
                return match slots[(off % PAGE as usize) / 2] {
                    Slot::Hot(b) => Some(b),
                    _ => None,
                };
            }
        }
        None
    }

    /// Executes exactly one instruction, compiled as a block of one when the block compiler
    /// knows it (otherwise, or when the compiled code bails, interpreted), or enters the
    /// exception it raises. For differential tests of the block compiler: compare the state
    /// after this with the state after [`Machine::step_one`].
    #[doc(hidden)]
    pub fn step_one_jit(&mut self) -> Option<Stop> {
        let pc = self.cpu.r[15];
        let ri = self.mem.iter().position(|r| (pc.wrapping_sub(r.base) as usize) < r.data.len());
        let block = ri
            .filter(|_| self.cpu.thumb && self.cpu.it == 0 && pc & 1 == 0)
            .and_then(|ri| self.compile_block(ri, pc, 1, false));
        let Some(block) = block else {
            return self.step_one();
        };
        let budget = self.next_event;
        self.next_event = u64::MAX;
        let r = self.run_compiled(block);
        self.next_event = budget;
        match r {
            Ok(()) => None,
            Err((e, at)) => self.raise(e, at),
        }
    }

    /// The decode-cache page holding `pc` and the entry index in it, if that page exists.
    #[inline]
    fn cached_page(&self, pc: u32) -> Option<(*const Page, usize)> {
        for r in &self.mem {
            let off = pc.wrapping_sub(r.base) as usize;
            if off < r.data.len() {
                let p = r.code.get(off / PAGE as usize)?.as_ref()?;
                return Some((Arc::as_ptr(p), (off % PAGE as usize) / 2));
            }
        }
        None
    }

    /// Handles everything due at `now`: device time, SysTick, interrupt lines, pending
    /// exceptions, sleep. Sets `next_event` to the earliest thing that needs attention.
    fn service(&mut self) -> Option<Stop> {
        if let Some(code) = self.pending_exit.take() {
            return Some(Stop::Exit(code));
        }
        if !self.serial_tx.is_empty() {
            return Some(Stop::Serial);
        }
        if let Some(index) = self.flash_stop_at {
            if self.flash_ops() > index {
                self.flash_stop_at = None;
                return Some(Stop::FlashOp { index });
            }
        }
        if self.sys.reset_requested {
            tracing::info!(target: "cpu", "system reset requested (AIRCR.SYSRESETREQ)");
            self.reset();
        }
        loop {
            self.advance_devices();
            match self.take_pending_exception() {
                Ok(_) => {}
                Err(stop) => return Some(stop),
            }
            let deadline = self.earliest_deadline();
            if self.sleeping {
                if self.sleep_wfe && self.cpu.event {
                    // B1.5.18: the event that ends a WFE is consumed.
                    self.cpu.event = false;
                    self.wake();
                    continue;
                }
                if self.wake_pending() {
                    self.wake();
                    continue;
                }
                match deadline {
                    Some(t) if t < self.budget_end => {
                        self.now = self.now.max(t);
                        continue;
                    }
                    Some(_) => {
                        self.now = self.budget_end;
                        self.next_event = self.budget_end;
                        return None;
                    }
                    None => return Some(Stop::Idle),
                }
            }
            self.next_event = deadline.map_or(self.budget_end, |t| t.min(self.budget_end));
            return None;
        }
    }

    fn earliest_deadline(&self) -> Option<u64> {
        let dev = self.periphs.iter().filter_map(|p| p.model.next_deadline()).min();
        match (dev, self.sys.systick.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn advance_devices(&mut self) {
        let now = self.now;
        let clock_hz = self.clock_hz;
        let out_before = self.out.bytes.len();
        for i in 0..self.periphs.len() {
            let p = &mut self.periphs[i];
            if p.model.next_deadline().is_some_and(|d| d <= now) {
                self.irq.select_source(i);
                let mut ctx = Ctx { now, clock_hz, irq: &mut self.irq, out: &mut self.out };
                p.model.advance(&mut ctx);
                self.apply_flash_ops_of(i);
            }
        }
        self.divert_serial(out_before);
        if self.sys.systick.advance(now, clock_hz) {
            self.sys.pending[exc::SYSTICK as usize] = true;
        }
        // Level-sensitive lines pend while high and not active; pulses pend on their edge.
        let rose = self.irq.take_rising();
        let levels = self.irq.levels();
        for irq in 0..crate::system::NUM_IRQ {
            let bit = 1u128 << irq;
            let n = (exc::IRQ0 + irq) as usize;
            if rose & bit != 0 || (levels & bit != 0 && !self.sys.active[n]) {
                // SCR.SEVONPEND: an interrupt turning pending is a WFE wake-up event, even
                // one the NVIC has disabled (B3.2.7).
                if !self.sys.pending[n] && self.sys.scr & SCR_SEVONPEND != 0 {
                    self.cpu.event = true;
                }
                self.sys.pending[n] = true;
            }
        }
    }

    /// Execution priority (B1.5.4).
    fn execution_priority(&self) -> i32 {
        let mut p = self.sys.active_priority();
        if self.cpu.basepri != 0 {
            p = p.min(self.sys.group(i32::from(self.cpu.basepri)));
        }
        if self.cpu.primask {
            p = p.min(0);
        }
        if self.cpu.faultmask {
            p = p.min(-1);
        }
        p
    }

    /// Whether a pending exception would wake a WFI or WFE (priority above the active ones,
    /// ignoring PRIMASK, as B1.5.19 specifies). Events wake only a WFE: see the run loop.
    fn wake_pending(&self) -> bool {
        let Some((_, prio)) = self.sys.highest_pending() else {
            return false;
        };
        let mut p = self.sys.active_priority();
        if self.cpu.basepri != 0 {
            p = p.min(self.sys.group(i32::from(self.cpu.basepri)));
        }
        self.sys.group(prio) < p
    }

    /// Takes the highest pending exception if it can preempt.
    fn take_pending_exception(&mut self) -> Result<bool, Stop> {
        let Some((n, prio)) = self.sys.highest_pending() else {
            return Ok(false);
        };
        if self.sys.group(prio) >= self.execution_priority() {
            return Ok(false);
        }
        self.sys.pending[n] = false;
        if self.sleeping {
            self.wake();
        }
        let ret = self.cpu.r[15];
        self.enter_exception(n as u32, ret)?;
        Ok(true)
    }

    /// Exception entry (B1.5.6 PushStack, B1.5.7 ExceptionTaken).
    fn enter_exception(&mut self, n: u32, return_addr: u32) -> Result<(), Stop> {
        let lockup = Stop::Lockup { pc: return_addr };
        let align = self.sys.ccr & (1 << 9) != 0;
        let sp = self.cpu.r[13];
        let realign = align && sp & 4 != 0;
        let frame = sp.wrapping_sub(0x20) & if align { !4 } else { !0 };
        let mut xpsr = self.cpu.xpsr();
        if realign {
            xpsr |= 1 << 9;
        }
        let r = &self.cpu.r;
        let words = [r[0], r[1], r[2], r[3], r[12], r[14], return_addr & !1, xpsr];
        for (i, w) in words.iter().enumerate() {
            if self.store(frame.wrapping_add(4 * i as u32), *w, Size::Word).is_err() {
                tracing::warn!(target: "cpu", "fault while stacking for exception {n} at SP 0x{frame:08x}: lockup");
                return Err(lockup);
            }
        }
        self.cpu.r[13] = frame;
        let exc_return = if self.cpu.ipsr != 0 {
            0xffff_fff1
        } else if self.cpu.spsel {
            0xffff_fffd
        } else {
            0xffff_fff9
        };
        self.cpu.r[14] = exc_return;
        let vector = match self.load(self.sys.vtor.wrapping_add(4 * n), Size::Word) {
            Ok(v) => v,
            Err(_) => {
                tracing::warn!(target: "cpu", "vector table read failed for exception {n}: lockup");
                self.sys.hfsr |= hfsr::VECTTBL;
                return Err(lockup);
            }
        };
        self.cpu.set_mode(n, false);
        self.cpu.it = 0;
        self.cpu.thumb = vector & 1 != 0;
        self.cpu.r[15] = vector & !1;
        self.cpu.exclusive = None;
        self.sys.active[n as usize] = true;
        self.now += crate::timing::EXCEPTION_ENTRY;
        self.next_event = 0;
        Ok(())
    }

    /// Exception return (B1.5.8).
    fn exception_return(&mut self, exc_return: u32) -> Result<(), Exc> {
        let returning = self.cpu.ipsr as usize;
        let mode = exc_return & 0xf;
        if exc_return & 0x0fff_fff0 != 0x0fff_fff0
            || !matches!(mode, 0x1 | 0x9 | 0xd)
            || !self.sys.active.get(returning).copied().unwrap_or(false)
        {
            return Err(Exc::Fault { n: exc::USAGEFAULT, cfsr: cfsr::INVPC, addr: None });
        }
        self.sys.active[returning] = false;
        if returning as u32 != exc::NMI {
            self.cpu.faultmask = false;
        }
        let to_thread = mode != 0x1;
        if to_thread && self.sys.active_count() != 0 && self.sys.ccr & 1 == 0 {
            // Returning to Thread mode with exceptions still active (NONBASETHRDENA = 0).
            self.sys.active[returning] = true;
            return Err(Exc::Fault { n: exc::USAGEFAULT, cfsr: cfsr::INVPC, addr: None });
        }
        // Select the stack of the mode we return to, then pop.
        self.cpu.set_mode(if to_thread { 0 } else { self.cpu.ipsr }, mode == 0xd);
        let frame = self.cpu.r[13];
        let mut w = [0u32; 8];
        for (i, slot) in w.iter_mut().enumerate() {
            match self.load(frame.wrapping_add(4 * i as u32), Size::Word) {
                Ok(v) => *slot = v,
                Err(_) => {
                    tracing::warn!(target: "cpu", "fault while unstacking at 0x{frame:08x}: HardFault");
                    return Err(Exc::Fault { n: exc::HARDFAULT, cfsr: cfsr::UNSTKERR, addr: None });
                }
            }
        }
        let [r0, r1, r2, r3, r12, lr, pc, xpsr] = w;
        self.cpu.r[0] = r0;
        self.cpu.r[1] = r1;
        self.cpu.r[2] = r2;
        self.cpu.r[3] = r3;
        self.cpu.r[12] = r12;
        self.cpu.r[14] = lr;
        self.cpu.r[13] = frame.wrapping_add(0x20)
            | if xpsr & (1 << 9) != 0 && self.sys.ccr & (1 << 9) != 0 { 4 } else { 0 };
        self.cpu.set_apsr(xpsr);
        self.cpu.it = (((xpsr >> 25) & 3) | ((xpsr >> 10) & 0x3f) << 2) as u8;
        self.cpu.thumb = xpsr & (1 << 24) != 0;
        let ipsr = xpsr & 0x1ff;
        // IPSR must agree with the mode returned to; a mismatch is an INVPC UsageFault.
        self.cpu.ipsr = if to_thread { 0 } else { ipsr };
        self.next_pc = pc & !1;
        self.cpu.exclusive = None;
        self.now += crate::timing::EXCEPTION_RETURN;
        self.next_event = 0;
        if to_thread != (ipsr == 0) {
            return Err(Exc::Fault { n: exc::USAGEFAULT, cfsr: cfsr::INVPC, addr: None });
        }
        Ok(())
    }

    /// Turns a synchronous exception into exception entry (with escalation), or a stop.
    fn raise(&mut self, e: Exc, pc: u32) -> Option<Stop> {
        let (mut n, return_addr) = match e {
            Exc::Exit(code) => return Some(Stop::Exit(code)),
            Exc::Svc => (exc::SVCALL, self.next_pc),
            Exc::Debug => {
                self.sys.hfsr |= hfsr::DEBUGEVT;
                (exc::HARDFAULT, pc)
            }
            Exc::Fault { n, cfsr: bits, addr } => {
                self.sys.cfsr |= bits;
                if let Some(a) = addr {
                    self.sys.bfar = a;
                    self.sys.cfsr |= cfsr::BFARVALID;
                }
                (n, pc)
            }
        };
        let exec = self.execution_priority();
        if n != exc::HARDFAULT
            && (!self.sys.fault_enabled(n) || self.sys.group(self.sys.exc_priority(n as usize)) >= exec)
        {
            tracing::debug!(target: "cpu", "exception {n} cannot be taken: escalated to HardFault");
            self.sys.hfsr |= hfsr::FORCED;
            n = exc::HARDFAULT;
        }
        if n == exc::HARDFAULT && exec <= -1 {
            tracing::warn!(target: "guest", "fault at 0x{pc:08x} with HardFault or NMI active (or FAULTMASK set): lockup");
            return Some(Stop::Lockup { pc });
        }
        self.cpu.r[15] = return_addr;
        self.enter_exception(n, return_addr).err()
    }

    /// Executes one instruction.
    #[inline]
    fn step(&mut self) -> Result<(), Exc> {
        let pc = self.cpu.r[15];
        if !self.cpu.thumb {
            return Err(Exc::Fault { n: exc::USAGEFAULT, cfsr: cfsr::INVSTATE, addr: None });
        }
        let (instr, size) = self.fetch(pc)?;
        self.exec_decoded(pc, &instr, size)
    }

    /// Executes the decoded instruction at `pc`: IT-block condition, the instruction, a pending
    /// exception return, the PC update. On a fault the core state is as before the instruction
    /// (PC and ITSTATE restored).
    #[inline(always)]
    fn exec_decoded(&mut self, pc: u32, instr: &Instr, size: u8) -> Result<(), Exc> {
        self.next_pc = pc.wrapping_add(u32::from(size));
        let it = self.cpu.it;
        if it != 0 {
            if !self.cpu.cond(it >> 4) {
                self.cpu.it_advance();
                self.cpu.r[15] = self.next_pc;
                self.now += 1;
                self.instret += 1;
                return Ok(());
            }
            if !matches!(*instr, Instr::It { .. }) {
                self.cpu.it_advance();
            }
        }
        self.cpu.r[15] = pc.wrapping_add(4);
        match self.exec(instr, it != 0) {
            Ok(cycles) => {
                self.now += u64::from(cycles);
                self.instret += 1;
                // (Not `take()`: that would store on every instruction.)
                if let Some(v) = self.pending_return {
                    self.pending_return = None;
                    self.cpu.r[15] = pc; // a failing return faults at the returning instruction
                    self.exception_return(v)?;
                }
                self.cpu.r[15] = self.next_pc;
                Ok(())
            }
            Err(e) => {
                self.pending_return = None;
                self.cpu.r[15] = pc;
                self.cpu.it = it;
                Err(e)
            }
        }
    }

    /// Fetches (and decodes, once) the instruction at `pc`.
    #[inline]
    fn fetch(&mut self, pc: u32) -> Result<(Instr, u8), Exc> {
        for ri in 0..self.mem.len() {
            let r = &self.mem[ri];
            let off = pc.wrapping_sub(r.base) as usize;
            if off >= r.data.len() {
                continue;
            }
            let page = off / PAGE as usize;
            let idx = (off % PAGE as usize) / 2;
            if let Some(Some(p)) = r.code.get(page) {
                let e = p[idx];
                if e.1 != 0 {
                    return Ok(e);
                }
            }
            return self.decode_into_cache(ri, pc, off);
        }
        Err(fetch_fault(pc))
    }

    #[cold]
    fn decode_into_cache(&mut self, ri: usize, pc: u32, off: usize) -> Result<(Instr, u8), Exc> {
        let ibus = fetch_fault(pc);
        let stop_at = self.stop_at;
        let r = &mut self.mem[ri];
        let hw = |o: usize| -> Option<u16> { r.data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]])) };
        let h1 = hw(off).ok_or(ibus)?;
        let h2 = if is_32bit(h1) { hw(off + 2).ok_or(ibus)? } else { 0 };
        let (instr, size) = decode(h1, h2);
        let instr = instr.specialize();
        if pc == stop_at {
            // Never cached: the empty entry makes `run_block` hand over to `run`, which stops.
            return Ok((instr, size));
        }
        if r.code.is_empty() {
            r.code = vec![None; r.data.len().div_ceil(PAGE as usize)];
        }
        let page = off / PAGE as usize;
        r.has_code.resize(r.code.len(), 0);
        r.has_code[page] = 1;
        let slot = r.code[page].get_or_insert_with(|| Arc::new([(Instr::Empty, 0); PAGE_ENTRIES]));
        Arc::make_mut(slot)[(off % PAGE as usize) / 2] = (instr, size);
        Ok((instr, size))
    }

    /// Writes a register as an instruction result; writes to PC branch (BranchWritePC).
    #[inline]
    pub(crate) fn set_reg(&mut self, r: u8, v: u32) {
        if r == 15 {
            self.next_pc = v & !1;
        } else if r == 13 {
            self.cpu.r[13] = v & !3;
        } else {
            self.cpu.r[usize::from(r & 15)] = v;
        }
    }

    /// BXWritePC / LoadWritePC: interworking branch, or exception return in Handler mode.
    pub(crate) fn bx_write_pc(&mut self, v: u32) {
        if self.cpu.ipsr != 0 && v >> 28 == 0xf {
            self.pending_return = Some(v);
        } else {
            // Bit 0 clear: EPSR.T becomes 0 and the next instruction faults (INVSTATE).
            self.cpu.thumb = v & 1 != 0;
            if !self.cpu.thumb {
                self.next_event = 0; // leave the block: the next step must fault
            }
            self.next_pc = v & !1;
        }
    }

    /// Sets the next PC (branch).
    #[inline]
    pub(crate) fn branch(&mut self, target: u32) {
        self.next_pc = target & !1;
    }

    /// The address of the instruction after the current one.
    pub(crate) fn next_pc(&self) -> u32 {
        self.next_pc
    }

    /// Enters sleep (WFI/WFE) until an exception or event wakes the core. For energy
    /// accounting the sleep starts at the cycle the WFI/WFE starts (its own cycle counts as
    /// sleep), deep if SCR.SLEEPDEEP is set then.
    pub(crate) fn sleep(&mut self, wfe: bool) {
        self.sleeping = true;
        self.sleep_wfe = wfe;
        self.next_event = 0;
        if let Some(p) = &mut self.power {
            let deep = self.sys.scr & SCR_SLEEPDEEP != 0;
            p.set_cpu(self.now, if deep { power::cpu::DEEP_SLEEP } else { power::cpu::SLEEP });
        }
    }

    /// Ends a sleep: the core runs again from `now`.
    fn wake(&mut self) {
        self.sleeping = false;
        if let Some(p) = &mut self.power {
            p.set_cpu(self.now, power::cpu::RUN);
        }
    }

    /// Forces the run loop to re-evaluate interrupts and deadlines before the next instruction.
    #[inline]
    pub(crate) fn reschedule(&mut self) {
        self.next_event = 0;
    }

    // ---- the bus ----

    /// Loads a value of `size` from `addr` (little-endian). Faults: BusFault (precise).
    #[inline]
    pub(crate) fn load(&mut self, addr: u32, size: Size) -> Result<u32, Exc> {
        let n = size as usize;
        for r in &self.mem {
            let off = addr.wrapping_sub(r.base) as usize;
            if off < r.data.len() && off + n <= r.data.len() {
                let b = &r.data[off..off + n];
                return Ok(match size {
                    Size::Byte => u32::from(b[0]),
                    Size::Half => u32::from(u16::from_le_bytes([b[0], b[1]])),
                    Size::Word => u32::from_le_bytes([b[0], b[1], b[2], b[3]]),
                });
            }
        }
        self.load_slow(addr, size)
    }

    /// Stores the low `size` bytes of `value` at `addr`.
    #[inline]
    pub(crate) fn store(&mut self, addr: u32, value: u32, size: Size) -> Result<(), Exc> {
        let n = size as usize;
        for r in &mut self.mem {
            let off = addr.wrapping_sub(r.base) as usize;
            if off < r.data.len() && off + n <= r.data.len() {
                r.data[off..off + n].copy_from_slice(&value.to_le_bytes()[..n]);
                if !r.code.is_empty() && r.invalidate(off, n, &mut self.retired) {
                    // Code changed under a running block: make it look the page up again.
                    self.next_event = 0;
                }
                return Ok(());
            }
        }
        self.store_slow(addr, value, size)
    }

    /// Whether the core runs privileged (Handler mode, or Thread mode with CONTROL.nPRIV 0).
    pub(crate) fn privileged(&self) -> bool {
        self.cpu.ipsr != 0 || !self.cpu.npriv
    }

    fn bus_error(addr: u32) -> Exc {
        Exc::Fault { n: exc::BUSFAULT, cfsr: cfsr::PRECISERR, addr: Some(addr) }
    }

    #[cold]
    fn load_slow(&mut self, addr: u32, size: Size) -> Result<u32, Exc> {
        if addr & (size as u32 - 1) != 0 {
            // Unaligned access to device space, or across the end of a region: byte by byte.
            let mut v = 0;
            for i in 0..size as u32 {
                v |= self.load(addr.wrapping_add(i), Size::Byte)? << (8 * i);
            }
            return Ok(v);
        }
        match addr {
            0xe000_e000..=0xe000_efff => {
                if !self.privileged() {
                    // B3.2: the SCS is privileged-only; an unprivileged access is a BusFault.
                    return Err(Self::bus_error(addr));
                }
                let (now, hz, ipsr) = (self.now, self.clock_hz, self.cpu.ipsr);
                Ok(self.sys.read(addr - 0xe000_e000, size, now, hz, ipsr))
            }
            0xe000_0000..=0xe00f_ffff => Ok(0), // ITM, DWT, FPB, TPIU, ROM table: RAZ
            0x2200_0000..=0x23ff_ffff | 0x4200_0000..=0x43ff_ffff => {
                let (byte_addr, bit) = bitband(addr);
                Ok((self.load(byte_addr, Size::Byte)? >> bit) & 1)
            }
            _ => self.device_access(addr, size, |model, offset, ctx| model.read(offset, size, ctx)),
        }
    }

    /// An access to the peripheral mapped at `addr`: brings it up to `now`, lets `access` read
    /// or write it (its interrupt outputs attributed to it), and makes the run loop look at
    /// interrupts and deadlines again. Unmapped: a precise BusFault.
    fn device_access<T>(
        &mut self,
        addr: u32,
        size: Size,
        access: impl FnOnce(&mut periph::Model, u32, &mut Ctx<'_>) -> T,
    ) -> Result<T, Exc> {
        let Some(i) = self.periphs.iter().position(|p| addr.wrapping_sub(p.base) < p.size) else {
            tracing::debug!(target: "guest", "{size:?} access to unmapped 0x{addr:08x}: BusFault");
            return Err(Self::bus_error(addr));
        };
        let p = &mut self.periphs[i];
        self.irq.select_source(i);
        let out_before = self.out.bytes.len();
        if p.model.senses_battery() {
            // A battery sensor (the fuel gauge) shows the battery as it is at this cycle.
            if let Some(r) = self.power.as_mut().and_then(|pw| pw.gauge_reading(self.now)) {
                p.model.observe_battery(r);
            }
        }
        let mut ctx = Ctx { now: self.now, clock_hz: self.clock_hz, irq: &mut self.irq, out: &mut self.out };
        p.model.advance(&mut ctx);
        let v = access(&mut p.model, addr - p.base, &mut ctx);
        self.next_event = 0;
        self.apply_flash_ops_of(i);
        self.divert_serial(out_before);
        if let Some(pw) = &mut self.power {
            // A flash command or a sensor configuration write changes what the board draws.
            pw.sync_periph(self.now, i, &self.periphs[i].model);
        }
        Ok(v)
    }

    #[cold]
    fn store_slow(&mut self, addr: u32, value: u32, size: Size) -> Result<(), Exc> {
        if addr & (size as u32 - 1) != 0 {
            for i in 0..size as u32 {
                self.store(addr.wrapping_add(i), value >> (8 * i), Size::Byte)?;
            }
            return Ok(());
        }
        match addr {
            0xe000_e000..=0xe000_efff => {
                // B3.2: privileged-only, except STIR when CCR.USERSETMPEND is set.
                let stir_allowed = addr == 0xe000_ef00 && self.sys.ccr & 2 != 0;
                if !self.privileged() && !stir_allowed {
                    return Err(Self::bus_error(addr));
                }
                let (now, hz) = (self.now, self.clock_hz);
                if self.sys.write(addr - 0xe000_e000, size, value, now, hz) == ScsEffect::Reschedule {
                    self.next_event = 0;
                }
                Ok(())
            }
            0xe000_0000..=0xe00f_ffff => Ok(()),
            0x2200_0000..=0x23ff_ffff | 0x4200_0000..=0x43ff_ffff => {
                let (byte_addr, bit) = bitband(addr);
                let old = self.load(byte_addr, Size::Byte)?;
                let new = (old & !(1 << bit)) | ((value & 1) << bit);
                self.store(byte_addr, new, Size::Byte)
            }
            _ => self.device_access(addr, size, |model, offset, ctx| model.write(offset, size, value, ctx)),
        }
    }

    // ---- semihosting (ARM "Semihosting for AArch32 and AArch64", v2) ----

    /// Handles `BKPT 0xAB`: operation in r0, parameter in r1, result to r0.
    pub(crate) fn semihosting(&mut self) -> Result<(), Exc> {
        let op = self.cpu.r[0];
        let arg = self.cpu.r[1];
        let word = |m: &mut Self, i: u32| m.load(arg.wrapping_add(4 * i), Size::Word);
        const STDIN: u32 = 1;
        const STDOUT: u32 = 2;
        const STDERR: u32 = 3;
        let result: u32 = match op {
            0x01 => {
                // SYS_OPEN: only ":tt" (the console) exists; twinbed gives the guest no host files.
                let (name_ptr, mode, len) = (word(self, 0)?, word(self, 1)?, word(self, 2)?);
                let name = self.read_bytes(name_ptr, len.min(256))?;
                if name == b":tt" {
                    match mode {
                        0..=3 => STDIN,
                        4..=7 => STDOUT,
                        _ => STDERR,
                    }
                } else {
                    self.semihost_errno = 2; // ENOENT
                    u32::MAX
                }
            }
            0x02 => 0,
            0x03 => {
                let c = self.load(arg, Size::Byte)? as u8;
                self.out.bytes.push((OutputSource::Semihosting, c));
                0
            }
            0x04 => {
                let mut a = arg;
                for _ in 0..65_536 {
                    let c = self.load(a, Size::Byte)? as u8;
                    if c == 0 {
                        break;
                    }
                    self.out.bytes.push((OutputSource::Semihosting, c));
                    a = a.wrapping_add(1);
                }
                0
            }
            0x05 => {
                let (handle, ptr, len) = (word(self, 0)?, word(self, 1)?, word(self, 2)?);
                if handle == STDOUT || handle == STDERR {
                    let bytes = self.read_bytes(ptr, len.min(1 << 20))?;
                    self.out.bytes.extend(bytes.into_iter().map(|b| (OutputSource::Semihosting, b)));
                    0
                } else {
                    self.semihost_errno = 9; // EBADF
                    len
                }
            }
            0x06 => word(self, 2)?, // SYS_READ: end of file, nothing read
            0x07 => u32::MAX,       // SYS_READC: no input
            0x09 => u32::from(matches!(word(self, 0)?, STDIN | STDOUT | STDERR)),
            0x0c => u32::MAX, // SYS_FLEN
            0x10 => (self.now.saturating_mul(100) / u64::from(self.clock_hz)) as u32,
            // SYS_TIME: virtual seconds since power-on, counted from the epoch (deterministic;
            // QEMU returns the host's time instead).
            0x11 => (self.now / u64::from(self.clock_hz)) as u32,
            0x13 => self.semihost_errno,
            0x15 => {
                let (ptr, cap) = (word(self, 0)?, word(self, 1)?);
                let mut bytes = self.cmdline.clone().into_bytes();
                if bytes.len() as u32 + 1 > cap {
                    u32::MAX
                } else {
                    let len = bytes.len() as u32;
                    bytes.push(0);
                    for (i, b) in bytes.iter().enumerate() {
                        self.store(ptr.wrapping_add(i as u32), u32::from(*b), Size::Byte)?;
                    }
                    self.store(arg.wrapping_add(4), len, Size::Word)?;
                    0
                }
            }
            0x16 => {
                let block = word(self, 0)?;
                for i in 0..4 {
                    self.store(block.wrapping_add(4 * i), 0, Size::Word)?;
                }
                0
            }
            0x18 => {
                // SYS_EXIT: on AArch32 the parameter is the reason itself.
                return Err(Exc::Exit(if arg == 0x20026 { 0 } else { 1 }));
            }
            0x20 => {
                let (reason, code) = (word(self, 0)?, word(self, 1)?);
                return Err(Exc::Exit(if reason == 0x20026 { code as i32 } else { 1 }));
            }
            0x30 => {
                let now = self.now;
                self.store(arg, now as u32, Size::Word)?;
                self.store(arg.wrapping_add(4), (now >> 32) as u32, Size::Word)?;
                0
            }
            0x31 => self.clock_hz,
            _ => {
                tracing::warn!(target: "guest", "semihosting operation 0x{op:x} is not supported: returns -1");
                u32::MAX
            }
        };
        self.cpu.r[0] = result;
        Ok(())
    }

    fn read_bytes(&mut self, addr: u32, len: u32) -> Result<Vec<u8>, Exc> {
        (0..len).map(|i| self.load(addr.wrapping_add(i), Size::Byte).map(|b| b as u8)).collect()
    }
}

/// The fault for an instruction fetch outside memory: executing from an Execute Never region
/// of the default memory map (B3.1.1: Peripheral 0x4000_0000.., Device and System
/// 0xA000_0000..) is a MemManage fault (IACCVIOL); anywhere else a BusFault (IBUSERR).
fn fetch_fault(pc: u32) -> Exc {
    let xn = (0x4000_0000..0x6000_0000).contains(&pc) || pc >= 0xa000_0000;
    if xn {
        Exc::Fault { n: exc::MEMMANAGE, cfsr: cfsr::IACCVIOL, addr: None }
    } else {
        Exc::Fault { n: exc::BUSFAULT, cfsr: cfsr::IBUSERR, addr: None }
    }
}

/// Bit-band alias to (byte address, bit) (B3.1.3 / Cortex-M3 TRM 3.7).
fn bitband(addr: u32) -> (u32, u32) {
    let region = addr & 0xf000_0000;
    let off = addr & 0x01ff_ffff;
    let byte = region | (off >> 5);
    (byte, (off >> 2) & 7)
}
