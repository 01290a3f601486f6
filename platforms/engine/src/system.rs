//! The System Control Space of an ARMv7-M core (ARMv7-M ARM chapter B3): NVIC, SysTick and the
//! System Control Block, plus the exception priority rules (B1.5.4) that decide what runs.
//!
//! Modelled: 32 external interrupts (QEMU's mps2-an385 NVIC has 32), 3 priority bits (the
//! AN385's Cortex-M3, CMSIS `__NVIC_PRIO_BITS = 3`: priority bytes read back as `value & 0xE0`;
//! recorded deviation: QEMU 7.2 keeps all 8 bits, so the conformance check of it is tagged
//! `deviation`), PRIGROUP, the fault
//! status registers, SHCSR enables, VTOR, AIRCR.SYSRESETREQ / VECTCLRACTIVE, SCR, CCR
//! (STKALIGN resets to 1, UNALIGN_TRP, DIV_0_TRP), SysTick on the core clock or the 1 MHz
//! reference clock (QEMU mps2: `refclk` 1 MHz).
//! Not modelled: the MPU (MPU_TYPE reads 0: no regions), the debug registers (DHCSR, DEMCR:
//! RAZ/WI), ITM/DWT/FPB (RAZ/WI at the bus level), ACTLR bits, the software trigger from
//! unprivileged code (USERSETMPEND), sleep-on-exit.

use crate::cpu::Size;
use serde::{Deserialize, Serialize};

/// Exception numbers (B1.5.2).
pub mod exc {
    /// Reset.
    pub const RESET: u32 = 1;
    /// Non-maskable interrupt.
    pub const NMI: u32 = 2;
    /// HardFault.
    pub const HARDFAULT: u32 = 3;
    /// MemManage fault.
    pub const MEMMANAGE: u32 = 4;
    /// BusFault.
    pub const BUSFAULT: u32 = 5;
    /// UsageFault.
    pub const USAGEFAULT: u32 = 6;
    /// Supervisor call.
    pub const SVCALL: u32 = 11;
    /// Debug monitor.
    pub const DEBUGMON: u32 = 12;
    /// PendSV.
    pub const PENDSV: u32 = 14;
    /// SysTick.
    pub const SYSTICK: u32 = 15;
    /// First external interrupt.
    pub const IRQ0: u32 = 16;
}

/// Implemented priority bits (the top 3 of each byte).
pub const PRIORITY_MASK: u8 = 0xe0;

/// Number of external interrupts.
pub const NUM_IRQ: u32 = 32;
/// Number of exception numbers (16 system + external).
pub const NUM_EXC: usize = 16 + NUM_IRQ as usize;

/// CFSR bits (B3.2.15).
pub mod cfsr {
    /// Instruction access violation (MemManage: fetch from an XN region).
    pub const IACCVIOL: u32 = 1 << 0;
    /// Instruction bus error.
    pub const IBUSERR: u32 = 1 << 8;
    /// Precise data bus error.
    pub const PRECISERR: u32 = 1 << 9;
    /// Fault on exception entry stacking.
    pub const STKERR: u32 = 1 << 12;
    /// Fault on exception return unstacking.
    pub const UNSTKERR: u32 = 1 << 11;
    /// BFAR holds a valid address.
    pub const BFARVALID: u32 = 1 << 15;
    /// Undefined instruction.
    pub const UNDEFINSTR: u32 = 1 << 16;
    /// Invalid state (EPSR.T = 0).
    pub const INVSTATE: u32 = 1 << 17;
    /// Invalid EXC_RETURN.
    pub const INVPC: u32 = 1 << 18;
    /// No coprocessor.
    pub const NOCP: u32 = 1 << 19;
    /// Unaligned access.
    pub const UNALIGNED: u32 = 1 << 24;
    /// Divide by zero.
    pub const DIVBYZERO: u32 = 1 << 25;
}

/// HFSR bits.
pub mod hfsr {
    /// Vector table read fault.
    pub const VECTTBL: u32 = 1 << 1;
    /// Escalated fault.
    pub const FORCED: u32 = 1 << 30;
    /// Debug event (BKPT with no debugger).
    pub const DEBUGEVT: u32 = 1 << 31;
}

