//! Thumb / Thumb-2 decoder for ARMv7-M (ARMv7-M Architecture Reference Manual, DDI 0403E,
//! chapter A5 "The Thumb Instruction Set Encoding"; section numbers below refer to it).
//!
//! [`decode`] takes the first halfword and, for 32-bit encodings, the second, and returns the
//! instruction and its size. It never fails: encodings that do not execute decode to
//! [`Instr::Undef`]. UNPREDICTABLE encodings that real cores and QEMU execute in an obvious way
//! (e.g. LDM with a single register) are decoded leniently; the others are UNDEFINED here.
//! DSP-extension (ARMv7E-M) and floating-point encodings are UNDEFINED: the Cortex-M3 has
//! neither.

use super::instr::*;

/// Whether `hw1` starts a 32-bit encoding (A5.1: bits \[15:11\] are 0b11101, 0b11110 or 0b11111).
pub fn is_32bit(hw1: u16) -> bool {
    hw1 >> 11 >= 0b11101
}

#[inline]
fn bits(v: u32, hi: u32, lo: u32) -> u32 {
    (v >> lo) & ((1 << (hi - lo + 1)) - 1)
}

#[inline]
fn bit(v: u32, n: u32) -> bool {
    (v >> n) & 1 != 0
}

fn sign_extend(v: u32, bits: u32) -> i32 {
    let shift = 32 - bits;
    ((v << shift) as i32) >> shift
}

const UNDEF: Instr = Instr::Undef(Undef::Undefined);

/// DecodeImmShift (A7.4.2): a shift type and 5-bit amount as encoded.
fn imm_shift(ty: u32, imm5: u32) -> (Shift, u8) {
    match ty {
        0 => (Shift::Lsl, imm5 as u8),
        1 => (Shift::Lsr, if imm5 == 0 { 32 } else { imm5 as u8 }),
        2 => (Shift::Asr, if imm5 == 0 { 32 } else { imm5 as u8 }),
        _ if imm5 == 0 => (Shift::Rrx, 1),
        _ => (Shift::Ror, imm5 as u8),
    }
}

/// ThumbExpandImm_C (A5.3.2). `None` for the UNPREDICTABLE zero patterns.
pub fn thumb_expand_imm(imm12: u32) -> Option<(u32, Option<bool>)> {
    let imm8 = imm12 & 0xff;
    if imm12 >> 10 == 0 {
        let v = match (imm12 >> 8) & 3 {
            0 => imm8,
            1 => (imm8 << 16) | imm8,
            2 => (imm8 << 24) | (imm8 << 8),
            _ => imm8 * 0x0101_0101,
        };
        if imm12 >> 8 != 0 && imm8 == 0 {
            return None;
        }
        Some((v, None))
    } else {
        let unrotated = 0x80 | (imm12 & 0x7f);
        let v = unrotated.rotate_right(imm12 >> 7);
        Some((v, Some(v >> 31 != 0)))
    }
}

/// Decodes one instruction. Returns it and its size in bytes (2 or 4).
pub fn decode(hw1: u16, hw2: u16) -> (Instr, u8) {
    if is_32bit(hw1) {
        (decode32(u32::from(hw1), u32::from(hw2)), 4)
    } else {
        (decode16(u32::from(hw1)), 2)
    }
}

fn dp(op: DpOp, s: SetFlags, rd: u32, rn: u32, op2: Op2) -> Instr {
    Instr::Dp { op, s, rd: rd as u8, rn: rn as u8, op2 }
}

fn reg(rm: u32) -> Op2 {
    Op2::Reg { rm: rm as u8, shift: Shift::Lsl, amount: 0 }
}

fn imm(value: u32) -> Op2 {
    Op2::Imm { value, carry: None }
}

