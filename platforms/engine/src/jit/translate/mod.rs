//! Translation of a formed block to Cranelift IR: the function's frame (guest registers and
//! flags in Cranelift variables, loaded on entry; registers written through, flags stored on
//! the way out), the exits, and one function per instruction family in `alu.rs`, `memory.rs`
//! and `branch.rs`.

mod alu;
mod branch;
mod memory;

use super::block::{ends_block, regs_of, Ins, Run};
use super::cache::Jit;
use super::{BlockFn, Compiled, JitIo, EXIT_BAIL, EXIT_NEXT};
use crate::cpu::instr::*;
use crate::cpu::CpuState;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, AbiParam, Block, InstBuilder, MemFlagsData, Type, Value};
use cranelift_frontend::{FunctionBuilder, Variable};
use cranelift_module::Module;
use std::collections::HashMap;
use std::mem::offset_of;
use std::sync::atomic::AtomicU64;

/// Where an exit leaves the PC.
#[derive(Clone, Copy)]
enum Pc {
    Const(u32),
    Val(Value),
}

/// An exit, filled in once the whole block is translated (so it knows every register the
/// block writes).
struct Exit {
    block: Block,
    pc: Pc,
    cycles: u64,
    instret: u64,
    code: u32,
    /// ITSTATE to leave (bails inside an IT block; exits of a region that started in one).
    it: Option<u8>,
}

const N: usize = 0;
const Z: usize = 1;
const C: usize = 2;
const V: usize = 3;

/// Translation state.
struct Tx<'a, 'f> {
    b: &'a mut FunctionBuilder<'f>,
    io: Value,
    cpu: Value,
    room: Value,
    regs: [Variable; 15],
    flags: [Variable; 4],
    cyc: Variable,
    ins: Variable,
    fwritten: u8,
    exits: Vec<Exit>,
    ptr: Type,
    /// Address of the instruction being translated.
    pc: u32,
    /// Cycles and instructions of this pass before it.
    pass_cycles: u64,
    pass_instrs: u64,
    /// This instruction's bail exit, once made.
    bail: Option<Block>,
    /// ITSTATE before this instruction (0 outside IT blocks).
    it: u8,
    /// ITSTATE when the region was entered (0 but for single instructions inside IT blocks).
    it0: u8,
    /// Whether branches to the region's runs stay in compiled code (not for single runs, which
    /// run one pass: a single instruction branching to itself must not loop).
    follow: bool,
    /// Guest registers and flags live in host registers (Cranelift variables) across the
    /// whole region (the optimising tier), or in the core's memory, with their values cached
    /// only along straight-line code (the first tier: far less for the register allocator).
    vars: bool,
    /// First tier: the value of each register and flag known at this point, if any.
    known_r: [Option<Value>; 15],
    known_f: [Option<Value>; 4],
    /// The region's runs by start address: their blocks and most cycles per pass.
    runs: HashMap<u32, (Block, u64)>,
}

fn mem() -> MemFlagsData {
    MemFlagsData::trusted()
}

