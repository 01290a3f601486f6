//! ISA corners of ARMv7-M (Thumb-2 on a Cortex-M3), each checked against the value the
//! Architecture Reference Manual (ARMv7-M ARM, DDI 0403E, chapter A7) gives: flags of the
//! add/subtract family incl. overflow edges, register-amount shifts by 0/32/>32, IT blocks with
//! every condition, table branches, bit-manipulation, saturation and the Q flag, long multiplies,
//! divides (incl. by zero and INT_MIN/-1), load/store addressing modes, unaligned accesses and a
//! few 16-bit vs 32-bit encodings. Instructions are written in inline assembly so the compiler
//! cannot fold them away or choose others.
#![no_std]
#![no_main]

use core::arch::asm;
use cortex_m_rt::entry;
use panic_semihosting as _;
use twinbed_selftest::{apsr, rd, scs, Checker, Hex};

/// Runs `$ins` (which writes `{r}` from `{a}` and `{b}`) with the flags preset to `$nzcv`, and
/// checks the result and the N Z C V flags (as a 4-bit value, N = 8) that follow.
macro_rules! flags {
    ($t:expr, $name:literal, $ins:literal, $a:expr, $b:expr, nzcv $nzcv:expr => $er:expr, $ef:expr) => {{
        let r: u32;
        let f: u32;
        // SAFETY: register-only arithmetic.
        unsafe {
            asm!(
                "msr apsr_nzcvq, {c}",
                $ins,
                "mrs {f}, apsr",
                "@ {a} {b}",
                a = in(reg) ($a) as u32,
                b = in(reg) ($b) as u32,
                c = in(reg) ($nzcv as u32) << 28,
                r = out(reg) r,
                f = out(reg) f,
                options(nomem, nostack),
            );
        }
        $t.check_eq($name, &(Hex($er), $ef as u32), &(Hex(r), f >> 28));
    }};
}

/// One-operand register op: `$ins` writes `{r}` from `{a}`.
macro_rules! op1 {
    ($ins:literal, $a:expr) => {{
        let r: u32;
        // SAFETY: register-only arithmetic.
        unsafe { asm!($ins, a = in(reg) ($a) as u32, r = out(reg) r, options(nomem, nostack)) };
        r
    }};
}

/// Two-operand register op: `$ins` writes `{r}` from `{a}` and `{b}`.
macro_rules! op2 {
    ($ins:literal, $a:expr, $b:expr) => {{
        let r: u32;
        // SAFETY: register-only arithmetic.
        unsafe {
            asm!($ins, "@ {a} {b}", a = in(reg) ($a) as u32, b = in(reg) ($b) as u32, r = out(reg) r,
                 options(nomem, nostack))
        };
        r
    }};
}

/// For one condition code: the 16-bit mask of the NZCV values (bit index N=8 Z=4 C=2 V=1) for
/// which an instruction in an IT block with that condition executes.
macro_rules! it_mask {
    ($cond:literal) => {{
        let mut mask = 0u32;
        for nzcv in 0..16u32 {
            let r: u32;
            // SAFETY: register-only.
            unsafe {
                asm!(
                    "msr apsr_nzcvq, {f}",
                    "mov.w {r}, #0",
                    concat!("it ", $cond),
                    concat!("mov", $cond, " {r}, #1"),
                    f = in(reg) nzcv << 28,
                    r = out(reg) r,
                    options(nomem, nostack),
                );
            }
            mask |= r << nzcv;
        }
        mask
    }};
}

#[entry]
fn main() -> ! {
    let mut t = Checker::start("isa", "ARMv7-M instruction corners");
    arith(&mut t);
    shifts(&mut t);
    it_blocks(&mut t);
    table_branch(&mut t);
    bits(&mut t);
    saturate(&mut t);
    multiply(&mut t);
    divide(&mut t);
    loads_stores(&mut t);
    branches(&mut t);
    encodings(&mut t);
    t.finish()
}

