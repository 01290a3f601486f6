//! Shared helpers of the self-checking conformance programs (the bins of this crate).
//!
//! Every program prints a banner, then one line per check (`ok <name>` or
//! `FAIL <name>: expected X got Y`), then `<program>: N checks, M failed`, and exits through
//! semihosting with status 0 when nothing failed, 1 otherwise.
//!
//! The output is compared byte for byte between QEMU and twinbed's own engine, so checks print
//! only deterministic values: never cycle counts, timer values or stack addresses. Checks whose
//! name starts with `deviation:` test a point where QEMU departs from the ARMv7-M Architecture
//! Reference Manual (or the Cortex-M3 as the AN385 builds it); their expected value follows the
//! manual and they are left out of the byte-identical comparison. A failing `deviation:` check
//! prints its `FAIL` line but is not counted in `M failed` and does not change the exit status,
//! so the summary line is the same on an emulator that has the deviation and one that has not.
#![no_std]

use core::fmt;
use core::ptr::{read_volatile, write_volatile};
use cortex_m_semihosting::debug;
use twinbed_bsp::println;

/// Tag that starts the name of a check where QEMU departs from the Architecture Reference Manual.
pub const DEVIATION: &str = "deviation:";

/// Counts and reports the checks of one program.
#[derive(Debug)]
pub struct Checker {
    program: &'static str,
    checks: u32,
    failed: u32,
}

impl Checker {
    /// Enables the UART0 transmitter (and nothing else: no SysTick, so no background
    /// interrupts), prints the banner line `selftest <program>: <what>` and starts counting.
    pub fn start(program: &'static str, what: &str) -> Self {
        twinbed_bsp::uart::Uart::console().enable_tx();
        println!("selftest {program}: {what}");
        Self { program, checks: 0, failed: 0 }
    }

    /// Records one check of a 32-bit value; failures print both values in hex.
    pub fn check(&mut self, name: &str, expected: u32, got: u32) {
        self.check_with(name, expected == got, Hex(expected), Hex(got));
    }

    /// Like [`check`](Self::check), but a passing line also shows the value: `ok <name> = 0x...`.
    pub fn check_show(&mut self, name: &str, expected: u32, got: u32) {
        self.checks += 1;
        if expected == got {
            println!("ok {name} = {:?}", Hex(got));
        } else {
            self.failed += u32::from(!name.starts_with(DEVIATION));
            println!("FAIL {name}: expected {:?} got {:?}", Hex(expected), Hex(got));
        }
    }

    /// Records one check of a 64-bit value; failures print both values in hex.
    pub fn check64(&mut self, name: &str, expected: u64, got: u64) {
        self.check_with(name, expected == got, Hex64(expected), Hex64(got));
    }

    /// Records one check of any comparable value; failures print both with `Debug`.
    pub fn check_eq<T: PartialEq + fmt::Debug + ?Sized>(&mut self, name: &str, expected: &T, got: &T) {
        self.check_with(name, expected == got, expected, got);
    }

    /// Records one yes/no check.
    pub fn check_true(&mut self, name: &str, got: bool) {
        self.check_with(name, got, true, got);
    }

    fn check_with(&mut self, name: &str, pass: bool, expected: impl fmt::Debug, got: impl fmt::Debug) {
        self.checks += 1;
        if pass {
            println!("ok {name}");
        } else {
            self.failed += u32::from(!name.starts_with(DEVIATION));
            println!("FAIL {name}: expected {expected:?} got {got:?}");
        }
    }

    /// Prints the summary line and exits through semihosting (0: all passed, 1: some failed).
    pub fn finish(self) -> ! {
        println!("{}: {} checks, {} failed", self.program, self.checks, self.failed);
        debug::exit(if self.failed == 0 { debug::EXIT_SUCCESS } else { debug::EXIT_FAILURE });
        // Semihosting exit does not return on an emulator; on a board without a debugger, stop.
        loop {
            cortex_m::asm::wfi();
        }
    }
}

