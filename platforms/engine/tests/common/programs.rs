//! Seeded random Thumb-2 programs for the block compiler's differential test (`jit_blocks.rs`
//! says what they contain and why), with the memory layout they run in and the machine they
//! start from.

// Not every test binary uses every item.
#![allow(dead_code)]

use super::thumb::*;
use super::Rng;
use std::fmt::Write as _;
use twinbed_board::Board;
use twinbed_engine::cpu::decode::{decode, is_32bit, thumb_expand_imm};
use twinbed_engine::Machine;

pub const CODE_BASE: u32 = 0;
pub const CODE_SIZE: u32 = 0x1_0000;
pub const DATA_BASE: u32 = 0x2000_0000;
pub const DATA_SIZE: u32 = 0x1_0000;
/// Initial SP; the 4 KiB above it are scratch for SP-relative stores.
pub const SP_INIT: u32 = DATA_BASE + 0xf000;
/// Where the SysTick handler counts its interrupts, and the fault handler the faults (in the
/// code region, where random stores seldom go).
pub const TICKS: u32 = CODE_BASE + 0xb000;
pub const FAULTS: u32 = CODE_BASE + 0xb004;
/// Code-region scratch space: never holds code (stores there take the compiled fast path).
pub const SCRATCH: u32 = 0xc000;
/// First address after the vector table (16 entries).
pub const ORIGIN: u32 = 0x40;
/// Decode-cache / block page.
pub const PAGE: u32 = 1024;

/// Registers the random instructions may write (r8 counts loops, r6/r7/r9 are pointers, SP
/// and LR are only changed by balanced PUSH/POP and BL).
pub const DATA_LO: &[u32] = &[0, 1, 2, 3, 4, 5];
pub const DATA: &[u32] = &[0, 1, 2, 3, 4, 5, 10, 11, 12];
pub const PTR_LO: &[u32] = &[6, 7];
pub const PTR: &[u32] = &[6, 7, 9];
pub const COUNTER: u32 = 8;

/// The board the programs run on: code and data RAM as above, nothing else.
pub fn board() -> Board {
    super::board_with("jit-blocks", (CODE_BASE, CODE_SIZE), (DATA_BASE, DATA_SIZE), "")
}

/// A generated program and the machine state it starts from.
pub struct Program {
    /// Code from [`ORIGIN`] on.
    pub code: Vec<u16>,
    /// Instruction addresses (not data islands), with whether the instruction is meant to
    /// decode to a defined instruction.
    pub insns: Vec<(u32, bool)>,
    /// Entry point (the reset vector).
    pub main: u32,
    /// The fault handler (skips the faulting instruction and counts it at [`FAULTS`]).
    pub handler: u32,
    /// The SysTick handler (counts at [`TICKS`]).
    pub systick_isr: u32,
    /// r0..r12 and the APSR flags at reset.
    pub regs: [u32; 13],
    pub apsr: u32,
    /// Initial contents of the data RAM and of the code scratch area.
    pub data: Vec<u8>,
    pub scratch: Vec<u8>,
    /// `run` budgets, in order (the run stops early at any `Stop` but `Budget` and
    /// `StopPoint`).
    pub budgets: Vec<u64>,
    /// `Machine::set_stop_at`, for some programs.
    pub stop_at: Option<u32>,
}

struct Gen {
    rng: Rng,
    code: Vec<u16>,
    insns: Vec<(u32, bool)>,
    subs: Vec<u32>,
    /// Data islands inside the code: (address, bytes).
    islands: Vec<(u32, u32)>,
    /// A self-modifying loop's patched instruction: `adds rX, #imm` at this address.
    smc_slot: Option<u32>,
    /// Writing a subroutine whose LR is not saved (no calls allowed).
    leaf: bool,
    /// Calls may target subroutines below this index only.
    callable: usize,
    /// Whether each of [`PTR`] was last set to an address in data RAM.
    in_data: [bool; 3],
}

impl Gen {
    fn below(&mut self, n: u32) -> u32 {
        self.rng.below(n)
    }

    fn chance(&mut self, percent: u32) -> bool {
        self.below(100) < percent
    }

    fn pick(&mut self, set: &[u32]) -> u32 {
        set[self.below(set.len() as u32) as usize]
    }

    /// Index by weights.
    fn weighted(&mut self, weights: &[u32]) -> usize {
        let total: u32 = weights.iter().sum();
        let mut x = self.below(total);
        for (i, &w) in weights.iter().enumerate() {
            if x < w {
                return i;
            }
            x -= w;
        }
        unreachable!()
    }

    fn here(&self) -> u32 {
        ORIGIN + 2 * self.code.len() as u32
    }

    fn t16(&mut self, h: u16) {
        assert!(!is_32bit(h), "{h:04x} is not a 16-bit encoding");
        self.insns.push((self.here(), true));
        self.code.push(h);
    }

    fn t32(&mut self, (h1, h2): (u16, u16)) {
        assert!(is_32bit(h1), "{h1:04x} {h2:04x} is not a 32-bit encoding");
        self.insns.push((self.here(), true));
        self.code.push(h1);
        self.code.push(h2);
    }

    /// A 32-bit branch, patched later.
    fn placeholder32(&mut self) {
        self.insns.push((self.here(), true));
        self.code.extend([0xf000, 0x8000]);
    }

    /// An instruction meant to be UNDEFINED (or otherwise to fault).
    fn t16_faulting(&mut self, h: u16) {
        self.insns.push((self.here(), false));
        self.code.push(h);
    }

