//! The decoded instruction: a flat enum that [`super::decode`] produces once per address and
//! [`super::execute`] runs with one `match`. 16-bit and 32-bit encodings of the same operation
//! decode to the same variant.

use serde::{Deserialize, Serialize};

/// Barrel-shifter operation (ARMv7-M ARM A7.4.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Shift {
    /// Logical shift left.
    Lsl,
    /// Logical shift right.
    Lsr,
    /// Arithmetic shift right.
    Asr,
    /// Rotate right.
    Ror,
    /// Rotate right by one through carry.
    Rrx,
}

/// Second operand of a data-processing instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op2 {
    /// An immediate. `carry`: the shifter carry-out of a rotated modified immediate
    /// (ThumbExpandImm_C), `None` where the encoding leaves C unchanged.
    Imm {
        /// The value.
        value: u32,
        /// Shifter carry out, if the encoding defines one.
        carry: Option<bool>,
    },
    /// A register shifted by a constant (amount 0 with LSR/ASR already means 32 here).
    Reg {
        /// The register.
        rm: u8,
        /// The shift.
        shift: Shift,
        /// The amount (0..=32).
        amount: u8,
    },
    /// A register shifted by the bottom byte of another register.
    RegReg {
        /// The register.
        rm: u8,
        /// The shift.
        shift: Shift,
        /// The register holding the amount.
        rs: u8,
    },
}

/// Data-processing operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum DpOp {
    /// Rd = Rn & op2.
    And,
    /// Rd = Rn ^ op2.
    Eor,
    /// Rd = Rn - op2.
    Sub,
    /// Rd = op2 - Rn.
    Rsb,
    /// Rd = Rn + op2.
    Add,
    /// Rd = Rn + op2 + C.
    Adc,
    /// Rd = Rn - op2 - !C.
    Sbc,
    /// Rd = Rn | op2.
    Orr,
    /// Rd = Rn | !op2.
    Orn,
    /// Rd = Rn & !op2.
    Bic,
    /// Rd = op2.
    Mov,
    /// Rd = !op2.
    Mvn,
    /// Rn & op2, flags only.
    Tst,
    /// Rn ^ op2, flags only.
    Teq,
    /// Rn - op2, flags only.
    Cmp,
    /// Rn + op2, flags only.
    Cmn,
    /// Rd = Rn * op2 (16-bit MULS: N and Z only).
    Mul,
}

/// When a data-processing instruction sets the flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SetFlags {
    /// Never.
    No,
    /// Always (32-bit with S, compares).
    Yes,
    /// 16-bit encodings: only outside an IT block.
    OutsideIt,
}

/// Memory access width and signedness of a load.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Width {
    /// 8-bit, zero-extended.
    B,
    /// 8-bit, sign-extended.
    Sb,
    /// 16-bit, zero-extended.
    H,
    /// 16-bit, sign-extended.
    Sh,
    /// 32-bit.
    W,
}

/// Addressing of a single load/store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Offset {
    /// An immediate byte offset.
    Imm(u32),
    /// A register, shifted left by 0..=3.
    Reg {
        /// The register.
        rm: u8,
        /// LSL amount.
        shift: u8,
    },
}

/// Bitfield operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BfOp {
    /// Signed bitfield extract.
    Sbfx,
    /// Unsigned bitfield extract.
    Ubfx,
    /// Bitfield insert from Rn.
    Bfi,
    /// Bitfield clear.
    Bfc,
}

/// Single-register bit operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum BitOp {
    /// Count leading zeros.
    Clz,
    /// Reverse bits.
    Rbit,
    /// Reverse bytes.
    Rev,
    /// Reverse bytes in each halfword.
    Rev16,
    /// Reverse bytes of the low halfword, sign-extend.
    Revsh,
}

/// Extend operations (with rotation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ExtOp {
    /// Sign-extend byte.
    Sxtb,
    /// Sign-extend halfword.
    Sxth,
    /// Zero-extend byte.
    Uxtb,
    /// Zero-extend halfword.
    Uxth,
}

/// 32x32 -> 32 multiplies with accumulate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MulOp {
    /// Rd = Rn * Rm + Ra.
    Mla,
    /// Rd = Ra - Rn * Rm.
    Mls,
}

