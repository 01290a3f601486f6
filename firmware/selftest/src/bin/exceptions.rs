//! Exception model of ARMv7-M (ARMv7-M ARM B1.5): NVIC priorities and preemption, tail-chaining,
//! PRIMASK/BASEPRI/FAULTMASK masking, SVC with its immediate read back from the stacked PC,
//! a PendSV context switch between two threads on the process stack, MSP/PSP/CONTROL
//! consistency, and SysTick interrupts counted over a fixed number of reload periods.
//!
//! External interrupts 24..27 are used because QEMU's mps2-an385 connects no device to them
//! (IRQ 0..5 are the UART RX/TX lines, 8..10 the timers, 12 UART overflow, 13 Ethernet); they
//! are pended through NVIC_ISPR only. Handlers log `n` on entry and `n + 100` on exit.
#![no_std]
#![no_main]

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicU32, Ordering::SeqCst};
use cortex_m_rt::{entry, exception};
use panic_semihosting as _;
use twinbed_bsp::clock;
use twinbed_selftest::{
    barrier, nvic_enable, nvic_is_pending, nvic_pend, nvic_set_priority, rd, scs, wr, Checker, Hex, Log,
};

static LOG: Log = Log::new();
/// What the IRQ handlers do besides logging (one of the `MODE_*`).
static MODE: AtomicU32 = AtomicU32::new(MODE_PLAIN);
const MODE_PLAIN: u32 = 0;
const MODE_PREEMPT: u32 = 1;
const MODE_TAIL: u32 = 2;
const MODE_FAULTMASK: u32 = 3;
/// ICSR as the nested handler (IRQ 25 preempting IRQ 24) saw it, and IABR0 >> 24.
static NESTED_ICSR: AtomicU32 = AtomicU32::new(0);
static NESTED_IABR: AtomicU32 = AtomicU32::new(0);
/// ICSR as IRQ 26 saw it (the only active exception, IRQ 24 still pending).
static ALONE_ICSR: AtomicU32 = AtomicU32::new(0);
/// ICSR as IRQ 25 saw it in tail-chain mode, after pending 24 and 27.
static TAIL_ICSR: AtomicU32 = AtomicU32::new(0);

/// ICSR.VECTACTIVE (8:0), RETTOBASE (11), VECTPENDING (20:12), ISRPENDING (22).
const ICSR_FIELDS: u32 = 0x1FF | 1 << 11 | 0x1FF << 12 | 1 << 22;

#[exception]
unsafe fn DefaultHandler(irqn: i16) {
    let n = irqn as u8;
    LOG.push(n);
    // SAFETY (all register accesses below): SCS reads, and NVIC pends of our own test IRQs.
    match (MODE.load(SeqCst), n) {
        (MODE_PREEMPT, 24) => nvic_pend(25),
        (MODE_PREEMPT, 25) => {
            NESTED_ICSR.store(unsafe { rd(scs::ICSR) } & ICSR_FIELDS, SeqCst);
            NESTED_IABR.store(unsafe { rd(scs::NVIC_IABR0) } >> 24, SeqCst);
        }
        (MODE_TAIL, 25) => {
            nvic_pend(24);
            nvic_pend(27);
            TAIL_ICSR.store(unsafe { rd(scs::ICSR) } & ICSR_FIELDS, SeqCst);
        }
        (MODE_PLAIN, 26) => ALONE_ICSR.store(unsafe { rd(scs::ICSR) } & ICSR_FIELDS, SeqCst),
        // SAFETY: sets FAULTMASK, which exception return clears again (B1.5.8).
        (MODE_FAULTMASK, 24) => unsafe { asm!("cpsid f") },
        _ => {}
    }
    LOG.push(n + 100);
}

// SVCall: hand the stacked frame (on MSP or PSP, per EXC_RETURN bit 2) and EXC_RETURN to Rust.
// The Rust function returns with EXC_RETURN still in LR, which performs the exception return.
global_asm!(
    ".section .text.SVCall, \"ax\", %progbits",
    ".global SVCall",
    ".type SVCall, %function",
    ".thumb_func",
    "SVCall:",
    "tst lr, #4",
    "ite eq",
    "mrseq r0, msp",
    "mrsne r0, psp",
    "mov r1, lr",
    "b twinbed_svc",
);

