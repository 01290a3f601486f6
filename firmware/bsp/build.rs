//! Puts memory.x where the linker (cortex-m-rt's link.x) finds it.
//!
//! `TWINBED_SLOT` (read at build time) picks where the program's code goes in SSRAM1, the flash
//! of the A/B layout (`twinbed_contract::layout`, which this script reads, so the linker script
//! and the code agree by construction):
//! - unset or empty: at 0, the whole 4 MiB (a plain program, as QEMU loads it);
//! - `boot`: the bootloader area at 0 (`layout::BOOT`, 128 KiB);
//! - `a` / `b`: slot A / B, after the image's 0x400-byte MCUboot header, up to the slot's last
//!   4 KiB page (kept for the slot's trailer): `layout::code`.
//!
//! Build different slots into different target directories: the variable changes the binary.
//!
//! No program is linked into the boot id log after slot B (`layout::BOOT_ID`): the slot regions
//! end where it starts (the contract checks its areas do not overlap). A plain program's region
//! is the whole SSRAM1; the app checks at run time that its image ends before the log
//! (`twinbed_bsp::image::end`).
use std::{env, fs, ops::Range, path::PathBuf};
use twinbed_contract::layout;
use twinbed_contract::version::Slot;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=TWINBED_SLOT");
    println!("cargo:rerun-if-changed=memory.x");
    let slot = env::var("TWINBED_SLOT").unwrap_or_default();
    let memory = match slot.as_str() {
        "" => include_str!("memory.x").to_owned(),
        "boot" => memory_x("the A/B bootloader area", layout::BOOT),
        "a" => memory_x("slot A, after the image header", layout::code(Slot::A)),
        "b" => memory_x("slot B, after the image header", layout::code(Slot::B)),
        other => panic!("TWINBED_SLOT={other:?}: expected `a`, `b`, `boot` or nothing"),
    };
    fs::write(out.join("memory.x"), memory).expect("write memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
}

/// The linker script of a program whose code goes in `flash`; data in the 4 MiB of SSRAM2/3.
fn memory_x(what: &str, flash: Range<u32>) -> String {
    let (origin, length) = (flash.start, flash.end - flash.start);
    format!(
        "/* mps2-an385, TWINBED_SLOT build: code in {what} (see firmware/bsp/build.rs). */\n\
         MEMORY\n{{\n  FLASH : ORIGIN = 0x{origin:08x}, LENGTH = 0x{length:x}\n  RAM   : ORIGIN = 0x20000000, LENGTH = 4M\n}}\n"
    )
}
