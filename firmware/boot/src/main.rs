//! twinbed's A/B bootloader for mps2-an385: a thin binary around `abboot` (which slot, trial,
//! revert, downgrade refusal, all recorded power-cut safely in the slots' trailers) and
//! `mcuimage` (MCUboot image format: SHA-256 and Ed25519 signature, checked against the key
//! compiled in: the repository's development key for now).
//!
//! Build it for the bootloader area (`TWINBED_SLOT=boot`, see firmware/bsp/build.rs); the
//! images it boots are linked for their slot (`TWINBED_SLOT=a|b`) and signed with
//! `cargo xtask sign`. It prints one `boot:` line per decision (the events of
//! `abboot::select`), then jumps to the chosen image: VTOR and MSP from its vector table, right
//! after the 0x400-byte image header. With no bootable image it says why and exits through
//! semihosting with status 1. It needs the twinbed flash controller to record trials: on QEMU,
//! which has none, it says so and exits 1.
#![no_std]
#![no_main]

use core::fmt;
use core::ops::Range;
use cortex_m_rt::entry;
use cortex_m_semihosting::debug;
use embedded_storage::nor_flash::ReadNorFlash;
use panic_semihosting as _;
use twinbed_bsp::flash::{self, Flash};
use twinbed_bsp::map::{self, ab};
use twinbed_bsp::println;

/// Why an image was refused.
#[derive(Debug)]
enum Reject {
    Image(mcuimage::ImageError),
    Read(u32),
    HeaderSize(u16),
    /// The reset vector points outside this slot's image: linked for the other slot (or
    /// another layout).
    WrongSlot(u32),
    /// The initial stack pointer is outside this board's RAM: built for another board.
    WrongBoard(u32),
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reject::Image(e) => write!(f, "{e}"),
            Reject::Read(off) => write!(f, "flash read failed at +0x{off:x}"),
            Reject::HeaderSize(s) => {
                write!(f, "header size 0x{s:x}, but images are linked after 0x{:x}", ab::HEADER)
            }
            Reject::WrongSlot(pc) => write!(f, "linked for another slot (reset vector 0x{pc:08x})"),
            Reject::WrongBoard(sp) => {
                write!(f, "built for another board (initial stack 0x{sp:08x} outside RAM)")
            }
        }
    }
}

/// Verifies the image in `area` of the flash: the signature, and the header size the image was
/// linked for.
fn check(flash: &mut Flash, _slot: abboot::Slot, area: Range<u32>) -> Result<abboot::Version, Reject> {
    let start = area.start;
    let mut read = |off: u32, buf: &mut [u8]| flash.read(start + off, buf);
    let image =
        mcuimage::verify_from(&mut read, area.end - area.start, &mcuimage::DEV_PUBLIC_KEY).map_err(|e| {
            match e {
                mcuimage::VerifyError::Image(e) => Reject::Image(e),
                mcuimage::VerifyError::Read { offset, .. } => Reject::Read(offset),
            }
        })?;
    if u32::from(image.header().hdr_size) != ab::HEADER {
        return Err(Reject::HeaderSize(image.header().hdr_size));
    }
    // The vector table right after the header: an image linked for this slot starts its code
    // here, and its stack lies in this board's RAM.
    let mut vt = [0u8; 8];
    flash.read(start + ab::HEADER, &mut vt).map_err(|_| Reject::Read(ab::HEADER))?;
    let sp = u32::from_le_bytes([vt[0], vt[1], vt[2], vt[3]]);
    let reset = u32::from_le_bytes([vt[4], vt[5], vt[6], vt[7]]) & !1;
    let code_start = flash.base() + start + ab::HEADER;
    if !(code_start..code_start + image.header().img_size).contains(&reset) {
        return Err(Reject::WrongSlot(reset));
    }
    if !(map::RAM_BASE..=map::RAM_BASE + map::RAM_SIZE).contains(&sp) {
        return Err(Reject::WrongBoard(sp));
    }
    Ok(image.version())
}

fn fail() -> ! {
    debug::exit(debug::EXIT_FAILURE);
    loop {
        cortex_m::asm::wfi();
    }
}

#[entry]
fn main() -> ! {
    twinbed_bsp::uart::Uart::console().enable_tx();
    println!("boot: twinbed A/B bootloader {}", env!("CARGO_PKG_VERSION"));
    let Some(mut flash) = Flash::take() else {
        println!(
            "boot: no flash controller (ID reads 0: not twinbed's engine); cannot record trials, halting"
        );
        fail();
    };
    let layout = abboot::Layout::new(ab::SLOT_A, ab::SLOT_B);
    let mut checker = check;
    match abboot::select(&mut flash, &layout, &mut checker) {
        Ok(choice) => {
            for e in &choice.events {
                println!("boot: {e}");
            }
            let vector_table = flash.base() + choice.image.start + ab::HEADER;
            // SAFETY: the image passed its signature check and was linked for this address
            // (its header size is the one the slots' link scripts leave); its first two words
            // are its initial stack pointer and reset vector.
            unsafe {
                (*cortex_m::peripheral::SCB::PTR).vtor.write(vector_table);
                cortex_m::asm::bootload(vector_table as *const u32)
            }
        }
        Err(abboot::BootError::NoBootableImage { events }) => {
            for e in &events {
                println!("boot: {e}");
            }
            println!("boot: no bootable image in slot A or B; halting");
            fail()
        }
        Err(e) => {
            println!("boot: {e}");
            fail()
        }
    }
}

// The flash driver's page size is the layout's erase unit: the slots must be whole pages.
const _: () = assert!(
    ab::SLOT_A.start.is_multiple_of(flash::PAGE_SIZE as u32)
        && ab::SLOT_B.end.is_multiple_of(flash::PAGE_SIZE as u32)
);
