//! Differential test of the ARMv7-M core against an oracle: Unicorn 2.1 (QEMU 5's ARM front end)
//! as a Cortex-M3, driven through `scripts/oracle-unicorn.py` (Unicorn is GPL: it is only ever
//! run as a separate test tool, never linked into twinbed).
//!
//! Every case is one instruction executed from a random register/flag state with `step_one()`
//! here and with `emu_start(.., count = 1)` there; registers, flags and memory must agree.
//! Cases: every 16-bit Thumb encoding once, plus a seeded random sample of 32-bit encodings
//! (20,000 by default, 1,000,000 with `TWINBED_FULL=1`). `TWINBED_SEED=<n>` replays a run.
//!
//! Where the two sides cannot be compared the case is excluded with a named class (see
//! [`excluded_before`] and [`excluded_after`]); the summary counts each class. Where Unicorn
//! departs from the ARMv7-M Architecture Reference Manual (DDI 0403E) twinbed follows the
//! manual and the class is named "Unicorn deviation". Known deviations of Unicorn 2.1.4:
//! - LDM/STM/PUSH/POP/LDRD/STRD/LDREX/STREX at unaligned addresses do not fault (A3.2.1: always
//!   UsageFault UNALIGNED);
//! - writes to SP keep bits[1:0] (B1.4.7: SP = value<31:2>:'00');
//! - BLX (immediate), LDREXD/STREXD, SETEND and the Advanced SIMD load/store space execute
//!   (UNDEFINED on ARMv7-M), and so do SUBS PC, LR, #imm and STR/STRB/STRH with base PC
//!   (A7.7: UNDEFINED);
//! - several DSP-extension instructions execute on its Cortex-M3 model (SXTAB, SSAT16, USADA8..).
//!
//! Branches are compared too: neither side fetches the next instruction, except that Unicorn
//! reports the fault of fetching from outside its pages (or in ARM state) as an error of the
//! same `emu_start`; such a case counts as completed, with the PC already at the target.
//!
//! Run: `cargo test -p twinbed-engine --test differential -- --nocapture`
//! (the oracle needs `python3` with `unicorn==2.1.4`; `cargo xtask test` installs it).

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::process::{Command, Stdio};
use twinbed_board::Board;
mod common;

use common::Rng;
use twinbed_engine::cpu::decode::{decode, is_32bit};
use twinbed_engine::system::cfsr;
use twinbed_engine::Machine;

const CODE_BASE: u32 = 0x0800_0000;
const CODE_SIZE: u32 = 0x3000;
/// The instruction sits in the middle of the code page (or 2 bytes on, for the other PC
/// alignment), so every literal load (PC +- 4095) stays inside it.
const PC_OFFSET: u32 = 0x1800;
const DATA_BASE: u32 = 0x2000_0000;
const DATA_SIZE: u32 = 0x4000;
/// How many examples of each kind of mismatch are printed (`TWINBED_EXAMPLES` overrides).
const EXAMPLES: usize = 2;

/// One instruction and the state it starts from.
#[derive(Clone, Debug)]
struct Case {
    hw1: u16,
    hw2: u16,
    pc: u32,
    /// r0..r12, SP, LR.
    r: [u32; 15],
    /// NZCVQ in bits 31..27.
    apsr: u32,
}

