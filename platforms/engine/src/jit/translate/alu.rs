//! Data processing, shifts, bitfields, extends, multiplies and divides (A7.7, as the
//! interpreter's [`crate::cpu::execute`]).

use super::{Tx, C, V};
use crate::cpu::instr::*;
use crate::timing::{DIV, LONG_MUL, MUL_ACC};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};

impl Tx<'_, '_> {
    // ---- arithmetic helpers ----

    /// AddWithCarry (A2.2.1): result, carry, overflow.
    fn add_with_carry(&mut self, a: Value, b: Value, carry: Value) -> (Value, Value, Value) {
        let a64 = self.b.ins().uextend(types::I64, a);
        let b64 = self.b.ins().uextend(types::I64, b);
        let c64 = self.b.ins().uextend(types::I64, carry);
        let s = self.b.ins().iadd(a64, b64);
        let s = self.b.ins().iadd(s, c64);
        let r = self.b.ins().ireduce(types::I32, s);
        let hi = self.b.ins().ushr_imm_u(s, 32);
        let c = self.b.ins().ireduce(types::I8, hi);
        let x = self.b.ins().bxor(a, r);
        let y = self.b.ins().bxor(b, r);
        let t = self.b.ins().band(x, y);
        let v = self.b.ins().icmp_imm_u(IntCC::SignedLessThan, t, 0);
        (r, c, v)
    }

    /// Shift_C by a constant amount (A7.4.2): the value and the carry out (`None`: C unchanged).
    fn shift_const(&mut self, v: Value, shift: Shift, amount: u8) -> (Value, Option<Value>) {
        let a = i64::from(amount);
        if amount == 0 && shift != Shift::Rrx {
            return (v, None);
        }
        let bit = |tx: &mut Self, v: Value, n: i64| {
            let s = tx.b.ins().ushr_imm_u(v, n);
            let s = tx.b.ins().band_imm_u(s, 1);
            tx.b.ins().ireduce(types::I8, s)
        };
        match shift {
            Shift::Lsl => match amount {
                1..=31 => {
                    let c = bit(self, v, 32 - a);
                    (self.b.ins().ishl_imm_u(v, a), Some(c))
                }
                32 => {
                    let c = bit(self, v, 0);
                    (self.iconst(0), Some(c))
                }
                _ => {
                    let c = self.b.ins().iconst(types::I8, 0);
                    (self.iconst(0), Some(c))
                }
            },
            Shift::Lsr => match amount {
                1..=31 => {
                    let c = bit(self, v, a - 1);
                    (self.b.ins().ushr_imm_u(v, a), Some(c))
                }
                32 => {
                    let c = bit(self, v, 31);
                    (self.iconst(0), Some(c))
                }
                _ => {
                    let c = self.b.ins().iconst(types::I8, 0);
                    (self.iconst(0), Some(c))
                }
            },
            Shift::Asr => {
                if amount >= 32 {
                    let fill = self.b.ins().sshr_imm_u(v, 31);
                    let c = bit(self, v, 31);
                    (fill, Some(c))
                } else {
                    let c = bit(self, v, a - 1);
                    (self.b.ins().sshr_imm_u(v, a), Some(c))
                }
            }
            Shift::Ror => {
                let r = self.b.ins().rotr_imm_u(v, a % 32);
                let c = bit(self, r, 31);
                (r, Some(c))
            }
            Shift::Rrx => {
                let c_in = self.flag(C);
                let c32 = self.b.ins().uextend(types::I32, c_in);
                let top = self.b.ins().ishl_imm_u(c32, 31);
                let low = self.b.ins().ushr_imm_u(v, 1);
                let r = self.b.ins().bor(top, low);
                let c = bit(self, v, 0);
                (r, Some(c))
            }
        }
    }