    fn set(&mut self, at: u32, hw: &[u16]) {
        let i = ((at - ORIGIN) / 2) as usize;
        self.code[i..i + hw.len()].copy_from_slice(hw);
    }

    fn any_lo(&mut self) -> u32 {
        self.below(8)
    }

    /// Any of r0..r12 (to read).
    fn any(&mut self) -> u32 {
        self.below(13)
    }

    fn data_lo(&mut self) -> u32 {
        self.pick(DATA_LO)
    }

    fn data(&mut self) -> u32 {
        self.pick(DATA)
    }

    /// A random valid modified immediate (imm12).
    fn rand_mod_imm(&mut self) -> u32 {
        loop {
            let imm12 = if self.chance(40) { self.below(256) } else { self.below(4096) };
            if thumb_expand_imm(imm12).is_some() {
                return imm12;
            }
        }
    }

    fn movw(&mut self, rd: u32, value: u32) {
        self.t32(movw32(false, rd, value & 0xffff));
        if value >> 16 != 0 || self.chance(20) {
            self.t32(movw32(true, rd, value >> 16));
        }
    }

    /// Jumps over `bytes` bytes of random data (a data island inside code pages).
    fn island(&mut self, bytes: u32) {
        let branch = self.here();
        self.placeholder32();
        let start = self.here();
        for _ in 0..bytes / 2 {
            let h = self.rng.u32() as u16;
            self.code.push(h);
        }
        if bytes > 0 {
            self.islands.push((start, bytes));
        }
        let off = self.here() as i32 - (branch as i32 + 4);
        let (h1, h2) = b32(false, off);
        self.set(branch, &[h1, h2]);
    }

    /// An address for a pointer register.
    fn target(&mut self) -> u32 {
        let align = |g: &mut Self, a: u32| match g.below(25) {
            0..=22 => a & !3,
            23 => a & !1,
            _ => a,
        };
        match self.below(100) {
            0..=89 => {
                let a = DATA_BASE + 0x1000 + self.below(0xc000);
                align(self, a)
            }
            90..=95 => {
                let a = SCRATCH + self.below(0x3000);
                align(self, a)
            }
            96..=97 if !self.islands.is_empty() => {
                let k = self.below(self.islands.len() as u32) as usize;
                let (start, len) = self.islands[k];
                let a = start + self.below(len / 2);
                align(self, a)
            }
            96..=98 => match self.below(4) {
                0 => 0x4000_0000 + 4 * self.below(0x1000),
                1 => 0x1000_0000 + 4 * self.below(0x1000),
                2 => DATA_BASE + DATA_SIZE + 4 * self.below(0x100),
                _ => CODE_BASE + CODE_SIZE + self.below(0x100),
            },
            _ if self.chance(40) => {
                if self.chance(70) {
                    DATA_BASE + DATA_SIZE - 4 * self.below(16)
                } else {
                    CODE_BASE + CODE_SIZE - 4 * self.below(16)
                }
            }
            _ => DATA_BASE + 0x1000 + 4 * self.below(0x3000),
        }
    }

    fn set_pointers(&mut self) {
        for (k, &p) in PTR.iter().enumerate() {
            let a = self.target();
            self.in_data[k] = (DATA_BASE..DATA_BASE + DATA_SIZE).contains(&a);
            self.movw(p, a);
        }
    }

    /// Brings the pointers into data RAM back into it (`movt rP, #0x2000`: RAM is 64 KiB), so
    /// that writeback does not walk them out of it over many passes.
    fn wrap_pointers(&mut self) {
        for (k, &p) in PTR.iter().enumerate() {
            if self.in_data[k] {
                self.t32(movw32(true, p, DATA_BASE >> 16));
            }
        }
    }

    // ---- one instruction (or a short group) the compiler translates ----

