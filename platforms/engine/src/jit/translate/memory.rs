//! Loads and stores: compiled only for plain RAM, through the region table of
//! [`JitIo`](super::super::JitIo); anything else (misaligned, outside RAM, a store to a page
//! that holds decoded code) bails to the interpreter.

use super::{imm32, mem, Tx};
use crate::cpu::instr::*;
use crate::jit::{JitIo, JitRegion, PAGE, REGION_SHIFT, WINDOW_SHIFT};
use crate::timing::{LOAD_STORE, REFILL};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{types, InstBuilder, Value};
use std::mem::offset_of;

impl Tx<'_, '_> {
    // ---- memory ----

    /// The host address of `span` bytes at guest `addr` in plain memory, aligned as `align`
    /// says; bails otherwise (and, for stores, on pages that hold decoded code).
    pub(super) fn host(&mut self, addr: Value, span: u32, align: Align, store: bool) -> Value {
        match align {
            Align::None => {}
            Align::Words => {
                let mis = self.b.ins().band_imm_u(addr, 3);
                self.bail_if(mis);
            }
            Align::UnlessAllowed if span > 1 => {
                // Unaligned LDR/STR/LDRH/STRH are allowed unless CCR.UNALIGN_TRP (A3.2.2).
                let mis = self.b.ins().band_imm_u(addr, i64::from(span - 1));
                let trap =
                    self.b.ins().load(types::I32, mem(), self.io, offset_of!(JitIo, unaligned_trap) as i32);
                let mis = self.b.ins().band(mis, trap);
                self.bail_if(mis);
            }
            Align::UnlessAllowed => {}
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

    /// LDR{B,SB,H,SH} (immediate, literal, register), with writeback; `None` if it loaded the
    /// PC (a word-aligned LDR PC: the run ends).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn ldr(
        &mut self,
        w: Width,
        rt: u8,
        rn: u8,
        off: Offset,
        add: bool,
        index: bool,
        wback: bool,
    ) -> Option<u32> {
        let (addr, offset_addr) = self.address(rn, off, add, index);
        let span = width_bytes(w);
        let align = if rt == 15 { Align::Words } else { Align::UnlessAllowed };
        let host = self.host(addr, span, align, false);
        let v = self.load(w, host, 0);
        if rt == 15 {
            self.check_interworking(v);
        }
        if wback {
            self.set_reg(rn, offset_addr);
        }
        if rt == 15 {
            self.interworking_exit(v, LOAD_STORE + REFILL);
            return None;
        }
        self.set_reg(rt, v);
        Some(LOAD_STORE)
    }

    /// STR{B,H} (immediate, register), with writeback.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn str(
        &mut self,
        w: Width,
        rt: u8,
        rn: u8,
        off: Offset,
        add: bool,
        index: bool,
        wback: bool,
    ) -> u32 {
        let (addr, offset_addr) = self.address(rn, off, add, index);
        let span = width_bytes(w);
        let v = self.reg(rt);
        let host = self.host(addr, span, Align::UnlessAllowed, true);
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

    /// LDRD, STRD.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn dual(
        &mut self,
        load: bool,
        rt: u8,
        rt2: u8,
        rn: u8,
        imm: u32,
        add: bool,
        index: bool,
        wback: bool,
    ) -> u32 {
        let pc4 = self.pc.wrapping_add(4);
        let base = if rn == 15 { self.iconst(pc4 & !3) } else { self.reg(rn) };
        let offset_addr = if add {
            self.b.ins().iadd_imm_u(base, i64::from(imm))
        } else {
            self.b.ins().iadd_imm_u(base, imm32(-i64::from(imm)))
        };
        let addr = if index { offset_addr } else { base };
        if load {
            let host = self.host(addr, 8, Align::Words, false);
            let a = self.load(Width::W, host, 0);
            let b = self.load(Width::W, host, 4);
            self.set_reg(rt, a);
            self.set_reg(rt2, b);
        } else {
            let (a, b) = (self.reg(rt), self.reg(rt2));
            let host = self.host(addr, 8, Align::Words, true);
            self.b.ins().store(mem(), a, host, 0);
            self.b.ins().store(mem(), b, host, 4);
        }
        if wback {
            self.set_reg(rn, offset_addr);
        }
        3
    }

    /// LDM, STM, PUSH, POP; `None` if it loaded the PC (which ends the block).
    pub(super) fn multi(&mut self, load: bool, rn: u8, regs: u16, db: bool, wback: bool) -> Option<u32> {
        let count = regs.count_ones();
        let base = self.reg(rn);
        let start = if db { self.b.ins().iadd_imm_u(base, imm32(-4 * i64::from(count))) } else { base };
        let end = if db { start } else { self.b.ins().iadd_imm_u(base, 4 * i64::from(count)) };
        if load {
            let host = self.host(start, 4 * count, Align::Words, false);
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
                self.interworking_exit(t, 1 + count + REFILL);
                return None;
            }
        } else {
            let values: Vec<Value> =
                (0..16u8).filter(|r| regs & (1 << r) != 0).map(|r| self.reg(r)).collect();
            let host = self.host(start, 4 * count, Align::Words, true);
            for (k, v) in values.into_iter().enumerate() {
                self.b.ins().store(mem(), v, host, 4 * k as i32);
            }
            if wback {
                self.set_reg(rn, end);
            }
        }
        Some(1 + count)
    }
}

/// The alignment an access needs.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Align {
    /// Any address (TBB/TBH table reads).
    None,
    /// Word-aligned (LDRD/STRD, LDM/STM, loads of the PC).
    Words,
    /// Aligned to its size unless unaligned accesses are allowed (single loads and stores).
    UnlessAllowed,
}

/// Bytes of a single access.
fn width_bytes(w: Width) -> u32 {
    match w {
        Width::B | Width::Sb => 1,
        Width::H | Width::Sh => 2,
        Width::W => 4,
    }
}