/// SysTick state, computed lazily from the cycle counter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysTick {
    /// CSR: ENABLE, TICKINT, CLKSOURCE (COUNTFLAG kept apart).
    pub csr: u32,
    /// RVR (24 bits).
    pub reload: u32,
    /// Counter value at `base_cycle` (or the frozen value while disabled).
    base_value: u32,
    /// Cycle at which the counter had `base_value`, aligned to a tick.
    base_cycle: u64,
    countflag: bool,
    /// Cycle of the next counting-to-zero event while enabled.
    next_event: Option<u64>,
}

/// Cycles per SysTick tick of the reference clock (1 MHz at a 25 MHz core clock).
fn ref_divider(clock_hz: u32) -> u64 {
    u64::from((clock_hz / 1_000_000).max(1))
}

impl SysTick {
    fn divider(&self, clock_hz: u32) -> u64 {
        if self.csr & 4 != 0 {
            1
        } else {
            ref_divider(clock_hz)
        }
    }

    fn value_at(&self, now: u64, clock_hz: u32) -> u32 {
        if self.csr & 1 == 0 {
            return self.base_value;
        }
        let k = (now.saturating_sub(self.base_cycle)) / self.divider(clock_hz);
        let v0 = u64::from(self.base_value);
        if k <= v0 {
            return (v0 - k) as u32;
        }
        let period = u64::from(self.reload) + 1;
        if self.reload == 0 {
            return 0;
        }
        (u64::from(self.reload) - (k - v0 - 1) % period) as u32
    }

    fn schedule(&mut self, now: u64, clock_hz: u32) {
        self.next_event = None;
        if self.csr & 1 == 0 {
            return;
        }
        let div = self.divider(clock_hz);
        let v = u64::from(self.value_at(now, clock_hz));
        let ticks_done = (now - self.base_cycle) / div;
        // Events happen on the tick where the counter reaches 0 from 1.
        let next_tick = if v > 0 {
            ticks_done + v
        } else if self.reload == 0 {
            return;
        } else {
            ticks_done + 1 + u64::from(self.reload)
        };
        self.next_event = Some(self.base_cycle + next_tick * div);
    }

    /// Re-anchors the lazy counter at `now`.
    fn rebase(&mut self, now: u64, clock_hz: u32) {
        let v = self.value_at(now, clock_hz);
        let div = self.divider(clock_hz);
        self.base_cycle = self.base_cycle + (now.saturating_sub(self.base_cycle)) / div * div;
        if self.csr & 1 == 0 {
            self.base_cycle = now;
        }
        self.base_value = v;
    }

    /// Handles events up to `now`; returns whether the SysTick exception should pend.
    pub fn advance(&mut self, now: u64, clock_hz: u32) -> bool {
        let mut pend = false;
        while let Some(at) = self.next_event {
            if at > now {
                break;
            }
            self.countflag = true;
            pend |= self.csr & 2 != 0;
            // Re-anchor at the event (counter is 0 there) and schedule the next one.
            self.base_cycle = at;
            self.base_value = 0;
            self.schedule(at, clock_hz);
            if self.next_event.is_some_and(|n| n <= at) {
                break;
            }
        }
        pend
    }

    /// The next cycle at which [`SysTick::advance`] has something to do.
    pub fn deadline(&self) -> Option<u64> {
        self.next_event
    }
}

/// NVIC + SCB state.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct System {
    /// Priority byte per exception number (0..3 fixed negatives are handled apart).
    pub priority: Vec<u8>,
    /// Pending exceptions, by number.
    pub pending: Vec<bool>,
    /// Active exceptions, by number.
    pub active: Vec<bool>,
    /// External interrupt enables.
    pub irq_enabled: u32,
    /// VTOR.
    pub vtor: u32,
    /// AIRCR.PRIGROUP.
    pub prigroup: u32,
    /// SCR.
    pub scr: u32,
    /// CCR.
    pub ccr: u32,
    /// SHCSR enable bits (16..18).
    pub shcsr_enables: u32,
    /// CFSR.
    pub cfsr: u32,
    /// HFSR.
    pub hfsr: u32,
    /// MMFAR.
    pub mmfar: u32,
    /// BFAR.
    pub bfar: u32,
    /// SysTick.
    pub systick: SysTick,
    /// A system reset was requested (AIRCR.SYSRESETREQ).
    pub reset_requested: bool,
}