/// SVC immediate, EXC_RETURN, CONTROL and ICSR.VECTACTIVE seen by the last SVC.
static SVC_IMM: AtomicU32 = AtomicU32::new(0);
static SVC_EXC_RETURN: AtomicU32 = AtomicU32::new(0);
static SVC_CONTROL: AtomicU32 = AtomicU32::new(0xff);
static SVC_VECTACTIVE: AtomicU32 = AtomicU32::new(0);

/// SVCall body: reads the immediate from the SVC instruction before the stacked return address
/// (ARMv7-M ARM B1.5.6: the frame is r0-r3, r12, lr, ReturnAddress, xPSR), adds it to the
/// stacked r0 (the caller's result) and records what it saw.
#[no_mangle]
unsafe extern "C" fn twinbed_svc(frame: *mut u32, exc_return: u32) {
    // SAFETY: `frame` is the hardware-stacked frame; the SVC instruction precedes its PC.
    unsafe {
        let pc = frame.add(6).read_volatile();
        let imm = u32::from(((pc - 2) as *const u8).read_volatile());
        SVC_IMM.store(imm, SeqCst);
        frame.write_volatile(frame.read_volatile() + imm);
        SVC_VECTACTIVE.store(rd(scs::ICSR) & 0x1FF, SeqCst);
    }
    SVC_EXC_RETURN.store(exc_return, SeqCst);
    SVC_CONTROL.store(control(), SeqCst);
}

/// Calls `svc #imm` with `r0 = arg`; returns r0 afterwards (the handler adds the immediate).
macro_rules! svc {
    ($imm:literal, $arg:expr) => {{
        let r: u32;
        // SAFETY: the SVCall handler only edits the stacked r0.
        unsafe { asm!(concat!("svc #", $imm), inlateout("r0") $arg => r) };
        r
    }};
}

// PendSV: switch between contexts described by TWINBED_SWITCH = [slot, next_sp, next_exc_return].
// From a PSP thread: r4-r11 go below its hardware frame and the PSP goes to *slot. From Thread
// mode on MSP (main): main's r4-r11 are pushed on the MSP, where they stay until a switch back
// to main (next_exc_return 0xFFFFFFF9) pops them. To a thread: r4-r11 are popped from next_sp
// and the PSP set past them before returning with 0xFFFFFFFD.
global_asm!(
    ".section .text.PendSV, \"ax\", %progbits",
    ".global PendSV",
    ".type PendSV, %function",
    ".thumb_func",
    "PendSV:",
    "movw r2, #:lower16:TWINBED_SWITCH",
    "movt r2, #:upper16:TWINBED_SWITCH",
    "tst lr, #4",
    "beq 2f",
    "mrs r0, psp",
    "stmdb r0!, {{r4-r11}}",
    "ldr r1, [r2]",
    "str r0, [r1]",
    "b 3f",
    "2:",
    "push {{r4-r11}}",
    "3:",
    "ldr lr, [r2, #8]",
    "tst lr, #4",
    "beq 4f",
    "ldr r0, [r2, #4]",
    "ldmia r0!, {{r4-r11}}",
    "msr psp, r0",
    "bx lr",
    "4:",
    "pop {{r4-r11}}",
    "bx lr",
);

/// The switch request PendSV carries out: where to save the current PSP, the next context's
/// saved stack pointer, and the EXC_RETURN to leave with.
#[no_mangle]
static TWINBED_SWITCH: [AtomicU32; 3] = [AtomicU32::new(0), AtomicU32::new(0), AtomicU32::new(0)];
/// Saved stack pointers of the two threads.
static SP_A: AtomicU32 = AtomicU32::new(0);
static SP_B: AtomicU32 = AtomicU32::new(0);
/// What thread A observed about its stacks (see `thread_a`).
static A_CONTROL: AtomicU32 = AtomicU32::new(0xff);
static A_PSP_IS_SP: AtomicU32 = AtomicU32::new(0);
static A_MSP_IS_SP: AtomicU32 = AtomicU32::new(1);
static A_SVC: AtomicU32 = AtomicU32::new(0);
static A_REGS: [AtomicU32; 6] = [const { AtomicU32::new(0) }; 6];