/// ADD/SUB/ADC/SBC/RSB/CMN/TST/TEQ/MVN/ORN/BIC (A7.7): results and N Z C V.
fn arith(t: &mut Checker) {
    flags!(t, "adds 7fffffff+1 (V)", "adds {r}, {a}, {b}", 0x7fff_ffff, 1, nzcv 0 => 0x8000_0000, 0b1001);
    flags!(t, "adds ffffffff+1 (C Z)", "adds {r}, {a}, {b}", 0xffff_ffff, 1, nzcv 0 => 0, 0b0110);
    flags!(t, "adds 80000000+80000000 (Z C V)", "adds {r}, {a}, {b}", 0x8000_0000u32, 0x8000_0000u32, nzcv 0 => 0, 0b0111);
    flags!(t, "adds 1+2", "adds {r}, {a}, {b}", 1, 2, nzcv 0b1111 => 3, 0b0000);
    flags!(t, "subs 0-1 (N, borrow)", "subs {r}, {a}, {b}", 0, 1, nzcv 0 => 0xffff_ffff, 0b1000);
    flags!(t, "subs 80000000-1 (C V)", "subs {r}, {a}, {b}", 0x8000_0000u32, 1, nzcv 0 => 0x7fff_ffff, 0b0011);
    flags!(t, "subs 5-5 (Z C)", "subs {r}, {a}, {b}", 5, 5, nzcv 0 => 0, 0b0110);
    flags!(t, "subs 7fffffff-ffffffff (N V)", "subs {r}, {a}, {b}", 0x7fff_ffff, 0xffff_ffffu32, nzcv 0 => 0x8000_0000, 0b1001);
    flags!(t, "adcs 7fffffff+0+C (N V)", "adcs {r}, {a}, {b}", 0x7fff_ffff, 0, nzcv 0b0010 => 0x8000_0000, 0b1001);
    flags!(t, "adcs ffffffff+0+C (Z C)", "adcs {r}, {a}, {b}", 0xffff_ffffu32, 0, nzcv 0b0010 => 0, 0b0110);
    flags!(t, "adcs ffffffff+ffffffff+C (N C)", "adcs {r}, {a}, {b}", 0xffff_ffffu32, 0xffff_ffffu32, nzcv 0b0010 => 0xffff_ffff, 0b1010);
    flags!(t, "adcs 1+1+0", "adcs {r}, {a}, {b}", 1, 1, nzcv 0b1101 => 2, 0b0000);
    flags!(t, "sbcs 5-5-!C (N)", "sbcs {r}, {a}, {b}", 5, 5, nzcv 0 => 0xffff_ffff, 0b1000);
    flags!(t, "sbcs 0-0 with C (Z C)", "sbcs {r}, {a}, {b}", 0, 0, nzcv 0b0010 => 0, 0b0110);
    flags!(t, "sbcs 80000000-0-!C (C V)", "sbcs {r}, {a}, {b}", 0x8000_0000u32, 0, nzcv 0 => 0x7fff_ffff, 0b0011);
    flags!(t, "rsbs 0-1 (N)", "rsbs {r}, {a}, {b}", 1, 0, nzcv 0 => 0xffff_ffff, 0b1000);
    flags!(t, "rsbs #0 of 80000000 (N V)", "rsbs {r}, {a}, #0", 0x8000_0000u32, 0, nzcv 0 => 0x8000_0000, 0b1001);
    flags!(t, "rsbs #0 of 0 (Z C)", "rsbs {r}, {a}, #0", 0, 0, nzcv 0 => 0, 0b0110);
    flags!(t, "rsb.w 10-3 keeps flags", "rsb.w {r}, {a}, {b}", 3, 10, nzcv 0b1010 => 7, 0b1010);
    flags!(t, "cmn 7fffffff,1 (N V)", "cmn {a}, {b}\nmov.w {r}, #0", 0x7fff_ffff, 1, nzcv 0 => 0, 0b1001);
    flags!(t, "cmp 1,2 (N)", "cmp {a}, {b}\nmov.w {r}, #0", 1, 2, nzcv 0 => 0, 0b1000);
    flags!(t, "tst reg keeps C V", "tst {a}, {b}\nmov.w {r}, #0", 0x8000_0000u32, 0x8000_0000u32, nzcv 0b0011 => 0, 0b1011);
    flags!(t, "tst rotated imm sets C", "tst {a}, #0x80000000\nmov.w {r}, #0", 0x8000_0000u32, 0, nzcv 0 => 0, 0b1010);
    flags!(t, "tst plain imm keeps C", "tst {a}, #0xff\nmov.w {r}, #0", 0x100, 0, nzcv 0b0010 => 0, 0b0110);
    flags!(t, "teq 5,5 (Z)", "teq {a}, {b}\nmov.w {r}, #0", 5, 5, nzcv 0b0001 => 0, 0b0101);
    flags!(t, "teq 80000000,1 (N)", "teq {a}, {b}\nmov.w {r}, #0", 0x8000_0000u32, 1, nzcv 0 => 0, 0b1000);
    flags!(t, "mvns 0 (N)", "mvns {r}, {a}", 0, 0, nzcv 0b0010 => 0xffff_ffff, 0b1010);
    flags!(t, "orns", "orns {r}, {a}, {b}", 0xf0, 0xff, nzcv 0 => 0xffff_fff0, 0b1000);
    flags!(t, "bics (Z)", "bics {r}, {a}, {b}", 0x0f, 0xff, nzcv 0 => 0, 0b0100);
    flags!(t, "bic", "bic {r}, {a}, {b}", 0xff, 0x0f, nzcv 0 => 0xf0, 0);
    flags!(t, "orn imm", "orn {r}, {a}, #0xff", 0x100, 0, nzcv 0 => 0xffff_ff00, 0);
    flags!(t, "eors", "eors {r}, {a}, {b}", 0xff00_ff00u32, 0x0ff0_0ff0, nzcv 0 => 0xf0f0_f0f0, 0b1000);
    flags!(t, "ands", "ands {r}, {a}, {b}", 0xff00_ff00u32, 0x0ff0_0ff0, nzcv 0 => 0x0f00_0f00, 0);
}

