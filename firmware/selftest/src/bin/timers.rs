//! CMSDK APB timer 0 (0x4000_0000, IRQ 8) and the APB dual timer (0x4000_2000, combined IRQ 10)
//! of the mps2-an385 (AN385 memory map; QEMU hw/arm/mps2.c wires the same IRQs), after the
//! Cortex-M System Design Kit TRM (DDI 0479) sections 4.4 and 4.5: reset values, ID registers,
//! a fixed number of interrupts (counted, never timed), INTSTATUS/INTCLEAR, RIS/MIS and one-shot.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering::SeqCst};
use cortex_m_rt::{entry, exception};
use panic_semihosting as _;
use twinbed_selftest::{
    nvic_disable, nvic_enable, nvic_is_pending, nvic_set_priority, nvic_unpend, rd, wr, Checker,
};

const TIMER0: usize = 0x4000_0000;
const TIMER0_IRQ: u32 = 8;
const DUAL: usize = 0x4000_2000;
const DUAL_IRQ: u32 = 10;

// APB timer registers (CMSDK TRM section 4.4): CTRL, VALUE, RELOAD, INTSTATUS/INTCLEAR.
const CTRL: usize = 0x00;
const VALUE: usize = 0x04;
const RELOAD: usize = 0x08;
const INTSTATUS: usize = 0x0C;
const CTRL_EN: u32 = 1 << 0;
const CTRL_IRQEN: u32 = 1 << 3;

// Dual timer, per half (timer 1 at +0x00, timer 2 at +0x20).
const LOAD: usize = 0x00;
const DVALUE: usize = 0x04;
const CONTROL: usize = 0x08;
const INTCLR: usize = 0x0C;
const RIS: usize = 0x10;
const MIS: usize = 0x14;
const BGLOAD: usize = 0x18;
const ONESHOT: u32 = 1 << 0;
const SIZE32: u32 = 1 << 1;
const INTEN: u32 = 1 << 5;
const PERIODIC: u32 = 1 << 6;
const ENABLE: u32 = 1 << 7;

static TIMER0_IRQS: AtomicU32 = AtomicU32::new(0);
static DUAL_IRQS: AtomicU32 = AtomicU32::new(0);

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    // SAFETY: write-1-to-clear / any-write-clears interrupt registers of the two timers.
    unsafe {
        match irqn {
            8 => {
                wr(TIMER0 + INTSTATUS, 1);
                TIMER0_IRQS.fetch_add(1, SeqCst);
            }
            10 => {
                wr(DUAL + INTCLR, 1);
                DUAL_IRQS.fetch_add(1, SeqCst);
            }
            _ => {}
        }
    }
}

fn reg(base: usize, off: usize) -> u32 {
    // SAFETY: timer registers; reads have no side effect.
    unsafe { rd(base + off) }
}

fn set(base: usize, off: usize, v: u32) {
    // SAFETY: timer registers of this test.
    unsafe { wr(base + off, v) }
}

/// The four CID bytes of a PrimeCell-style ID block, packed, and PID0..PID2.
fn ids(base: usize) -> (u32, u32) {
    let cid = (0..4).fold(0, |a, i| a | (reg(base, 0xFF0 + 4 * i) & 0xff) << (8 * i));
    let pid = (0..3).fold(0, |a, i| a | (reg(base, 0xFE0 + 4 * i) & 0xff) << (8 * i));
    (cid, pid)
}

#[entry]
fn main() -> ! {
    let mut t = Checker::start("timers", "CMSDK APB timer 0 and dual timer");
    apb_timer(&mut t);
    dual_timer(&mut t);
    t.finish()
}

