//! Differential test of the block compiler (`src/jit/`) against the interpreter, on whole
//! random programs rather than single instructions (`differential.rs` covers those).
//!
//! Each case is a seeded random Thumb-2 program (`common/programs.rs`), assembled by hand (the
//! encoders in `common/thumb.rs` cite the ARMv7-M ARM, DDI 0403E): mostly instructions the compiler translates (16- and
//! 32-bit data processing, shifts, multiplies, divides by zero and INT_MIN / -1, bitfields,
//! extends, byte reversal, single/dual/multiple loads and stores with every addressing form,
//! PUSH/POP, IT blocks (some ending in a branch), TBB/TBH jump tables), grouped into counted
//! loops (tight ones, and ones with forward branches, CBZ/CBNZ and BL/BX LR subroutine calls
//! inside: regions of several runs), with a few instructions the compiler leaves to the
//! interpreter (MRS/MSR, SSAT/USAT, flag-setting register shifts, LDREX/STREX, BKPT, UDF). Base registers point
//! mostly into data RAM, sometimes misaligned, sometimes outside RAM (BusFault), into the
//! code region (scratch space, or data islands inside code pages) and some loops patch one of
//! their own instructions each pass (self-modifying code). Every fault ends in a HardFault
//! handler that skips the faulting instruction (and counts it), so programs go on after
//! faults; a third of the programs also take SysTick interrupts, so events fall inside
//! compiled loops, and a fifth have a stop address (`set_stop_at`) somewhere in them. Programs
//! end with a semihosting exit.
//!
//! Every program runs on three clones of one machine: interpreter only (`set_jit(None)`),
//! blocks compiled at first sight (`Some(1)`) and after three starts (`Some(3)`), with regions
//! recompiled by the optimising tier after 500 cycles (so both tiers run), through the
//! same sequence of `run(budget)` calls (budgets of 1 to 200,000 cycles, so boundaries fall
//! inside loops). After every call the `Stop`, the core state, `now`, `instret`, the System
//! Control Space state and both RAM regions must be identical. The test also checks that it
//! is not vacuous: many instructions retired, most programs looping, faults, interrupts and
//! exits taken, and thousands of blocks compiled (counted from the compiler's `jit` tracing
//! events, which must include no warning).
//!
//! 300 programs by default (about 5 s), 5,000 with `TWINBED_FULL=1`; `TWINBED_SEED=<n>` picks
//! the seed and `TWINBED_PROGRAM=<i>` replays program `i` alone. A mismatch prints the seed,
//! the program index, the first differing field, the shortest sequence of `run` budgets that
//! shows it (the last one bisected), both states there, the instructions at the point of
//! divergence and the whole program.
//!
//! Run: `cargo test -p twinbed-engine --test jit_blocks -- --nocapture`

mod common;

use common::programs::*;
use common::thumb::*;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use twinbed_board::Board;
use twinbed_engine::cpu::decode::decode;
use twinbed_engine::cpu::instr::{DpOp, Hint, Instr, Op2, SetFlags};
use twinbed_engine::{Machine, Stop};

// ---------------------------------------------------------------------------------------------
// Comparison.
// ---------------------------------------------------------------------------------------------