    /// Shift by the bottom byte of a register, value only (no carry).
    fn shift_var(&mut self, v: Value, shift: Shift, amount: Value) -> Value {
        let amt = self.b.ins().band_imm_u(amount, 0xff);
        let small = self.b.ins().icmp_imm_u(IntCC::UnsignedLessThan, amt, 32);
        match shift {
            Shift::Lsl | Shift::Lsr => {
                let s =
                    if shift == Shift::Lsl { self.b.ins().ishl(v, amt) } else { self.b.ins().ushr(v, amt) };
                let zero = self.iconst(0);
                self.b.ins().select(small, s, zero)
            }
            Shift::Asr => {
                let s = self.b.ins().sshr(v, amt);
                let fill = self.b.ins().sshr_imm_u(v, 31);
                self.b.ins().select(small, s, fill)
            }
            Shift::Ror | Shift::Rrx => {
                let a = self.b.ins().band_imm_u(amt, 31);
                self.b.ins().rotr(v, a)
            }
        }
    }

    /// Data processing (A7.7, as `exec_dp`), outside IT blocks.
    pub(super) fn dp(&mut self, op: DpOp, setflags: bool, rd: u8, rn: u8, op2: Op2) {
        let (b, shifter_carry) = match op2 {
            Op2::Imm { value, carry } => {
                let c = carry.map(|c| self.b.ins().iconst(types::I8, i64::from(c)));
                (self.iconst(value), c)
            }
            Op2::Reg { rm, shift, amount } => {
                let v = self.reg(rm);
                self.shift_const(v, shift, amount)
            }
            Op2::RegReg { rm, shift, rs } => {
                let (v, a) = (self.reg(rm), self.reg(rs));
                (self.shift_var(v, shift, a), None)
            }
        };
        let a = if matches!(op, DpOp::Mov | DpOp::Mvn) { b } else { self.reg(rn) };
        let one = || 1i64;
        let mut arith_cv = None;
        let r = match op {
            DpOp::And | DpOp::Tst => self.b.ins().band(a, b),
            DpOp::Eor | DpOp::Teq => self.b.ins().bxor(a, b),
            DpOp::Orr => self.b.ins().bor(a, b),
            DpOp::Orn => self.b.ins().bor_not(a, b),
            DpOp::Bic => self.b.ins().band_not(a, b),
            DpOp::Mov => b,
            DpOp::Mvn => self.b.ins().bnot(b),
            DpOp::Mul => self.b.ins().imul(a, b),
            DpOp::Add | DpOp::Cmn | DpOp::Adc | DpOp::Sub | DpOp::Cmp | DpOp::Sbc | DpOp::Rsb => {
                if !setflags && matches!(op, DpOp::Add | DpOp::Sub | DpOp::Rsb) {
                    // No flags: plain 32-bit arithmetic.
                    match op {
                        DpOp::Add => self.b.ins().iadd(a, b),
                        DpOp::Sub => self.b.ins().isub(a, b),
                        _ => self.b.ins().isub(b, a),
                    }
                } else if matches!(op, DpOp::Add | DpOp::Cmn | DpOp::Sub | DpOp::Cmp | DpOp::Rsb) {
                    // A constant carry in: 32-bit forms of AddWithCarry's carry and overflow.
                    let (x, y) = if op == DpOp::Rsb { (b, a) } else { (a, b) };
                    let (r, c, v) = if matches!(op, DpOp::Add | DpOp::Cmn) {
                        let r = self.b.ins().iadd(x, y);
                        let c = self.b.ins().icmp(IntCC::UnsignedLessThan, r, x);
                        let p = self.b.ins().bxor(x, r);
                        let q = self.b.ins().bxor(y, r);
                        let t = self.b.ins().band(p, q);
                        (r, c, self.b.ins().icmp_imm_u(IntCC::SignedLessThan, t, 0))
                    } else {
                        // x - y: C = no borrow (x >= y), V = operands' signs differ and the
                        // result's differs from x's.
                        let r = self.b.ins().isub(x, y);
                        let c = self.b.ins().icmp(IntCC::UnsignedGreaterThanOrEqual, x, y);
                        let p = self.b.ins().bxor(x, y);
                        let q = self.b.ins().bxor(x, r);
                        let t = self.b.ins().band(p, q);
                        (r, c, self.b.ins().icmp_imm_u(IntCC::SignedLessThan, t, 0))
                    };
                    arith_cv = Some((c, v));
                    r
                } else {
                    let (x, y, cin) = match op {
                        DpOp::Add | DpOp::Cmn => (a, b, self.b.ins().iconst(types::I8, 0)),
                        DpOp::Adc => (a, b, self.flag(C)),
                        DpOp::Sub | DpOp::Cmp => {
                            let nb = self.b.ins().bnot(b);
                            (a, nb, self.b.ins().iconst(types::I8, one()))
                        }
                        DpOp::Sbc => {
                            let nb = self.b.ins().bnot(b);
                            (a, nb, self.flag(C))
                        }
                        _ => {
                            let na = self.b.ins().bnot(a);
                            (na, b, self.b.ins().iconst(types::I8, one()))
                        }
                    };
                    let (r, c, v) = self.add_with_carry(x, y, cin);
                    arith_cv = Some((c, v));
                    r
                }
            }
        };
        if setflags {
            self.set_nz(r);
            match arith_cv {
                Some((c, v)) => {
                    self.set_flag(C, c);
                    self.set_flag(V, v);
                }
                None if op == DpOp::Mul => {}
                None => {
                    if let Some(c) = shifter_carry {
                        self.set_flag(C, c);
                    }
                }
            }
        }
        if !matches!(op, DpOp::Tst | DpOp::Teq | DpOp::Cmp | DpOp::Cmn) {
            self.set_reg(rd, r);
        }
    }