impl Case {
    fn len(&self) -> u32 {
        if is_32bit(self.hw1) {
            4
        } else {
            2
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut b = self.hw1.to_le_bytes().to_vec();
        if self.len() == 4 {
            b.extend_from_slice(&self.hw2.to_le_bytes());
        }
        b
    }

    fn encoding(&self) -> String {
        if self.len() == 4 {
            format!("{:04x} {:04x}", self.hw1, self.hw2)
        } else {
            format!("{:04x}", self.hw1)
        }
    }
}

/// A register value: mostly addresses inside the data page (so loads and stores land in
/// mapped memory), some small numbers (shift amounts, indexes), some anything.
fn random_reg(rng: &mut Rng) -> u32 {
    match rng.below(10) {
        0..=5 => {
            let a = DATA_BASE + 0x1000 + rng.below(0x2000);
            if rng.below(4) != 0 {
                a & !3
            } else {
                a
            }
        }
        6 | 7 => rng.below(64),
        _ => rng.u32(),
    }
}

fn random_case(rng: &mut Rng, hw1: u16, hw2: u16) -> Case {
    let mut r = [0u32; 15];
    for v in r.iter_mut().take(13) {
        *v = random_reg(rng);
    }
    // SP word-aligned in the middle of the data page: PUSH/POP/STMDB of 16 registers fit.
    r[13] = (DATA_BASE + 0x1800 + rng.below(0x1000)) & !3;
    r[14] = if rng.below(2) == 0 { (CODE_BASE + rng.below(CODE_SIZE)) | 1 } else { random_reg(rng) };
    Case { hw1, hw2, pc: CODE_BASE + PC_OFFSET + 2 * rng.below(2), r, apsr: rng.u32() & 0xf800_0000 }
}

/// The state after one instruction, as both sides report it.
#[derive(Clone, Debug, PartialEq)]
struct Outcome {
    /// Fault class, `None` when the instruction completed.
    fault: Option<Fault>,
    r: [u32; 16],
    /// NZCVQ in bits 31..27.
    apsr: u32,
    /// EPSR.T after the instruction.
    thumb: bool,
    /// (address, byte) that differ from the initial pages.
    mem: Vec<(u32, u8)>,
    /// Unicorn only: the unmapped address an access faulted on.
    fault_addr: Option<u32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// UNDEFINED / NOCP / INVSTATE (Unicorn: UC_ERR_INSN_INVALID).
    Undefined,
    /// A data access outside the pages (Unicorn: UC_ERR_READ/WRITE_UNMAPPED).
    Bus,
    /// An UNALIGNED UsageFault (Unicorn reports these as UC_ERR_EXCEPTION, i.e. `Other`).
    Unaligned,
    /// Any other exception (SVC, BKPT, DIVBYZERO; Unicorn: UC_ERR_EXCEPTION and the rest).
    Other,
}

/// Unicorn's answer line.
#[derive(Deserialize)]
struct OracleLine {
    id: usize,
    exc: Option<String>,
    addr: Option<u32>,
    r: Vec<u32>,
    xpsr: u32,
    mem: Vec<(u32, u8)>,
}

fn board() -> Board {
    common::board_with("differential", (CODE_BASE, CODE_SIZE), (DATA_BASE, DATA_SIZE), "")
}

/// Runs a case on twinbed's core: interpreted, or (`jit`) compiled as a block of one
/// instruction. Also returns the cycles and instructions it counted.
fn run_ours(base: &Machine, code0: &[u8], data0: &[u8], case: &Case, jit: bool) -> (Outcome, u64, u64) {
    let mut m = base.clone();
    assert!(m.poke(case.pc, &case.bytes()));
    m.cpu.r[..15].copy_from_slice(&case.r);
    m.cpu.r[15] = case.pc;
    m.cpu.set_apsr(case.apsr);
    m.cpu.thumb = true;
    // No vector table is mapped: a fault ends in Stop::Lockup with the CFSR bits recorded.
    let stopped = if jit { m.step_one_jit() } else { m.step_one() };
    let fault = stopped.map(|_| {
        let c = m.sys.cfsr;
        if c & (cfsr::UNDEFINSTR | cfsr::NOCP | cfsr::INVSTATE) != 0 {
            Fault::Undefined
        } else if c & (cfsr::PRECISERR | cfsr::IBUSERR | cfsr::IACCVIOL) != 0 {
            Fault::Bus
        } else if c & cfsr::UNALIGNED != 0 {
            Fault::Unaligned
        } else {
            Fault::Other
        }
    });
    let mut code = code0.to_vec();
    let off = (case.pc - CODE_BASE) as usize;
    code[off..off + case.len() as usize].copy_from_slice(&case.bytes());
    let mut mem = Vec::new();
    for (base, before) in [(CODE_BASE, &code[..]), (DATA_BASE, data0)] {
        let now = m.peek(base, before.len()).expect("page mapped");
        if now != before {
            mem.extend(
                now.iter()
                    .zip(before)
                    .enumerate()
                    .filter(|(_, (a, b))| a != b)
                    .map(|(i, (a, _))| (base + i as u32, *a)),
            );
        }
    }
    let c = &m.cpu;
    let apsr = (u32::from(c.n) << 31)
        | (u32::from(c.z) << 30)
        | (u32::from(c.c) << 29)
        | (u32::from(c.v) << 28)
        | (u32::from(c.q) << 27);
    (Outcome { fault, r: c.r, apsr, thumb: c.thumb, mem, fault_addr: None }, m.now, m.instret)
}

/// Turns Unicorn's answer into an [`Outcome`]. Unicorn reports a fault on fetching the *next*
/// instruction (a branch out of the mapped pages, or to an even address, i.e. ARM state) as an
/// error of this `emu_start`; the PC then already differs from the instruction's address, and
/// the instruction itself completed.
fn oracle_outcome(case: &Case, line: &OracleLine) -> Outcome {
    let mut r = [0u32; 16];
    r.copy_from_slice(&line.r[..16]);
    let completed = r[15] != case.pc;
    let fault = match line.exc.as_deref() {
        None => None,
        Some(_) if completed => None,
        Some("UC_ERR_INSN_INVALID") => Some(Fault::Undefined),
        Some("UC_ERR_READ_UNMAPPED" | "UC_ERR_WRITE_UNMAPPED" | "UC_ERR_FETCH_UNMAPPED") => Some(Fault::Bus),
        Some(_) => Some(Fault::Other),
    };
    Outcome {
        fault,
        r,
        apsr: line.xpsr & 0xf800_0000,
        thumb: line.xpsr & (1 << 24) != 0,
        mem: line.mem.clone(),
        fault_addr: line.addr,
    }
}

/// Classes excluded from the comparison by encoding, before running. Each names why.
fn excluded_before(case: &Case) -> Option<&'static str> {
    let (h1, h2) = (u32::from(case.hw1), u32::from(case.hw2));
    if case.len() == 2 {
        return match h1 {
            // They raise exceptions by design; the exception model is tested by the
            // conformance firmware (both engines), not instruction by instruction.
            0xdf00..=0xdfff => Some("SVC (exception by design)"),
            0xbe00..=0xbeff => Some("BKPT (exception / semihosting)"),
            0xde00..=0xdeff => Some("UDF (exception by design)"),
            // YIELD, WFE, WFI, SEV: sleep and event state (Unicorn stops on YIELD and WFI).
            0xbf10 | 0xbf20 | 0xbf30 | 0xbf40 => Some("YIELD/WFE/WFI/SEV (sleep and events)"),
            // IT only changes ITSTATE for the following instructions; IT blocks are tested
            // through the conformance firmware.
            _ if h1 & 0xff00 == 0xbf00 && h1 & 0xf != 0 => Some("IT (state for following instructions)"),
            // PRIMASK/FAULTMASK: execution priority, compared by the conformance firmware.
            _ if h1 & 0xffe0 == 0xb660 => Some("CPS (system registers)"),
            // Unicorn deviation. A5.2.5: 0b0110010 (SETEND on ARMv6/ARMv7-A) is UNDEFINED on
            // ARMv7-M, whose endianness is fixed at reset; QEMU 5 executes it.
            0xb650 | 0xb658 => Some("Unicorn deviation: SETEND executes (ARMv7-M: UNDEFINED)"),
            _ => unpredictable16(h1),
        };
    }
    if h1 & 0xfff0 == 0xf7f0 && h2 & 0xf000 == 0xa000 {
        return Some("UDF (exception by design)");
    }
    // Unicorn deviation. A5.3.4: hw2[14:12] = 0b1x0 (BLX immediate on ARMv7-A/R, a switch to
    // ARM state) is UNDEFINED on ARMv7-M; QEMU 5 executes the branch (and faults on the next
    // fetch, in ARM state).
    if h1 & 0xf800 == 0xf000 && h2 & 0xd000 == 0xc000 {
        return Some("Unicorn deviation: BLX (immediate) executes (ARMv7-M: UNDEFINED)");
    }
    // Unicorn deviation. A5.3: op1 = 0b11, op2 = 0b001xxx0 is Advanced SIMD element/structure
    // load/store on ARMv7-A; ARMv7-M has no such space (UNDEFINED), but QEMU 5's Cortex-M3
    // executes VLDn/VSTn (and writes memory).
    if h1 & 0xff10 == 0xf900 {
        return Some("Unicorn deviation: Advanced SIMD load/store execute (ARMv7-M: UNDEFINED)");
    }
    // Unicorn deviation. A7.7.160/162/164 STR/STRB/STRH (immediate, T3/T4):
    // "if Rn == '1111' then UNDEFINED"; QEMU 5 stores relative to the PC (and writes back).
    if h1 & 0xff10 == 0xf800 && h1 & 0xf == 0xf {
        return Some("Unicorn deviation: stores with base PC execute (ARMv7-M: UNDEFINED)");
    }
    // Unicorn deviation. A5.3.4: op = 0b0111101 (SUBS PC, LR, #imm, the ARMv7-A exception
    // return) is UNDEFINED on ARMv7-M; QEMU 5 executes it.
    if h1 & 0xfff0 == 0xf3d0 && h2 & 0xd000 == 0x8000 {
        return Some("Unicorn deviation: SUBS PC, LR, #imm executes (ARMv7-M: UNDEFINED)");
    }
    if let Some(class) = dsp(h1, h2) {
        return Some(class);
    }
    // Unicorn deviation. A5.3.6: op3 = 0b0111 (LDREXD/STREXD on ARMv7-A/R) is UNDEFINED on
    // ARMv7-M; QEMU 5 executes them.
    if matches!(h1 & 0xfff0, 0xe8c0 | 0xe8d0) && (h2 >> 4) & 0xf == 0b0111 {
        return Some("Unicorn deviation: LDREXD/STREXD execute (ARMv7-M: UNDEFINED)");
    }
    if h1 & 0xfff0 == 0xf3a0 && h2 & 0xd000 == 0x8000 && matches!(h2 & 0xff, 1..=4) {
        return Some("YIELD/WFE/WFI/SEV (sleep and events)");
    }
    // MRS/MSR of MSP, PSP, PRIMASK, BASEPRI, FAULTMASK, CONTROL: privilege and stack state that
    // Unicorn resets differently; the APSR/IPSR/EPSR forms (SYSm < 8) are compared.
    if (h1 & 0xffe0 == 0xf3e0 || h1 & 0xffe0 == 0xf380) && h2 & 0xd000 == 0x8000 && h2 & 0xff >= 8 {
        return Some("MRS/MSR of system registers");
    }
    unpredictable32(h1, h2)
}