impl Default for System {
    fn default() -> Self {
        Self {
            priority: vec![0; NUM_EXC],
            pending: vec![false; NUM_EXC],
            active: vec![false; NUM_EXC],
            irq_enabled: 0,
            vtor: 0,
            prigroup: 0,
            scr: 0,
            ccr: 1 << 9, // STKALIGN
            shcsr_enables: 0,
            cfsr: 0,
            hfsr: 0,
            mmfar: 0,
            bfar: 0,
            systick: SysTick::default(),
            reset_requested: false,
        }
    }
}

/// What a write to the SCS asks of the CPU besides changing registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScsEffect {
    /// Nothing more.
    None,
    /// Exception state changed: re-evaluate what should run.
    Reschedule,
}

impl System {
    /// Priority of exception `n` as a signed value (B1.5.4): Reset -3, NMI -2, HardFault -1.
    pub fn exc_priority(&self, n: usize) -> i32 {
        match n as u32 {
            exc::RESET => -3,
            exc::NMI => -2,
            exc::HARDFAULT => -1,
            _ => i32::from(self.priority[n]),
        }
    }

    /// The group priority of a priority value under PRIGROUP.
    pub fn group(&self, prio: i32) -> i32 {
        if prio < 0 {
            return prio;
        }
        let mask = (0xffu32 << (self.prigroup + 1)) & 0xff;
        (prio as u32 & mask) as i32
    }

    /// Whether exception `n` may be pending/taken at all (enabled).
    fn enabled(&self, n: usize) -> bool {
        match n as u32 {
            exc::MEMMANAGE => self.shcsr_enables & (1 << 16) != 0,
            exc::BUSFAULT => self.shcsr_enables & (1 << 17) != 0,
            exc::USAGEFAULT => self.shcsr_enables & (1 << 18) != 0,
            x if x >= exc::IRQ0 => self.irq_enabled & (1 << (x - exc::IRQ0)) != 0,
            _ => true,
        }
    }

    /// Whether the fault `n` is enabled in SHCSR (others are always enabled).
    pub fn fault_enabled(&self, n: u32) -> bool {
        self.enabled(n as usize)
    }

    /// Execution priority from active exceptions alone (B1.5.4), 256 if none.
    pub fn active_priority(&self) -> i32 {
        let mut best = 256;
        for n in 1..NUM_EXC {
            if self.active[n] {
                best = best.min(self.group(self.exc_priority(n)));
            }
        }
        best
    }

    /// The pending, enabled exception with the highest priority (lowest value, then lowest
    /// number), with its priority.
    pub fn highest_pending(&self) -> Option<(usize, i32)> {
        let mut best: Option<(usize, i32)> = None;
        for n in 1..NUM_EXC {
            if self.pending[n] && self.enabled(n) {
                let p = self.exc_priority(n);
                if best.is_none_or(|(_, bp)| p < bp) {
                    best = Some((n, p));
                }
            }
        }
        best
    }

    /// Number of active exceptions.
    pub fn active_count(&self) -> usize {
        self.active.iter().filter(|a| **a).count()
    }

    /// Sets an external interrupt pending.
    pub fn pend_irq(&mut self, irq: u32) {
        if irq < NUM_IRQ {
            self.pending[(exc::IRQ0 + irq) as usize] = true;
        }
    }

    /// Reads a word of the SCS at `offset` from 0xE000_E000. `vectactive` and the SysTick
    /// arguments give the parts of state that live elsewhere.
    pub fn read(&mut self, offset: u32, size: Size, now: u64, clock_hz: u32, ipsr: u32) -> u32 {
        let word = self.read_word(offset & !3, now, clock_hz, ipsr);
        let shift = (offset & 3) * 8;
        match size {
            Size::Word => word,
            Size::Half => (word >> shift) & 0xffff,
            Size::Byte => (word >> shift) & 0xff,
        }
    }