#[repr(C, align(8))]
struct Stack([u32; 192]);
static mut STACK_A: Stack = Stack([0; 192]);
static mut STACK_B: Stack = Stack([0; 192]);

/// Requests a context switch and lets PendSV (lowest priority) take it at once.
fn switch(save: &AtomicU32, next_sp: u32, exc_return: u32) {
    TWINBED_SWITCH[0].store(save as *const AtomicU32 as u32, SeqCst);
    TWINBED_SWITCH[1].store(next_sp, SeqCst);
    TWINBED_SWITCH[2].store(exc_return, SeqCst);
    // SAFETY: ICSR.PENDSVSET only pends PendSV.
    unsafe { wr(scs::ICSR, scs::ICSR_PENDSVSET) };
    barrier();
}

/// Builds a thread's first context at the top of `stack`: r4-r11 (zero), then the exception
/// frame r0-r3, r12, lr, pc, xPSR (T bit set). Returns the saved stack pointer.
fn new_thread(stack: *mut Stack, entry: extern "C" fn() -> !) -> u32 {
    // SAFETY: the stack is only used by this thread, which has not started yet.
    unsafe {
        let words = &mut (*stack).0;
        let top = words.len() - 16;
        words[top..].fill(0);
        words[top + 8 + 5] = 0xFFFF_FFFF; // lr: threads never return
        words[top + 8 + 6] = entry as usize as u32 & !1; // ReturnAddress is halfword aligned
        words[top + 8 + 7] = 0x0100_0000; // xPSR.T
        words.as_ptr().add(top) as u32
    }
}

