//! Forming a block: the instructions from a start address to the first branch, the first
//! instruction the compiler does not know, the page end, the stop address or [`MAX_INSTRS`](super::MAX_INSTRS),
//! and what the translation needs to know about them (registers used, worst-case cycles).

use crate::cpu::decode::{decode, is_32bit};
use crate::cpu::instr::*;
use crate::timing::{DIV, LOAD_STORE, LONG_MUL, MUL_ACC, REFILL};

/// The instructions of the block at `pc` and the halfwords they came from.
pub(super) fn form_block(pc: u32, bytes: &[u8], stop_at: u32, max: usize) -> (Vec<(Instr, u8)>, Vec<u16>) {
    let hw = |o: usize| bytes.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let (mut instrs, mut code) = (Vec::new(), Vec::new());
    let mut off = 0usize;
    while instrs.len() < max {
        let at = pc.wrapping_add(off as u32);
        if !instrs.is_empty() && at == stop_at {
            break;
        }
        let Some(h1) = hw(off) else { break };
        let (h2, size) = if is_32bit(h1) {
            match hw(off + 2) {
                Some(h2) => (h2, 4),
                None => break,
            }
        } else {
            (0, 2)
        };
        let (instr, _) = decode(h1, h2);
        if !supported(&instr) {
            break;
        }
        instrs.push((instr, size as u8));
        code.push(h1);
        if size == 4 {
            code.push(h2);
        }
        off += size;
        if ends_block(&instr) {
            break;
        }
    }
    (instrs, code)
}

/// Whether the compiler translates `i` (outside IT blocks).
pub(super) fn supported(i: &Instr) -> bool {
    let plain = |r: u8| r < 15;
    match *i {
        Instr::Dp { op, s, rd, op2, .. } => {
            let compare = matches!(op, DpOp::Tst | DpOp::Teq | DpOp::Cmp | DpOp::Cmn);
            let logical_flags = s != SetFlags::No && !arith(op) && op != DpOp::Mul;
            (compare || plain(rd))
                && match op2 {
                    // A register-shifted register needs the shifter carry only for logical
                    // operations that set flags.
                    Op2::RegReg { rs, .. } => !logical_flags && plain(rs),
                    _ => true,
                }
        }
        Instr::Adr { rd, .. } | Instr::Movt { rd, .. } | Instr::Bit { rd, .. } | Instr::Ext { rd, .. } => {
            plain(rd)
        }
        Instr::Bf { rd, lsb, width, .. } => {
            plain(rd) && width >= 1 && u32::from(lsb) + u32::from(width) <= 32
        }
        Instr::Mul { rd, .. } | Instr::Div { rd, .. } => plain(rd),
        Instr::LongMul { rdlo, rdhi, .. } => plain(rdlo) && plain(rdhi),
        Instr::Ldr { rt, rn, wback, .. } => plain(rt) && !(wback && rn == 15),
        Instr::Str { rn, wback, .. } => !(wback && rn == 15),
        Instr::Dual { load, rt, rt2, rn, wback, .. } => {
            (!load || (plain(rt) && plain(rt2))) && !(wback && rn == 15) && (load || rn != 15)
        }
        Instr::Multi { rn, regs, load, .. } => {
            plain(rn) && regs != 0 && (load || regs & (1 << 15) == 0) && regs & (1 << 13) == 0
        }
        Instr::B { .. } | Instr::Bl { .. } | Instr::Cbz { .. } | Instr::Bx { .. } => true,
        Instr::Hint(Hint::Nop) => true,
        _ => false,
    }
}

/// The constant branch target of the block's last instruction, if it has one.
pub(super) fn ends_at(pc0: u32, instrs: &[(Instr, u8)]) -> Option<u32> {
    let pc =
        instrs.iter().take(instrs.len() - 1).fold(pc0, |pc, (_, size)| pc.wrapping_add(u32::from(*size)));
    match instrs.last()?.0 {
        Instr::B { imm, .. } => Some(pc.wrapping_add(4).wrapping_add(imm as u32)),
        Instr::Cbz { imm, .. } => Some(pc.wrapping_add(4).wrapping_add(imm)),
        _ => None,
    }
}

/// Whether `i` ends a block (it may change the PC).
pub(super) fn ends_block(i: &Instr) -> bool {
    match *i {
        Instr::B { .. } | Instr::Bl { .. } | Instr::Cbz { .. } | Instr::Bx { .. } => true,
        Instr::Multi { load: true, regs, .. } => regs & (1 << 15) != 0,
        _ => false,
    }
}

pub(super) fn arith(op: DpOp) -> bool {
    matches!(op, DpOp::Add | DpOp::Adc | DpOp::Sub | DpOp::Sbc | DpOp::Rsb | DpOp::Cmp | DpOp::Cmn)
}

/// Registers (r0..r14) an instruction may read or write.
pub(super) fn regs_of(i: &Instr) -> u16 {
    let b = |r: u8| if r < 15 { 1u16 << r } else { 0 };
    match *i {
        Instr::Dp { rd, rn, op2, .. } => {
            b(rd)
                | b(rn)
                | match op2 {
                    Op2::Imm { .. } => 0,
                    Op2::Reg { rm, .. } => b(rm),
                    Op2::RegReg { rm, rs, .. } => b(rm) | b(rs),
                }
        }
        Instr::Adr { rd, .. } | Instr::Movt { rd, .. } => b(rd),
        Instr::Bit { rd, rm, .. } | Instr::Ext { rd, rm, .. } => b(rd) | b(rm),
        Instr::Bf { rd, rn, .. } => b(rd) | b(rn),
        Instr::Mul { rd, rn, rm, ra, .. } => b(rd) | b(rn) | b(rm) | b(ra),
        Instr::Div { rd, rn, rm, .. } => b(rd) | b(rn) | b(rm),
        Instr::LongMul { rdlo, rdhi, rn, rm, .. } => b(rdlo) | b(rdhi) | b(rn) | b(rm),
        Instr::Ldr { rt, rn, off, .. } | Instr::Str { rt, rn, off, .. } => {
            b(rt) | b(rn) | if let Offset::Reg { rm, .. } = off { b(rm) } else { 0 }
        }
        Instr::Dual { rt, rt2, rn, .. } => b(rt) | b(rt2) | b(rn),
        Instr::Multi { rn, regs, .. } => b(rn) | (regs & 0x7fff),
        Instr::Bl { .. } => b(14),
        Instr::Cbz { rn, .. } => b(rn),
        Instr::Bx { rm } => b(rm),
        _ => 0,
    }
}

/// The most cycles `i` takes (the timing model of [`crate::timing`], as the interpreter counts).
pub(super) fn max_cycles(i: &Instr) -> u32 {
    match *i {
        Instr::Mul { .. } => MUL_ACC,
        Instr::LongMul { .. } => LONG_MUL,
        Instr::Div { .. } => DIV,
        Instr::Ldr { .. } | Instr::Str { .. } => LOAD_STORE,
        Instr::Dual { .. } => 3,
        Instr::Multi { regs, .. } => 1 + regs.count_ones() + if regs & (1 << 15) != 0 { REFILL } else { 0 },
        Instr::B { .. } | Instr::Bl { .. } | Instr::Cbz { .. } | Instr::Bx { .. } => 1 + REFILL,
        _ => 1,
    }
}
