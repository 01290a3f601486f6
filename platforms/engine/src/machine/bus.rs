//! The memory map as the core sees it: RAM regions (the fast path), the System Control
//! Space (privileged only), the PPB's other blocks (RAZ/WI), the bit-band aliases and the
//! peripherals; and the core's [`Host`] interface, which the machine implements here.

use super::{Machine, SCR_SLEEPDEEP};
use crate::cpu::{CpuState, Exc, Host, Size};
use crate::periph::{self, Ctx, Device};
use crate::power;
use crate::system::{exc, ScsEffect};

impl Machine {
    /// Loads a value of `size` from `addr` (little-endian). Faults: BusFault (precise).
    #[inline]
    pub(super) fn load(&mut self, addr: u32, size: Size) -> Result<u32, Exc> {
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
    pub(super) fn store(&mut self, addr: u32, value: u32, size: Size) -> Result<(), Exc> {
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

    #[cold]
    pub(super) fn load_slow(&mut self, addr: u32, size: Size) -> Result<u32, Exc> {
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
                if !self.cpu.privileged() {
                    // B3.2: the SCS is privileged-only; an unprivileged access is a BusFault.
                    return Err(Exc::bus_error(addr));
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
    pub(super) fn device_access<T>(
        &mut self,
        addr: u32,
        size: Size,
        access: impl FnOnce(&mut periph::Model, u32, &mut Ctx<'_>) -> T,
    ) -> Result<T, Exc> {
        let Some(i) = self.periphs.iter().position(|p| addr.wrapping_sub(p.base) < p.size) else {
            tracing::debug!(target: "guest", "{size:?} access to unmapped 0x{addr:08x}: BusFault");
            return Err(Exc::bus_error(addr));
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
    pub(super) fn store_slow(&mut self, addr: u32, value: u32, size: Size) -> Result<(), Exc> {
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
                if !self.cpu.privileged() && !stir_allowed {
                    return Err(Exc::bus_error(addr));
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
}

/// The core's view of the machine: its registers, the bus, the System Control Block and the
/// run loop. Every method is inlined into the executor.
impl Host for Machine {
    #[inline(always)]
    fn cpu(&self) -> &CpuState {
        &self.cpu
    }

    #[inline(always)]
    fn cpu_mut(&mut self) -> &mut CpuState {
        &mut self.cpu
    }

    #[inline(always)]
    fn load(&mut self, addr: u32, size: Size) -> Result<u32, Exc> {
        Machine::load(self, addr, size)
    }

    #[inline(always)]
    fn store(&mut self, addr: u32, value: u32, size: Size) -> Result<(), Exc> {
        Machine::store(self, addr, value, size)
    }

    #[inline(always)]
    fn next_pc(&self) -> u32 {
        self.next_pc
    }

    #[inline(always)]
    fn set_next_pc(&mut self, pc: u32) {
        self.next_pc = pc;
    }

    #[inline(always)]
    fn exception_return(&mut self, exc_return: u32) {
        // Taken by `exec_decoded` once the instruction completes.
        self.pending_return = Some(exc_return);
    }

    #[inline(always)]
    fn ccr(&self) -> u32 {
        self.sys.ccr
    }

    fn hardfault_or_nmi_active(&self) -> bool {
        self.sys.active[exc::HARDFAULT as usize] || self.sys.active[exc::NMI as usize]
    }

    /// Enters sleep (WFI/WFE) until an exception or event wakes the core. For energy
    /// accounting the sleep starts at the cycle the WFI/WFE starts (its own cycle counts as
    /// sleep), deep if SCR.SLEEPDEEP is set then.
    fn sleep(&mut self, wfe: bool) {
        self.sleeping = true;
        self.sleep_wfe = wfe;
        self.next_event = 0;
        if let Some(p) = &mut self.power {
            let deep = self.sys.scr & SCR_SLEEPDEEP != 0;
            p.set_cpu(self.now, if deep { power::cpu::DEEP_SLEEP } else { power::cpu::SLEEP });
        }
    }

    /// Forces the run loop to re-evaluate interrupts and deadlines before the next instruction.
    #[inline(always)]
    fn reschedule(&mut self) {
        self.next_event = 0;
    }

    fn semihosting(&mut self, op: u32, arg: u32) -> Result<u32, Exc> {
        Machine::semihosting(self, op, arg)
    }
}

/// Bit-band alias to (byte address, bit) (B3.1.3 / Cortex-M3 TRM 3.7).
fn bitband(addr: u32) -> (u32, u32) {
    let region = addr & 0xf000_0000;
    let off = addr & 0x01ff_ffff;
    let byte = region | (off >> 5);
    (byte, (off >> 2) & 7)
}