impl Jit {
    pub(super) fn build(
        &mut self,
        runs: &[Run],
        follow: bool,
        it0: u8,
        optimise: bool,
    ) -> Option<&'static Compiled> {
        let pc0 = runs[0].start;
        // Two tiers: every region is first compiled fast (Cranelift's `none`); one that keeps
        // running is compiled again optimised (`speed`, see `Compiled::spent`).
        let module = &mut self.modules[usize::from(optimise)];
        let ptr = module.target_config().pointer_type();
        let frontend = module.isa().frontend_config();
        module.clear_context(&mut self.ctx);
        self.ctx.func.signature.params.push(AbiParam::new(ptr));
        self.ctx.func.signature.returns.push(AbiParam::new(types::I32));
        let max_cycles = runs[0].max_cycles();
        {
            let mut b = FunctionBuilder::new(&mut self.ctx.func, &mut self.fbc);
            let entry = b.create_block();
            b.append_block_params_for_function_params(entry);
            b.switch_to_block(entry);
            b.seal_block(entry);
            let io = b.block_params(entry)[0];
            let cpu = b.ins().load(ptr, mem(), io, offset_of!(JitIo, cpu) as i32);
            let room = b.ins().load(types::I64, mem(), io, offset_of!(JitIo, room) as i32);
            let regs = std::array::from_fn(|_| b.declare_var(types::I32));
            let flags = std::array::from_fn(|_| b.declare_var(types::I8));
            let cyc = b.declare_var(types::I64);
            let ins = b.declare_var(types::I64);
            let used = runs.iter().flat_map(|r| &r.instrs).fold(0u16, |m, i| m | regs_of(&i.instr));
            let r_off = offset_of!(CpuState, r) as i32;
            let used = if optimise { used } else { 0 };
            for (r, var) in regs.iter().enumerate() {
                if used & (1 << r) != 0 {
                    let v = b.ins().load(types::I32, mem(), cpu, r_off + 4 * r as i32);
                    b.def_var(*var, v);
                } else {
                    let zero = b.ins().iconst(types::I32, 0);
                    b.def_var(*var, zero);
                }
            }
            for (f, var) in flags.iter().enumerate() {
                let v = if optimise {
                    b.ins().load(types::I8, mem(), cpu, flag_offset(f))
                } else {
                    b.ins().iconst(types::I8, 0)
                };
                b.def_var(*var, v);
            }
            let zero = b.ins().iconst(types::I64, 0);
            b.def_var(cyc, zero);
            b.def_var(ins, zero);
            let blocks: HashMap<u32, (Block, u64)> =
                runs.iter().map(|r| (r.start, (b.create_block(), r.max_cycles()))).collect();
            b.ins().jump(blocks[&pc0].0, &[]);
            let mut tx = Tx {
                b: &mut b,
                io,
                cpu,
                room,
                regs,
                flags,
                cyc,
                ins,
                fwritten: 0,
                exits: Vec::new(),
                ptr,
                pc: pc0,
                pass_cycles: 0,
                pass_instrs: 0,
                bail: None,
                it: it0,
                it0,
                follow,
                vars: optimise,
                known_r: [None; 15],
                known_f: [None; 4],
                runs: blocks,
            };
            for run in runs {
                let block = tx.runs[&run.start].0;
                tx.b.switch_to_block(block);
                tx.forget();
                tx.run(run);
            }
            tx.fill_exits();
            b.seal_all_blocks();
            b.finalize(frontend);
        }
        let id = match module.declare_anonymous_function(&self.ctx.func.signature) {
            Ok(id) => id,
            Err(e) => {
                tracing::warn!(target: "jit", "block at 0x{pc0:08x}: {e}");
                return None;
            }
        };
        if let Err(e) = module.define_function(id, &mut self.ctx) {
            tracing::warn!(target: "jit", "block at 0x{pc0:08x} does not compile: {e:?}");
            module.clear_context(&mut self.ctx);
            return None;
        }
        module.clear_context(&mut self.ctx);
        if let Err(e) = module.finalize_definitions() {
            tracing::warn!(target: "jit", "block at 0x{pc0:08x}: {e}");
            return None;
        }
        let code = module.get_finalized_function(id);

        // SAFETY: the function was built with the signature `BlockFn` (one pointer in, i32 out,
        // the platform's default calling convention, which is "C").
        let f: BlockFn = unsafe { std::mem::transmute::<*const u8, BlockFn>(code) };
        tracing::trace!(
            target: "jit",
            "compiled {} instructions in {} runs at 0x{pc0:08x}",
            runs.iter().map(|r| r.instrs.len()).sum::<usize>(),
            runs.len()
        );
        // The run's fall-through, when it ends without a branch and outside the region.
        let first = &runs[0];
        let fallthrough = first
            .instrs
            .last()
            .filter(|i| !ends_block(&i.instr))
            .map(|_| first.end())
            .filter(|e| !runs.iter().any(|r| r.start == *e));
        Some(Box::leak(Box::new(Compiled {
            f,
            max_cycles,
            fallthrough,
            optimised: optimise,
            spent: AtomicU64::new(0),
        })))
    }
}

fn flag_offset(f: usize) -> i32 {
    (match f {
        N => offset_of!(CpuState, n),
        Z => offset_of!(CpuState, z),
        C => offset_of!(CpuState, c),
        _ => offset_of!(CpuState, v),
    }) as i32
}

impl Tx<'_, '_> {
    // ---- registers and flags ----

    fn reg(&mut self, r: u8) -> Value {
        if r >= 15 {
            // Reads of the PC see the instruction's address + 4.
            self.b.ins().iconst(types::I32, i64::from(self.pc.wrapping_add(4)))
        } else if self.vars {
            self.b.use_var(self.regs[usize::from(r)])
        } else if let Some(v) = self.known_r[usize::from(r)] {
            v
        } else {
            let off = offset_of!(CpuState, r) as i32 + 4 * i32::from(r);
            let v = self.b.ins().load(types::I32, mem(), self.cpu, off);
            self.known_r[usize::from(r)] = Some(v);
            v
        }
    }

