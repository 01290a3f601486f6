//! Instruction execution: one `match` over [`Instr`], one function per family. Semantics follow
//! the pseudocode of the ARMv7-M Architecture Reference Manual (section A7.7 per instruction).
//! Execution runs over a [`Host`] (memory, system registers, sleep, semihosting), generic so
//! that every host call is inlined. When this runs, `cpu.r[15]` holds the instruction's
//! address + 4 (what reads of the PC see) and [`Host::next_pc`] the address of the next
//! instruction; branches change the latter.

use super::alu::{add_with_carry, logic, mask, shift_c};
use super::host::{Exc, Host, Size};
use super::instr::*;
use super::timing::{DIV, LOAD_STORE, LONG_MUL, MUL_ACC, REFILL};
use super::CpuState;
use crate::system::cfsr;

/// Executes a decoded instruction over `host`; returns its cycle count. On a fault the
/// instruction may have changed registers it writes before the fault; the caller restores
/// the PC and ITSTATE.
#[inline(always)]
pub fn exec<H: Host>(host: &mut H, i: &Instr, in_it: bool) -> Result<u32, Exc> {
    Exec(host).exec(i, in_it)
}

/// Executes `i` if it is one of the infallible fast forms (the data-processing ones made by
/// [`Instr::specialize`], one cycle each: block loops rely on that); `None` for every other
/// instruction. They never read or write the PC, so a caller may run them without the
/// per-instruction PC and IT bookkeeping.
#[inline(always)]
pub fn fast<H: Host>(host: &mut H, i: &Instr, in_it: bool) -> Option<u32> {
    Exec(host).fast(i, in_it)
}

/// The executor: the host, borrowed for one instruction.
struct Exec<'h, H>(&'h mut H);

fn usage(bits: u32) -> Exc {
    Exc::usage(bits)
}