    fn simple(&mut self) {
        match self.weighted(&[6, 5, 6, 9, 3, 10, 8, 2, 3, 4, 3, 3, 3, 2, 2, 28, 4, 5, 2, 1]) {
            0 => {
                let (op, rd, rm, imm5) = (self.below(3), self.data_lo(), self.any_lo(), self.below(32));
                self.t16(shift_imm16(op, rd, rm, imm5));
            }
            1 => {
                let (sub, rd, rn) = (self.chance(50), self.data_lo(), self.any_lo());
                if self.chance(50) {
                    let rm = self.any_lo();
                    self.t16(addsub_reg16(sub, rd, rn, rm));
                } else {
                    let imm = self.below(8);
                    self.t16(addsub_imm3(sub, rd, rn, imm));
                }
            }
            2 => {
                let op = self.below(4);
                let rdn = if op == 1 { self.any_lo() } else { self.data_lo() };
                let imm8 = self.below(256);
                self.t16(imm8_16(op, rdn, imm8));
            }
            3 => {
                // A5.2.2 without the flag-setting register shifts (LSLS/LSRS/ASRS/RORS
                // Rdn, Rm: the compiler leaves those to the interpreter).
                let opc = loop {
                    let o = self.below(16);
                    if !matches!(o, 2 | 3 | 4 | 7) {
                        break o;
                    }
                };
                let rdn = if matches!(opc, 8 | 10 | 11) { self.any_lo() } else { self.data_lo() };
                let rm = self.any_lo();
                self.t16(dp16(opc, rdn, rm));
            }
            4 => match self.below(3) {
                0 => {
                    // ADD Rdn, Rm (either may be high; Rm may be SP)
                    let (rdn, rm) = (self.data(), if self.chance(15) { 13 } else { self.any() });
                    self.t16(hireg16(0, rdn, rm));
                }
                1 => {
                    let (rn, rm) = loop {
                        let (a, b) = (self.any(), self.any());
                        if a >= 8 || b >= 8 {
                            break (a, b);
                        }
                    };
                    self.t16(hireg16(1, rn, rm));
                }
                _ => {
                    let (rd, rm) = (self.data(), if self.chance(15) { 13 } else { self.any() });
                    self.t16(hireg16(2, rd, rm));
                }
            },
            5 => {
                let op = self.pick(&[0, 1, 2, 3, 4, 8, 10, 11, 13, 14]);
                let s = self.chance(50);
                let compare = s && matches!(op, 0 | 4 | 8 | 13) && self.chance(40);
                let rd = if compare { 15 } else { self.data() };
                let rn = if matches!(op, 2 | 3) && self.chance(40) { 15 } else { self.any() };
                let imm12 = self.rand_mod_imm();
                self.t32(dp_imm32(op, s, rd, rn, imm12));
            }
            6 => {
                let op = self.pick(&[0, 1, 2, 3, 4, 8, 10, 11, 13, 14]);
                let s = self.chance(50);
                let compare = s && matches!(op, 0 | 4 | 8 | 13) && self.chance(40);
                let rd = if compare { 15 } else { self.data() };
                let rn = if matches!(op, 2 | 3) && self.chance(40) { 15 } else { self.any() };
                let (rm, ty, imm5) = (self.any(), self.below(4), self.below(32));
                self.t32(dp_reg32(op, s, rd, rn, rm, ty, imm5));
            }
            7 => {
                // LSL/LSR/ASR/ROR.W by register without S (with S: see `unsupported`).
                let (ty, rd, rn, rm) = (self.below(4), self.data(), self.any(), self.any());
                self.t32(shift_reg32(ty, false, rd, rn, rm));
            }
            8 => {
                let rd = self.data();
                match self.below(4) {
                    0 | 1 => {
                        let (sub, rn, imm12) = (self.chance(50), self.any(), self.below(4096));
                        self.t32(addw32(sub, rd, rn, imm12));
                    }
                    2 => {
                        let v = self.rng.u32() & 0xffff;
                        self.t32(movw32(false, rd, v));
                    }
                    _ => {
                        let v = self.rng.u32() & 0xffff;
                        self.t32(movw32(true, rd, v));
                    }
                }
            }
            9 => {
                let (rd, lsb) = (self.data(), self.below(32));
                let width = 1 + self.below(32 - lsb);
                match self.below(4) {
                    0 => {
                        let rn = self.any();
                        self.t32(bfx32(false, rd, rn, lsb, width));
                    }
                    1 => {
                        let rn = self.any();
                        self.t32(bfx32(true, rd, rn, lsb, width));
                    }
                    2 => {
                        let rn = self.any();
                        self.t32(bfi32(rd, rn, lsb, width));
                    }
                    _ => self.t32(bfi32(rd, 15, lsb, width)),
                }
            }
            10 => {
                let (rd, rm) = (self.data(), self.any());
                match self.below(3) {
                    0 => self.t32(clz32(rd, rm)),
                    1 => {
                        let op = self.below(4);
                        self.t32(rev32(op, rd, rm));
                    }
                    _ => {
                        let (rd, rm, op) = (self.data_lo(), self.any_lo(), self.pick(&[0, 1, 3]));
                        self.t16(rev16(op, rd, rm));
                    }
                }
            }
            11 => {
                if self.chance(50) {
                    let (opc, rd, rm) = (self.below(4), self.data_lo(), self.any_lo());
                    self.t16(ext16(opc, rd, rm));
                } else {
                    let (op, rd, rm, rot) =
                        (self.pick(&[0, 1, 4, 5]), self.data(), self.any(), self.below(4));
                    self.t32(ext32(op, rd, rm, rot));
                }
            }
            12 => {
                let rd = self.data();
                let (rn, rm) = (self.any(), self.any());
                match self.below(4) {
                    0 => {
                        let (rdm, rn) = (self.data_lo(), self.any_lo());
                        self.t16(dp16(13, rdm, rn));
                    }
                    1 => self.t32(mul32(false, rd, rn, rm, 15)),
                    2 => {
                        let ra = self.any();
                        self.t32(mul32(false, rd, rn, rm, ra));
                    }
                    _ => {
                        let ra = self.any();
                        self.t32(mul32(true, rd, rn, rm, ra));
                    }
                }
            }
            13 => {
                let lo = self.data();
                let hi = loop {
                    let h = self.data();
                    if h != lo {
                        break h;
                    }
                };
                let (op, rn, rm) = (self.pick(&[0, 2, 4, 6]), self.any(), self.any());
                self.t32(long_mul32(op, lo, hi, rn, rm));
            }
            14 => self.divide(),
            15 => self.load_store(),
            16 => self.dual(),
            17 => self.multiple(),
            18 => match self.below(3) {
                0 => {
                    let (rd, imm8) = (self.data_lo(), self.below(256));
                    self.t16(adr16(rd, imm8));
                }
                1 => {
                    let (rd, imm8) = (self.data_lo(), self.below(256));
                    self.t16(add_sp16(rd, imm8));
                }
                _ => {
                    let (rt, imm8) = (self.data_lo(), self.below(256));
                    self.t16(ldr_lit16(rt, imm8));
                }
            },
            _ => self.t16(NOP16),
        }
    }