    fn set_reg(&mut self, r: u8, v: Value) {
        debug_assert!(r < 15);
        let v = if r == 13 { self.b.ins().band_imm_u(v, !3i64 & 0xffff_ffff) } else { v };
        if self.vars {
            self.b.def_var(self.regs[usize::from(r)], v);
        } else {
            self.known_r[usize::from(r)] = Some(v);
        }
        // Written through: exits then store nothing but the PC and the counts (which keeps
        // them, and compilation, small).
        let off = offset_of!(CpuState, r) as i32 + 4 * i32::from(r);
        self.b.ins().store(mem(), v, self.cpu, off);
    }

    fn flag(&mut self, f: usize) -> Value {
        if self.vars {
            return self.b.use_var(self.flags[f]);
        }
        if let Some(v) = self.known_f[f] {
            return v;
        }
        let v = self.b.ins().load(types::I8, mem(), self.cpu, flag_offset(f));
        self.known_f[f] = Some(v);
        v
    }

    fn set_flag(&mut self, f: usize, v: Value) {
        if self.vars {
            // Stored only on the way out (`fill_exits`): a loop that sets flags every pass
            // stores them once.
            self.b.def_var(self.flags[f], v);
            self.fwritten |= 1 << f;
        } else {
            self.known_f[f] = Some(v);
            self.b.ins().store(mem(), v, self.cpu, flag_offset(f));
        }
    }

    /// First tier: forgets every known value (at a block that other paths join: the values
    /// known on one path are not known on the other).
    fn forget(&mut self) {
        self.known_r = [None; 15];
        self.known_f = [None; 4];
    }

    fn set_nz(&mut self, r: Value) {
        let n = self.b.ins().icmp_imm_u(IntCC::SignedLessThan, r, 0);
        let z = self.b.ins().icmp_imm_u(IntCC::Equal, r, 0);
        self.set_flag(N, n);
        self.set_flag(Z, z);
    }

    fn iconst(&mut self, v: u32) -> Value {
        self.b.ins().iconst(types::I32, i64::from(v))
    }

    /// Condition `cond` (A7.3) as a 0/1 byte.
    fn cond(&mut self, cond: u8) -> Value {
        let (n, z, c, v) = (self.flag(N), self.flag(Z), self.flag(C), self.flag(V));
        let r = match cond >> 1 {
            0 => z,
            1 => c,
            2 => n,
            3 => v,
            4 => {
                let nz = self.b.ins().bxor_imm_u(z, 1);
                self.b.ins().band(c, nz)
            }
            5 => self.b.ins().icmp(IntCC::Equal, n, v),
            6 => {
                let nz = self.b.ins().bxor_imm_u(z, 1);
                let ge = self.b.ins().icmp(IntCC::Equal, n, v);
                self.b.ins().band(nz, ge)
            }
            _ => return self.b.ins().iconst(types::I8, 1),
        };
        if cond & 1 != 0 {
            self.b.ins().bxor_imm_u(r, 1)
        } else {
            r
        }
    }

    // ---- exits ----

    /// An exit after the current instruction (or out of a run): leaves ITSTATE 0, as it was
    /// on entry, except in a region entered inside an IT block.
    fn exit(&mut self, pc: Pc, cycles: u64, instret: u64, code: u32) -> Block {
        let it = (self.it0 != 0).then(|| super::block::it_advance(self.it));
        let block = self.b.create_block();
        self.exits.push(Exit { block, pc, cycles, instret, code, it });
        block
    }

    /// The bail exit of the current instruction.
    fn bail(&mut self) -> Block {
        if let Some(b) = self.bail {
            return b;
        }
        let b = self.b.create_block();
        let it = (self.it != 0 || self.it0 != 0).then_some(self.it);
        let (cycles, instret) = (self.pass_cycles, self.pass_instrs);
        self.exits.push(Exit { block: b, pc: Pc::Const(self.pc), cycles, instret, code: EXIT_BAIL, it });
        self.bail = Some(b);
        b
    }

    /// Continues in a new block when `cond` is false; jumps to `bail` when it is true.
    fn bail_if(&mut self, cond: Value) {
        let bail = self.bail();
        let ok = self.b.create_block();
        self.b.ins().brif(cond, bail, &[], ok, &[]);
        self.b.seal_block(ok);
        self.b.switch_to_block(ok);
    }

