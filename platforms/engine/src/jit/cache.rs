//! The process-wide block compiler: one Cranelift module per optimisation level behind a
//! mutex, and the cache of compiled blocks keyed by (address, the block's halfwords).

use super::block::form_region;
use super::Compiled;
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::FunctionBuilderContext;
use cranelift_jit::{JITBuilder, JITModule};
use cranelift_module::Module;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// Compiled blocks kept in the process-wide cache before it stops taking new ones.
const CACHE_LIMIT: usize = 1 << 18;

/// A region as the cache knows it: where it starts, the decode-cache page it is formed from
/// (address and bytes), the stop address if it is in the page, and how it is compiled.
#[derive(Hash, PartialEq, Eq)]
struct Key {
    pc: u32,
    page_base: u32,
    page: Box<[u8]>,
    stop_at: Option<u32>,
    max_instrs: usize,
    follow: bool,
    it0: u8,
    optimise: bool,
}

/// The compiler: its Cranelift modules and contexts, and the blocks it compiled.
pub(super) struct Jit {
    /// [straight-line blocks, loops]
    pub(super) modules: [JITModule; 2],
    pub(super) ctx: cranelift_codegen::Context,
    pub(super) fbc: FunctionBuilderContext,
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
        // The first tier compiles fast (`none`); regions that keep running are compiled again
        // with `speed` (see `Compiled::spent`).
        let module = |opt: &str| -> Result<JITModule, String> {
            let mut flags = settings::builder();
            let e = |e: settings::SetError| e.to_string();
            flags.set("opt_level", opt).map_err(e)?;
            if opt == "none" {
                flags.set("regalloc_algorithm", "single_pass").map_err(e)?;
            }
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

/// Host nanoseconds spent compiling, process-wide (see [`compile_stats`]).
static COMPILE_NANOS: AtomicU64 = AtomicU64::new(0);
/// Blocks compiled (not found in the cache), process-wide.
static COMPILED_BLOCKS: AtomicU64 = AtomicU64::new(0);
/// Guest instructions in them.
static COMPILED_INSTRS: AtomicU64 = AtomicU64::new(0);

/// What the block compiler has cost this process so far: blocks compiled and the host time
/// spent forming and translating them (waiting for the compiler's lock included). Benchmarks
/// take the difference around a run to report the share of wall time spent compiling.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CompileStats {
    /// Blocks (regions) compiled (cache hits are not counted).
    pub blocks: u64,
    /// Guest instructions in them.
    pub instrs: u64,
    /// Host time compiling them.
    pub nanos: u64,
}

/// The process-wide [`CompileStats`] so far.
pub fn compile_stats() -> CompileStats {
    CompileStats {
        blocks: COMPILED_BLOCKS.load(Relaxed),
        instrs: COMPILED_INSTRS.load(Relaxed),
        nanos: COMPILE_NANOS.load(Relaxed),
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

/// The region at `pc` (see [`form_region`]) compiled, or `None` if its first instruction is
/// not one the compiler knows (or there is no compiler on this host). `page` holds the
/// decode-cache page that starts at `page_base`; a region never leaves it. Without `visited`
/// (where the program has been: see [`form_region`]) the region is one run of at most
/// `max_instrs` instructions. `optimise` picks the
/// second tier. Compiled code finds
/// memory through the region table of [`JitIo`](super::JitIo), so it does not depend on the
/// board's memory map.
#[allow(clippy::too_many_arguments)]
pub(crate) fn compile(
    pc: u32,
    page_base: u32,
    page: &[u8],
    stop_at: u32,
    max_instrs: usize,
    visited: Option<&dyn Fn(u32) -> bool>,
    it0: u8,
    optimise: bool,
) -> Option<&'static Compiled> {
    let started = Instant::now();
    let follow = visited.is_some();
    let jit = jit()?;
    // Keyed by the whole page, not by the runs formed: machines whose programs have been to
    // different places in the page (`visited`) share the first region compiled there, which
    // runs exactly as any other would. (Keyed by the runs, every machine of a power-cut sweep
    // compiled regions of its own.)
    let in_page = stop_at.wrapping_sub(page_base) < page.len() as u32;
    let key = Key {
        pc,
        page_base,
        page: page.into(),
        stop_at: in_page.then_some(stop_at),
        max_instrs,
        follow,
        it0,
        optimise,
    };
    let mut j = jit.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(c) = j.cache.get(&key) {
        return *c;
    }
    let runs = form_region(pc, page_base, page, stop_at, max_instrs, visited, it0);
    if runs[0].instrs.is_empty() {
        if j.cache.len() < CACHE_LIMIT {
            j.cache.insert(key, None);
        }
        return None;
    }
    // A region with a loop (a branch back to one of its runs at or before the branch) goes
    // to the optimising tier straight away: loops are where the time goes.
    let loops = runs
        .iter()
        .any(|r| r.successors().iter().any(|&(t, _)| t <= r.start && runs.iter().any(|q| q.start == t)));
    let compiled = j.build(&runs, follow, it0, optimise || (follow && loops));
    if j.cache.len() < CACHE_LIMIT {
        j.cache.insert(key, compiled);
    }
    COMPILED_BLOCKS.fetch_add(1, Relaxed);
    COMPILED_INSTRS.fetch_add(runs.iter().map(|r| r.instrs.len() as u64).sum(), Relaxed);
    COMPILE_NANOS.fetch_add(started.elapsed().as_nanos() as u64, Relaxed);
    compiled
}