    /// UDIV/SDIV, sometimes set up for divide by zero or INT_MIN / -1.
    fn divide(&mut self) {
        let (rd, unsigned) = (self.data(), self.chance(50));
        match self.below(4) {
            0 => {
                // x / 0: 0 (DIV_0_TRP is clear)
                let (rn, rm) = (self.any(), self.data());
                self.t32(dp_imm32(2, false, rm, 15, 0));
                self.t32(div32(unsigned, rd, rn, rm));
            }
            1 => {
                // INT_MIN / -1 (signed: INT_MIN; unsigned: 0)
                let rn = self.data();
                let rm = loop {
                    let r = self.data();
                    if r != rn {
                        break r;
                    }
                };
                self.t32(dp_imm32(2, false, rn, 15, mod_imm(0x8000_0000).unwrap()));
                self.t32(dp_imm32(3, false, rm, 15, 0)); // mvn rm, #0
                self.t32(div32(unsigned, rd, rn, rm));
            }
            _ => {
                let (rn, rm) = (self.any(), self.any());
                self.t32(div32(unsigned, rd, rn, rm));
            }
        }
    }

    /// A base register for a single access: mostly a pointer, rarely anything.
    fn base(&mut self, low: bool) -> u32 {
        if self.below(1000) < 8 {
            if low {
                self.any_lo()
            } else {
                self.any()
            }
        } else if low {
            self.pick(PTR_LO)
        } else {
            self.pick(PTR)
        }
    }

    /// A small index in a data register (`uxtb`/`ubfx`/`movs`): its number.
    fn small_index(&mut self, low: bool) -> u32 {
        let ri = if low { self.data_lo() } else { self.data() };
        match self.below(3) {
            0 if ri < 8 => {
                let rj = self.any_lo();
                self.t16(ext16(3, ri, rj));
            }
            1 if ri < 8 => {
                let v = self.below(256);
                self.t16(imm8_16(0, ri, v));
            }
            _ => {
                let (rj, width) = (self.any(), 1 + self.below(10));
                let lsb = self.below(33 - width);
                self.t32(bfx32(true, ri, rj, lsb, width));
            }
        }
        ri
    }

    fn load_store(&mut self) {
        let load = self.chance(55);
        match self.weighted(&[25, 10, 8, 20, 22, 10, 5]) {
            0 => {
                // 16-bit immediate offset: STR/LDR (x4), STRB/LDRB (x1), STRH/LDRH (x2)
                let opa = self.pick(&[0b01100, 0b01110, 0b10000]) | u32::from(load);
                let rt = if load { self.data_lo() } else { self.any_lo() };
                let (rn, imm5) = (self.base(true), self.below(32));
                self.t16(ldst_imm16(opa, rt, rn, imm5));
            }
            1 => {
                let rm = self.small_index(true);
                let opb = self.below(8);
                let rt = if opb >= 3 { self.data_lo() } else { self.any_lo() };
                let rn = self.base(true);
                self.t16(ldst_reg16(opb, rt, rn, rm));
            }
            2 => {
                // SP-relative, above anything pushed (offsets 96..1020)
                let rt = if load { self.data_lo() } else { self.any_lo() };
                let imm8 = 24 + self.below(232);
                self.t16(ldst_sp16(load, rt, imm8));
            }
            3 => {
                let kind = if load { 3 + self.below(5) as usize } else { self.below(3) as usize };
                let rt = if load { self.data() } else { self.any() };
                let rn = self.base(false);
                let mut imm12 = if self.chance(80) { self.below(256) } else { self.below(4096) };
                if self.chance(85) {
                    imm12 &= !(KIND_SIZE[kind] - 1);
                }
                self.t32(ldst_imm12(kind, rt, rn, imm12));
            }
            4 => {
                // negative offset, pre-indexed or post-indexed with writeback
                let kind = if load { 3 + self.below(5) as usize } else { self.below(3) as usize };
                let rn = self.base(false);
                let rt = loop {
                    let r = if load { self.data() } else { self.any() };
                    if r != rn {
                        break r;
                    }
                };
                let (p, w) = match self.below(3) {
                    0 => (true, false),
                    1 => (true, true),
                    _ => (false, true),
                };
                // P = 1, U = 1, W = 0 is LDRT/STRT: positive offsets use the 12-bit form.
                let u = (w || !p) && self.chance(50);
                let limit = if self.chance(80) { 16 } else { 256 };
                let mut imm8 = self.below(limit);
                if self.chance(85) {
                    imm8 &= !(KIND_SIZE[kind] - 1);
                }
                self.t32(ldst_imm8(kind, rt, rn, imm8, p, u, w));
            }
            5 => {
                let rm = self.small_index(false);
                let kind = if load { 3 + self.below(5) as usize } else { self.below(3) as usize };
                let rt = if load { self.data() } else { self.any() };
                let (rn, shift) = (self.base(false), self.below(4));
                self.t32(ldst_reg32(kind, rt, rn, rm, shift));
            }
            _ => {
                let (rt, imm8) = (self.data_lo(), self.below(256));
                self.t16(ldr_lit16(rt, imm8));
            }
        }
    }

    fn dual(&mut self) {
        let load = self.chance(50);
        let rn = self.pick(PTR);
        let rt = if load { self.data() } else { self.any() };
        let rt2 = loop {
            let r = if load { self.data() } else { self.any() };
            if !load || r != rt {
                break r;
            }
        };
        let (p, w) = match self.below(3) {
            0 => (true, false),
            1 => (true, true),
            _ => (false, true),
        };
        let (u, small) = (self.chance(70), self.chance(70));
        let imm8 = self.below(if small { 16 } else { 256 });
        let (rt, rt2) = if !load && w && (rt == rn || rt2 == rn) { (0, 1) } else { (rt, rt2) };
        self.t32(dual32(load, rt, rt2, rn, imm8, p, u, w));
    }

