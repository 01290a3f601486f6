//! Branches: the exits at the end of a pass, and the loop back to the block's start while
//! another whole pass fits in the cycle budget.

use super::{Pc, Tx};
use crate::jit::EXIT_NEXT;
use crate::timing::REFILL;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{Block, InstBuilder, Value};

impl Tx<'_, '_> {
    /// Leaves through a branch to `target` (a constant) taken at the end of the pass: loops if
    /// it is the block's start and another pass fits, otherwise exits.
    fn branch_exit(&mut self, target: u32, cycles: u64, pc0: u32, looping: bool, max: u64, body: Block) {
        let instret = self.pass_instrs + 1;
        if looping && target == pc0 {
            let cyc = self.b.use_var(self.cyc);
            let cyc = self.b.ins().iadd_imm_u(cyc, cycles as i64);
            let ins = self.b.use_var(self.ins);
            let ins = self.b.ins().iadd_imm_u(ins, instret as i64);
            self.b.def_var(self.cyc, cyc);
            self.b.def_var(self.ins, ins);
            let need = self.b.ins().iadd_imm_u(cyc, max as i64);
            let fits = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, need, self.room);
            let out = self.exit(Pc::Const(pc0), 0, 0, EXIT_NEXT);
            self.b.ins().brif(fits, body, &[], out, &[]);
        } else {
            let out = self.exit(Pc::Const(target), cycles, instret, EXIT_NEXT);
            self.b.ins().jump(out, &[]);
        }
    }

    /// A conditional branch at the end of the pass.
    #[allow(clippy::too_many_arguments)]
    fn cond_branch(
        &mut self,
        taken: Value,
        target: u32,
        next: u32,
        pc0: u32,
        looping: bool,
        max: u64,
        body: Block,
    ) {
        let (t, f) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(taken, t, &[], f, &[]);
        self.b.seal_block(t);
        self.b.seal_block(f);
        self.b.switch_to_block(f);
        let out = self.exit(Pc::Const(next), self.pass_cycles + 1, self.pass_instrs + 1, EXIT_NEXT);
        self.b.ins().jump(out, &[]);
        self.b.switch_to_block(t);
        self.branch_exit(target, self.pass_cycles + 1 + u64::from(REFILL), pc0, looping, max, body);
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

    /// B, B<cond>: ends the block.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn b(
        &mut self,
        cond: u8,
        imm: i32,
        next: u32,
        pc0: u32,
        looping: bool,
        max: u64,
        body: Block,
    ) {
        let pc4 = self.pc.wrapping_add(4);
        let target = pc4.wrapping_add(imm as u32);
        if cond >= 14 {
            self.branch_exit(target, self.pass_cycles + 1 + u64::from(REFILL), pc0, looping, max, body);
        } else {
            let taken = self.cond(cond);
            self.cond_branch(taken, target, next, pc0, looping, max, body);
        }
    }

    /// CBZ, CBNZ: ends the block.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn cbz(
        &mut self,
        nonzero: bool,
        rn: u8,
        imm: u32,
        next: u32,
        pc0: u32,
        looping: bool,
        max: u64,
        body: Block,
    ) {
        let pc4 = self.pc.wrapping_add(4);
        let v = self.reg(rn);
        let cc = if nonzero { IntCC::NotEqual } else { IntCC::Equal };
        let taken = self.b.ins().icmp_imm_u(cc, v, 0);
        self.cond_branch(taken, pc4.wrapping_add(imm), next, pc0, looping, max, body);
    }

    /// BL: ends the block.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn bl(&mut self, imm: i32, next: u32, pc0: u32, looping: bool, max: u64, body: Block) {
        let pc4 = self.pc.wrapping_add(4);
        let lr = self.iconst(next | 1);
        self.set_reg(14, lr);
        let target = pc4.wrapping_add(imm as u32);
        self.branch_exit(target, self.pass_cycles + 1 + u64::from(REFILL), pc0, looping, max, body);
    }

    /// BX: ends the block (bails on an exception return or ARM state).
    pub(super) fn bx(&mut self, rm: u8) {
        let t = self.reg(rm);
        self.check_interworking(t);
        let target = self.b.ins().band_imm_u(t, !1i64 & 0xffff_ffff);
        let cycles = self.pass_cycles + 1 + u64::from(REFILL);
        let out = self.exit(Pc::Val(target), cycles, self.pass_instrs + 1, EXIT_NEXT);
        self.b.ins().jump(out, &[]);
    }
}