/// Register-amount shifts use the bottom byte of Rm (A7.4.2, Shift_C in A7.4.2): 0 leaves the
/// value and C alone, 32 and more shift everything out.
fn shifts(t: &mut Checker) {
    let x = 0x8000_0001u32;
    flags!(t, "lsls by 0 keeps C", "lsls {r}, {a}, {b}", x, 0, nzcv 0b0010 => x, 0b1010);
    flags!(t, "lsls by 1", "lsls {r}, {a}, {b}", x, 1, nzcv 0 => 2, 0b0010);
    flags!(t, "lsls by 32", "lsls {r}, {a}, {b}", x, 32, nzcv 0 => 0, 0b0110);
    flags!(t, "lsls by 33", "lsls {r}, {a}, {b}", x, 33, nzcv 0b0010 => 0, 0b0100);
    flags!(t, "lsls by 0x101 (bottom byte)", "lsls {r}, {a}, {b}", x, 0x101, nzcv 0 => 2, 0b0010);
    flags!(t, "lsrs by 1", "lsrs {r}, {a}, {b}", x, 1, nzcv 0 => 0x4000_0000, 0b0010);
    flags!(t, "lsrs by 32", "lsrs {r}, {a}, {b}", x, 32, nzcv 0 => 0, 0b0110);
    flags!(t, "lsrs by 33", "lsrs {r}, {a}, {b}", x, 33, nzcv 0b0010 => 0, 0b0100);
    flags!(t, "lsrs by 0 keeps C", "lsrs {r}, {a}, {b}", x, 0, nzcv 0 => x, 0b1000);
    flags!(t, "asrs by 32", "asrs {r}, {a}, {b}", 0x8000_0000u32, 32, nzcv 0 => 0xffff_ffff, 0b1010);
    flags!(t, "asrs by 40", "asrs {r}, {a}, {b}", 0x8000_0000u32, 40, nzcv 0 => 0xffff_ffff, 0b1010);
    flags!(t, "asrs positive by 40", "asrs {r}, {a}, {b}", 0x4000_0000, 40, nzcv 0b0010 => 0, 0b0100);
    flags!(t, "asrs by 4", "asrs {r}, {a}, {b}", 0x8000_0018u32, 4, nzcv 0 => 0xf800_0001, 0b1010);
    flags!(t, "rors by 32", "rors {r}, {a}, {b}", x, 32, nzcv 0 => x, 0b1010);
    flags!(t, "rors by 36", "rors {r}, {a}, {b}", x, 36, nzcv 0b0010 => 0x1800_0000, 0b0000);
    flags!(t, "rors by 4", "rors {r}, {a}, {b}", x, 4, nzcv 0b0010 => 0x1800_0000, 0b0000);
    flags!(t, "rors by 0 keeps C", "rors {r}, {a}, {b}", 2, 0, nzcv 0b0010 => 2, 0b0010);
    flags!(t, "rrxs", "rrxs {r}, {a}", 3, 0, nzcv 0b0010 => 0x8000_0001, 0b1010);
    flags!(t, "rrxs C clear (Z)", "rrxs {r}, {a}", 1, 0, nzcv 0 => 0, 0b0110);
    flags!(t, "lsrs #32", "lsrs {r}, {a}, #32", x, 0, nzcv 0 => 0, 0b0110);
    flags!(t, "asrs #32", "asrs {r}, {a}, #32", x, 0, nzcv 0 => 0xffff_ffff, 0b1010);
    flags!(t, "lsls #31", "lsls {r}, {a}, #31", 3, 0, nzcv 0 => 0x8000_0000, 0b1010);
    flags!(t, "add with lsl #3 operand", "add.w {r}, {a}, {b}, lsl #3", 1, 2, nzcv 0 => 17, 0);
    flags!(t, "movs ror #8 operand C", "movs.w {r}, {b}, ror #8", 0, 0x80, nzcv 0 => 0x8000_0000, 0b1010);
}

/// IT (A7.7.38): every condition against all 16 NZCV values, mixed then/else blocks, and a
/// flag-setting instruction inside a block changing the later conditions.
fn it_blocks(t: &mut Checker) {
    let got = [
        it_mask!("eq"),
        it_mask!("ne"),
        it_mask!("cs"),
        it_mask!("cc"),
        it_mask!("mi"),
        it_mask!("pl"),
        it_mask!("vs"),
        it_mask!("vc"),
        it_mask!("hi"),
        it_mask!("ls"),
        it_mask!("ge"),
        it_mask!("lt"),
        it_mask!("gt"),
        it_mask!("le"),
        it_mask!("al"),
    ];
    // Table A7-1 (condition codes), evaluated for NZCV = 0..15 (N is bit 3).
    let expected: [(&str, u32); 15] = [
        ("eq", 0xf0f0),
        ("ne", 0x0f0f),
        ("cs", 0xcccc),
        ("cc", 0x3333),
        ("mi", 0xff00),
        ("pl", 0x00ff),
        ("vs", 0xaaaa),
        ("vc", 0x5555),
        ("hi", 0x0c0c),
        ("ls", 0xf3f3),
        ("ge", 0xaa55),
        ("lt", 0x55aa),
        ("gt", 0x0a05),
        ("le", 0xf5fa),
        ("al", 0xffff),
    ];
    let mut name = [0u8; 8];
    for ((cond, mask), got) in expected.iter().zip(got) {
        name[..3].copy_from_slice(b"it ");
        name[3..5].copy_from_slice(cond.as_bytes());
        t.check(core::str::from_utf8(&name[..5]).unwrap_or("it"), *mask, got);
    }
    let (r0, r1, r2, r3): (u32, u32, u32, u32);
    // SAFETY: register-only.
    unsafe {
        asm!(
            "movs r0, #0", "movs r1, #0", "movs r2, #0", "movs r3, #0",
            "cmp r0, #0",
            "itete eq",
            "moveq r0, #1", "movne r1, #1", "moveq r2, #1", "movne r3, #1",
            out("r0") r0, out("r1") r1, out("r2") r2, out("r3") r3, options(nomem, nostack),
        );
    }
    t.check("itete eq", 0b0101, r0 | r1 << 1 | r2 << 2 | r3 << 3);
    let (r0, r1): (u32, u32);
    // SAFETY: register-only.
    unsafe {
        asm!(
            "movs r0, #0", "movs r1, #0",
            "cmp r0, #0",
            "ittt eq",
            "addeq r0, r0, #5",
            "cmpeq r0, #7",
            "moveq r1, #1",
            out("r0") r0, out("r1") r1, options(nomem, nostack),
        );
    }
    t.check("it: cmp inside block decides later", 5, r0 | r1 << 8);
    // A 16-bit ADD inside an IT block does not set flags (A7.7.3, "setflags = !InITBlock()").
    let (r, f): (u32, u32);
    // SAFETY: register-only.
    unsafe {
        asm!(
            "movs r1, #0", "movs r2, #0",
            "cmp r1, #0",
            "it eq",
            "addeq r1, r1, r2",
            "mrs {f}, apsr",
            f = out(reg) f, out("r1") r, out("r2") _, options(nomem, nostack),
        );
    }
    t.check("16-bit add in IT keeps Z", 0x0600_0000, (f >> 28) << 24 | r);
}