/// 16-bit encodings (A5.2).
fn decode16(h: u32) -> Instr {
    use SetFlags::{No, OutsideIt, Yes};
    let lo3 = h & 7;
    let mid3 = bits(h, 5, 3);
    match h >> 10 {
        // A5.2.1 shift (immediate), add, subtract, move, compare
        0b000000..=0b001111 => {
            let op = bits(h, 13, 9);
            let imm5 = bits(h, 10, 6);
            match op {
                0b00000..=0b00011 => dp(
                    DpOp::Mov,
                    OutsideIt,
                    lo3,
                    0,
                    Op2::Reg { rm: mid3 as u8, shift: Shift::Lsl, amount: imm5 as u8 },
                ),
                0b00100..=0b00111 => {
                    let (shift, amount) = imm_shift(1, imm5);
                    dp(DpOp::Mov, OutsideIt, lo3, 0, Op2::Reg { rm: mid3 as u8, shift, amount })
                }
                0b01000..=0b01011 => {
                    let (shift, amount) = imm_shift(2, imm5);
                    dp(DpOp::Mov, OutsideIt, lo3, 0, Op2::Reg { rm: mid3 as u8, shift, amount })
                }
                0b01100 => dp(DpOp::Add, OutsideIt, lo3, mid3, reg(bits(h, 8, 6))),
                0b01101 => dp(DpOp::Sub, OutsideIt, lo3, mid3, reg(bits(h, 8, 6))),
                0b01110 => dp(DpOp::Add, OutsideIt, lo3, mid3, imm(bits(h, 8, 6))),
                0b01111 => dp(DpOp::Sub, OutsideIt, lo3, mid3, imm(bits(h, 8, 6))),
                _ => {
                    let rdn = bits(h, 10, 8);
                    let imm8 = imm(h & 0xff);
                    match bits(h, 12, 11) {
                        0 => dp(DpOp::Mov, OutsideIt, rdn, 0, imm8),
                        1 => dp(DpOp::Cmp, Yes, 0, rdn, imm8),
                        2 => dp(DpOp::Add, OutsideIt, rdn, rdn, imm8),
                        _ => dp(DpOp::Sub, OutsideIt, rdn, rdn, imm8),
                    }
                }
            }
        }
        // A5.2.2 data processing
        0b010000 => {
            let (rdn, rm) = (lo3, mid3);
            let shift_by = |shift| Op2::RegReg { rm: rdn as u8, shift, rs: rm as u8 };
            match bits(h, 9, 6) {
                0b0000 => dp(DpOp::And, OutsideIt, rdn, rdn, reg(rm)),
                0b0001 => dp(DpOp::Eor, OutsideIt, rdn, rdn, reg(rm)),
                0b0010 => dp(DpOp::Mov, OutsideIt, rdn, 0, shift_by(Shift::Lsl)),
                0b0011 => dp(DpOp::Mov, OutsideIt, rdn, 0, shift_by(Shift::Lsr)),
                0b0100 => dp(DpOp::Mov, OutsideIt, rdn, 0, shift_by(Shift::Asr)),
                0b0101 => dp(DpOp::Adc, OutsideIt, rdn, rdn, reg(rm)),
                0b0110 => dp(DpOp::Sbc, OutsideIt, rdn, rdn, reg(rm)),
                0b0111 => dp(DpOp::Mov, OutsideIt, rdn, 0, shift_by(Shift::Ror)),
                0b1000 => dp(DpOp::Tst, Yes, 0, rdn, reg(rm)),
                0b1001 => dp(DpOp::Rsb, OutsideIt, rdn, rm, imm(0)),
                0b1010 => dp(DpOp::Cmp, Yes, 0, rdn, reg(rm)),
                0b1011 => dp(DpOp::Cmn, Yes, 0, rdn, reg(rm)),
                0b1100 => dp(DpOp::Orr, OutsideIt, rdn, rdn, reg(rm)),
                0b1101 => dp(DpOp::Mul, OutsideIt, rdn, rm, reg(rdn)),
                0b1110 => dp(DpOp::Bic, OutsideIt, rdn, rdn, reg(rm)),
                _ => dp(DpOp::Mvn, OutsideIt, rdn, 0, reg(rm)),
            }
        }
        // A5.2.3 special data instructions and branch and exchange
        0b010001 => {
            let rdn = (bits(h, 7, 7) << 3) | lo3;
            let rm = bits(h, 6, 3);
            match bits(h, 9, 6) {
                0b0000..=0b0011 => {
                    if rdn == 15 && rm == 15 {
                        UNDEF
                    } else {
                        dp(DpOp::Add, No, rdn, rdn, reg(rm))
                    }
                }
                0b0100 => UNDEF,
                0b0101..=0b0111 => {
                    if rdn < 8 && rm < 8 || rdn == 15 || rm == 15 {
                        UNDEF
                    } else {
                        dp(DpOp::Cmp, Yes, 0, rdn, reg(rm))
                    }
                }
                0b1000..=0b1011 => dp(DpOp::Mov, No, rdn, 0, reg(rm)),
                0b1100 | 0b1101 => {
                    if lo3 != 0 {
                        UNDEF
                    } else {
                        Instr::Bx { rm: rm as u8 }
                    }
                }
                _ => {
                    if lo3 != 0 || rm == 15 {
                        UNDEF
                    } else {
                        Instr::Blx { rm: rm as u8 }
                    }
                }
            }
        }
        0b010010 | 0b010011 => Instr::Ldr {
            w: Width::W,
            rt: bits(h, 10, 8) as u8,
            rn: 15,
            off: Offset::Imm((h & 0xff) << 2),
            add: true,
            index: true,
            wback: false,
        },
        // A5.2.4 load/store single data item
        0b010100..=0b100111 => decode16_ldst(h),
        0b101000 | 0b101001 => Instr::Adr { rd: bits(h, 10, 8) as u8, imm: ((h & 0xff) << 2) as i32 },
        0b101010 | 0b101011 => dp(DpOp::Add, No, bits(h, 10, 8), 13, imm((h & 0xff) << 2)),
        // A5.2.5 miscellaneous
        0b101100..=0b101111 => decode16_misc(h),
        0b110000 | 0b110001 => Instr::Multi {
            load: false,
            rn: bits(h, 10, 8) as u8,
            regs: (h & 0xff) as u16,
            db: false,
            wback: true,
        },
        0b110010 | 0b110011 => {
            let rn = bits(h, 10, 8);
            let regs = (h & 0xff) as u16;
            Instr::Multi { load: true, rn: rn as u8, regs, db: false, wback: regs & (1 << rn) == 0 }
        }
        // A5.2.6 conditional branch and supervisor call
        0b110100..=0b110111 => match bits(h, 11, 8) {
            0b1110 => UNDEF,
            0b1111 => Instr::Svc((h & 0xff) as u8),
            cond => Instr::B { cond: cond as u8, imm: sign_extend((h & 0xff) << 1, 9) },
        },
        0b111000 | 0b111001 => Instr::B { cond: 14, imm: sign_extend((h & 0x7ff) << 1, 12) },
        _ => UNDEF,
    }
}