/// The first difference between two machines' observable state, if any.
fn difference(a: &Machine, b: &Machine) -> Option<String> {
    if a.cpu != b.cpu {
        for i in 0..16 {
            if a.cpu.r[i] != b.cpu.r[i] {
                return Some(format!("r{i}: 0x{:08x} vs 0x{:08x}", a.cpu.r[i], b.cpu.r[i]));
            }
        }
        let flags = |m: &Machine| (m.cpu.n, m.cpu.z, m.cpu.c, m.cpu.v, m.cpu.q);
        if flags(a) != flags(b) {
            return Some(format!("NZCVQ: {:?} vs {:?}", flags(a), flags(b)));
        }
        return Some(format!("cpu: {:?} vs {:?}", a.cpu, b.cpu));
    }
    if a.now != b.now {
        return Some(format!("now: {} vs {}", a.now, b.now));
    }
    if a.instret != b.instret {
        return Some(format!("instret: {} vs {}", a.instret, b.instret));
    }
    for (base, size) in [(CODE_BASE, CODE_SIZE), (DATA_BASE, DATA_SIZE)] {
        let (x, y) = (a.peek(base, size as usize).unwrap(), b.peek(base, size as usize).unwrap());
        if let Some(i) = x.iter().zip(y).position(|(p, q)| p != q) {
            return Some(format!("memory at 0x{:08x}: {:02x} vs {:02x}", base + i as u32, x[i], y[i]));
        }
    }
    let (sa, sb) = (format!("{:?}", a.sys), format!("{:?}", b.sys));
    if sa != sb {
        return Some(format!("system state: {sa} vs {sb}"));
    }
    None
}

const ENGINES: [(&str, Option<u32>); 3] =
    [("interpreter", None), ("jit(Some(1))", Some(1)), ("jit(Some(3))", Some(3))];

/// What one program did (on the interpreter).
struct Outcome {
    instret: u64,
    stop: Stop,
    faults: u32,
    ticks: u32,
    /// `Stop::StopPoint`s returned.
    stop_points: u32,
    /// Time each engine spent in `run` (compilation included).
    seconds: [f64; 3],
}

/// Runs `p` on the three engines; a report on the first mismatch.
fn check_program(board: &Board, seed: u64, index: u64, p: &Program) -> Result<Outcome, String> {
    let base = p.machine(board);
    let mut ms: Vec<Machine> = ENGINES
        .iter()
        .map(|(_, t)| {
            let mut m = base.clone();
            m.set_jit(*t);
            m
        })
        .collect();
    let mut stop = Stop::Budget;
    let mut seconds = [0.0; 3];
    let mut stop_points = 0;
    for (call, &budget) in p.budgets.iter().enumerate() {
        let stops: Vec<Stop> = ms
            .iter_mut()
            .zip(&mut seconds)
            .map(|(m, t)| {
                let started = std::time::Instant::now();
                let stop = m.run(budget);
                *t += started.elapsed().as_secs_f64();
                stop
            })
            .collect();
        for k in 1..ms.len() {
            let diff = if stops[k] != stops[0] {
                Some(format!("stop: {:?} vs {:?}", stops[0], stops[k]))
            } else {
                difference(&ms[0], &ms[k])
            };
            if let Some(d) = diff {
                return Err(report(board, seed, index, p, k, call, &d));
            }
        }
        stop = stops[0];
        stop_points += u32::from(stop == Stop::StopPoint);
        if !matches!(stop, Stop::Budget | Stop::StopPoint) {
            break;
        }
    }
    let m = &ms[0];
    // The handlers' counters (a stray store can overwrite them: each handler run retires at
    // least 8 instructions, which bounds them).
    let word = |a: u32| {
        let v = m.peek(a, 4).map_or(0, |b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]));
        v.min((m.instret / 8) as u32)
    };
    Ok(Outcome { instret: m.instret, stop, faults: word(FAULTS), ticks: word(TICKS), stop_points, seconds })
}