/// 32x32 -> 64 multiplies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LongMulOp {
    /// Signed.
    Smull,
    /// Unsigned.
    Umull,
    /// Signed, accumulate.
    Smlal,
    /// Unsigned, accumulate.
    Umlal,
}

/// Hint instructions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Hint {
    /// No operation (also YIELD, DBG, unallocated hints, barriers, PLD/PLI).
    Nop,
    /// Wait for event.
    Wfe,
    /// Wait for interrupt.
    Wfi,
    /// Send event.
    Sev,
}

/// Why an encoding does not execute.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Undef {
    /// UNDEFINED (or UNPREDICTABLE, which twinbed treats as UNDEFINED): UsageFault UNDEFINSTR.
    Undefined,
    /// A coprocessor instruction (no coprocessor on Cortex-M3): UsageFault NOCP.
    NoCoprocessor,
}

/// A decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Instr {
    /// Not decoded yet (cache placeholder).
    Empty,
    /// Data processing.
    Dp {
        /// Operation.
        op: DpOp,
        /// Flag setting.
        s: SetFlags,
        /// Destination (ignored by compares).
        rd: u8,
        /// First operand (ignored by MOV/MVN).
        rn: u8,
        /// Second operand.
        op2: Op2,
    },
    /// Rd = Align(PC, 4) + imm (ADR; also ADD Rd, PC, #imm).
    Adr {
        /// Destination.
        rd: u8,
        /// Signed offset.
        imm: i32,
    },
    /// MOVT: Rd\[31:16\] = imm16.
    Movt {
        /// Destination.
        rd: u8,
        /// The halfword.
        imm: u16,
    },
    /// Bitfield operations.
    Bf {
        /// Operation.
        op: BfOp,
        /// Destination.
        rd: u8,
        /// Source (15 for BFC).
        rn: u8,
        /// Lowest bit.
        lsb: u8,
        /// Width (1..=32).
        width: u8,
    },
    /// SSAT / USAT.
    Sat {
        /// Signed (SSAT) or not.
        signed: bool,
        /// Destination.
        rd: u8,
        /// Source.
        rn: u8,
        /// Saturate to this many bits (SSAT 1..=32, USAT 0..=31).
        bits: u8,
        /// LSL or ASR of the source.
        shift: Shift,
        /// Shift amount.
        amount: u8,
    },
    /// CLZ, RBIT, REV, REV16, REVSH.
    Bit {
        /// Operation.
        op: BitOp,
        /// Destination.
        rd: u8,
        /// Source.
        rm: u8,
    },
    /// SXTB, SXTH, UXTB, UXTH.
    Ext {
        /// Operation.
        op: ExtOp,
        /// Destination.
        rd: u8,
        /// Source.
        rm: u8,
        /// Rotation (0, 8, 16, 24).
        rot: u8,
    },
    /// MLA / MLS.
    Mul {
        /// Operation.
        op: MulOp,
        /// Destination.
        rd: u8,
        /// Factor.
        rn: u8,
        /// Factor.
        rm: u8,
        /// Accumulator.
        ra: u8,
    },
    /// SMULL, UMULL, SMLAL, UMLAL.
    LongMul {
        /// Operation.
        op: LongMulOp,
        /// Low word.
        rdlo: u8,
        /// High word.
        rdhi: u8,
        /// Factor.
        rn: u8,
        /// Factor.
        rm: u8,
    },
    /// SDIV / UDIV.
    Div {
        /// Signed or not.
        signed: bool,
        /// Destination.
        rd: u8,
        /// Dividend.
        rn: u8,
        /// Divisor.
        rm: u8,
    },
    /// LDR{B,SB,H,SH} (also LDRT and literal loads with rn = 15).
    Ldr {
        /// Width.
        w: Width,
        /// Destination.
        rt: u8,
        /// Base.
        rn: u8,
        /// Offset.
        off: Offset,
        /// Add (or subtract) the offset.
        add: bool,
        /// Pre-indexed (address = base +- offset) or post-indexed (address = base).
        index: bool,
        /// Write the updated address back to the base.
        wback: bool,
    },
    /// STR{B,H}.
    Str {
        /// Width (B, H or W).
        w: Width,
        /// Source.
        rt: u8,
        /// Base.
        rn: u8,
        /// Offset.
        off: Offset,
        /// Add (or subtract) the offset.
        add: bool,
        /// Pre-indexed.
        index: bool,
        /// Write back.
        wback: bool,
    },
    /// LDRD / STRD.
    Dual {
        /// Load (true) or store.
        load: bool,
        /// First register.
        rt: u8,
        /// Second register.
        rt2: u8,
        /// Base.
        rn: u8,
        /// Byte offset.
        imm: u32,
        /// Add.
        add: bool,
        /// Pre-indexed.
        index: bool,
        /// Write back.
        wback: bool,
    },
    /// LDM / STM / PUSH / POP.
    Multi {
        /// Load (true) or store.
        load: bool,
        /// Base.
        rn: u8,
        /// Register list.
        regs: u16,
        /// Decrement before (STMDB/LDMDB/PUSH) instead of increment after.
        db: bool,
        /// Write back.
        wback: bool,
    },
    /// LDREX{B,H}.
    Ldrex {
        /// Width (B, H or W).
        w: Width,
        /// Destination.
        rt: u8,
        /// Base.
        rn: u8,
        /// Offset.
        imm: u32,
    },
    /// STREX{B,H}.
    Strex {
        /// Width (B, H or W).
        w: Width,
        /// Status destination.
        rd: u8,
        /// Source.
        rt: u8,
        /// Base.
        rn: u8,
        /// Offset.
        imm: u32,
    },
    /// CLREX.
    Clrex,
    /// TBB / TBH.
    Table {
        /// Halfword table (TBH).
        half: bool,
        /// Table base.
        rn: u8,
        /// Index.
        rm: u8,
    },
    /// B (cond 14 = always) with a signed byte offset from PC (instruction address + 4).
    B {
        /// Condition.
        cond: u8,
        /// Offset.
        imm: i32,
    },
    /// BL.
    Bl {
        /// Offset.
        imm: i32,
    },
    /// BX Rm.
    Bx {
        /// Target register.
        rm: u8,
    },
    /// BLX Rm.
    Blx {
        /// Target register.
        rm: u8,
    },
    /// CBZ / CBNZ.
    Cbz {
        /// CBNZ.
        nonzero: bool,
        /// Register tested.
        rn: u8,
        /// Offset (forward).
        imm: u32,
    },
    /// IT.
    It {
        /// firstcond:mask as in the encoding (ITSTATE's initial value).
        state: u8,
    },
    /// MRS.
    Mrs {
        /// Destination.
        rd: u8,
        /// Special register number.
        sysm: u8,
    },
    /// MSR.
    Msr {
        /// Source.
        rn: u8,
        /// Special register number.
        sysm: u8,
        /// mask bits (for APSR: bit 1 = NZCVQ).
        mask: u8,
    },
    /// CPSIE / CPSID.
    Cps {
        /// CPSID (set the mask bits).
        disable: bool,
        /// Affects PRIMASK.
        i: bool,
        /// Affects FAULTMASK.
        f: bool,
    },
    /// Hints.
    Hint(Hint),
    /// SVC.
    Svc(u8),
    /// BKPT.
    Bkpt(u8),
    /// Does not execute.
    Undef(Undef),
    /// Fast form of `Dp` (see [`Instr::specialize`]): Rd = Rn + imm.
    AddImm {
        /// Flag setting.
        s: SetFlags,
        /// Destination (not SP or PC).
        rd: u8,
        /// Operand.
        rn: u8,
        /// Immediate.
        imm: u32,
    },
    /// Fast form: Rd = Rn - imm.
    SubImm {
        /// Flag setting.
        s: SetFlags,
        /// Destination (not SP or PC).
        rd: u8,
        /// Operand.
        rn: u8,
        /// Immediate.
        imm: u32,
    },
    /// Fast form: flags of Rn - imm.
    CmpImm {
        /// Operand.
        rn: u8,
        /// Immediate.
        imm: u32,
    },
    /// Fast form: Rd = imm (flags N, Z only when set; C unchanged: no rotation carry).
    MovImm {
        /// Flag setting.
        s: SetFlags,
        /// Destination (not SP or PC).
        rd: u8,
        /// Immediate.
        imm: u32,
    },
    /// Fast form: Rd = Rn + Rm.
    AddReg {
        /// Flag setting.
        s: SetFlags,
        /// Destination (not SP or PC).
        rd: u8,
        /// Operand.
        rn: u8,
        /// Operand.
        rm: u8,
    },
    /// Fast form: Rd = Rn - Rm.
    SubReg {
        /// Flag setting.
        s: SetFlags,
        /// Destination (not SP or PC).
        rd: u8,
        /// Operand.
        rn: u8,
        /// Operand.
        rm: u8,
    },
    /// Fast form: flags of Rn - Rm.
    CmpReg {
        /// Operand.
        rn: u8,
        /// Operand.
        rm: u8,
    },
    /// Fast form: Rd = Rm (flags N, Z only when set; C unchanged, as LSL #0 leaves it).
    MovReg {
        /// Flag setting.
        s: SetFlags,
        /// Destination (not SP or PC).
        rd: u8,
        /// Source.
        rm: u8,
    },
    /// Fast form of AND/ORR/ORN/EOR/BIC/MOV/MVN with a constant-shifted register.
    Logic {
        /// AND, ORR, ORN, EOR, BIC, MOV or MVN.
        op: DpOp,
        /// Flag setting (N, Z, and C from the shifter).
        s: SetFlags,
        /// Destination (not SP or PC).
        rd: u8,
        /// Operand (not PC).
        rn: u8,
        /// Shifted operand (not PC).
        rm: u8,
        /// Shift.
        shift: Shift,
        /// Amount (0..=32).
        amount: u8,
    },
    /// Fast form of MUL(S) Rd, Rn, Rm.
    MulReg {
        /// Flag setting (N and Z).
        s: SetFlags,
        /// Destination (not SP or PC).
        rd: u8,
        /// Factor.
        rn: u8,
        /// Factor.
        rm: u8,
    },
    /// Fast form of a word load `LDR Rt, [Rn, #imm]` (no writeback, Rt and Rn not PC).
    LdrImm {
        /// Destination.
        rt: u8,
        /// Base.
        rn: u8,
        /// Offset.
        imm: u32,
    },
    /// Fast form of a word store `STR Rt, [Rn, #imm]` (no writeback, Rn not PC).
    StrImm {
        /// Source.
        rt: u8,
        /// Base.
        rn: u8,
        /// Offset.
        imm: u32,
    },
}