/// DSP-extension (ARMv7E-M) encodings: UNDEFINED on the Cortex-M3 (twinbed), but QEMU 5's
/// Cortex-M3 model executes several of them (it checks the DSP feature for only some).
fn dsp(h1: u32, h2: u32) -> Option<&'static str> {
    const DSP: Option<&str> = Some("DSP extension (not on Cortex-M3; QEMU 5 executes some)");
    let (op1, op2) = ((h1 >> 4) & 0xf, (h2 >> 4) & 0xf);
    match h1 & 0xff80 {
        // A5.3.12: extend-and-add (Rn != PC), SXTB16/UXTB16, parallel add/subtract,
        // QADD/QSUB/QDADD/QDSUB/SEL.
        0xfa00 if op2 & 8 != 0 && (h1 & 0xf != 0xf || matches!(op1, 0b0010 | 0b0011)) => DSP,
        0xfa80 if op2 & 0b1100 == 0 || (op2 & 0b1100 == 0b1000 && op1 & 0b0100 == 0) => DSP,
        // A5.3.13: multiplies other than MUL/MLA/MLS.
        0xfb00 if (h1 >> 4) & 7 != 0 => DSP,
        // A5.3.14: SMLAL<x><y>, SMLALD, SMLSLD, UMAAL.
        0xfb80 if (h1 >> 4) & 7 != 1 && (h1 >> 4) & 7 != 3 && op2 != 0 => DSP,
        // A5.3.3: SSAT16/USAT16.
        _ if h1 & 0xfb70 == 0xf320 && h2 & 0x8000 == 0 && (h2 >> 12) & 7 == 0 && (h2 >> 6) & 3 == 0 => DSP,
        _ => None,
    }
}

