//! The duty-cycled driver: CMSDK APB timer 0 (0x4000_0000, IRQ 8) wakes the core once per
//! second of virtual time (RELOAD 25_000_000 - 1 at 25 MHz; CMSDK TRM DDI 0479 §4.4: the counter
//! runs RELOAD..0, then reloads, so a period is RELOAD + 1 cycles); each wake runs one slice of
//! the workload in the handler, and the core sleeps in WFI in between (as
//! `firmware/bench/src/bin/bench-duty.rs` does). After [`SLICES`](crate::SLICES) wakes the
//! handler stops the timer, prints the result and exits.
//!
//! The workload lives on `main`'s stack (which never returns); the handler reaches it through
//! a type-erased pointer and step function published before the timer starts.

use crate::{finish, Workload, SLICES};
use core::ptr::write_volatile;
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize, Ordering::Relaxed};

const TIMER0: usize = twinbed_bsp::map::TIMER0;
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
static STATE: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
static WAKE_FN: AtomicUsize = AtomicUsize::new(0);

fn write(addr: usize, value: u32) {
    // SAFETY: timer 0 and NVIC registers of this board; writing them does not touch memory.
    unsafe { write_volatile(addr as *mut u32, value) }
}

/// One wake for a workload of type `W` at `state`: a slice, and after the last one the
/// result and the exit.
///
/// # Safety
/// `state` must point to the live `W` that [`run`] published.
unsafe fn wake<W: Workload>(state: *mut ()) {
    // SAFETY: the caller's contract; only the handler touches the workload once the timer runs.
    let w = unsafe { &mut *state.cast::<W>() };
    w.step();
    let n = WAKES.load(Relaxed) + 1;
    WAKES.store(n, Relaxed);
    if n >= SLICES {
        write(TIMER0 + CTRL, 0);
        finish(w);
    }
}

/// Publishes `workload` to the handler, starts the timer and sleeps; never returns (the last
/// wake exits).
pub fn run<W: Workload>(mut workload: W) -> ! {
    STATE.store((&raw mut workload).cast(), Relaxed);
    WAKE_FN.store(wake::<W> as unsafe fn(*mut ()) as usize, Relaxed);
    write(TIMER0 + RELOAD, twinbed_bsp::SYSCLK_HZ - 1);
    write(NVIC_ISER0, 1 << TIMER0_IRQ);
    write(TIMER0 + CTRL, CTRL_EN | CTRL_IRQEN);
    loop {
        cortex_m::asm::wfi();
    }
}

/// The interrupt handler's body (see [`corpus_main!`](crate::corpus_main)): on timer 0,
/// clears its interrupt and runs one slice; other interrupts are ignored.
pub fn on_interrupt(irqn: i16) {
    if irqn != TIMER0_IRQ as i16 {
        return;
    }
    write(TIMER0 + INTSTATUS, 1);
    let (state, f) = (STATE.load(Relaxed), WAKE_FN.load(Relaxed));
    if state.is_null() || f == 0 {
        return;
    }
    // SAFETY: `f` was stored by `run` from `wake::<W>` for the `W` at `state`, which lives on
    // `main`'s stack for the rest of the program.
    unsafe {
        let f: unsafe fn(*mut ()) = core::mem::transmute::<usize, unsafe fn(*mut ())>(f);
        f(state)
    }
}