/// A reproduction of a mismatch: the smallest single `run` budget that shows it (found by
/// bisection), the state there, the instructions at the divergence, and the program.
fn report(
    board: &Board,
    seed: u64,
    index: u64,
    p: &Program,
    engine: usize,
    call: usize,
    first: &str,
) -> String {
    let (name, threshold) = ENGINES[engine];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "program {index} (seed {seed}; replay with TWINBED_SEED={seed} TWINBED_PROGRAM={index}): \
         {name} differs from the interpreter after run call {call} (budgets {:?}): {first}",
        &p.budgets[..=call]
    );
    let base = p.machine(board);
    // Runs `budgets` (stopping early as `check_program` does).
    let run = |budgets: &[u64], jit: Option<u32>| {
        let mut m = base.clone();
        m.set_jit(jit);
        let mut stop = Stop::Budget;
        for &b in budgets {
            stop = m.run(b);
            if !matches!(stop, Stop::Budget | Stop::StopPoint) {
                break;
            }
        }
        (stop, m)
    };
    let differs = |budgets: &[u64]| {
        let (s0, m0) = run(budgets, None);
        let (s1, m1) = run(budgets, threshold);
        if s0 != s1 {
            Some(format!("stop: {s0:?} vs {s1:?}"))
        } else {
            difference(&m0, &m1)
        }
    };
    // The shortest reproduction: one `run` call if one shows it, else the calls before the
    // one that did and then that one; bisect the last budget.
    let total: u64 = p.budgets[..=call].iter().sum();
    let (prefix, last) = if differs(&[total]).is_some() {
        (Vec::new(), total)
    } else {
        (p.budgets[..call].to_vec(), p.budgets[call])
    };
    let with = |b: u64| [prefix.as_slice(), &[b]].concat();
    if differs(&with(last)).is_some() {
        let (mut lo, mut hi) = (0u64, last);
        while hi - lo > 1 {
            let mid = lo + (hi - lo) / 2;
            if differs(&with(mid)).is_some() {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        let (_, before) = run(&with(lo), None);
        let (s0, m0) = run(&with(hi), None);
        let (s1, m1) = run(&with(hi), threshold);
        let _ = writeln!(
            s,
            "reproduction: run() with budgets {:?} differs ({}); with {:?} it agrees",
            with(hi),
            differs(&with(hi)).unwrap_or_default(),
            with(lo)
        );
        let _ = writeln!(
            s,
            "  before the last cycle: pc 0x{:08x}, now {}, instret {}",
            before.cpu.r[15], before.now, before.instret
        );
        let _ = writeln!(s, "  interpreter: {s0:?}, now {}, instret {}, {:?}", m0.now, m0.instret, m0.cpu);
        let _ = writeln!(s, "  {name}: {s1:?}, now {}, instret {}, {:?}", m1.now, m1.instret, m1.cpu);
        let _ = writeln!(s, "  instructions from pc 0x{:08x}:", before.cpu.r[15]);
        s.push_str(&disassemble(&before, before.cpu.r[15], 24));
    } else {
        let _ = writeln!(s, "(not reproducible from a fresh machine: state carried between machines?)");
    }
    let _ = writeln!(
        s,
        "initial registers r0..r12 {:08x?}, APSR 0x{:08x}, SP 0x{SP_INIT:08x}, main 0x{:08x}",
        p.regs, p.apsr, p.main
    );
    let _ = writeln!(s, "program halfwords (from 0x{ORIGIN:08x}; vector table below it):");
    s.push_str(&p.listing());
    s
}

// ---------------------------------------------------------------------------------------------
// Counting what the compiler did (its `jit` tracing events).
// ---------------------------------------------------------------------------------------------

#[derive(Default)]
struct JitEvents {
    blocks: AtomicU64,
    instrs: AtomicU64,
    warnings: Mutex<Vec<String>>,
}

struct JitCounter(Arc<JitEvents>);

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

impl tracing::Subscriber for JitCounter {
    fn enabled(&self, metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target() == "jit"
    }

    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }

    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}

    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}

    fn event(&self, event: &tracing::Event<'_>) {
        let mut m = Message(String::new());
        event.record(&mut m);
        if let Some(n) = m.0.strip_prefix("compiled ").and_then(|r| r.split(' ').next()?.parse::<u64>().ok())
        {
            self.0.blocks.fetch_add(1, Ordering::Relaxed);
            self.0.instrs.fetch_add(n, Ordering::Relaxed);
        } else if *event.metadata().level() <= tracing::Level::WARN {
            self.0.warnings.lock().unwrap().push(m.0);
        }
    }

    fn enter(&self, _: &tracing::span::Id) {}

    fn exit(&self, _: &tracing::span::Id) {}
}