fn control() -> u32 {
    let v: u32;
    // SAFETY: reads CONTROL.
    unsafe { asm!("mrs {}, control", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// (MSP == SP, PSP == SP) for the code that calls it.
#[inline(always)]
fn stack_pointers() -> (bool, bool) {
    let (sp, msp, psp): (u32, u32, u32);
    // SAFETY: reads stack pointers.
    unsafe {
        asm!("mov {}, sp", "mrs {}, msp", "mrs {}, psp", out(reg) sp, out(reg) msp, out(reg) psp,
             options(nomem, nostack, preserves_flags))
    };
    (msp == sp, psp == sp)
}

/// Thread A: checks its stacks, sets callee-saved registers (r4, r5, r8-r11) to known values across two switches to B (which sets them to other values), then an
/// SVC from the process stack, then returns to main.
extern "C" fn thread_a() -> ! {
    LOG.push(b'a');
    A_CONTROL.store(control(), SeqCst);
    let (msp_is_sp, psp_is_sp) = stack_pointers();
    A_PSP_IS_SP.store(u32::from(psp_is_sp), SeqCst);
    A_MSP_IS_SP.store(u32::from(msp_is_sp), SeqCst);
    let regs = callee_saved_across_switch(0xa0, &SP_A, &SP_B);
    for (slot, v) in A_REGS.iter().zip(regs) {
        slot.store(v, SeqCst);
    }
    LOG.push(b'a');
    switch(&SP_A, SP_B.load(SeqCst), 0xFFFF_FFFD);
    LOG.push(b'a');
    A_SVC.store(svc!(7, 35), SeqCst);
    switch(&SP_A, 0, 0xFFFF_FFF9);
    loop {
        cortex_m::asm::nop();
    }
}

/// Thread B: clobbers the callee-saved registers with its own values around the switches.
extern "C" fn thread_b() -> ! {
    LOG.push(b'b');
    let regs = callee_saved_across_switch(0xb0, &SP_B, &SP_A);
    LOG.push(if regs == [0xb0, 0xb1, 0xb2, 0xb3, 0xb4, 0xb5] { b'b' } else { b'X' });
    switch(&SP_B, SP_A.load(SeqCst), 0xFFFF_FFFD);
    loop {
        cortex_m::asm::nop();
    }
}

/// Loads r4, r5, r8-r11 with `base + 0..6`, switches to the other thread, and returns what they hold
/// when this thread is resumed.
#[inline(never)]
fn callee_saved_across_switch(base: u32, save: &AtomicU32, other: &AtomicU32) -> [u32; 6] {
    TWINBED_SWITCH[0].store(save as *const AtomicU32 as u32, SeqCst);
    TWINBED_SWITCH[1].store(other.load(SeqCst), SeqCst);
    TWINBED_SWITCH[2].store(0xFFFF_FFFD, SeqCst);
    let mut out = [0u32; 6];
    // SAFETY: registers only, plus a store to `out`; the PendSV handler switches threads at the
    // ISB and resumes here with this thread's registers. (r6 and r7 cannot be named in Rust
    // inline assembly; the compiler's own use of them across the switch is covered anyway.)
    unsafe {
        asm!(
            "add r5, r4, #1", "add r8, r4, #2", "add r9, r4, #3", "add r10, r4, #4",
            "add r11, r4, #5",
            "str {pend}, [{icsr}]",
            "dsb", "isb",
            "stm {out}, {{r4, r5, r8-r11}}",
            icsr = in(reg) scs::ICSR, pend = in(reg) scs::ICSR_PENDSVSET, out = in(reg) out.as_mut_ptr(),
            inout("r4") base => _, out("r5") _, out("r8") _, out("r9") _, out("r10") _, out("r11") _,
        );
    }
    out
}

#[entry]
fn main() -> ! {
    let mut t = Checker::start("exceptions", "NVIC priorities, masking, SVC, PendSV, SysTick");
    // SAFETY: priority writes; PendSV lowest (0xE0), SVCall highest (0).
    unsafe {
        wr(scs::SHPR3, rd(scs::SHPR3) & 0xFF00_FFFF | 0x00E0_0000);
        wr(scs::SHPR2, 0);
    }
    for (irq, prio) in [(24, 0xC0), (25, 0x40), (26, 0x80), (27, 0x40)] {
        nvic_set_priority(irq, prio);
        nvic_enable(irq);
    }
    // The AN385's Cortex-M3 implements 3 priority bits (CMSIS __NVIC_PRIO_BITS = 3; the
    // ARMv7-M ARM B3.4.9 leaves the number IMPLEMENTATION DEFINED, at least 3): the low bits of
    // an IPR byte read as zero. QEMU implements all 8 bits.
    nvic_set_priority(28, 0xFF);
    // SAFETY: reads IPR7 (IRQs 28..31).
    t.check("deviation:NVIC IPR keeps 3 priority bits", 0xE0, unsafe { rd(scs::NVIC_IPR + 28) } & 0xFF);
    nvic_set_priority(28, 0);
    priorities(&mut t);
    masking(&mut t);
    svc(&mut t);
    threads(&mut t);
    systick(&mut t);
    t.finish()
}

/// Pending order, preemption by a higher priority, no preemption by an equal or lower one.
fn priorities(t: &mut Checker) {
    cortex_m::interrupt::disable();
    for irq in [24, 26, 27, 25] {
        nvic_pend(irq);
    }
    // SAFETY: reads ISPR.
    t.check("ISPR shows 24..27 pending", 0xF, unsafe { rd(scs::NVIC_ISPR0) } >> 24 & 0xF);
    LOG.check(t, "nothing runs under PRIMASK", &[]);
    // SAFETY: the handlers are ready.
    unsafe { cortex_m::interrupt::enable() };
    barrier();
    // Priority 0x40 (25 before 27: equal priority, lower number first), 0x80, 0xC0.
    LOG.check(t, "priority order 25 27 26 24", &[25, 125, 27, 127, 26, 126, 24, 124]);
    t.check(
        "ICSR in handler 26: VECTACTIVE 42, RETTOBASE, VECTPENDING 40 (IRQ 24)",
        42 | 1 << 11 | 40 << 12 | 1 << 22,
        ALONE_ICSR.load(SeqCst),
    );

    MODE.store(MODE_PREEMPT, SeqCst);
    nvic_pend(24);
    LOG.check(t, "25 preempts 24", &[24, 25, 125, 124]);
    t.check("ICSR in nested handler: VECTACTIVE 41, RETTOBASE 0", 41, NESTED_ICSR.load(SeqCst));
    t.check("IABR in nested handler: 24 and 25 active", 0b0011, NESTED_IABR.load(SeqCst));

    MODE.store(MODE_TAIL, SeqCst);
    nvic_pend(25);
    LOG.check(t, "24 (lower) and 27 (equal) wait, then tail-chain", &[25, 125, 27, 127, 24, 124]);
    t.check(
        "ICSR after pending 24, 27: VECTPENDING 43, ISRPENDING, RETTOBASE",
        41 | 1 << 11 | 43 << 12 | 1 << 22,
        TAIL_ICSR.load(SeqCst),
    );
    MODE.store(MODE_PLAIN, SeqCst);
}

fn basepri() -> u32 {
    let v: u32;
    // SAFETY: reads BASEPRI.
    unsafe { asm!("mrs {}, basepri", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

fn faultmask() -> u32 {
    let v: u32;
    // SAFETY: reads FAULTMASK.
    unsafe { asm!("mrs {}, faultmask", out(reg) v, options(nomem, nostack, preserves_flags)) };
    v
}

/// PRIMASK, BASEPRI (and BASEPRI_MAX), FAULTMASK (B1.4.3, B1.5.4).
fn masking(t: &mut Checker) {
    cortex_m::interrupt::disable();
    nvic_pend(24);
    t.check_true("PRIMASK holds IRQ pending", nvic_is_pending(24));
    LOG.check(t, "PRIMASK blocks", &[]);
    // SAFETY: handlers ready.
    unsafe { cortex_m::interrupt::enable() };
    barrier();
    LOG.check(t, "PRIMASK cleared: runs", &[24, 124]);

    // SAFETY: BASEPRI only masks.
    unsafe { asm!("msr basepri, {}", in(reg) 0x80u32) };
    barrier();
    for irq in [24, 26, 25] {
        nvic_pend(irq);
    }
    LOG.check(t, "BASEPRI 0x80: only priority 0x40 runs", &[25, 125]);
    // SAFETY: BASEPRI_MAX only raises the masking level.
    unsafe { asm!("msr basepri_max, {}", in(reg) 0xC0u32) };
    t.check("BASEPRI_MAX 0xC0 ignored", 0x80, basepri());
    // SAFETY: as above.
    unsafe { asm!("msr basepri_max, {}", in(reg) 0x40u32) };
    t.check("BASEPRI_MAX 0x40 taken", 0x40, basepri());
    // SAFETY: as above.
    unsafe { asm!("msr basepri, {}", in(reg) 0u32) };
    barrier();
    LOG.check(t, "BASEPRI 0: the rest run", &[26, 126, 24, 124]);

    // SAFETY: FAULTMASK masks everything but NMI; cleared again below.
    unsafe { asm!("cpsid f") };
    nvic_pend(25);
    t.check("FAULTMASK reads 1", 1, faultmask());
    LOG.check(t, "FAULTMASK blocks priority 0x40", &[]);
    // SAFETY: handlers ready.
    unsafe { asm!("cpsie f") };
    barrier();
    LOG.check(t, "FAULTMASK cleared: runs", &[25, 125]);

    MODE.store(MODE_FAULTMASK, SeqCst);
    nvic_pend(24);
    MODE.store(MODE_PLAIN, SeqCst);
    LOG.check(t, "handler sets FAULTMASK", &[24, 124]);
    t.check("exception return clears FAULTMASK", 0, faultmask());
}

/// SVC (B1.5.6 frame, A7.7.178): the immediate is read back from the instruction.
fn svc(t: &mut Checker) {
    t.check("svc #42 adds 42 to r0", 142, svc!(42, 100));
    t.check("svc #42: immediate", 42, SVC_IMM.load(SeqCst));
    t.check("svc: VECTACTIVE 11", 11, SVC_VECTACTIVE.load(SeqCst));
    t.check("svc from main: EXC_RETURN", 0xFFFF_FFF9, SVC_EXC_RETURN.load(SeqCst));
    t.check("svc #255", 255, svc!(255, 0));
    t.check("svc #0", 7, svc!(0, 7));
    let (msp_is_sp, psp_is_sp) = stack_pointers();
    t.check_eq("main: MSP == SP, PSP != SP", &(true, false), &(msp_is_sp, psp_is_sp));
    t.check("main: CONTROL", 0, control());
}

/// PendSV context switch between two threads on PSP (B1.5.8 EXC_RETURN 0xFFFFFFFD).
fn threads(t: &mut Checker) {
    // SAFETY: the stacks are used by the two threads only.
    SP_A.store(new_thread(&raw mut STACK_A, thread_a), SeqCst);
    SP_B.store(new_thread(&raw mut STACK_B, thread_b), SeqCst);
    let main_slot = AtomicU32::new(0);
    switch(&main_slot, SP_A.load(SeqCst), 0xFFFF_FFFD);
    // Back in main (thread A switched with EXC_RETURN 0xFFFFFFF9).
    LOG.check(t, "thread order a b a b a", b"ababa");
    t.check("thread: CONTROL.SPSEL", 2, A_CONTROL.load(SeqCst));
    t.check_eq(
        "thread: PSP == SP, MSP != SP",
        &(1, 0),
        &(A_PSP_IS_SP.load(SeqCst), A_MSP_IS_SP.load(SeqCst)),
    );
    let regs: [Hex; 6] = core::array::from_fn(|i| Hex(A_REGS[i].load(SeqCst)));
    t.check_eq("r4 r5 r8-r11 survive switches", &[0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5].map(Hex), &regs);
    t.check("svc #7 from thread", 42, A_SVC.load(SeqCst));
    t.check("svc from thread: EXC_RETURN", 0xFFFF_FFFD, SVC_EXC_RETURN.load(SeqCst));
    t.check("svc from thread: CONTROL in handler", 0, SVC_CONTROL.load(SeqCst));
    t.check("main after threads: CONTROL", 0, control());
    let (msp_is_sp, _) = stack_pointers();
    t.check_true("main after threads: MSP == SP", msp_is_sp);
}

/// SysTick (B3.3): five interrupts over five reload periods, then COUNTFLAG clears on read.
fn systick(t: &mut Checker) {
    const PERIODS: u32 = 5;
    // The BSP's clock hands SysTick over; its handler keeps counting interrupts.
    clock::release();
    let start = clock::interrupts();
    // SAFETY: SysTick registers, released by the clock.
    unsafe {
        wr(scs::SYST_CSR, 0);
        wr(scs::SYST_RVR, 9_999);
        wr(scs::SYST_CVR, 0);
        let _ = rd(scs::SYST_CSR);
        wr(scs::SYST_CSR, 0b111); // core clock, TICKINT, ENABLE
    }
    while clock::interrupts() - start < PERIODS {
        cortex_m::asm::wfi();
    }
    // SAFETY: stop SysTick.
    let (flag1, flag2, rvr) = unsafe {
        wr(scs::SYST_CSR, 0b110);
        (rd(scs::SYST_CSR) >> 16 & 1, rd(scs::SYST_CSR) >> 16 & 1, rd(scs::SYST_RVR))
    };
    t.check("SysTick interrupts in 5 periods", PERIODS, clock::interrupts() - start);
    t.check("SYST_RVR readback", 9_999, rvr);
    t.check_eq("COUNTFLAG set, then clear on read", &(1, 0), &(flag1, flag2));
}