    /// Fills in the exits: each passes its PC, counts and exit code to one shared block that
    /// stores them and returns (registers and flags are already written through).
    fn fill_exits(&mut self) {
        let exits = std::mem::take(&mut self.exits);
        let shared = self.b.create_block();
        let pc = self.b.append_block_param(shared, types::I32);
        let cyc = self.b.append_block_param(shared, types::I64);
        let ins = self.b.append_block_param(shared, types::I64);
        let code = self.b.append_block_param(shared, types::I32);
        let written: Vec<usize> = (0..4).filter(|f| self.fwritten & (1 << f) != 0).collect();
        let flags: Vec<Value> =
            written.iter().map(|_| self.b.append_block_param(shared, types::I8)).collect();
        for e in exits {
            // Every branch to an exit was made while translating its instruction: sealing it
            // now keeps the variables it reads from becoming block parameters.
            self.b.switch_to_block(e.block);
            self.b.seal_block(e.block);
            let pc = match e.pc {
                Pc::Const(v) => self.b.ins().iconst(types::I32, i64::from(v)),
                Pc::Val(v) => v,
            };
            let cyc = self.b.use_var(self.cyc);
            let cyc = self.b.ins().iadd_imm_u(cyc, e.cycles as i64);
            let ins = self.b.use_var(self.ins);
            let ins = self.b.ins().iadd_imm_u(ins, e.instret as i64);
            let code = self.b.ins().iconst(types::I32, i64::from(e.code));
            if let Some(it) = e.it {
                let it = self.b.ins().iconst(types::I8, i64::from(it));
                self.b.ins().store(mem(), it, self.cpu, offset_of!(CpuState, it) as i32);
            }
            let mut args = vec![pc.into(), cyc.into(), ins.into(), code.into()];
            for &f in &written {
                args.push(self.b.use_var(self.flags[f]).into());
            }
            self.b.ins().jump(shared, &args);
        }
        self.b.switch_to_block(shared);
        self.b.seal_block(shared);
        self.b.ins().store(mem(), pc, self.cpu, offset_of!(CpuState, r) as i32 + 60);
        self.b.ins().store(mem(), cyc, self.io, offset_of!(JitIo, cycles) as i32);
        self.b.ins().store(mem(), ins, self.io, offset_of!(JitIo, instret) as i32);
        for (&f, &v) in written.iter().zip(&flags) {
            self.b.ins().store(mem(), v, self.cpu, flag_offset(f));
        }
        self.b.ins().return_(&[code]);
    }

    // ---- the region ----

    /// Translates one run of the region, in its block.
    fn run(&mut self, run: &Run) {
        self.pass_cycles = 0;
        self.pass_instrs = 0;
        let mut pc = run.start;
        for (k, ins) in run.instrs.iter().enumerate() {
            self.pc = pc;
            self.bail = None;
            self.it = ins.it;
            let next = pc.wrapping_add(u32::from(ins.size));
            let ended =
                if ins.it != 0 { self.predicated(ins, next) } else { self.instr(&ins.instr, next, false) };
            match ended {
                Some(cycles) => self.pass_cycles += u64::from(cycles),
                None => return,
            }
            self.pass_instrs += 1;
            if k + 1 == run.instrs.len() {
                // Fell off the end (unknown instruction, page end, stop address or length).
                self.goto(next, self.pass_cycles, self.pass_instrs);
            }
            pc = next;
        }
    }

    /// Goes to the run at `target` after `cycles` and `instret` of this one: jumps there if it
    /// is in the region and a whole pass of it fits in the cycle budget, exits otherwise.
    fn goto(&mut self, target: u32, cycles: u64, instret: u64) {
        match self.runs.get(&target).copied() {
            Some((block, max)) if self.follow && self.it0 == 0 => {
                let cyc = self.b.use_var(self.cyc);
                let cyc = self.b.ins().iadd_imm_u(cyc, cycles as i64);
                let ins = self.b.use_var(self.ins);
                let ins = self.b.ins().iadd_imm_u(ins, instret as i64);
                self.b.def_var(self.cyc, cyc);
                self.b.def_var(self.ins, ins);
                let need = self.b.ins().iadd_imm_u(cyc, max as i64);
                let fits = self.b.ins().icmp(IntCC::UnsignedLessThanOrEqual, need, self.room);
                let out = self.exit(Pc::Const(target), 0, 0, EXIT_NEXT);
                self.b.ins().brif(fits, block, &[], out, &[]);
            }
            _ => {
                let out = self.exit(Pc::Const(target), cycles, instret, EXIT_NEXT);
                self.b.ins().jump(out, &[]);
            }
        }
    }

