//! `cargo xtask build-firmware`: builds the firmware workspace for the board.

use crate::say;
use anyhow::Result;
use std::process::ExitCode;
use twinbed::firmware;

/// Builds the device firmware, or the test-mode app of `test_mode` samples, and says where.
pub fn run(test_mode: Option<u32>) -> Result<ExitCode> {
    let variant = test_mode.map_or(firmware::Variant::Device, |samples| firmware::Variant::Test { samples });
    let fw = firmware::build(variant, &mut say)?;
    say(&format!("built {}", fw.app.display()));
    say(&format!("built {}", fw.panic.display()));
    Ok(ExitCode::SUCCESS)
}
