//! Running the block compiler's code ([`crate::jit`]): counting block starts, compiling hot
//! blocks, chaining compiled blocks while they fit before the next event.

use super::decode_cache::{Jump, Slot, JUMPS, PAGE, PAGE_ENTRIES};
use super::{Machine, Stop};
use crate::cpu::Exc;
use crate::jit::{self, Compiled, JitIo, JitRegion};
use std::sync::atomic::Ordering::Relaxed;

/// Longest compiled block, in instructions.
const MAX_BLOCK: usize = jit::MAX_INSTRS;

impl Machine {
    /// Runs the compiled block at `pc` if there is one (compiling it once it is hot) and it
    /// fits before the next event; `None` to let the interpreter run instead. The caller
    /// checked that `pc` is in a decode-cache page, Thumb state and no IT block.
    pub(super) fn try_jit(&mut self, pc: u32) -> Option<Result<(), (Exc, u32)>> {
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
                let compiled = self.compile_block(ri, pc, MAX_BLOCK, true, 0, false);
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
    pub(super) fn jit_slot(&mut self, ri: usize, page: usize, idx: usize) -> Slot {
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

    pub(super) fn set_jit_slot(&mut self, ri: usize, page: usize, idx: usize, slot: Slot) {
        if let Some(Some(slots)) = self.mem[ri].jit.get_mut(page) {
            slots[idx] = slot;
        }
        self.mem[ri].jumps.clear();
    }

    /// Compiles the region at `pc` (in memory region `ri`), or `None` if it cannot be
    /// compiled; `follow` false compiles one run of at most `max_instrs` instructions.
    pub(super) fn compile_block(
        &self,
        ri: usize,
        pc: u32,
        max_instrs: usize,
        follow: bool,
        it0: u8,
        optimise: bool,
    ) -> Option<&'static Compiled> {
        let r = &self.mem[ri];
        let off = (pc - r.base) as usize;
        let page = off / PAGE as usize;
        let start = page * PAGE as usize;
        let end = (start + PAGE as usize).min(r.data.len());
        let page_base = r.base + start as u32;
        // Where the program has been: block starts the interpreter counted (or compiled).
        let slots = r.jit.get(page).and_then(|s| s.as_deref());
        let visited = |a: u32| {
            let i = (a.wrapping_sub(page_base) / 2) as usize;
            slots.and_then(|s| s.get(i)).is_some_and(|s| !matches!(s, Slot::Cold(0)))
        };
        let visited: Option<&dyn Fn(u32) -> bool> = if follow { Some(&visited) } else { None };
        jit::compile(pc, page_base, &r.data[start..end], self.stop_at, max_instrs, visited, it0, optimise)
    }

    /// Runs a compiled block from the current state, then the compiled blocks that follow it
    /// for as long as they fit before the next event and do not reach the stop address; an
    /// instruction a block bails on is executed by the interpreter right away (so a block that
    /// bails on its first instruction still makes progress).
    pub(super) fn run_compiled(&mut self, mut block: &'static Compiled) -> Result<(), (Exc, u32)> {
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
        // CCR.UNALIGN_TRP (B3.2.8) changes only through an SCS store, which no block compiles.
        let unaligned_trap = if self.sys.ccr & (1 << 3) != 0 { u32::MAX } else { 0 };
        let mut io =
            JitIo { cpu: std::ptr::null_mut(), room: 0, cycles: 0, instret: 0, unaligned_trap, regions };
        loop {
            io.cpu = &mut self.cpu;
            io.room = self.next_event.saturating_sub(self.now);
            // SAFETY: `io` points at this machine's core and at every region's bytes and page
            // map, each covering its region whole (resized above), in the order of the layout
            // the block was compiled for (`compile_block`: the machine's regions never
            // change); nothing else touches them during the call, and between calls nothing
            // resizes them.
            let start = self.cpu.r[15];
            let exit = unsafe { block.call(&mut io) };
            // Two reads, not one 16-byte one: the block has just stored them separately, and a
            // wider load than the stores stalls store-to-load forwarding (measured: a third of
            // this loop's time when blocks are short).
            // SAFETY: plain reads of this function's own local.
            let (cycles, instret) =
                unsafe { (std::ptr::read_volatile(&io.cycles), std::ptr::read_volatile(&io.instret)) };
            self.now += cycles;
            self.instret += instret;
            if !block.optimised {
                // Not a read-modify-write: machines on other threads may lose an update.
                let spent = block.spent.load(Relaxed) + cycles;
                block.spent.store(spent, Relaxed);
                if spent >= jit::tier_up_cycles() {
                    self.tier_up(start, block);
                }
            }
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

    /// Compiles the region at `pc` again with the optimising tier and runs that from now on
    /// (if it compiles; if not, the first tier's block runs on and is retried later).
    #[cold]
    fn tier_up(&mut self, pc: u32, block: &'static Compiled) {
        block.spent.store(0, Relaxed);
        let Some(ri) = self.mem.iter().position(|r| (pc.wrapping_sub(r.base) as usize) < r.data.len()) else {
            return;
        };
        if let Some(better) = self.compile_block(ri, pc, MAX_BLOCK, true, 0, true) {
            let off = (pc - self.mem[ri].base) as usize;
            self.set_jit_slot(ri, off / PAGE as usize, (off % PAGE as usize) / 2, Slot::Hot(better));
        }
    }

    /// The compiled block at `pc`, if there is one: from the region's jump cache, else from
    /// the page's slots (and then into the jump cache).
    #[inline]
    pub(super) fn hot_block(&mut self, pc: u32) -> Option<&'static Compiled> {
        for r in &mut self.mem {
            let off = pc.wrapping_sub(r.base) as usize;
            if off < r.data.len() {
                let k = (pc as usize >> 1) % JUMPS;
                if let Some(j) = r.jumps.get(k) {
                    if j.pc == pc {
                        return j.block;
                    }
                }
                let slots = r.jit.get(off / PAGE as usize)?.as_ref()?;
                let Slot::Hot(b) = slots[(off % PAGE as usize) / 2] else { return None };
                if r.jumps.is_empty() {
                    r.jumps.resize(JUMPS, Jump::EMPTY);
                }
                r.jumps[k] = Jump { pc, block: Some(b) };
                return Some(b);
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
        let it0 = self.cpu.it;
        let block = ri
            .filter(|_| self.cpu.thumb && pc & 1 == 0)
            .and_then(|ri| self.compile_block(ri, pc, 1, false, it0, false));
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
}