/// TBB/TBH (A7.7.185): the table follows the instruction, entries are halfword offsets from PC.
fn table_branch(t: &mut Checker) {
    let mut acc_b = 0u32;
    let mut acc_h = 0u32;
    for i in 0..4u32 {
        let r: u32;
        // SAFETY: the table and all targets are inside this block.
        unsafe {
            asm!(
                "tbb [pc, {i}]",
                "2:",
                ".byte (4f-2b)/2, (5f-2b)/2, (6f-2b)/2, (7f-2b)/2",
                "4: movs {r}, #3", "b 8f",
                "5: movs {r}, #5", "b 8f",
                "6: movs {r}, #7", "b 8f",
                "7: movs {r}, #9",
                "8:",
                i = in(reg) i, r = out(reg) r, options(nomem, nostack),
            );
        }
        acc_b = acc_b << 4 | r;
        let r: u32;
        // SAFETY: as above.
        unsafe {
            asm!(
                "tbh [pc, {i}, lsl #1]",
                "2:",
                ".hword (4f-2b)/2, (5f-2b)/2, (6f-2b)/2, (7f-2b)/2",
                "4: movs {r}, #2", "b 8f",
                "5: movs {r}, #4", "b 8f",
                ".space 600",
                "6: movs {r}, #6", "b 8f",
                "7: movs {r}, #8",
                "8:",
                i = in(reg) i, r = out(reg) r, options(nomem, nostack),
            );
        }
        acc_h = acc_h << 4 | r;
    }
    t.check("tbb cases 0..3", 0x3579, acc_b);
    t.check("tbh cases 0..3 (far)", 0x2468, acc_h);
}

/// CLZ, RBIT, REV, REV16, REVSH, UBFX, SBFX, BFI, BFC (A7.7).
fn bits(t: &mut Checker) {
    t.check("clz 0", 32, op1!("clz {r}, {a}", 0));
    t.check("clz 1", 31, op1!("clz {r}, {a}", 1));
    t.check("clz 80000000", 0, op1!("clz {r}, {a}", 0x8000_0000u32));
    t.check("clz 10000", 15, op1!("clz {r}, {a}", 0x1_0000));
    t.check("rbit 1", 0x8000_0000, op1!("rbit {r}, {a}", 1));
    t.check("rbit 12345678", 0x1e6a_2c48, op1!("rbit {r}, {a}", 0x1234_5678));
    t.check("rev", 0x7856_3412, op1!("rev {r}, {a}", 0x1234_5678));
    t.check("rev16", 0x3412_7856, op1!("rev16 {r}, {a}", 0x1234_5678));
    t.check("revsh negative", 0xffff_8056, op1!("revsh {r}, {a}", 0x1234_5680));
    t.check("revsh positive", 0x0000_3412, op1!("revsh {r}, {a}", 0xffff_1234u32));
    t.check("ubfx #4,#8", 0x67, op1!("ubfx {r}, {a}, #4, #8", 0x1234_5678));
    t.check("ubfx #0,#32", 0x8765_4321, op1!("ubfx {r}, {a}, #0, #32", 0x8765_4321u32));
    t.check("sbfx #4,#8 negative", 0xffff_ffa7, op1!("sbfx {r}, {a}, #4, #8", 0x1234_5a78));
    t.check("sbfx #28,#4 positive", 1, op1!("sbfx {r}, {a}, #28, #4", 0x1234_5678));
    t.check("sbfx #31,#1", 0xffff_ffff, op1!("sbfx {r}, {a}, #31, #1", 0x8000_0000u32));
    t.check("bfi #8,#8", 0xffff_00ff, op2!("mov {r}, {a}\nbfi {r}, {b}, #8, #8", 0xffff_ffffu32, 0));
    t.check("bfi #4,#8", 0x0000_0230, op2!("mov {r}, {a}\nbfi {r}, {b}, #4, #8", 0, 0x123));
    t.check("bfc #0,#16", 0xffff_0000, op1!("mov {r}, {a}\nbfc {r}, #0, #16", 0xffff_ffffu32));
    t.check("bfc #31,#1", 0x7fff_ffff, op1!("mov {r}, {a}\nbfc {r}, #31, #1", 0xffff_ffffu32));
}

