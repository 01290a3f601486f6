//! Differential test of the block compiler (`src/jit.rs`) against the interpreter, on whole
//! random programs rather than single instructions (`differential.rs` covers those).
//!
//! Each case is a seeded random Thumb-2 program, assembled here by hand (the encoders below
//! cite the ARMv7-M ARM, DDI 0403E): mostly instructions the compiler translates (16- and
//! 32-bit data processing, shifts, multiplies, divides by zero and INT_MIN / -1, bitfields,
//! extends, byte reversal, single/dual/multiple loads and stores with every addressing form,
//! PUSH/POP), grouped into counted loops (tight ones that compile to one looping block, and
//! ones with forward branches, CBZ/CBNZ and BL/BX LR subroutine calls inside), with a few
//! instructions the compiler leaves to the interpreter (IT blocks, MRS/MSR, SSAT/USAT,
//! flag-setting register shifts, LDREX/STREX, BKPT, UDF, BLX, LDR PC). Base registers point
//! mostly into data RAM, sometimes misaligned, sometimes outside RAM (BusFault), into the
//! code region (scratch space, or data islands inside code pages) and some loops patch one of
//! their own instructions each pass (self-modifying code). Every fault ends in a HardFault
//! handler that skips the faulting instruction (and counts it), so programs go on after
//! faults; a third of the programs also take SysTick interrupts, so events fall inside
//! compiled loops, and a fifth have a stop address (`set_stop_at`) somewhere in them. Programs
//! end with a semihosting exit.
//!
//! Every program runs on three clones of one machine: interpreter only (`set_jit(None)`),
//! blocks compiled at first sight (`Some(1)`) and after three starts (`Some(3)`), through the
//! same sequence of `run(budget)` calls (budgets of 1 to 200,000 cycles, so boundaries fall
//! inside loops). After every call the `Stop`, the core state, `now`, `instret`, the System
//! Control Space state and both RAM regions must be identical. The test also checks that it
//! is not vacuous: many instructions retired, most programs looping, faults, interrupts and
//! exits taken, and thousands of blocks compiled (counted from the compiler's `jit` tracing
//! events, which must include no warning).
//!
//! 300 programs by default (about 5 s), 5,000 with `TWINBED_FULL=1`; `TWINBED_SEED=<n>` picks
//! the seed and `TWINBED_PROGRAM=<i>` replays program `i` alone. A mismatch prints the seed,
//! the program index, the first differing field, the shortest sequence of `run` budgets that
//! shows it (the last one bisected), both states there, the instructions at the point of
//! divergence and the whole program.
//!
//! Run: `cargo test -p twinbed-engine --test jit_blocks -- --nocapture`

mod common;

use common::Rng;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use twinbed_board::Board;
use twinbed_engine::cpu::decode::{decode, is_32bit, thumb_expand_imm};
use twinbed_engine::cpu::instr::{DpOp, Hint, Instr, Op2, SetFlags};
use twinbed_engine::{Machine, Stop};

const CODE_BASE: u32 = 0;
const CODE_SIZE: u32 = 0x1_0000;
const DATA_BASE: u32 = 0x2000_0000;
const DATA_SIZE: u32 = 0x1_0000;
/// Initial SP; the 4 KiB above it are scratch for SP-relative stores.
const SP_INIT: u32 = DATA_BASE + 0xf000;
/// Where the SysTick handler counts its interrupts, and the fault handler the faults (in the
/// code region, where random stores seldom go).
const TICKS: u32 = CODE_BASE + 0xb000;
const FAULTS: u32 = CODE_BASE + 0xb004;
/// Code-region scratch space: never holds code (stores there take the compiled fast path).
const SCRATCH: u32 = 0xc000;
/// First address after the vector table (16 entries).
const ORIGIN: u32 = 0x40;
/// Decode-cache / block page.
const PAGE: u32 = 1024;

/// Registers the random instructions may write (r8 counts loops, r6/r7/r9 are pointers, SP
/// and LR are only changed by balanced PUSH/POP and BL).
const DATA_LO: &[u32] = &[0, 1, 2, 3, 4, 5];
const DATA: &[u32] = &[0, 1, 2, 3, 4, 5, 10, 11, 12];
const PTR_LO: &[u32] = &[6, 7];
const PTR: &[u32] = &[6, 7, 9];
const COUNTER: u32 = 8;

// ---------------------------------------------------------------------------------------------
// Encoders. Section numbers: ARMv7-M Architecture Reference Manual (DDI 0403E).
// Registers and fields are u32; each encoder returns the halfword(s).
// ---------------------------------------------------------------------------------------------

/// A7.7.68 LSL / A7.7.70 LSR / A7.7.10 ASR (immediate) T1: `000 op:2 imm5 Rm Rd`.
fn shift_imm16(op: u32, rd: u32, rm: u32, imm5: u32) -> u16 {
    (op << 11 | imm5 << 6 | rm << 3 | rd) as u16
}

/// A7.7.4 ADD / A7.7.174 SUB (register) T1: `000110 S Rm Rn Rd`.
fn addsub_reg16(sub: bool, rd: u32, rn: u32, rm: u32) -> u16 {
    (0x1800 | u32::from(sub) << 9 | rm << 6 | rn << 3 | rd) as u16
}

/// A7.7.3 ADD / A7.7.173 SUB (immediate) T1: `000111 S imm3 Rn Rd`.
fn addsub_imm3(sub: bool, rd: u32, rn: u32, imm3: u32) -> u16 {
    (0x1c00 | u32::from(sub) << 9 | imm3 << 6 | rn << 3 | rd) as u16
}

/// A7.7.75 MOV / A7.7.27 CMP / A7.7.3 ADD / A7.7.173 SUB (immediate) T1/T2:
/// `001 op:2 Rdn imm8` (op 0 MOV, 1 CMP, 2 ADD, 3 SUB).
fn imm8_16(op: u32, rdn: u32, imm8: u32) -> u16 {
    (0x2000 | op << 11 | rdn << 8 | imm8) as u16
}

/// A5.2.2 data processing (register): `010000 opcode:4 Rm Rdn` (AND EOR LSL LSR ASR ADC SBC
/// ROR TST RSB CMP CMN ORR MUL BIC MVN).
fn dp16(opc: u32, rdn: u32, rm: u32) -> u16 {
    (0x4000 | opc << 6 | rm << 3 | rdn) as u16
}

/// A5.2.3 special data: ADD (register) T2 (op 0), CMP (register) T2 (op 1), MOV (register)
/// T1 (op 2): `010001 op:2 D Rm Rdn<2:0>`.
fn hireg16(op: u32, rdn: u32, rm: u32) -> u16 {
    (0x4400 | op << 8 | (rdn >> 3) << 7 | rm << 3 | (rdn & 7)) as u16
}

/// A7.7.20 BX T1 / A7.7.19 BLX (register) T1: `010001 11 L Rm 000`.
fn bx16(link: bool, rm: u32) -> u16 {
    (0x4700 | u32::from(link) << 7 | rm << 3) as u16
}

/// A7.7.43 LDR (literal) T1: `01001 Rt imm8`.
fn ldr_lit16(rt: u32, imm8: u32) -> u16 {
    (0x4800 | rt << 8 | imm8) as u16
}

/// A5.2.4 load/store single (register offset): `0101 opB:3 Rm Rn Rt` (STR STRH STRB LDRSB
/// LDR LDRH LDRB LDRSH).
fn ldst_reg16(opb: u32, rt: u32, rn: u32, rm: u32) -> u16 {
    (0x5000 | opb << 9 | rm << 6 | rn << 3 | rt) as u16
}

/// A5.2.4 load/store (immediate) T1: `opA:5 imm5 Rn Rt`, opA 0b01100 STR, 0b01101 LDR,
/// 0b01110 STRB, 0b01111 LDRB, 0b10000 STRH, 0b10001 LDRH.
fn ldst_imm16(opa: u32, rt: u32, rn: u32, imm5: u32) -> u16 {
    (opa << 11 | imm5 << 6 | rn << 3 | rt) as u16
}

/// A7.7.159 STR / A7.7.42 LDR (SP plus immediate) T2: `1001 L Rt imm8`.
fn ldst_sp16(load: bool, rt: u32, imm8: u32) -> u16 {
    (0x9000 | u32::from(load) << 11 | rt << 8 | imm8) as u16
}

/// A7.7.7 ADR T1: `10100 Rd imm8`.
fn adr16(rd: u32, imm8: u32) -> u16 {
    (0xa000 | rd << 8 | imm8) as u16
}

/// A7.7.5 ADD (SP plus immediate) T1: `10101 Rd imm8`.
fn add_sp16(rd: u32, imm8: u32) -> u16 {
    (0xa800 | rd << 8 | imm8) as u16
}

/// A7.7.21 CBZ/CBNZ T1: `1011 op 0 i 1 imm5 Rn`, target = PC + 4 + i:imm5:'0'.
fn cbz16(nonzero: bool, rn: u32, off: u32) -> u16 {
    assert!(off.is_multiple_of(2) && off < 128, "CBZ offset {off}");
    (0xb100 | u32::from(nonzero) << 11 | (off >> 6) << 9 | ((off >> 1) & 31) << 3 | rn) as u16
}

/// A7.7.185/183/222/220 SXTH/SXTB/UXTH/UXTB T1: `1011 0010 opc:2 Rm Rd`.
fn ext16(opc: u32, rd: u32, rm: u32) -> u16 {
    (0xb200 | opc << 6 | rm << 3 | rd) as u16
}

/// A7.7.99 PUSH T1: `1011 010 M list` / A7.7.98 POP T1: `1011 110 P list`.
fn pushpop16(pop: bool, extra: bool, list: u32) -> u16 {
    (0xb400 | u32::from(pop) << 11 | u32::from(extra) << 8 | list) as u16
}

/// A7.7.111/112/113 REV/REV16/REVSH T1: `1011 1010 op:2 Rm Rd` (op 0, 1, 3).
fn rev16(op: u32, rd: u32, rm: u32) -> u16 {
    (0xba00 | op << 6 | rm << 3 | rd) as u16
}

/// A7.7.17 BKPT T1: `1011 1110 imm8`.
fn bkpt16(imm8: u32) -> u16 {
    (0xbe00 | imm8) as u16
}

/// A7.7.38 IT T1: `1011 1111 firstcond mask`.
fn it16(firstcond: u32, mask: u32) -> u16 {
    (0xbf00 | firstcond << 4 | mask) as u16
}

