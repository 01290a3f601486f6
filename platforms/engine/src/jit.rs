//! The block compiler: the engine's second tier. Hot straight-line Thumb code is translated,
//! one basic block at a time, to host machine code with Cranelift, and run from there.
//!
//! # What a compiled block is
//! A block starts at a PC the interpreter has reached often enough (`Machine::set_jit`), runs
//! through instructions the compiler knows (data processing, shifts, multiplies, divides,
//! bitfields, extends, ADR/MOVT, single, dual and multiple loads and stores, NOP) and ends after
//! a branch (B, B<cond>, CBZ/CBNZ, BL, BX, POP/LDM with the PC), before the first instruction it
//! does not know (IT, MRS/MSR, CPS, SVC, BKPT, WFI, exclusives, TBB/TBH...), at the end of the
//! 1 KiB decode-cache page, before the stop address, or after [`MAX_INSTRS`]. Guest registers
//! and flags live in host registers (Cranelift variables) for the whole block; only those the
//! block writes are stored back, and flag values nothing reads are never computed.
//!
//! A block whose final branch jumps back to its own start (a tight loop) loops in host code
//! for as long as the cycle budget it is given (`room`, the cycles left before the next event)
//! covers another whole pass.
//!
//! # Exactly the interpreter's semantics
//! A block is entered only when all of it fits before the next event (`max_cycles <= room`),
//! so interrupts, timers and the stop address are seen at the same instruction boundaries, with
//! the same `now` and `instret`, as without it. Anything out of the ordinary *bails*: the block
//! stores its state as it was before the instruction in question, sets the PC to it and returns
//! [`EXIT_BAIL`], and the interpreter executes that instruction (and raises its fault, if it
//! has one). Memory accesses are compiled only for plain RAM: an access that is misaligned,
//! outside RAM (devices, the SCS, bit-band aliases), or a store to a page that holds decoded
//! code (self-modifying code: the interpreter invalidates the caches) bails. So does a divide
//! by zero, and a BX or POP to a target that is not plain Thumb code (an exception return, or
//! bit 0 clear).
//!
//! The differential test runs every instruction it checks against Unicorn through this
//! compiler too (`Machine::step_one_jit`), and the conformance firmware runs with blocks
//! compiled at first sight (`TWINBED_JIT=eager`), comparing output byte for byte.
//!
//! # Sharing
//! Compiled code is immutable and lives for the whole process, in one Cranelift module behind
//! a mutex, with a cache keyed by (address, the block's halfwords): every
//! machine and every snapshot running the same firmware uses the same compiled blocks, and
//! the compiler runs once per block per process. Machines keep only references to them, so a
//! machine stays plain data; serialised snapshots leave them out and recompile on demand.

use crate::cpu::decode::{decode, is_32bit};
use crate::cpu::instr::*;
use crate::cpu::CpuState;
use crate::timing::{DIV, LOAD_STORE, LONG_MUL, MUL_ACC, REFILL};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, AbiParam, Block, InstBuilder, MemFlagsData, Type, Value};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext, Variable};
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::Module;
use std::collections::HashMap;
use std::mem::offset_of;
use std::sync::{Mutex, OnceLock};

/// Address windows: a compiled access finds its memory region by the top three bits of the
/// address (one region per 512 MiB window, as on every board so far; a board with two regions
/// in one window gets no fast memory path: its compiled accesses all bail).
pub(crate) const WINDOWS: usize = 8;
/// Address bits below the window number.
pub(crate) const WINDOW_SHIFT: u32 = 29;
/// Longest block, in instructions.
pub(crate) const MAX_INSTRS: usize = 64;
/// Decode-cache page size: a block never leaves its page.
const PAGE: u32 = 1024;
/// Compiled blocks kept in the process-wide cache before it stops taking new ones.
const CACHE_LIMIT: usize = 1 << 18;

/// The block ran to its end (or left its loop); `cpu.r[15]` is the next PC.
pub(crate) const EXIT_NEXT: u32 = 0;
/// The block stopped before an instruction the interpreter must execute; `cpu.r[15]` is its
/// address.
pub(crate) const EXIT_BAIL: u32 = 1;

