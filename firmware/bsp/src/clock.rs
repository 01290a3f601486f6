//! Uptime clock and sleep, tickless: time from the FPGA I/O block's µs counter, alarms from
//! SysTick (ARMv7-M ARM B3.3) clocked by the board's 1 MHz reference clock (SYST_CSR.CLKSOURCE
//! = 0; QEMU's mps2 `refclk` and twinbed's engine both run it at 1 MHz, SYST_CALIB.TENMS =
//! 10,000).
//!
//! # Why tickless
//! A periodic tick wakes the core a hundred times a second, and each wake-up costs run current
//! and leaves deep sleep. Here SysTick interrupts only when something is due: [`sleep_until`]
//! programs it to fire at the deadline (at most [`MAX_TICKS`] µs ahead, 16.7 s: the counter is
//! 24 bits), and otherwise it runs with its longest period, so an idle core is woken at most
//! every 16.7 s. The reference clock and the FPGA counter keep running in deep sleep on this
//! board (the board file says so: they stand for the low-power timer a battery device keeps
//! time and wakes on), so [`Depth::Deep`] sleeps wake on time too.
//!
//! # Time base and alarm
//! Time comes from the FPGA I/O block's COUNTER (AN385 §3.9), which counts prescaler wraps:
//! with PRESCALE = 24 the prescaler wraps every 25 cycles of its 25 MHz clock, so COUNTER
//! counts µs. It is 32 bits (it wraps every 71.6 minutes); [`uptime_us`] extends it to 64 bits
//! each time it is read, and the SysTick interrupt reads it at least every 16.7 s.
//!
//! SysTick is only the alarm: [`sleep_until`] restarts it (RVR = the ticks left, CVR written)
//! so that it fires at the deadline, and after waking sets RVR back to the longest period. Its
//! interrupt does nothing but count (and read the time base). A late or early alarm only makes
//! the sleep loop look at the time again; the time itself never depends on the alarm.
//!
//! **The QEMU kick.** QEMU 7.2 under `-icount shift=0,sleep=off` wakes a core halted in WFI
//! not when a timer raises its interrupt but at the next timer deadline after that one (seen:
//! an alarm 100 ms ahead woke the core after 200 ms, when the SysTick reloaded and ran out
//! again). So each alarm also starts the CMSDK timer0, interrupt disabled, to run out
//! [`KICK_US`] µs after it: on QEMU that deadline wakes the core, which then takes the pending
//! SysTick; on twinbed's engine (and on silicon) the SysTick wakes it at once and timer0 is
//! stopped again. Either way the wake-up lands in the same millisecond. (A first
//! version counted time in SysTick's own periods: on QEMU it woke a whole 16.7 s period late
//! after some sleeps, so the time base moved to a counter nothing reprograms.)

use core::cell::Cell;
use core::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use cortex_m::interrupt::{self, CriticalSection, Mutex};
use cortex_m::peripheral::{SCB, SYST};
use cortex_m_rt::exception;

/// SysTick reference clock, ticks per second.
pub const REF_HZ: u32 = 1_000_000;
/// Longest SysTick period in ticks (the counter is 24 bits).
pub const MAX_TICKS: u32 = 1 << 24;
/// Shortest alarm, µs: far more than the instructions between arming it and the WFI.
pub const MIN_ALARM_US: u32 = 20;

/// SYST_CSR: ENABLE, TICKINT, CLKSOURCE = 0 (reference clock).
const CSR_RUN_ON_REFCLK: u32 = 0b011;
/// SCR.SLEEPDEEP (B3.2.7).
const SCR_SLEEPDEEP: u32 = 1 << 2;

/// NVIC interrupt set-enable, clear-enable and clear-pending registers (B3.4.4-B3.4.7).
const NVIC_ISER: usize = 0xE000_E100;
const NVIC_ICER: usize = 0xE000_E180;
const NVIC_ICPR: usize = 0xE000_E280;

/// The time base, extended to 64 bits.
#[derive(Clone, Copy)]
struct Extended {
    /// COUNTER when last read.
    last: u32,
    /// µs since [`start`] at that read.
    us: u64,
}

/// FPGAIO registers: COUNTER, PRESCALE.
const FPGAIO_COUNTER: usize = crate::map::FPGAIO + 0x18;
const FPGAIO_PRESCALE: usize = crate::map::FPGAIO + 0x1C;
/// CMSDK APB timer0 (DDI 0479 §4.4): CTRL (bit 0 enable; interrupt left disabled), VALUE,
/// RELOAD. The QEMU kick (module docs).
const TIMER0_CTRL: usize = crate::map::TIMER0;
const TIMER0_VALUE: usize = crate::map::TIMER0 + 0x4;
const TIMER0_RELOAD: usize = crate::map::TIMER0 + 0x8;
const TIMER_ENABLE: u32 = 1;
/// How long after the alarm timer0 runs out, µs.
const KICK_US: u32 = 10;