/// SSAT/USAT (A7.7.146, A7.7.199) and the sticky Q flag (APSR bit 27, read with MRS).
fn saturate(t: &mut Checker) {
    fn sat(r_q: (u32, u32)) -> u64 {
        u64::from(r_q.0) << 32 | u64::from(r_q.1)
    }
    macro_rules! sat {
        ($ins:literal, $a:expr) => {{
            let r: u32;
            // SAFETY: register-only; clears Q, saturates, reads Q.
            unsafe {
                asm!("msr apsr_nzcvq, {z}", $ins, z = in(reg) 0u32, a = in(reg) ($a) as u32,
                     r = out(reg) r, options(nomem, nostack))
            };
            (r, apsr() >> 27 & 1)
        }};
    }
    t.check64("ssat #8 127 (no Q)", 0x0000_007f_0000_0000, sat(sat!("ssat {r}, #8, {a}", 127)));
    t.check64("ssat #8 200 (Q)", 0x0000_007f_0000_0001, sat(sat!("ssat {r}, #8, {a}", 200)));
    t.check64("ssat #8 -200 (Q)", 0xffff_ff80_0000_0001, sat(sat!("ssat {r}, #8, {a}", -200i32)));
    t.check64("ssat #16 lsl #4 (Q)", 0x0000_7fff_0000_0001, sat(sat!("ssat {r}, #16, {a}, lsl #4", 0x1000)));
    t.check64(
        "ssat #32 asr #31",
        0xffff_ffff_0000_0000,
        sat(sat!("ssat {r}, #32, {a}, asr #31", 0x8000_0000u32)),
    );
    t.check64("usat #8 300 (Q)", 0x0000_00ff_0000_0001, sat(sat!("usat {r}, #8, {a}", 300)));
    t.check64("usat #8 -5 (Q)", 0x0000_0000_0000_0001, sat(sat!("usat {r}, #8, {a}", -5i32)));
    t.check64("usat #8 100 (no Q)", 0x0000_0064_0000_0000, sat(sat!("usat {r}, #8, {a}", 100)));
    t.check64("usat #0 1 (Q)", 0x0000_0000_0000_0001, sat(sat!("usat {r}, #0, {a}", 1)));
    let q: u32;
    // SAFETY: register-only. Q stays set across a later non-saturating SSAT and flag-setting ops.
    unsafe {
        asm!(
            "msr apsr_nzcvq, {z}",
            "ssat {r}, #8, {big}",
            "ssat {r}, #8, {z}",
            "adds {r}, {r}, #1",
            "mrs {q}, apsr",
            z = in(reg) 0u32, big = in(reg) 1000u32, r = out(reg) _, q = out(reg) q,
            options(nomem, nostack),
        );
    }
    t.check("Q is sticky", 1, q >> 27 & 1);
}

/// Long and accumulating multiplies (A7.7.84, 85, 138, 149, 192, 193).
fn multiply(t: &mut Checker) {
    macro_rules! long {
        ($ins:literal, $lo:expr, $hi:expr, $a:expr, $b:expr) => {{
            let (lo, hi): (u32, u32);
            // SAFETY: register-only.
            unsafe {
                asm!($ins, a = in(reg) ($a) as u32, b = in(reg) ($b) as u32,
                     lo = inout(reg) ($lo) as u32 => lo, hi = inout(reg) ($hi) as u32 => hi,
                     options(nomem, nostack))
            };
            u64::from(hi) << 32 | u64::from(lo)
        }};
    }
    t.check64(
        "umull ffffffff^2",
        0xffff_fffe_0000_0001,
        long!("umull {lo}, {hi}, {a}, {b}", 0, 0, 0xffff_ffffu32, 0xffff_ffffu32),
    );
    t.check64("smull -1*-1", 1, long!("smull {lo}, {hi}, {a}, {b}", 0, 0, -1i32, -1i32));
    t.check64(
        "smull INT_MIN^2",
        0x4000_0000_0000_0000,
        long!("smull {lo}, {hi}, {a}, {b}", 0, 0, 0x8000_0000u32, 0x8000_0000u32),
    );
    t.check64("smull -2*3", 0xffff_ffff_ffff_fffa, long!("smull {lo}, {hi}, {a}, {b}", 0, 0, -2i32, 3));
    t.check64(
        "umlal carry into hi",
        0x0000_0002_0000_0000,
        long!("umlal {lo}, {hi}, {a}, {b}", 0xffff_ffffu32, 1, 1, 1),
    );
    t.check64(
        "umlal wraps 64 bits",
        0xffff_fffe_0000_0000,
        long!("umlal {lo}, {hi}, {a}, {b}", 0xffff_ffffu32, 0xffff_ffffu32, 0xffff_ffffu32, 0xffff_ffffu32),
    );
    t.check64("smlal 0+-1*5", 0xffff_ffff_ffff_fffb, long!("smlal {lo}, {hi}, {a}, {b}", 0, 0, -1i32, 5));
    t.check64("smlal 16+-1*5", 11, long!("smlal {lo}, {hi}, {a}, {b}", 16, 0, -1i32, 5));
    t.check("mla 3*4+3", 15, op2!("mla {r}, {a}, {b}, {a}", 3, 4));
    t.check("mla low 32 bits", 0x1_0000, op2!("mla {r}, {a}, {b}, {a}", 0x1_0000, 0x1_0000));
    t.check("mls 100-3*4", 88, op2!("mov {r}, #100\nmls {r}, {a}, {b}, {r}", 3, 4));
    t.check("mls 0-1*1", 0xffff_ffff, op2!("mov {r}, #0\nmls {r}, {a}, {b}, {r}", 1, 1));
    t.check("mul low bits", 0xfffe_0001, op2!("mul {r}, {a}, {b}", 0xffff_ffffu32, 0x1_ffffu32));
}

