//! The block compiler: the engine's second tier. Hot Thumb code is translated, one region
//! at a time, to host machine code with Cranelift, and run from there.
//!
//! # What a compiled region is
//! A region starts at a PC the interpreter has reached often enough (`Machine::set_jit`). It
//! is made of *runs*: straight-line instructions the compiler knows (data processing, shifts,
//! multiplies, divides, bitfields, extends, ADR/MOVT, every single, dual and multiple load
//! and store form, IT blocks, NOP), each ending after a branch (B, B<cond>, CBZ/CBNZ, BL, BX,
//! BLX, TBB/TBH, POP/LDM/LDR with the PC), before the first instruction the compiler does not
//! know (MRS/MSR, CPS, SVC, BKPT, WFI, exclusives, SSAT/USAT...), at the end of the 1 KiB
//! decode-cache page, before the stop address, or after [`MAX_INSTRS`]. The first run is the
//! one at the start; the others are those its direct branches lead to in the same page, where
//! the program has already been (up to 24 runs, 256 instructions). A branch from one run to
//! another of the same region, a loop's back edge included, stays in host code for as long
//! as the cycle budget (`room`, the cycles left before the next event) covers a whole pass of
//! the run it goes to; any other branch leaves with the PC it computed.
//!
//! An IT block is compiled whole or not at all: each of its instructions runs under its
//! condition (a skipped one costs one cycle, as in the interpreter), and only its last may
//! branch.
//!
//! # Two tiers
//! A region is first compiled fast: registers and flags stay in the core's memory, their
//! values known only along straight-line code, and Cranelift runs without optimisation and
//! with its single-pass register allocator. A region that keeps running (the guest cycles
//! spent in it pass [`tier_up_cycles`], 2 M by default) is compiled again optimised, with the
//! guest registers and flags in host registers across the whole region (Cranelift
//! variables): only registers the region writes are stored back, and flag values nothing
//! reads are never computed.
//!
//! # Exactly the interpreter's semantics
//! A region is entered only when its first run fits before the next event (`max_cycles <=
//! room`), and every branch inside checks the same for the run it goes to, so interrupts,
//! timers and the stop address are seen at the same instruction boundaries, with the same
//! `now` and `instret`, as without it. Anything out of the ordinary *bails*: the region
//! stores its state as it was before the instruction in question (ITSTATE included), sets the
//! PC to it and returns [`EXIT_BAIL`], and the interpreter executes that instruction (and
//! raises its fault, if it has one), then goes on at the next one. Memory accesses are
//! compiled only for plain memory: an access outside the board's memory regions (devices, the
//! SCS, bit-band aliases), a misaligned one that must fault (LDRD/STRD, LDM/STM, or any with
//! CCR.UNALIGN_TRP set), or a store to a page that holds decoded code (self-modifying code:
//! the interpreter invalidates the caches) bails. So does a divide by zero, and a BX, BLX or
//! load of the PC to a target that is not plain Thumb code (an exception return, or bit 0
//! clear).
//!
//! The differential test runs every instruction it checks against Unicorn through this
//! compiler too (`Machine::step_one_jit`, inside IT blocks too), the random-program test
//! compares whole programs (both tiers) with the interpreter, and the conformance firmware and
//! the benchmark corpus run with blocks compiled at first sight (`TWINBED_JIT=eager`),
//! comparing output byte for byte.
//!
//! # Sharing
//! Compiled code is immutable and lives for the whole process, in one Cranelift module per
//! tier behind a mutex, with a cache keyed by (address, the region's runs and halfwords):
//! every machine and every snapshot running the same firmware uses the same compiled
//! regions, and the compiler runs once per region per process. Machines keep only references
//! to them, so a machine stays plain data; serialised snapshots leave them out and recompile
//! on demand.
//!
//! # Where things are
//! - `mod.rs`: what the machine sees: a compiled region ([`Compiled`]), the state it runs on
//!   ([`JitIo`], [`JitRegion`]), its exit codes and the tiers' threshold;
//! - `cache.rs`: the process-wide compiler, its cache of compiled regions ([`compile`]) and
//!   its statistics ([`compile_stats`]);
//! - `block.rs`: forming a region from the decode-cache page (its runs, IT blocks, where each
//!   ends, worst-case cycles);
//! - `translate/`: Thumb to Cranelift IR, one function per instruction family (`mod.rs`: the
//!   frame, runs, IT blocks and exits; `alu.rs`: data processing, bitfields, multiplies,
//!   divides; `memory.rs`: loads and stores; `branch.rs`: branches, within the region or out).