/// A7.7.88 NOP T1.
const NOP16: u16 = 0xbf00;

/// A7.7.156 STM / A7.7.40 LDM T1: `1100 L Rn list`.
fn ldm16(load: bool, rn: u32, list: u32) -> u16 {
    (0xc000 | u32::from(load) << 11 | rn << 8 | list) as u16
}

/// A7.7.12 B T1: `1101 cond imm8`, target = PC + 4 + imm8:'0' (signed).
fn bcond16(cond: u32, off: i32) -> u16 {
    assert!(off % 2 == 0 && (-256..=254).contains(&off) && cond < 14);
    (0xd000 | cond << 8 | ((off >> 1) as u32 & 0xff)) as u16
}

/// A7.7.12 B T2: `11100 imm11`.
fn b16(off: i32) -> u16 {
    assert!(off % 2 == 0 && (-2048..=2046).contains(&off));
    (0xe000 | ((off >> 1) as u32 & 0x7ff)) as u16
}

/// A7.7.194 UDF T1: `1101 1110 imm8`.
fn udf16(imm8: u32) -> u16 {
    (0xde00 | imm8) as u16
}

/// A5.3.1 data processing (modified immediate): `11110 i 0 op:4 S Rn | 0 imm3 Rd imm8`
/// (op 0 AND/TST, 1 BIC, 2 ORR/MOV, 3 ORN/MVN, 4 EOR/TEQ, 8 ADD/CMN, 10 ADC, 11 SBC,
/// 13 SUB/CMP, 14 RSB).
fn dp_imm32(op: u32, s: bool, rd: u32, rn: u32, imm12: u32) -> (u16, u16) {
    (
        (0xf000 | (imm12 >> 11) << 10 | op << 5 | u32::from(s) << 4 | rn) as u16,
        (((imm12 >> 8) & 7) << 12 | rd << 8 | (imm12 & 0xff)) as u16,
    )
}

/// A5.3.11 data processing (shifted register): `1110101 op:4 S Rn | 0 imm3 Rd imm2 type Rm`.
fn dp_reg32(op: u32, s: bool, rd: u32, rn: u32, rm: u32, ty: u32, imm5: u32) -> (u16, u16) {
    (
        (0xea00 | op << 5 | u32::from(s) << 4 | rn) as u16,
        ((imm5 >> 2) << 12 | rd << 8 | (imm5 & 3) << 6 | ty << 4 | rm) as u16,
    )
}

/// A7.7.3 ADDW T4 / A7.7.173 SUBW T4 (A5.3.3 plain binary immediate, op 0b00000 / 0b01010):
/// `11110 i 1 op:5 Rn | 0 imm3 Rd imm8`.
fn addw32(sub: bool, rd: u32, rn: u32, imm12: u32) -> (u16, u16) {
    (
        (0xf200 | if sub { 0xa0 } else { 0 } | (imm12 >> 11) << 10 | rn) as u16,
        (((imm12 >> 8) & 7) << 12 | rd << 8 | (imm12 & 0xff)) as u16,
    )
}

/// A7.7.76 MOVW T3 / A7.7.79 MOVT T1: `11110 i 10 T 100 imm4 | 0 imm3 Rd imm8`.
fn movw32(top: bool, rd: u32, imm16: u32) -> (u16, u16) {
    (
        (0xf240 | u32::from(top) << 7 | ((imm16 >> 11) & 1) << 10 | (imm16 >> 12)) as u16,
        (((imm16 >> 8) & 7) << 12 | rd << 8 | (imm16 & 0xff)) as u16,
    )
}

/// A7.7.148 SBFX / A7.7.190 UBFX T1: `11110 0 11 U 10 0 Rn | 0 imm3 Rd imm2 0 widthm1`.
fn bfx32(unsigned: bool, rd: u32, rn: u32, lsb: u32, width: u32) -> (u16, u16) {
    (
        (if unsigned { 0xf3c0 } else { 0xf340 } | rn) as u16,
        ((lsb >> 2) << 12 | rd << 8 | (lsb & 3) << 6 | (width - 1)) as u16,
    )
}

/// A7.7.14 BFI T1 (A7.7.13 BFC: Rn = 1111): `11110 0 11 0 11 0 Rn | 0 imm3 Rd imm2 0 msb`.
fn bfi32(rd: u32, rn: u32, lsb: u32, width: u32) -> (u16, u16) {
    ((0xf360 | rn) as u16, ((lsb >> 2) << 12 | rd << 8 | (lsb & 3) << 6 | (lsb + width - 1)) as u16)
}

/// A7.7.142 SSAT / A7.7.200 USAT T1: `11110 0 11 U0 sh 0 Rn | 0 imm3 Rd imm2 0 sat_imm`.
fn sat32(unsigned: bool, sh: u32, rd: u32, rn: u32, amount: u32, sat_imm: u32) -> (u16, u16) {
    (
        (if unsigned { 0xf380 } else { 0xf300 } | sh << 5 | rn) as u16,
        ((amount >> 2) << 12 | rd << 8 | (amount & 3) << 6 | sat_imm) as u16,
    )
}

/// A7.7.69/71/11/115 LSL/LSR/ASR/ROR (register) T2: `11111010 0 type S Rn | 1111 Rd 0000 Rm`.
fn shift_reg32(ty: u32, s: bool, rd: u32, rn: u32, rm: u32) -> (u16, u16) {
    ((0xfa00 | ty << 5 | u32::from(s) << 4 | rn) as u16, (0xf000 | rd << 8 | rm) as u16)
}

/// A7.7.186/184/223/221 SXTH/SXTB/UXTH/UXTB T2: `11111010 0 op:3 1111 | 1111 Rd 1 0 rot Rm`
/// (op 0 SXTH, 1 UXTH, 4 SXTB, 5 UXTB).
fn ext32(op: u32, rd: u32, rm: u32, rot: u32) -> (u16, u16) {
    ((0xfa0f | op << 4) as u16, (0xf080 | rd << 8 | rot << 4 | rm) as u16)
}

/// A7.7.111/112/110/113 REV/REV16/RBIT/REVSH T2: `11111010 1001 Rm | 1111 Rd 10 op:2 Rm`.
fn rev32(op: u32, rd: u32, rm: u32) -> (u16, u16) {
    ((0xfa90 | rm) as u16, (0xf080 | rd << 8 | op << 4 | rm) as u16)
}

/// A7.7.24 CLZ T1: `11111010 1011 Rm | 1111 Rd 1000 Rm`.
fn clz32(rd: u32, rm: u32) -> (u16, u16) {
    ((0xfab0 | rm) as u16, (0xf080 | rd << 8 | rm) as u16)
}

/// A7.7.84 MUL T2 (Ra = 1111) / A7.7.74 MLA T1 / A7.7.75 MLS T1:
/// `11111011 0000 Rn | Ra Rd 00 op Rm`.
fn mul32(mls: bool, rd: u32, rn: u32, rm: u32, ra: u32) -> (u16, u16) {
    ((0xfb00 | rn) as u16, (ra << 12 | rd << 8 | u32::from(mls) << 4 | rm) as u16)
}

/// A7.7.149 SMULL / A7.7.204 UMULL / A7.7.138 SMLAL / A7.7.203 UMLAL T1:
/// `11111011 1 op:3 Rn | RdLo RdHi 0000 Rm` (op 0, 2, 4, 6).
fn long_mul32(op: u32, lo: u32, hi: u32, rn: u32, rm: u32) -> (u16, u16) {
    ((0xfb80 | op << 4 | rn) as u16, (lo << 12 | hi << 8 | rm) as u16)
}

/// A7.7.127 SDIV / A7.7.195 UDIV T1: `11111011 10U1 Rn | 1111 Rd 1111 Rm`.
fn div32(unsigned: bool, rd: u32, rn: u32, rm: u32) -> (u16, u16) {
    ((0xfb90 | u32::from(unsigned) << 5 | rn) as u16, (0xf0f0 | rd << 8 | rm) as u16)
}

/// Single loads and stores by kind: STRB, STRH, STR, LDRB, LDRH, LDR, LDRSB, LDRSH; their
/// access sizes.
const KIND_SIZE: [u32; 8] = [1, 2, 4, 1, 2, 4, 1, 2];
/// A5.3.10 / A5.3.9 / A5.3.8 / A5.3.7 (immediate, 12-bit) T2/T3 and LDRSB/LDRSH T1:
/// `11111000 1 size L Rn | Rt imm12` (signed loads: `11111001 1 ...`).
const LDST_IMM12: [u32; 8] = [0xf880, 0xf8a0, 0xf8c0, 0xf890, 0xf8b0, 0xf8d0, 0xf990, 0xf9b0];
/// The same with an 8-bit immediate (T4 / T3 / T2: `Rt 1 P U W imm8`) or a register offset
/// (T2: `Rt 000000 imm2 Rm`).
const LDST_IMM8: [u32; 8] = [0xf800, 0xf820, 0xf840, 0xf810, 0xf830, 0xf850, 0xf910, 0xf930];

fn ldst_imm12(kind: usize, rt: u32, rn: u32, imm12: u32) -> (u16, u16) {
    ((LDST_IMM12[kind] | rn) as u16, (rt << 12 | imm12) as u16)
}

fn ldst_imm8(kind: usize, rt: u32, rn: u32, imm8: u32, p: bool, u: bool, w: bool) -> (u16, u16) {
    (
        (LDST_IMM8[kind] | rn) as u16,
        (rt << 12 | 0x800 | u32::from(p) << 10 | u32::from(u) << 9 | u32::from(w) << 8 | imm8) as u16,
    )
}

fn ldst_reg32(kind: usize, rt: u32, rn: u32, rm: u32, shift: u32) -> (u16, u16) {
    ((LDST_IMM8[kind] | rn) as u16, (rt << 12 | shift << 4 | rm) as u16)
}

/// A7.7.50 LDRD / A7.7.166 STRD (immediate) T1: `1110100 P U 1 W L Rn | Rt Rt2 imm8`.
#[allow(clippy::too_many_arguments)]
fn dual32(load: bool, rt: u32, rt2: u32, rn: u32, imm8: u32, p: bool, u: bool, w: bool) -> (u16, u16) {
    assert!(p || w, "P = W = 0 is the exclusive/table-branch space");
    (
        (0xe840 | u32::from(p) << 8 | u32::from(u) << 7 | u32::from(w) << 5 | u32::from(load) << 4 | rn)
            as u16,
        (rt << 12 | rt2 << 8 | imm8) as u16,
    )
}