/// 16-bit encodings the manual calls UNPREDICTABLE (twinbed treats many as UNDEFINED; QEMU
/// executes some of them one way or another). Section numbers: ARMv7-M ARM, DDI 0403E.
fn unpredictable16(h: u32) -> Option<&'static str> {
    const U: Option<&str> = Some("UNPREDICTABLE (16-bit)");
    let rdn = ((h >> 4) & 8) | (h & 7);
    let rm = (h >> 3) & 0xf;
    let list = h & 0xff;
    match h {
        // A5.2.3: ADD PC, PC; opcode 0b0100; CMP of two low registers or with PC.
        0x4400..=0x44ff if rdn == 15 && rm == 15 => U,
        0x4500..=0x453f => U,
        0x4540..=0x45ff if (rdn < 8 && rm < 8) || rdn == 15 || rm == 15 => U,
        // BX/BLX: bits[2:0] are (0); BLX PC.
        0x4700..=0x47ff if h & 7 != 0 || h == 0x47f8 => U,
        // PUSH/POP/LDM/STM with an empty list; STM with writeback of a base that is not the
        // lowest register in the list.
        0xb400 | 0xbc00 => U,
        0xc000..=0xcfff if list == 0 => U,
        0xc000..=0xc7ff if list & (1 << ((h >> 8) & 7)) != 0 && list.trailing_zeros() != (h >> 8) & 7 => U,
        _ => None,
    }
}

