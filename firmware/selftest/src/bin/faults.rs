//! Faults (ARMv7-M ARM B1.5.14-B1.5.16, B3.2.15-B3.2.18): each fault is provoked, caught by a
//! handler that records which exception ran and the CFSR/HFSR/BFAR/MMFAR values, clears the
//! status bits, and resumes after the faulting instruction (stacked PC advanced by its size) or,
//! for faults on a branch target, at the stacked LR.
//!
//! Checks print the fault status registers in hex: `ok <what> = 0x...`.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU32, Ordering::SeqCst};
use cortex_m_rt::entry;
use panic_semihosting as _;
use twinbed_selftest::{barrier, rd, scs, wr, Checker};

/// An address QEMU's mps2-an385 maps to nothing (hw/arm/mps2.c covers 0x0000_0000..0x2400_0000
/// with RAM, bit-band aliases and "unimplemented device" regions, which read as zero, but leaves
/// 0x2400_0000..0x4000_0000 empty); on the AN385 it is reserved too.
const UNMAPPED: u32 = 0x3000_0000;

// All four fault vectors go to one Rust handler with the stacked frame and EXC_RETURN.
global_asm!(
    ".section .text.twinbed_faults, \"ax\", %progbits",
    ".global HardFault",
    ".type HardFault, %function",
    ".global MemoryManagement",
    ".type MemoryManagement, %function",
    ".global BusFault",
    ".type BusFault, %function",
    ".global UsageFault",
    ".type UsageFault, %function",
    ".thumb_func",
    "HardFault:",
    ".thumb_func",
    "MemoryManagement:",
    ".thumb_func",
    "BusFault:",
    ".thumb_func",
    "UsageFault:",
    "tst lr, #4",
    "ite eq",
    "mrseq r0, msp",
    "mrsne r0, psp",
    "mov r1, lr",
    "b twinbed_fault",
);

/// What the last fault handler saw: exception number, CFSR, HFSR, BFAR (when BFARVALID),
/// MMFAR (when MMARVALID), and how many faults were taken.
static VECT: AtomicU32 = AtomicU32::new(0);
static CFSR: AtomicU32 = AtomicU32::new(0);
static HFSR: AtomicU32 = AtomicU32::new(0);
static BFAR: AtomicU32 = AtomicU32::new(0);
static MMFAR: AtomicU32 = AtomicU32::new(0);
static COUNT: AtomicU32 = AtomicU32::new(0);
/// When set, the fault is on a branch target: resume at the stacked LR instead.
static RESUME_AT_LR: AtomicU32 = AtomicU32::new(0);

const CFSR_IACCVIOL: u32 = 1 << 0;
const CFSR_MMARVALID: u32 = 1 << 7;
const CFSR_PRECISERR: u32 = 1 << 9;
const CFSR_BFARVALID: u32 = 1 << 15;
const CFSR_UNDEFINSTR: u32 = 1 << 16;
const CFSR_INVSTATE: u32 = 1 << 17;
const CFSR_UNALIGNED: u32 = 1 << 24;
const CFSR_DIVBYZERO: u32 = 1 << 25;

/// The common fault handler.
#[no_mangle]
unsafe extern "C" fn twinbed_fault(frame: *mut u32, _exc_return: u32) {
    // SAFETY: SCS reads and write-1-to-clear writes; `frame` is the hardware-stacked frame.
    unsafe {
        let cfsr = rd(scs::CFSR);
        let hfsr = rd(scs::HFSR);
        VECT.store(rd(scs::ICSR) & 0x1FF, SeqCst);
        CFSR.store(cfsr, SeqCst);
        HFSR.store(hfsr, SeqCst);
        BFAR.store(if cfsr & CFSR_BFARVALID != 0 { rd(scs::BFAR) } else { 0 }, SeqCst);
        MMFAR.store(if cfsr & CFSR_MMARVALID != 0 { rd(scs::MMFAR) } else { 0 }, SeqCst);
        COUNT.fetch_add(1, SeqCst);
        wr(scs::CFSR, cfsr);
        wr(scs::HFSR, hfsr);
        let pc = frame.add(6);
        if RESUME_AT_LR.swap(0, SeqCst) != 0 {
            pc.write_volatile(frame.add(5).read_volatile() & !1);
            let xpsr = frame.add(7);
            xpsr.write_volatile(xpsr.read_volatile() | 1 << 24); // back to Thumb state
        } else {
            // A 32-bit Thumb instruction starts with 0b11101, 0b11110 or 0b11111 (A5.1).
            let first = (pc.read_volatile() as *const u16).read_volatile();
            let len = if first >> 11 >= 0b11101 { 4 } else { 2 };
            pc.write_volatile(pc.read_volatile() + len);
        }
    }
}

/// Sets or clears bits of a system control register.
fn modify(reg: usize, set: u32, clear: u32) {
    // SAFETY: the programs change only fault enables and trap bits through this.
    unsafe { wr(reg, rd(reg) & !clear | set) };
    barrier();
}