/// A7.7.40/41 LDM/LDMDB, A7.7.156/157 STM/STMDB T2/T1: `1110100 op:2 0 W L Rn | list`
/// (op 01 increment after, 10 decrement before).
fn multi32(load: bool, db: bool, w: bool, rn: u32, list: u32) -> (u16, u16) {
    ((if db { 0xe900 } else { 0xe880 } | u32::from(w) << 5 | u32::from(load) << 4 | rn) as u16, list as u16)
}

/// A7.7.12 B T3: `11110 S cond imm6 | 10 J1 0 J2 imm11`, offset S:J2:J1:imm6:imm11:'0'.
fn bcond32(cond: u32, off: i32) -> (u16, u16) {
    assert!(off % 2 == 0 && (-(1 << 20)..(1 << 20)).contains(&off) && cond < 14);
    let v = off as u32;
    let (s, j2, j1) = ((v >> 20) & 1, (v >> 19) & 1, (v >> 18) & 1);
    (
        (0xf000 | s << 10 | cond << 6 | ((v >> 12) & 63)) as u16,
        (0x8000 | j1 << 13 | j2 << 11 | ((v >> 1) & 0x7ff)) as u16,
    )
}

/// A7.7.12 B T4 / A7.7.18 BL T1: `11110 S imm10 | 1 L J1 1 J2 imm11`, offset
/// S:I1:I2:imm10:imm11:'0' with I1 = NOT(J1 EOR S), I2 = NOT(J2 EOR S).
fn b32(link: bool, off: i32) -> (u16, u16) {
    assert!(off % 2 == 0 && (-(1 << 24)..(1 << 24)).contains(&off));
    let v = off as u32;
    let (s, i1, i2) = ((v >> 24) & 1, (v >> 23) & 1, (v >> 22) & 1);
    let (j1, j2) = ((i1 ^ s) ^ 1, (i2 ^ s) ^ 1);
    (
        (0xf000 | s << 10 | ((v >> 12) & 0x3ff)) as u16,
        (0x9000 | u32::from(link) << 14 | j1 << 13 | j2 << 11 | ((v >> 1) & 0x7ff)) as u16,
    )
}

/// A7.7.82 MRS T1 (SYSm 0: APSR): `11110011 1110 1111 | 1000 Rd SYSm`.
fn mrs32(rd: u32) -> (u16, u16) {
    (0xf3ef, (0x8000 | rd << 8) as u16)
}

/// A7.7.83 MSR T1 (APSR_nzcvq, mask 0b10): `11110011 1000 Rn | 1000 1000 SYSm`.
fn msr32(rn: u32) -> (u16, u16) {
    ((0xf380 | rn) as u16, 0x8800)
}

/// A7.7.52 LDREX T1: `11101000 0101 Rn | Rt 1111 imm8`.
fn ldrex32(rt: u32, rn: u32) -> (u16, u16) {
    ((0xe850 | rn) as u16, (rt << 12 | 0xf00) as u16)
}

/// A7.7.167 STREX T1: `11101000 0100 Rn | Rt Rd imm8`.
fn strex32(rd: u32, rt: u32, rn: u32) -> (u16, u16) {
    ((0xe840 | rn) as u16, (rt << 12 | rd << 8) as u16)
}

/// A7.7.23 CLREX T1.
const CLREX32: (u16, u16) = (0xf3bf, 0x8f2f);

/// The modified immediate (A5.3.2 ThumbExpandImm) for `value`, if it has one.
fn mod_imm(value: u32) -> Option<u32> {
    (0..4096).find(|&i| thumb_expand_imm(i).map(|(v, _)| v) == Some(value))
}

// ---------------------------------------------------------------------------------------------
// The program generator.
// ---------------------------------------------------------------------------------------------

/// A generated program and the machine state it starts from.
struct Program {
    /// Code from [`ORIGIN`] on.
    code: Vec<u16>,
    /// Instruction addresses (not data islands), with whether the instruction is meant to
    /// decode to a defined instruction.
    insns: Vec<(u32, bool)>,
    main: u32,
    handler: u32,
    systick_isr: u32,
    /// r0..r12 and the APSR flags at reset.
    regs: [u32; 13],
    apsr: u32,
    /// Initial contents of the data RAM and of the code scratch area.
    data: Vec<u8>,
    scratch: Vec<u8>,
    /// `run` budgets, in order (the run stops early at any `Stop` but `Budget` and
    /// `StopPoint`).
    budgets: Vec<u64>,
    /// `Machine::set_stop_at`, for some programs.
    stop_at: Option<u32>,
}

struct Gen {
    rng: Rng,
    code: Vec<u16>,
    insns: Vec<(u32, bool)>,
    subs: Vec<u32>,
    /// Data islands inside the code: (address, bytes).
    islands: Vec<(u32, u32)>,
    /// A self-modifying loop's patched instruction: `adds rX, #imm` at this address.
    smc_slot: Option<u32>,
    /// Writing a subroutine whose LR is not saved (no calls allowed).
    leaf: bool,
    /// Calls may target subroutines below this index only.
    callable: usize,
    /// Whether each of [`PTR`] was last set to an address in data RAM.
    in_data: [bool; 3],
}

impl Gen {
    fn below(&mut self, n: u32) -> u32 {
        self.rng.below(n)
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }

    fn pick(&mut self, set: &[u32]) -> u32 {
        set[self.below(set.len() as u32) as usize]
    }