fn decode16_ldst(h: u32) -> Instr {
    let (rt, rn) = (h & 7, bits(h, 5, 3));
    let ld = |w: Width, off: Offset| Instr::Ldr {
        w,
        rt: rt as u8,
        rn: rn as u8,
        off,
        add: true,
        index: true,
        wback: false,
    };
    let st = |w: Width, off: Offset| Instr::Str {
        w,
        rt: rt as u8,
        rn: rn as u8,
        off,
        add: true,
        index: true,
        wback: false,
    };
    let r = Offset::Reg { rm: bits(h, 8, 6) as u8, shift: 0 };
    let imm5 = bits(h, 10, 6);
    let load = bit(h, 11);
    match h >> 12 {
        0b0101 => match bits(h, 11, 9) {
            0 => st(Width::W, r),
            1 => st(Width::H, r),
            2 => st(Width::B, r),
            3 => ld(Width::Sb, r),
            4 => ld(Width::W, r),
            5 => ld(Width::H, r),
            6 => ld(Width::B, r),
            _ => ld(Width::Sh, r),
        },
        0b0110 if load => ld(Width::W, Offset::Imm(imm5 << 2)),
        0b0110 => st(Width::W, Offset::Imm(imm5 << 2)),
        0b0111 if load => ld(Width::B, Offset::Imm(imm5)),
        0b0111 => st(Width::B, Offset::Imm(imm5)),
        0b1000 if load => ld(Width::H, Offset::Imm(imm5 << 1)),
        0b1000 => st(Width::H, Offset::Imm(imm5 << 1)),
        _ => {
            // 0b1001: SP-relative
            let rt = bits(h, 10, 8) as u8;
            let off = Offset::Imm((h & 0xff) << 2);
            if load {
                Instr::Ldr { w: Width::W, rt, rn: 13, off, add: true, index: true, wback: false }
            } else {
                Instr::Str { w: Width::W, rt, rn: 13, off, add: true, index: true, wback: false }
            }
        }
    }
}

fn decode16_misc(h: u32) -> Instr {
    let (rd, rm) = ((h & 7) as u8, bits(h, 5, 3) as u8);
    match bits(h, 11, 5) {
        0b0000000..=0b0000011 => dp(DpOp::Add, SetFlags::No, 13, 13, imm((h & 0x7f) << 2)),
        0b0000100..=0b0000111 => dp(DpOp::Sub, SetFlags::No, 13, 13, imm((h & 0x7f) << 2)),
        0b0001000..=0b0001111 | 0b0011000..=0b0011111 | 0b1001000..=0b1001111 | 0b1011000..=0b1011111 => {
            Instr::Cbz {
                nonzero: bit(h, 11),
                rn: (h & 7) as u8,
                imm: (bits(h, 9, 9) << 6) | (bits(h, 7, 3) << 1),
            }
        }
        0b0010000 | 0b0010001 => Instr::Ext { op: ExtOp::Sxth, rd, rm, rot: 0 },
        0b0010010 | 0b0010011 => Instr::Ext { op: ExtOp::Sxtb, rd, rm, rot: 0 },
        0b0010100 | 0b0010101 => Instr::Ext { op: ExtOp::Uxth, rd, rm, rot: 0 },
        0b0010110 | 0b0010111 => Instr::Ext { op: ExtOp::Uxtb, rd, rm, rot: 0 },
        0b0100000..=0b0101111 => {
            let regs = (h & 0xff) as u16 | if bit(h, 8) { 1 << 14 } else { 0 };
            if regs == 0 {
                UNDEF
            } else {
                Instr::Multi { load: false, rn: 13, regs, db: true, wback: true }
            }
        }
        0b0110011 => {
            if bits(h, 3, 2) != 0 {
                UNDEF
            } else {
                Instr::Cps { disable: bit(h, 4), i: bit(h, 1), f: bit(h, 0) }
            }
        }
        0b1010000 | 0b1010001 => Instr::Bit { op: BitOp::Rev, rd, rm },
        0b1010010 | 0b1010011 => Instr::Bit { op: BitOp::Rev16, rd, rm },
        0b1010110 | 0b1010111 => Instr::Bit { op: BitOp::Revsh, rd, rm },
        0b1100000..=0b1101111 => {
            let regs = (h & 0xff) as u16 | if bit(h, 8) { 1 << 15 } else { 0 };
            if regs == 0 {
                UNDEF
            } else {
                Instr::Multi { load: true, rn: 13, regs, db: false, wback: true }
            }
        }
        0b1110000..=0b1110111 => Instr::Bkpt((h & 0xff) as u8),
        0b1111000..=0b1111111 => {
            if h & 0xf != 0 {
                let firstcond = bits(h, 7, 4);
                // IT with firstcond 1111, or AL with a mask that makes an "else" AL: UNPREDICTABLE.
                if firstcond == 0xf || (firstcond == 0xe && (h & 0xf).count_ones() != 1) {
                    UNDEF
                } else {
                    Instr::It { state: (h & 0xff) as u8 }
                }
            } else {
                match bits(h, 7, 4) {
                    2 => Instr::Hint(Hint::Wfe),
                    3 => Instr::Hint(Hint::Wfi),
                    4 => Instr::Hint(Hint::Sev),
                    _ => Instr::Hint(Hint::Nop),
                }
            }
        }
        _ => UNDEF,
    }
}

/// 32-bit encodings (A5.3).
fn decode32(h1: u32, h2: u32) -> Instr {
    let op1 = bits(h1, 12, 11);
    let op2 = bits(h1, 10, 4);
    match op1 {
        0b01 => {
            if op2 & 0b1100100 == 0 {
                decode_ldm_stm(h1, h2)
            } else if op2 & 0b1100100 == 0b0000100 {
                decode_dual_excl(h1, h2)
            } else if op2 & 0b1100000 == 0b0100000 {
                decode_dp_shifted(h1, h2)
            } else {
                Instr::Undef(Undef::NoCoprocessor)
            }
        }
        0b10 => {
            if bit(h2, 15) {
                decode_branch_misc(h1, h2)
            } else if op2 & 0b0100000 == 0 {
                decode_dp_modified_imm(h1, h2)
            } else {
                decode_dp_plain_imm(h1, h2)
            }
        }
        _ => {
            if op2 & 0b1000000 != 0 {
                Instr::Undef(Undef::NoCoprocessor)
            } else if op2 & 0b1110001 == 0 {
                decode_store_single(h1, h2)
            } else if op2 & 0b1100111 == 0b0000001 {
                decode_load(h1, h2, Width::B)
            } else if op2 & 0b1100111 == 0b0000011 {
                decode_load(h1, h2, Width::H)
            } else if op2 & 0b1100111 == 0b0000101 {
                decode_load(h1, h2, Width::W)
            } else if op2 & 0b1110000 == 0b0100000 {
                decode_dp_register(h1, h2)
            } else if op2 & 0b1111000 == 0b0110000 {
                decode_multiply(h1, h2)
            } else if op2 & 0b1111000 == 0b0111000 {
                decode_long_multiply(h1, h2)
            } else {
                UNDEF
            }
        }
    }
}