fn apb_timer(t: &mut Checker) {
    t.check("timer0 reset CTRL", 0, reg(TIMER0, CTRL));
    t.check("timer0 reset RELOAD", 0, reg(TIMER0, RELOAD));
    t.check("timer0 reset VALUE", 0, reg(TIMER0, VALUE));
    t.check("timer0 reset INTSTATUS", 0, reg(TIMER0, INTSTATUS));
    t.check_eq("timer0 CID, PID0-2", &(0xb105_f00d, 0x1b_b822), &ids(TIMER0));

    set(TIMER0, RELOAD, 999);
    t.check("timer0 RELOAD readback", 999, reg(TIMER0, RELOAD));
    t.check("timer0 RELOAD write loads VALUE", 999, reg(TIMER0, VALUE));
    set(TIMER0, CTRL, CTRL_EN | CTRL_IRQEN);
    t.check("timer0 CTRL readback", 0x9, reg(TIMER0, CTRL));

    // INTSTATUS with the NVIC line disabled: set on the 1 -> 0 count, latched in NVIC pending.
    while reg(TIMER0, INTSTATUS) == 0 {}
    set(TIMER0, CTRL, 0);
    t.check_true("timer0 IRQ 8 pending in NVIC", nvic_is_pending(TIMER0_IRQ));
    set(TIMER0, INTSTATUS, 1);
    t.check("timer0 INTCLEAR clears INTSTATUS", 0, reg(TIMER0, INTSTATUS));
    t.check_true("NVIC pending stays latched after INTCLEAR", nvic_is_pending(TIMER0_IRQ));
    nvic_unpend(TIMER0_IRQ);
    t.check_true("ICPR clears it once the line is low", !nvic_is_pending(TIMER0_IRQ));

    // Count interrupts: the main loop stops the timer once 5 have been handled.
    nvic_set_priority(TIMER0_IRQ, 0x40);
    nvic_enable(TIMER0_IRQ);
    set(TIMER0, RELOAD, 1999);
    set(TIMER0, CTRL, CTRL_EN | CTRL_IRQEN);
    while TIMER0_IRQS.load(SeqCst) < 5 {
        cortex_m::asm::wfi();
    }
    set(TIMER0, CTRL, 0);
    nvic_disable(TIMER0_IRQ);
    t.check("timer0 interrupts counted", 5, TIMER0_IRQS.load(SeqCst));
    t.check("timer0 INTSTATUS cleared by handler", 0, reg(TIMER0, INTSTATUS));
    // With IRQEN clear, reaching zero does not raise the interrupt.
    set(TIMER0, RELOAD, 50);
    set(TIMER0, CTRL, CTRL_EN);
    for _ in 0..2000 {
        cortex_m::asm::nop();
    }
    set(TIMER0, CTRL, 0);
    t.check("timer0 IRQEN off: INTSTATUS stays 0", 0, reg(TIMER0, INTSTATUS));
}

fn dual_timer(t: &mut Checker) {
    let t1 = DUAL;
    let t2 = DUAL + 0x20;
    t.check("dual reset CONTROL (INTEN)", 0x20, reg(t1, CONTROL));
    t.check("dual reset VALUE", 0xffff_ffff, reg(t1, DVALUE));
    t.check("dual reset LOAD", 0, reg(t2, LOAD));
    t.check("dual reset RIS", 0, reg(t2, RIS));
    t.check_eq("dual CID, PID0-2", &(0xb105_f00d, 0x1b_b823), &ids(DUAL));

    // Timer 1: periodic, 32-bit, interrupts on; count 4 of them.
    nvic_set_priority(DUAL_IRQ, 0x40);
    nvic_enable(DUAL_IRQ);
    set(t1, LOAD, 1500);
    t.check("dual LOAD readback", 1500, reg(t1, LOAD));
    set(t1, CONTROL, ENABLE | PERIODIC | INTEN | SIZE32);
    t.check("dual CONTROL readback", 0xe2, reg(t1, CONTROL));
    while DUAL_IRQS.load(SeqCst) < 4 {
        cortex_m::asm::wfi();
    }
    set(t1, CONTROL, 0);
    nvic_disable(DUAL_IRQ);
    t.check("dual timer1 interrupts counted", 4, DUAL_IRQS.load(SeqCst));
    set(t1, BGLOAD, 77);
    t.check("dual BGLOAD reads through LOAD", 77, reg(t1, LOAD));

    // Timer 2: one-shot, 16-bit; RIS and MIS, then INTEN off masks MIS only; INTCLR clears.
    set(t2, LOAD, 300);
    set(t2, CONTROL, ENABLE | ONESHOT | INTEN);
    while reg(t2, RIS) == 0 {}
    let after = (reg(t2, RIS), reg(t2, MIS));
    for _ in 0..1000 {
        cortex_m::asm::nop();
    }
    t.check_eq("dual one-shot fired: RIS, MIS", &(1, 1), &after);
    t.check("dual one-shot stops at 0", 0, reg(t2, DVALUE));
    // Disabled as well as unmasked: re-enabling an expired one-shot would restart it at 0.
    set(t2, CONTROL, ONESHOT);
    t.check_eq("dual INTEN off: RIS 1, MIS 0", &(1, 0), &(reg(t2, RIS), reg(t2, MIS)));
    t.check_true("dual IRQ 10 was pending", nvic_is_pending(DUAL_IRQ));
    set(t2, INTCLR, 0);
    t.check_eq("dual INTCLR (any value)", &(0, 0), &(reg(t2, RIS), reg(t2, MIS)));
    set(t2, CONTROL, 0);
    nvic_unpend(DUAL_IRQ);
}