/// UDIV/SDIV (A7.7.125, A7.7.195): round toward zero; divide by zero gives 0 while CCR.DIV_0_TRP
/// is 0 (its reset value); INT_MIN / -1 gives INT_MIN.
fn divide(t: &mut Checker) {
    // SAFETY: reading CCR has no side effect.
    let ccr = unsafe { rd(scs::CCR) };
    t.check("CCR.DIV_0_TRP and UNALIGN_TRP reset 0", 0, ccr & (scs::CCR_DIV_0_TRP | scs::CCR_UNALIGN_TRP));
    t.check("udiv 100/7", 14, op2!("udiv {r}, {a}, {b}", 100, 7));
    t.check("udiv ffffffff/1", 0xffff_ffff, op2!("udiv {r}, {a}, {b}", 0xffff_ffffu32, 1));
    t.check("udiv ffffffff/2", 0x7fff_ffff, op2!("udiv {r}, {a}, {b}", 0xffff_ffffu32, 2));
    t.check("udiv x/0", 0, op2!("udiv {r}, {a}, {b}", 1234, 0));
    t.check("sdiv -100/7", (-14i32) as u32, op2!("sdiv {r}, {a}, {b}", -100i32, 7));
    t.check("sdiv 100/-7", (-14i32) as u32, op2!("sdiv {r}, {a}, {b}", 100, -7i32));
    t.check("sdiv -100/-7", 14, op2!("sdiv {r}, {a}, {b}", -100i32, -7i32));
    t.check("sdiv INT_MIN/-1", 0x8000_0000, op2!("sdiv {r}, {a}, {b}", 0x8000_0000u32, -1i32));
    t.check("sdiv x/0", 0, op2!("sdiv {r}, {a}, {b}", -1234i32, 0));
}

/// The byte pattern the load tests read (little-endian).
static PATTERN: [u8; 16] =
    [0x01, 0x82, 0x03, 0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f, 0x90];