    fn list(&mut self, regs: &[u32], min: u32) -> u32 {
        loop {
            let l = regs.iter().fold(0u32, |l, &r| if self.chance(40) { l | 1 << r } else { l });
            if l.count_ones() >= min {
                return l;
            }
        }
    }

    fn multiple(&mut self) {
        let load = self.chance(50);
        if self.chance(50) {
            let rn = self.pick(PTR_LO);
            let list = self.list(DATA_LO, 1);
            self.t16(ldm16(load, rn, list));
        } else {
            let rn = self.pick(PTR);
            let (db, w) = (self.chance(50), self.chance(60));
            let list = if load {
                self.list(DATA, 2)
            } else {
                let mut l = self.list(&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 14], 2);
                if w {
                    l &= !(1 << rn);
                }
                l | 1 << self.data()
            };
            self.t32(multi32(load, db, w, rn, list));
        }
    }

    // ---- statements: simple, control flow, stack, rarities ----

    fn stmt(&mut self, in_loop: bool) {
        let calls = if self.callable > 0 && !self.leaf { 5 } else { 0 };
        let smc = if in_loop && self.smc_slot.is_some() { 2 } else { 0 };
        match self.weighted(&[70, 8, 1, 5, calls, 3, 5, smc, 2, 3]) {
            0 => self.simple(),
            1 => {
                // b<cond> over a few instructions (16-bit, sometimes 32-bit)
                let (cond, wide) = (self.below(14), self.chance(25));
                let at = self.here();
                if wide {
                    self.placeholder32();
                } else {
                    self.t16(0);
                }
                for _ in 0..1 + self.below(4) {
                    self.simple();
                }
                let off = self.here() as i32 - (at as i32 + 4);
                if wide {
                    let (h1, h2) = bcond32(cond, off);
                    self.set(at, &[h1, h2]);
                } else {
                    self.set(at, &[bcond16(cond, off)]);
                }
            }
            2 => {
                // b over dead code
                let at = self.here();
                self.t16(0);
                self.simple();
                let off = self.here() as i32 - (at as i32 + 4);
                self.set(at, &[b16(off)]);
            }
            3 => {
                let (nonzero, rn) = (self.chance(50), self.any_lo());
                let at = self.here();
                self.t16(0);
                for _ in 0..1 + self.below(3) {
                    self.simple();
                }
                let off = (self.here() - (at + 4)) as i32;
                if off < 128 {
                    self.set(at, &[cbz16(nonzero, rn, off as u32)]);
                } else {
                    self.set(at, &[b16(off)]);
                }
            }
            4 => {
                let k = self.below(self.callable as u32) as usize;
                let sub = self.subs[k];
                if self.chance(85) {
                    let off = sub as i32 - (self.here() as i32 + 4);
                    self.t32(b32(true, off));
                } else {
                    // blx r12 (a call through a register)
                    self.movw(12, sub | 1);
                    self.t16(bx16(true, 12));
                }
            }
            5 => self.push_pop(),
            6 => self.unsupported(in_loop),
            7 => self.smc(),
            8 => self.jump_table(),
            _ => self.it_block(),
        }
    }

    /// A switch through TBB or TBH on a register masked to 0..3: four cases of a few
    /// instructions, each branching to the end.
    fn jump_table(&mut self) {
        let (half, ri, rs) = (self.chance(40), self.data(), self.any());
        self.t32(dp_imm32(0, false, ri, rs, mod_imm(3).unwrap())); // and.w ri, rs, #3
        self.t32(tb32(half, 15, ri)); // tbb/tbh [pc, ri(, lsl #1)]
        let table = self.here();
        // The table (data, not instructions): 4 bytes or 4 halfwords, filled in below.
        for _ in 0..if half { 4 } else { 2 } {
            self.code.push(0);
        }
        let mut cases = Vec::new();
        let mut ends = Vec::new();
        for _ in 0..4 {
            cases.push(self.here());
            for _ in 0..1 + self.below(3) {
                self.simple();
            }
            ends.push(self.here());
            self.t16(0); // b end
        }
        let end = self.here();
        for &at in &ends {
            self.set(at, &[b16(end as i32 - (at as i32 + 4))]);
        }
        let entries: Vec<u32> = cases.iter().map(|&c| (c - table) / 2).collect();
        if half {
            let hw: Vec<u16> = entries.iter().map(|&e| e as u16).collect();
            self.set(table, &hw);
        } else {
            let hw: Vec<u16> = entries.chunks(2).map(|p| (p[0] | p[1] << 8) as u16).collect();
            self.set(table, &hw);
        }
    }

    /// PUSH ... POP of the same number of registers around a few instructions.
    fn push_pop(&mut self) {
        let wide = self.chance(40);
        let (push, pop) = if wide {
            let l = self.list(DATA, 2);
            let mut p = self.list(DATA, 2);
            while p.count_ones() != l.count_ones() {
                p = self.list(DATA, 2);
            }
            (l, p)
        } else {
            let l = self.list(&[0, 1, 2, 3, 4, 5, 6, 7], 1);
            // Pointers are popped back where they were; data registers may swap.
            let ptrs = l & 0xc0;
            let n = (l & 0x3f).count_ones();
            let mut p = self.list(DATA_LO, 0);
            while p.count_ones() != n {
                p = self.list(DATA_LO, 0);
            }
            (l, p | ptrs)
        };
        if wide {
            self.t32(multi32(false, true, true, 13, push));
        } else {
            self.t16(pushpop16(false, false, push));
        }
        for _ in 0..self.below(4) {
            self.simple();
        }
        if wide {
            self.t32(multi32(true, false, true, 13, pop));
        } else {
            self.t16(pushpop16(true, false, pop));
        }
    }

    /// Instructions the compiler does not translate (blocks end before them).
    fn unsupported(&mut self, in_loop: bool) {
        // BKPT and UDF fault (the handler skips them): not in loop bodies, where they would
        // fault on every pass.
        let faulting = if in_loop { 0 } else { 1 };
        match self.weighted(&[2, 1, 2, 3, 2, faulting, faulting]) {
            0 => {
                let rd = self.data();
                self.t32(mrs32(rd));
            }
            1 => {
                let rn = self.any();
                self.t32(msr32(rn));
            }
            2 => {
                let (unsigned, rd, rn) = (self.chance(50), self.data(), self.any());
                let (sh, amount) = (self.below(2), self.below(32));
                let amount = if sh == 1 && amount == 0 { 1 } else { amount };
                let sat = self.below(32);
                self.t32(sat32(unsigned, sh, rd, rn, amount, sat));
            }
            3 => {
                // flag-setting shifts by a register
                if self.chance(50) {
                    let (opc, rdn, rm) = (self.pick(&[2, 3, 4, 7]), self.data_lo(), self.any_lo());
                    self.t16(dp16(opc, rdn, rm));
                } else {
                    let (ty, rd, rn, rm) = (self.below(4), self.data(), self.any(), self.any());
                    self.t32(shift_reg32(ty, true, rd, rn, rm));
                }
            }
            4 => {
                let rn = self.pick(PTR);
                match self.below(3) {
                    0 => self.t32(CLREX32),
                    _ => {
                        let rt = self.data();
                        self.t32(ldrex32(rt, rn));
                        let (rd, rt2) = (self.data(), self.any());
                        let rt2 = if rt2 == rd { rn } else { rt2 };
                        self.t32(strex32(rd, rt2, rn));
                    }
                }
            }
            5 => {
                // BKPT (not semihosting): a debug event, HardFault, skipped by the handler
                let imm = self.below(0xab);
                self.t16_faulting(bkpt16(imm));
            }
            _ => {
                let imm = self.below(256);
                self.t16_faulting(udf16(imm));
            }
        }
    }

    /// IT with 1..4 conditional instructions.
    fn it_block(&mut self) {
        let n = 1 + self.below(4);
        let fc = self.below(14);
        let mut mask = 1 << (4 - n);
        for k in 0..n - 1 {
            let then = self.chance(50);
            mask |= ((fc & 1) ^ u32::from(!then)) << (3 - k);
        }
        self.t16(it16(fc, mask));
        // A third of them end in a branch forward over a few instructions (the last
        // instruction of an IT block may branch: B, BX... with the block's condition).
        let branch = self.chance(33);
        for k in 0..n {
            if branch && k + 1 == n {
                let at = self.here();
                self.t16(0);
                for _ in 0..1 + self.below(3) {
                    self.simple();
                }
                let off = self.here() as i32 - (at as i32 + 4);
                self.set(at, &[b16(off)]);
                break;
            }
            match self.below(8) {
                0 => {
                    let (op, rd, rm, imm5) = (self.below(3), self.data_lo(), self.any_lo(), self.below(32));
                    self.t16(shift_imm16(op, rd, rm, imm5));
                }
                1 => {
                    let (op, rdn, imm8) = (self.below(4), self.data_lo(), self.below(256));
                    self.t16(imm8_16(op, rdn, imm8));
                }
                2 | 3 => {
                    let (opc, rdn, rm) = (self.below(16), self.data_lo(), self.any_lo());
                    self.t16(dp16(opc, rdn, rm));
                }
                4 => {
                    let (sub, rd, rn, imm) = (self.chance(50), self.data_lo(), self.any_lo(), self.below(8));
                    self.t16(addsub_imm3(sub, rd, rn, imm));
                }
                5 => {
                    let load = self.chance(50);
                    let opa = self.pick(&[0b01100, 0b01110, 0b10000]) | u32::from(load);
                    let rt = if load { self.data_lo() } else { self.any_lo() };
                    let (rn, imm5) = (self.pick(PTR_LO), self.below(32));
                    self.t16(ldst_imm16(opa, rt, rn, imm5));
                }
                6 => {
                    let op = self.pick(&[0, 8, 13]);
                    let (rd, rn, imm12) = (self.data(), self.any(), self.rand_mod_imm());
                    let s = self.chance(50);
                    self.t32(dp_imm32(op, s, rd, rn, imm12));
                }
                _ => {
                    let (rd, rn, rm) = (self.data(), self.any(), self.any());
                    self.t32(mul32(false, rd, rn, rm, 15));
                }
            }
        }
    }

    /// Toggles the loop's patched instruction between `adds rX, #k` and `adds rX^1, #k`.
    fn smc(&mut self) {
        // Once a pass, so the loop runs both versions.
        let Some(slot) = self.smc_slot.take() else { return };
        let a = self.data_lo();
        let b = loop {
            let r = self.data_lo();
            if r != a {
                break r;
            }
        };
        self.movw(a, slot);
        self.t16(ldst_imm16(0b10001, b, a, 0)); // ldrh b, [a]
        self.t32(dp_imm32(4, false, b, b, mod_imm(0x100).unwrap())); // eor.w b, b, #0x100
        self.t16(ldst_imm16(0b10000, b, a, 0)); // strh b, [a]
    }

    /// A counted loop: r8 counts the passes.
    fn counted_loop(&mut self) {
        let tight = self.chance(35);
        let n = if tight { 2 + self.below(30) } else { 3 + self.below(20) };
        if tight {
            // Start a tight loop where it fits in its page, so that it compiles to one block
            // that loops in host code.
            let room = PAGE - self.here() % PAGE;
            if room < 6 * n + 40 {
                self.island((room + PAGE - 4) % PAGE);
            }
        }
        let long = self.chance(25);
        let count = if tight || long { 50 + self.below(3000) } else { 1 + self.below(300) };
        let up = self.chance(30);
        let count = if up { count.clamp(1, 255) } else { count };
        // Pointers: set each pass (inside), or set before the loop and wrapped into RAM each
        // pass, or left to wander with writeback.
        let inside = self.chance(40);
        let wrap = !inside && self.chance(60);
        if !inside && self.chance(70) {
            self.set_pointers();
        }
        if up {
            self.t32(dp_imm32(2, false, COUNTER, 15, 0)); // mov.w r8, #0
        } else {
            self.t32(movw32(false, COUNTER, count));
        }
        let top = self.here();
        if inside {
            self.set_pointers();
        } else if wrap {
            self.wrap_pointers();
        }
        let smc = !tight && self.chance(15);
        if smc {
            let (rx, imm8) = (self.pick(&[0, 2, 4]), self.below(256));
            self.smc_slot = Some(self.here());
            self.t16(imm8_16(2, rx, imm8));
        }
        for _ in 0..n {
            if tight {
                self.simple();
            } else {
                self.stmt(true);
            }
        }
        if smc {
            self.smc();
        }
        if up {
            self.t32(dp_imm32(8, false, COUNTER, COUNTER, 1)); // add.w r8, r8, #1
            self.t32(dp_imm32(13, true, 15, COUNTER, count)); // cmp.w r8, #count
        } else {
            self.t32(dp_imm32(13, true, COUNTER, COUNTER, 1)); // subs.w r8, r8, #1
        }
        let off = top as i32 - (self.here() as i32 + 4);
        if off >= -256 && self.chance(80) {
            self.t16(bcond16(1, off)); // bne
        } else {
            self.t32(bcond32(1, off));
        }
        self.smc_slot = None;
    }

    fn subroutine(&mut self) {
        self.subs.push(self.here());
        let kind = self.below(3);
        self.leaf = kind == 0;
        match kind {
            0 => {}
            1 => self.t16(pushpop16(false, true, 1 << 4)), // push {r4, lr}
            _ => self.t16(pushpop16(false, true, 0)),      // push {lr}
        }
        for _ in 0..2 + self.below(10) {
            self.stmt(false);
        }
        match kind {
            0 => self.t16(bx16(false, 14)),
            1 => {
                if self.chance(50) {
                    self.t16(pushpop16(true, true, 1 << 4)); // pop {r4, pc}
                } else {
                    self.t32(multi32(true, false, true, 13, 1 << 4 | 1 << 15)); // ldmia.w sp!, {r4, pc}
                }
            }
            _ => self.t32(ldst_imm8(5, 15, 13, 4, false, true, true)), // ldr.w pc, [sp], #4
        }
        self.leaf = false;
        self.callable = self.subs.len();
    }
}