/// Runs `$body` (inline assembly that faults once), then checks exception number, CFSR, HFSR.
/// Returns what `$body` returns.
fn expect<R>(t: &mut Checker, what: &str, vect: u32, cfsr: u32, hfsr: u32, body: impl FnOnce() -> R) -> R {
    COUNT.store(0, SeqCst);
    VECT.store(0, SeqCst);
    CFSR.store(0, SeqCst);
    HFSR.store(0, SeqCst);
    let r = body();
    let mut name = Name::new(what);
    t.check(
        name.with(": one fault, exception number"),
        1 << 16 | vect,
        COUNT.load(SeqCst) << 16 | VECT.load(SeqCst),
    );
    t.check_show(name.with(": CFSR"), cfsr, CFSR.load(SeqCst));
    t.check_show(name.with(": HFSR"), hfsr, HFSR.load(SeqCst));
    r
}

/// Builds check names from a prefix and a suffix without allocation.
struct Name {
    buf: [u8; 96],
    len: usize,
}

impl Name {
    fn new(prefix: &str) -> Self {
        let mut buf = [0; 96];
        let len = prefix.len().min(64);
        buf[..len].copy_from_slice(&prefix.as_bytes()[..len]);
        Self { buf, len }
    }

    fn with(&mut self, suffix: &str) -> &str {
        let n = suffix.len().min(self.buf.len() - self.len);
        self.buf[self.len..self.len + n].copy_from_slice(&suffix.as_bytes()[..n]);
        core::str::from_utf8(&self.buf[..self.len + n]).unwrap_or("?")
    }
}

const HARD: u32 = 3;
const MEM: u32 = 4;
const BUS: u32 = 5;
const USAGE: u32 = 6;

