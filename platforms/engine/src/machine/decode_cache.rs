//! Memory regions and their decode cache: decoded instructions per 1 KiB page, in `Arc`s so
//! that clones of a machine share them until one writes to a page of code, and the block
//! compiler's slots per page.

use super::Machine;
use crate::cpu::decode::{decode, is_32bit};
use crate::cpu::instr::Instr;
use crate::cpu::Exc;
use crate::jit::Compiled;
use crate::system::{cfsr, exc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Bytes per decode-cache page.
pub(super) const PAGE: u32 = 1024;
/// Cache entries (halfwords) per page.
pub(super) const PAGE_ENTRIES: usize = (PAGE / 2) as usize;

/// One page of decoded instructions: (instruction, size in bytes); size 0 = not decoded yet.
pub(super) type Page = [(Instr, u8); PAGE_ENTRIES];

/// Where a block may start: how often the interpreter got there, or its compiled code.
#[derive(Clone, Copy, Debug)]
pub(super) enum Slot {
    /// Reached this many times.
    Cold(u32),
    /// Compiled.
    Hot(&'static Compiled),
    /// Not compilable (its first instruction is one the compiler does not know).
    Never,
}

/// The block-compiler slots of one decode-cache page.
type JitPage = [Slot; PAGE_ENTRIES];

/// A RAM (or code SRAM) region with its decode cache.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ram {
    /// Region name from the board file.
    pub name: String,
    /// First address.
    pub base: u32,
    /// Contents.
    pub data: Vec<u8>,
    #[serde(skip)]
    pub(super) code: Vec<Option<Arc<Page>>>,
    /// One byte per page: 1 where `code` has the page (compiled blocks bail on stores there).
    #[serde(skip)]
    pub(super) has_code: Vec<u8>,
    /// Block-compiler slots per page; a page has them only while `code` has it.
    #[serde(skip)]
    pub(super) jit: Vec<Option<Box<JitPage>>>,
    /// A direct-mapped cache of compiled regions by start address ([`JUMPS`] entries, made
    /// on first use), for handing over from one compiled region to the next without walking
    /// the page slots: a few KiB that stay in the host's L1 cache. Emptied whenever a slot
    /// changes.
    #[serde(skip)]
    pub(super) jumps: Vec<Jump>,
}

/// Entries of [`Ram::jumps`].
pub(super) const JUMPS: usize = 256;

/// A compiled region as [`Ram::jumps`] knows it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Jump {
    /// Its start address (1: the entry is empty; no region starts at an odd address).
    pub pc: u32,
    pub block: Option<&'static Compiled>,
}

impl Jump {
    pub(super) const EMPTY: Jump = Jump { pc: 1, block: None };
}

impl Ram {
    pub(super) fn new(name: &str, base: u32, size: u32) -> Self {
        Self {
            name: name.to_owned(),
            base,
            data: vec![0; size as usize],
            code: Vec::new(),
            has_code: Vec::new(),
            jit: Vec::new(),
            jumps: Vec::new(),
        }
    }

    /// Drops the whole decode cache and the compiled blocks' slots.
    pub(super) fn clear_code(&mut self) {
        self.code.clear();
        self.jit.clear();
        self.jumps.clear();
        self.has_code.fill(0);
    }

    /// Drops the decode cache of the pages `len` bytes at `offset` touch, moving them to
    /// `retired` (a running block may still read them); true if one existed.
    #[inline]
    pub(super) fn invalidate(&mut self, offset: usize, len: usize, retired: &mut Vec<Arc<Page>>) -> bool {
        let mut any = false;
        for page in [offset / PAGE as usize, (offset + len - 1) / PAGE as usize] {
            if let Some(p) = self.code.get_mut(page).and_then(Option::take) {
                retired.push(p);
                any = true;
                self.has_code[page] = 0;
                if let Some(j) = self.jit.get_mut(page) {
                    *j = None;
                }
                self.jumps.clear();
            }
        }
        any
    }
}

impl Machine {
    /// The decode-cache page holding `pc` and the entry index in it, if that page exists.
    #[inline]
    pub(super) fn cached_page(&self, pc: u32) -> Option<(*const Page, usize)> {
        for r in &self.mem {
            let off = pc.wrapping_sub(r.base) as usize;
            if off < r.data.len() {
                let p = r.code.get(off / PAGE as usize)?.as_ref()?;
                return Some((Arc::as_ptr(p), (off % PAGE as usize) / 2));
            }
        }
        None
    }

    /// Fetches (and decodes, once) the instruction at `pc`.
    #[inline]
    pub(super) fn fetch(&mut self, pc: u32) -> Result<(Instr, u8), Exc> {
        for ri in 0..self.mem.len() {
            let r = &self.mem[ri];
            let off = pc.wrapping_sub(r.base) as usize;
            if off >= r.data.len() {
                continue;
            }
            let page = off / PAGE as usize;
            let idx = (off % PAGE as usize) / 2;
            if let Some(Some(p)) = r.code.get(page) {
                let e = p[idx];
                if e.1 != 0 {
                    return Ok(e);
                }
            }
            return self.decode_into_cache(ri, pc, off);
        }
        Err(fetch_fault(pc))
    }

    #[cold]
    pub(super) fn decode_into_cache(&mut self, ri: usize, pc: u32, off: usize) -> Result<(Instr, u8), Exc> {
        let ibus = fetch_fault(pc);
        let stop_at = self.stop_at;
        let r = &mut self.mem[ri];
        let hw = |o: usize| -> Option<u16> { r.data.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]])) };
        let h1 = hw(off).ok_or(ibus)?;
        let h2 = if is_32bit(h1) { hw(off + 2).ok_or(ibus)? } else { 0 };
        let (instr, size) = decode(h1, h2);
        let instr = instr.specialize();
        if pc == stop_at {
            // Never cached: the empty entry makes `run_block` hand over to `run`, which stops.
            return Ok((instr, size));
        }
        if r.code.is_empty() {
            r.code = vec![None; r.data.len().div_ceil(PAGE as usize)];
        }
        let page = off / PAGE as usize;
        r.has_code.resize(r.code.len(), 0);
        r.has_code[page] = 1;
        let slot = r.code[page].get_or_insert_with(|| Arc::new([(Instr::Empty, 0); PAGE_ENTRIES]));
        Arc::make_mut(slot)[(off % PAGE as usize) / 2] = (instr, size);
        Ok((instr, size))
    }
}

/// The fault for an instruction fetch outside memory: executing from an Execute Never region
/// of the default memory map (B3.1.1: Peripheral 0x4000_0000.., Device and System
/// 0xA000_0000..) is a MemManage fault (IACCVIOL); anywhere else a BusFault (IBUSERR).
fn fetch_fault(pc: u32) -> Exc {
    let xn = (0x4000_0000..0x6000_0000).contains(&pc) || pc >= 0xa000_0000;
    if xn {
        Exc::Fault { n: exc::MEMMANAGE, cfsr: cfsr::IACCVIOL, addr: None }
    } else {
        Exc::Fault { n: exc::BUSFAULT, cfsr: cfsr::IBUSERR, addr: None }
    }
}