/// A5.3.5
fn decode_ldm_stm(h1: u32, h2: u32) -> Instr {
    let load = bit(h1, 4);
    let wback = bit(h1, 5);
    let rn = bits(h1, 3, 0);
    let regs = h2 as u16;
    let db = match bits(h1, 8, 7) {
        0b01 => false,
        0b10 => true,
        _ => return UNDEF,
    };
    // SP in the list, PC in a store list, PC+LR in a load list, Rn=PC: UNPREDICTABLE.
    if rn == 15
        || regs & (1 << 13) != 0
        || (!load && regs & (1 << 15) != 0)
        || (load && regs & 0xc000 == 0xc000)
    {
        return UNDEF;
    }
    if regs == 0 || (wback && regs & (1 << rn) != 0) {
        return UNDEF;
    }
    Instr::Multi { load, rn: rn as u8, regs, db, wback }
}

/// A5.3.6
fn decode_dual_excl(h1: u32, h2: u32) -> Instr {
    let op1 = bits(h1, 8, 7);
    let op2 = bits(h1, 5, 4);
    let op3 = bits(h2, 7, 4);
    let rn = bits(h1, 3, 0) as u8;
    let rt = bits(h2, 15, 12) as u8;
    let rd = bits(h2, 11, 8) as u8;
    match (op1, op2) {
        (0b00, 0b00) => Instr::Strex { w: Width::W, rd, rt, rn, imm: (h2 & 0xff) << 2 },
        (0b00, 0b01) => Instr::Ldrex { w: Width::W, rt, rn, imm: (h2 & 0xff) << 2 },
        (0b01, 0b00) => match op3 {
            0b0100 => Instr::Strex { w: Width::B, rd: (h2 & 0xf) as u8, rt, rn, imm: 0 },
            0b0101 => Instr::Strex { w: Width::H, rd: (h2 & 0xf) as u8, rt, rn, imm: 0 },
            _ => UNDEF,
        },
        (0b01, 0b01) => match op3 {
            0b0000 => Instr::Table { half: false, rn, rm: (h2 & 0xf) as u8 },
            0b0001 => Instr::Table { half: true, rn, rm: (h2 & 0xf) as u8 },
            0b0100 => Instr::Ldrex { w: Width::B, rt, rn, imm: 0 },
            0b0101 => Instr::Ldrex { w: Width::H, rt, rn, imm: 0 },
            _ => UNDEF,
        },
        _ => {
            let index = bit(h1, 8);
            let wback = bit(h1, 5);
            if !index && !wback {
                return UNDEF;
            }
            let load = bit(h1, 4);
            let rt2 = rd;
            if wback && (rn == rt || rn == rt2) || rn == 15 && (!load || wback) {
                return UNDEF;
            }
            if rt == 13 || rt == 15 || rt2 == 13 || rt2 == 15 || (load && rt == rt2) {
                return UNDEF;
            }
            Instr::Dual { load, rt, rt2, rn, imm: (h2 & 0xff) << 2, add: bit(h1, 7), index, wback }
        }
    }
}

/// Maps the 4-bit data-processing opcode shared by A5.3.1 and A5.3.11 to an operation,
/// turning the rd=15 / rn=15 forms into TST, TEQ, CMN, CMP, MOV, MVN.
fn dp32(opcode: u32, s: bool, rd: u32, rn: u32, op2: Op2) -> Instr {
    let flags = if s { SetFlags::Yes } else { SetFlags::No };
    let compare = rd == 15 && s;
    let (op, rd) = match opcode {
        0b0000 if compare => (DpOp::Tst, 0),
        0b0000 => (DpOp::And, rd),
        0b0001 => (DpOp::Bic, rd),
        0b0010 if rn == 15 => (DpOp::Mov, rd),
        0b0010 => (DpOp::Orr, rd),
        0b0011 if rn == 15 => (DpOp::Mvn, rd),
        0b0011 => (DpOp::Orn, rd),
        0b0100 if compare => (DpOp::Teq, 0),
        0b0100 => (DpOp::Eor, rd),
        0b1000 if compare => (DpOp::Cmn, 0),
        0b1000 => (DpOp::Add, rd),
        0b1010 => (DpOp::Adc, rd),
        0b1011 => (DpOp::Sbc, rd),
        0b1101 if compare => (DpOp::Cmp, 0),
        0b1101 => (DpOp::Sub, rd),
        0b1110 => (DpOp::Rsb, rd),
        _ => return UNDEF,
    };
    let is_compare = matches!(op, DpOp::Tst | DpOp::Teq | DpOp::Cmn | DpOp::Cmp);
    // Rd = PC (other than the compare forms) and Rd = SP outside ADD/SUB/MOV: UNPREDICTABLE.
    if !is_compare && (rd == 15 || rd == 13 && !matches!(op, DpOp::Add | DpOp::Sub | DpOp::Mov)) {
        return UNDEF;
    }
    if !matches!(op, DpOp::Mov | DpOp::Mvn) && rn == 15 {
        return UNDEF;
    }
    dp(op, flags, rd, rn, op2)
}