/// One memory region as a block sees it (an empty one, `len` 0, where a window has none).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct JitRegion {
    /// The region's bytes.
    pub data: *mut u8,
    /// One byte per decode-cache page of the region, non-zero where the page holds decoded
    /// code (stores there bail).
    pub code: *const u8,
    /// First address.
    pub base: u32,
    /// Size in bytes.
    pub len: u32,
    _pad: u64,
}

impl JitRegion {
    /// No memory: every access bails.
    pub(crate) const NONE: JitRegion =
        JitRegion { data: std::ptr::null_mut(), code: std::ptr::null(), base: 0, len: 0, _pad: 0 };

    /// A region.
    pub(crate) fn new(data: *mut u8, code: *const u8, base: u32, len: u32) -> Self {
        JitRegion { data, code, base, len, _pad: 0 }
    }
}

/// log2 of `size_of::<JitRegion>()`: compiled code indexes the table with a shift.
const REGION_SHIFT: i64 = 5;
const _: () = assert!(std::mem::size_of::<JitRegion>() == 1 << REGION_SHIFT);

/// Whether every region of `layout` (base, size) lies in a window of its own.
pub(crate) fn windowed(layout: &[(u32, u32)]) -> bool {
    let mut used = [false; WINDOWS];
    layout.iter().all(|&(base, len)| {
        let w = (base >> WINDOW_SHIFT) as usize;
        let last = base.checked_add(len.saturating_sub(1)).map(|e| (e >> WINDOW_SHIFT) as usize);
        let ok = len > 0 && last == Some(w) && !used[w];
        used[w] = true;
        ok
    })
}

/// What a block reads and writes besides the core's registers.
#[repr(C)]
pub(crate) struct JitIo {
    /// The core.
    pub cpu: *mut CpuState,
    /// Cycles the block may use (a loop goes round again only while a whole pass still fits).
    pub room: u64,
    /// Out: cycles the block used.
    pub cycles: u64,
    /// Out: instructions it retired.
    pub instret: u64,
    /// The memory regions by window ([`WINDOWS`]).
    pub regions: [JitRegion; WINDOWS],
}

type BlockFn = unsafe extern "C" fn(*mut JitIo) -> u32;

/// A compiled block.
#[derive(Debug)]
pub(crate) struct Compiled {
    f: BlockFn,
    /// Cycles of one pass through the block, at most: the block runs only when this fits.
    pub max_cycles: u64,
    /// Where the block ends when it ends without a branch (its length limit, the page end,
    /// or an instruction the compiler does not know): code that surely runs as often as the
    /// block itself.
    pub fallthrough: Option<u32>,
}

impl Compiled {
    /// Runs the block.
    ///
    /// # Safety
    /// `io` must point to a `JitIo` whose `cpu` is valid and whose regions each have `data`
    /// covering `len` bytes and `code` one byte per 1 KiB page of them (or are empty).
    pub(crate) unsafe fn call(&self, io: *mut JitIo) -> u32 {
        // SAFETY: the caller's contract; the code was made by `compile` for this signature.
        unsafe { (self.f)(io) }
    }
}

#[derive(Hash, PartialEq, Eq)]
struct Key {
    pc: u32,
    code: Vec<u16>,
    looping: bool,
}

struct Jit {
    /// [straight-line blocks, loops]
    modules: [JITModule; 2],
    ctx: cranelift_codegen::Context,
    fbc: FunctionBuilderContext,
    cache: HashMap<Key, Option<&'static Compiled>>,
}

// SAFETY: the module's raw pointers refer to code memory it owns; all use goes through the
// mutex below, one thread at a time.
unsafe impl Send for Jit {}

static JIT: OnceLock<Option<Mutex<Jit>>> = OnceLock::new();

fn jit() -> Option<&'static Mutex<Jit>> {
    JIT.get_or_init(|| match Jit::new() {
        Ok(j) => Some(Mutex::new(j)),
        Err(e) => {
            tracing::warn!(target: "jit", "no block compiler on this host ({e}): the interpreter runs everything");
            None
        }
    })
    .as_ref()
}