    /// Index by weights.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        unreachable!()
    }

    fn here(&self) -> u32 {
        ORIGIN + 2 * self.code.len() as u32
    }

    fn t16(&mut self, h: u16) {
        assert!(!is_32bit(h), "{h:04x} is not a 16-bit encoding");
        self.insns.push((self.here(), true));
        self.code.push(h);
    }

    fn t32(&mut self, (h1, h2): (u16, u16)) {
        assert!(is_32bit(h1), "{h1:04x} {h2:04x} is not a 32-bit encoding");
        self.insns.push((self.here(), true));
        self.code.push(h1);
        self.code.push(h2);
    }

    /// A 32-bit branch, patched later.
    fn placeholder32(&mut self) {
        self.insns.push((self.here(), true));
        self.code.extend([0xf000, 0x8000]);
    }

    /// An instruction meant to be UNDEFINED (or otherwise to fault).
    fn t16_faulting(&mut self, h: u16) {
        self.insns.push((self.here(), false));
        self.code.push(h);
    }

    fn set(&mut self, at: u32, hw: &[u16]) {
        let i = ((at - ORIGIN) / 2) as usize;
        self.code[i..i + hw.len()].copy_from_slice(hw);
    }

    fn any_lo(&mut self) -> u32 {
        self.below(8)
    }

    /// Any of r0..r12 (to read).
    fn any(&mut self) -> u32 {
        self.below(13)
    }

    fn data_lo(&mut self) -> u32 {
        self.pick(DATA_LO)
    }

    fn data(&mut self) -> u32 {
        self.pick(DATA)
    }

    /// A random valid modified immediate (imm12).
    fn rand_mod_imm(&mut self) -> u32 {
        loop {
            let imm12 = if self.chance(40) { self.below(256) } else { self.below(4096) };
            if thumb_expand_imm(imm12).is_some() {
                return imm12;
            }
        }
    }

    fn movw(&mut self, rd: u32, value: u32) {
        self.t32(movw32(false, rd, value & 0xffff));
        if value >> 16 != 0 || self.chance(20) {
            self.t32(movw32(true, rd, value >> 16));
        }
    }

    /// Jumps over `bytes` bytes of random data (a data island inside code pages).
    fn island(&mut self, bytes: u32) {
        let branch = self.here();
        self.placeholder32();
        let start = self.here();
        for _ in 0..bytes / 2 {
            let h = self.rng.u32() as u16;
            self.code.push(h);
        }
        if bytes > 0 {
            self.islands.push((start, bytes));
        }
        let off = self.here() as i32 - (branch as i32 + 4);
        let (h1, h2) = b32(false, off);
        self.set(branch, &[h1, h2]);
    }

    /// An address for a pointer register.
    fn target(&mut self) -> u32 {
        let align = |g: &mut Self, a: u32| match g.below(25) {
            0..=22 => a & !3,
            23 => a & !1,
            _ => a,
        };
        match self.below(100) {
            0..=89 => {
                let a = DATA_BASE + 0x1000 + self.below(0xc000);
                align(self, a)
            }
            90..=95 => {
                let a = SCRATCH + self.below(0x3000);
                align(self, a)
            }
            96..=97 if !self.islands.is_empty() => {
                let k = self.below(self.islands.len() as u32) as usize;
                let (start, len) = self.islands[k];
                let a = start + self.below(len / 2);
                align(self, a)
            }
            96..=98 => match self.below(4) {
                0 => 0x4000_0000 + 4 * self.below(0x1000),
                1 => 0x1000_0000 + 4 * self.below(0x1000),
                2 => DATA_BASE + DATA_SIZE + 4 * self.below(0x100),
                _ => CODE_BASE + CODE_SIZE + self.below(0x100),
            },
            _ if self.chance(40) => {
                if self.chance(70) {
                    DATA_BASE + DATA_SIZE - 4 * self.below(16)
                } else {
                    CODE_BASE + CODE_SIZE - 4 * self.below(16)
                }
            }
            _ => DATA_BASE + 0x1000 + 4 * self.below(0x3000),
        }
    }

    fn set_pointers(&mut self) {
        for (k, &p) in PTR.iter().enumerate() {
            let a = self.target();
            self.in_data[k] = (DATA_BASE..DATA_BASE + DATA_SIZE).contains(&a);
            self.movw(p, a);
        }
    }

    /// Brings the pointers into data RAM back into it (`movt rP, #0x2000`: RAM is 64 KiB), so
    /// that writeback does not walk them out of it over many passes.
    fn wrap_pointers(&mut self) {
        for (k, &p) in PTR.iter().enumerate() {
            if self.in_data[k] {
                self.t32(movw32(true, p, DATA_BASE >> 16));
            }
        }
    }

    // ---- one instruction (or a short group) the compiler translates ----

    fn simple(&mut self) {
        match self.weighted(&[6, 5, 6, 9, 3, 10, 8, 2, 3, 4, 3, 3, 3, 2, 2, 28, 4, 5, 2, 1]) {
            0 => {
                let (op, rd, rm, imm5) = (self.below(3), self.data_lo(), self.any_lo(), self.below(32));
                self.t16(shift_imm16(op, rd, rm, imm5));
            }
            1 => {
                let (sub, rd, rn) = (self.chance(50), self.data_lo(), self.any_lo());
                if self.chance(50) {
                    let rm = self.any_lo();
                    self.t16(addsub_reg16(sub, rd, rn, rm));
                } else {
                    let imm = self.below(8);
                    self.t16(addsub_imm3(sub, rd, rn, imm));
                }
            }
            2 => {
                let op = self.below(4);
                let rdn = if op == 1 { self.any_lo() } else { self.data_lo() };
                let imm8 = self.below(256);
                self.t16(imm8_16(op, rdn, imm8));
            }
            3 => {
                // A5.2.2 without the flag-setting register shifts (LSLS/LSRS/ASRS/RORS
                // Rdn, Rm: the compiler leaves those to the interpreter).
                let opc = loop {
                    let o = self.below(16);
                    if !matches!(o, 2 | 3 | 4 | 7) {
                        break o;
                    }
                };
                let rdn = if matches!(opc, 8 | 10 | 11) { self.any_lo() } else { self.data_lo() };
                let rm = self.any_lo();
                self.t16(dp16(opc, rdn, rm));
            }
            4 => match self.below(3) {
                0 => {
                    // ADD Rdn, Rm (either may be high; Rm may be SP)
                    let (rdn, rm) = (self.data(), if self.chance(15) { 13 } else { self.any() });
                    self.t16(hireg16(0, rdn, rm));
                }
                1 => {
                    let (rn, rm) = loop {
                        let (a, b) = (self.any(), self.any());
                        if a >= 8 || b >= 8 {
                            break (a, b);
                        }
                    };
                    self.t16(hireg16(1, rn, rm));
                }
                _ => {
                    let (rd, rm) = (self.data(), if self.chance(15) { 13 } else { self.any() });
                    self.t16(hireg16(2, rd, rm));
                }
            },
            5 => {
                let op = self.pick(&[0, 1, 2, 3, 4, 8, 10, 11, 13, 14]);
                let s = self.chance(50);
                let compare = s && matches!(op, 0 | 4 | 8 | 13) && self.chance(40);
                let rd = if compare { 15 } else { self.data() };
                let rn = if matches!(op, 2 | 3) && self.chance(40) { 15 } else { self.any() };
                let imm12 = self.rand_mod_imm();
                self.t32(dp_imm32(op, s, rd, rn, imm12));
            }
            6 => {
                let op = self.pick(&[0, 1, 2, 3, 4, 8, 10, 11, 13, 14]);
                let s = self.chance(50);
                let compare = s && matches!(op, 0 | 4 | 8 | 13) && self.chance(40);
                let rd = if compare { 15 } else { self.data() };
                let rn = if matches!(op, 2 | 3) && self.chance(40) { 15 } else { self.any() };
                let (rm, ty, imm5) = (self.any(), self.below(4), self.below(32));
                self.t32(dp_reg32(op, s, rd, rn, rm, ty, imm5));
            }
            7 => {
                // LSL/LSR/ASR/ROR.W by register without S (with S: see `unsupported`).
                let (ty, rd, rn, rm) = (self.below(4), self.data(), self.any(), self.any());
                self.t32(shift_reg32(ty, false, rd, rn, rm));
            }
            8 => {
                let rd = self.data();
                match self.below(4) {
                    0 | 1 => {
                        let (sub, rn, imm12) = (self.chance(50), self.any(), self.below(4096));
                        self.t32(addw32(sub, rd, rn, imm12));
                    }
                    2 => {
                        let v = self.rng.u32() & 0xffff;
                        self.t32(movw32(false, rd, v));
                    }
                    _ => {
                        let v = self.rng.u32() & 0xffff;
                        self.t32(movw32(true, rd, v));
                    }
                }
            }
            9 => {
                let (rd, lsb) = (self.data(), self.below(32));
                let width = 1 + self.below(32 - lsb);
                match self.below(4) {
                    0 => {
                        let rn = self.any();
                        self.t32(bfx32(false, rd, rn, lsb, width));
                    }
                    1 => {
                        let rn = self.any();
                        self.t32(bfx32(true, rd, rn, lsb, width));
                    }
                    2 => {
                        let rn = self.any();
                        self.t32(bfi32(rd, rn, lsb, width));
                    }
                    _ => self.t32(bfi32(rd, 15, lsb, width)),
                }
            }
            10 => {
                let (rd, rm) = (self.data(), self.any());
                match self.below(3) {
                    0 => self.t32(clz32(rd, rm)),
                    1 => {
                        let op = self.below(4);
                        self.t32(rev32(op, rd, rm));
                    }
                    _ => {
                        let (rd, rm, op) = (self.data_lo(), self.any_lo(), self.pick(&[0, 1, 3]));
                        self.t16(rev16(op, rd, rm));
                    }
                }
            }
            11 => {
                if self.chance(50) {
                    let (opc, rd, rm) = (self.below(4), self.data_lo(), self.any_lo());
                    self.t16(ext16(opc, rd, rm));
                } else {
                    let (op, rd, rm, rot) =
                        (self.pick(&[0, 1, 4, 5]), self.data(), self.any(), self.below(4));
                    self.t32(ext32(op, rd, rm, rot));
                }
            }
            12 => {
                let rd = self.data();
                let (rn, rm) = (self.any(), self.any());
                match self.below(4) {
                    0 => {
                        let (rdm, rn) = (self.data_lo(), self.any_lo());
                        self.t16(dp16(13, rdm, rn));
                    }
                    1 => self.t32(mul32(false, rd, rn, rm, 15)),
                    2 => {
                        let ra = self.any();
                        self.t32(mul32(false, rd, rn, rm, ra));
                    }
                    _ => {
                        let ra = self.any();
                        self.t32(mul32(true, rd, rn, rm, ra));
                    }
                }
            }
            13 => {
                let lo = self.data();
                let hi = loop {
                    let h = self.data();
                    if h != lo {
                        break h;
                    }
                };
                let (op, rn, rm) = (self.pick(&[0, 2, 4, 6]), self.any(), self.any());
                self.t32(long_mul32(op, lo, hi, rn, rm));
            }
            14 => self.divide(),
            15 => self.load_store(),
            16 => self.dual(),
            17 => self.multiple(),
            18 => match self.below(3) {
                0 => {
                    let (rd, imm8) = (self.data_lo(), self.below(256));
                    self.t16(adr16(rd, imm8));
                }
                1 => {
                    let (rd, imm8) = (self.data_lo(), self.below(256));
                    self.t16(add_sp16(rd, imm8));
                }
                _ => {
                    let (rt, imm8) = (self.data_lo(), self.below(256));
                    self.t16(ldr_lit16(rt, imm8));
                }
            },
            _ => self.t16(NOP16),
        }
    }

    /// UDIV/SDIV, sometimes set up for divide by zero or INT_MIN / -1.
    fn divide(&mut self) {
        let (rd, unsigned) = (self.data(), self.chance(50));
        match self.below(4) {
            0 => {
                // x / 0: 0 (DIV_0_TRP is clear)
                let (rn, rm) = (self.any(), self.data());
                self.t32(dp_imm32(2, false, rm, 15, 0));
                self.t32(div32(unsigned, rd, rn, rm));
            }
            1 => {
                // INT_MIN / -1 (signed: INT_MIN; unsigned: 0)
                let rn = self.data();
                let rm = loop {
                    let r = self.data();
                    if r != rn {
                        break r;
                    }
                };
                self.t32(dp_imm32(2, false, rn, 15, mod_imm(0x8000_0000).unwrap()));
                self.t32(dp_imm32(3, false, rm, 15, 0)); // mvn rm, #0
                self.t32(div32(unsigned, rd, rn, rm));
            }
            _ => {
                let (rn, rm) = (self.any(), self.any());
                self.t32(div32(unsigned, rd, rn, rm));
            }
        }
    }

    /// A base register for a single access: mostly a pointer, rarely anything.
    fn base(&mut self, low: bool) -> u32 {
        if self.below(1000) < 8 {
            if low {
                self.any_lo()
            } else {
                self.any()
            }
        } else if low {
            self.pick(PTR_LO)
        } else {
            self.pick(PTR)
        }
    }

    /// A small index in a data register (`uxtb`/`ubfx`/`movs`): its number.
    fn small_index(&mut self, low: bool) -> u32 {
        let ri = if low { self.data_lo() } else { self.data() };
        match self.below(3) {
            0 if ri < 8 => {
                let rj = self.any_lo();
                self.t16(ext16(3, ri, rj));
            }
            1 if ri < 8 => {
                let v = self.below(256);
                self.t16(imm8_16(0, ri, v));
            }
            _ => {
                let (rj, width) = (self.any(), 1 + self.below(10));
                let lsb = self.below(33 - width);
                self.t32(bfx32(true, ri, rj, lsb, width));
            }
        }
        ri
    }

    fn load_store(&mut self) {
        let load = self.chance(55);
        match self.weighted(&[25, 10, 8, 20, 22, 10, 5]) {
            0 => {
                // 16-bit immediate offset: STR/LDR (x4), STRB/LDRB (x1), STRH/LDRH (x2)
                let opa = self.pick(&[0b01100, 0b01110, 0b10000]) | u32::from(load);
                let rt = if load { self.data_lo() } else { self.any_lo() };
                let (rn, imm5) = (self.base(true), self.below(32));
                self.t16(ldst_imm16(opa, rt, rn, imm5));
            }
            1 => {
                let rm = self.small_index(true);
                let opb = self.below(8);
                let rt = if opb >= 3 { self.data_lo() } else { self.any_lo() };
                let rn = self.base(true);
                self.t16(ldst_reg16(opb, rt, rn, rm));
            }
            2 => {
                // SP-relative, above anything pushed (offsets 96..1020)
                let rt = if load { self.data_lo() } else { self.any_lo() };
                let imm8 = 24 + self.below(232);
                self.t16(ldst_sp16(load, rt, imm8));
            }
            3 => {
                let kind = if load { 3 + self.below(5) as usize } else { self.below(3) as usize };
                let rt = if load { self.data() } else { self.any() };
                let rn = self.base(false);
                let mut imm12 = if self.chance(80) { self.below(256) } else { self.below(4096) };
                if self.chance(85) {
                    imm12 &= !(KIND_SIZE[kind] - 1);
                }
                self.t32(ldst_imm12(kind, rt, rn, imm12));
            }
            4 => {
                // negative offset, pre-indexed or post-indexed with writeback
                let kind = if load { 3 + self.below(5) as usize } else { self.below(3) as usize };
                let rn = self.base(false);
                let rt = loop {
                    let r = if load { self.data() } else { self.any() };
                    if r != rn {
                        break r;
                    }
                };
                let (p, w) = match self.below(3) {
                    0 => (true, false),
                    1 => (true, true),
                    _ => (false, true),
                };
                // P = 1, U = 1, W = 0 is LDRT/STRT: positive offsets use the 12-bit form.
                let u = (w || !p) && self.chance(50);
                let limit = if self.chance(80) { 16 } else { 256 };
                let mut imm8 = self.below(limit);
                if self.chance(85) {
                    imm8 &= !(KIND_SIZE[kind] - 1);
                }
                self.t32(ldst_imm8(kind, rt, rn, imm8, p, u, w));
            }
            5 => {
                let rm = self.small_index(false);
                let kind = if load { 3 + self.below(5) as usize } else { self.below(3) as usize };
                let rt = if load { self.data() } else { self.any() };
                let (rn, shift) = (self.base(false), self.below(4));
                self.t32(ldst_reg32(kind, rt, rn, rm, shift));
            }
            _ => {
                let (rt, imm8) = (self.data_lo(), self.below(256));
                self.t16(ldr_lit16(rt, imm8));
            }
        }
    }

    fn dual(&mut self) {
        let load = self.chance(50);
        let rn = self.pick(PTR);
        let rt = if load { self.data() } else { self.any() };
        let rt2 = loop {
            let r = if load { self.data() } else { self.any() };
            if !load || r != rt {
                break r;
            }
        };
        let (p, w) = match self.below(3) {
            0 => (true, false),
            1 => (true, true),
            _ => (false, true),
        };
        let (u, small) = (self.chance(70), self.chance(70));
        let imm8 = self.below(if small { 16 } else { 256 });
        let (rt, rt2) = if !load && w && (rt == rn || rt2 == rn) { (0, 1) } else { (rt, rt2) };
        self.t32(dual32(load, rt, rt2, rn, imm8, p, u, w));
    }

    fn list(&mut self, regs: &[u32], min: u32) -> u32 {
        loop {
            let l = regs.iter().fold(0u32, |l, &r| if self.chance(40) { l | 1 << r } else { l });
            if l.count_ones() >= min {
                return l;
            }
        }
    }

    fn multiple(&mut self) {
        let load = self.chance(50);
        if self.chance(50) {
            let rn = self.pick(PTR_LO);
            let list = self.list(DATA_LO, 1);
            self.t16(ldm16(load, rn, list));
        } else {
            let rn = self.pick(PTR);
            let (db, w) = (self.chance(50), self.chance(60));
            let list = if load {
                self.list(DATA, 2)
            } else {
                let mut l = self.list(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14], 2);
                if w {
                    l &= !(1 << rn);
                }
                l | 1 << self.data()
            };
            self.t32(multi32(load, db, w, rn, list));
        }
    }

    // ---- statements: simple, control flow, stack, rarities ----

    fn stmt(&mut self, in_loop: bool) {
        let calls = if self.callable > 0 && !self.leaf { 5 } else { 0 };
        let smc = if in_loop && self.smc_slot.is_some() { 2 } else { 0 };
        match self.weighted(&[70, 8, 1, 5, calls, 3, 5, smc]) {
            0 => self.simple(),
            1 => {
                // b<cond> over a few instructions (16-bit, sometimes 32-bit)
                let (cond, wide) = (self.below(14), self.chance(25));
                let at = self.here();
                if wide {
                    self.placeholder32();
                } else {
                    self.t16(0);
                }
                for _ in 0..1 + self.below(4) {
                    self.simple();
                }
                let off = self.here() as i32 - (at as i32 + 4);
                if wide {
                    let (h1, h2) = bcond32(cond, off);
                    self.set(at, &[h1, h2]);
                } else {
                    self.set(at, &[bcond16(cond, off)]);
                }
            }
            2 => {
                // b over dead code
                let at = self.here();
                self.t16(0);
                self.simple();
                let off = self.here() as i32 - (at as i32 + 4);
                self.set(at, &[b16(off)]);
            }
            3 => {
                let (nonzero, rn) = (self.chance(50), self.any_lo());
                let at = self.here();
                self.t16(0);
                for _ in 0..1 + self.below(3) {
                    self.simple();
                }
                let off = (self.here() - (at + 4)) as i32;
                if off < 128 {
                    self.set(at, &[cbz16(nonzero, rn, off as u32)]);
                } else {
                    self.set(at, &[b16(off)]);
                }
            }
            4 => {
                let k = self.below(self.callable as u32) as usize;
                let sub = self.subs[k];
                if self.chance(85) {
                    let off = sub as i32 - (self.here() as i32 + 4);
                    self.t32(b32(true, off));
                } else {
                    // blx r12 (the compiler leaves BLX to the interpreter)
                    self.movw(12, sub | 1);
                    self.t16(bx16(true, 12));
                }
            }
            5 => self.push_pop(),
            6 => self.unsupported(in_loop),
            _ => self.smc(),
        }
    }

    /// PUSH ... POP of the same number of registers around a few instructions.
    fn push_pop(&mut self) {
        let wide = self.chance(40);
        let (push, pop) = if wide {
            let l = self.list(DATA, 2);
            let mut p = self.list(DATA, 2);
            while p.count_ones() != l.count_ones() {
                p = self.list(DATA, 2);
            }
            (l, p)
        } else {
            let l = self.list(&[0, 1, 2, 3, 4, 5, 6, 7], 1);
            // Pointers are popped back where they were; data registers may swap.
            let ptrs = l & 0xc0;
            let n = (l & 0x3f).count_ones();
            let mut p = self.list(DATA_LO, 0);
            while p.count_ones() != n {
                p = self.list(DATA_LO, 0);
            }
            (l, p | ptrs)
        };
        if wide {
            self.t32(multi32(false, true, true, 13, push));
        } else {
            self.t16(pushpop16(false, false, push));
        }
        for _ in 0..self.below(4) {
            self.simple();
        }
        if wide {
            self.t32(multi32(true, false, true, 13, pop));
        } else {
            self.t16(pushpop16(true, false, pop));
        }
    }

    /// Instructions the compiler does not translate (blocks end before them).
    fn unsupported(&mut self, in_loop: bool) {
        // BKPT and UDF fault (the handler skips them): not in loop bodies, where they would
        // fault on every pass.
        let faulting = if in_loop { 0 } else { 1 };
        match self.weighted(&[6, 2, 1, 2, 3, 2, faulting, faulting]) {
            0 => self.it_block(),
            1 => {
                let rd = self.data();
                self.t32(mrs32(rd));
            }
            2 => {
                let rn = self.any();
                self.t32(msr32(rn));
            }
            3 => {
                let (unsigned, rd, rn) = (self.chance(50), self.data(), self.any());
                let (sh, amount) = (self.below(2), self.below(32));
                let amount = if sh == 1 && amount == 0 { 1 } else { amount };
                let sat = self.below(32);
                self.t32(sat32(unsigned, sh, rd, rn, amount, sat));
            }
            4 => {
                // flag-setting shifts by a register
                if self.chance(50) {
                    let (opc, rdn, rm) = (self.pick(&[2, 3, 4, 7]), self.data_lo(), self.any_lo());
                    self.t16(dp16(opc, rdn, rm));
                } else {
                    let (ty, rd, rn, rm) = (self.below(4), self.data(), self.any(), self.any());
                    self.t32(shift_reg32(ty, true, rd, rn, rm));
                }
            }
            5 => {
                let rn = self.pick(PTR);
                match self.below(3) {
                    0 => self.t32(CLREX32),
                    _ => {
                        let rt = self.data();
                        self.t32(ldrex32(rt, rn));
                        let (rd, rt2) = (self.data(), self.any());
                        let rt2 = if rt2 == rd { rn } else { rt2 };
                        self.t32(strex32(rd, rt2, rn));
                    }
                }
            }
            6 => {
                // BKPT (not semihosting): a debug event, HardFault, skipped by the handler
                let imm = self.below(0xab);
                self.t16_faulting(bkpt16(imm));
            }
            _ => {
                let imm = self.below(256);
                self.t16_faulting(udf16(imm));
            }
        }
    }

    /// IT with 1..4 conditional instructions.
    fn it_block(&mut self) {
        let n = 1 + self.below(4);
        let fc = self.below(14);
        let mut mask = 1 << (4 - n);
        for k in 0..n - 1 {
            let then = self.chance(50);
            mask |= ((fc & 1) ^ u32::from(!then)) << (3 - k);
        }
        self.t16(it16(fc, mask));
        for _ in 0..n {
            match self.below(8) {
                0 => {
                    let (op, rd, rm, imm5) = (self.below(3), self.data_lo(), self.any_lo(), self.below(32));
                    self.t16(shift_imm16(op, rd, rm, imm5));
                }
                1 => {
                    let (op, rdn, imm8) = (self.below(4), self.data_lo(), self.below(256));
                    self.t16(imm8_16(op, rdn, imm8));
                }
                2 | 3 => {
                    let (opc, rdn, rm) = (self.below(16), self.data_lo(), self.any_lo());
                    self.t16(dp16(opc, rdn, rm));
                }
                4 => {
                    let (sub, rd, rn, imm) = (self.chance(50), self.data_lo(), self.any_lo(), self.below(8));
                    self.t16(addsub_imm3(sub, rd, rn, imm));
                }
                5 => {
                    let load = self.chance(50);
                    let opa = self.pick(&[0b01100, 0b01110, 0b10000]) | u32::from(load);
                    let rt = if load { self.data_lo() } else { self.any_lo() };
                    let (rn, imm5) = (self.pick(PTR_LO), self.below(32));
                    self.t16(ldst_imm16(opa, rt, rn, imm5));
                }
                6 => {
                    let op = self.pick(&[0, 8, 13]);
                    let (rd, rn, imm12) = (self.data(), self.any(), self.rand_mod_imm());
                    let s = self.chance(50);
                    self.t32(dp_imm32(op, s, rd, rn, imm12));
                }
                _ => {
                    let (rd, rn, rm) = (self.data(), self.any(), self.any());
                    self.t32(mul32(false, rd, rn, rm, 15));
                }
            }
        }
    }

    /// Toggles the loop's patched instruction between `adds rX, #k` and `adds rX^1, #k`.
    fn smc(&mut self) {
        // Once a pass, so the loop runs both versions.
        let Some(slot) = self.smc_slot.take() else { return };
        let a = self.data_lo();
        let b = loop {
            let r = self.data_lo();
            if r != a {
                break r;
            }
        };
        self.movw(a, slot);
        self.t16(ldst_imm16(0b10001, b, a, 0)); // ldrh b, [a]
        self.t32(dp_imm32(4, false, b, b, mod_imm(0x100).unwrap())); // eor.w b, b, #0x100
        self.t16(ldst_imm16(0b10000, b, a, 0)); // strh b, [a]
    }

    /// A counted loop: r8 counts the passes.
    fn counted_loop(&mut self) {
        let tight = self.chance(35);
        let n = if tight { 2 + self.below(30) } else { 3 + self.below(20) };
        if tight {
            // Start a tight loop where it fits in its page, so that it compiles to one block
            // that loops in host code.
            let room = PAGE - self.here() % PAGE;
            if room < 6 * n + 40 {
                self.island((room + PAGE - 4) % PAGE);
            }
        }
        let long = self.chance(25);
        let count = if tight || long { 50 + self.below(3000) } else { 1 + self.below(300) };
        let up = self.chance(30);
        let count = if up { count.clamp(1, 255) } else { count };
        // Pointers: set each pass (inside), or set before the loop and wrapped into RAM each
        // pass, or left to wander with writeback.
        let inside = self.chance(40);
        let wrap = !inside && self.chance(60);
        if !inside && self.chance(70) {
            self.set_pointers();
        }
        if up {
            self.t32(dp_imm32(2, false, COUNTER, 15, 0)); // mov.w r8, #0
        } else {
            self.t32(movw32(false, COUNTER, count));
        }
        let top = self.here();
        if inside {
            self.set_pointers();
        } else if wrap {
            self.wrap_pointers();
        }
        let smc = !tight && self.chance(15);
        if smc {
            let (rx, imm8) = (self.pick(&[0, 2, 4]), self.below(256));
            self.smc_slot = Some(self.here());
            self.t16(imm8_16(2, rx, imm8));
        }
        for _ in 0..n {
            if tight {
                self.simple();
            } else {
                self.stmt(true);
            }
        }
        if smc {
            self.smc();
        }
        if up {
            self.t32(dp_imm32(8, false, COUNTER, COUNTER, 1)); // add.w r8, r8, #1
            self.t32(dp_imm32(13, true, 15, COUNTER, count)); // cmp.w r8, #count
        } else {
            self.t32(dp_imm32(13, true, COUNTER, COUNTER, 1)); // subs.w r8, r8, #1
        }
        let off = top as i32 - (self.here() as i32 + 4);
        if off >= -256 && self.chance(80) {
            self.t16(bcond16(1, off)); // bne
        } else {
            self.t32(bcond32(1, off));
        }
        self.smc_slot = None;
    }

    fn subroutine(&mut self) {
        self.subs.push(self.here());
        let kind = self.below(3);
        self.leaf = kind == 0;
        match kind {
            0 => {}
            1 => self.t16(pushpop16(false, true, 1 << 4)), // push {r4, lr}
            _ => self.t16(pushpop16(false, true, 0)),      // push {lr}
        }
        for _ in 0..2 + self.below(10) {
            self.stmt(false);
        }
        match kind {
            0 => self.t16(bx16(false, 14)),
            1 => {
                if self.chance(50) {
                    self.t16(pushpop16(true, true, 1 << 4)); // pop {r4, pc}
                } else {
                    self.t32(multi32(true, false, true, 13, 1 << 4 | 1 << 15)); // ldmia.w sp!, {r4, pc}
                }
            }
            _ => self.t32(ldst_imm8(5, 15, 13, 4, false, true, true)), // ldr.w pc, [sp], #4
        }
        self.leaf = false;
        self.callable = self.subs.len();
    }
}