/// 32-bit encodings the manual calls UNPREDICTABLE: (0)/(1) bits not as encoded, SP or PC
/// where the instruction forbids them, writeback into a loaded or stored register, register
/// lists of LDM/STM that A7.7 rules out. Over-approximates a little: DP forms with SP as an
/// operand that the manual allows (e.g. ADD.W Rd, SP, Rm) are left out too; the 16-bit forms
/// and the conformance firmware cover those.
fn unpredictable32(h1: u32, h2: u32) -> Option<&'static str> {
    let sp_pc = |r: u32| r == 13 || r == 15;
    let rn = h1 & 0xf;
    let (rt, rd, rm) = (h2 >> 12, (h2 >> 8) & 0xf, h2 & 0xf);
    let bit = |v: u32, n: u32| (v >> n) & 1 != 0;
    // A5.3.5 load/store multiple.
    if h1 & 0xfe40 == 0xe800 {
        let (load, wback) = (bit(h1, 4), bit(h1, 5));
        let bad = rn == 15
            || h2.count_ones() < 2
            || bit(h2, 13)
            || (!load && bit(h2, 15))
            || (load && bit(h2, 15) && bit(h2, 14))
            || (wback && bit(h2, rn));
        return bad.then_some("UNPREDICTABLE (LDM/STM register list or base)");
    }
    // A5.3.6 load/store dual or exclusive, table branch.
    if h1 & 0xfe40 == 0xe840 {
        let (op1, op2, op3) = ((h1 >> 7) & 3, (h1 >> 4) & 3, (h2 >> 4) & 0xf);
        let bad = match (op1, op2) {
            (0, 0) => sp_pc(rd) || sp_pc(rt) || rn == 15 || rd == rn || rd == rt,
            (0, 1) => sp_pc(rt) || rn == 15 || rd != 15,
            (1, 0) if op3 == 4 || op3 == 5 => {
                sp_pc(rm) || sp_pc(rt) || rn == 15 || rm == rn || rm == rt || rd != 15
            }
            (1, 1) if op3 == 0 || op3 == 1 => h2 & 0xff00 != 0xf000 || rn == 13 || sp_pc(rm),
            (1, 1) if op3 == 4 || op3 == 5 => sp_pc(rt) || rn == 15 || rd != 15 || rm != 15,
            (0 | 1, _) if op2 < 2 => false,
            _ => {
                // LDRD/STRD (immediate, literal).
                let (load, wback) = (bit(h1, 4), bit(h1, 5));
                (wback && (rn == rt || rn == rd))
                    || (rn == 15 && (wback || !load))
                    || sp_pc(rt)
                    || sp_pc(rd)
                    || (load && rt == rd)
            }
        };
        return bad.then_some("UNPREDICTABLE (LDRD/STRD/exclusive/TBB operands)");
    }
    // A5.3.11 data processing (shifted register): hw2[15] is (0); SP/PC operands.
    // TST, TEQ, CMN, CMP are AND, EOR, ADD, SUB with Rd = PC and S set.
    let compare = rd == 15 && bit(h1, 4) && matches!((h1 >> 5) & 0xf, 0b0000 | 0b0100 | 0b1000 | 0b1101);
    let op = (h1 >> 5) & 0xf;
    if h1 & 0xfe00 == 0xea00 {
        let bad = bit(h2, 15)
            || sp_pc(rm)
            || (rd == 15 && !compare)
            || rd == 13
            || rn == 13
            || (rn == 15 && !matches!(op, 0b0010 | 0b0011)); // MOV/MVN: ORR/ORN with Rn = PC
        return bad.then_some("UNPREDICTABLE (DP register operands)");
    }
    if h1 & 0xf800 == 0xf000 && !bit(h2, 15) {
        if !bit(h1, 9) {
            // A5.3.1 modified immediate: SP/PC as Rd (other than compares) or Rn; the
            // ThumbExpandImm patterns with a zero byte (A5.3.2).
            let imm12 = ((h1 >> 10) & 1) << 11 | ((h2 >> 12) & 7) << 8 | (h2 & 0xff);
            let bad = (imm12 >> 10 == 0 && imm12 >> 8 != 0 && imm12 & 0xff == 0)
                || (rd == 15 && !compare)
                || (rd == 13 && !(matches!(op, 0b1000 | 0b1101) || (op == 0b0010 && rn == 15)))
                || rn == 13 && !matches!(op, 0b1000 | 0b1101)
                || (rn == 15 && !matches!(op, 0b0010 | 0b0011));
            return bad.then_some("UNPREDICTABLE (DP immediate operands)");
        }
        // A5.3.3 plain binary immediate.
        let op = (h1 >> 4) & 0x1f;
        let bad = match op {
            0b00000 | 0b01010 => rd == 15 || (rd == 13 && rn != 13),
            0b00100 | 0b01100 => sp_pc(rd),
            0b10000 | 0b10010 | 0b10100 | 0b10110 | 0b11000 | 0b11010 | 0b11100 => {
                bit(h1, 10) || bit(h2, 5) || sp_pc(rd) || rn == 13 || (rn == 15 && op != 0b10110)
            }
            _ => false,
        };
        return bad.then_some("UNPREDICTABLE (plain immediate operands, (0) bits)");
    }
    // A5.3.4 branches and miscellaneous control: (0)/(1) bits of MSR/MRS, hints, barriers.
    if h1 & 0xf800 == 0xf000 && bit(h2, 15) && h2 & 0x5000 == 0 && (h1 >> 4) & 0x38 == 0x38 {
        let op = (h1 >> 4) & 0x7f;
        let bad = match op {
            0b0111000 | 0b0111001 => bit(h2, 13) || h2 & 0x300 != 0 || sp_pc(rn) || (h2 >> 10) & 3 == 0,
            0b0111010 => bit(h2, 13) || bit(h2, 11) || rn != 15,
            0b0111011 => bit(h2, 13) || rd != 15 || rn != 15,
            0b0111110 | 0b0111111 => bit(h2, 13) || rn != 15 || sp_pc(rd),
            _ => false,
        };
        return bad.then_some("UNPREDICTABLE (MSR/MRS/hint/barrier (0)/(1) bits)");
    }
    // A5.3.7-A5.3.10 single loads and stores.
    if h1 & 0xfe00 == 0xf800 {
        let load = bit(h1, 4);
        let size = (h1 >> 5) & 3;
        let imm8 = !bit(h1, 7) && bit(h2, 11);
        let wback = imm8 && bit(h2, 8);
        let unpriv = imm8 && (h2 >> 8) & 0xf == 0b1110;
        let reg_form = !bit(h1, 7) && (h2 >> 6) & 0x3f == 0;
        let bad = if rn == 15 {
            load && size != 2 && rt == 13
        } else if load {
            (wback && rn == rt)
                || (reg_form && sp_pc(rm))
                || (size != 2 && rt == 13)
                || (size != 2 && rt == 15 && (wback || unpriv))
                || (size == 2 && unpriv && sp_pc(rt))
        } else {
            rt == 15
                || (size != 2 && rt == 13)
                || (wback && rn == rt)
                || (reg_form && sp_pc(rm))
                || (unpriv && sp_pc(rt))
        };
        return bad.then_some("UNPREDICTABLE (load/store operands)");
    }
    // A5.3.12 data processing (register), A5.3.13/14 multiplies and divides: SP/PC operands,
    // (1) bits of the divides.
    if h1 & 0xff00 == 0xfa00 || h1 & 0xff00 == 0xfb00 {
        let long = h1 & 0xff80 == 0xfb80;
        // Rn = PC is allowed only by the extend forms (SXTB.W etc.: hw1 = 0xfa0f.., hw2[7] set).
        let bad = sp_pc(rn) && !(h1 & 0xff80 == 0xfa00 && rn == 15 && bit(h2, 7))
            || sp_pc(rm)
            || sp_pc(rd)
            || (!long && h1 & 0xff00 == 0xfb00 && (rt == 13 || (rt == 15 && (h2 >> 4) & 3 == 1)))
            || (long && (h1 >> 4) & 7 != 1 && (h1 >> 4) & 7 != 3 && (sp_pc(rt) || rt == rd));
        return bad.then_some("UNPREDICTABLE (register operands)");
    }
    None
}