/// A5.3.11
fn decode_dp_shifted(h1: u32, h2: u32) -> Instr {
    let rm = h2 & 0xf;
    if rm == 13 || rm == 15 {
        return UNDEF;
    }
    let (shift, amount) = imm_shift(bits(h2, 5, 4), (bits(h2, 14, 12) << 2) | bits(h2, 7, 6));
    let op2 = Op2::Reg { rm: rm as u8, shift, amount };
    dp32(bits(h1, 8, 5), bit(h1, 4), bits(h2, 11, 8), bits(h1, 3, 0), op2)
}

/// A5.3.1
fn decode_dp_modified_imm(h1: u32, h2: u32) -> Instr {
    let imm12 = (bits(h1, 10, 10) << 11) | (bits(h2, 14, 12) << 8) | (h2 & 0xff);
    let Some((value, carry)) = thumb_expand_imm(imm12) else {
        return UNDEF;
    };
    let opcode = bits(h1, 8, 5);
    // Arithmetic operations ignore the expansion's carry.
    let logical = matches!(opcode, 0b0000..=0b0100);
    let op2 = Op2::Imm { value, carry: if logical { carry } else { None } };
    dp32(opcode, bit(h1, 4), bits(h2, 11, 8), bits(h1, 3, 0), op2)
}

/// A5.3.3
fn decode_dp_plain_imm(h1: u32, h2: u32) -> Instr {
    let rn = bits(h1, 3, 0);
    let rd = bits(h2, 11, 8);
    let imm12 = (bits(h1, 10, 10) << 11) | (bits(h2, 14, 12) << 8) | (h2 & 0xff);
    let imm16 = (rn << 12) | imm12;
    let shift_imm = (bits(h2, 14, 12) << 2) | bits(h2, 7, 6);
    if rd == 15 || (rd == 13 && !matches!(bits(h1, 8, 4), 0b00000 | 0b01010)) {
        return UNDEF;
    }
    match bits(h1, 8, 4) {
        0b00000 if rn == 15 => Instr::Adr { rd: rd as u8, imm: imm12 as i32 },
        0b00000 => dp(DpOp::Add, SetFlags::No, rd, rn, imm(imm12)),
        0b01010 if rn == 15 => Instr::Adr { rd: rd as u8, imm: -(imm12 as i32) },
        0b01010 => dp(DpOp::Sub, SetFlags::No, rd, rn, imm(imm12)),
        0b00100 => dp(DpOp::Mov, SetFlags::No, rd, 0, imm(imm16)),
        0b01100 => Instr::Movt { rd: rd as u8, imm: imm16 as u16 },
        op @ (0b10000 | 0b10010 | 0b11000 | 0b11010) => {
            let signed = op & 0b01000 == 0;
            let asr = bit(h1, 5);
            if asr && shift_imm == 0 || rn == 13 || rn == 15 {
                return UNDEF; // SSAT16 / USAT16 (DSP) or UNPREDICTABLE
            }
            let (shift, amount) =
                if asr { (Shift::Asr, shift_imm as u8) } else { (Shift::Lsl, shift_imm as u8) };
            let sat = h2 & 0x1f;
            Instr::Sat {
                signed,
                rd: rd as u8,
                rn: rn as u8,
                bits: if signed { sat + 1 } else { sat } as u8,
                shift,
                amount,
            }
        }
        op @ (0b10100 | 0b11100) => {
            let width = (h2 & 0x1f) + 1;
            if shift_imm + width > 32 || rn == 13 || rn == 15 {
                return UNDEF;
            }
            let op = if op == 0b10100 { BfOp::Sbfx } else { BfOp::Ubfx };
            Instr::Bf { op, rd: rd as u8, rn: rn as u8, lsb: shift_imm as u8, width: width as u8 }
        }
        0b10110 => {
            let msb = h2 & 0x1f;
            if msb < shift_imm || rn == 13 {
                return UNDEF;
            }
            let op = if rn == 15 { BfOp::Bfc } else { BfOp::Bfi };
            Instr::Bf {
                op,
                rd: rd as u8,
                rn: rn as u8,
                lsb: shift_imm as u8,
                width: (msb - shift_imm + 1) as u8,
            }
        }
        _ => UNDEF,
    }
}

/// A5.3.4
fn decode_branch_misc(h1: u32, h2: u32) -> Instr {
    let op1 = bits(h2, 14, 12);
    let op = bits(h1, 10, 4);
    let s = bits(h1, 10, 10);
    let (j1, j2) = (bits(h2, 13, 13), bits(h2, 11, 11));
    match op1 {
        0b000 | 0b010 => {
            if op & 0b0111000 != 0b0111000 {
                let imm = (s << 20) | (j2 << 19) | (j1 << 18) | (bits(h1, 5, 0) << 12) | ((h2 & 0x7ff) << 1);
                return Instr::B { cond: bits(h1, 9, 6) as u8, imm: sign_extend(imm, 21) };
            }
            if op1 == 0b010 {
                return UNDEF; // UDF.W (permanently undefined) and unallocated
            }
            match op {
                0b0111000 | 0b0111001 => {
                    let rn = bits(h1, 3, 0);
                    let mask = bits(h2, 11, 10);
                    let sysm = h2 & 0xff;
                    if rn == 13 || rn == 15 || bits(h2, 9, 8) != 0 || mask == 0 && sysm < 4 {
                        return UNDEF;
                    }
                    Instr::Msr { rn: rn as u8, sysm: sysm as u8, mask: mask as u8 }
                }
                // Hints (A5.3.4): only op1 = hw2[10:8] = 0b000 is allocated; the others are
                // CPS.W on ARMv7-A/R and UNDEFINED on ARMv7-M.
                0b0111010 if bits(h2, 10, 8) != 0 => UNDEF,
                0b0111010 => match h2 & 0xff {
                    2 => Instr::Hint(Hint::Wfe),
                    3 => Instr::Hint(Hint::Wfi),
                    4 => Instr::Hint(Hint::Sev),
                    _ => Instr::Hint(Hint::Nop),
                },
                0b0111011 => match bits(h2, 7, 4) {
                    0b0010 => Instr::Clrex,
                    0b0100..=0b0110 => Instr::Hint(Hint::Nop), // DSB, DMB, ISB
                    _ => UNDEF,
                },
                0b0111110 | 0b0111111 => {
                    let rd = bits(h2, 11, 8);
                    if rd == 13 || rd == 15 {
                        return UNDEF;
                    }
                    Instr::Mrs { rd: rd as u8, sysm: (h2 & 0xff) as u8 }
                }
                _ => UNDEF,
            }
        }
        0b001 | 0b011 | 0b101 | 0b111 => {
            let i1 = !(j1 ^ s) & 1;
            let i2 = !(j2 ^ s) & 1;
            let imm = (s << 24) | (i1 << 23) | (i2 << 22) | (bits(h1, 9, 0) << 12) | ((h2 & 0x7ff) << 1);
            let imm = sign_extend(imm, 25);
            if op1 & 0b100 != 0 {
                Instr::Bl { imm }
            } else {
                Instr::B { cond: 14, imm }
            }
        }
        // BLX (immediate) would switch to ARM state, which ARMv7-M does not have.
        _ => UNDEF,
    }
}