/// A 32-bit value printed as `0x` and 8 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex(pub u32);

impl fmt::Debug for Hex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// A 64-bit value printed as `0x` and 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Hex64(pub u64);

impl fmt::Debug for Hex64 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#018x}", self.0)
    }
}

/// Reads a 32-bit register.
///
/// # Safety
/// `addr` must be a readable, aligned device register or memory word.
pub unsafe fn rd(addr: usize) -> u32 {
    // SAFETY: the caller guarantees `addr` is readable.
    unsafe { read_volatile(addr as *const u32) }
}

/// Writes a 32-bit register.
///
/// # Safety
/// `addr` must be a writable, aligned device register or memory word whose change the caller
/// accounts for.
pub unsafe fn wr(addr: usize, value: u32) {
    // SAFETY: the caller guarantees `addr` is writable.
    unsafe { write_volatile(addr as *mut u32, value) }
}

/// System control space registers used by the programs (ARMv7-M ARM B3.2.2, B3.4.3).
pub mod scs {
    /// Interrupt Control and State Register.
    pub const ICSR: usize = 0xE000_ED04;
    /// ICSR.PENDSVSET: write 1 to pend PendSV.
    pub const ICSR_PENDSVSET: u32 = 1 << 28;
    /// Vector Table Offset Register.
    pub const VTOR: usize = 0xE000_ED08;
    /// Configuration and Control Register.
    pub const CCR: usize = 0xE000_ED14;
    /// CCR.UNALIGN_TRP.
    pub const CCR_UNALIGN_TRP: u32 = 1 << 3;
    /// CCR.DIV_0_TRP.
    pub const CCR_DIV_0_TRP: u32 = 1 << 4;
    /// System Handler Priority Register 2 (SVCall in bits 31:24).
    pub const SHPR2: usize = 0xE000_ED1C;
    /// System Handler Priority Register 3 (PendSV in 23:16, SysTick in 31:24).
    pub const SHPR3: usize = 0xE000_ED20;
    /// System Handler Control and State Register.
    pub const SHCSR: usize = 0xE000_ED24;
    /// SHCSR.MEMFAULTENA.
    pub const SHCSR_MEMFAULTENA: u32 = 1 << 16;
    /// SHCSR.BUSFAULTENA.
    pub const SHCSR_BUSFAULTENA: u32 = 1 << 17;
    /// SHCSR.USGFAULTENA.
    pub const SHCSR_USGFAULTENA: u32 = 1 << 18;
    /// Configurable Fault Status Register (MMFSR | BFSR << 8 | UFSR << 16), write 1 to clear.
    pub const CFSR: usize = 0xE000_ED28;
    /// HardFault Status Register, write 1 to clear.
    pub const HFSR: usize = 0xE000_ED2C;
    /// HFSR.FORCED.
    pub const HFSR_FORCED: u32 = 1 << 30;
    /// MemManage Fault Address Register.
    pub const MMFAR: usize = 0xE000_ED34;
    /// BusFault Address Register.
    pub const BFAR: usize = 0xE000_ED38;
    /// SysTick Control and Status Register.
    pub const SYST_CSR: usize = 0xE000_E010;
    /// SysTick Reload Value Register.
    pub const SYST_RVR: usize = 0xE000_E014;
    /// SysTick Current Value Register.
    pub const SYST_CVR: usize = 0xE000_E018;
    /// NVIC Interrupt Set-Enable Register 0 (IRQ 0..31).
    pub const NVIC_ISER0: usize = 0xE000_E100;
    /// NVIC Interrupt Clear-Enable Register 0.
    pub const NVIC_ICER0: usize = 0xE000_E180;
    /// NVIC Interrupt Set-Pending Register 0.
    pub const NVIC_ISPR0: usize = 0xE000_E200;
    /// NVIC Interrupt Clear-Pending Register 0.
    pub const NVIC_ICPR0: usize = 0xE000_E280;
    /// NVIC Interrupt Active Bit Register 0.
    pub const NVIC_IABR0: usize = 0xE000_E300;
    /// NVIC Interrupt Priority Registers, one byte per IRQ.
    pub const NVIC_IPR: usize = 0xE000_E400;
}

