//! A Thumb / Thumb-2 encoder for hand-assembled test programs. Section numbers: ARMv7-M
//! Architecture Reference Manual (DDI 0403E). Registers and fields are u32; each encoder
//! returns the halfword(s). `jit_blocks.rs` checks that the decoder reads back what these
//! write.

// Not every test binary uses every encoder.
#![allow(dead_code)]

use twinbed_engine::cpu::decode::thumb_expand_imm;

/// A7.7.68 LSL / A7.7.70 LSR / A7.7.10 ASR (immediate) T1: `000 op:2 imm5 Rm Rd`.
pub fn shift_imm16(op: u32, rd: u32, rm: u32, imm5: u32) -> u16 {
    (op << 11 | imm5 << 6 | rm << 3 | rd) as u16
}

/// A7.7.4 ADD / A7.7.174 SUB (register) T1: `000110 S Rm Rn Rd`.
pub fn addsub_reg16(sub: bool, rd: u32, rn: u32, rm: u32) -> u16 {
    (0x1800 | u32::from(sub) << 9 | rm << 6 | rn << 3 | rd) as u16
}

/// A7.7.3 ADD / A7.7.173 SUB (immediate) T1: `000111 S imm3 Rn Rd`.
pub fn addsub_imm3(sub: bool, rd: u32, rn: u32, imm3: u32) -> u16 {
    (0x1c00 | u32::from(sub) << 9 | imm3 << 6 | rn << 3 | rd) as u16
}

/// A7.7.75 MOV / A7.7.27 CMP / A7.7.3 ADD / A7.7.173 SUB (immediate) T1/T2:
/// `001 op:2 Rdn imm8` (op 0 MOV, 1 CMP, 2 ADD, 3 SUB).
pub fn imm8_16(op: u32, rdn: u32, imm8: u32) -> u16 {
    (0x2000 | op << 11 | rdn << 8 | imm8) as u16
}

/// A5.2.2 data processing (register): `010000 opcode:4 Rm Rdn` (AND EOR LSL LSR ASR ADC SBC
/// ROR TST RSB CMP CMN ORR MUL BIC MVN).
pub fn dp16(opc: u32, rdn: u32, rm: u32) -> u16 {
    (0x4000 | opc << 6 | rm << 3 | rdn) as u16
}

/// A5.2.3 special data: ADD (register) T2 (op 0), CMP (register) T2 (op 1), MOV (register)
/// T1 (op 2): `010001 op:2 D Rm Rdn<2:0>`.
pub fn hireg16(op: u32, rdn: u32, rm: u32) -> u16 {
    (0x4400 | op << 8 | (rdn >> 3) << 7 | rm << 3 | (rdn & 7)) as u16
}

/// A7.7.20 BX T1 / A7.7.19 BLX (register) T1: `010001 11 L Rm 000`.
pub fn bx16(link: bool, rm: u32) -> u16 {
    (0x4700 | u32::from(link) << 7 | rm << 3) as u16
}

/// A7.7.43 LDR (literal) T1: `01001 Rt imm8`.
pub fn ldr_lit16(rt: u32, imm8: u32) -> u16 {
    (0x4800 | rt << 8 | imm8) as u16
}

/// A5.2.4 load/store single (register offset): `0101 opB:3 Rm Rn Rt` (STR STRH STRB LDRSB
/// LDR LDRH LDRB LDRSH).
pub fn ldst_reg16(opb: u32, rt: u32, rn: u32, rm: u32) -> u16 {
    (0x5000 | opb << 9 | rm << 6 | rn << 3 | rt) as u16
}

/// A5.2.4 load/store (immediate) T1: `opA:5 imm5 Rn Rt`, opA 0b01100 STR, 0b01101 LDR,
/// 0b01110 STRB, 0b01111 LDRB, 0b10000 STRH, 0b10001 LDRH.
pub fn ldst_imm16(opa: u32, rt: u32, rn: u32, imm5: u32) -> u16 {
    (opa << 11 | imm5 << 6 | rn << 3 | rt) as u16
}