/// A5.3.10
fn decode_store_single(h1: u32, h2: u32) -> Instr {
    let w = match bits(h1, 6, 5) {
        0 => Width::B,
        1 => Width::H,
        2 => Width::W,
        _ => return UNDEF,
    };
    let rn = bits(h1, 3, 0) as u8;
    let rt = bits(h2, 15, 12) as u8;
    if rn == 15 || rt == 15 || (rt == 13 && w != Width::W) {
        return UNDEF;
    }
    match single_addressing(h1, h2) {
        Some((off, add, index, wback)) => {
            if wback && rn == rt {
                return UNDEF;
            }
            Instr::Str { w, rt, rn, off, add, index, wback }
        }
        None => UNDEF,
    }
}

/// The addressing forms shared by 32-bit single loads and stores with Rn != PC:
/// imm12 (bit 7 of hw1), imm8 with P/U/W (hw2[11] set), register with LSL #0..3.
fn single_addressing(h1: u32, h2: u32) -> Option<(Offset, bool, bool, bool)> {
    if bit(h1, 7) {
        return Some((Offset::Imm(h2 & 0xfff), true, true, false));
    }
    if bit(h2, 11) {
        let (p, u, w) = (bit(h2, 10), bit(h2, 9), bit(h2, 8));
        if !p && !w {
            return None;
        }
        return Some((Offset::Imm(h2 & 0xff), u, p, w));
    }
    if bits(h2, 11, 6) == 0 {
        let rm = h2 & 0xf;
        if rm == 13 || rm == 15 {
            return None;
        }
        return Some((Offset::Reg { rm: rm as u8, shift: bits(h2, 5, 4) as u8 }, true, true, false));
    }
    None
}

/// A5.3.7 (word), A5.3.8 (halfword), A5.3.9 (byte), incl. memory hints.
fn decode_load(h1: u32, h2: u32, size: Width) -> Instr {
    let signed = bit(h1, 8);
    let w = match (size, signed) {
        (Width::W, true) => return UNDEF,
        (Width::W, false) => Width::W,
        (Width::B, false) => Width::B,
        (Width::B, true) => Width::Sb,
        (_, false) => Width::H,
        (_, true) => Width::Sh,
    };
    let rn = bits(h1, 3, 0) as u8;
    let rt = bits(h2, 15, 12) as u8;
    if rn == 15 {
        let instr = Instr::Ldr {
            w,
            rt,
            rn,
            off: Offset::Imm(h2 & 0xfff),
            add: bit(h1, 7),
            index: true,
            wback: false,
        };
        return if rt == 15 && w != Width::W { Instr::Hint(Hint::Nop) } else { instr };
    }
    let Some((off, add, index, wback)) = single_addressing(h1, h2) else {
        return UNDEF;
    };
    if rt == 15 && w != Width::W {
        // PLD, PLI and unallocated hints: no effect here (caches are not modelled).
        return Instr::Hint(Hint::Nop);
    }
    if wback && rn == rt || rt == 13 && w != Width::W {
        return UNDEF;
    }
    Instr::Ldr { w, rt, rn, off, add, index, wback }
}

/// A5.3.12
fn decode_dp_register(h1: u32, h2: u32) -> Instr {
    let op1 = bits(h1, 7, 4);
    let op2 = bits(h2, 7, 4);
    let rn = bits(h1, 3, 0);
    let rd = bits(h2, 11, 8);
    let rm = h2 & 0xf;
    if rd == 13 || rd == 15 || rm == 13 || rm == 15 {
        return UNDEF;
    }
    if op2 == 0 && op1 & 0b1000 == 0 {
        if rn == 13 || rn == 15 || bits(h2, 15, 12) != 0b1111 {
            return UNDEF;
        }
        let shift = match op1 >> 1 {
            0 => Shift::Lsl,
            1 => Shift::Lsr,
            2 => Shift::Asr,
            _ => Shift::Ror,
        };
        let s = if op1 & 1 != 0 { SetFlags::Yes } else { SetFlags::No };
        return dp(DpOp::Mov, s, rd, 0, Op2::RegReg { rm: rn as u8, shift, rs: rm as u8 });
    }
    if op2 & 0b1000 != 0 && op1 & 0b1000 == 0 {
        // Only the forms without add (Rn = PC) exist on ARMv7-M without DSP.
        if rn != 15 || bits(h2, 15, 12) != 0b1111 || bit(h2, 6) {
            return UNDEF;
        }
        let op = match op1 {
            0b0000 => ExtOp::Sxth,
            0b0001 => ExtOp::Uxth,
            0b0100 => ExtOp::Sxtb,
            0b0101 => ExtOp::Uxtb,
            _ => return UNDEF,
        };
        return Instr::Ext { op, rd: rd as u8, rm: rm as u8, rot: (bits(h2, 5, 4) * 8) as u8 };
    }
    if op1 & 0b1100 == 0b1000 && op2 & 0b1100 == 0b1000 {
        // A5.3.16 miscellaneous operations; Rn must equal Rm.
        if rn != rm || bits(h2, 15, 12) != 0b1111 {
            return UNDEF;
        }
        let op = match (op1 & 3, op2 & 3) {
            (0b01, 0b00) => BitOp::Rev,
            (0b01, 0b01) => BitOp::Rev16,
            (0b01, 0b10) => BitOp::Rbit,
            (0b01, 0b11) => BitOp::Revsh,
            (0b11, 0b00) => BitOp::Clz,
            _ => return UNDEF,
        };
        return Instr::Bit { op, rd: rd as u8, rm: rm as u8 };
    }
    UNDEF
}