mod block;
mod cache;
mod translate;

pub(crate) use cache::compile;
pub use cache::{compile_stats, forget_compiled_blocks, CompileStats};

use crate::cpu::CpuState;
use std::sync::atomic::AtomicU64;

/// Address windows: a compiled access finds its memory region by the top three bits of the
/// address (one region per 512 MiB window, as on every board so far; a board with two regions
/// in one window gets no fast memory path: its compiled accesses all bail).
pub(crate) const WINDOWS: usize = 8;
/// Address bits below the window number.
pub(crate) const WINDOW_SHIFT: u32 = 29;
/// Longest block, in instructions.
pub(crate) const MAX_INSTRS: usize = 64;
/// Decode-cache page size: a block never leaves its page.
const PAGE: u32 = 1024;

/// The block ran to its end (or left its loop); `cpu.r[15]` is the next PC.
pub(crate) const EXIT_NEXT: u32 = 0;
/// The block stopped before an instruction the interpreter must execute; `cpu.r[15]` is its
/// address.
pub(crate) const EXIT_BAIL: u32 = 1;

/// One memory region as a block sees it (an empty one, `len` 0, where a window has none).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct JitRegion {
    /// The region's bytes.
    pub data: *mut u8,
    /// One byte per decode-cache page of the region, non-zero where the page holds decoded
    /// code (stores there bail).
    pub code: *const u8,
    /// First address.
    pub base: u32,
    /// Size in bytes.
    pub len: u32,
    _pad: u64,
}

impl JitRegion {
    /// No memory: every access bails.
    pub(crate) const NONE: JitRegion =
        JitRegion { data: std::ptr::null_mut(), code: std::ptr::null(), base: 0, len: 0, _pad: 0 };

    /// A region.
    pub(crate) fn new(data: *mut u8, code: *const u8, base: u32, len: u32) -> Self {
        JitRegion { data, code, base, len, _pad: 0 }
    }
}

/// log2 of `size_of::<JitRegion>()`: compiled code indexes the table with a shift.
const REGION_SHIFT: i64 = 5;
const _: () = assert!(std::mem::size_of::<JitRegion>() == 1 << REGION_SHIFT);

/// Whether every region of `layout` (base, size) lies in a window of its own.
pub(crate) fn windowed(layout: &[(u32, u32)]) -> bool {
    let mut used = [false; WINDOWS];
    layout.iter().all(|&(base, len)| {
        let w = (base >> WINDOW_SHIFT) as usize;
        let last = base.checked_add(len.saturating_sub(1)).map(|e| (e >> WINDOW_SHIFT) as usize);
        let ok = len > 0 && last == Some(w) && !used[w];
        used[w] = true;
        ok
    })
}

/// What a block reads and writes besides the core's registers.
#[repr(C)]
pub(crate) struct JitIo {
    /// The core.
    pub cpu: *mut CpuState,
    /// Cycles the block may use (a loop goes round again only while a whole pass still fits).
    pub room: u64,
    /// Out: cycles the block used.
    pub cycles: u64,
    /// Out: instructions it retired.
    pub instret: u64,
    /// All ones if CCR.UNALIGN_TRP is set (unaligned single loads and stores fault), else 0.
    pub unaligned_trap: u32,
    /// The memory regions by window ([`WINDOWS`]).
    pub regions: [JitRegion; WINDOWS],
}

type BlockFn = unsafe extern "C" fn(*mut JitIo) -> u32;