/// Whether the compiler translates `i` (a rough copy of `jit::supported`, for the statistics).
fn compiled_kind(i: &Instr) -> bool {
    match *i {
        Instr::Dp { op, s, rd, op2, .. } => {
            let compare = matches!(op, DpOp::Tst | DpOp::Teq | DpOp::Cmp | DpOp::Cmn);
            let arith = matches!(
                op,
                DpOp::Add | DpOp::Adc | DpOp::Sub | DpOp::Sbc | DpOp::Rsb | DpOp::Cmp | DpOp::Cmn
            );
            let logical_flags = s != SetFlags::No && !arith && op != DpOp::Mul;
            (compare || rd < 15) && !(matches!(op2, Op2::RegReg { .. }) && logical_flags)
        }
        Instr::Adr { .. }
        | Instr::Movt { .. }
        | Instr::Bit { .. }
        | Instr::Ext { .. }
        | Instr::Bf { .. }
        | Instr::Mul { .. }
        | Instr::Div { .. }
        | Instr::LongMul { .. }
        | Instr::Str { .. }
        | Instr::Dual { .. }
        | Instr::Multi { .. }
        | Instr::B { .. }
        | Instr::Bl { .. }
        | Instr::Cbz { .. }
        | Instr::Bx { .. }
        | Instr::Blx { .. }
        | Instr::Table { .. }
        | Instr::It { .. }
        | Instr::Hint(Hint::Nop) => true,
        Instr::Ldr { .. } => true,
        _ => false,
    }
}