/// A7.7.159 STR / A7.7.42 LDR (SP plus immediate) T2: `1001 L Rt imm8`.
pub fn ldst_sp16(load: bool, rt: u32, imm8: u32) -> u16 {
    (0x9000 | u32::from(load) << 11 | rt << 8 | imm8) as u16
}

/// A7.7.7 ADR T1: `10100 Rd imm8`.
pub fn adr16(rd: u32, imm8: u32) -> u16 {
    (0xa000 | rd << 8 | imm8) as u16
}

/// A7.7.5 ADD (SP plus immediate) T1: `10101 Rd imm8`.
pub fn add_sp16(rd: u32, imm8: u32) -> u16 {
    (0xa800 | rd << 8 | imm8) as u16
}

/// A7.7.21 CBZ/CBNZ T1: `1011 op 0 i 1 imm5 Rn`, target = PC + 4 + i:imm5:'0'.
pub fn cbz16(nonzero: bool, rn: u32, off: u32) -> u16 {
    assert!(off.is_multiple_of(2) && off < 128, "CBZ offset {off}");
    (0xb100 | u32::from(nonzero) << 11 | (off >> 6) << 9 | ((off >> 1) & 31) << 3 | rn) as u16
}

/// A7.7.185/183/222/220 SXTH/SXTB/UXTH/UXTB T1: `1011 0010 opc:2 Rm Rd`.
pub fn ext16(opc: u32, rd: u32, rm: u32) -> u16 {
    (0xb200 | opc << 6 | rm << 3 | rd) as u16
}

/// A7.7.99 PUSH T1: `1011 010 M list` / A7.7.98 POP T1: `1011 110 P list`.
pub fn pushpop16(pop: bool, extra: bool, list: u32) -> u16 {
    (0xb400 | u32::from(pop) << 11 | u32::from(extra) << 8 | list) as u16
}

/// A7.7.111/112/113 REV/REV16/REVSH T1: `1011 1010 op:2 Rm Rd` (op 0, 1, 3).
pub fn rev16(op: u32, rd: u32, rm: u32) -> u16 {
    (0xba00 | op << 6 | rm << 3 | rd) as u16
}

/// A7.7.17 BKPT T1: `1011 1110 imm8`.
pub fn bkpt16(imm8: u32) -> u16 {
    (0xbe00 | imm8) as u16
}

/// A7.7.38 IT T1: `1011 1111 firstcond mask`.
pub fn it16(firstcond: u32, mask: u32) -> u16 {
    (0xbf00 | firstcond << 4 | mask) as u16
}

/// A7.7.185 TBB / TBH T1: `1110 1000 1101 Rn | 1111 0000 000 H Rm`.
pub fn tb32(half: bool, rn: u32, rm: u32) -> (u16, u16) {
    ((0xe8d0 | rn) as u16, (0xf000 | u32::from(half) << 4 | rm) as u16)
}

/// A7.7.88 NOP T1.
pub const NOP16: u16 = 0xbf00;

/// A7.7.156 STM / A7.7.40 LDM T1: `1100 L Rn list`.
pub fn ldm16(load: bool, rn: u32, list: u32) -> u16 {
    (0xc000 | u32::from(load) << 11 | rn << 8 | list) as u16
}

/// A7.7.12 B T1: `1101 cond imm8`, target = PC + 4 + imm8:'0' (signed).
pub fn bcond16(cond: u32, off: i32) -> u16 {
    assert!(off % 2 == 0 && (-256..=254).contains(&off) && cond < 14);
    (0xd000 | cond << 8 | ((off >> 1) as u32 & 0xff)) as u16
}

/// A7.7.12 B T2: `11100 imm11`.
pub fn b16(off: i32) -> u16 {
    assert!(off % 2 == 0 && (-2048..=2046).contains(&off));
    (0xe000 | ((off >> 1) as u32 & 0x7ff)) as u16
}