#[entry]
fn main() -> ! {
    let mut t = Checker::start("faults", "UsageFault, BusFault, MemManage, HardFault escalation");
    // SAFETY: reads SHCSR.
    t.check("SHCSR fault enables reset 0", 0, unsafe { rd(scs::SHCSR) } & 0x7_0000);

    modify(scs::SHCSR, scs::SHCSR_USGFAULTENA, 0);
    // SAFETY (all the asm bodies below): each instruction faults, the handler skips it or
    // resumes at the return address, and nothing else is touched.
    expect(&mut t, "udf (16-bit), UsageFault on", USAGE, CFSR_UNDEFINSTR, 0, || unsafe { asm!("udf #0") });
    expect(&mut t, "udf.w (32-bit), UsageFault on", USAGE, CFSR_UNDEFINSTR, 0, || unsafe {
        asm!("udf.w #0")
    });
    modify(scs::SHCSR, 0, scs::SHCSR_USGFAULTENA);
    expect(&mut t, "udf, UsageFault off -> HardFault", HARD, CFSR_UNDEFINSTR, scs::HFSR_FORCED, || unsafe {
        asm!("udf #1")
    });

    modify(scs::SHCSR, scs::SHCSR_USGFAULTENA, 0);
    // The trap bits are set only around the faulting instruction: compiled Rust code (core::fmt
    // among it) may itself use unaligned accesses, which UNALIGN_TRP would turn into faults.
    let q = expect(&mut t, "sdiv by 0 with DIV_0_TRP", USAGE, CFSR_DIVBYZERO, 0, || unsafe {
        let q: u32;
        asm!(
            "str {trap}, [{ccr}]", "dsb", "isb",
            "sdiv {q}, {q}, {z}",
            "str {old}, [{ccr}]", "dsb", "isb",
            ccr = in(reg) scs::CCR, trap = in(reg) rd(scs::CCR) | scs::CCR_DIV_0_TRP, old = in(reg) rd(scs::CCR),
            q = inout(reg) 7u32 => q, z = in(reg) 0u32,
        );
        q
    });
    t.check("sdiv by 0 trapped: Rd unchanged", 7, q);
    expect(&mut t, "udiv by 0 with DIV_0_TRP", USAGE, CFSR_DIVBYZERO, 0, || unsafe {
        asm!(
            "str {trap}, [{ccr}]", "dsb", "isb",
            "udiv {q}, {q}, {z}",
            "str {old}, [{ccr}]", "dsb", "isb",
            ccr = in(reg) scs::CCR, trap = in(reg) rd(scs::CCR) | scs::CCR_DIV_0_TRP, old = in(reg) rd(scs::CCR),
            q = inout(reg) 7u32 => _, z = in(reg) 0u32,
        )
    });

    let words = [0x1111_1111u32, 0x2222_2222, 0x3333_3333, 0x4444_4444];
    let p = words.as_ptr() as u32;
    expect(&mut t, "ldrd unaligned", USAGE, CFSR_UNALIGNED, 0, || unsafe {
        asm!("ldrd {a}, {b}, [{p}]", p = in(reg) p + 2, a = out(reg) _, b = out(reg) _)
    });
    expect(&mut t, "ldm unaligned", USAGE, CFSR_UNALIGNED, 0, || unsafe {
        asm!("ldm {p}, {{r0, r1}}", p = in(reg) p + 1, out("r0") _, out("r1") _)
    });
    let mut buf = [0u32; 4];
    let b = buf.as_mut_ptr() as u32;
    expect(&mut t, "strd unaligned", USAGE, CFSR_UNALIGNED, 0, || unsafe {
        asm!("strd {a}, {a}, [{p}]", p = in(reg) b + 4 + 1, a = in(reg) 0xdead_beefu32)
    });
    t.check("strd unaligned wrote nothing", 0, buf.iter().fold(0, |a, w| a | w));
    expect(&mut t, "ldr unaligned with UNALIGN_TRP", USAGE, CFSR_UNALIGNED, 0, || unsafe {
        asm!(
            "str {trap}, [{ccr}]", "dsb", "isb",
            "ldr {a}, [{p}]",
            "str {old}, [{ccr}]", "dsb", "isb",
            ccr = in(reg) scs::CCR, trap = in(reg) rd(scs::CCR) | scs::CCR_UNALIGN_TRP, old = in(reg) rd(scs::CCR),
            p = in(reg) p + 1, a = out(reg) _,
        )
    });
    expect(&mut t, "ldrh unaligned with UNALIGN_TRP", USAGE, CFSR_UNALIGNED, 0, || unsafe {
        asm!(
            "str {trap}, [{ccr}]", "dsb", "isb",
            "ldrh {a}, [{p}]",
            "str {old}, [{ccr}]", "dsb", "isb",
            ccr = in(reg) scs::CCR, trap = in(reg) rd(scs::CCR) | scs::CCR_UNALIGN_TRP, old = in(reg) rd(scs::CCR),
            p = in(reg) p + 3, a = out(reg) _,
        )
    });
    // SAFETY: reads CCR.
    t.check(
        "CCR trap bits off again",
        0,
        unsafe { rd(scs::CCR) } & (scs::CCR_UNALIGN_TRP | scs::CCR_DIV_0_TRP),
    );

    // Branch to an even address: the target is fetched in ARM state -> INVSTATE, stacked PC is
    // the target; resume at the return address with the T bit restored.
    RESUME_AT_LR.store(1, SeqCst);
    expect(&mut t, "blx to ARM state", USAGE, CFSR_INVSTATE, 0, || unsafe {
        asm!("blx {f}", f = in(reg) (target as *const () as u32) & !1, clobber_abi("C"))
    });

    modify(scs::SHCSR, scs::SHCSR_BUSFAULTENA, 0);
    expect(&mut t, "ldr from unmapped, BusFault on", BUS, CFSR_PRECISERR | CFSR_BFARVALID, 0, || unsafe {
        asm!("ldr {a}, [{p}]", p = in(reg) UNMAPPED, a = out(reg) _)
    });
    t.check_show("ldr from unmapped: BFAR", UNMAPPED, BFAR.load(SeqCst));
    modify(scs::SHCSR, 0, scs::SHCSR_BUSFAULTENA);
    expect(
        &mut t,
        "ldrb from unmapped, BusFault off -> HardFault",
        HARD,
        CFSR_PRECISERR | CFSR_BFARVALID,
        scs::HFSR_FORCED,
        || unsafe { asm!("ldrb {a}, [{p}, #5]", p = in(reg) UNMAPPED, a = out(reg) _) },
    );
    t.check_show("ldrb from unmapped: BFAR", UNMAPPED + 5, BFAR.load(SeqCst));

    // Executing from the System region (0xE000_0000..) is never allowed (XN, B3.1.1).
    modify(scs::SHCSR, scs::SHCSR_MEMFAULTENA, 0);
    RESUME_AT_LR.store(1, SeqCst);
    expect(&mut t, "blx into XN System region, MemManage on", MEM, CFSR_IACCVIOL, 0, || unsafe {
        asm!("blx {f}", f = in(reg) 0xE000_1001u32, clobber_abi("C"))
    });
    t.check_show("XN fault: MMFAR not valid", 0, MMFAR.load(SeqCst));
    modify(scs::SHCSR, 0, scs::SHCSR_MEMFAULTENA);
    RESUME_AT_LR.store(1, SeqCst);
    expect(
        &mut t,
        "blx into XN, MemManage off -> HardFault",
        HARD,
        CFSR_IACCVIOL,
        scs::HFSR_FORCED,
        || unsafe { asm!("blx {f}", f = in(reg) 0xE000_1001u32, clobber_abi("C")) },
    );

    // SAFETY: reads CFSR.
    t.check_show("CFSR clear at the end", 0, unsafe { rd(scs::CFSR) });
    t.finish()
}

/// A branch target that is only ever entered in the wrong state (it faults before it runs).
extern "C" fn target() {}