/// Classes excluded after running, from what the two sides did.
fn excluded_after(_case: &Case, ours: &Outcome, theirs: &Outcome) -> Option<&'static str> {
    // Unicorn deviation. ARMv7-M ARM A3.2.1: LDM, STM, LDRD, STRD, LDREX and STREX (and
    // PUSH/POP) always fault on an unaligned address (UsageFault UNALIGNED, whatever
    // CCR.UNALIGN_TRP says); QEMU 5 performs them unaligned. twinbed follows the manual.
    if ours.fault == Some(Fault::Unaligned) && matches!(theirs.fault, None | Some(Fault::Bus)) {
        return Some("Unicorn deviation: unaligned LDM/STM/LDRD/STRD/LDREX/STREX do not fault");
    }
    // twinbed maps the System region (PPB: SCS, ITM, DWT.. RAZ/WI) and the bit-band aliases of
    // SRAM and peripherals like a Cortex-M3; the oracle maps only the two pages.
    if ours.fault.is_none() && theirs.fault == Some(Fault::Bus) {
        if let Some(a) = theirs.fault_addr {
            if (0xe000_0000..0xe010_0000).contains(&a)
                || (0x2200_0000..0x2400_0000).contains(&a)
                || (0x4200_0000..0x4400_0000).contains(&a)
            {
                return Some("address only twinbed maps (PPB, bit-band alias)");
            }
        }
    }
    // Unicorn deviation. ARMv7-M ARM B1.4.7, R[] assignment: SP = value<31:2>:'00' (bits[1:0]
    // of SP are always zero). QEMU 5 keeps bits[1:0] when an ADD/MOV/LDR writes SP.
    if ours.fault.is_none()
        && theirs.fault.is_none()
        && theirs.r[13] & 3 != 0
        && ours.r[13] == theirs.r[13] & !3
        && ours.r[..13] == theirs.r[..13]
        && ours.r[14..] == theirs.r[14..]
        && ours.apsr == theirs.apsr
        && ours.mem == theirs.mem
    {
        return Some("Unicorn deviation: SP bits[1:0] kept on write");
    }
    None
}