/// A7.7.194 UDF T1: `1101 1110 imm8`.
pub fn udf16(imm8: u32) -> u16 {
    (0xde00 | imm8) as u16
}

/// A5.3.1 data processing (modified immediate): `11110 i 0 op:4 S Rn | 0 imm3 Rd imm8`
/// (op 0 AND/TST, 1 BIC, 2 ORR/MOV, 3 ORN/MVN, 4 EOR/TEQ, 8 ADD/CMN, 10 ADC, 11 SBC,
/// 13 SUB/CMP, 14 RSB).
pub fn dp_imm32(op: u32, s: bool, rd: u32, rn: u32, imm12: u32) -> (u16, u16) {
    (
        (0xf000 | (imm12 >> 11) << 10 | op << 5 | u32::from(s) << 4 | rn) as u16,
        (((imm12 >> 8) & 7) << 12 | rd << 8 | (imm12 & 0xff)) as u16,
    )
}

/// A5.3.11 data processing (shifted register): `1110101 op:4 S Rn | 0 imm3 Rd imm2 type Rm`.
pub fn dp_reg32(op: u32, s: bool, rd: u32, rn: u32, rm: u32, ty: u32, imm5: u32) -> (u16, u16) {
    (
        (0xea00 | op << 5 | u32::from(s) << 4 | rn) as u16,
        ((imm5 >> 2) << 12 | rd << 8 | (imm5 & 3) << 6 | ty << 4 | rm) as u16,
    )
}

/// A7.7.3 ADDW T4 / A7.7.173 SUBW T4 (A5.3.3 plain binary immediate, op 0b00000 / 0b01010):
/// `11110 i 1 op:5 Rn | 0 imm3 Rd imm8`.
pub fn addw32(sub: bool, rd: u32, rn: u32, imm12: u32) -> (u16, u16) {
    (
        (0xf200 | if sub { 0xa0 } else { 0 } | (imm12 >> 11) << 10 | rn) as u16,
        (((imm12 >> 8) & 7) << 12 | rd << 8 | (imm12 & 0xff)) as u16,
    )
}

/// A7.7.76 MOVW T3 / A7.7.79 MOVT T1: `11110 i 10 T 100 imm4 | 0 imm3 Rd imm8`.
pub fn movw32(top: bool, rd: u32, imm16: u32) -> (u16, u16) {
    (
        (0xf240 | u32::from(top) << 7 | ((imm16 >> 11) & 1) << 10 | (imm16 >> 12)) as u16,
        (((imm16 >> 8) & 7) << 12 | rd << 8 | (imm16 & 0xff)) as u16,
    )
}

/// A7.7.148 SBFX / A7.7.190 UBFX T1: `11110 0 11 U 10 0 Rn | 0 imm3 Rd imm2 0 widthm1`.
pub fn bfx32(unsigned: bool, rd: u32, rn: u32, lsb: u32, width: u32) -> (u16, u16) {
    (
        (if unsigned { 0xf3c0 } else { 0xf340 } | rn) as u16,
        ((lsb >> 2) << 12 | rd << 8 | (lsb & 3) << 6 | (width - 1)) as u16,
    )
}

/// A7.7.14 BFI T1 (A7.7.13 BFC: Rn = 1111): `11110 0 11 0 11 0 Rn | 0 imm3 Rd imm2 0 msb`.
pub fn bfi32(rd: u32, rn: u32, lsb: u32, width: u32) -> (u16, u16) {
    ((0xf360 | rn) as u16, ((lsb >> 2) << 12 | rd << 8 | (lsb & 3) << 6 | (lsb + width - 1)) as u16)
}

/// A7.7.142 SSAT / A7.7.200 USAT T1: `11110 0 11 U0 sh 0 Rn | 0 imm3 Rd imm2 0 sat_imm`.
pub fn sat32(unsigned: bool, sh: u32, rd: u32, rn: u32, amount: u32, sat_imm: u32) -> (u16, u16) {
    (
        (if unsigned { 0xf380 } else { 0xf300 } | sh << 5 | rn) as u16,
        ((amount >> 2) << 12 | rd << 8 | (amount & 3) << 6 | sat_imm) as u16,
    )
}

