//! Exclusive access (ARMv7-M ARM A3.4): LDREX/STREX pairs succeed, and fail after CLREX or after
//! an exception between them (exception entry and return clear the local monitor, A3.4.4);
//! byte and halfword forms; then `core::sync::atomic` operations on AtomicU32/U16/U8, which
//! compile to LDREX/STREX loops on thumbv7m.
#![no_std]
#![no_main]

use core::arch::asm;
use core::sync::atomic::{AtomicU16, AtomicU32, AtomicU8, Ordering::SeqCst};
use cortex_m_rt::{entry, exception};
use panic_semihosting as _;
use twinbed_selftest::{nvic_enable, nvic_set_priority, scs, Checker, Hex};

/// IRQ used to put an exception between LDREX and STREX (no device drives it on mps2-an385).
const IRQ: u32 = 24;
static IRQS: AtomicU32 = AtomicU32::new(0);

#[exception]
unsafe fn DefaultHandler(_irqn: i16) {
    IRQS.fetch_add(1, SeqCst);
}

#[entry]
fn main() -> ! {
    let mut t = Checker::start("atomics", "LDREX/STREX and core::sync::atomic");
    nvic_set_priority(IRQ, 0x80);
    nvic_enable(IRQ);
    exclusive(&mut t);
    core_atomics(&mut t);
    t.finish()
}

/// Runs `$between` between `ldrex` and `strex` of `$cell`+1; returns (STREX status, new value).
macro_rules! ldrex_strex {
    ($ld:literal, $st:literal, $cell:expr, $between:literal) => {{
        let status: u32;
        // SAFETY: exclusive accesses to `$cell`, plus (for the IRQ case) a write of NVIC_ISPR.
        unsafe {
            asm!(
                concat!($ld, " {v}, [{p}]"),
                "adds {v}, {v}, #1",
                $between,
                concat!($st, " {s}, {v}, [{p}]"),
                "@ {ispr} {bit}",
                p = in(reg) $cell.as_ptr(), v = out(reg) _, s = out(reg) status,
                ispr = in(reg) scs::NVIC_ISPR0, bit = in(reg) 1u32 << IRQ,
            );
        }
        (status, $cell.load(SeqCst))
    }};
}

fn exclusive(t: &mut Checker) {
    let w = AtomicU32::new(41);
    t.check_eq("ldrex/strex succeeds", &(0, 42), &ldrex_strex!("ldrex", "strex", w, ""));
    t.check_eq("clrex between: strex fails", &(1, 42), &ldrex_strex!("ldrex", "strex", w, "clrex"));
    t.check_eq("exception between: strex fails", &(1, 42, 1), &{
        let (s, v) = ldrex_strex!("ldrex", "strex", w, "str {bit}, [{ispr}]\ndsb\nisb");
        (s, v, IRQS.load(SeqCst))
    });
    t.check_eq("ldrex/strex succeeds again", &(0, 43), &ldrex_strex!("ldrex", "strex", w, ""));
    let status: u32;
    // SAFETY: a STREX with the monitor in Open Access state writes nothing.
    unsafe {
        asm!("clrex", "strex {s}, {v}, [{p}]", p = in(reg) w.as_ptr(), v = in(reg) 7u32, s = out(reg) status)
    };
    t.check_eq("strex without ldrex fails", &(1, 43), &(status, w.load(SeqCst)));
    let b = AtomicU8::new(0xff);
    t.check_eq("ldrexb/strexb wraps", &(0, 0), &ldrex_strex!("ldrexb", "strexb", b, ""));
    let h = AtomicU16::new(0x7fff);
    t.check_eq("ldrexh/strexh", &(0, 0x8000), &ldrex_strex!("ldrexh", "strexh", h, ""));
    t.check_eq("ldrexh, clrex, strexh fails", &(1, 0x8000), &ldrex_strex!("ldrexh", "strexh", h, "clrex"));
}