/// LDRB/LDRH/LDRSB/LDRSH in every addressing mode, LDRD/STRD, LDM/STM with writeback, PUSH/POP
/// and unaligned LDR/LDRH/STR (A3.2.1: allowed while CCR.UNALIGN_TRP is 0).
fn loads_stores(t: &mut Checker) {
    let base = PATTERN.as_ptr() as u32;
    macro_rules! ld {
        ($ins:literal, $off:expr, $idx:expr) => {{
            let (r, b): (u32, u32);
            // SAFETY: every access stays inside PATTERN.
            unsafe {
                asm!($ins, "@ {i}", b = inout(reg) base + $off => b, i = in(reg) $idx as u32,
                     r = out(reg) r, options(readonly, nostack, preserves_flags))
            };
            (Hex(r), b.wrapping_sub(base))
        }};
    }
    // Each check: (loaded value, base register after the access minus PATTERN's address).
    t.check_eq("ldrb imm", &(Hex(0x82), 0), &ld!("ldrb {r}, [{b}, #1]", 0, 0));
    t.check_eq("ldrsb imm", &(Hex(0xffff_ff82), 0), &ld!("ldrsb {r}, [{b}, #1]", 0, 0));
    t.check_eq("ldrsb imm positive", &(Hex(0x03), 0), &ld!("ldrsb {r}, [{b}, #2]", 0, 0));
    t.check_eq("ldrh imm", &(Hex(0x8403), 0), &ld!("ldrh {r}, [{b}, #2]", 0, 0));
    t.check_eq("ldrsh imm", &(Hex(0xffff_8403), 0), &ld!("ldrsh {r}, [{b}, #2]", 0, 0));
    t.check_eq("ldrb negative imm", &(Hex(0x84), 5), &ld!("ldrb {r}, [{b}, #-2]", 5, 0));
    t.check_eq("ldrsb pre-index writeback", &(Hex(0x03), 2), &ld!("ldrsb {r}, [{b}, #-1]!", 3, 0));
    t.check_eq("ldrsh pre-index writeback", &(Hex(0xffff_8685), 4), &ld!("ldrsh {r}, [{b}, #4]!", 0, 0));
    t.check_eq("ldrh post-index", &(Hex(0x8685), 8), &ld!("ldrh {r}, [{b}], #4", 4, 0));
    t.check_eq("ldrb post-index negative", &(Hex(0x90), 12), &ld!("ldrb {r}, [{b}], #-3", 15, 0));
    t.check_eq("ldrsb post-index", &(Hex(0xffff_ff89), 9), &ld!("ldrsb {r}, [{b}], #1", 8, 0));
    t.check_eq("ldrb reg", &(Hex(0x90), 0), &ld!("ldrb {r}, [{b}, {i}]", 0, 15));
    t.check_eq("ldrsh reg lsl #1", &(Hex(0xffff_8887), 0), &ld!("ldrsh {r}, [{b}, {i}, lsl #1]", 0, 3));
    t.check_eq("ldrh reg lsl #2", &(Hex(0x8a89), 0), &ld!("ldrh {r}, [{b}, {i}, lsl #2]", 0, 2));
    t.check_eq("ldrsb reg lsl #3", &(Hex(0xffff_ff89), 0), &ld!("ldrsb {r}, [{b}, {i}, lsl #3]", 0, 1));
    t.check_eq("ldr reg lsl #2", &(Hex(0x8c8b_8a89), 0), &ld!("ldr {r}, [{b}, {i}, lsl #2]", 0, 2));
    t.check_eq("ldr unaligned +1", &(Hex(0x8584_0382), 0), &ld!("ldr {r}, [{b}, #1]", 0, 0));
    t.check_eq("ldr unaligned +3", &(Hex(0x8786_8584), 0), &ld!("ldr {r}, [{b}, #3]", 0, 0));
    t.check_eq("ldrh unaligned +1", &(Hex(0x0382), 0), &ld!("ldrh {r}, [{b}, #1]", 0, 0));
    t.check_eq("ldrsh unaligned +7", &(Hex(0xffff_8988), 0), &ld!("ldrsh {r}, [{b}, #7]", 0, 0));

    // Stores into a stack buffer (its address is never printed).
    let mut buf = [0u32; 8];
    let p = buf.as_mut_ptr() as u32;
    // SAFETY: every store stays inside `buf`.
    unsafe {
        asm!(
            "str {v}, [{p}, #1]",
            "strh {v}, [{p}, #9]",
            "strb {v}, [{p}, #15]",
            "strh {v}, [{p}, {i}, lsl #1]",
            p = in(reg) p, v = in(reg) 0x1122_3344u32, i = in(reg) 10u32,
            options(nostack, preserves_flags),
        );
    }
    t.check_eq(
        "str/strh/strb unaligned",
        &[
            Hex(0x2233_4400),
            Hex(0x0000_0011),
            Hex(0x0033_4400),
            Hex(0x4400_0000),
            Hex(0x0000_0000),
            Hex(0x0000_3344),
        ],
        &buf.map(Hex)[..6].try_into().unwrap_or([Hex(0); 6]),
    );
    let mut buf = [0u32; 8];
    let p = buf.as_mut_ptr() as u32;
    let (wb_pre, wb_post, lo, hi): (u32, u32, u32, u32);
    // SAFETY: every access stays inside `buf`.
    unsafe {
        asm!(
            "mov {q}, {p}",
            "strd {a}, {b}, [{q}, #8]!",
            "sub {pre}, {q}, {p}",
            "mov {q}, {p}",
            "ldrd {lo}, {hi}, [{q}], #8",
            "ldrd {lo}, {hi}, [{q}]",
            "sub {post}, {q}, {p}",
            p = in(reg) p, q = out(reg) _, a = in(reg) 0xaaaa_0001u32, b = in(reg) 0xbbbb_0002u32,
            pre = out(reg) wb_pre, post = out(reg) wb_post, lo = out(reg) lo, hi = out(reg) hi,
            options(nostack, preserves_flags),
        );
    }
    t.check_eq(
        "strd pre-index writeback",
        &[Hex(0), Hex(0), Hex(0xaaaa_0001), Hex(0xbbbb_0002)],
        &[Hex(buf[0]), Hex(buf[1]), Hex(buf[2]), Hex(buf[3])],
    );
    t.check_eq("ldrd after post-index", &(Hex(0xaaaa_0001), Hex(0xbbbb_0002)), &(Hex(lo), Hex(hi)));
    t.check("strd writeback +8", 8, wb_pre);
    t.check("ldrd post-index +8", 8, wb_post);

    let mut buf = [0u32; 8];
    let p = buf.as_mut_ptr() as u32;
    let (d_stmdb, d_ldm, r0, r1, r2, r3): (u32, u32, u32, u32, u32, u32);
    // SAFETY: every access stays inside `buf` (STMDB from its middle goes down to buf[0]).
    unsafe {
        asm!(
            "add {q}, {p}, #16",
            "stmdb {q}!, {{r0-r3}}",
            "sub {d1}, {q}, {p}",
            "movs r0, #0", "movs r1, #0", "movs r2, #0", "movs r3, #0",
            "ldmia {q}!, {{r0-r3}}",
            "sub {d2}, {q}, {p}",
            "add {q}, {p}, #16",
            "stmia {q}, {{r0, r2}}",
            p = in(reg) p, q = out(reg) _, d1 = out(reg) d_stmdb, d2 = out(reg) d_ldm,
            inout("r0") 0x10u32 => r0, inout("r1") 0x11u32 => r1, inout("r2") 0x12u32 => r2,
            inout("r3") 0x13u32 => r3, options(nostack),
        );
    }
    t.check("stmdb writeback -16", 0, d_stmdb);
    t.check("ldmia writeback +16", 16, d_ldm);
    t.check_eq(
        "ldmia registers",
        &[Hex(0x10), Hex(0x11), Hex(0x12), Hex(0x13)],
        &[Hex(r0), Hex(r1), Hex(r2), Hex(r3)],
    );
    t.check_eq(
        "stmia no writeback",
        &[Hex(0x10), Hex(0x12), Hex(0)],
        &[Hex(buf[4]), Hex(buf[5]), Hex(buf[6])],
    );

    let (a, b, depth): (u32, u32, u32);
    // SAFETY: balanced PUSH/POP.
    unsafe {
        asm!(
            "mov {d}, sp",
            "push {{r0, r1, r2}}",
            "mov {e}, sp",
            "sub {d}, {d}, {e}",
            "pop {{r2, r3, r12}}",
            d = out(reg) depth, e = out(reg) _, inout("r0") 0xa0u32 => _, inout("r1") 0xa1u32 => _,
            out("r2") a, out("r3") b, out("r12") _, options(preserves_flags),
        );
    }
    t.check_eq("push 3 / pop into others", &(Hex(0xa0), Hex(0xa1), 12), &(Hex(a), Hex(b), depth));
}