/// A7.7.69/71/11/115 LSL/LSR/ASR/ROR (register) T2: `11111010 0 type S Rn | 1111 Rd 0000 Rm`.
pub fn shift_reg32(ty: u32, s: bool, rd: u32, rn: u32, rm: u32) -> (u16, u16) {
    ((0xfa00 | ty << 5 | u32::from(s) << 4 | rn) as u16, (0xf000 | rd << 8 | rm) as u16)
}

/// A7.7.186/184/223/221 SXTH/SXTB/UXTH/UXTB T2: `11111010 0 op:3 1111 | 1111 Rd 1 0 rot Rm`
/// (op 0 SXTH, 1 UXTH, 4 SXTB, 5 UXTB).
pub fn ext32(op: u32, rd: u32, rm: u32, rot: u32) -> (u16, u16) {
    ((0xfa0f | op << 4) as u16, (0xf080 | rd << 8 | rot << 4 | rm) as u16)
}

/// A7.7.111/112/110/113 REV/REV16/RBIT/REVSH T2: `11111010 1001 Rm | 1111 Rd 10 op:2 Rm`.
pub fn rev32(op: u32, rd: u32, rm: u32) -> (u16, u16) {
    ((0xfa90 | rm) as u16, (0xf080 | rd << 8 | op << 4 | rm) as u16)
}

/// A7.7.24 CLZ T1: `11111010 1011 Rm | 1111 Rd 1000 Rm`.
pub fn clz32(rd: u32, rm: u32) -> (u16, u16) {
    ((0xfab0 | rm) as u16, (0xf080 | rd << 8 | rm) as u16)
}

/// A7.7.84 MUL T2 (Ra = 1111) / A7.7.74 MLA T1 / A7.7.75 MLS T1:
/// `11111011 0000 Rn | Ra Rd 00 op Rm`.
pub fn mul32(mls: bool, rd: u32, rn: u32, rm: u32, ra: u32) -> (u16, u16) {
    ((0xfb00 | rn) as u16, (ra << 12 | rd << 8 | u32::from(mls) << 4 | rm) as u16)
}

/// A7.7.149 SMULL / A7.7.204 UMULL / A7.7.138 SMLAL / A7.7.203 UMLAL T1:
/// `11111011 1 op:3 Rn | RdLo RdHi 0000 Rm` (op 0, 2, 4, 6).
pub fn long_mul32(op: u32, lo: u32, hi: u32, rn: u32, rm: u32) -> (u16, u16) {
    ((0xfb80 | op << 4 | rn) as u16, (lo << 12 | hi << 8 | rm) as u16)
}

/// A7.7.127 SDIV / A7.7.195 UDIV T1: `11111011 10U1 Rn | 1111 Rd 1111 Rm`.
pub fn div32(unsigned: bool, rd: u32, rn: u32, rm: u32) -> (u16, u16) {
    ((0xfb90 | u32::from(unsigned) << 5 | rn) as u16, (0xf0f0 | rd << 8 | rm) as u16)
}

/// Single loads and stores by kind: STRB, STRH, STR, LDRB, LDRH, LDR, LDRSB, LDRSH; their
/// access sizes.
pub const KIND_SIZE: [u32; 8] = [1, 2, 4, 1, 2, 4, 1, 2];
/// A5.3.10 / A5.3.9 / A5.3.8 / A5.3.7 (immediate, 12-bit) T2/T3 and LDRSB/LDRSH T1:
/// `11111000 1 size L Rn | Rt imm12` (signed loads: `11111001 1 ...`).
pub const LDST_IMM12: [u32; 8] = [0xf880, 0xf8a0, 0xf8c0, 0xf890, 0xf8b0, 0xf8d0, 0xf990, 0xf9b0];
/// The same with an 8-bit immediate (T4 / T3 / T2: `Rt 1 P U W imm8`) or a register offset
/// (T2: `Rt 000000 imm2 Rm`).
pub const LDST_IMM8: [u32; 8] = [0xf800, 0xf820, 0xf840, 0xf810, 0xf830, 0xf850, 0xf910, 0xf930];

