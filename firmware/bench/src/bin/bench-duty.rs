//! Duty-cycled benchmark: CMSDK APB timer 0 (0x4000_0000, IRQ 8) wakes the core once per second
//! of virtual time (RELOAD 25_000_000 - 1 at 25 MHz; CMSDK TRM DDI 0479 §4.4: the counter runs
//! RELOAD..0, then reloads, so a period is RELOAD + 1 cycles); each wake runs about 25,000
//! instructions of integer work ([`work`]) and the core sleeps in WFI in between.
//!
//! Runs for `TWINBED_BENCH_HOURS` hours of virtual time (build time, default 24: 86,400 wakes,
//! about 2.2 G instructions), printing a line every simulated hour with the wake count and a
//! running checksum, then exits 0. Everything printed is a count or a checksum, never a timer
//! value, so every engine prints the same bytes. SysTick stays off: the timer is the only
//! interrupt.
#![no_std]
#![no_main]

use core::ptr::write_volatile;
use core::sync::atomic::{AtomicU32, Ordering::Relaxed};
use cortex_m_rt::{entry, exception};
use panic_semihosting as _;
use twinbed_bench::{exit, parse_u32};
use twinbed_bsp::println;

/// Hours of virtual time to run (`TWINBED_BENCH_HOURS` at build time, default 24).
const HOURS: u32 = match option_env!("TWINBED_BENCH_HOURS") {
    Some(s) => parse_u32(s, "TWINBED_BENCH_HOURS must be a decimal number"),
    None => 24,
};

/// Wakes per simulated hour (one per second).
const WAKES_PER_HOUR: u32 = 3600;

/// Rounds of the work loop per wake; about 6 instructions each (see [`work`]).
const ROUNDS: u32 = 4096;

const TIMER0: usize = 0x4000_0000;
const TIMER0_IRQ: u32 = 8;
// CMSDK APB timer registers: CTRL (bit 0 enable, bit 3 interrupt enable), RELOAD, INTSTATUS
// (write 1 to clear).
const CTRL: usize = 0x00;
const RELOAD: usize = 0x08;
const INTSTATUS: usize = 0x0C;
const CTRL_EN: u32 = 1 << 0;
const CTRL_IRQEN: u32 = 1 << 3;
/// NVIC interrupt set-enable register 0 (ARMv7-M ARM B3.4.4), write 1 to set.
const NVIC_ISER0: usize = 0xE000_E100;

static WAKES: AtomicU32 = AtomicU32::new(0);
static CHECKSUM: AtomicU32 = AtomicU32::new(0);

fn write(addr: usize, value: u32) {
    // SAFETY: timer 0 and NVIC registers of this board; writing them does not touch memory.
    unsafe { write_volatile(addr as *mut u32, value) }
}

/// One wake's worth of integer work: a multiply-rotate-xor checksum over [`ROUNDS`] rounds,
/// seeded with the wake number so no round can be folded away at compile time.
#[inline(never)]
fn work(seed: u32) -> u32 {
    let mut acc = seed ^ 0x9e37_79b9;
    let mut i = 0;
    while i < ROUNDS {
        acc = (acc ^ i).wrapping_mul(0x0100_0193).rotate_left(7);
        i += 1;
    }
    acc
}

#[entry]
fn main() -> ! {
    twinbed_bsp::uart::Uart::console().enable_tx();
    println!(
        "bench-duty: a wake every second of virtual time, {} rounds of work each, for {} h",
        ROUNDS, HOURS
    );
    write(TIMER0 + RELOAD, twinbed_bsp::SYSCLK_HZ - 1);
    write(NVIC_ISER0, 1 << TIMER0_IRQ);
    write(TIMER0 + CTRL, CTRL_EN | CTRL_IRQEN);
    loop {
        cortex_m::asm::wfi();
    }
}

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    if irqn != TIMER0_IRQ as i16 {
        return;
    }
    write(TIMER0 + INTSTATUS, 1);
    let wake = WAKES.load(Relaxed) + 1;
    WAKES.store(wake, Relaxed);
    let sum = CHECKSUM.load(Relaxed).wrapping_add(work(wake));
    CHECKSUM.store(sum, Relaxed);
    if wake.is_multiple_of(WAKES_PER_HOUR) {
        let hour = wake / WAKES_PER_HOUR;
        println!("hour {}: {} wakes, checksum 0x{:08x}", hour, wake, sum);
        if hour >= HOURS {
            write(TIMER0 + CTRL, 0);
            println!("bench-duty: done");
            exit(true);
        }
    }
}