fn random_value(rng: &mut Rng) -> u32 {
    match rng.below(12) {
        0 => 0,
        1 => [1, u32::MAX, 0x8000_0000, 0x7fff_ffff, 0xffff, 0x8000][rng.below(6) as usize],
        2..=4 => rng.below(256),
        5 => rng.below(32),
        6 | 7 => DATA_BASE + rng.below(DATA_SIZE),
        _ => rng.u32(),
    }
}

/// SplitMix64's finaliser: each (seed, program index) gets a generator of its own.
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn generate(seed: u64, index: u64) -> Program {
    let mut g = Gen {
        rng: Rng(splitmix64(splitmix64(seed) ^ index) | 1),
        code: Vec::new(),
        insns: Vec::new(),
        subs: Vec::new(),
        islands: Vec::new(),
        smc_slot: None,
        leaf: false,
        callable: 0,
        in_data: [false; 3],
    };
    // HardFault (and every other fault): skip the faulting instruction and return.
    let handler = g.here();
    g.t16(ldst_sp16(true, 0, 6)); //  ldr  r0, [sp, #24]   stacked PC
    g.t16(ldst_imm16(0b10001, 1, 0, 0)); // ldrh r1, [r0]
    g.t16(shift_imm16(1, 1, 1, 11)); // lsrs r1, r1, #11
    g.t16(imm8_16(2, 0, 2)); //           adds r0, #2
    g.t16(imm8_16(1, 1, 0b11101)); //     cmp  r1, #29        32-bit encodings start 0b11101..
    g.t16(bcond16(3, 0)); //              bcc  1f
    g.t16(imm8_16(2, 0, 2)); //           adds r0, #2
    g.t16(ldst_sp16(false, 0, 6)); // 1: str  r0, [sp, #24]
    g.movw(2, FAULTS); //                 r2, r3 are stacked too: count the fault
    g.t16(ldst_imm16(0b01101, 3, 2, 0)); // ldr r3, [r2]
    g.t16(imm8_16(2, 3, 1)); //             adds r3, #1
    g.t16(ldst_imm16(0b01100, 3, 2, 0)); // str r3, [r2]
    g.t16(bx16(false, 14)); //            bx   lr

    // SysTick: count the interrupt.
    let systick_isr = g.here();
    g.movw(0, TICKS);
    g.t16(ldst_imm16(0b01101, 1, 0, 0)); // ldr r1, [r0]
    g.t16(imm8_16(2, 1, 1)); //             adds r1, #1
    g.t16(ldst_imm16(0b01100, 1, 0, 0)); // str r1, [r0]
    g.t16(bx16(false, 14));
    if g.chance(50) {
        let len = 16 + 2 * g.below(100);
        g.island(len);
    }
    for _ in 0..g.below(4) {
        g.subroutine();
    }
    let main = g.here();
    if g.chance(35) {
        let period = 200 + g.below(20_000);
        g.movw(0, 0xe000_e010);
        g.movw(1, period);
        g.t16(ldst_imm16(0b01100, 1, 0, 1)); // str r1, [r0, #4]   SYST_RVR
        g.t16(imm8_16(0, 1, 0));
        g.t16(ldst_imm16(0b01100, 1, 0, 2)); // str r1, [r0, #8]   SYST_CVR
        g.t16(imm8_16(0, 1, 7));
        g.t16(ldst_imm16(0b01100, 1, 0, 0)); // str r1, [r0]       SYST_CSR: on, interrupt
    }
    g.set_pointers();
    for _ in 0..2 + g.below(6) {
        if g.chance(65) {
            g.counted_loop();
        } else {
            for _ in 0..1 + g.below(12) {
                g.stmt(false);
            }
        }
    }
    // Semihosting SYS_EXIT (ADP_Stopped_ApplicationExit): Stop::Exit(0).
    g.t16(imm8_16(0, 0, 0x18));
    g.movw(1, 0x2_0026);
    g.t16(bkpt16(0xab));
    g.t16(b16(-4)); // b .

    let mut regs = [0u32; 13];
    for (r, v) in regs.iter_mut().enumerate() {
        *v = if PTR.contains(&(r as u32)) { g.target() } else { random_value(&mut g.rng) };
    }
    let apsr = g.rng.u32() & 0xf800_0000;
    let data: Vec<u8> = (0..DATA_SIZE).map(|_| g.rng.next() as u8).collect();
    let scratch = (SCRATCH..CODE_SIZE).map(|_| g.rng.next() as u8).collect();
    let calls = 3 + g.below(6);
    // A stop address at some instruction of the main program (reached on every pass when it
    // is in a loop: many calls then).
    let stop_at = g.chance(20).then(|| {
        let main_insns: Vec<u32> = g.insns.iter().map(|&(a, _)| a).filter(|&a| a >= main).collect();
        main_insns[g.below(main_insns.len() as u32) as usize]
    });
    let calls = if stop_at.is_some() { calls * 8 } else { calls };
    let budgets = (0..calls)
        .map(|_| {
            u64::from(match g.below(10) {
                0..=2 => 1 + g.below(3000),
                3..=7 => 3000 + g.below(60_000),
                _ => 60_000 + g.below(140_000),
            })
        })
        .collect();
    Program {
        code: g.code,
        insns: g.insns,
        main,
        handler,
        systick_isr,
        regs,
        apsr,
        data,
        scratch,
        budgets,
        stop_at,
    }
}