fn random_value(rng: &mut Rng) -> u32 {
    match rng.below(12) {
        0 => 0,
        1 => [1, u32::MAX, 0x8000_0000, 0x7fff_ffff, 0xffff, 0x8000][rng.below(6) as usize],
        2..=4 => rng.below(256),
        5 => rng.below(32),
        6 | 7 => DATA_BASE + rng.below(DATA_SIZE),
        _ => rng.u32(),
    }
}

/// SplitMix64's finaliser (the contract's generator, one draw): each (seed, program index) gets
/// a generator of its own.
fn splitmix64(x: u64) -> u64 {
    twinbed_contract::rng::SplitMix64::new(x).next_u64()
}

pub fn generate(seed: u64, index: u64) -> Program {
    let mut g = Gen {
        rng: Rng(splitmix64(splitmix64(seed) ^ index) | 1),
        code: Vec::new(),
        insns: Vec::new(),
        subs: Vec::new(),
        islands: Vec::new(),
        smc_slot: None,
        leaf: false,
        callable: 0,
        in_data: [false; 3],
    };
    // HardFault (and every other fault): skip the faulting instruction and return.
    let handler = g.here();
    g.t16(ldst_sp16(true, 0, 6)); //  ldr  r0, [sp, #24]   stacked PC
    g.t16(ldst_imm16(0b10001, 1, 0, 0)); // ldrh r1, [r0]
    g.t16(shift_imm16(1, 1, 1, 11)); // lsrs r1, r1, #11
    g.t16(imm8_16(2, 0, 2)); //           adds r0, #2
    g.t16(imm8_16(1, 1, 0b11101)); //     cmp  r1, #29        32-bit encodings start 0b11101..
    g.t16(bcond16(3, 0)); //              bcc  1f
    g.t16(imm8_16(2, 0, 2)); //           adds r0, #2
    g.t16(ldst_sp16(false, 0, 6)); // 1: str  r0, [sp, #24]
    g.movw(2, FAULTS); //                 r2, r3 are stacked too: count the fault
    g.t16(ldst_imm16(0b01101, 3, 2, 0)); // ldr r3, [r2]
    g.t16(imm8_16(2, 3, 1)); //             adds r3, #1
    g.t16(ldst_imm16(0b01100, 3, 2, 0)); // str r3, [r2]
    g.t16(bx16(false, 14)); //            bx   lr

    // SysTick: count the interrupt.
    let systick_isr = g.here();
    g.movw(0, TICKS);
    g.t16(ldst_imm16(0b01101, 1, 0, 0)); // ldr r1, [r0]
    g.t16(imm8_16(2, 1, 1)); //             adds r1, #1
    g.t16(ldst_imm16(0b01100, 1, 0, 0)); // str r1, [r0]
    g.t16(bx16(false, 14));
    if g.chance(50) {
        let len = 16 + 2 * g.below(100);
        g.island(len);
    }
    for _ in 0..g.below(4) {
        g.subroutine();
    }
    let main = g.here();
    if g.chance(35) {
        let period = 200 + g.below(20_000);
        g.movw(0, 0xe000_e010);
        g.movw(1, period);
        g.t16(ldst_imm16(0b01100, 1, 0, 1)); // str r1, [r0, #4]   SYST_RVR
        g.t16(imm8_16(0, 1, 0));
        g.t16(ldst_imm16(0b01100, 1, 0, 2)); // str r1, [r0, #8]   SYST_CVR
        g.t16(imm8_16(0, 1, 7));
        g.t16(ldst_imm16(0b01100, 1, 0, 0)); // str r1, [r0]       SYST_CSR: on, interrupt
    }
    g.set_pointers();
    for _ in 0..2 + g.below(6) {
        if g.chance(65) {
            g.counted_loop();
        } else {
            for _ in 0..1 + g.below(12) {
                g.stmt(false);
            }
        }
    }
    // Semihosting SYS_EXIT (ADP_Stopped_ApplicationExit): Stop::Exit(0).
    g.t16(imm8_16(0, 0, 0x18));
    g.movw(1, 0x2_0026);
    g.t16(bkpt16(0xab));
    g.t16(b16(-4)); // b .

    let mut regs = [0u32; 13];
    for (r, v) in regs.iter_mut().enumerate() {
        *v = if PTR.contains(&(r as u32)) { g.target() } else { random_value(&mut g.rng) };
    }
    let apsr = g.rng.u32() & 0xf800_0000;
    let data: Vec<u8> = (0..DATA_SIZE).map(|_| g.rng.next() as u8).collect();
    let scratch = (SCRATCH..CODE_SIZE).map(|_| g.rng.next() as u8).collect();
    let calls = 3 + g.below(6);
    // A stop address at some instruction of the main program (reached on every pass when it
    // is in a loop: many calls then).
    let stop_at = g.chance(20).then(|| {
        let main_insns: Vec<u32> = g.insns.iter().map(|&(a, _)| a).filter(|&a| a >= main).collect();
        main_insns[g.below(main_insns.len() as u32) as usize]
    });
    let calls = if stop_at.is_some() { calls * 8 } else { calls };
    let budgets = (0..calls)
        .map(|_| {
            u64::from(match g.below(10) {
                0..=2 => 1 + g.below(3000),
                3..=7 => 3000 + g.below(60_000),
                _ => 60_000 + g.below(140_000),
            })
        })
        .collect();
    Program {
        code: g.code,
        insns: g.insns,
        main,
        handler,
        systick_isr,
        regs,
        apsr,
        data,
        scratch,
        budgets,
        stop_at,
    }
}

