//! `cargo xtask sign`: [`twinbed::image::sign_file`], with a one-line report.

use anyhow::Result;
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// The flags of `sign`.
#[derive(Args)]
pub struct SignArgs {
    /// ELF or raw binary to sign.
    input: PathBuf,
    /// Image version: major[.minor[.revision[+build]]].
    #[arg(long)]
    version: String,
    /// Ed25519 private key in PEM (`imgtool keygen -t ed25519 -k key.pem`); default: the
    /// development key.
    #[arg(long, value_name = "PEM")]
    key: Option<PathBuf>,
    /// Slot size in bytes (e.g. 0x80000): fail if the image does not fit. 0: no check.
    #[arg(long, default_value = "0", value_parser = parse_u32)]
    slot_size: u32,
    /// Header size (imgtool's --header-size).
    #[arg(long, default_value = "0x400", value_parser = parse_header_size)]
    header_size: u16,
    /// Pad to --slot-size and mark the image confirmed in the slot's trailer (imgtool's
    /// --pad --confirm): a factory image, booted without a trial.
    #[arg(long)]
    confirm: bool,
    /// Where to write the signed image.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

/// Signs and says what it signed.
pub fn run(args: SignArgs) -> Result<ExitCode> {
    let SignArgs { input, version, key, slot_size, header_size, confirm, output } = args;
    let req = twinbed::image::SignRequest { input, output, version, key, slot_size, header_size, confirm };
    let s = twinbed::image::sign_file(&req)?;
    println!(
        "xtask: signed {} ({} bytes of payload from 0x{:08x}) -> {} ({} bytes), version {}, {}",
        req.input.display(),
        s.payload_len,
        s.load_addr,
        req.output.display(),
        s.image_len,
        req.version,
        if s.dev_key { "DEVELOPMENT key (never for devices in the field)" } else { "your key" }
    );
    Ok(ExitCode::SUCCESS)
}

/// A number in decimal or 0x-hex.
fn parse_u32(s: &str) -> Result<u32, String> {
    let s = s.replace('_', "");
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("`{s}` is not a number (decimal or 0x-hex)"))
}

/// A header size: a number ([`parse_u32`]) below 64 KiB.
fn parse_header_size(s: &str) -> Result<u16, String> {
    u16::try_from(parse_u32(s)?).map_err(|_| "--header-size must be below 64 KiB".to_owned())
}