fn board() -> Board {
    Board::parse(
        &format!(
            "name = \"jit-blocks\"\ncpu = \"cortex-m3\"\nclock_hz = 25000000\n\
             [[memory]]\nname = \"code\"\nbase = {CODE_BASE}\nsize = {CODE_SIZE}\n\
             [[memory]]\nname = \"data\"\nbase = {DATA_BASE}\nsize = {DATA_SIZE}\n"
        ),
        "jit-blocks",
    )
    .expect("the board parses")
}

impl Program {
    fn code_bytes(&self) -> Vec<u8> {
        self.code.iter().flat_map(|h| h.to_le_bytes()).collect()
    }

    /// The machine after reset, with the program loaded and the registers set.
    fn machine(&self, board: &Board) -> Machine {
        let mut m = Machine::new(board).expect("machine");
        let mut vt = vec![0u8; ORIGIN as usize];
        let mut word = |n: usize, v: u32| vt[4 * n..4 * n + 4].copy_from_slice(&v.to_le_bytes());
        word(0, SP_INIT);
        word(1, self.main | 1);
        for n in 2..15 {
            word(n, self.handler | 1);
        }
        word(15, self.systick_isr | 1);
        assert!(m.poke(CODE_BASE, &vt));
        assert!(m.poke(ORIGIN, &self.code_bytes()), "program too large");
        assert!(m.poke(SCRATCH, &self.scratch));
        assert!(m.poke(DATA_BASE, &self.data));
        m.reset();
        m.set_stop_at(self.stop_at);
        assert_eq!(m.cpu.r[15], self.main);
        m.cpu.r[..13].copy_from_slice(&self.regs);
        m.cpu.set_apsr(self.apsr);
        m
    }

