//! Uptime clock on SysTick (ARMv7-M ARM B3.3), ticking at [`TICK_HZ`] from the core clock.
//!
//! SysTick's counter is 24 bits, so one tick cannot span a second at 25 MHz; 100 Hz keeps the
//! interrupt load low (the CPU sleeps in WFI between ticks) while giving 10 ms resolution.

use core::sync::atomic::{AtomicU32, Ordering};
use cortex_m::peripheral::{syst::SystClkSource, SYST};
use cortex_m_rt::exception;

/// SysTick interrupts per second.
pub const TICK_HZ: u32 = 100;
/// Milliseconds per tick.
pub const TICK_MS: u32 = 1000 / TICK_HZ;

static TICKS: AtomicU32 = AtomicU32::new(0);

/// Starts SysTick on the core clock with its interrupt enabled.
pub fn start(mut syst: SYST) {
    syst.set_clock_source(SystClkSource::Core);
    syst.set_reload(crate::SYSCLK_HZ / TICK_HZ - 1);
    syst.clear_current();
    syst.enable_interrupt();
    syst.enable_counter();
}

/// Milliseconds since [`start`], in whole ticks. Wraps after 49.7 days.
pub fn uptime_ms() -> u32 {
    TICKS.load(Ordering::Relaxed).wrapping_mul(TICK_MS)
}

/// Sleeps (WFI) until [`uptime_ms`] reaches `deadline_ms` (wrapping-aware).
pub fn sleep_until(deadline_ms: u32) {
    while (deadline_ms.wrapping_sub(uptime_ms()) as i32) > 0 {
        cortex_m::asm::wfi();
    }
}

#[exception]
fn SysTick() {
    TICKS.fetch_add(1, Ordering::Relaxed);
}