    /// ADR (A7.7.7): the word-aligned PC plus an offset.
    pub(super) fn adr(&mut self, rd: u8, imm: i32) -> u32 {
        let pc4 = self.pc.wrapping_add(4);
        let v = self.iconst((pc4 & !3).wrapping_add(imm as u32));
        self.set_reg(rd, v);
        1
    }

    /// MOVT (A7.7.79): the top halfword.
    pub(super) fn movt(&mut self, rd: u8, imm: u16) -> u32 {
        let old = self.reg(rd);
        let lo = self.b.ins().band_imm_u(old, 0xffff);
        let v = self.b.ins().bor_imm_u(lo, i64::from(imm) << 16);
        self.set_reg(rd, v);
        1
    }

    /// SBFX, UBFX, BFI, BFC.
    pub(super) fn bitfield(&mut self, op: BfOp, rd: u8, rn: u8, lsb: u8, width: u8) -> u32 {
        let (lsb, width) = (i64::from(lsb), i64::from(width));
        let m: i64 = if width >= 32 { 0xffff_ffff } else { (1i64 << width) - 1 };
        let v = match op {
            BfOp::Sbfx => {
                let x = self.reg(rn);
                let x = self.b.ins().ishl_imm_u(x, 32 - lsb - width);
                self.b.ins().sshr_imm_u(x, 32 - width)
            }
            BfOp::Ubfx => {
                let x = self.reg(rn);
                let x = self.b.ins().ushr_imm_u(x, lsb);
                self.b.ins().band_imm_u(x, m)
            }
            BfOp::Bfi => {
                let d = self.reg(rd);
                let d = self.b.ins().band_imm_u(d, !(m << lsb) & 0xffff_ffff);
                let x = self.reg(rn);
                let x = self.b.ins().band_imm_u(x, m);
                let x = self.b.ins().ishl_imm_u(x, lsb);
                self.b.ins().bor(d, x)
            }
            BfOp::Bfc => {
                let d = self.reg(rd);
                self.b.ins().band_imm_u(d, !(m << lsb) & 0xffff_ffff)
            }
        };
        self.set_reg(rd, v);
        1
    }

    /// CLZ, RBIT, REV, REV16, REVSH.
    pub(super) fn bit(&mut self, op: BitOp, rd: u8, rm: u8) -> u32 {
        let v = self.reg(rm);
        let r = match op {
            BitOp::Clz => self.b.ins().clz(v),
            BitOp::Rbit => self.b.ins().bitrev(v),
            BitOp::Rev => self.b.ins().bswap(v),
            BitOp::Rev16 => {
                let a = self.b.ins().band_imm_u(v, 0x00ff_00ff);
                let a = self.b.ins().ishl_imm_u(a, 8);
                let b = self.b.ins().ushr_imm_u(v, 8);
                let b = self.b.ins().band_imm_u(b, 0x00ff_00ff);
                self.b.ins().bor(a, b)
            }
            BitOp::Revsh => {
                let h = self.b.ins().ireduce(types::I16, v);
                let h = self.b.ins().bswap(h);
                self.b.ins().sextend(types::I32, h)
            }
        };
        self.set_reg(rd, r);
        1
    }