/// Sets the priority byte of external interrupt `irq` (0..31).
pub fn nvic_set_priority(irq: u32, prio: u8) {
    // SAFETY: IPR is byte-accessible (ARMv7-M ARM B3.4.9); changing a priority is memory safe.
    unsafe { write_volatile((scs::NVIC_IPR + irq as usize) as *mut u8, prio) }
}

/// Enables external interrupt `irq` (0..31) in the NVIC.
pub fn nvic_enable(irq: u32) {
    // SAFETY: ISER is write-1-to-set; the handlers of the programs are memory safe.
    unsafe { wr(scs::NVIC_ISER0, 1 << irq) }
}

/// Disables external interrupt `irq` (0..31) in the NVIC.
pub fn nvic_disable(irq: u32) {
    // SAFETY: ICER is write-1-to-clear.
    unsafe { wr(scs::NVIC_ICER0, 1 << irq) }
    barrier();
}

/// Pends external interrupt `irq` (0..31) through NVIC_ISPR, then waits for the write to take
/// effect (DSB + ISB), so an enabled, unmasked interrupt has been taken when this returns.
pub fn nvic_pend(irq: u32) {
    // SAFETY: ISPR is write-1-to-set.
    unsafe { wr(scs::NVIC_ISPR0, 1 << irq) }
    barrier();
}

/// Clears the pending bit of external interrupt `irq` (0..31).
pub fn nvic_unpend(irq: u32) {
    // SAFETY: ICPR is write-1-to-clear.
    unsafe { wr(scs::NVIC_ICPR0, 1 << irq) }
    barrier();
}

/// Whether external interrupt `irq` (0..31) is pending.
pub fn nvic_is_pending(irq: u32) -> bool {
    // SAFETY: reading ISPR has no side effect.
    unsafe { rd(scs::NVIC_ISPR0) & (1 << irq) != 0 }
}

/// DSB then ISB: a system-register write has taken effect, and pending exceptions it unmasked
/// have been taken, before the next instruction (ARMv7-M ARM A3.7.3).
pub fn barrier() {
    cortex_m::asm::dsb();
    cortex_m::asm::isb();
}

/// Reads the APSR flags N Z C V Q (bits 31..27) with MRS.
#[inline(always)]
pub fn apsr() -> u32 {
    let v: u32;
    // SAFETY: MRS APSR only reads flags.
    unsafe { core::arch::asm!("mrs {}, apsr", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v & 0xF800_0000
}

/// A small event log that exception handlers append to and the program then checks.
#[derive(Debug)]
pub struct Log {
    events: [core::sync::atomic::AtomicU8; 16],
    len: core::sync::atomic::AtomicUsize,
}

impl Log {
    /// An empty log.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        #[allow(clippy::declare_interior_mutable_const)]
        const Z: core::sync::atomic::AtomicU8 = core::sync::atomic::AtomicU8::new(0);
        Self { events: [Z; 16], len: core::sync::atomic::AtomicUsize::new(0) }
    }

    /// Appends an event (dropped when the log is full, which then fails the check).
    pub fn push(&self, event: u8) {
        use core::sync::atomic::Ordering::SeqCst;
        let i = self.len.load(SeqCst);
        if i < self.events.len() {
            self.events[i].store(event, SeqCst);
            self.len.store(i + 1, SeqCst);
        }
    }

    /// Checks the events logged since the last check against `expected`, then empties the log.
    pub fn check(&self, t: &mut Checker, name: &str, expected: &[u8]) {
        use core::sync::atomic::Ordering::SeqCst;
        let mut got = [0u8; 16];
        let n = self.len.load(SeqCst);
        for (g, e) in got.iter_mut().zip(&self.events).take(n) {
            *g = e.load(SeqCst);
        }
        t.check_eq(name, expected, &got[..n]);
        self.len.store(0, SeqCst);
    }
}
