//! The twinbed NOR flash controller (`twinbed-nor-flash`, at [`map::FLASH_CTRL`]) as an
//! `embedded-storage` [`NorFlash`]: erase by 4 KiB page, program by 32-bit word or, for whole
//! aligned 256-byte rows, a row at a time (one flash operation instead of 64); reads straight
//! from the (execute-in-place) flash memory.
//!
//! The controller is a testbed device: twinbed's engine has it, QEMU does not (its address reads
//! 0 there), so [`Flash::take`] returns `None` on QEMU and firmware can say so and carry on.
//! Register map: [`twinbed_contract::nor_flash`].
//!
//! Offsets are relative to the start of the flash (its `BASE` register; 0 on mps2-an385, where
//! the flash is SSRAM1 and also holds the running code). Each call returns when the controller
//! is done (a page erase takes 20 ms of virtual time, a row 0.7 ms, a word 40 µs). The core
//! sleeps meanwhile: WFE, woken by the controller's interrupt through SCR.SEVONPEND, with the
//! interrupt itself left disabled in the NVIC, so no handler is needed and other interrupts
//! (the SysTick clock) run as usual.

use crate::map;
use core::ptr::{read_volatile, write_volatile};
use embedded_storage::nor_flash::{ErrorType, NorFlash, NorFlashError, NorFlashErrorKind, ReadNorFlash};

/// The ID register's value when the controller is there.
pub use twinbed_contract::nor_flash::ID;
use twinbed_contract::nor_flash::{cmd, reg as r, status};

/// Bytes programmed by one row operation.
pub const ROW_SIZE: usize = twinbed_contract::nor_flash::ROW_SIZE as usize;

/// SCR (sleep control) and its SEVONPEND bit; NVIC's interrupt clear-pending register for
/// IRQs 0-31.
const SCR: usize = 0xE000_ED10;
const SEVONPEND: u32 = 1 << 4;
const NVIC_ICPR0: usize = 0xE000_E280;

const BUSY: u32 = status::BUSY;
/// ALIGN_ERR | RANGE_ERR | PROG_ERR | BUSY_ERR.
const ERRORS: u32 = status::ERRORS;
/// Every write-1-to-clear bit (DONE and the errors).
const W1C: u32 = status::W1C;

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
}

impl Flash {
    /// The flash, if the controller answers (twinbed's engine); `None` where its ID register
    /// does not read [`ID`] (QEMU).
    pub fn take() -> Option<Flash> {
        if reg(r::ID) != ID || reg(r::PAGE_SIZE) != PAGE_SIZE as u32 || reg(r::ROW_SIZE) != ROW_SIZE as u32 {
            return None;
        }
        // SAFETY: SCR is the core's sleep control register; SEVONPEND only adds wake-up events
        // for WFE (which only this driver uses).
        unsafe { write_volatile(SCR as *mut u32, read_volatile(SCR as *const u32) | SEVONPEND) };
        set(r::CTRL, 1);
        Some(Flash { base: reg(r::BASE), size: reg(r::SIZE) })
    }

    /// First address of the flash in the memory map.
    pub fn base(&self) -> u32 {
        self.base
    }

    fn run(&mut self, cmd: u32, offset: u32, data: u32) -> Result<(), Error> {
        // Drop the interrupt line (W1C), then its pending bit, so that this operation's DONE is
        // a fresh inactive -> pending transition: that is what SEVONPEND turns into an event.
        set(r::STATUS, W1C);
        // SAFETY: NVIC clear-pending register; IRQ FLASH_IRQ is never enabled, so this only
        // forgets a stale pending state.
        unsafe { write_volatile(NVIC_ICPR0 as *mut u32, 1 << map::FLASH_IRQ) };
        set(r::ADDR, self.base + offset);
        set(r::DATA, data);
        set(r::CMD, cmd);
        loop {
            let status = reg(r::STATUS);
            if status & BUSY == 0 {
                return match status & ERRORS {
                    0 => Ok(()),
                    e => Err(Error::Controller(e)),
                };
            }
            // Any event wakes it (an interrupt, SEV): the loop looks at STATUS again.
            cortex_m::asm::wfe();
        }
    }

    /// Programs the 256-byte row at `offset` (row-aligned) from `bytes`.
    fn program_row(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        for (i, w) in bytes.chunks_exact(4).enumerate() {
            set(r::ROW + 4 * i as u32, u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
        }
        self.run(cmd::PROGRAM_ROW, offset, 0)
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
pub const PAGE_SIZE: usize = twinbed_contract::nor_flash::PAGE_SIZE as usize;

impl ErrorType for Flash {
    type Error = Error;
}

impl ReadNorFlash for Flash {
    const READ_SIZE: usize = 1;

    fn read(&mut self, offset: u32, bytes: &mut [u8]) -> Result<(), Error> {
        self.check(offset, bytes.len(), 1)?;
        let at = (self.base + offset) as usize;
        if at.is_multiple_of(4) && bytes.len().is_multiple_of(4) {
            // Whole words: a quarter of the loads.
            for (i, w) in bytes.chunks_exact_mut(4).enumerate() {
                // SAFETY: an aligned word inside the flash, which is mapped memory (checked
                // above).
                w.copy_from_slice(&unsafe { read_volatile((at + 4 * i) as *const u32) }.to_le_bytes());
            }
            return Ok(());
        }
        for (i, b) in bytes.iter_mut().enumerate() {
            // SAFETY: inside the flash, which is mapped memory (checked above).
            *b = unsafe { read_volatile((at + i) as *const u8) };
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
            self.run(cmd::ERASE, page, 0)?;
            page += PAGE_SIZE as u32;
        }
        Ok(())
    }

    fn write(&mut self, offset: u32, bytes: &[u8]) -> Result<(), Error> {
        self.check(offset, bytes.len(), 4)?;
        let (mut at, mut rest) = (offset, bytes);
        while !rest.is_empty() {
            if (at as usize).is_multiple_of(ROW_SIZE) && rest.len() >= ROW_SIZE {
                self.program_row(at, &rest[..ROW_SIZE])?;
                (at, rest) = (at + ROW_SIZE as u32, &rest[ROW_SIZE..]);
            } else {
                let word = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
                self.run(cmd::PROGRAM, at, word)?;
                (at, rest) = (at + 4, &rest[4..]);
            }
        }
        Ok(())
    }
}

fn reg(offset: u32) -> u32 {
    // SAFETY: a register of the flash controller (or a RAZ/WI hole on QEMU); reading it has no
    // side effects.
    unsafe { read_volatile((map::FLASH_CTRL + offset as usize) as *const u32) }
}

fn set(offset: u32, value: u32) {
    // SAFETY: a register of the flash controller; writes go nowhere on QEMU.
    unsafe { write_volatile((map::FLASH_CTRL + offset as usize) as *mut u32, value) }
}
