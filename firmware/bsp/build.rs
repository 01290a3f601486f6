//! Puts memory.x where the linker (cortex-m-rt's link.x) finds it.
//!
//! `TWINBED_SLOT` (read at build time) picks where the program's code goes in SSRAM1, the flash
//! of the A/B layout (`twinbed_bsp::map::ab`):
//! - unset or empty: at 0, the whole 4 MiB (a plain program, as QEMU loads it);
//! - `boot`: the bootloader area at 0 (128 KiB);
//! - `a` / `b`: slot A / B, after the image's 0x400-byte MCUboot header, up to the slot's last
//!   4 KiB page (kept for the slot's trailer).
//!
//! Build different slots into different target directories: the variable changes the binary.
//!
//! No program is linked into the boot id log after slot B (`map::BOOT_ID`): the slot regions
//! end where it starts (checked below). A plain program's region is the whole SSRAM1; the app
//! checks at run time that its image ends before the log (`twinbed_bsp::image::end`).
use std::{env, fs, path::PathBuf};

const BOOT: (u32, u32) = (0x0000_0000, 0x0002_0000);
const SLOT_A: (u32, u32) = (0x0002_0000, 0x0008_0000);
const SLOT_B: (u32, u32) = (0x000A_0000, 0x0008_0000);
// 1 KiB, not imgtool's usual 0x200: cortex-m-rt's vector table (16 + 240 entries) must be
// aligned to 1 KiB, and it comes right after the header.
const HEADER: u32 = 0x400;
const TRAILER_PAGE: u32 = 0x1000;
/// `map::BOOT_ID.start`: the boot id log, which no linked program may reach.
const BOOT_ID_START: u32 = 0x0012_0000;
const _: () = assert!(
    BOOT.0 + BOOT.1 <= BOOT_ID_START
        && SLOT_A.0 + SLOT_A.1 <= BOOT_ID_START
        && SLOT_B.0 + SLOT_B.1 <= BOOT_ID_START
);

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rerun-if-env-changed=TWINBED_SLOT");
    println!("cargo:rerun-if-changed=memory.x");
    let slot = env::var("TWINBED_SLOT").unwrap_or_default();
    let memory = match slot.as_str() {
        "" => include_str!("memory.x").to_owned(),
        "boot" => memory_x("the A/B bootloader area", BOOT.0, BOOT.1),
        "a" => {
            memory_x("slot A, after the image header", SLOT_A.0 + HEADER, SLOT_A.1 - HEADER - TRAILER_PAGE)
        }
        "b" => {
            memory_x("slot B, after the image header", SLOT_B.0 + HEADER, SLOT_B.1 - HEADER - TRAILER_PAGE)
        }
        other => panic!("TWINBED_SLOT={other:?}: expected `a`, `b`, `boot` or nothing"),
    };
    fs::write(out.join("memory.x"), memory).expect("write memory.x to OUT_DIR");
    println!("cargo:rustc-link-search={}", out.display());
}

fn memory_x(what: &str, origin: u32, length: u32) -> String {
    format!(
        "/* mps2-an385, TWINBED_SLOT build: code in {what} (see firmware/bsp/build.rs). */\n\
         MEMORY\n{{\n  FLASH : ORIGIN = 0x{origin:08x}, LENGTH = 0x{length:x}\n  RAM   : ORIGIN = 0x20000000, LENGTH = 4M\n}}\n"
    )
}