    /// An instruction inside an IT block: runs only if its condition holds. A skipped one takes
    /// one cycle (as the interpreter counts); the extra cycles of one that runs are added on
    /// its path. Returns as [`Tx::instr`].
    fn predicated(&mut self, ins: &Ins, next: u32) -> Option<u32> {
        let cond = ins.it >> 4;
        if let Instr::B { cond: 14.., imm } = ins.instr {
            self.b(cond, imm, next);
            return None;
        }
        let taken = self.cond(cond);
        // What is known before it stays known where the instruction was skipped; after the
        // join, what it may have changed is not.
        let known = (self.known_r, self.known_f);
        let (run, skip) = (self.b.create_block(), self.b.create_block());
        self.b.ins().brif(taken, run, &[], skip, &[]);
        self.b.seal_block(run);
        self.b.switch_to_block(run);
        if ends_block(&ins.instr) {
            // A conditional BX, BL, POP {pc}...: it ends the run when it runs; skipped, the
            // run falls through to the next instruction.
            let ended = self.instr(&ins.instr, next, true);
            debug_assert!(ended.is_none());
            self.b.switch_to_block(skip);
            self.b.seal_block(skip);
            (self.known_r, self.known_f) = known;
            self.goto(next, self.pass_cycles + 1, self.pass_instrs + 1);
            return None;
        }
        let cycles = self.instr(&ins.instr, next, true).unwrap_or(1);
        if cycles > 1 {
            let cyc = self.b.use_var(self.cyc);
            let cyc = self.b.ins().iadd_imm_u(cyc, i64::from(cycles - 1));
            self.b.def_var(self.cyc, cyc);
        }
        self.b.ins().jump(skip, &[]);
        self.b.switch_to_block(skip);
        self.b.seal_block(skip);
        let after = (self.known_r, self.known_f);
        self.known_r = std::array::from_fn(|r| known.0[r].filter(|v| after.0[r] == Some(*v)));
        self.known_f = std::array::from_fn(|f| known.1[f].filter(|v| after.1[f] == Some(*v)));
        Some(1)
    }

    /// Translates one instruction: its cycles, or `None` if it ended the run.
    fn instr(&mut self, i: &Instr, next: u32, in_it: bool) -> Option<u32> {
        Some(match *i {
            Instr::Dp { op, s, rd, rn, op2 } => {
                let setflags = s == SetFlags::Yes || (s == SetFlags::OutsideIt && !in_it);
                self.dp(op, setflags, rd, rn, op2);
                1
            }
            Instr::Adr { rd, imm } => self.adr(rd, imm),
            Instr::Movt { rd, imm } => self.movt(rd, imm),
            Instr::Bf { op, rd, rn, lsb, width } => self.bitfield(op, rd, rn, lsb, width),
            Instr::Bit { op, rd, rm } => self.bit(op, rd, rm),
            Instr::Ext { op, rd, rm, rot } => self.extend(op, rd, rm, rot),
            Instr::Mul { op, rd, rn, rm, ra } => self.mul(op, rd, rn, rm, ra),
            Instr::LongMul { op, rdlo, rdhi, rn, rm } => self.long_mul(op, rdlo, rdhi, rn, rm),
            Instr::Div { signed, rd, rn, rm } => self.div(signed, rd, rn, rm),
            Instr::Ldr { w, rt, rn, off, add, index, wback } => {
                self.ldr(w, rt, rn, off, add, index, wback)?
            }
            Instr::Str { w, rt, rn, off, add, index, wback } => self.str(w, rt, rn, off, add, index, wback),
            Instr::Dual { load, rt, rt2, rn, imm, add, index, wback } => {
                self.dual(load, rt, rt2, rn, imm, add, index, wback)
            }
            // POP/LDM with the PC ends the run.
            Instr::Multi { load, rn, regs, db, wback } => self.multi(load, rn, regs, db, wback)?,
            Instr::Hint(Hint::Nop) | Instr::It { .. } => 1,
            Instr::B { cond, imm } => {
                self.b(cond, imm, next);
                return None;
            }
            Instr::Cbz { nonzero, rn, imm } => {
                self.cbz(nonzero, rn, imm, next);
                return None;
            }
            Instr::Bl { imm } => {
                self.bl(imm, next);
                return None;
            }
            Instr::Bx { rm } => {
                self.bx(rm);
                return None;
            }
            Instr::Blx { rm } => {
                self.blx(rm, next);
                return None;
            }
            Instr::Table { half, rn, rm } => {
                self.table(half, rn, rm);
                return None;
            }
            _ => unreachable!("form_run admits only supported instructions"),
        })
    }
}

/// A 32-bit immediate (two's complement) as Cranelift wants it for 32-bit operations.
fn imm32(v: i64) -> i64 {
    v & 0xffff_ffff
}