    fn read_word(&mut self, offset: u32, now: u64, clock_hz: u32, ipsr: u32) -> u32 {
        let irq_word = |v: &dyn Fn(u32) -> bool, base: u32| -> u32 {
            let idx = (offset - base) / 4;
            if idx != 0 {
                return 0;
            }
            (0..32).filter(|&i| v(i)).fold(0, |acc, i| acc | (1 << i))
        };
        match offset {
            0x004 => NUM_IRQ / 32 - 1, // ICTR
            0x008 => 0,                // ACTLR
            0x010 => {
                let st = &mut self.systick;
                let flag = std::mem::take(&mut st.countflag);
                st.csr | if flag { 1 << 16 } else { 0 }
            }
            0x014 => self.systick.reload,
            0x018 => self.systick.value_at(now, clock_hz),
            // CALIB: NOREF = 0, SKEW = 1, TENMS = 10 ms of the reference clock (1 MHz).
            0x01c => (1 << 30) | 9999,
            0x100..=0x13c => irq_word(&|i| self.irq_enabled & (1 << i) != 0, 0x100),
            0x180..=0x1bc => irq_word(&|i| self.irq_enabled & (1 << i) != 0, 0x180),
            0x200..=0x23c => irq_word(&|i| self.pending[(16 + i) as usize], 0x200),
            0x280..=0x2bc => irq_word(&|i| self.pending[(16 + i) as usize], 0x280),
            0x300..=0x33c => irq_word(&|i| self.active[(16 + i) as usize], 0x300),
            0x400..=0x5ec => {
                let first = (offset - 0x400) as usize;
                (0..4).fold(0, |acc, k| {
                    let n = 16 + first + k;
                    let p = if n < NUM_EXC { u32::from(self.priority[n]) } else { 0 };
                    acc | (p << (8 * k))
                })
            }
            0xd00 => 0x410f_c231, // CPUID: Cortex-M3 r0p1, as QEMU reports
            0xd04 => self.icsr(ipsr),
            0xd08 => self.vtor,
            0xd0c => 0xfa05_0000 | (self.prigroup << 8),
            0xd10 => self.scr,
            0xd14 => self.ccr,
            0xd18..=0xd20 => {
                let first = (offset - 0xd18 + 4) as usize;
                (0..4).fold(0, |acc, k| acc | (u32::from(self.priority[first + k]) << (8 * k)))
            }
            0xd24 => self.shcsr(),
            0xd28 => self.cfsr,
            0xd2c => self.hfsr,
            0xd30 => 0,
            0xd34 => self.mmfar,
            0xd38 => self.bfar,
            0xd3c => 0,
            // ID_PFR0.. ID_ISAR4 as a Cortex-M3 reports them.
            0xd40 => 0x0000_0030,
            0xd44 => 0x0000_0200,
            0xd48 => 0x0010_0000,
            0xd4c => 0,
            0xd50 => 0x0000_0030,
            0xd54 => 0,
            0xd58 => 0,
            0xd5c => 0,
            0xd60 => 0x0114_1110,
            0xd64 => 0x0211_1000,
            0xd68 => 0x2111_2231,
            0xd6c => 0x0111_1110,
            0xd70 => 0x0131_0132,
            0xd88 => 0,
            0xd90 => 0, // MPU_TYPE: no MPU
            0xfe0..=0xffc => 0,
            _ => {
                tracing::debug!(target: "guest", "read of unmodelled SCS register 0xE000E{offset:03X}: RAZ");
                0
            }
        }
    }

    fn icsr(&self, ipsr: u32) -> u32 {
        let mut v = ipsr & 0x1ff;
        if let Some((n, _)) = self.highest_pending() {
            v |= (n as u32) << 12;
        }
        if self.pending.iter().skip(16).any(|p| *p) {
            v |= 1 << 22;
        }
        if self.active_count() <= 1 {
            v |= 1 << 11; // RETTOBASE
        }
        if self.pending[exc::PENDSV as usize] {
            v |= 1 << 28;
        }
        if self.pending[exc::SYSTICK as usize] {
            v |= 1 << 26;
        }
        if self.pending[exc::NMI as usize] {
            v |= 1 << 31;
        }
        v
    }

