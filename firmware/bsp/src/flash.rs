//! The twinbed NOR flash controller (`twinbed-nor-flash`, at [`map::FLASH_CTRL`]) as an
//! `embedded-storage` [`NorFlash`]: erase by 4 KiB page, program by 32-bit word, reads straight
//! from the (execute-in-place) flash memory.
//!
//! The controller is a testbed device: twinbed's engine has it, QEMU does not (its address reads
//! 0 there), so [`Flash::take`] returns `None` on QEMU and firmware can say so and carry on.
//! Register map: `platforms/engine/src/periph/nor_flash.rs` in the twinbed repository.
//!
//! Offsets are relative to the start of the flash (its `BASE` register; 0 on mps2-an385, where
//! the flash is SSRAM1 and also holds the running code). Operations are polled: each call
//! returns when the controller is done (a page erase takes 20 ms of virtual time).

use crate::map;
use core::ptr::{read_volatile, write_volatile};
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};

/// The ID register's value when the controller is there.
pub const ID: u32 = 0x4C46_4254;

const REG_ID: usize = 0x00;
const REG_STATUS: usize = 0x04;
const REG_ADDR: usize = 0x0c;
const REG_DATA: usize = 0x10;
const REG_CMD: usize = 0x14;
const REG_PAGE_SIZE: usize = 0x18;
const REG_BASE: usize = 0x1c;
const REG_SIZE: usize = 0x20;

const CMD_PROGRAM: u32 = 1;
const CMD_ERASE: u32 = 2;

const BUSY: u32 = 1 << 0;
/// ALIGN_ERR | RANGE_ERR | PROG_ERR | BUSY_ERR.
const ERRORS: u32 = 0b11_1100;
/// Every write-1-to-clear bit (DONE and the errors).
const W1C: u32 = 0b11_1110;

/// Why a flash operation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Offset or length not a multiple of the operation's granularity.
    NotAligned,
    /// Outside the flash.
    OutOfBounds,
    /// The controller reported these STATUS error bits (bit 2 ALIGN, 3 RANGE, 4 PROG: a
    /// program asked to turn a 0 into a 1, 5 BUSY).
    Controller(u32),
}

impl NorFlashError for Error {
    fn kind(&self) -> NorFlashErrorKind {
        match self {
            Error::NotAligned => NorFlashErrorKind::NotAligned,
            Error::OutOfBounds => NorFlashErrorKind::OutOfBounds,
            Error::Controller(_) => NorFlashErrorKind::Other,
        }
    }
}

/// The flash, through its controller.
pub struct Flash {
    base: u32,
    size: u32,
    sleep_while_erasing: bool,
}

impl Flash {
    /// The flash, if the controller answers (twinbed's engine); `None` where its ID register
    /// does not read [`ID`] (QEMU).
    pub fn take() -> Option<Flash> {
        if reg(REG_ID) != ID || reg(REG_PAGE_SIZE) != PAGE_SIZE as u32 {
            return None;
        }
        Some(Flash { base: reg(REG_BASE), size: reg(REG_SIZE), sleep_while_erasing: false })
    }

    /// Waits for erases (20 ms each) with WFI between looks at the controller instead of
    /// spinning: for programs with a periodic interrupt running (the SysTick clock of
    /// [`crate::init`]), which then sleep through an erase. Programming a word (40 µs) is
    /// always polled.
    pub fn sleep_while_erasing(&mut self, on: bool) {
        self.sleep_while_erasing = on;
    }

    /// First address of the flash in the memory map.
    pub fn base(&self) -> u32 {
        self.base
    }

    fn run(&mut self, cmd: u32, offset: u32, data: u32) -> Result<(), Error> {
        set(REG_STATUS, W1C);
        set(REG_ADDR, self.base + offset);
        set(REG_DATA, data);
        set(REG_CMD, cmd);
        loop {
            let status = reg(REG_STATUS);
            if status & BUSY == 0 {
                return match status & ERRORS {
                    0 => Ok(()),
                    e => Err(Error::Controller(e)),
                };
            }
            if cmd == CMD_ERASE && self.sleep_while_erasing {
                cortex_m::asm::wfi();
            }
        }
    }

    fn check(&self, offset: u32, len: usize, align: usize) -> Result<(), Error> {
        if !(offset as usize).is_multiple_of(align) || !len.is_multiple_of(align) {
            return Err(Error::NotAligned);
        }
        if offset as usize > self.size as usize || len > (self.size - offset) as usize {
            return Err(Error::OutOfBounds);
        }
        Ok(())
    }
}

/// Erase granularity.
pub const PAGE_SIZE: usize = 4096;

impl ErrorType for Flash {
    type Error = Error;
}

impl ReadNorFlash for Flash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Error> {
        self.check(offset, bytes.len(), 1)?;
        for (i, b) in bytes.iter_mut().enumerate() {
            let addr = (self.base + offset) as usize + i;
            // SAFETY: inside the flash, which is mapped memory (checked above).
            *b = unsafe { read_volatile(addr as *const u8) };
        }
        Ok(())
    }

    fn capacity(&self) -> usize {
        self.size as usize
    }
}

impl NorFlash for Flash {
    const WRITE_SIZE: usize = 4;
    const ERASE_SIZE: usize = PAGE_SIZE;

    fn erase(&mut self, from: u32, to: u32) -> Result<(), Error> {
        if to < from {
            return Err(Error::OutOfBounds);
        }
        self.check(from, (to - from) as usize, PAGE_SIZE)?;
        let mut page = from;
        while page < to {
            self.run(CMD_ERASE, page, 0)?;
            page += PAGE_SIZE as u32;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        self.check(offset, bytes.len(), 4)?;
        for (i, w) in bytes.chunks_exact(4).enumerate() {
            let word = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            self.run(CMD_PROGRAM, offset + 4 * i as u32, word)?;
        }
        Ok(())
    }
}

fn reg(offset: usize) -> u32 {
    // SAFETY: a register of the flash controller (or a RAZ/WI hole on QEMU); reading it has no
    // side effects.
    unsafe { read_volatile((map::FLASH_CTRL + offset) as *const u32) }
}

fn set(offset: usize, value: u32) {
    // SAFETY: a register of the flash controller; writes go nowhere on QEMU.
    unsafe { write_volatile((map::FLASH_CTRL + offset) as *mut u32, value) }
}