impl Instr {
    /// The fast form of a common instruction, or the instruction itself. The run loop caches
    /// this form; each fast form does exactly what the general one does (the differential and
    /// conformance tests run through it), without the general form's nested dispatch.
    pub fn specialize(self) -> Instr {
        let plain = |r: u8| r != 13 && r != 15;
        // MOV and MVN ignore Rn (32-bit encodings carry 15 there); other operations must not
        // read the PC in a fast form.
        let operand_ok = |op: DpOp, rn: u8| rn != 15 || matches!(op, DpOp::Mov | DpOp::Mvn);
        match self {
            // Compares first: the general arms below would catch them and keep them generic.
            Instr::Dp { op: DpOp::Cmp, rn, op2: Op2::Imm { value, .. }, .. } if rn != 15 => {
                Instr::CmpImm { rn, imm: value }
            }
            Instr::Dp { op: DpOp::Cmp, rn, op2: Op2::Reg { rm, shift: Shift::Lsl, amount: 0 }, .. }
                if rn != 15 && rm != 15 =>
            {
                Instr::CmpReg { rn, rm }
            }
            // Each arm's guard names exactly the operations it makes fast forms of, so the
            // others fall through to the arms below.
            Instr::Dp {
                op: op @ (DpOp::Add | DpOp::Sub | DpOp::Mov),
                s,
                rd,
                rn,
                op2: Op2::Imm { value, carry: None },
            } if plain(rd) && operand_ok(op, rn) => match op {
                DpOp::Add => Instr::AddImm { s, rd, rn, imm: value },
                DpOp::Sub => Instr::SubImm { s, rd, rn, imm: value },
                DpOp::Mov => Instr::MovImm { s, rd, imm: value },
                _ => self,
            },
            Instr::Dp {
                op: op @ (DpOp::Add | DpOp::Sub | DpOp::Mov),
                s,
                rd,
                rn,
                op2: Op2::Reg { rm, shift: Shift::Lsl, amount: 0 },
            } if plain(rd) && operand_ok(op, rn) && rm != 15 => match op {
                DpOp::Add => Instr::AddReg { s, rd, rn, rm },
                DpOp::Sub => Instr::SubReg { s, rd, rn, rm },
                DpOp::Mov => Instr::MovReg { s, rd, rm },
                _ => self,
            },
            Instr::Dp {
                op: op @ (DpOp::And | DpOp::Orr | DpOp::Orn | DpOp::Eor | DpOp::Bic | DpOp::Mov | DpOp::Mvn),
                s,
                rd,
                rn,
                op2: Op2::Reg { rm, shift, amount },
            } if plain(rd) && operand_ok(op, rn) && rm != 15 => {
                Instr::Logic { op, s, rd, rn, rm, shift, amount }
            }
            Instr::Dp { op: DpOp::Mul, s, rd, rn, op2: Op2::Reg { rm, shift: Shift::Lsl, amount: 0 } }
                if plain(rd) && rn != 15 && rm != 15 =>
            {
                Instr::MulReg { s, rd, rn, rm }
            }
            Instr::Ldr {
                w: Width::W,
                rt,
                rn,
                off: Offset::Imm(imm),
                add: true,
                index: true,
                wback: false,
            } if rt != 15 && rn != 15 => Instr::LdrImm { rt, rn, imm },
            Instr::Str {
                w: Width::W,
                rt,
                rn,
                off: Offset::Imm(imm),
                add: true,
                index: true,
                wback: false,
            } if rn != 15 => Instr::StrImm { rt, rn, imm },
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dp(op: DpOp, op2: Op2) -> Instr {
        Instr::Dp { op, s: SetFlags::OutsideIt, rd: 0, rn: 1, op2 }
    }

    #[test]
    fn every_fast_form_is_reachable() {
        let reg = Op2::Reg { rm: 2, shift: Shift::Lsl, amount: 0 };
        let ror = Op2::Reg { rm: 2, shift: Shift::Ror, amount: 25 };
        let imm = Op2::Imm { value: 7, carry: None };
        let s = SetFlags::OutsideIt;
        #[rustfmt::skip]
        let cases = [
            (dp(DpOp::Add, imm), Instr::AddImm { s, rd: 0, rn: 1, imm: 7 }),
            (dp(DpOp::Sub, reg), Instr::SubReg { s, rd: 0, rn: 1, rm: 2 }),
            (dp(DpOp::Mov, reg), Instr::MovReg { s, rd: 0, rm: 2 }),
            (dp(DpOp::Cmp, imm), Instr::CmpImm { rn: 1, imm: 7 }),
            (dp(DpOp::Cmp, reg), Instr::CmpReg { rn: 1, rm: 2 }),
            (dp(DpOp::Eor, reg), Instr::Logic { op: DpOp::Eor, s, rd: 0, rn: 1, rm: 2, shift: Shift::Lsl, amount: 0 }),
            (dp(DpOp::Mov, ror), Instr::Logic { op: DpOp::Mov, s, rd: 0, rn: 1, rm: 2, shift: Shift::Ror, amount: 25 }),
            (dp(DpOp::Mul, reg), Instr::MulReg { s, rd: 0, rn: 1, rm: 2 }),
            // 32-bit MOV encodings carry Rn = 15, which MOV ignores.
            (Instr::Dp { op: DpOp::Mov, s, rd: 0, rn: 15, op2: ror }, Instr::Logic { op: DpOp::Mov, s, rd: 0, rn: 15, rm: 2, shift: Shift::Ror, amount: 25 }),
            (Instr::Dp { op: DpOp::Mov, s, rd: 0, rn: 15, op2: imm }, Instr::MovImm { s, rd: 0, imm: 7 }),
            // Other operations that would read the PC stay general.
            (Instr::Dp { op: DpOp::Add, s, rd: 0, rn: 15, op2: imm }, Instr::Dp { op: DpOp::Add, s, rd: 0, rn: 15, op2: imm }),
            // Rotated immediates set C: they stay general.
            (dp(DpOp::And, Op2::Imm { value: 7, carry: Some(true) }), dp(DpOp::And, Op2::Imm { value: 7, carry: Some(true) })),
        ];
        for (general, fast) in cases {
            assert_eq!(general.specialize(), fast, "{general:?}");
        }
    }
}
