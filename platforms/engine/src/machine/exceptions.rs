//! Exceptions (ARMv7-M ARM B1.5): priorities, entry (B1.5.6), return (B1.5.8), escalation to
//! HardFault and lockup. See the module header of [`crate::machine`] for the deviations.

use super::{Machine, Stop};
use crate::cpu::{Exc, Size};
use crate::system::{cfsr, exc, hfsr};

impl Machine {
    /// Execution priority (B1.5.4).
    pub(super) fn execution_priority(&self) -> i32 {
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
    pub(super) fn wake_pending(&self) -> bool {
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
    pub(super) fn take_pending_exception(&mut self) -> Result<bool, Stop> {
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
    pub(super) fn enter_exception(&mut self, n: u32, return_addr: u32) -> Result<(), Stop> {
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
    pub(super) fn exception_return(&mut self, exc_return: u32) -> Result<(), Exc> {
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
    pub(super) fn raise(&mut self, e: Exc, pc: u32) -> Option<Stop> {
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
}