pub fn ldst_imm12(kind: usize, rt: u32, rn: u32, imm12: u32) -> (u16, u16) {
    ((LDST_IMM12[kind] | rn) as u16, (rt << 12 | imm12) as u16)
}

pub fn ldst_imm8(kind: usize, rt: u32, rn: u32, imm8: u32, p: bool, u: bool, w: bool) -> (u16, u16) {
    (
        (LDST_IMM8[kind] | rn) as u16,
        (rt << 12 | 0x800 | u32::from(p) << 10 | u32::from(u) << 9 | u32::from(w) << 8 | imm8) as u16,
    )
}

pub fn ldst_reg32(kind: usize, rt: u32, rn: u32, rm: u32, shift: u32) -> (u16, u16) {
    ((LDST_IMM8[kind] | rn) as u16, (rt << 12 | shift << 4 | rm) as u16)
}

/// A7.7.50 LDRD / A7.7.166 STRD (immediate) T1: `1110100 P U 1 W L Rn | Rt Rt2 imm8`.
#[allow(clippy::too_many_arguments)]
pub fn dual32(load: bool, rt: u32, rt2: u32, rn: u32, imm8: u32, p: bool, u: bool, w: bool) -> (u16, u16) {
    assert!(p || w, "P = W = 0 is the exclusive/table-branch space");
    (
        (0xe840 | u32::from(p) << 8 | u32::from(u) << 7 | u32::from(w) << 5 | u32::from(load) << 4 | rn)
            as u16,
        (rt << 12 | rt2 << 8 | imm8) as u16,
    )
}

/// A7.7.40/41 LDM/LDMDB, A7.7.156/157 STM/STMDB T2/T1: `1110100 op:2 0 W L Rn | list`
/// (op 01 increment after, 10 decrement before).
pub fn multi32(load: bool, db: bool, w: bool, rn: u32, list: u32) -> (u16, u16) {
    ((if db { 0xe900 } else { 0xe880 } | u32::from(w) << 5 | u32::from(load) << 4 | rn) as u16, list as u16)
}

/// A7.7.12 B T3: `11110 S cond imm6 | 10 J1 0 J2 imm11`, offset S:J2:J1:imm6:imm11:'0'.
pub fn bcond32(cond: u32, off: i32) -> (u16, u16) {
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
pub fn b32(link: bool, off: i32) -> (u16, u16) {
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
pub fn mrs32(rd: u32) -> (u16, u16) {
    (0xf3ef, (0x8000 | rd << 8) as u16)
}

/// A7.7.83 MSR T1 (APSR_nzcvq, mask 0b10): `11110011 1000 Rn | 1000 1000 SYSm`.
pub fn msr32(rn: u32) -> (u16, u16) {
    ((0xf380 | rn) as u16, 0x8800)
}

/// A7.7.52 LDREX T1: `11101000 0101 Rn | Rt 1111 imm8`.
pub fn ldrex32(rt: u32, rn: u32) -> (u16, u16) {
    ((0xe850 | rn) as u16, (rt << 12 | 0xf00) as u16)
}

/// A7.7.167 STREX T1: `11101000 0100 Rn | Rt Rd imm8`.
pub fn strex32(rd: u32, rt: u32, rn: u32) -> (u16, u16) {
    ((0xe840 | rn) as u16, (rt << 12 | rd << 8) as u16)
}

/// A7.7.23 CLREX T1.
pub const CLREX32: (u16, u16) = (0xf3bf, 0x8f2f);

/// The modified immediate (A5.3.2 ThumbExpandImm) for `value`, if it has one.
pub fn mod_imm(value: u32) -> Option<u32> {
    (0..4096).find(|&i| thumb_expand_imm(i).map(|(v, _)| v) == Some(value))
}