    fn shcsr(&self) -> u32 {
        let mut v = self.shcsr_enables;
        let bits = [
            (exc::MEMMANAGE, true, 0),
            (exc::BUSFAULT, true, 1),
            (exc::USAGEFAULT, true, 3),
            (exc::SVCALL, true, 7),
            (exc::DEBUGMON, true, 8),
            (exc::PENDSV, true, 10),
            (exc::SYSTICK, true, 11),
            (exc::USAGEFAULT, false, 12),
            (exc::MEMMANAGE, false, 13),
            (exc::BUSFAULT, false, 14),
            (exc::SVCALL, false, 15),
        ];
        for (n, active, bit) in bits {
            let set = if active { self.active[n as usize] } else { self.pending[n as usize] };
            if set {
                v |= 1 << bit;
            }
        }
        v
    }

    /// Writes the SCS. Sub-word writes to byte-addressable registers (priorities) write bytes;
    /// others are widened to their word.
    pub fn write(&mut self, offset: u32, size: Size, value: u32, now: u64, clock_hz: u32) -> ScsEffect {
        // Byte-accessible priority registers.
        if (0x400..0x400 + NUM_IRQ).contains(&offset) || (0xd18..0xd24).contains(&offset) {
            let n =
                if offset >= 0xd18 { (offset - 0xd18 + 4) as usize } else { (offset - 0x400 + 16) as usize };
            let count = size as usize;
            for k in 0..count {
                let idx = n + k;
                if (4..NUM_EXC).contains(&idx) {
                    self.priority[idx] = (value >> (8 * k)) as u8 & PRIORITY_MASK;
                }
            }
            return ScsEffect::Reschedule;
        }
        if size != Size::Word {
            tracing::warn!(target: "guest", "{size:?} write to SCS 0xE000E{offset:03X}: handled as a word write");
        }
        let set_bits =
            |v: u32, f: &mut dyn FnMut(u32)| (0..32).filter(|i| v & (1 << i) != 0).for_each(&mut *f);
        match offset {
            0x010 => {
                self.systick.rebase(now, clock_hz);
                self.systick.csr = value & 7;
                self.systick.base_cycle = now;
                self.systick.schedule(now, clock_hz);
                ScsEffect::Reschedule
            }
            0x014 => {
                self.systick.rebase(now, clock_hz);
                self.systick.reload = value & 0x00ff_ffff;
                self.systick.schedule(now, clock_hz);
                ScsEffect::Reschedule
            }
            0x018 => {
                // Any write clears the counter and COUNTFLAG.
                self.systick.base_value = 0;
                self.systick.base_cycle = now;
                self.systick.countflag = false;
                self.systick.schedule(now, clock_hz);
                ScsEffect::Reschedule
            }
            0x100 => {
                self.irq_enabled |= value;
                ScsEffect::Reschedule
            }
            0x180 => {
                self.irq_enabled &= !value;
                ScsEffect::Reschedule
            }
            0x200 => {
                set_bits(value, &mut |i| self.pending[16 + i as usize] = true);
                ScsEffect::Reschedule
            }
            0x280 => {
                set_bits(value, &mut |i| self.pending[16 + i as usize] = false);
                ScsEffect::Reschedule
            }
            0x104..=0x13c | 0x184..=0x1bc | 0x204..=0x23c | 0x284..=0x2bc => ScsEffect::None,
            0xf00 => {
                self.pend_irq(value & 0x1ff);
                ScsEffect::Reschedule
            }
            0xd04 => {
                if value & (1 << 31) != 0 {
                    self.pending[exc::NMI as usize] = true;
                }
                if value & (1 << 28) != 0 {
                    self.pending[exc::PENDSV as usize] = true;
                } else if value & (1 << 27) != 0 {
                    self.pending[exc::PENDSV as usize] = false;
                }
                if value & (1 << 26) != 0 {
                    self.pending[exc::SYSTICK as usize] = true;
                } else if value & (1 << 25) != 0 {
                    self.pending[exc::SYSTICK as usize] = false;
                }
                ScsEffect::Reschedule
            }
            0xd08 => {
                self.vtor = value & 0xffff_ff80;
                ScsEffect::None
            }
            0xd0c => {
                if value >> 16 != 0x05fa {
                    tracing::warn!(target: "guest", "AIRCR write without VECTKEY 0x05FA: ignored");
                    return ScsEffect::None;
                }
                self.prigroup = (value >> 8) & 7;
                if value & 4 != 0 {
                    self.reset_requested = true;
                }
                if value & 2 != 0 {
                    // VECTCLRACTIVE: UNPREDICTABLE outside debug halt; clear the active state.
                    self.active.iter_mut().for_each(|a| *a = false);
                }
                ScsEffect::Reschedule
            }
            0xd10 => {
                self.scr = value & 0x16;
                ScsEffect::None
            }
            0xd14 => {
                self.ccr = value & 0x31b;
                ScsEffect::None
            }
            0xd24 => {
                self.shcsr_enables = value & (7 << 16);
                // Active and pended bits are writable too (B3.2.13).
                let map = [
                    (0, exc::MEMMANAGE, true),
                    (1, exc::BUSFAULT, true),
                    (3, exc::USAGEFAULT, true),
                    (7, exc::SVCALL, true),
                    (8, exc::DEBUGMON, true),
                    (10, exc::PENDSV, true),
                    (11, exc::SYSTICK, true),
                    (12, exc::USAGEFAULT, false),
                    (13, exc::MEMMANAGE, false),
                    (14, exc::BUSFAULT, false),
                    (15, exc::SVCALL, false),
                ];
                for (bit, n, active) in map {
                    let v = value & (1 << bit) != 0;
                    if active {
                        self.active[n as usize] = v;
                    } else {
                        self.pending[n as usize] = v;
                    }
                }
                ScsEffect::Reschedule
            }
            0xd28 => {
                self.cfsr &= !value;
                ScsEffect::None
            }
            0xd2c => {
                self.hfsr &= !value;
                ScsEffect::None
            }
            0xd34 => {
                self.mmfar = value;
                ScsEffect::None
            }
            0xd38 => {
                self.bfar = value;
                ScsEffect::None
            }
            _ => {
                tracing::debug!(target: "guest", "write of 0x{value:x} to unmodelled SCS register 0xE000E{offset:03X}: ignored");
                ScsEffect::None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HZ: u32 = 25_000_000;

    #[test]
    fn systick_fires_every_reload_plus_one_cycles() {
        let mut s = System::default();
        s.write(0x014, Size::Word, 99, 0, HZ); // RVR = 99: period 100 cycles
        s.write(0x018, Size::Word, 0, 0, HZ); // clear CVR
        s.write(0x010, Size::Word, 0b111, 0, HZ); // enable, TICKINT, core clock
        assert_eq!(s.systick.deadline(), Some(100));
        assert!(!s.systick.advance(99, HZ));
        assert_eq!(s.read(0x018, Size::Word, 50, HZ, 0), 50);
        assert!(s.systick.advance(100, HZ));
        assert_eq!(s.systick.deadline(), Some(200));
        assert_eq!(s.read(0x018, Size::Word, 101, HZ, 0), 99);
        // COUNTFLAG reads once.
        assert_ne!(s.read(0x010, Size::Word, 101, HZ, 0) & (1 << 16), 0);
        assert_eq!(s.read(0x010, Size::Word, 101, HZ, 0) & (1 << 16), 0);
        // Several periods at once pend once and keep the schedule.
        assert!(s.systick.advance(1000, HZ));
        assert_eq!(s.systick.deadline(), Some(1100));
    }

    #[test]
    fn priorities_and_prigroup() {
        let mut s = System::default();
        s.write(0x400, Size::Byte, 0x80, 0, HZ); // IRQ0
        s.write(0x401, Size::Byte, 0x5f, 0, HZ); // IRQ1: low 5 bits not implemented -> 0x40
        s.write(0x100, Size::Word, 0b11, 0, HZ);
        s.write(0x200, Size::Word, 0b11, 0, HZ);
        assert_eq!(s.highest_pending(), Some((17, 0x40)));
        s.write(0xd0c, Size::Word, 0x05fa_0000 | (7 << 8), 0, HZ); // PRIGROUP 7: no preemption levels
        assert_eq!(s.group(0x40), 0);
        assert_eq!(s.read(0x400, Size::Word, 0, HZ, 0), 0x4080);
    }
}
