//! twinbed OTA feed (`twinbed-ota-feed`): the host-side test channel an OTA agent downloads an
//! update image from, until the modem and MQTT path exists (issue #5).
//!
//! A testbed device of our own, in address space QEMU leaves unimplemented (its ID reads 0
//! there). The host offers an image ([`OtaFeed::offer`]) and says how much of it has "arrived"
//! so far ([`OtaFeed::set_available`]): a transfer that stops half way is a dropped link, and
//! the firmware must resume when more arrives, possibly after a reboot. The firmware reads the
//! image a word at a time from any offset below `AVAIL`.
//!
//! # Registers (offsets from the base)
//! | offset | name | access | meaning |
//! |---|---|---|---|
//! | 0x00 | ID | RO | [`ID`] ("TBOT"); 0 on QEMU |
//! | 0x04 | SIZE | RO | bytes of the image on offer (0: none) |
//! | 0x08 | AVAIL | RO | bytes that have arrived (`<= SIZE`) |
//! | 0x0C | OFFSET | RW | byte offset of the next DATA read (word-aligned) |
//! | 0x10 | DATA | RO | the word at OFFSET (bytes past SIZE read 0xFF); OFFSET += 4. Reading at or past AVAIL returns 0 and sets STALL |
//! | 0x14 | STATUS | RO, W1C | bit 0 STALL: a DATA read came before its data arrived |
//!
//! The offsets, ID and STATUS bits are the contract's ([`twinbed_contract::ota_feed`]), which
//! the firmware's driver uses too. Registers are word-only: byte and halfword accesses are guest
//! errors, and so is an OFFSET that is not a multiple of 4.
//!
//! The feed keeps its image and what has arrived across system resets and power cycles (it is
//! the network, not the device); a reset restarts the device's view (OFFSET 0, STALL clear).
//! It draws no current the board accounts for.

use super::regs::{self, RegFile, RegMap, Registers};
use super::{bad_write, Ctx, Device, FromBoard, IrqOutputs, PeriphError, Size};
use serde::{Deserialize, Serialize};
use twinbed_contract::ota_feed::{reg, status::STALL};

/// The ID register's value ("TBOT" in little-endian bytes).
pub use twinbed_contract::ota_feed::ID;

crate::registers! {
    /// The feed's registers.
    pub enum Reg for "ota-feed", Word {
        /// Identification: [`ID`].
        #[doc(alias = "ID")]
        Id = reg::ID, RO, reset = ID;
        /// Bytes of the image on offer (0: none).
        #[doc(alias = "SIZE")]
        Size = reg::SIZE, RO;
        /// Bytes that have arrived.
        #[doc(alias = "AVAIL")]
        Avail = reg::AVAIL, RO;
        /// Byte offset of the next DATA read (word-aligned).
        #[doc(alias = "OFFSET")]
        Offset = reg::OFFSET, RW;
        /// The word at OFFSET; OFFSET += 4.
        #[doc(alias = "DATA")]
        Data = reg::DATA, RO;
        /// Bit 0 STALL (write 1 to clear): a DATA read came before its data arrived.
        #[doc(alias = "STATUS")]
        Status = reg::STATUS, W1C, reset = 0, mask = STALL;
    }
}

/// The feed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtaFeed {
    image: Vec<u8>,
    available: u32,
    offset: u32,
    /// ID, STATUS.
    regs: RegFile<Reg>,
}

impl OtaFeed {
    /// An empty feed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Offers `image`, all of it arrived.
    pub fn offer(&mut self, image: Vec<u8>) {
        self.available = u32::try_from(image.len()).unwrap_or(u32::MAX);
        self.image = image;
    }

    /// Makes only the first `bytes` of the image available (the rest has not arrived yet).
    pub fn set_available(&mut self, bytes: u32) {
        self.available = bytes.min(self.size());
    }

    /// Bytes on offer.
    pub fn size(&self) -> u32 {
        u32::try_from(self.image.len()).unwrap_or(u32::MAX)
    }

    /// Bytes arrived.
    pub fn available(&self) -> u32 {
        self.available
    }

    fn word(&self, at: u32) -> u32 {
        let b = |i: u32| self.image.get((at + i) as usize).copied().unwrap_or(0xff);
        u32::from_le_bytes([b(0), b(1), b(2), b(3)])
    }
}

impl Registers for OtaFeed {
    type Reg = Reg;

    fn regs(&mut self) -> &mut RegFile<Reg> {
        &mut self.regs
    }

    fn read_reg(&mut self, reg: Reg, stored: u32, _: &mut Ctx<'_>) -> u32 {
        match reg {
            Reg::Size => self.size(),
            Reg::Avail => self.available,
            Reg::Offset => self.offset,
            Reg::Data => {
                let at = self.offset;
                if at >= self.available {
                    tracing::debug!(target: "guest", "ota-feed: read at {at} before it arrived (AVAIL {})", self.available);
                    self.regs[Reg::Status] |= STALL;
                    return 0;
                }
                self.offset = at.wrapping_add(4);
                self.word(at)
            }
            Reg::Id | Reg::Status => stored,
        }
    }

    fn write_reg(&mut self, reg: Reg, value: u32, _: &mut Ctx<'_>) {
        if reg == Reg::Offset {
            if value.is_multiple_of(4) {
                self.offset = value;
            } else {
                bad_write(Reg::MODEL, reg::OFFSET, Size::Word, value);
            }
        }
    }
}

impl Device for OtaFeed {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        regs::read(self, offset, size, ctx)
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        regs::write(self, offset, size, value, ctx);
    }

    fn reset(&mut self) {
        // The network keeps what it offers; only the device's view restarts.
        self.offset = 0;
        self.regs.reset();
    }
}

impl FromBoard for OtaFeed {
    const IRQ_OUTPUTS: usize = 0;

    fn from_board(
        _: &twinbed_board::Peripheral,
        _: u8,
        _: IrqOutputs,
        _: &twinbed_board::Board,
    ) -> Result<Self, PeriphError> {
        Ok(Self::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periph::{IrqLines, Output};

    #[test]
    fn reads_words_up_to_what_arrived() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut c = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        let mut f = OtaFeed::new();
        assert_eq!(f.read(0x04, Size::Word, &mut c), 0);
        f.offer(vec![1, 2, 3, 4, 5, 6]);
        f.set_available(4);
        assert_eq!((f.read(0x00, Size::Word, &mut c), f.read(0x04, Size::Word, &mut c)), (ID, 6));
        assert_eq!(f.read(0x10, Size::Word, &mut c), 0x0403_0201);
        assert_eq!(f.read(0x10, Size::Word, &mut c), 0, "not arrived yet");
        assert_eq!(f.read(0x14, Size::Word, &mut c), 1, "STALL");
        f.write(0x14, Size::Word, 1, &mut c);
        f.set_available(6);
        assert_eq!(f.read(0x10, Size::Word, &mut c), 0xffff_0605, "past SIZE reads 0xff");
        f.write(0x0c, Size::Word, 0, &mut c);
        assert_eq!(f.read(0x10, Size::Word, &mut c), 0x0403_0201, "any offset, again");
    }
}