fn core_atomics(t: &mut Checker) {
    let a = AtomicU32::new(0xffff_fffe);
    t.check("AtomicU32 fetch_add returns old", 0xffff_fffe, a.fetch_add(3, SeqCst));
    t.check("AtomicU32 fetch_add wraps", 1, a.load(SeqCst));
    t.check_eq(
        "AtomicU32 compare_exchange ok",
        &Ok(Hex(1)),
        &a.compare_exchange(1, 0xdead_beef, SeqCst, SeqCst).map(Hex).map_err(Hex),
    );
    t.check_eq(
        "AtomicU32 compare_exchange fails",
        &Err(Hex(0xdead_beef)),
        &a.compare_exchange(1, 5, SeqCst, SeqCst).map(Hex).map_err(Hex),
    );
    t.check("AtomicU32 swap", 0xdead_beef, a.swap(9, SeqCst));
    t.check("AtomicU32 fetch_sub", 9, a.fetch_sub(10, SeqCst));
    t.check("AtomicU32 after fetch_sub wraps", 0xffff_ffff, a.load(SeqCst));
    t.check("AtomicU32 fetch_max", 0xffff_ffff, a.fetch_max(3, SeqCst));
    t.check(
        "AtomicU32 fetch_update",
        0xffff_ffff,
        a.fetch_update(SeqCst, SeqCst, |v| Some(v >> 4)).unwrap_or(0),
    );
    t.check("AtomicU32 after fetch_update", 0x0fff_ffff, a.load(SeqCst));

    let b = AtomicU8::new(250);
    t.check("AtomicU8 fetch_add returns old", 250, u32::from(b.fetch_add(10, SeqCst)));
    t.check("AtomicU8 fetch_add wraps", 4, u32::from(b.load(SeqCst)));
    t.check_eq("AtomicU8 compare_exchange ok", &Ok(4u8), &b.compare_exchange(4, 0x80, SeqCst, SeqCst));
    t.check_eq("AtomicU8 compare_exchange fails", &Err(0x80u8), &b.compare_exchange(4, 1, SeqCst, SeqCst));
    t.check("AtomicU8 fetch_min (unsigned)", 0x80, u32::from(b.fetch_min(0x7f, SeqCst)));
    t.check("AtomicU8 after fetch_min", 0x7f, u32::from(b.load(SeqCst)));

    let h = AtomicU16::new(0xfff0);
    t.check("AtomicU16 fetch_add returns old", 0xfff0, u32::from(h.fetch_add(0x20, SeqCst)));
    t.check("AtomicU16 fetch_add wraps", 0x0010, u32::from(h.load(SeqCst)));
    t.check("AtomicU16 fetch_or", 0x0010, u32::from(h.fetch_or(0x8001, SeqCst)));
    t.check("AtomicU16 fetch_and", 0x8011, u32::from(h.fetch_and(0xff00, SeqCst)));
    t.check("AtomicU16 fetch_xor", 0x8000, u32::from(h.fetch_xor(0xffff, SeqCst)));
    t.check_eq(
        "AtomicU16 compare_exchange ok",
        &Ok(0x7fffu16),
        &h.compare_exchange(0x7fff, 1, SeqCst, SeqCst),
    );
    t.check_eq("AtomicU16 compare_exchange fails", &Err(1u16), &h.compare_exchange(2, 3, SeqCst, SeqCst));
    // Neighbouring bytes and halfwords are untouched by the narrow exclusive stores.
    let words = [AtomicU32::new(0x1122_3344)];
    // SAFETY: views the word's bytes as atomics of the same memory (aligned, exclusive to us).
    let bytes = unsafe { &*(words.as_ptr() as *const [AtomicU8; 4]) };
    bytes[1].fetch_add(1, SeqCst);
    // SAFETY: as above, for halfwords.
    let halves = unsafe { &*(words.as_ptr() as *const [AtomicU16; 2]) };
    halves[1].fetch_add(1, SeqCst);
    t.check("narrow atomics leave neighbours alone", 0x1123_3444, words[0].load(SeqCst));
}