impl Jit {
    fn new() -> Result<Self, String> {
        if cfg!(target_endian = "big") {
            return Err("big-endian host".into());
        }
        // Straight-line blocks run a few thousand times: compile them fast (measured on
        // bench-cpu: `none` beats `speed` end to end). Loops run millions of passes: optimise
        // them (bench-duty 24 h: 0.62 s with `none`, 0.53 s with `speed`).
        let module = |opt: &str| -> Result<JITModule, String> {
            let mut flags = settings::builder();
            let e = |e: settings::SetError| e.to_string();
            flags.set("opt_level", opt).map_err(e)?;
            flags.set("is_pic", "false").map_err(e)?;
            // The IR comes from this file, not from users; the differential test checks it.
            flags.set("enable_verifier", if cfg!(debug_assertions) { "true" } else { "false" }).map_err(e)?;
            let isa = cranelift_native::builder()
                .map_err(|e| e.to_string())?
                .finish(settings::Flags::new(flags))
                .map_err(|e| e.to_string())?;
            Ok(JITModule::new(JITBuilder::with_isa(isa, cranelift_module::default_libcall_names())))
        };
        let modules = [module("none")?, module("speed")?];
        let ctx = modules[0].make_context();
        Ok(Self { modules, ctx, fbc: FunctionBuilderContext::new(), cache: HashMap::new() })
    }
}

/// Makes the process forget its compiled blocks: machines made after this compile their
/// blocks again (those that still hold blocks keep using them; compiled code is never freed).
/// For benchmarks, so that every run pays for its own compilation.
pub fn forget_compiled_blocks() {
    if let Some(j) = jit() {
        j.lock().unwrap_or_else(std::sync::PoisonError::into_inner).cache.clear();
    }
}

/// The block at `pc`, formed from `page_bytes` (the rest of its decode-cache page, from `pc`),
/// compiled, or `None` if its first instruction is not one the compiler knows (or there is no
/// compiler on this host). Compiled code finds memory through the region table of
/// [`JitIo`], so it does not depend on the board's memory map.
pub(crate) fn compile(
    pc: u32,
    page_bytes: &[u8],
    stop_at: u32,
    max_instrs: usize,
    looping: bool,
) -> Option<&'static Compiled> {
    let (instrs, code) = form_block(pc, page_bytes, stop_at, max_instrs);
    if instrs.is_empty() {
        return None;
    }
    let jit = jit()?;
    let mut j = jit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let key = Key { pc, code, looping };
    if let Some(c) = j.cache.get(&key) {
        return *c;
    }
    let compiled = j.build(pc, &instrs, looping);
    if j.cache.len() < CACHE_LIMIT {
        j.cache.insert(key, compiled);
    }
    compiled
}