/// What differs between the two outcomes (empty: they agree).
fn differences(ours: &Outcome, theirs: &Outcome) -> Vec<String> {
    let mut d = Vec::new();
    match (ours.fault, theirs.fault) {
        (None, None) => {}
        (Some(a), Some(b)) => {
            // Both fault: only an UNDEFINED on one side against a bus fault on the other says
            // that one side decoded a memory access the other did not.
            if (a == Fault::Undefined) != (b == Fault::Undefined) && (a == Fault::Bus || b == Fault::Bus) {
                d.push(format!("fault kind: ours {a:?}, unicorn {b:?}"));
            }
            return d;
        }
        (a, b) => {
            d.push(format!("fault: ours {a:?}, unicorn {b:?}"));
            return d;
        }
    }
    for i in 0..16 {
        if ours.r[i] != theirs.r[i] {
            d.push(format!("r{i}: ours {:#010x}, unicorn {:#010x}", ours.r[i], theirs.r[i]));
        }
    }
    if ours.apsr != theirs.apsr {
        d.push(format!("NZCVQ: ours {}, unicorn {}", flags(ours.apsr), flags(theirs.apsr)));
    }
    if ours.thumb != theirs.thumb {
        d.push(format!("T: ours {}, unicorn {}", ours.thumb, theirs.thumb));
    }
    if ours.mem != theirs.mem {
        d.push(format!("memory: ours {}, unicorn {}", bytes(&ours.mem), bytes(&theirs.mem)));
    }
    d
}

fn flags(apsr: u32) -> String {
    "NZCVQ".chars().enumerate().map(|(i, f)| if apsr >> (31 - i) & 1 != 0 { f } else { '-' }).collect()
}

fn bytes(mem: &[(u32, u8)]) -> String {
    let parts: Vec<String> = mem.iter().take(24).map(|(a, b)| format!("{a:08x}={b:02x}")).collect();
    format!("[{}{}]", parts.join(" "), if mem.len() > 24 { " .." } else { "" })
}

fn oracle_script() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/oracle-unicorn.py")
}