/// Prescaler reload for one COUNTER increment per µs at 25 MHz.
const PRESCALE_1MHZ: u32 = crate::SYSCLK_HZ / REF_HZ - 1;

fn counter() -> u32 {
    // SAFETY: FPGAIO COUNTER, a read-only-in-effect up-counter of this board.
    unsafe { core::ptr::read_volatile(FPGAIO_COUNTER as *const u32) }
}

static CLOCK: Mutex<Cell<Extended>> = Mutex::new(Cell::new(Extended { last: 0, us: 0 }));
/// The clock owns SysTick (set by [`start`], cleared by [`release`]).
static MANAGED: AtomicBool = AtomicBool::new(false);
/// The interrupt a [`sleep_until`] waits on, or [`NO_IRQ`].
static WAKE_IRQ: AtomicU32 = AtomicU32::new(NO_IRQ);
const NO_IRQ: u32 = u32::MAX;
/// SysTick exceptions taken since boot.
static INTERRUPTS: AtomicU32 = AtomicU32::new(0);
/// Sleeps entered since boot, and how many of them were deep.
static SLEEPS: AtomicU32 = AtomicU32::new(0);
static DEEP_SLEEPS: AtomicU32 = AtomicU32::new(0);

/// How deep [`sleep_until`] sleeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Depth {
    /// WFI: clocks and peripherals keep running (a UART can receive).
    Sleep,
    /// WFI with SCR.SLEEPDEEP: only the reference clock (and what the board keeps in deep
    /// sleep) runs; a few µA instead of a few mA on the MCUs this board stands for.
    Deep,
}

/// Starts the clock: the FPGAIO COUNTER as µs time base (uptime 0 now), SysTick as the alarm
/// on the reference clock with its interrupt.
pub fn start(syst: SYST) {
    // The SYST handle proves ownership; the registers are driven through their addresses below.
    drop(syst);
    interrupt::free(|cs| {
        MANAGED.store(true, Ordering::Relaxed);
        // SAFETY: FPGAIO PRESCALE and the SysTick registers, owned by this clock from now on.
        unsafe {
            core::ptr::write_volatile(FPGAIO_PRESCALE as *mut u32, PRESCALE_1MHZ);
            CLOCK.borrow(cs).set(Extended { last: counter(), us: 0 });
            (*SYST::PTR).csr.write(0);
            (*SYST::PTR).rvr.write(MAX_TICKS - 1);
            (*SYST::PTR).cvr.write(0);
            (*SYST::PTR).csr.write(CSR_RUN_ON_REFCLK);
        }
    });
}

/// Hands SysTick over (e.g. to a test of it): the handler only counts its interrupts from now
/// on ([`interrupts`]) and the uptime stops advancing.
pub fn release() {
    MANAGED.store(false, Ordering::Relaxed);
}

/// SysTick exceptions taken since boot.
pub fn interrupts() -> u32 {
    INTERRUPTS.load(Ordering::Relaxed)
}

/// Sleeps entered since boot (WFI executed by [`sleep_until`]) and how many were deep.
pub fn sleeps() -> (u32, u32) {
    (SLEEPS.load(Ordering::Relaxed), DEEP_SLEEPS.load(Ordering::Relaxed))
}

/// Microseconds since [`start`].
pub fn uptime_us() -> u64 {
    interrupt::free(now_us)
}

/// Milliseconds since [`start`]. Wraps after 49.7 days.
pub fn uptime_ms() -> u32 {
    (uptime_us() / 1000) as u32
}

/// True once `now_ms` has reached `deadline_ms` (wrapping-aware).
pub fn reached(now_ms: u32, deadline_ms: u32) -> bool {
    (deadline_ms.wrapping_sub(now_ms) as i32) <= 0
}