/// The instructions of the block at `pc` and the halfwords they came from.
fn form_block(pc: u32, bytes: &[u8], stop_at: u32, max: usize) -> (Vec<(Instr, u8)>, Vec<u16>) {
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
fn supported(i: &Instr) -> bool {
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
fn ends_at(pc0: u32, instrs: &[(Instr, u8)]) -> Option<u32> {
    let pc =
        instrs.iter().take(instrs.len() - 1).fold(pc0, |pc, (_, size)| pc.wrapping_add(u32::from(*size)));
    match instrs.last()?.0 {
        Instr::B { imm, .. } => Some(pc.wrapping_add(4).wrapping_add(imm as u32)),
        Instr::Cbz { imm, .. } => Some(pc.wrapping_add(4).wrapping_add(imm)),
        _ => None,
    }
}

/// Whether `i` ends a block (it may change the PC).
fn ends_block(i: &Instr) -> bool {
    match *i {
        Instr::B { .. } | Instr::Bl { .. } | Instr::Cbz { .. } | Instr::Bx { .. } => true,
        Instr::Multi { load: true, regs, .. } => regs & (1 << 15) != 0,
        _ => false,
    }
}

fn arith(op: DpOp) -> bool {
    matches!(op, DpOp::Add | DpOp::Adc | DpOp::Sub | DpOp::Sbc | DpOp::Rsb | DpOp::Cmp | DpOp::Cmn)
}

/// Registers (r0..r14) an instruction may read or write.
fn regs_of(i: &Instr) -> u16 {
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
}

fn mem() -> MemFlagsData {
    MemFlagsData::trusted()
}

impl Jit {
    fn build(&mut self, pc0: u32, instrs: &[(Instr, u8)], looping: bool) -> Option<&'static Compiled> {
        let loops = looping && ends_at(pc0, instrs) == Some(pc0);
        let module = &mut self.modules[usize::from(loops)];
        let ptr = module.target_config().pointer_type();
        let frontend = module.isa().frontend_config();
        module.clear_context(&mut self.ctx);
        self.ctx.func.signature.params.push(AbiParam::new(ptr));
        self.ctx.func.signature.returns.push(AbiParam::new(types::I32));
        let max_cycles;
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
            let used = instrs.iter().fold(0u16, |m, (i, _)| m | regs_of(i));
            let r_off = offset_of!(CpuState, r) as i32;
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
                let v = b.ins().load(types::I8, mem(), cpu, flag_offset(f));
                b.def_var(*var, v);
            }
            let zero = b.ins().iconst(types::I64, 0);
            b.def_var(cyc, zero);
            b.def_var(ins, zero);
            let body = b.create_block();
            b.ins().jump(body, &[]);
            b.switch_to_block(body);
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
            };
            max_cycles = tx.block(pc0, instrs, looping, body);
            tx.b.seal_block(body);
            tx.fill_exits();
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
        tracing::trace!(target: "jit", "compiled {} instructions at 0x{pc0:08x}", instrs.len());
        let (last, _) = instrs[instrs.len() - 1];
        let fallthrough = (!ends_block(&last))
            .then(|| instrs.iter().fold(pc0, |pc, (_, size)| pc.wrapping_add(u32::from(*size))));
        Some(Box::leak(Box::new(Compiled { f, max_cycles, fallthrough })))
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
        } else {
            self.b.use_var(self.regs[usize::from(r)])
        }
    }

    fn set_reg(&mut self, r: u8, v: Value) {
        debug_assert!(r < 15);
        let v = if r == 13 { self.b.ins().band_imm_u(v, !3i64 & 0xffff_ffff) } else { v };
        self.b.def_var(self.regs[usize::from(r)], v);
        // Written through: exits then store nothing but the PC and the counts (which keeps
        // them, and compilation, small).
        let off = offset_of!(CpuState, r) as i32 + 4 * i32::from(r);
        self.b.ins().store(mem(), v, self.cpu, off);
    }

    fn flag(&mut self, f: usize) -> Value {
        self.b.use_var(self.flags[f])
    }

    fn set_flag(&mut self, f: usize, v: Value) {
        // Stored only on the way out (`fill_exits`): a loop that sets flags every pass stores
        // them once.
        self.b.def_var(self.flags[f], v);
        self.fwritten |= 1 << f;
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

    // ---- exits ----

    fn exit(&mut self, pc: Pc, cycles: u64, instret: u64, code: u32) -> Block {
        let block = self.b.create_block();
        self.exits.push(Exit { block, pc, cycles, instret, code });
        block
    }

    /// The bail exit of the current instruction.
    fn bail(&mut self) -> Block {
        if let Some(b) = self.bail {
            return b;
        }
        let b = self.exit(Pc::Const(self.pc), self.pass_cycles, self.pass_instrs, EXIT_BAIL);
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

    // ---- memory ----

    /// The host address of `span` bytes at guest `addr` in plain RAM, aligned to `align`;
    /// bails otherwise (and, for stores, on pages that hold decoded code).
    fn host(&mut self, addr: Value, span: u32, align: u32, store: bool) -> Value {
        if align > 1 {
            let mis = self.b.ins().band_imm_u(addr, i64::from(align - 1));
            self.bail_if(mis);
        }
        // The region of the address's window: `io.regions[addr >> 29]`.
        let w = self.b.ins().ushr_imm_u(addr, i64::from(WINDOW_SHIFT));
        let w = self.b.ins().uextend(self.ptr, w);
        let w = self.b.ins().ishl_imm_u(w, REGION_SHIFT);
        let entry = self.b.ins().iadd(self.io, w);
        let table = offset_of!(JitIo, regions) as i32;
        let base = self.b.ins().load(types::I32, mem(), entry, table + offset_of!(JitRegion, base) as i32);
        let len = self.b.ins().load(types::I32, mem(), entry, table + offset_of!(JitRegion, len) as i32);
        // In range: (addr - base) + span <= len, in 64 bits (an address below the base wraps
        // to a huge offset, an empty window has len 0).
        let off = self.b.ins().isub(addr, base);
        let off64 = self.b.ins().uextend(types::I64, off);
        let len64 = self.b.ins().uextend(types::I64, len);
        let end = self.b.ins().iadd_imm_u(off64, i64::from(span));
        let outside = self.b.ins().icmp(IntCC::UnsignedGreaterThan, end, len64);
        self.bail_if(outside);
        if store {
            let code = self.b.ins().load(self.ptr, mem(), entry, table + offset_of!(JitRegion, code) as i32);
            let first = self.b.ins().ushr_imm_u(off64, i64::from(PAGE.trailing_zeros()));
            let p = self.b.ins().iadd(code, first);
            let mut dirty = self.b.ins().uload8(types::I32, mem(), p, 0);
            if span > 1 {
                let end = self.b.ins().iadd_imm_u(off64, i64::from(span - 1));
                let last = self.b.ins().ushr_imm_u(end, i64::from(PAGE.trailing_zeros()));
                let p = self.b.ins().iadd(code, last);
                let d = self.b.ins().uload8(types::I32, mem(), p, 0);
                dirty = self.b.ins().bor(dirty, d);
            }
            self.bail_if(dirty);
        }
        let data = self.b.ins().load(self.ptr, mem(), entry, table + offset_of!(JitRegion, data) as i32);
        self.b.ins().iadd(data, off64)
    }

    fn load(&mut self, w: Width, host: Value, offset: i32) -> Value {
        let m = mem();
        match w {
            Width::B => self.b.ins().uload8(types::I32, m, host, offset),
            Width::Sb => self.b.ins().sload8(types::I32, m, host, offset),
            Width::H => self.b.ins().uload16(types::I32, m, host, offset),
            Width::Sh => self.b.ins().sload16(types::I32, m, host, offset),
            Width::W => self.b.ins().load(types::I32, m, host, offset),
        }
    }

    // ---- the block ----

    /// Translates the block; returns the most cycles one pass can take.
    fn block(&mut self, pc0: u32, instrs: &[(Instr, u8)], looping: bool, body: Block) -> u64 {
        // The most cycles of a pass: every instruction's fixed count plus the worst case of
        // the final branch (taken).
        let max_cycles: u64 = instrs.iter().map(|(i, _)| u64::from(max_cycles(i))).sum();
        let mut pc = pc0;
        for (k, (instr, size)) in instrs.iter().enumerate() {
            self.pc = pc;
            self.bail = None;
            let next = pc.wrapping_add(u32::from(*size));
            let last = k + 1 == instrs.len();
            let ended = self.instr(instr, next, pc0, looping, max_cycles, body);
            self.pass_instrs += 1;
            if ended {
                return max_cycles;
            }
            if last {
                // Fell off the end (unknown instruction, page end, stop address or length).
                let exit = self.exit(Pc::Const(next), self.pass_cycles, self.pass_instrs, EXIT_NEXT);
                self.b.ins().jump(exit, &[]);
            }
            pc = next;
        }
        max_cycles
    }

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

    /// Translates one instruction; true if it ended the block.
    fn instr(&mut self, i: &Instr, next: u32, pc0: u32, looping: bool, max: u64, body: Block) -> bool {
        let pc4 = self.pc.wrapping_add(4);
        let cycles: u32 = match *i {
            Instr::Dp { op, s, rd, rn, op2 } => {
                self.dp(op, s != SetFlags::No, rd, rn, op2);
                1
            }
            Instr::Adr { rd, imm } => {
                let v = self.iconst((pc4 & !3).wrapping_add(imm as u32));
                self.set_reg(rd, v);
                1
            }
            Instr::Movt { rd, imm } => {
                let old = self.reg(rd);
                let lo = self.b.ins().band_imm_u(old, 0xffff);
                let v = self.b.ins().bor_imm_u(lo, i64::from(imm) << 16);
                self.set_reg(rd, v);
                1
            }
            Instr::Bf { op, rd, rn, lsb, width } => {
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
            Instr::Bit { op, rd, rm } => {
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
            Instr::Ext { op, rd, rm, rot } => {
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
            Instr::Mul { op, rd, rn, rm, ra } => {
                let (a, b, acc) = (self.reg(rn), self.reg(rm), self.reg(ra));
                let p = self.b.ins().imul(a, b);
                let v = match op {
                    MulOp::Mla => self.b.ins().iadd(p, acc),
                    MulOp::Mls => self.b.ins().isub(acc, p),
                };
                self.set_reg(rd, v);
                MUL_ACC
            }
            Instr::LongMul { op, rdlo, rdhi, rn, rm } => {
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
            Instr::Div { signed, rd, rn, rm } => {
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
            Instr::Ldr { w, rt, rn, off, add, index, wback } => {
                let (addr, offset_addr) = self.address(rn, off, add, index);
                let span = width_bytes(w);
                let host = self.host(addr, span, span, false);
                let v = self.load(w, host, 0);
                if wback {
                    self.set_reg(rn, offset_addr);
                }
                self.set_reg(rt, v);
                LOAD_STORE
            }
            Instr::Str { w, rt, rn, off, add, index, wback } => {
                let (addr, offset_addr) = self.address(rn, off, add, index);
                let span = width_bytes(w);
                let v = self.reg(rt);
                let host = self.host(addr, span, span, true);
                match span {
                    1 => self.b.ins().istore8(mem(), v, host, 0),
                    2 => self.b.ins().istore16(mem(), v, host, 0),
                    _ => self.b.ins().store(mem(), v, host, 0),
                };
                if wback {
                    self.set_reg(rn, offset_addr);
                }
                LOAD_STORE
            }
            Instr::Dual { load, rt, rt2, rn, imm, add, index, wback } => {
                let base = if rn == 15 { self.iconst(pc4 & !3) } else { self.reg(rn) };
                let offset_addr = if add {
                    self.b.ins().iadd_imm_u(base, i64::from(imm))
                } else {
                    self.b.ins().iadd_imm_u(base, imm32(-i64::from(imm)))
                };
                let addr = if index { offset_addr } else { base };
                if load {
                    let host = self.host(addr, 8, 4, false);
                    let a = self.load(Width::W, host, 0);
                    let b = self.load(Width::W, host, 4);
                    self.set_reg(rt, a);
                    self.set_reg(rt2, b);
                } else {
                    let (a, b) = (self.reg(rt), self.reg(rt2));
                    let host = self.host(addr, 8, 4, true);
                    self.b.ins().store(mem(), a, host, 0);
                    self.b.ins().store(mem(), b, host, 4);
                }
                if wback {
                    self.set_reg(rn, offset_addr);
                }
                3
            }
            Instr::Multi { load, rn, regs, db, wback } => {
                let count = regs.count_ones();
                let base = self.reg(rn);
                let start =
                    if db { self.b.ins().iadd_imm_u(base, imm32(-4 * i64::from(count))) } else { base };
                let end = if db { start } else { self.b.ins().iadd_imm_u(base, 4 * i64::from(count)) };
                if load {
                    let host = self.host(start, 4 * count, 4, false);
                    let mut values = Vec::new();
                    for r in 0..16u8 {
                        if regs & (1 << r) != 0 {
                            let v = self.load(Width::W, host, 4 * values.len() as i32);
                            values.push((r, v));
                        }
                    }
                    let pc_value = values.iter().find(|(r, _)| *r == 15).map(|(_, v)| *v);
                    if let Some(t) = pc_value {
                        self.check_interworking(t);
                    }
                    if wback {
                        self.set_reg(rn, end);
                    }
                    for &(r, v) in &values {
                        if r < 15 {
                            self.set_reg(r, v);
                        }
                    }
                    if let Some(t) = pc_value {
                        let target = self.b.ins().band_imm_u(t, !1i64 & 0xffff_ffff);
                        let cycles = self.pass_cycles + u64::from(1 + count + REFILL);
                        let out = self.exit(Pc::Val(target), cycles, self.pass_instrs + 1, EXIT_NEXT);
                        self.b.ins().jump(out, &[]);
                        return true;
                    }
                } else {
                    let values: Vec<Value> =
                        (0..16u8).filter(|r| regs & (1 << r) != 0).map(|r| self.reg(r)).collect();
                    let host = self.host(start, 4 * count, 4, true);
                    for (k, v) in values.into_iter().enumerate() {
                        self.b.ins().store(mem(), v, host, 4 * k as i32);
                    }
                    if wback {
                        self.set_reg(rn, end);
                    }
                }
                1 + count
            }
            Instr::Hint(Hint::Nop) => 1,
            Instr::B { cond, imm } => {
                let target = pc4.wrapping_add(imm as u32);
                if cond >= 14 {
                    self.branch_exit(
                        target,
                        self.pass_cycles + 1 + u64::from(REFILL),
                        pc0,
                        looping,
                        max,
                        body,
                    );
                } else {
                    let taken = self.cond(cond);
                    self.cond_branch(taken, target, next, pc0, looping, max, body);
                }
                return true;
            }
            Instr::Cbz { nonzero, rn, imm } => {
                let v = self.reg(rn);
                let cc = if nonzero { IntCC::NotEqual } else { IntCC::Equal };
                let taken = self.b.ins().icmp_imm_u(cc, v, 0);
                self.cond_branch(taken, pc4.wrapping_add(imm), next, pc0, looping, max, body);
                return true;
            }
            Instr::Bl { imm } => {
                let lr = self.iconst(next | 1);
                self.set_reg(14, lr);
                let target = pc4.wrapping_add(imm as u32);
                self.branch_exit(target, self.pass_cycles + 1 + u64::from(REFILL), pc0, looping, max, body);
                return true;
            }
            Instr::Bx { rm } => {
                let t = self.reg(rm);
                self.check_interworking(t);
                let target = self.b.ins().band_imm_u(t, !1i64 & 0xffff_ffff);
                let cycles = self.pass_cycles + 1 + u64::from(REFILL);
                let out = self.exit(Pc::Val(target), cycles, self.pass_instrs + 1, EXIT_NEXT);
                self.b.ins().jump(out, &[]);
                return true;
            }
            _ => unreachable!("form_block admits only supported instructions"),
        };
        self.pass_cycles += u64::from(cycles);
        false
    }

    /// Bails unless `target` is a plain Thumb address: bit 0 set, and not 0xFxxxxxxx (which
    /// is an exception return in Handler mode).
    fn check_interworking(&mut self, target: Value) {
        let top = self.b.ins().ushr_imm_u(target, 28);
        let exc_return = self.b.ins().icmp_imm_u(IntCC::Equal, top, 0xf);
        let bit0 = self.b.ins().band_imm_u(target, 1);
        let arm = self.b.ins().icmp_imm_u(IntCC::Equal, bit0, 0);
        let bad = self.b.ins().bor(exc_return, arm);
        self.bail_if(bad);
    }

    /// (address used, offset address for writeback) of a single load/store.
    fn address(&mut self, rn: u8, off: Offset, add: bool, index: bool) -> (Value, Value) {
        let base = if rn == 15 { self.iconst(self.pc.wrapping_add(4) & !3) } else { self.reg(rn) };
        let offset = match off {
            Offset::Imm(v) => self.iconst(v),
            Offset::Reg { rm, shift } => {
                let v = self.reg(rm);
                self.b.ins().ishl_imm_u(v, i64::from(shift))
            }
        };
        let offset_addr = if add { self.b.ins().iadd(base, offset) } else { self.b.ins().isub(base, offset) };
        (if index { offset_addr } else { base }, offset_addr)
    }

    /// Data processing (A7.7, as `exec_dp`), outside IT blocks.
    fn dp(&mut self, op: DpOp, setflags: bool, rd: u8, rn: u8, op2: Op2) {
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
}

/// A 32-bit immediate (two's complement) as Cranelift wants it for 32-bit operations.
fn imm32(v: i64) -> i64 {
    v & 0xffff_ffff
}

/// Bytes of a single access.
fn width_bytes(w: Width) -> u32 {
    match w {
        Width::B | Width::Sb => 1,
        Width::H | Width::Sh => 2,
        Width::W => 4,
    }
}

/// The most cycles `i` takes (the timing model of [`crate::timing`], as the interpreter counts).
fn max_cycles(i: &Instr) -> u32 {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_need_windows_of_their_own() {
        assert!(windowed(&[(0, 0x40_0000), (0x2000_0000, 0x40_0000)]));
        assert!(!windowed(&[(0, 0x1000), (0x1000, 0x1000)]), "two regions in window 0");
        assert!(!windowed(&[(0x1fff_f000, 0x2000)]), "a region across two windows");
        assert!(!windowed(&[(0, 0)]));
    }

    #[test]
    fn blocks_stop_before_unknown_instructions_and_after_branches() {
        // adds r0, #1; wfi; b .
        let code = [0x01, 0x30, 0x30, 0xbf, 0xfe, 0xe7];
        let (instrs, hw) = form_block(0x100, &code, 1, MAX_INSTRS);
        assert_eq!(instrs.len(), 1);
        assert_eq!(hw, vec![0x3001]);
        // adds r0, #1; b .-2 (back to the adds)
        let code = [0x01, 0x30, 0xfd, 0xe7];
        let (instrs, _) = form_block(0x100, &code, 1, MAX_INSTRS);
        assert_eq!(instrs.len(), 2);
        // The stop address ends a block before it.
        let (instrs, _) = form_block(0x100, &code, 0x102, MAX_INSTRS);
        assert_eq!(instrs.len(), 1);
        // A 32-bit instruction cut by the page end is left out.
        let (instrs, _) = form_block(0x100, &[0x01, 0x30, 0x40, 0xf2], 1, MAX_INSTRS);
        assert_eq!(instrs.len(), 1);
    }

    #[test]
    fn a_compiled_loop_counts_like_the_interpreter() {
        // movs r1, #0 is outside; the block: adds r0, r0, #1; cmp r0, #10; bne start
        // 0x1c40 adds r0, r0, #1; 0x280a cmp r0, #10; 0xd1fc bne .-4
        let code = [0x40, 0x1c, 0x0a, 0x28, 0xfc, 0xd1];
        let Some(block) = compile(0x100, &code, 1, MAX_INSTRS, true) else {
            return; // no compiler on this host
        };
        assert_eq!(block.max_cycles, 1 + 1 + 3);
        let mut cpu = CpuState { thumb: true, ..CpuState::default() };
        let mut ram = vec![0u8; 0x1000];
        let map = [0u8; 4];
        let mut regions = [JitRegion::NONE; WINDOWS];
        regions[0] = JitRegion::new(ram.as_mut_ptr(), map.as_ptr(), 0, 0x1000);
        let mut io = JitIo { cpu: &mut cpu, room: 1000, cycles: 0, instret: 0, regions };
        // SAFETY: io points to live data: 0x1000 bytes of RAM and a 4-page map.
        let exit = unsafe { block.call(&mut io) };
        assert_eq!(exit, EXIT_NEXT);
        assert_eq!(cpu.r[0], 10);
        assert_eq!(cpu.r[15], 0x106);
        // Nine taken passes (5 cycles) and a last one that falls through (3 cycles).
        assert_eq!((io.cycles, io.instret), (9 * 5 + 3, 30));
        assert!(cpu.z && cpu.c && !cpu.n && !cpu.v);
    }
}
