//! The run loop: blocks of decoded (or compiled) instructions between events, the scheduler
//! that services devices, SysTick, interrupt lines and sleep when `now` reaches the next
//! event, and the per-instruction bookkeeping around [`crate::cpu::execute`] (IT blocks, the
//! PC, exception returns).

use super::decode_cache::{PAGE, PAGE_ENTRIES};
use super::{Machine, Stop, SCR_SEVONPEND};
use crate::cpu::instr::Instr;
use crate::cpu::{execute, Exc};
use crate::periph::{Ctx, Device};
use crate::power;
use crate::system::{cfsr, exc};

impl Machine {
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
    pub(super) fn run_block(&mut self) -> Result<(), (Exc, u32)> {
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
            if self.cpu.it == 0 && execute::fast(self, &entry.0, false).is_some() {
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
            // compiler is on: then every branch, taken or not, goes back to `run`, so that the
            // block at where it leads counts as started (and runs compiled once it is hot;
            // regions take in only code the program has been to).
            let in_page = next.wrapping_sub(page_base);
            if in_page >= PAGE
                || self.now >= self.next_event
                || (jit_on
                    && (next != pc.wrapping_add(u32::from(size))
                        || matches!(entry.0, Instr::B { .. } | Instr::Cbz { .. })))
            {
                return Ok(());
            }
            room = self.next_event - self.now;
            idx = (in_page / 2) as usize;
            pc = next;
        }
    }

    /// Handles everything due at `now`: device time, SysTick, interrupt lines, pending
    /// exceptions, sleep. Sets `next_event` to the earliest thing that needs attention.
    pub(super) fn service(&mut self) -> Option<Stop> {
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

    pub(super) fn earliest_deadline(&self) -> Option<u64> {
        let dev = self.periphs.iter().filter_map(|p| p.model.next_deadline()).min();
        match (dev, self.sys.systick.deadline()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    pub(super) fn advance_devices(&mut self) {
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

    /// Executes one instruction.
    #[inline]
    pub(super) fn step(&mut self) -> Result<(), Exc> {
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
    pub(super) fn exec_decoded(&mut self, pc: u32, instr: &Instr, size: u8) -> Result<(), Exc> {
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
        match execute::exec(self, instr, it != 0) {
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

    /// Ends a sleep: the core runs again from `now`.
    pub(super) fn wake(&mut self) {
        self.sleeping = false;
        if let Some(p) = &mut self.power {
            p.set_cpu(self.now, power::cpu::RUN);
        }
    }
}