/// Sleeps until [`uptime_ms`] reaches `deadline_ms` (wrapping-aware), or `ready` says to stop.
///
/// `ready` is called before each WFI: it must clear what would wake the core for nothing (e.g.
/// a UART's receive interrupt status) and return true when the caller has work (e.g. a
/// received byte waits). With `wake_irq`, that NVIC interrupt is enabled while the core sleeps
/// (its pending bit cleared first) and ends the sleep: the program's `DefaultHandler` passes
/// it to [`on_wake_interrupt`], which disables it again; the caller then looks at its device.
///
/// Interrupts stay enabled around the WFI, so an interrupt between the last check and the WFI
/// is taken before it, and the WFI sleeps to the next wake-up. (NOT FINISHED: the usual idiom,
/// WFI with PRIMASK set, which wakes on an interrupt PRIMASK holds back, B1.5.19, closes that
/// race. It seemed not to work on QEMU 7.2, but the late wake-ups were QEMU's, fixed by the
/// kick (module docs); with the kick it works on both engines. Adopting it changes the battery
/// figures and their snapshot, so it waits for its own change.) The alarm cannot do that: it is armed
/// at least [`MIN_ALARM_US`] ahead, a few instructions before the WFI. A byte from the modem in
/// that window waits for the next wake-up (at most the deadline; the modem client polls every
/// 10 ms while it waits for an answer).
pub fn sleep_until(deadline_ms: u32, depth: Depth, wake_irq: Option<u32>, mut ready: impl FnMut() -> bool) {
    loop {
        let now = uptime_us();
        let now_ms = (now / 1000) as u32;
        if reached(now_ms, deadline_ms) {
            return;
        }
        if let Some(irq) = wake_irq {
            nvic(NVIC_ICPR, irq);
        }
        if ready() {
            return;
        }
        let wait_us = u64::from(deadline_ms.wrapping_sub(now_ms)) * 1000 - now % 1000;
        let ticks = wait_us.clamp(u64::from(MIN_ALARM_US), u64::from(MAX_TICKS)) as u32;
        interrupt::free(|_| arm(ticks));
        if let Some(irq) = wake_irq {
            WAKE_IRQ.store(irq, Ordering::Relaxed);
            nvic(NVIC_ISER, irq);
        }
        SLEEPS.fetch_add(1, Ordering::Relaxed);
        if depth == Depth::Deep {
            DEEP_SLEEPS.fetch_add(1, Ordering::Relaxed);
            set_sleepdeep(true);
        }
        cortex_m::asm::wfi();
        if depth == Depth::Deep {
            set_sleepdeep(false);
        }
        interrupt::free(|_| disarm());
        if let Some(irq) = wake_irq {
            nvic(NVIC_ICER, irq);
            WAKE_IRQ.store(NO_IRQ, Ordering::Relaxed);
        }
    }
}

/// For the program's `DefaultHandler`: if `irq` is the interrupt a [`sleep_until`] waits on,
/// disables it (its work is the sleeper's) and returns true; false for any other interrupt.
pub fn on_wake_interrupt(irq: u32) -> bool {
    if irq != WAKE_IRQ.load(Ordering::Relaxed) {
        return false;
    }
    nvic(NVIC_ICER, irq);
    true
}

/// The uptime now, in µs (with interrupts masked).
fn now_us(cs: &CriticalSection) -> u64 {
    let mut c = CLOCK.borrow(cs).get();
    let now = counter();
    c.us += u64::from(now.wrapping_sub(c.last));
    c.last = now;
    CLOCK.borrow(cs).set(c);
    c.us
}

/// Sets the alarm `ticks` ticks (µs) from now (interrupts masked). Writing CVR clears it; the
/// counter loads RVR at the next tick and the exception pends when it reaches 0. A pending
/// alarm from before is withdrawn.
fn arm(ticks: u32) {
    // SAFETY: SysTick registers, owned by this clock.
    unsafe {
        (*SYST::PTR).rvr.write(ticks - 1);
        (*SYST::PTR).cvr.write(0);
        // The QEMU kick (module docs): timer0 runs out KICK_US after the alarm.
        let cycles = (ticks + KICK_US) * (crate::SYSCLK_HZ / REF_HZ);
        core::ptr::write_volatile(TIMER0_CTRL as *mut u32, 0);
        core::ptr::write_volatile(TIMER0_RELOAD as *mut u32, cycles);
        core::ptr::write_volatile(TIMER0_VALUE as *mut u32, cycles);
        core::ptr::write_volatile(TIMER0_CTRL as *mut u32, TIMER_ENABLE);
    }
    SCB::clear_pendst();
}

/// After waking: the next SysTick reload is the longest period, so an idle core is not woken
/// again by the alarm just used (the count in progress finishes first).
fn disarm() {
    // SAFETY: as in `arm`; only the reload value changes, and timer0 stops.
    unsafe {
        (*SYST::PTR).rvr.write(MAX_TICKS - 1);
        core::ptr::write_volatile(TIMER0_CTRL as *mut u32, 0);
    }
}

fn set_sleepdeep(on: bool) {
    // SAFETY: read-modify-write of SCR with interrupts masked; only SLEEPDEEP changes.
    unsafe {
        let scb = &*SCB::PTR;
        scb.scr.modify(|v| if on { v | SCR_SLEEPDEEP } else { v & !SCR_SLEEPDEEP });
    }
}

fn nvic(reg: usize, irq: u32) {
    // SAFETY: NVIC set/clear registers are write-1 bit masks; other interrupts are unaffected.
    unsafe { core::ptr::write_volatile((reg + 4 * (irq as usize / 32)) as *mut u32, 1 << (irq % 32)) }
}

#[exception]
fn SysTick() {
    INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    if MANAGED.load(Ordering::Relaxed) {
        // Keeps the 32-bit time base's extension current (it wraps every 71.6 minutes).
        interrupt::free(|cs| {
            now_us(cs);
        });
    }
}