impl<H: Host> Exec<'_, H> {
    #[inline(always)]
    fn cpu(&self) -> &CpuState {
        self.0.cpu()
    }

    #[inline(always)]
    fn cpu_mut(&mut self) -> &mut CpuState {
        self.0.cpu_mut()
    }

    #[inline(always)]
    fn load(&mut self, addr: u32, size: Size) -> Result<u32, Exc> {
        self.0.load(addr, size)
    }

    #[inline(always)]
    fn store(&mut self, addr: u32, value: u32, size: Size) -> Result<(), Exc> {
        self.0.store(addr, value, size)
    }

    /// Writes a register as an instruction result; writes to PC branch (BranchWritePC).
    #[inline]
    fn set_reg(&mut self, r: u8, v: u32) {
        if r == 15 {
            self.0.set_next_pc(v & !1);
        } else if r == 13 {
            self.cpu_mut().r[13] = v & !3;
        } else {
            self.cpu_mut().r[usize::from(r & 15)] = v;
        }
    }

    /// BXWritePC / LoadWritePC: interworking branch, or exception return in Handler mode.
    fn bx_write_pc(&mut self, v: u32) {
        if self.cpu().ipsr != 0 && v >> 28 == 0xf {
            self.0.exception_return(v);
        } else {
            // Bit 0 clear: EPSR.T becomes 0 and the next instruction faults (INVSTATE).
            self.cpu_mut().thumb = v & 1 != 0;
            if !self.cpu().thumb {
                self.0.reschedule(); // leave the block: the next step must fault
            }
            self.0.set_next_pc(v & !1);
        }
    }

    /// Sets the next PC (branch).
    #[inline]
    fn branch(&mut self, target: u32) {
        self.0.set_next_pc(target & !1);
    }

    /// The address of the instruction after the current one.
    fn next_pc(&self) -> u32 {
        self.0.next_pc()
    }

    #[inline]
    fn reschedule(&mut self) {
        self.0.reschedule();
    }

    /// Whether the core runs privileged (Handler mode, or Thread mode with CONTROL.nPRIV 0).
    fn privileged(&self) -> bool {
        self.cpu().privileged()
    }

    #[inline]
    fn r(&self, n: u8) -> u32 {
        self.cpu().r[usize::from(n & 15)]
    }

    #[inline(always)]
    fn operand2(&self, op2: Op2) -> (u32, bool) {
        let c = self.cpu().c;
        match op2 {
            Op2::Reg { rm, shift: Shift::Lsl, amount: 0 } => (self.r(rm), c),
            Op2::Imm { value, carry } => (value, carry.unwrap_or(c)),
            Op2::Reg { rm, shift, amount } => shift_c(self.r(rm), shift, u32::from(amount), c),
            Op2::RegReg { rm, shift, rs } => shift_c(self.r(rm), shift, self.r(rs) & 0xff, c),
        }
    }

    fn check_align(&self, addr: u32, size: u32) -> Result<(), Exc> {
        if addr & (size - 1) != 0 && self.0.ccr() & (1 << 3) != 0 {
            return Err(usage(cfsr::UNALIGNED));
        }
        Ok(())
    }

    /// Executes a decoded instruction; returns its cycle count.
    #[inline(always)]
    fn exec(&mut self, i: &Instr, in_it: bool) -> Result<u32, Exc> {
        // Matching the place (not a copy) lets each arm load only the fields it uses.
        match *i {
            Instr::Dp { op, s, rd, rn, op2 } => Ok(self.exec_dp(op, s, rd, rn, op2, in_it)),
            // Fast forms (Instr::specialize): same semantics as the Dp they come from.
            Instr::AddImm { .. }
            | Instr::SubImm { .. }
            | Instr::CmpImm { .. }
            | Instr::MovImm { .. }
            | Instr::AddReg { .. }
            | Instr::SubReg { .. }
            | Instr::CmpReg { .. }
            | Instr::MovReg { .. }
            | Instr::Logic { .. }
            | Instr::MulReg { .. } => Ok(self.fast(i, in_it).unwrap_or(1)),
            Instr::LdrImm { rt, rn, imm } => {
                let addr = self.r(rn).wrapping_add(imm);
                self.check_align(addr, 4)?;
                let v = self.load(addr, Size::Word)?;
                self.set_reg(rt, v);
                Ok(LOAD_STORE)
            }
            Instr::StrImm { rt, rn, imm } => {
                let addr = self.r(rn).wrapping_add(imm);
                self.check_align(addr, 4)?;
                self.store(addr, self.r(rt), Size::Word)?;
                Ok(LOAD_STORE)
            }
            Instr::Adr { rd, imm } => {
                let v = (self.r(15) & !3).wrapping_add(imm as u32);
                self.set_reg(rd, v);
                Ok(1)
            }
            Instr::Movt { rd, imm } => {
                let v = (self.r(rd) & 0xffff) | (u32::from(imm) << 16);
                self.set_reg(rd, v);
                Ok(1)
            }
            Instr::Bf { op, rd, rn, lsb, width } => {
                let m = mask(width);
                let v = match op {
                    BfOp::Sbfx => {
                        (((self.r(rn) << (32 - u32::from(lsb) - u32::from(width))) as i32)
                            >> (32 - u32::from(width))) as u32
                    }
                    BfOp::Ubfx => (self.r(rn) >> lsb) & m,
                    BfOp::Bfi => (self.r(rd) & !(m << lsb)) | ((self.r(rn) & m) << lsb),
                    BfOp::Bfc => self.r(rd) & !(m << lsb),
                };
                self.set_reg(rd, v);
                Ok(1)
            }
            Instr::Sat { signed, rd, rn, bits, shift, amount } => {
                let (operand, _) = shift_c(self.r(rn), shift, u32::from(amount), self.cpu().c);
                let x = i64::from(operand as i32);
                let (lo, hi) = if signed {
                    (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1)
                } else {
                    (0, (1i64 << bits) - 1)
                };
                let r = x.clamp(lo, hi);
                if r != x {
                    self.cpu_mut().q = true;
                }
                self.set_reg(rd, r as u32);
                Ok(1)
            }
            Instr::Bit { op, rd, rm } => {
                let v = self.r(rm);
                let r = match op {
                    BitOp::Clz => v.leading_zeros(),
                    BitOp::Rbit => v.reverse_bits(),
                    BitOp::Rev => v.swap_bytes(),
                    BitOp::Rev16 => ((v & 0x00ff_00ff) << 8) | ((v >> 8) & 0x00ff_00ff),
                    BitOp::Revsh => (((v & 0xff) << 8 | ((v >> 8) & 0xff)) as u16 as i16) as i32 as u32,
                };
                self.set_reg(rd, r);
                Ok(1)
            }
            Instr::Ext { op, rd, rm, rot } => {
                let v = self.r(rm).rotate_right(u32::from(rot));
                let r = match op {
                    ExtOp::Sxtb => v as u8 as i8 as i32 as u32,
                    ExtOp::Sxth => v as u16 as i16 as i32 as u32,
                    ExtOp::Uxtb => v & 0xff,
                    ExtOp::Uxth => v & 0xffff,
                };
                self.set_reg(rd, r);
                Ok(1)
            }
            Instr::Mul { op, rd, rn, rm, ra } => {
                let p = self.r(rn).wrapping_mul(self.r(rm));
                let v = match op {
                    MulOp::Mla => p.wrapping_add(self.r(ra)),
                    MulOp::Mls => self.r(ra).wrapping_sub(p),
                };
                self.set_reg(rd, v);
                Ok(MUL_ACC)
            }
            Instr::LongMul { op, rdlo, rdhi, rn, rm } => {
                let (a, b) = (self.r(rn), self.r(rm));
                let acc = (u64::from(self.r(rdhi)) << 32) | u64::from(self.r(rdlo));
                let r: u64 = match op {
                    LongMulOp::Smull => (i64::from(a as i32) * i64::from(b as i32)) as u64,
                    LongMulOp::Umull => u64::from(a) * u64::from(b),
                    LongMulOp::Smlal => {
                        (i64::from(a as i32) * i64::from(b as i32)).wrapping_add(acc as i64) as u64
                    }
                    LongMulOp::Umlal => (u64::from(a) * u64::from(b)).wrapping_add(acc),
                };
                self.set_reg(rdlo, r as u32);
                self.set_reg(rdhi, (r >> 32) as u32);
                Ok(LONG_MUL)
            }
            Instr::Div { signed, rd, rn, rm } => {
                let (n, m) = (self.r(rn), self.r(rm));
                let v = if m == 0 {
                    if self.0.ccr() & (1 << 4) != 0 {
                        return Err(usage(cfsr::DIVBYZERO));
                    }
                    0
                } else if signed {
                    (n as i32).wrapping_div(m as i32) as u32
                } else {
                    n / m
                };
                self.set_reg(rd, v);
                Ok(DIV)
            }
            Instr::Ldr { w, rt, rn, off, add, index, wback } => {
                self.exec_ldr(w, rt, rn, off, add, index, wback)
            }
            Instr::Str { w, rt, rn, off, add, index, wback } => {
                let (addr, offset_addr) = self.address(rn, off, add, index);
                let size = match w {
                    Width::B | Width::Sb => Size::Byte,
                    Width::H | Width::Sh => Size::Half,
                    Width::W => Size::Word,
                };
                self.check_align(addr, size as u32)?;
                self.store(addr, self.r(rt), size)?;
                if wback {
                    self.set_reg(rn, offset_addr);
                }
                Ok(LOAD_STORE)
            }
            Instr::Dual { load, rt, rt2, rn, imm, add, index, wback } => {
                let base = if rn == 15 { self.r(15) & !3 } else { self.r(rn) };
                let offset_addr = if add { base.wrapping_add(imm) } else { base.wrapping_sub(imm) };
                let addr = if index { offset_addr } else { base };
                if addr & 3 != 0 {
                    return Err(usage(cfsr::UNALIGNED));
                }
                if load {
                    let a = self.load(addr, Size::Word)?;
                    let b = self.load(addr.wrapping_add(4), Size::Word)?;
                    self.set_reg(rt, a);
                    self.set_reg(rt2, b);
                } else {
                    self.store(addr, self.r(rt), Size::Word)?;
                    self.store(addr.wrapping_add(4), self.r(rt2), Size::Word)?;
                }
                if wback {
                    self.set_reg(rn, offset_addr);
                }
                Ok(1 + 2)
            }
            Instr::Multi { load, rn, regs, db, wback } => self.exec_multi(load, rn, regs, db, wback),
            Instr::Ldrex { w, rt, rn, imm } => {
                let addr = self.r(rn).wrapping_add(imm);
                let size = width_size(w);
                if addr & (size as u32 - 1) != 0 {
                    return Err(usage(cfsr::UNALIGNED));
                }
                let v = self.load(addr, size)?;
                self.cpu_mut().exclusive = Some(addr);
                self.set_reg(rt, v);
                Ok(LOAD_STORE)
            }
            Instr::Strex { w, rd, rt, rn, imm } => {
                let addr = self.r(rn).wrapping_add(imm);
                let size = width_size(w);
                if addr & (size as u32 - 1) != 0 {
                    return Err(usage(cfsr::UNALIGNED));
                }
                let ok = self.cpu().exclusive == Some(addr);
                if ok {
                    self.store(addr, self.r(rt), size)?;
                }
                self.cpu_mut().exclusive = None;
                self.set_reg(rd, u32::from(!ok));
                Ok(LOAD_STORE)
            }
            Instr::Clrex => {
                self.cpu_mut().exclusive = None;
                Ok(1)
            }
            Instr::Table { half, rn, rm } => {
                let base = self.r(rn);
                let off = if half {
                    self.load(base.wrapping_add(self.r(rm) << 1), Size::Half)?
                } else {
                    self.load(base.wrapping_add(self.r(rm)), Size::Byte)?
                };
                self.branch(self.r(15).wrapping_add(off << 1));
                Ok(2 + REFILL)
            }
            Instr::B { cond, imm } => {
                if cond >= 14 || self.cpu().cond(cond) {
                    self.branch(self.r(15).wrapping_add(imm as u32));
                    Ok(1 + REFILL)
                } else {
                    Ok(1)
                }
            }
            Instr::Bl { imm } => {
                self.cpu_mut().r[14] = self.next_pc() | 1;
                self.branch(self.r(15).wrapping_add(imm as u32));
                Ok(1 + REFILL)
            }
            Instr::Bx { rm } => {
                self.bx_write_pc(self.r(rm));
                Ok(1 + REFILL)
            }
            Instr::Blx { rm } => {
                let target = self.r(rm);
                self.cpu_mut().r[14] = self.next_pc() | 1;
                // BLXWritePC: no exception return, just interworking.
                self.cpu_mut().thumb = target & 1 != 0;
                if !self.cpu().thumb {
                    self.reschedule(); // leave the block: the next step must fault (INVSTATE)
                }
                self.branch(target);
                Ok(1 + REFILL)
            }
            Instr::Cbz { nonzero, rn, imm } => {
                if (self.r(rn) != 0) == nonzero {
                    self.branch(self.r(15).wrapping_add(imm));
                    Ok(1 + REFILL)
                } else {
                    Ok(1)
                }
            }
            Instr::It { state } => {
                self.cpu_mut().it = state;
                Ok(1)
            }
            Instr::Mrs { rd, sysm } => {
                let v = self.read_special(sysm);
                self.set_reg(rd, v);
                Ok(1)
            }
            Instr::Msr { rn, sysm, mask } => {
                let v = self.r(rn);
                self.write_special(sysm, mask, v);
                Ok(1)
            }
            Instr::Cps { disable, i, f } => {
                if self.privileged() {
                    if i {
                        self.cpu_mut().primask = disable;
                    }
                    if f && (!disable || self.execution_priority_above_hardfault()) {
                        self.cpu_mut().faultmask = disable;
                    }
                    self.reschedule();
                }
                Ok(1)
            }
            Instr::Hint(h) => {
                match h {
                    Hint::Nop => {}
                    Hint::Wfi => self.0.sleep(false),
                    Hint::Wfe => {
                        if self.cpu().event {
                            self.cpu_mut().event = false;
                        } else {
                            self.0.sleep(true);
                        }
                    }
                    Hint::Sev => self.cpu_mut().event = true,
                }
                Ok(1)
            }
            Instr::Svc(_) => Err(Exc::Svc),
            Instr::Bkpt(0xab) => {
                let (op, arg) = (self.cpu().r[0], self.cpu().r[1]);
                let result = self.0.semihosting(op, arg)?;
                self.cpu_mut().r[0] = result;
                Ok(1)
            }
            Instr::Bkpt(_) => Err(Exc::Debug),
            Instr::Undef(Undef::NoCoprocessor) => Err(usage(cfsr::NOCP)),
            Instr::Undef(Undef::Undefined) | Instr::Empty => Err(usage(cfsr::UNDEFINSTR)),
        }
    }

    /// Executes the infallible fast forms ([`fast`]).
    #[inline(always)]
    fn fast(&mut self, i: &Instr, in_it: bool) -> Option<u32> {
        match *i {
            Instr::AddImm { s, rd, rn, imm } => {
                let (r, c, v) = add_with_carry(self.r(rn), imm, false);
                self.cpu_mut().r[usize::from(rd & 15)] = r;
                self.arith_flags(s, in_it, r, c, v);
                Some(1)
            }
            Instr::SubImm { s, rd, rn, imm } => {
                let (r, c, v) = add_with_carry(self.r(rn), !imm, true);
                self.cpu_mut().r[usize::from(rd & 15)] = r;
                self.arith_flags(s, in_it, r, c, v);
                Some(1)
            }
            Instr::CmpImm { rn, imm } => {
                let (r, c, v) = add_with_carry(self.r(rn), !imm, true);
                self.arith_flags(SetFlags::Yes, in_it, r, c, v);
                Some(1)
            }
            Instr::MovImm { s, rd, imm } => {
                self.cpu_mut().r[usize::from(rd & 15)] = imm;
                self.logic_flags(s, in_it, imm);
                Some(1)
            }
            Instr::AddReg { s, rd, rn, rm } => {
                let (r, c, v) = add_with_carry(self.r(rn), self.r(rm), false);
                self.cpu_mut().r[usize::from(rd & 15)] = r;
                self.arith_flags(s, in_it, r, c, v);
                Some(1)
            }
            Instr::SubReg { s, rd, rn, rm } => {
                let (r, c, v) = add_with_carry(self.r(rn), !self.r(rm), true);
                self.cpu_mut().r[usize::from(rd & 15)] = r;
                self.arith_flags(s, in_it, r, c, v);
                Some(1)
            }
            Instr::CmpReg { rn, rm } => {
                let (r, c, v) = add_with_carry(self.r(rn), !self.r(rm), true);
                self.arith_flags(SetFlags::Yes, in_it, r, c, v);
                Some(1)
            }
            Instr::MovReg { s, rd, rm } => {
                let v = self.r(rm);
                self.cpu_mut().r[usize::from(rd & 15)] = v;
                self.logic_flags(s, in_it, v);
                Some(1)
            }
            Instr::Logic { op, s: SetFlags::No, rd, rn, rm, shift, amount } => {
                let (b, _) = shift_c(self.r(rm), shift, u32::from(amount), self.cpu().c);
                self.cpu_mut().r[usize::from(rd & 15)] = logic(op, self.r(rn), b);
                Some(1)
            }
            Instr::Logic { op, s, rd, rn, rm, shift, amount } => {
                let (b, carry) = shift_c(self.r(rm), shift, u32::from(amount), self.cpu().c);
                let r = logic(op, self.r(rn), b);
                self.cpu_mut().r[usize::from(rd & 15)] = r;
                if s == SetFlags::Yes || (s == SetFlags::OutsideIt && !in_it) {
                    self.cpu_mut().n = r >> 31 != 0;
                    self.cpu_mut().z = r == 0;
                    self.cpu_mut().c = carry;
                }
                Some(1)
            }
            Instr::MulReg { s, rd, rn, rm } => {
                let r = self.r(rn).wrapping_mul(self.r(rm));
                self.cpu_mut().r[usize::from(rd & 15)] = r;
                // MULS sets N and Z only (ARMv7-M: C and V unchanged).
                self.logic_flags(s, in_it, r);
                Some(1)
            }
            _ => None,
        }
    }

    /// Sets N Z C V after an arithmetic fast form, if its flag rule says so.
    #[inline(always)]
    fn arith_flags(&mut self, s: SetFlags, in_it: bool, r: u32, c: bool, v: bool) {
        if s == SetFlags::Yes || (s == SetFlags::OutsideIt && !in_it) {
            self.cpu_mut().n = r >> 31 != 0;
            self.cpu_mut().z = r == 0;
            self.cpu_mut().c = c;
            self.cpu_mut().v = v;
        }
    }

    /// Sets N Z after a move fast form (C is unchanged: no shift, no rotated immediate).
    #[inline(always)]
    fn logic_flags(&mut self, s: SetFlags, in_it: bool, r: u32) {
        if s == SetFlags::Yes || (s == SetFlags::OutsideIt && !in_it) {
            self.cpu_mut().n = r >> 31 != 0;
            self.cpu_mut().z = r == 0;
        }
    }

    fn execution_priority_above_hardfault(&self) -> bool {
        // FAULTMASK can only be set when the execution priority is below HardFault's (-1).
        !self.0.hardfault_or_nmi_active()
    }

    #[inline(always)]
    fn exec_dp(&mut self, op: DpOp, s: SetFlags, rd: u8, rn: u8, op2: Op2, in_it: bool) -> u32 {
        let (b, shifter_carry) = self.operand2(op2);
        let a = self.r(rn);
        let setflags = match s {
            SetFlags::No => false,
            SetFlags::Yes => true,
            SetFlags::OutsideIt => !in_it,
        };
        let c = self.cpu().c;
        // (result, Some((carry, overflow)) for arithmetic, None for logical ops)
        let (r, arith) = match op {
            DpOp::And | DpOp::Tst => (a & b, None),
            DpOp::Eor | DpOp::Teq => (a ^ b, None),
            DpOp::Orr => (a | b, None),
            DpOp::Orn => (a | !b, None),
            DpOp::Bic => (a & !b, None),
            DpOp::Mov => (b, None),
            DpOp::Mvn => (!b, None),
            DpOp::Add | DpOp::Cmn => {
                let (r, c, v) = add_with_carry(a, b, false);
                (r, Some((c, v)))
            }
            DpOp::Adc => {
                let (r, c, v) = add_with_carry(a, b, c);
                (r, Some((c, v)))
            }
            DpOp::Sub | DpOp::Cmp => {
                let (r, c, v) = add_with_carry(a, !b, true);
                (r, Some((c, v)))
            }
            DpOp::Sbc => {
                let (r, c, v) = add_with_carry(a, !b, c);
                (r, Some((c, v)))
            }
            DpOp::Rsb => {
                let (r, c, v) = add_with_carry(!a, b, true);
                (r, Some((c, v)))
            }
            DpOp::Mul => (a.wrapping_mul(b), None),
        };
        if setflags {
            self.cpu_mut().n = r >> 31 != 0;
            self.cpu_mut().z = r == 0;
            match arith {
                Some((carry, overflow)) => {
                    self.cpu_mut().c = carry;
                    self.cpu_mut().v = overflow;
                }
                // MULS leaves C and V alone (ARMv7-M).
                None if op == DpOp::Mul => {}
                None => self.cpu_mut().c = shifter_carry,
            }
        }
        if matches!(op, DpOp::Tst | DpOp::Teq | DpOp::Cmp | DpOp::Cmn) {
            return 1;
        }
        self.set_reg(rd, r);
        if rd == 15 {
            1 + REFILL
        } else {
            1
        }
    }

    /// (address used, offset address for writeback).
    #[inline]
    fn address(&self, rn: u8, off: Offset, add: bool, index: bool) -> (u32, u32) {
        let base = if rn == 15 { self.r(15) & !3 } else { self.r(rn) };
        let offset = match off {
            Offset::Imm(v) => v,
            Offset::Reg { rm, shift } => self.r(rm) << shift,
        };
        let offset_addr = if add { base.wrapping_add(offset) } else { base.wrapping_sub(offset) };
        (if index { offset_addr } else { base }, offset_addr)
    }

    #[allow(clippy::too_many_arguments)]
    #[inline]
    fn exec_ldr(
        &mut self,
        w: Width,
        rt: u8,
        rn: u8,
        off: Offset,
        add: bool,
        index: bool,
        wback: bool,
    ) -> Result<u32, Exc> {
        let (addr, offset_addr) = self.address(rn, off, add, index);
        let v = match w {
            Width::B => self.load(addr, Size::Byte)?,
            Width::Sb => self.load(addr, Size::Byte)? as u8 as i8 as i32 as u32,
            Width::H => {
                self.check_align(addr, 2)?;
                self.load(addr, Size::Half)?
            }
            Width::Sh => {
                self.check_align(addr, 2)?;
                self.load(addr, Size::Half)? as u16 as i16 as i32 as u32
            }
            Width::W => {
                self.check_align(addr, 4)?;
                self.load(addr, Size::Word)?
            }
        };
        if wback {
            self.set_reg(rn, offset_addr);
        }
        if rt == 15 {
            if addr & 3 != 0 {
                return Err(usage(cfsr::UNALIGNED));
            }
            self.bx_write_pc(v);
            return Ok(LOAD_STORE + REFILL);
        }
        self.set_reg(rt, v);
        Ok(LOAD_STORE)
    }

    fn exec_multi(&mut self, load: bool, rn: u8, regs: u16, db: bool, wback: bool) -> Result<u32, Exc> {
        let count = regs.count_ones();
        let base = self.r(rn);
        let start = if db { base.wrapping_sub(4 * count) } else { base };
        if start & 3 != 0 {
            return Err(usage(cfsr::UNALIGNED));
        }
        let end = if db { start } else { base.wrapping_add(4 * count) };
        let mut addr = start;
        let mut cycles = 1 + count;
        if load {
            let mut values = [0u32; 16];
            for (r, slot) in values.iter_mut().enumerate() {
                if regs & (1 << r) != 0 {
                    *slot = self.load(addr, Size::Word)?;
                    addr = addr.wrapping_add(4);
                }
            }
            if wback {
                self.set_reg(rn, end);
            }
            for (r, v) in values.iter().enumerate().take(15) {
                if regs & (1 << r) != 0 {
                    self.set_reg(r as u8, *v);
                }
            }
            if regs & (1 << 15) != 0 {
                self.bx_write_pc(values[15]);
                cycles += REFILL;
            }
        } else {
            // Read every register before the first store (STM of the base stores its old value).
            let values = self.cpu().r;
            for (r, v) in values.iter().enumerate() {
                if regs & (1 << r) != 0 {
                    self.store(addr, *v, Size::Word)?;
                    addr = addr.wrapping_add(4);
                }
            }
            if wback {
                self.set_reg(rn, end);
            }
        }
        Ok(cycles)
    }

    fn read_special(&self, sysm: u8) -> u32 {
        let c = self.cpu();
        match sysm {
            0..=7 => {
                let mut v = 0;
                if sysm & 4 == 0 {
                    v |= c.xpsr() & 0xf800_0000;
                }
                if sysm & 1 != 0 {
                    v |= c.ipsr & 0x1ff;
                }
                v
            }
            8 if self.privileged() => c.msp(),
            9 if self.privileged() => c.psp(),
            16 => u32::from(c.primask),
            17 | 18 => u32::from(c.basepri),
            19 => u32::from(c.faultmask),
            20 => u32::from(c.npriv) | (u32::from(c.spsel) << 1),
            _ => 0,
        }
    }

    fn write_special(&mut self, sysm: u8, mask: u8, v: u32) {
        match sysm {
            0..=3 => {
                if mask & 2 != 0 {
                    self.cpu_mut().set_apsr(v);
                }
                return;
            }
            4..=7 => return,
            _ => {}
        }
        if !self.privileged() {
            return;
        }
        match sysm {
            8 => self.cpu_mut().set_msp(v),
            9 => self.cpu_mut().set_psp(v),
            16 => self.cpu_mut().primask = v & 1 != 0,
            // BASEPRI has as many bits as the priority fields.
            17 => self.cpu_mut().basepri = v as u8 & crate::system::PRIORITY_MASK,
            18 => {
                let b = v as u8 & crate::system::PRIORITY_MASK;
                if b != 0 && (self.cpu().basepri == 0 || b < self.cpu().basepri) {
                    self.cpu_mut().basepri = b;
                }
            }
            19 => {
                if v & 1 == 0 || self.execution_priority_above_hardfault() {
                    self.cpu_mut().faultmask = v & 1 != 0;
                }
            }
            20 => {
                self.cpu_mut().npriv = v & 1 != 0;
                if self.cpu().ipsr == 0 {
                    let ipsr = self.cpu().ipsr;
                    self.cpu_mut().set_mode(ipsr, v & 2 != 0);
                }
            }
            _ => tracing::debug!(target: "guest", "MSR to special register {sysm}: ignored"),
        }
        self.reschedule();
    }
}

fn width_size(w: Width) -> Size {
    match w {
        Width::B | Width::Sb => Size::Byte,
        Width::H | Width::Sh => Size::Half,
        Width::W => Size::Word,
    }
}
