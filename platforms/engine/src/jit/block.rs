//! Forming a region: runs of instructions from a start address to the first branch, the first
//! instruction the compiler does not know, the page end, the stop address or
//! [`MAX_INSTRS`](super::MAX_INSTRS), joined by the direct branches between them; and what
//! the translation needs to know about them (registers used, worst-case cycles).

use crate::cpu::decode::{decode, is_32bit};
use crate::cpu::instr::*;
use crate::timing::{DIV, LOAD_STORE, LONG_MUL, MUL_ACC, REFILL};

/// One instruction of a region.
#[derive(Clone, Copy)]
pub(super) struct Ins {
    pub instr: Instr,
    /// 2 or 4 bytes.
    pub size: u8,
    /// ITSTATE before it (A7.3.3): its condition is `it >> 4`; 0 outside IT blocks (the IT
    /// instruction itself included).
    pub it: u8,
}

/// A straight run of instructions: from a start address to its first branch, the first
/// instruction the compiler does not know, the page end, the stop address or the length limit.
pub(super) struct Run {
    /// Address of its first instruction.
    pub start: u32,
    pub instrs: Vec<Ins>,
}

impl Run {
    /// The address after its last instruction.
    pub(super) fn end(&self) -> u32 {
        self.instrs.iter().fold(self.start, |pc, i| pc.wrapping_add(u32::from(i.size)))
    }

    /// The most cycles one pass through it takes.
    pub(super) fn max_cycles(&self) -> u64 {
        self.instrs.iter().map(|i| u64::from(max_cycles(&i.instr))).sum()
    }

    /// Where it may go next at a constant address: a direct branch's target, and the
    /// instruction after it when it may fall through (a conditional branch or a run that ends
    /// without branching). Indirect branches (BX, POP {pc}, TBB...) have no constant target.
    /// With each, whether a branch leads there (rather than straight-line code).
    pub(super) fn successors(&self) -> Vec<(u32, bool)> {
        let Some(last) = self.instrs.last() else { return Vec::new() };
        let at = self.end().wrapping_sub(u32::from(last.size));
        let next = self.end();
        let mut to = match last.instr {
            Instr::B { cond, imm } => {
                let target = at.wrapping_add(4).wrapping_add(imm as u32);
                if cond >= 14 {
                    vec![target]
                } else {
                    vec![target, next]
                }
            }
            Instr::Cbz { imm, .. } => vec![at.wrapping_add(4).wrapping_add(imm), next],
            Instr::Bl { imm } => vec![at.wrapping_add(4).wrapping_add(imm as u32)],
            _ if ends_block(&last.instr) => Vec::new(),
            _ => return vec![(next, false)],
        };
        // A branch inside an IT block falls through when its condition fails.
        if last.it != 0 && !to.contains(&next) {
            to.push(next);
        }
        to.into_iter().map(|t| (t, true)).collect()
    }
}

/// ITSTATE after an instruction that ran (or was skipped) with ITSTATE `it` (ITAdvance, A7.3.3).
pub(super) fn it_advance(it: u8) -> u8 {
    let mut cpu = crate::cpu::CpuState { it, ..Default::default() };
    cpu.it_advance();
    cpu.it
}

/// Forms the run at `pc`, in the decode-cache page that starts at `page_base` and holds
/// `page`, starting with ITSTATE `it0` (0 but for a single instruction inside an IT block).
/// An IT block is taken whole or not at all (it may take the run up to four instructions
/// past `max`): a run never ends inside one, so its exits leave ITSTATE as they found it.
pub(super) fn form_run(pc: u32, page_base: u32, page: &[u8], stop_at: u32, max: usize, it0: u8) -> Run {
    let hw = |at: u32| {
        let o = at.wrapping_sub(page_base) as usize;
        page.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    };
    let mut instrs: Vec<Ins> = Vec::new();
    let mut at = pc;
    let mut it = it0;
    // Where the IT instruction of the block being formed is (to drop the block whole).
    let mut it_start: Option<usize> = None;
    loop {
        if instrs.len() >= max && (it == 0 || it_start.is_none()) {
            break;
        }
        let Some(h1) = hw(at) else { break };
        let (h2, size) = if is_32bit(h1) {
            match hw(at.wrapping_add(2)) {
                Some(h2) => (h2, 4u8),
                None => {
                    if let Some(k) = it_start {
                        instrs.truncate(k);
                    }
                    break;
                }
            }
        } else {
            (0, 2)
        };
        let (instr, _) = decode(h1, h2);
        let stop = !instrs.is_empty() && at == stop_at;
        if it != 0 {
            // Inside an IT block: every instruction must be known, the stop address must not
            // fall inside it, and only the last may branch (CBZ and IT are not allowed in one).
            let after = it_advance(it);
            let ok = !stop
                && supported(&instr)
                && !matches!(instr, Instr::Cbz { .. } | Instr::It { .. })
                && (after == 0 || !ends_block(&instr));
            if !ok {
                if let Some(k) = it_start {
                    instrs.truncate(k);
                }
                break;
            }
            instrs.push(Ins { instr, size, it });
            it = after;
            at = at.wrapping_add(u32::from(size));
            if ends_block(&instr) {
                break;
            }
            continue;
        }
        it_start = None;
        if stop {
            break;
        }
        if let Instr::It { state } = instr {
            if state & 0xf == 0 {
                break; // mask 0000: not an IT instruction (decoded as a hint elsewhere)
            }
            it_start = Some(instrs.len());
            instrs.push(Ins { instr, size, it: 0 });
            it = state;
            at = at.wrapping_add(u32::from(size));
            continue;
        }
        if !supported(&instr) {
            break;
        }
        instrs.push(Ins { instr, size, it: 0 });
        at = at.wrapping_add(u32::from(size));
        if ends_block(&instr) {
            break;
        }
    }
    if it != 0 {
        // The page ended inside the IT block.
        if let Some(k) = it_start {
            instrs.truncate(k);
        }
    }
    Run { start: pc, instrs }
}