    /// SXTB, SXTH, UXTB, UXTH (with rotation).
    pub(super) fn extend(&mut self, op: ExtOp, rd: u8, rm: u8, rot: u8) -> u32 {
        let v = self.reg(rm);
        let v = self.b.ins().rotr_imm_u(v, i64::from(rot));
        let r = match op {
            ExtOp::Sxtb | ExtOp::Sxth => {
                let t = if op == ExtOp::Sxtb { types::I8 } else { types::I16 };
                let n = self.b.ins().ireduce(t, v);
                self.b.ins().sextend(types::I32, n)
            }
            ExtOp::Uxtb => self.b.ins().band_imm_u(v, 0xff),
            ExtOp::Uxth => self.b.ins().band_imm_u(v, 0xffff),
        };
        self.set_reg(rd, r);
        1
    }

    /// MLA, MLS.
    pub(super) fn mul(&mut self, op: MulOp, rd: u8, rn: u8, rm: u8, ra: u8) -> u32 {
        let (a, b, acc) = (self.reg(rn), self.reg(rm), self.reg(ra));
        let p = self.b.ins().imul(a, b);
        let v = match op {
            MulOp::Mla => self.b.ins().iadd(p, acc),
            MulOp::Mls => self.b.ins().isub(acc, p),
        };
        self.set_reg(rd, v);
        MUL_ACC
    }

    /// SMULL, UMULL, SMLAL, UMLAL.
    pub(super) fn long_mul(&mut self, op: LongMulOp, rdlo: u8, rdhi: u8, rn: u8, rm: u8) -> u32 {
        let (a, b) = (self.reg(rn), self.reg(rm));
        let signed = matches!(op, LongMulOp::Smull | LongMulOp::Smlal);
        let (a, b) = if signed {
            (self.b.ins().sextend(types::I64, a), self.b.ins().sextend(types::I64, b))
        } else {
            (self.b.ins().uextend(types::I64, a), self.b.ins().uextend(types::I64, b))
        };
        let mut r = self.b.ins().imul(a, b);
        if matches!(op, LongMulOp::Smlal | LongMulOp::Umlal) {
            let (lo, hi) = (self.reg(rdlo), self.reg(rdhi));
            let lo = self.b.ins().uextend(types::I64, lo);
            let hi = self.b.ins().uextend(types::I64, hi);
            let hi = self.b.ins().ishl_imm_u(hi, 32);
            let acc = self.b.ins().bor(hi, lo);
            r = self.b.ins().iadd(r, acc);
        }
        let lo = self.b.ins().ireduce(types::I32, r);
        let hi = self.b.ins().ushr_imm_u(r, 32);
        let hi = self.b.ins().ireduce(types::I32, hi);
        self.set_reg(rdlo, lo);
        self.set_reg(rdhi, hi);
        LONG_MUL
    }

    /// SDIV, UDIV; a divide by zero bails.
    pub(super) fn div(&mut self, signed: bool, rd: u8, rn: u8, rm: u8) -> u32 {
        let (n, m) = (self.reg(rn), self.reg(rm));
        // Divide by zero: the interpreter decides between 0 and the DIVBYZERO trap.
        let zero = self.b.ins().icmp_imm_u(IntCC::Equal, m, 0);
        self.bail_if(zero);
        let v = if signed {
            // x / -1 is -x (wrapping for i32::MIN, where `sdiv` would trap).
            let minus_one = self.b.ins().icmp_imm_u(IntCC::Equal, m, 0xffff_ffff);
            let one = self.iconst(1);
            let safe = self.b.ins().select(minus_one, one, m);
            let q = self.b.ins().sdiv(n, safe);
            let neg = self.b.ins().ineg(n);
            self.b.ins().select(minus_one, neg, q)
        } else {
            self.b.ins().udiv(n, m)
        };
        self.set_reg(rd, v);
        DIV
    }
}