/// A compiled block.
#[derive(Debug)]
pub(crate) struct Compiled {
    f: BlockFn,
    /// Cycles of one pass through the block, at most: the block runs only when this fits.
    pub max_cycles: u64,
    /// Where the block ends when it ends without a branch (its length limit, the page end,
    /// or an instruction the compiler does not know): code that surely runs as often as the
    /// block itself.
    pub fallthrough: Option<u32>,
    /// Compiled by the optimising tier.
    pub optimised: bool,
    /// Cycles of guest time run in it so far (first tier only; machines on several threads
    /// may lose an update, which only delays the second tier): past [`tier_up_cycles`] the
    /// region is compiled again, optimised.
    pub spent: AtomicU64,
}

/// Guest cycles a region runs in the first tier before it is compiled again optimised, by
/// default. The optimising tier costs about twice the compile time and runs loops 1.3x to
/// 1.6x faster: a region that has run this long is likely to run much longer.
pub const TIER_UP_CYCLES: u64 = 2_000_000;

static TIER_UP: AtomicU64 = AtomicU64::new(TIER_UP_CYCLES);

/// Sets the guest cycles after which a region is compiled again optimised, for the whole
/// process (tests set it low so that both tiers run; results never depend on it).
#[doc(hidden)]
pub fn set_tier_up_cycles(cycles: u64) {
    TIER_UP.store(cycles, std::sync::atomic::Ordering::Relaxed);
}

/// The current [`set_tier_up_cycles`] setting.
pub(crate) fn tier_up_cycles() -> u64 {
    TIER_UP.load(std::sync::atomic::Ordering::Relaxed)
}

impl Compiled {
    /// Runs the block.
    ///
    /// # Safety
    /// `io` must point to a `JitIo` whose `cpu` is valid and whose regions each have `data`
    /// covering `len` bytes and `code` one byte per 1 KiB page of them (or are empty).
    pub(crate) unsafe fn call(&self, io: *mut JitIo) -> u32 {
        // SAFETY: the caller's contract; the code was made by `compile` for this signature.
        unsafe { (self.f)(io) }
    }
}

#[cfg(test)]
mod tests {
    use super::block::{self, form_region, form_run};
    use super::*;

    #[test]
    fn regions_need_windows_of_their_own() {
        assert!(windowed(&[(0, 0x40_0000), (0x2000_0000, 0x40_0000)]));
        assert!(!windowed(&[(0, 0x1000), (0x1000, 0x1000)]), "two regions in window 0");
        assert!(!windowed(&[(0x1fff_f000, 0x2000)]), "a region across two windows");
        assert!(!windowed(&[(0, 0)]));
    }

    fn lens(runs: &[block::Run]) -> Vec<usize> {
        runs.iter().map(|r| r.instrs.len()).collect()
    }

    #[test]
    fn runs_stop_before_unknown_instructions_and_after_branches() {
        // adds r0, #1; wfi; b .
        let code = [0x01, 0x30, 0x30, 0xbf, 0xfe, 0xe7];
        let run = form_run(0x100, 0x100, &code, 1, MAX_INSTRS, 0);
        assert_eq!(run.instrs.len(), 1);
        // adds r0, #1; b .-2 (back to the adds)
        let code = [0x01, 0x30, 0xfd, 0xe7];
        assert_eq!(form_run(0x100, 0x100, &code, 1, MAX_INSTRS, 0).instrs.len(), 2);
        // The stop address ends a run before it.
        assert_eq!(form_run(0x100, 0x100, &code, 0x102, MAX_INSTRS, 0).instrs.len(), 1);
        // A 32-bit instruction cut by the page end is left out.
        assert_eq!(form_run(0x100, 0x100, &[0x01, 0x30, 0x40, 0xf2], 1, MAX_INSTRS, 0).instrs.len(), 1);
    }