/// Runs in one region at most.
pub(super) const MAX_RUNS: usize = 24;
/// Instructions in one region at most.
pub(super) const MAX_REGION: usize = 256;

/// The region at `pc`: the run there, then the runs its direct branches and fall-throughs
/// lead to in the same decode-cache page (breadth first, up to [`MAX_RUNS`] runs and
/// [`MAX_REGION`] instructions), so that loops and if/else inside a function run without
/// leaving compiled code. A branch target joins only if `visited` says the program has been
/// there (paths never taken so far, such as error handling, are left out: they would cost
/// compile time for nothing); straight-line code after a run that ends without a branch
/// always joins. A run never starts at the stop address. Without `visited`, the region is the
/// first run alone. The first run is empty if its first instruction is unknown.
pub(super) fn form_region(
    pc: u32,
    page_base: u32,
    page: &[u8],
    stop_at: u32,
    max: usize,
    visited: Option<&dyn Fn(u32) -> bool>,
    it0: u8,
) -> Vec<Run> {
    let first = form_run(pc, page_base, page, stop_at, max, it0);
    let Some(visited) = visited.filter(|_| !first.instrs.is_empty()) else {
        return vec![first];
    };
    let mut total = first.instrs.len();
    let mut queue: std::collections::VecDeque<(u32, bool)> = first.successors().into();
    let mut runs = vec![first];
    let in_page = |a: u32| (a.wrapping_sub(page_base) as usize) < page.len();
    while let Some((s, branch)) = queue.pop_front() {
        if runs.len() >= MAX_RUNS || total >= MAX_REGION {
            break;
        }
        if s == stop_at
            || s & 1 != 0
            || !in_page(s)
            || (branch && !visited(s))
            || runs.iter().any(|r| r.start == s)
        {
            continue;
        }
        let run = form_run(s, page_base, page, stop_at, max.min(MAX_REGION - total), 0);
        if run.instrs.is_empty() {
            continue;
        }
        total += run.instrs.len();
        queue.extend(run.successors());
        runs.push(run);
    }
    runs
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
        Instr::Ldr { w, rt, rn, wback, .. } => {
            (plain(rt) || w == Width::W) && !(wback && (rn == 15 || rn == rt))
        }
        Instr::Str { rn, wback, .. } => !(wback && rn == 15),
        Instr::Dual { load, rt, rt2, rn, wback, .. } => {
            (!load || (plain(rt) && plain(rt2))) && !(wback && rn == 15) && (load || rn != 15)
        }
        Instr::Multi { rn, regs, load, .. } => {
            plain(rn) && regs != 0 && (load || regs & (1 << 15) == 0) && regs & (1 << 13) == 0
        }
        Instr::B { .. } | Instr::Bl { .. } | Instr::Cbz { .. } | Instr::Bx { .. } | Instr::Blx { .. } => true,
        Instr::Table { rn, rm, .. } => rm != 13 && rm != 15 && rn != 13,
        Instr::Hint(Hint::Nop) | Instr::It { .. } => true,
        _ => false,
    }
}

/// Whether `i` ends a block (it may change the PC).
pub(super) fn ends_block(i: &Instr) -> bool {
    match *i {
        Instr::B { .. }
        | Instr::Bl { .. }
        | Instr::Cbz { .. }
        | Instr::Bx { .. }
        | Instr::Blx { .. }
        | Instr::Table { .. } => true,
        Instr::Multi { load: true, regs, .. } => regs & (1 << 15) != 0,
        Instr::Ldr { rt: 15, .. } => true,
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
        Instr::Blx { rm } => b(rm) | b(14),
        Instr::Table { rn, rm, .. } => b(rn) | b(rm),
        _ => 0,
    }
}

/// The most cycles `i` takes (the timing model of [`crate::timing`], as the interpreter counts).
pub(super) fn max_cycles(i: &Instr) -> u32 {
    match *i {
        Instr::Mul { .. } => MUL_ACC,
        Instr::LongMul { .. } => LONG_MUL,
        Instr::Div { .. } => DIV,
        Instr::Ldr { rt: 15, .. } => LOAD_STORE + REFILL,
        Instr::Ldr { .. } | Instr::Str { .. } => LOAD_STORE,
        Instr::Table { .. } => 2 + REFILL,
        Instr::Dual { .. } => 3,
        Instr::Multi { regs, .. } => 1 + regs.count_ones() + if regs & (1 << 15) != 0 { REFILL } else { 0 },
        Instr::B { .. } | Instr::Bl { .. } | Instr::Cbz { .. } | Instr::Bx { .. } | Instr::Blx { .. } => {
            1 + REFILL
        }
        _ => 1,
    }
}
