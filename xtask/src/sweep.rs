//! `cargo xtask sweep`: builds the A/B firmware and runs [`twinbed::sweep::run`].

use anyhow::{Context, Result};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;
use twinbed::{firmware, Board};

/// The flags of `sweep`.
#[derive(Args)]
pub struct SweepArgs {
    /// Cut at every operation (about 400: a minute or two; the default is about 32 cut
    /// points spread over the update, plus its first and last few operations).
    #[arg(long, conflicts_with = "stride")]
    full: bool,
    /// Cut at every N-th operation (0: about 32 spread over the update).
    #[arg(long, default_value_t = 0)]
    stride: u32,
    /// Torn variants (seeds) per operation.
    #[arg(long, default_value_t = 4)]
    variants: u32,
    /// Seed of the torn states.
    #[arg(long, default_value_t = 0x5eed_2026)]
    seed: u64,
    /// Only the cut at operation OP with torn-state seed SEED (from a failure report).
    #[arg(long, value_name = "OP:SEED", value_parser = parse_replay)]
    replay: Option<(u32, u64)>,
    /// Do not reuse the verdicts of power-on states already seen (slower; the report must
    /// be the same).
    #[arg(long)]
    no_memo: bool,
    /// Worker threads (0: one per core, at most 4).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Write the counts (operations, cuts, torn variants, completed, stayed old, bricked)
    /// as JSON to this file.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
}

/// `OP:SEED`.
fn parse_replay(s: &str) -> Result<(u32, u64), String> {
    let (op, seed) = s.split_once(':').ok_or_else(|| format!("`{s}`: expected OP:SEED, e.g. 1:12345"))?;
    Ok((
        op.parse().map_err(|_| format!("`{op}` is not an operation number"))?,
        seed.parse().map_err(|_| format!("`{seed}` is not a seed"))?,
    ))
}

/// Runs the sweep; exit status 1 when anything bricked.
pub fn run(args: SweepArgs) -> Result<ExitCode> {
    let SweepArgs { full, stride, variants, seed, replay, no_memo, threads, json } = args;
    let stride = if full { 1 } else { stride };
    let variants = variants.max(1);
    let opts = twinbed::sweep::SweepOptions { seed, variants, stride, replay, memo: !no_memo, threads };
    let mut say = |m: &str| println!("xtask: {m}");
    say("building the bootloader and the app for slots A and B");
    let fw = firmware::build_ab(2, &mut say)?;
    let board = Board::builtin("mps2-an385")?;
    let started = std::time::Instant::now();
    let r = twinbed::sweep::run(&fw, &board, &opts, &mut say)?;
    for f in &r.failures {
        say(&format!("BRICKED: {f}"));
    }
    let secs = started.elapsed().as_secs_f64();
    say(&format!(
"sweep (seed {}): {} operations, {} cuts ({} torn variants each), {} completed, {} stayed old, {} bricked; {:.1} s, {:.0} cuts/s, {} boots run",
        r.seed,
        r.operations,
        r.cuts,
        r.torn_variants,
        r.completed,
        r.stayed_old,
        r.bricked,
        secs,
        f64::from(r.cuts) / secs.max(1e-9),
        r.boots_run
    ));
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_string_pretty(&r)?)
            .with_context(|| format!("writing {}", path.display()))?;
        say(&format!("counts written to {}", path.display()));
    }
    Ok(if r.bricked == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