    #[test]
    fn it_blocks_are_taken_whole_or_not_at_all() {
        // cmp r0, #0; ite eq; moveq r1, #1; movne r1, #2; bx lr
        let code = [0x00, 0x28, 0x0c, 0xbf, 0x01, 0x21, 0x02, 0x21, 0x70, 0x47];
        let run = form_run(0x100, 0x100, &code, 1, MAX_INSTRS, 0);
        assert_eq!(run.instrs.len(), 5);
        assert_eq!(run.instrs.iter().map(|i| i.it).collect::<Vec<_>>(), [0, 0, 0x0c, 0x18, 0]);
        // The length limit does not cut it: an IT block may take the run past it.
        assert_eq!(form_run(0x100, 0x100, &code, 1, 2, 0).instrs.len(), 4);
        // The stop address inside it drops the block whole.
        assert_eq!(form_run(0x100, 0x100, &code, 0x106, MAX_INSTRS, 0).instrs.len(), 1);
        // An unknown instruction inside it (wfi) too.
        let code = [0x00, 0x28, 0x0c, 0xbf, 0x01, 0x21, 0x30, 0xbf];
        assert_eq!(form_run(0x100, 0x100, &code, 1, MAX_INSTRS, 0).instrs.len(), 1);
    }

    #[test]
    fn regions_follow_direct_branches_within_the_page() {
        // 0x100 cmp r0, #0; 0x102 beq 0x108; 0x104 adds r1, #1; 0x106 b 0x10a;
        // 0x108 subs r1, #1; 0x10a bx lr
        let code = [0x00, 0x28, 0x01, 0xd0, 0x01, 0x31, 0x00, 0xe0, 0x01, 0x39, 0x70, 0x47];
        let runs = form_region(0x100, 0x100, &code, 1, MAX_INSTRS, Some(&|_| true), 0);
        assert_eq!(runs.iter().map(|r| r.start).collect::<Vec<_>>(), [0x100, 0x108, 0x104, 0x10a]);
        assert_eq!(lens(&runs), [2, 2, 2, 1]);
        // Not following: the first run alone; a run never starts at the stop address.
        assert_eq!(lens(&form_region(0x100, 0x100, &code, 1, MAX_INSTRS, None, 0)), [2]);
        let runs = form_region(0x100, 0x100, &code, 0x10a, MAX_INSTRS, Some(&|_| true), 0);
        assert_eq!(runs.iter().map(|r| r.start).collect::<Vec<_>>(), [0x100, 0x108, 0x104]);
        // Only where the program has been: here never at 0x108 (the beq never taken).
        let runs = form_region(0x100, 0x100, &code, 1, MAX_INSTRS, Some(&|a| a != 0x108), 0);
        assert_eq!(runs.iter().map(|r| r.start).collect::<Vec<_>>(), [0x100, 0x104, 0x10a]);
    }

    #[test]
    fn a_compiled_loop_counts_like_the_interpreter() {
        // movs r1, #0 is outside; the block: adds r0, r0, #1; cmp r0, #10; bne start
        // 0x1c40 adds r0, r0, #1; 0x280a cmp r0, #10; 0xd1fc bne .-4
        let code = [0x40, 0x1c, 0x0a, 0x28, 0xfc, 0xd1];
        let Some(block) = compile(0x100, 0x100, &code, 1, MAX_INSTRS, Some(&|_| true), 0, false) else {
            return; // no compiler on this host
        };
        assert_eq!(block.max_cycles, 1 + 1 + 3);
        let mut cpu = CpuState { thumb: true, ..CpuState::default() };
        let mut ram = vec![0u8; 0x1000];
        let map = [0u8; 4];
        let mut regions = [JitRegion::NONE; WINDOWS];
        regions[0] = JitRegion::new(ram.as_mut_ptr(), map.as_ptr(), 0, 0x1000);
        let mut io = JitIo { cpu: &mut cpu, room: 1000, cycles: 0, instret: 0, unaligned_trap: 0, regions };
        // SAFETY: io points to live data: 0x1000 bytes of RAM and a 4-page map.
        let exit = unsafe { block.call(&mut io) };
        assert_eq!(exit, EXIT_NEXT);
        assert_eq!(cpu.r[0], 10);
        assert_eq!(cpu.r[15], 0x106);
        // Nine taken passes (5 cycles) and a last one that falls through (3 cycles).
        assert_eq!((io.cycles, io.instret), (9 * 5 + 3, 30));
        assert!(cpu.z && cpu.c && !cpu.n && !cpu.v);
    }
}