#[test]
fn instructions_match_unicorn() {
    let seed = std::env::var("TWINBED_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x0d1f_2026u64);
    let full = std::env::var("TWINBED_FULL").is_ok_and(|v| v != "0");
    let random32 = if full { 1_000_000 } else { 20_000 };
    let examples = std::env::var("TWINBED_EXAMPLES").ok().and_then(|s| s.parse().ok()).unwrap_or(EXAMPLES);
    let mut rng = Rng(seed | 1);

    // Initial page contents, the same on both sides.
    let code0: Vec<u8> = (0..CODE_SIZE).map(|_| rng.next() as u8).collect();
    let data0: Vec<u8> = (0..DATA_SIZE).map(|_| rng.next() as u8).collect();
    let mut base = Machine::new(&board()).expect("machine");
    assert!(base.poke(CODE_BASE, &code0) && base.poke(DATA_BASE, &data0));

    let mut cases = Vec::new();
    for h in 0..=u16::MAX {
        if !is_32bit(h) {
            cases.push(random_case(&mut rng, h, 0));
        }
    }
    for _ in 0..random32 {
        let hw1 = 0xe800 + rng.below(0x1800) as u16;
        let hw2 = rng.next() as u16;
        cases.push(random_case(&mut rng, hw1, hw2));
    }

    let script = oracle_script();
    let mut child = Command::new("python3")
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start the oracle `python3 {}`: {e}. It needs python3 with the `unicorn` \
                 package (2.1.4): run `cargo xtask test`, which installs it, or \
                 `python3 -m pip install unicorn==2.1.4`",
                script.display()
            )
        });
    let stdin = child.stdin.take().expect("stdin");
    let stdout = child.stdout.take().expect("stdout");
    let feed = {
        let cases = cases.clone();
        let (code_hex, data_hex) = (hex(&code0), hex(&data0));
        std::thread::spawn(move || -> std::io::Result<()> {
            let mut w = BufWriter::new(stdin);
            writeln!(
                w,
                "{{\"init\":{{\"code_base\":{CODE_BASE},\"code\":\"{code_hex}\",\"data_base\":{DATA_BASE},\"data\":\"{data_hex}\"}}}}"
            )?;
            for (id, c) in cases.iter().enumerate() {
                let r: Vec<String> = c.r.iter().map(u32::to_string).collect();
                writeln!(
                    w,
                    "{{\"id\":{id},\"pc\":{},\"insn\":\"{}\",\"r\":[{}],\"apsr\":{}}}",
                    c.pc,
                    hex(&c.bytes()),
                    r.join(","),
                    c.apsr
                )?;
            }
            w.flush()
        })
    };

    let mut excluded: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut compared = 0usize;
    let mut mismatches = 0usize;
    let mut jit_mismatches = 0usize;
    let mut jit_examples = Vec::new();
    // Mismatches grouped by our decoding and the first difference: (count, examples).
    let mut by_kind: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    let mut lines = BufReader::new(stdout).lines();
    for (id, case) in cases.iter().enumerate() {
        let line = match lines.next() {
            Some(Ok(l)) => l,
            other => {
                let status = child.wait().ok();
                panic!(
                    "the oracle stopped answering at case {id} ({other:?}, exit {status:?}); if it \
                     says `unicorn` is missing, run `cargo xtask test` (installs it) or \
                     `python3 -m pip install unicorn==2.1.4`"
                );
            }
        };
        let answer: OracleLine = serde_json::from_str(&line).expect("oracle JSON line");
        assert_eq!(answer.id, id, "oracle answers out of order");
        if let Some(class) = excluded_before(case) {
            *excluded.entry(class).or_default() += 1;
            continue;
        }
        let (ours, now, instret) = run_ours(&base, &code0, &data0, case, false);
        // The block compiler must agree with the interpreter exactly, cycle counts included
        // (whatever Unicorn says).
        let compiled = run_ours(&base, &code0, &data0, case, true);
        if compiled != (ours.clone(), now, instret) {
            jit_mismatches += 1;
            if jit_examples.len() < examples {
                let instr = decode(case.hw1, case.hw2).0;
                jit_examples.push(format!(
                    "    #{id} {}: {instr:?}\n      interpreted: {} ({now} cycles, {instret} instructions)\n      compiled:    {} ({} cycles, {} instructions)",
                    case.encoding(),
                    short(&ours),
                    short(&compiled.0),
                    compiled.1,
                    compiled.2
                ));
            }
        }
        let theirs = oracle_outcome(case, &answer);
        if let Some(class) = excluded_after(case, &ours, &theirs) {
            *excluded.entry(class).or_default() += 1;
            continue;
        }
        compared += 1;
        let diff = differences(&ours, &theirs);
        if diff.is_empty() {
            continue;
        }
        mismatches += 1;
        let instr = decode(case.hw1, case.hw2).0;
        let variant = format!("{instr:?}").split([' ', '(']).next().unwrap_or("").to_owned();
        let first = diff[0].split(':').next().unwrap_or("").to_owned();
        let kind = by_kind.entry(format!("{variant}: {first}")).or_default();
        kind.0 += 1;
        if kind.1.len() < examples {
            kind.1.push(describe(id, case, &instr, &ours, &theirs, &diff));
        }
    }
    feed.join().expect("feeder thread").expect("writing to the oracle");
    let _ = child.wait();

    let total_excluded: usize = excluded.values().sum();
    println!(
        "differential (seed {seed}{}): {} cases, {compared} compared, {total_excluded} excluded, {mismatches} mismatches",
        if full { ", full" } else { "" },
        cases.len()
    );
    for (class, n) in &excluded {
        println!("  excluded {n:>7}  {class}");
    }
    println!("block compiler vs interpreter: {jit_mismatches} mismatches");
    for e in &jit_examples {
        println!("{e}");
    }
    assert_eq!(
        jit_mismatches, 0,
        "the block compiler differs from the interpreter (seed {seed}; replay with TWINBED_SEED={seed})"
    );
    if mismatches > 0 {
        let mut kinds: Vec<_> = by_kind.into_iter().collect();
        kinds.sort_by_key(|k| std::cmp::Reverse(k.1 .0));
        println!("mismatches by decoded instruction and first difference, with examples:");
        for (k, (n, examples)) in &kinds {
            println!("{n:>7}  {k}");
            for e in examples {
                println!("{e}");
            }
        }
        panic!(
            "{mismatches} instructions differ from Unicorn (seed {seed}; replay with TWINBED_SEED={seed})"
        );
    }
}

fn describe(
    id: usize,
    case: &Case,
    instr: &twinbed_engine::cpu::instr::Instr,
    ours: &Outcome,
    theirs: &Outcome,
    diff: &[String],
) -> String {
    format!(
        "    #{id} {}: ours decodes {instr:?}\n      before: pc {:#010x} r0-r12 {:08x?} sp {:#010x} lr {:#010x} {}\n      ours:    {}\n      unicorn: {}\n      {}",
        case.encoding(),
        case.pc,
        &case.r[..13],
        case.r[13],
        case.r[14],
        flags(case.apsr),
        short(ours),
        short(theirs),
        diff.join("; ")
    )
}

fn short(o: &Outcome) -> String {
    match o.fault {
        Some(f) => format!("fault {f:?}"),
        None => format!("r {:08x?} {} T={} mem {}", o.r, flags(o.apsr), o.thumb, bytes(&o.mem)),
    }
}

fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(2 * b.len());
    for x in b {
        let _ = write!(s, "{x:02x}");
    }
    s
}