/// A5.3.13
fn decode_multiply(h1: u32, h2: u32) -> Instr {
    let rn = bits(h1, 3, 0);
    let ra = bits(h2, 15, 12);
    let rd = bits(h2, 11, 8);
    let rm = h2 & 0xf;
    // hw2[7:6] are '00' in every A5.3.13 encoding (MLA, MLS, MUL); other values are
    // unallocated (UNDEFINED), not MLA/MLS.
    if bits(h1, 6, 4) != 0
        || bits(h2, 7, 6) != 0
        || [rn, rd, rm].iter().any(|&r| r == 13 || r == 15)
        || ra == 13
    {
        return UNDEF;
    }
    match bits(h2, 5, 4) {
        0b00 if ra == 15 => dp(DpOp::Mul, SetFlags::No, rd, rn, reg(rm)),
        0b00 => Instr::Mul { op: MulOp::Mla, rd: rd as u8, rn: rn as u8, rm: rm as u8, ra: ra as u8 },
        0b01 if ra != 15 => {
            Instr::Mul { op: MulOp::Mls, rd: rd as u8, rn: rn as u8, rm: rm as u8, ra: ra as u8 }
        }
        _ => UNDEF,
    }
}

/// A5.3.14
fn decode_long_multiply(h1: u32, h2: u32) -> Instr {
    let rn = bits(h1, 3, 0);
    let rdlo = bits(h2, 15, 12);
    let rdhi = bits(h2, 11, 8);
    let rm = h2 & 0xf;
    let bad = |r: u32| r == 13 || r == 15;
    match (bits(h1, 6, 4), bits(h2, 7, 4)) {
        (op1 @ (0b001 | 0b011), 0b1111) => {
            if bad(rn) || bad(rdhi) || bad(rm) || rdlo != 0b1111 {
                return UNDEF;
            }
            Instr::Div { signed: op1 == 0b001, rd: rdhi as u8, rn: rn as u8, rm: rm as u8 }
        }
        (op1 @ (0b000 | 0b010 | 0b100 | 0b110), 0b0000) => {
            if bad(rn) || bad(rdhi) || bad(rm) || bad(rdlo) || rdhi == rdlo {
                return UNDEF;
            }
            let op = match op1 {
                0b000 => LongMulOp::Smull,
                0b010 => LongMulOp::Umull,
                0b100 => LongMulOp::Smlal,
                _ => LongMulOp::Umlal,
            };
            Instr::LongMul { op, rdlo: rdlo as u8, rdhi: rdhi as u8, rn: rn as u8, rm: rm as u8 }
        }
        _ => UNDEF,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(hw: &[u16]) -> Instr {
        decode(hw[0], hw.get(1).copied().unwrap_or(0)).0
    }

    #[rustfmt::skip]
    #[test]
    fn decode_table() {
        use Instr::*;
        let cases: &[(&[u16], Instr)] = &[
            // movs r0, #5
            (&[0x2005], Dp { op: DpOp::Mov, s: SetFlags::OutsideIt, rd: 0, rn: 0, op2: Op2::Imm { value: 5, carry: None } }),
            // adds r1, r2, r3
            (&[0x18d1], Dp { op: DpOp::Add, s: SetFlags::OutsideIt, rd: 1, rn: 2, op2: Op2::Reg { rm: 3, shift: Shift::Lsl, amount: 0 } }),
            // lsrs r0, r1, #32 (imm5 = 0)
            (&[0x0808], Dp { op: DpOp::Mov, s: SetFlags::OutsideIt, rd: 0, rn: 0, op2: Op2::Reg { rm: 1, shift: Shift::Lsr, amount: 32 } }),
            // bx lr
            (&[0x4770], Bx { rm: 14 }),
            // push {r4, lr}
            (&[0xb510], Multi { load: false, rn: 13, regs: 0x4010, db: true, wback: true }),
            // pop {r4, pc}
            (&[0xbd10], Multi { load: true, rn: 13, regs: 0x8010, db: false, wback: true }),
            // ldr r0, [pc, #8]
            (&[0x4802], Ldr { w: Width::W, rt: 0, rn: 15, off: Offset::Imm(8), add: true, index: true, wback: false }),
            // bkpt 0xab
            (&[0xbeab], Bkpt(0xab)),
            // svc 3
            (&[0xdf03], Svc(3)),
            // udf #0
            (&[0xde00], Undef(super::Undef::Undefined)),
            // wfi
            (&[0xbf30], Hint(super::Hint::Wfi)),
            // ite eq
            (&[0xbf0c], It { state: 0x0c }),
            // cbz r0, +4
            (&[0xb110], Cbz { nonzero: false, rn: 0, imm: 4 }),
            // bl (offset -4): f7ff fffe
            (&[0xf7ff, 0xfffe], Bl { imm: -4 }),
            // b.w +0x1000: f001 b800
            (&[0xf001, 0xb800], B { cond: 14, imm: 0x1000 }),
            // udiv r0, r1, r2: fbb1 f0f2
            (&[0xfbb1, 0xf0f2], Div { signed: false, rd: 0, rn: 1, rm: 2 }),
            // umull r0, r1, r2, r3: fba2 0103
            (&[0xfba2, 0x0103], LongMul { op: LongMulOp::Umull, rdlo: 0, rdhi: 1, rn: 2, rm: 3 }),
            // movw r0, #0x1234: f241 2034
            (&[0xf241, 0x2034], Dp { op: DpOp::Mov, s: SetFlags::No, rd: 0, rn: 0, op2: Op2::Imm { value: 0x1234, carry: None } }),
            // movt r0, #0x5678: f2c5 6078
            (&[0xf2c5, 0x6078], Movt { rd: 0, imm: 0x5678 }),
            // ldr.w r0, [r1, #-4]!: f851 0d04
            (&[0xf851, 0x0d04], Ldr { w: Width::W, rt: 0, rn: 1, off: Offset::Imm(4), add: false, index: true, wback: true }),
            // strd r2, r3, [sp, #8]: e9cd 2302
            (&[0xe9cd, 0x2302], Dual { load: false, rt: 2, rt2: 3, rn: 13, imm: 8, add: true, index: true, wback: false }),
            // tbb [pc, r0]: e8df f000
            (&[0xe8df, 0xf000], Table { half: false, rn: 15, rm: 0 }),
            // ldrex r0, [r1]: e851 0f00
            (&[0xe851, 0x0f00], Ldrex { w: Width::W, rt: 0, rn: 1, imm: 0 }),
            // strex r2, r0, [r1]: e841 0200
            (&[0xe841, 0x0200], Strex { w: Width::W, rd: 2, rt: 0, rn: 1, imm: 0 }),
            // mrs r0, primask: f3ef 8010
            (&[0xf3ef, 0x8010], Mrs { rd: 0, sysm: 16 }),
            // msr basepri, r0: f380 8811
            (&[0xf380, 0x8811], Msr { rn: 0, sysm: 17, mask: 2 }),
            // clz r0, r1: fab1 f081
            (&[0xfab1, 0xf081], Bit { op: BitOp::Clz, rd: 0, rm: 1 }),
            // ubfx r0, r1, #4, #8: f3c1 1007
            (&[0xf3c1, 0x1007], Bf { op: BfOp::Ubfx, rd: 0, rn: 1, lsb: 4, width: 8 }),
            // bfc r0, #8, #4: f36f 200b
            (&[0xf36f, 0x200b], Bf { op: BfOp::Bfc, rd: 0, rn: 15, lsb: 8, width: 4 }),
            // cmp.w r0, #0x100: f5b0 7f80
            (&[0xf5b0, 0x7f80], Dp { op: DpOp::Cmp, s: SetFlags::Yes, rd: 0, rn: 0, op2: Op2::Imm { value: 0x100, carry: None } }),
            // vadd.f32 (coprocessor)
            (&[0xee30, 0x0a20], Undef(super::Undef::NoCoprocessor)),
            // dsb sy: f3bf 8f4f
            (&[0xf3bf, 0x8f4f], Hint(super::Hint::Nop)),
            // cpsid i
            (&[0xb672], Cps { disable: true, i: true, f: false }),
            // hw2[7:6] != 00 in the multiply space is unallocated, not MLA/MLS (found by the
            // differential test): fb00 ce8c, fb02 505a
            (&[0xfb00, 0xce8c], Undef(super::Undef::Undefined)),
            (&[0xfb02, 0x505a], Undef(super::Undef::Undefined)),
            // mla r0, r1, r2, r3 still decodes: fb01 3002
            (&[0xfb01, 0x3002], Mul { op: MulOp::Mla, rd: 0, rn: 1, rm: 2, ra: 3 }),
            // hint space with op1 = hw2[10:8] != 000 (CPS.W on ARMv7-A) is UNDEFINED, not a NOP
            // (found by the differential test): f3ad 864b
            (&[0xf3ad, 0x864b], Undef(super::Undef::Undefined)),
        ];
        for (hw, want) in cases {
            assert_eq!(d(hw), *want, "decoding {hw:04x?}");
        }
    }

    #[test]
    fn modified_immediates() {
        assert_eq!(thumb_expand_imm(0x0ab), Some((0xab, None)));
        assert_eq!(thumb_expand_imm(0x1ab), Some((0x00ab_00ab, None)));
        assert_eq!(thumb_expand_imm(0x2ab), Some((0xab00_ab00, None)));
        assert_eq!(thumb_expand_imm(0x3ab), Some((0xabab_abab, None)));
        assert_eq!(thumb_expand_imm(0x100), None);
        // 0x4ff: rotate 0xff by 9 -> 0x7f800000; carry = bit 31 = 0
        assert_eq!(thumb_expand_imm(0x4ff), Some((0x7f80_0000, Some(false))));
        assert_eq!(thumb_expand_imm(0x400), Some((0x8000_0000, Some(true))));
    }

    #[test]
    fn every_halfword_pair_decodes_without_panicking() {
        // All 16-bit encodings, and every first halfword of a 32-bit one with a spread of
        // second halfwords.
        for h1 in 0..=u16::MAX {
            for h2 in [0u16, 0xffff, 0x8000, 0x0f0f, 0xf0f0, 0x1234, 0xedcb] {
                let _ = decode(h1, h2);
            }
        }
    }
}