/// Conditional branches (16- and 32-bit), CBZ/CBNZ, MOVW/MOVT, ADR.
fn branches(t: &mut Checker) {
    macro_rules! taken {
        ($br:literal, $a:expr, $b:expr) => {{
            let r: u32;
            // SAFETY: register-only, branches stay in the block.
            unsafe {
                asm!("movs {r}, #1", "cmp {a}, {b}", $br, "movs {r}, #0", "2:",
                     a = in(reg) ($a) as u32, b = in(reg) ($b) as u32, r = out(reg) r,
                     options(nomem, nostack))
            };
            r
        }};
    }
    let got = [
        taken!("bgt 2f", -1i32, 1),
        taken!("bhi 2f", -1i32, 1),
        taken!("blt.w 2f", -1i32, 1),
        taken!("bls.n 2f", 0x8000_0000u32, 0x8000_0000u32),
        taken!("bge 2f", 0x8000_0000u32, 0x7fff_ffff),
        taken!("bcc.w 2f", 0x7fff_ffff, 0x8000_0000u32),
        taken!("bvs 2f", 0x8000_0000u32, 1),
        taken!("bmi.n 2f", 0, 1),
        taken!("beq.w 2f", 3, 3),
        taken!("bne 2f", 3, 3),
    ];
    t.check_eq("b<cond> taken pattern", &[0u32, 1, 1, 1, 0, 1, 1, 1, 1, 0], &got);
    let mut cb = 0u32;
    for v in [0u32, 7] {
        let r: u32;
        // SAFETY: register-only.
        unsafe {
            asm!("movs {r}, #0", "cbz r0, 2f", "adds {r}, #1", "2:", "cbnz r0, 3f", "adds {r}, #2", "3:",
                 in("r0") v, r = out(reg) r, options(nomem, nostack))
        };
        cb = cb << 4 | r;
    }
    t.check("cbz/cbnz", 0x21, cb);
    t.check("movw/movt", 0x1234_5678, op1!("movw {r}, #0x5678\nmovt {r}, #0x1234\n@ {a}", 0));
    t.check("movt keeps low half", 0xbeef_0042, op1!("mov {r}, {a}\nmovt {r}, #0xbeef", 0xffff_0042u32));
    t.check("movw zero-extends", 0x0000_ffff, op1!("mov {r}, {a}\nmovw {r}, #0xffff", 0xffff_0042u32));
    let (fwd, back): (u32, u32);
    // SAFETY: reads the literal words inside this block.
    unsafe {
        asm!(
            "b 3f",
            ".p2align 2",
            "2: .word 0x600dcafe",
            "3: adr {a}, 4f",
            "ldr {f}, [{a}]",
            "adr.w {a}, 2b",
            "ldr {b}, [{a}]",
            "b 5f",
            ".p2align 2",
            "4: .word 0xcafebabe",
            "5:",
            a = out(reg) _, f = out(reg) fwd, b = out(reg) back, options(readonly, nostack, preserves_flags),
        );
    }
    t.check_eq("adr forward/backward", &(Hex(0xcafe_babe), Hex(0x600d_cafe)), &(Hex(fwd), Hex(back)));
}

/// The same operation in its 16-bit and 32-bit encodings: same result; only the flag-setting
/// forms change flags (A7.7.3 ADD T1/T3, A7.7.76 MOV T1/T2, A7.7.68 LSL T1/T2).
fn encodings(t: &mut Checker) {
    macro_rules! enc {
        ($ins:literal, $a:expr, $b:expr, $nzcv:expr) => {{
            let (r, f): (u32, u32);
            // SAFETY: register-only.
            unsafe {
                asm!("msr apsr_nzcvq, {c}", $ins, "mrs {f}, apsr",
                     c = in(reg) ($nzcv as u32) << 28, f = out(reg) f,
                     inout("r0") ($a) as u32 => r, in("r1") ($b) as u32, options(nomem, nostack))
            };
            (Hex(r), f >> 28)
        }};
    }
    t.check_eq(
        "adds.n vs adds.w",
        &enc!("adds.n r0, r0, r1", 0xffff_ffffu32, 1, 0),
        &enc!("adds.w r0, r0, r1", 0xffff_ffffu32, 1, 0),
    );
    t.check_eq("add.w keeps flags", &(Hex(0), 0b1111), &enc!("add.w r0, r0, r1", 0xffff_ffffu32, 1, 0b1111));
    t.check_eq("add.n (high-reg form) keeps flags", &(Hex(5), 0b1111), &enc!("add.n r0, r1", 2, 3, 0b1111));
    t.check_eq("movs.n #0 vs mov.w #0", &(Hex(0), 0b0100), &enc!("movs.n r0, #0", 1, 0, 0));
    t.check_eq("mov.w #0 keeps flags", &(Hex(0), 0b0000), &enc!("mov.w r0, #0", 1, 0, 0));
    t.check_eq(
        "lsls.n vs lsls.w",
        &enc!("lsls.n r0, r0, #1", 0x8000_0001u32, 0, 0),
        &enc!("lsls.w r0, r0, #1", 0x8000_0001u32, 0, 0),
    );
    t.check_eq("lsl.w keeps flags", &(Hex(2), 0b0101), &enc!("lsl.w r0, r0, #1", 0x8000_0001u32, 0, 0b0101));
    t.check_eq(
        "subs.n imm3 vs subs.w",
        &enc!("subs.n r0, r0, #7", 3, 0, 0),
        &enc!("subs.w r0, r0, #7", 3, 0, 0),
    );
    t.check_eq("cmp.n vs cmp.w", &enc!("cmp.n r0, r1", 3, 5, 0), &enc!("cmp.w r0, r1", 3, 5, 0));
    t.check_eq("mul (32-bit) keeps flags", &(Hex(15), 0b1010), &enc!("mul r0, r0, r1", 3, 5, 0b1010));
    // MULS T1 sets N and Z only; C and V are unchanged on ARMv7-M (A7.7.84).
    t.check_eq("muls.n sets N Z, keeps C V", &(Hex(0), 0b0111), &enc!("muls.n r0, r1, r0", 0, 5, 0b0011));
}
