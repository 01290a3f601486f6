//! `cargo xtask emulate`: [`twinbed::emulate`] (the same run as `twinbed emulate`), after
//! installing QEMU if the run needs it.

use crate::say;
use anyhow::Result;
use std::process::ExitCode;
use twinbed::emulate::{EmulateArgs, Output};
use twinbed::Engine;

/// Runs the emulation and prints its summary; exit status 1 if a check failed.
pub fn run(args: &EmulateArgs) -> Result<ExitCode> {
    if args.engine == Engine::Qemu {
        crate::prereq::ensure_qemu(&mut say)?;
    }
    let mut stdout = std::io::stdout();
    let mut out = Output { say: &mut say, out: &mut stdout };
    let emulation = twinbed::emulate::run(args, &mut out)?;
    let ok = emulation.finish(&mut out)?;
    Ok(if ok { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