#[test]
fn compiled_blocks_match_the_interpreter() {
    let seed = std::env::var("TWINBED_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x6a17_b10cu64);
    let full = std::env::var("TWINBED_FULL").is_ok_and(|v| v != "0");
    let only: Option<u64> = std::env::var("TWINBED_PROGRAM").ok().and_then(|s| s.parse().ok());
    let programs: u64 = if full { 5000 } else { 300 };
    let indexes: Vec<u64> = match only {
        Some(i) => vec![i],
        None => (0..programs).collect(),
    };

    // Regions go to the optimising tier after 500 cycles instead of millions, so both tiers
    // run (and are compared) in every program.
    twinbed_engine::set_tier_up_cycles(500);
    let events = Arc::new(JitEvents::default());
    let _guard = tracing::dispatcher::set_default(&tracing::Dispatch::new(JitCounter(events.clone())));

    let board = board();
    let started = std::time::Instant::now();
    let (mut total_instret, mut static_instrs, mut static_compiled) = (0u64, 0u64, 0u64);
    let (mut looped, mut exits, mut lockups, mut faulted, mut ticked, mut max_len) = (0, 0, 0, 0, 0, 0);
    let mut failures = Vec::new();
    let mut seconds = [0.0; 3];
    let (mut total_faults, mut total_ticks, mut stop_points) = (0u64, 0u64, 0u64);
    for &index in &indexes {
        let p = generate(seed, index);
        assert!(p.code.len() * 2 + (ORIGIN as usize) < SCRATCH as usize, "program {index} too large");
        // Every instruction the generator meant to be defined decodes to one.
        for &(at, defined) in &p.insns {
            let i = ((at - ORIGIN) / 2) as usize;
            let (h1, h2) = (p.code[i], p.code.get(i + 1).copied().unwrap_or(0));
            let (instr, _) = decode(h1, h2);
            if defined {
                assert!(
                    !matches!(instr, Instr::Undef(_)),
                    "program {index}: the encoder made an undefined instruction {h1:04x} {h2:04x} at 0x{at:08x}"
                );
            }
            static_instrs += 1;
            static_compiled += u64::from(compiled_kind(&instr));
        }
        max_len = max_len.max(p.insns.len());
        match check_program(&board, seed, index, &p) {
            Ok(o) => {
                total_instret += o.instret;
                looped += u32::from(o.instret > 10 * p.insns.len() as u64);
                exits += u32::from(matches!(o.stop, Stop::Exit(_)));
                lockups += u32::from(matches!(o.stop, Stop::Lockup { .. }));
                faulted += u32::from(o.faults > 0);
                ticked += u32::from(o.ticks > 0);
                total_faults += u64::from(o.faults);
                total_ticks += u64::from(o.ticks);
                stop_points += u64::from(o.stop_points);
                for (t, s) in seconds.iter_mut().zip(o.seconds) {
                    *t += s;
                }
            }
            Err(report) => {
                println!("{report}");
                failures.push(index);
                if failures.len() >= 3 {
                    break;
                }
            }
        }
    }
    let n = indexes.len() as u32;
    let blocks = events.blocks.load(Ordering::Relaxed);
    let block_instrs = events.instrs.load(Ordering::Relaxed);
    println!(
        "{n} programs (seed {seed}) in {:.1} s: {total_instret} instructions retired (interpreter), \
         {looped} programs ran over 10x their length, {exits} exited, {lockups} locked up, \
         {faulted} took faults ({total_faults} in all), {ticked} took SysTick interrupts \
         ({total_ticks}), {stop_points} stops at stop addresses; longest program {max_len} \
         instructions; {:.1}% of the generated instructions are of kinds the compiler translates; \
         {blocks} blocks compiled ({block_instrs} instructions); time in run: interpreter {:.2} s, \
         jit(Some(1)) {:.2} s, jit(Some(3)) {:.2} s",
        started.elapsed().as_secs_f64(),
        100.0 * static_compiled as f64 / static_instrs.max(1) as f64,
        seconds[0],
        seconds[1],
        seconds[2],
    );
    assert!(
        failures.is_empty(),
        "the block compiler differs from the interpreter in programs {failures:?} (seed {seed}; replay \
         with TWINBED_SEED={seed} TWINBED_PROGRAM=<index>)"
    );
    let warnings = events.warnings.lock().unwrap();
    assert!(warnings.is_empty(), "the block compiler warned: {:?}", &warnings[..warnings.len().min(5)]);
    if only.is_none() {
        // Not vacuous: programs ran long, looped, and the compiler compiled many blocks.
        assert!(total_instret > 1_000_000 * u64::from(n) / 300, "only {total_instret} instructions");
        assert!(looped >= n / 2, "only {looped} of {n} programs looped");
        assert!(exits >= n / 10 && faulted >= n / 10 && ticked >= n / 10);
        assert!(static_compiled * 10 >= static_instrs * 8, "too few compiled kinds");
        assert!(blocks >= u64::from(n) * 5 && block_instrs >= blocks * 3, "{blocks} blocks compiled");
    }
}

/// The encoders produce what the decoder (tested against Unicorn) reads back.
#[test]
fn encoders_decode_as_intended() {
    use twinbed_engine::cpu::instr::*;
    let d = |(h1, h2): (u16, u16)| decode(h1, h2).0;
    let d16 = |h: u16| decode(h, 0).0;
    assert_eq!(
        d(movw32(false, 3, 0xbeef)),
        Instr::Dp {
            op: DpOp::Mov,
            s: SetFlags::No,
            rd: 3,
            rn: 0,
            op2: Op2::Imm { value: 0xbeef, carry: None }
        }
    );
    assert_eq!(d(movw32(true, 9, 0x2000)), Instr::Movt { rd: 9, imm: 0x2000 });
    assert_eq!(d(b32(true, -0x1234)), Instr::Bl { imm: -0x1234 });
    assert_eq!(d(b32(false, 0x5_6788)), Instr::B { cond: 14, imm: 0x5_6788 });
    assert_eq!(d(bcond32(1, -0x2_0000)), Instr::B { cond: 1, imm: -0x2_0000 });
    assert_eq!(d16(bcond16(3, -8)), Instr::B { cond: 3, imm: -8 });
    assert_eq!(d16(b16(100)), Instr::B { cond: 14, imm: 100 });
    assert_eq!(d16(cbz16(true, 3, 90)), Instr::Cbz { nonzero: true, rn: 3, imm: 90 });
    assert_eq!(d(div32(false, 1, 2, 3)), Instr::Div { signed: true, rd: 1, rn: 2, rm: 3 });
    assert_eq!(
        d(long_mul32(4, 1, 2, 3, 4)),
        Instr::LongMul { op: LongMulOp::Smlal, rdlo: 1, rdhi: 2, rn: 3, rm: 4 }
    );
    assert_eq!(d(mul32(true, 1, 2, 3, 4)), Instr::Mul { op: MulOp::Mls, rd: 1, rn: 2, rm: 3, ra: 4 });
    assert_eq!(d(bfx32(true, 1, 2, 5, 7)), Instr::Bf { op: BfOp::Ubfx, rd: 1, rn: 2, lsb: 5, width: 7 });
    assert_eq!(d(bfi32(1, 15, 30, 2)), Instr::Bf { op: BfOp::Bfc, rd: 1, rn: 15, lsb: 30, width: 2 });
    assert_eq!(
        d(ldst_imm8(5, 15, 13, 4, false, true, true)),
        Instr::Ldr { w: Width::W, rt: 15, rn: 13, off: Offset::Imm(4), add: true, index: false, wback: true }
    );
    assert_eq!(
        d(ldst_reg32(7, 2, 6, 3, 2)),
        Instr::Ldr {
            w: Width::Sh,
            rt: 2,
            rn: 6,
            off: Offset::Reg { rm: 3, shift: 2 },
            add: true,
            index: true,
            wback: false
        }
    );
    assert_eq!(
        d(ldst_imm12(1, 2, 9, 0x123)),
        Instr::Str {
            w: Width::H,
            rt: 2,
            rn: 9,
            off: Offset::Imm(0x123),
            add: true,
            index: true,
            wback: false
        }
    );
    assert_eq!(
        d(dual32(true, 0, 1, 7, 3, false, true, true)),
        Instr::Dual { load: true, rt: 0, rt2: 1, rn: 7, imm: 12, add: true, index: false, wback: true }
    );
    assert_eq!(
        d(multi32(false, true, true, 13, 0x4010)),
        Instr::Multi { load: false, rn: 13, regs: 0x4010, db: true, wback: true }
    );
    assert_eq!(d(ext32(4, 1, 2, 3)), Instr::Ext { op: ExtOp::Sxtb, rd: 1, rm: 2, rot: 24 });
    assert_eq!(d(rev32(2, 1, 2)), Instr::Bit { op: BitOp::Rbit, rd: 1, rm: 2 });
    assert_eq!(d(clz32(1, 2)), Instr::Bit { op: BitOp::Clz, rd: 1, rm: 2 });
    assert_eq!(
        d(dp_imm32(13, true, COUNTER, COUNTER, 1)),
        Instr::Dp { op: DpOp::Sub, s: SetFlags::Yes, rd: 8, rn: 8, op2: Op2::Imm { value: 1, carry: None } }
    );
    assert!(matches!(
        d(shift_reg32(1, true, 1, 2, 3)),
        Instr::Dp { op: DpOp::Mov, op2: Op2::RegReg { .. }, .. }
    ));
    assert!(matches!(d(sat32(true, 0, 1, 2, 3, 4)), Instr::Sat { .. }));
    assert!(matches!(d(mrs32(1)), Instr::Mrs { rd: 1, sysm: 0 }));
    assert!(matches!(d(ldrex32(1, 6)), Instr::Ldrex { .. }));
    assert!(matches!(d(strex32(1, 2, 6)), Instr::Strex { .. }));
    assert!(matches!(d16(it16(0, 0b0110)), Instr::It { .. }));
    assert_eq!(d16(bx16(true, 12)), Instr::Blx { rm: 12 });
}
