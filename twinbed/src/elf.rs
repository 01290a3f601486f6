//! Checks that a file is a firmware ELF an engine can run, and finds the testbed hook in it.

use object::{Object, ObjectSymbol};
use std::path::{Path, PathBuf};

/// Why a file cannot be run as firmware.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// No such file.
    #[error("firmware ELF {path} does not exist. Build the firmware first (`cargo xtask build-firmware`, or `cargo build --release` in firmware/) and pass the path of the ELF it writes under firmware/target/thumbv7m-none-eabi/")]
    Missing {
        /// The path given.
        path: PathBuf,
    },
    /// Unreadable.
    #[error("cannot read firmware ELF {path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not an ELF, or a damaged one.
    #[error("{path} is not a valid ELF file ({detail}); expected a firmware ELF built for thumbv7m-none-eabi. Is the file truncated or is it a .bin/.hex image?")]
    NotElf {
        /// The path.
        path: PathBuf,
        /// The parser's message.
        detail: String,
    },
    /// An ELF, but not for a 32-bit ARM target.
    #[error("{path} is an ELF for {arch}, not for 32-bit ARM (Cortex-M); build it with --target thumbv7m-none-eabi")]
    WrongArch {
        /// The path.
        path: PathBuf,
        /// What it is for.
        arch: String,
    },
    /// An ARM ELF with nothing to load.
    #[error("{path} has no loadable segments: nothing would run")]
    Empty {
        /// The path.
        path: PathBuf,
    },
}

/// What twinbed needs to know about a firmware ELF.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FirmwareInfo {
    /// Entry point.
    pub entry: u32,
    /// Address of `twinbed_sample_hook`, if the firmware has the testbed hook.
    pub sample_hook: Option<u32>,
}

/// Reads and checks `path`.
pub fn inspect(path: &Path) -> Result<FirmwareInfo, ElfError> {
    if !path.exists() {
        return Err(ElfError::Missing { path: path.to_owned() });
    }
    let data = std::fs::read(path).map_err(|source| ElfError::Read { path: path.to_owned(), source })?;
    let file = object::File::parse(&*data)
        .map_err(|e| ElfError::NotElf { path: path.to_owned(), detail: e.to_string() })?;
    if file.format() != object::BinaryFormat::Elf {
        return Err(ElfError::NotElf { path: path.to_owned(), detail: format!("it is {:?}", file.format()) });
    }
    if file.architecture() != object::Architecture::Arm || file.is_64() {
        return Err(ElfError::WrongArch {
            path: path.to_owned(),
            arch: format!("{:?}", file.architecture()),
        });
    }
    if file.segments().next().is_none() {
        return Err(ElfError::Empty { path: path.to_owned() });
    }
    let sample_hook =
        file.symbols().find(|s| s.name() == Ok(twinbed_contract::hook::SYMBOL)).map(|s| s.address() as u32);
    Ok(FirmwareInfo { entry: file.entry() as u32, sample_hook })
}
