//! The twinbed NOR flash controller through the BSP's `embedded-storage` driver
//! (`twinbed_bsp::flash`): erase to 0xFF, program only clears bits, a 0 -> 1 program is
//! reported, alignment and bounds are checked. A native-engine program (the `native-` prefix
//! keeps it out of the byte-identical QEMU comparison): QEMU has no such controller, and there
//! the program checks that the driver sees that, says so and exits 0.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use embedded_storage::nor_flash::{NorFlash, ReadNorFlash};
use panic_semihosting as _;
use twinbed_bsp::flash::{Error, Flash, PAGE_SIZE};
use twinbed_bsp::println;
use twinbed_selftest::Checker;

/// A page far above the program (ssram1 is 4 MiB; the program uses the first few KiB).
const PAGE: u32 = 0x003F_0000;

#[entry]
fn main() -> ! {
    let mut t = Checker::start("native-flash", "twinbed NOR flash controller via embedded-storage");
    let Some(mut flash) = Flash::take() else {
        println!("no flash controller (ID register reads 0): not twinbed's engine, skipped");
        t.finish();
    };
    t.check("capacity", 0x0040_0000, flash.capacity() as u32);
    t.check_true("erase page", flash.erase(PAGE, PAGE + PAGE_SIZE as u32).is_ok());
    let mut buf = [0u8; 16];
    t.check_true("read", flash.read(PAGE + 8, &mut buf).is_ok());
    t.check_eq("erased reads 0xff", &[0xffu8; 16], &buf);

    let pattern = [0x12u8, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0];
    t.check_true("program 8 bytes", flash.write(PAGE + 8, &pattern).is_ok());
    let mut got = [0u8; 8];
    let _ = flash.read(PAGE + 8, &mut got);
    t.check_eq("read back", &pattern, &got);

    // Clearing more bits is fine; asking for a 1 where there is a 0 is reported, and the word
    // becomes the AND (as NOR cells do).
    t.check_true("clear more bits", flash.write(PAGE + 8, &[0x02, 0x30, 0x50, 0x70]).is_ok());
    let r = flash.write(PAGE + 12, &[0xff, 0xff, 0xff, 0xff]);
    t.check_eq("0 -> 1 reported", &Err(Error::Controller(1 << 4)), &r);
    let _ = flash.read(PAGE + 8, &mut got);
    t.check_eq("AND of old and new", &[0x02u8, 0x30, 0x50, 0x70, 0x9a, 0xbc, 0xde, 0xf0], &got);

    t.check_eq("misaligned write", &Err(Error::NotAligned), &flash.write(PAGE + 2, &[0; 4]));
    t.check_eq("short write", &Err(Error::NotAligned), &flash.write(PAGE, &[0; 3]));
    t.check_eq(
        "misaligned erase",
        &Err(Error::NotAligned),
        &flash.erase(PAGE + 4, PAGE + 4 + PAGE_SIZE as u32),
    );
    t.check_eq("write past the end", &Err(Error::OutOfBounds), &flash.write(0x0040_0000, &[0; 4]));
    t.check_true("erase again", flash.erase(PAGE, PAGE + PAGE_SIZE as u32).is_ok());
    let _ = flash.read(PAGE + 8, &mut got);
    t.check_eq("erased again", &[0xffu8; 8], &got);
    t.finish()
}