    fn listing(&self) -> String {
        let mut s = String::new();
        for (k, chunk) in self.code.chunks(16).enumerate() {
            let _ = write!(s, "  {:08x}:", ORIGIN + 32 * k as u32);
            for h in chunk {
                let _ = write!(s, " {h:04x}");
            }
            s.push('\n');
        }
        s
    }
}

/// The instructions from `pc` on, decoded from `m`'s memory.
fn disassemble(m: &Machine, pc: u32, count: usize) -> String {
    let mut s = String::new();
    let mut a = pc;
    for _ in 0..count {
        let Some(b) = m.peek(a, 4).or_else(|| m.peek(a, 2)) else { break };
        let h1 = u16::from_le_bytes([b[0], b[1]]);
        let h2 = if b.len() >= 4 { u16::from_le_bytes([b[2], b[3]]) } else { 0 };
        let (i, size) = decode(h1, h2);
        if size == 4 {
            let _ = writeln!(s, "    {a:08x}: {h1:04x} {h2:04x}  {i:?}");
        } else {
            let _ = writeln!(s, "    {a:08x}: {h1:04x}       {i:?}");
        }
        a += u32::from(size);
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Comparison.
// ---------------------------------------------------------------------------------------------

/// The first difference between two machines' observable state, if any.
fn difference(a: &Machine, b: &Machine) -> Option<String> {
    if a.cpu != b.cpu {
        for i in 0..16 {
            if a.cpu.r[i] != b.cpu.r[i] {
                return Some(format!("r{i}: 0x{:08x} vs 0x{:08x}", a.cpu.r[i], b.cpu.r[i]));
            }
        }
        let flags = |m: &Machine| (m.cpu.n, m.cpu.z, m.cpu.c, m.cpu.v, m.cpu.q);
        if flags(a) != flags(b) {
            return Some(format!("NZCVQ: {:?} vs {:?}", flags(a), flags(b)));
        }
        return Some(format!("cpu: {:?} vs {:?}", a.cpu, b.cpu));
    }
    if a.now != b.now {
        return Some(format!("now: {} vs {}", a.now, b.now));
    }
    if a.instret != b.instret {
        return Some(format!("instret: {} vs {}", a.instret, b.instret));
    }
    for (base, size) in [(CODE_BASE, CODE_SIZE), (DATA_BASE, DATA_SIZE)] {
        let (x, y) = (a.peek(base, size as usize).unwrap(), b.peek(base, size as usize).unwrap());
        if let Some(i) = x.iter().zip(y).position(|(p, q)| p != q) {
            return Some(format!("memory at 0x{:08x}: {:02x} vs {:02x}", base + i as u32, x[i], y[i]));
        }
    }
    let (sa, sb) = (format!("{:?}", a.sys), format!("{:?}", b.sys));
    if sa != sb {
        return Some(format!("system state: {sa} vs {sb}"));
    }
    None
}

const ENGINES: [(&str, Option<u32>); 3] =
    [("interpreter", None), ("jit(Some(1))", Some(1)), ("jit(Some(3))", Some(3))];

/// What one program did (on the interpreter).
struct Outcome {
    instret: u64,
    stop: Stop,
    faults: u32,
    ticks: u32,
    /// `Stop::StopPoint`s returned.
    stop_points: u32,
    /// Time each engine spent in `run` (compilation included).
    seconds: [f64; 3],
}

/// Runs `p` on the three engines; a report on the first mismatch.
fn check_program(board: &Board, seed: u64, index: u64, p: &Program) -> Result<Outcome, String> {
    let base = p.machine(board);
    let mut ms: Vec<Machine> = ENGINES
        .iter()
        .map(|(_, t)| {
            let mut m = base.clone();
            m.set_jit(*t);
            m
        })
        .collect();
    let mut stop = Stop::Budget;
    let mut seconds = [0.0; 3];
    let mut stop_points = 0;
    for (call, &budget) in p.budgets.iter().enumerate() {
        let stops: Vec<Stop> = ms
            .iter_mut()
            .zip(&mut seconds)
            .map(|(m, t)| {
                let started = std::time::Instant::now();
                let stop = m.run(budget);
                *t += started.elapsed().as_secs_f64();
                stop
            })
            .collect();
        for k in 1..ms.len() {
            let diff = if stops[k] != stops[0] {
                Some(format!("stop: {:?} vs {:?}", stops[0], stops[k]))
            } else {
                difference(&ms[0], &ms[k])
            };
            if let Some(d) = diff {
                return Err(report(board, seed, index, p, k, call, &d));
            }
        }
        stop = stops[0];
        stop_points += u32::from(stop == Stop::StopPoint);
        if !matches!(stop, Stop::Budget | Stop::StopPoint) {
            break;
        }
    }
    let m = &ms[0];
    // The handlers' counters (a stray store can overwrite them: each handler run retires at
    // least 8 instructions, which bounds them).
    let word = |a: u32| {
        let v = m.peek(a, 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        v.min((m.instret / 8) as u32)
    };
    Ok(Outcome { instret: m.instret, stop, faults: word(FAULTS), ticks: word(TICKS), stop_points, seconds })
}

/// A reproduction of a mismatch: the smallest single `run` budget that shows it (found by
/// bisection), the state there, the instructions at the divergence, and the program.
fn report(
    board: &Board,
    seed: u64,
    index: u64,
    p: &Program,
    engine: usize,
    call: usize,
    first: &str,
) -> String {
    let (name, threshold) = ENGINES[engine];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "program {index} (seed {seed}; replay with TWINBED_SEED={seed} TWINBED_PROGRAM={index}): \
         {name} differs from the interpreter after run call {call} (budgets {:?}): {first}",
        &p.budgets[..=call]
    );
    let base = p.machine(board);
    // Runs `budgets` (stopping early as `check_program` does).
    let run = |budgets: &[u64], jit: Option<u32>| {
        let mut m = base.clone();
        m.set_jit(jit);
        let mut stop = Stop::Budget;
        for &b in budgets {
            stop = m.run(b);
            if !matches!(stop, Stop::Budget | Stop::StopPoint) {
                break;
            }
        }
        (stop, m)
    };
    let differs = |budgets: &[u64]| {
        let (s0, m0) = run(budgets, None);
        let (s1, m1) = run(budgets, threshold);
        if s0 != s1 {
            Some(format!("stop: {s0:?} vs {s1:?}"))
        } else {
            difference(&m0, &m1)
        }
    };
    // The shortest reproduction: one `run` call if one shows it, else the calls before the
    // one that did and then that one; bisect the last budget.
    let total: u64 = p.budgets[..=call].iter().sum();
    let (prefix, last) = if differs(&[total]).is_some() {
        (Vec::new(), total)
    } else {
        (p.budgets[..call].to_vec(), p.budgets[call])
    };
    let with = |b: u64| [prefix.as_slice(), &[b]].concat();
    if differs(&with(last)).is_some() {
        let (mut lo, mut hi) = (0u64, last);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if differs(&with(mid)).is_some() {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let (_, before) = run(&with(lo), None);
        let (s0, m0) = run(&with(hi), None);
        let (s1, m1) = run(&with(hi), threshold);
        let _ = writeln!(
            s,
            "reproduction: run() with budgets {:?} differs ({}); with {:?} it agrees",
            with(hi),
            differs(&with(hi)).unwrap_or_default(),
            with(lo)
        );
        let _ = writeln!(
            s,
            "  before the last cycle: pc 0x{:08x}, now {}, instret {}",
            before.cpu.r[15], before.now, before.instret
        );
        let _ = writeln!(s, "  interpreter: {s0:?}, now {}, instret {}, {:?}", m0.now, m0.instret, m0.cpu);
        let _ = writeln!(s, "  {name}: {s1:?}, now {}, instret {}, {:?}", m1.now, m1.instret, m1.cpu);
        let _ = writeln!(s, "  instructions from pc 0x{:08x}:", before.cpu.r[15]);
        s.push_str(&disassemble(&before, before.cpu.r[15], 24));
    } else {
        let _ = writeln!(s, "(not reproducible from a fresh machine: state carried between machines?)");
    }
    let _ = writeln!(
        s,
        "initial registers r0..r12 {:08x?}, APSR 0x{:08x}, SP 0x{SP_INIT:08x}, main 0x{:08x}",
        p.regs, p.apsr, p.main
    );
    let _ = writeln!(s, "program halfwords (from 0x{ORIGIN:08x}; vector table below it):");
    s.push_str(&p.listing());
    s
}

// ---------------------------------------------------------------------------------------------
// Counting what the compiler did (its `jit` tracing events).
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct JitEvents {
    blocks: AtomicU64,
    instrs: AtomicU64,
    warnings: Mutex<Vec<String>>,
}

struct JitCounter(Arc<JitEvents>);

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for JitCounter {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "jit"
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        if let Some(n) = m.0.strip_prefix("compiled ").and_then(|r| r.split(' ').next()?.parse::<u64>().ok())
        {
            self.0.blocks.fetch_add(1, Ordering::Relaxed);
            self.0.instrs.fetch_add(n, Ordering::Relaxed);
        } else if *event.metadata().level() <= tracing::Level::WARN {
            self.0.warnings.lock().unwrap().push(m.0);
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Whether the compiler translates `i` (a rough copy of `jit::supported`, for the statistics).
fn compiled_kind(i: &Instr) -> bool {
    match *i {
        Instr::Dp { op, s, rd, op2, .. } => {
            let compare = matches!(op, DpOp::Tst | DpOp::Teq | DpOp::Cmp | DpOp::Cmn);
            let arith = matches!(
                op,
                DpOp::Add | DpOp::Adc | DpOp::Sub | DpOp::Sbc | DpOp::Rsb | DpOp::Cmp | DpOp::Cmn
            );
            let logical_flags = s != SetFlags::No && !arith && op != DpOp::Mul;
            (compare || rd < 15) && !(matches!(op2, Op2::RegReg { .. }) && logical_flags)
        }
        Instr::Adr { .. }
        | Instr::Movt { .. }
        | Instr::Bit { .. }
        | Instr::Ext { .. }
        | Instr::Bf { .. }
        | Instr::Mul { .. }
        | Instr::Div { .. }
        | Instr::LongMul { .. }
        | Instr::Str { .. }
        | Instr::Dual { .. }
        | Instr::Multi { .. }
        | Instr::B { .. }
        | Instr::Bl { .. }
        | Instr::Cbz { .. }
        | Instr::Bx { .. }
        | Instr::Hint(Hint::Nop) => true,
        Instr::Ldr { rt, .. } => rt < 15,
        _ => false,
    }
}

#[test]
fn compiled_blocks_match_the_interpreter() {
    let seed = std::env::var("TWINBED_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x6a17_b10cu64);
    let full = std::env::var("TWINBED_FULL").is_ok_and(|v| v != "0");
    let only: Option<u64> = std::env::var("TWINBED_PROGRAM").ok().and_then(|s| s.parse().ok());
    let programs: u64 = if full { 5000 } else { 300 };
    let indexes: Vec<u64> = match only {
        Some(i) => vec![i],
        None => (0..programs).collect(),
    };

    let events = Arc::new(JitEvents::default());
    let _guard = tracing::dispatcher::set_default(&tracing::Dispatch::new(JitCounter(events.clone())));

    let board = board();
    let started = std::time::Instant::now();
    let (mut total_instret, mut static_instrs, mut static_compiled) = (0u64, 0u64, 0u64);
    let (mut looped, mut exits, mut lockups, mut faulted, mut ticked, mut max_len) = (0, 0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    let mut seconds = [0.0; 3];
    let (mut total_faults, mut total_ticks, mut stop_points) = (0u64, 0u64, 0u64);
    for &index in &indexes {
        let p = generate(seed, index);
        assert!(p.code.len() * 2 + (ORIGIN as usize) < SCRATCH as usize, "program {index} too large");
        // Every instruction the generator meant to be defined decodes to one.
        for &(at, defined) in &p.insns {
            let i = ((at - ORIGIN) / 2) as usize;
            let (h1, h2) = (p.code[i], p.code.get(i + 1).copied().unwrap_or(0));
            let (instr, _) = decode(h1, h2);
            if defined {
                assert!(
                    !matches!(instr, Instr::Undef(_)),
                    "program {index}: the encoder made an undefined instruction {h1:04x} {h2:04x} at 0x{at:08x}"
                );
            }
            static_instrs += 1;
            static_compiled += u64::from(compiled_kind(&instr));
        }
        max_len = max_len.max(p.insns.len());
        match check_program(&board, seed, index, &p) {
            Ok(o) => {
                total_instret += o.instret;
                looped += u32::from(o.instret > 10 * p.insns.len() as u64);
                exits += u32::from(matches!(o.stop, Stop::Exit(_)));
                lockups += u32::from(matches!(o.stop, Stop::Lockup { .. }));
                faulted += u32::from(o.faults > 0);
                ticked += u32::from(o.ticks > 0);
                total_faults += u64::from(o.faults);
                total_ticks += u64::from(o.ticks);
                stop_points += u64::from(o.stop_points);
                for (t, s) in seconds.iter_mut().zip(o.seconds) {
                    *t += s;
                }
            }
            Err(report) => {
                println!("{report}");
                failures.push(index);
                if failures.len() >= 3 {
                    break;
                }
            }
        }
    }
    let n = indexes.len() as u32;
    let blocks = events.blocks.load(Ordering::Relaxed);
    let block_instrs = events.instrs.load(Ordering::Relaxed);
    println!(
        "{n} programs (seed {seed}) in {:.1} s: {total_instret} instructions retired (interpreter), \
         {looped} programs ran over 10x their length, {exits} exited, {lockups} locked up, \
         {faulted} took faults ({total_faults} in all), {ticked} took SysTick interrupts \
         ({total_ticks}), {stop_points} stops at stop addresses; longest program {max_len} \
         instructions; {:.1}% of the generated instructions are of kinds the compiler translates; \
         {blocks} blocks compiled ({block_instrs} instructions); time in run: interpreter {:.2} s, \
         jit(Some(1)) {:.2} s, jit(Some(3)) {:.2} s",
        started.elapsed().as_secs_f64(),
        100.0 * static_compiled as f64 / static_instrs.max(1) as f64,
        seconds[0],
        seconds[1],
        seconds[2],
    );
    assert!(
        failures.is_empty(),
        "the block compiler differs from the interpreter in programs {failures:?} (seed {seed}; replay \
         with TWINBED_SEED={seed} TWINBED_PROGRAM=<index>)"
    );
    let warnings = events.warnings.lock().unwrap();
    assert!(warnings.is_empty(), "the block compiler warned: {:?}", &warnings[..warnings.len().min(5)]);
    if only.is_none() {
        // Not vacuous: programs ran long, looped, and the compiler compiled many blocks.
        assert!(total_instret > 1_000_000 * u64::from(n) / 300, "only {total_instret} instructions");
        assert!(looped >= n / 2, "only {looped} of {n} programs looped");
        assert!(exits >= n / 10 && faulted >= n / 10 && ticked >= n / 10);
        assert!(static_compiled * 10 >= static_instrs * 8, "too few compiled kinds");
        assert!(blocks >= u64::from(n) * 5 && block_instrs >= blocks * 3, "{blocks} blocks compiled");
    }
}

/// The encoders produce what the decoder (tested against Unicorn) reads back.
#[test]
fn encoders_decode_as_intended() {
    use twinbed_engine::cpu::instr::*;
    let d = |(h1, h2): (u16, u16)| decode(h1, h2).0;
    let d16 = |h: u16| decode(h, 0).0;
    assert_eq!(
        d(movw32(false, 3, 0xbeef)),
        Instr::Dp {
            op: DpOp::Mov,
            s: SetFlags::No,
            rd: 3,
            rn: 0,
            op2: Op2::Imm { value: 0xbeef, carry: None }
        }
    );
    assert_eq!(d(movw32(true, 9, 0x2000)), Instr::Movt { rd: 9, imm: 0x2000 });
    assert_eq!(d(b32(true, -0x1234)), Instr::Bl { imm: -0x1234 });
    assert_eq!(d(b32(false, 0x5_6788)), Instr::B { cond: 14, imm: 0x5_6788 });
    assert_eq!(d(bcond32(1, -0x2_0000)), Instr::B { cond: 1, imm: -0x2_0000 });
    assert_eq!(d16(bcond16(3, -8)), Instr::B { cond: 3, imm: -8 });
    assert_eq!(d16(b16(100)), Instr::B { cond: 14, imm: 100 });
    assert_eq!(d16(cbz16(true, 3, 90)), Instr::Cbz { nonzero: true, rn: 3, imm: 90 });
    assert_eq!(d(div32(false, 1, 2, 3)), Instr::Div { signed: true, rd: 1, rn: 2, rm: 3 });
    assert_eq!(
        d(long_mul32(4, 1, 2, 3, 4)),
        Instr::LongMul { op: LongMulOp::Smlal, rdlo: 1, rdhi: 2, rn: 3, rm: 4 }
    );
    assert_eq!(d(mul32(true, 1, 2, 3, 4)), Instr::Mul { op: MulOp::Mls, rd: 1, rn: 2, rm: 3, ra: 4 });
    assert_eq!(d(bfx32(true, 1, 2, 5, 7)), Instr::Bf { op: BfOp::Ubfx, rd: 1, rn: 2, lsb: 5, width: 7 });
    assert_eq!(d(bfi32(1, 15, 30, 2)), Instr::Bf { op: BfOp::Bfc, rd: 1, rn: 15, lsb: 30, width: 2 });
    assert_eq!(
        d(ldst_imm8(5, 15, 13, 4, false, true, true)),
        Instr::Ldr { w: Width::W, rt: 15, rn: 13, off: Offset::Imm(4), add: true, index: false, wback: true }
    );
    assert_eq!(
        d(ldst_reg32(7, 2, 6, 3, 2)),
        Instr::Ldr {
            w: Width::Sh,
            rt: 2,
            rn: 6,
            off: Offset::Reg { rm: 3, shift: 2 },
            add: true,
            index: true,
            wback: false
        }
    );
    assert_eq!(
        d(ldst_imm12(1, 2, 9, 0x123)),
        Instr::Str {
            w: Width::H,
            rt: 2,
            rn: 9,
            off: Offset::Imm(0x123),
            add: true,
            index: true,
            wback: false
        }
    );
    assert_eq!(
        d(dual32(true, 0, 1, 7, 3, false, true, true)),
        Instr::Dual { load: true, rt: 0, rt2: 1, rn: 7, imm: 12, add: true, index: false, wback: true }
    );
    assert_eq!(
        d(multi32(false, true, true, 13, 0x4010)),
        Instr::Multi { load: false, rn: 13, regs: 0x4010, db: true, wback: true }
    );
    assert_eq!(d(ext32(4, 1, 2, 3)), Instr::Ext { op: ExtOp::Sxtb, rd: 1, rm: 2, rot: 24 });
    assert_eq!(d(rev32(2, 1, 2)), Instr::Bit { op: BitOp::Rbit, rd: 1, rm: 2 });
    assert_eq!(d(clz32(1, 2)), Instr::Bit { op: BitOp::Clz, rd: 1, rm: 2 });
    assert_eq!(
        d(dp_imm32(13, true, COUNTER, COUNTER, 1)),
        Instr::Dp { op: DpOp::Sub, s: SetFlags::Yes, rd: 8, rn: 8, op2: Op2::Imm { value: 1, carry: None } }
    );
    assert!(matches!(
        d(shift_reg32(1, true, 1, 2, 3)),
        Instr::Dp { op: DpOp::Mov, op2: Op2::RegReg { .. }, .. }
    ));
    assert!(matches!(d(sat32(true, 0, 1, 2, 3, 4)), Instr::Sat { .. }));
    assert!(matches!(d(mrs32(1)), Instr::Mrs { rd: 1, sysm: 0 }));
    assert!(matches!(d(ldrex32(1, 6)), Instr::Ldrex { .. }));
    assert!(matches!(d(strex32(1, 2, 6)), Instr::Strex { .. }));
    assert!(matches!(d16(it16(0, 0b0110)), Instr::It { .. }));
    assert_eq!(d16(bx16(true, 12)), Instr::Blx { rm: 12 });
}
