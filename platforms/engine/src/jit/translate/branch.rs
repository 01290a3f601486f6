//! Branches: the end of a run. A direct branch to a run of the same region jumps there
//! (while a whole pass of it fits in the cycle budget, [`Tx::goto`]); any other leaves the
//! compiled code with the PC it computed.

use super::memory::Align;
use super::{mem, Pc, Tx};
use crate::jit::EXIT_NEXT;
use crate::timing::REFILL;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};

impl Tx<'_, '_> {
    /// A conditional branch to `target` at the end of the run; falls through to `next`.
    fn cond_branch(&mut self, taken: Value, target: u32, next: u32) {
        let (t, f) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(taken, t, &[], f, &[]);
        self.b.seal_block(t);
        self.b.seal_block(f);
        self.b.switch_to_block(f);
        self.goto(next, self.pass_cycles + 1, self.pass_instrs + 1);
        self.b.switch_to_block(t);
        self.goto(target, self.pass_cycles + 1 + u64::from(REFILL), self.pass_instrs + 1);
    }

    /// Leaves the compiled code for the address in `target` after a taken indirect branch of
    /// `cycles` (those of this instruction).
    fn indirect_exit(&mut self, target: Value, cycles: u32) {
        let cycles = self.pass_cycles + u64::from(cycles);
        let out = self.exit(Pc::Val(target), cycles, self.pass_instrs + 1, EXIT_NEXT);
        self.b.ins().jump(out, &[]);
    }

    /// Bails unless `target` is a plain Thumb address: bit 0 set, and not 0xFxxxxxxx (which
    /// is an exception return in Handler mode).
    pub(super) fn check_interworking(&mut self, target: Value) {
        let top = self.b.ins().ushr_imm_u(target, 28);
        let exc_return = self.b.ins().icmp_imm_u(IntCC::Equal, top, 0xf);
        let bit0 = self.b.ins().band_imm_u(target, 1);
        let arm = self.b.ins().icmp_imm_u(IntCC::Equal, bit0, 0);
        let bad = self.b.ins().bor(exc_return, arm);
        self.bail_if(bad);
    }

    /// Leaves for a register's Thumb address (bit 0 cleared) after checking it
    /// ([`Tx::check_interworking`]).
    pub(super) fn interworking_exit(&mut self, t: Value, cycles: u32) {
        let target = self.b.ins().band_imm_u(t, !1i64 & 0xffff_ffff);
        self.indirect_exit(target, cycles);
    }

    /// B, B<cond> (or a B inside an IT block, with the block's condition).
    pub(super) fn b(&mut self, cond: u8, imm: i32, next: u32) {
        let target = self.pc.wrapping_add(4).wrapping_add(imm as u32);
        if cond >= 14 {
            self.goto(target, self.pass_cycles + 1 + u64::from(REFILL), self.pass_instrs + 1);
        } else {
            let taken = self.cond(cond);
            self.cond_branch(taken, target, next);
        }
    }

    /// CBZ, CBNZ.
    pub(super) fn cbz(&mut self, nonzero: bool, rn: u8, imm: u32, next: u32) {
        let pc4 = self.pc.wrapping_add(4);
        let v = self.reg(rn);
        let cc = if nonzero { IntCC::NotEqual } else { IntCC::Equal };
        let taken = self.b.ins().icmp_imm_u(cc, v, 0);
        self.cond_branch(taken, pc4.wrapping_add(imm), next);
    }

    /// BL.
    pub(super) fn bl(&mut self, imm: i32, next: u32) {
        let lr = self.iconst(next | 1);
        self.set_reg(14, lr);
        let target = self.pc.wrapping_add(4).wrapping_add(imm as u32);
        self.goto(target, self.pass_cycles + 1 + u64::from(REFILL), self.pass_instrs + 1);
    }

    /// BX (bails on an exception return or ARM state).
    pub(super) fn bx(&mut self, rm: u8) {
        let t = self.reg(rm);
        self.check_interworking(t);
        self.interworking_exit(t, 1 + REFILL);
    }

    /// BLX (register): a call through a function pointer (bails on ARM state).
    pub(super) fn blx(&mut self, rm: u8, next: u32) {
        let t = self.reg(rm);
        self.check_interworking(t);
        let lr = self.iconst(next | 1);
        self.set_reg(14, lr);
        self.interworking_exit(t, 1 + REFILL);
    }

    /// TBB, TBH: a branch forward by twice the table's entry at `rn + rm` (bytes) or
    /// `rn + 2 * rm` (halfwords); the table is read as any load (a table outside plain memory
    /// bails).
    pub(super) fn table(&mut self, half: bool, rn: u8, rm: u8) {
        let base = self.reg(rn);
        let index = self.reg(rm);
        let index = if half { self.b.ins().ishl_imm_u(index, 1) } else { index };
        let addr = self.b.ins().iadd(base, index);
        let span = if half { 2 } else { 1 };
        let host = self.host(addr, span, Align::None, false);
        let entry = if half {
            self.b.ins().uload16(types::I32, mem(), host, 0)
        } else {
            self.b.ins().uload8(types::I32, mem(), host, 0)
        };
        let off = self.b.ins().ishl_imm_u(entry, 1);
        let target = self.b.ins().iadd_imm_u(off, i64::from(self.pc.wrapping_add(4)));
        self.indirect_exit(target, 2 + REFILL);
    }
}