impl Program {
    pub fn code_bytes(&self) -> Vec<u8> {
        self.code.iter().flat_map(|h| h.to_le_bytes()).collect()
    }

    /// The machine after reset, with the program loaded and the registers set.
    pub fn machine(&self, board: &Board) -> Machine {
        let mut m = Machine::new(board).expect("machine");
        let mut vt = vec![0u8; ORIGIN as usize];
        let mut word = |n: usize, v: u32| vt[4 * n..4 * n + 4].copy_from_slice(&v.to_le_bytes());
        word(0, SP_INIT);
        word(1, self.main | 1);
        for n in 2..15 {
            word(n, self.handler | 1);
        }
        word(15, self.systick_isr | 1);
        assert!(m.poke(CODE_BASE, &vt));
        assert!(m.poke(ORIGIN, &self.code_bytes()), "program too large");
        assert!(m.poke(SCRATCH, &self.scratch));
        assert!(m.poke(DATA_BASE, &self.data));
        m.reset();
        m.set_stop_at(self.stop_at);
        assert_eq!(m.cpu.r[15], self.main);
        m.cpu.r[..13].copy_from_slice(&self.regs);
        m.cpu.set_apsr(self.apsr);
        m
    }

    pub fn listing(&self) -> String {
        let mut s = String::new();
        for (k, chunk) in self.code.chunks(16).enumerate() {
            let _ = write!(s, "  {:08x}:", ORIGIN + 32 * k as u32);
            for h in chunk {
                let _ = write!(s, " {h:04x}");
            }
            s.push('\n');
        }
        s
    }
}

/// The instructions from `pc` on, decoded from `m`'s memory.
pub fn disassemble(m: &Machine, pc: u32, count: usize) -> String {
    let mut s = String::new();
    let mut a = pc;
    for _ in 0..count {
        let Some(b) = m.peek(a, 4).or_else(|| m.peek(a, 2)) else { break };
        let h1 = u16::from_le_bytes([b[0], b[1]]);
        let h2 = if b.len() >= 4 { u16::from_le_bytes([b[2], b[3]]) } else { 0 };
        let (i, size) = decode(h1, h2);
        if size == 4 {
            let _ = writeln!(s, "    {a:08x}: {h1:04x} {h2:04x}  {i:?}");
        } else {
            let _ = writeln!(s, "    {a:08x}: {h1:04x}       {i:?}");
        }
        a += u32::from(size);
    }
    s
}
