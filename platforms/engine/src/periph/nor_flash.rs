//! twinbed NOR flash controller (`twinbed-nor-flash`): programs and erases one memory region of
//! the board with NOR semantics, in virtual time, and can be cut off mid-operation.
//!
//! This is a testbed device of our own (there is no such block on the real AN385, and QEMU has
//! none): it sits in address space QEMU leaves unimplemented, so on QEMU every register reads 0
//! and firmware can tell it is missing from the ID register. The memory it programs stays
//! readable (and executable in place) as ordinary memory; only the controller writes it with
//! NOR rules. CPU stores straight into the region still work as on QEMU (the region is SSRAM on
//! the AN385); firmware that wants flash behaviour goes through the controller.
//!
//! # NOR semantics
//! - ERASE sets a whole page (`PAGE_SIZE`, 4 KiB) to 0xFF; the address must be page-aligned.
//! - PROGRAM writes one 32-bit word at a word-aligned address and can only clear bits: the
//!   result is `old & DATA`. Asking for a 0 -> 1 change sets `STATUS.PROG_ERR` (the word still
//!   becomes `old & DATA`, as NOR cells do).
//! - PROGRAM_ROW programs a row of [`ROW_SIZE`] bytes (256, 64 words) at a row-aligned address
//!   from the controller's row buffer, with the same rule per word: one operation where a word
//!   program would take 64. This is the page program of serial NOR and the page buffer of
//!   internal flash such as the SAM3's: most of a firmware image goes in this way, and the power
//!   cut sweep has one operation per row to cut rather than one per word.
//! - An operation takes virtual time ([`PROGRAM_US`] per word, [`ROW_PROGRAM_US`] per row,
//!   [`ERASE_US`] per page);
//!   `STATUS.BUSY` is set meanwhile and the memory changes when it completes. A command given
//!   while busy is ignored and sets `STATUS.BUSY_ERR`.
//! - Contents persist across system reset and power cycles (they are the machine's memory).
//!
//! # Power cuts
//! The machine can cut power while an operation is in flight ([`tear`]): a program
//! then leaves a seeded random subset of the bits it was clearing cleared (in each word of a row),
//! an erase a seeded
//! random subset of the page's bits set, which is what a real cell array shows when its charge
//! pump stops half way. The same seed gives the same torn contents.
//!
//! # Registers (offsets from the base)
//! | offset | name | access | meaning |
//! |---|---|---|---|
//! | 0x00 | ID | RO | [`ID`] ("TBFL"); 0 on QEMU |
//! | 0x04 | STATUS | RO, W1C bits 1.. | bit 0 BUSY, 1 DONE, 2 ALIGN_ERR, 3 RANGE_ERR, 4 PROG_ERR, 5 BUSY_ERR |
//! | 0x08 | CTRL | RW | bit 0: interrupt on DONE or any error |
//! | 0x0C | ADDR | RW | absolute address of the word (PROGRAM) or page (ERASE) |
//! | 0x10 | DATA | RW | word to program |
//! | 0x14 | CMD | WO | 1 = PROGRAM, 2 = ERASE, 3 = PROGRAM_ROW |
//! | 0x18 | PAGE_SIZE | RO | 4096 |
//! | 0x1C | BASE | RO | first address of the flash |
//! | 0x20 | SIZE | RO | bytes of flash |
//! | 0x24 | OPS | RO | operations started since the machine was built (across resets and power cycles) |
//! | 0x28 | ROW_SIZE | RO | 256 |
//! | 0x100-0x1FC | ROW[0..64] | RW | the row buffer PROGRAM_ROW programs (kept across operations; reset to 0xFFFF_FFFF) |
//!
//! The offsets, ID, commands and STATUS bits are the contract's ([`twinbed_contract::nor_flash`]),
//! which the firmware's driver uses too. Registers are word-only: byte and halfword accesses are
//! guest errors.
//!
//! Not modelled: write protection/locking, read-while-write stalls (reads during an operation
//! see the old contents), wear.
//!
//! Energy: one rail (the controller's board name), `idle`, `program` (word or row) or `erase`
//! while an operation is in flight (the board's `flash_program_ua`, `flash_erase_ua`).

use super::regs::{self, RegFile, Registers};
use super::{Ctx, Device, FlashController, FromBoard, IrqOutputs, PeriphError, RailKind, RailSpec, RailState, RailView, Size};
use serde::{Deserialize, Serialize};
use twinbed_contract::nor_flash::{cmd, reg};

/// STATUS bits.
pub use twinbed_contract::nor_flash::status;
/// The ID register's value ("TBFL" in little-endian bytes).
pub use twinbed_contract::nor_flash::ID;
/// Erase granularity.
pub use twinbed_contract::nor_flash::PAGE_SIZE;
/// Row (page program) granularity.
pub use twinbed_contract::nor_flash::ROW_SIZE;
/// Words in a row.
pub use twinbed_contract::nor_flash::ROW_WORDS;

crate::registers! {
    /// The controller's registers.
    pub enum Reg for "nor-flash", Word {
        /// Identification: [`ID`].
        #[doc(alias = "ID")]
        Id = reg::ID, RO, reset = ID;
        /// BUSY, DONE and the errors; DONE and the errors are write-1-to-clear.
        #[doc(alias = "STATUS")]
        Status = reg::STATUS, W1C, reset = 0, mask = status::W1C;
        /// Bit 0: interrupt on DONE or any error.
        #[doc(alias = "CTRL")]
        Ctrl = reg::CTRL, RW, reset = 0, mask = 1;
        /// Absolute address of the word, row or page.
        #[doc(alias = "ADDR")]
        Addr = reg::ADDR, RW, reset = 0;
        /// The word to program.
        #[doc(alias = "DATA")]
        Data = reg::DATA, RW, reset = 0;
        /// Starts an operation.
        #[doc(alias = "CMD")]
        Cmd = reg::CMD, WO;
        /// Erase granularity.
        #[doc(alias = "PAGE_SIZE")]
        PageSize = reg::PAGE_SIZE, RO, reset = PAGE_SIZE;
        /// First address of the flash.
        #[doc(alias = "BASE")]
        Base = reg::BASE, RO;
        /// Bytes of flash.
        #[doc(alias = "SIZE")]
        Size = reg::SIZE, RO;
        /// Operations started since the machine was built.
        #[doc(alias = "OPS")]
        Ops = reg::OPS, RO;
        /// Row granularity.
        #[doc(alias = "ROW_SIZE")]
        RowSize = reg::ROW_SIZE, RO, reset = ROW_SIZE;
        /// The row buffer PROGRAM_ROW programs.
        #[doc(alias = "ROW")]
        Row[ROW_WORDS as u32] = reg::ROW, RW, reset = u32::MAX;
    }
}

/// Energy states of the controller's rail.
mod rail {
    pub const IDLE: usize = 0;
    pub const PROGRAM: usize = 1;
    pub const ERASE: usize = 2;
}

/// Time to program one word, in µs of virtual time.
pub const PROGRAM_US: u64 = 40;
/// Time to program one row, in µs of virtual time (typical 256-byte page program of serial NOR).
pub const ROW_PROGRAM_US: u64 = 700;
/// Time to erase one page, in µs of virtual time.
pub const ERASE_US: u64 = 20_000;

/// A flash operation: what to change in memory.
// A row's 256 bytes make this large; operations are few and short-lived, and keeping it `Copy`
// keeps the machine's flash bookkeeping simple.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlashOp {
    /// `word = old & value` at `addr`.
    Program {
        /// Absolute, word-aligned address.
        addr: u32,
        /// The word to program.
        value: u32,
    },
    /// `word = old & data[i]` for each word of the row at `addr`.
    ProgramRow {
        /// Absolute, row-aligned address.
        addr: u32,
        /// The row's words.
        data: Row,
    },
    /// The page at `addr` to 0xFF.
    Erase {
        /// Absolute, page-aligned address.
        addr: u32,
    },
}

/// The 64 words of a row (serialised as a sequence: serde's arrays stop at 32).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Row(pub [u32; ROW_WORDS]);

impl Serialize for Row {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(s)
    }
}

impl<'de> Deserialize<'de> for Row {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Vec::<u32>::deserialize(d)?;
        let n = v.len();
        v.try_into().map(Row).map_err(|_| serde::de::Error::invalid_length(n, &"64 words"))
    }
}

/// The controller.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NorFlash {
    base: u32,
    size: u32,
    /// STATUS, CTRL, ADDR, DATA, the row buffer (and the constant ID, PAGE_SIZE, ROW_SIZE).
    regs: RegFile<Reg>,
    ops: u32,
    /// The operation in flight and the cycle it completes at.
    busy: Option<(FlashOp, u64)>,
    /// Completed operations for the machine to apply to memory.
    done: Vec<FlashOp>,
    irqs: IrqOutputs,
}

impl NorFlash {
    /// A controller for the `size` bytes of flash at `base`.
    pub fn new(base: u32, size: u32, irqs: IrqOutputs) -> Self {
        Self { base, size, regs: RegFile::new(), ops: 0, busy: None, done: Vec::new(), irqs }
    }

    /// The STATUS register.
    pub fn status(&self) -> u32 {
        self.regs[Reg::Status]
    }

    /// The flash region: (base, size).
    pub fn region(&self) -> (u32, u32) {
        (self.base, self.size)
    }

    /// Operations started since the machine was built.
    pub fn ops(&self) -> u32 {
        self.ops
    }

    /// The operation in flight, if any.
    pub fn in_flight(&self) -> Option<FlashOp> {
        self.busy.map(|(op, _)| op)
    }

    /// The operation in flight and the cycle it completes at, if any (for energy accounting).
    pub fn busy_until(&self) -> Option<(FlashOp, u64)> {
        self.busy
    }

    /// Completed operations, for the machine to apply to memory (in order).
    pub fn take_done(&mut self) -> Vec<FlashOp> {
        std::mem::take(&mut self.done)
    }

    /// Power cut: the operation in flight (if any) stops half way; returns it so the machine
    /// can tear the memory it touched ([`tear`]). The controller forgets it.
    pub fn cut(&mut self) -> Option<FlashOp> {
        self.busy.take().map(|(op, _)| op)
    }

    fn update_irq(&mut self, ctx: &mut Ctx<'_>) {
        let pending = self.regs[Reg::Status] & status::W1C != 0;
        self.irqs.update(&[pending && self.regs[Reg::Ctrl] & 1 != 0], ctx.irq);
    }

    fn command(&mut self, command: u32, ctx: &mut Ctx<'_>) {
        if self.busy.is_some() {
            tracing::warn!(target: "guest", "nor-flash: command {command} while busy: ignored (BUSY_ERR)");
            self.regs[Reg::Status] |= status::BUSY_ERR;
            return;
        }
        let addr = self.regs[Reg::Addr];
        let (op, us, align) = match command {
            cmd::PROGRAM => (FlashOp::Program { addr, value: self.regs[Reg::Data] }, PROGRAM_US, 4),
            cmd::ERASE => (FlashOp::Erase { addr }, ERASE_US, PAGE_SIZE),
            cmd::PROGRAM_ROW => (FlashOp::ProgramRow { addr, data: self.row() }, ROW_PROGRAM_US, ROW_SIZE),
            other => {
                tracing::warn!(target: "guest", "nor-flash: unknown command {other}: ignored");
                return;
            }
        };
        if addr.wrapping_sub(self.base) >= self.size || self.size - addr.wrapping_sub(self.base) < align {
            tracing::warn!(target: "guest", "nor-flash: address 0x{addr:08x} outside the flash (RANGE_ERR)");
            self.regs[Reg::Status] |= status::RANGE_ERR;
            return;
        }
        if !addr.is_multiple_of(align) {
            tracing::warn!(target: "guest", "nor-flash: address 0x{addr:08x} not aligned to {align} (ALIGN_ERR)");
            self.regs[Reg::Status] |= status::ALIGN_ERR;
            return;
        }
        let cycles = us * u64::from(ctx.clock_hz) / 1_000_000;
        self.ops += 1;
        self.busy = Some((op, ctx.now + cycles.max(1)));
        self.regs[Reg::Status] = (self.regs[Reg::Status] & !status::DONE) | status::BUSY;
    }

    /// Reports a program that tries to set bits (called by the machine, which knows the old
    /// contents).
    pub fn flag_program_error(&mut self) {
        self.regs[Reg::Status] |= status::PROG_ERR;
    }

    /// The row buffer.
    fn row(&self) -> Row {
        let mut row = Row([u32::MAX; ROW_WORDS]);
        row.0.copy_from_slice(self.regs.slice(Reg::Row(0), ROW_WORDS));
        row
    }
}

impl Registers for NorFlash {
    type Reg = Reg;

    fn regs(&mut self) -> &mut RegFile<Reg> {
        &mut self.regs
    }

    fn read_reg(&mut self, reg: Reg, stored: u32, _: &mut Ctx<'_>) -> u32 {
        match reg {
            Reg::Base => self.base,
            Reg::Size => self.size,
            Reg::Ops => self.ops,
            _ => stored,
        }
    }

    fn write_reg(&mut self, reg: Reg, value: u32, ctx: &mut Ctx<'_>) {
        if reg == Reg::Cmd {
            self.command(value, ctx);
        }
    }
}

impl Device for NorFlash {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        regs::read(self, offset, size, ctx)
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        regs::write(self, offset, size, value, ctx);
        if size == Size::Word {
            // Any word write (even a refused one) brings the interrupt line up to date, e.g.
            // with a PROG_ERR the machine flagged after the operation completed.
            self.update_irq(ctx);
        }
    }

    fn advance(&mut self, ctx: &mut Ctx<'_>) {
        if let Some((op, at)) = self.busy {
            if ctx.now >= at {
                self.busy = None;
                self.done.push(op);
                self.regs[Reg::Status] = (self.regs[Reg::Status] & !status::BUSY) | status::DONE;
                self.update_irq(ctx);
            }
        }
    }

    fn next_deadline(&self) -> Option<u64> {
        self.busy.map(|(_, at)| at)
    }

    fn reset(&mut self) {
        // A system reset lets the operation in flight finish (the machine applies it); only a
        // power cut (`cut`) stops one half way.
        if let Some((op, _)) = self.busy.take() {
            self.done.push(op);
        }
        self.irqs.reset();
        self.regs.reset();
    }

    fn rails(&self, name: &str, power: &twinbed_board::Power) -> Vec<RailSpec> {
        vec![RailSpec {
            name: name.to_owned(),
            kind: RailKind::Flash,
            states: vec![
                ("idle", 0),
                ("program", power.flash_program_ua.thousandths()),
                ("erase", power.flash_erase_ua.thousandths()),
            ],
            initial: rail::IDLE,
            off: rail::IDLE,
            seen: 0,
        }]
    }

    /// `program` or `erase` while an operation is in flight, back to `idle` at its completion
    /// cycle.
    fn rail_state(&self, _: usize, rail: &RailView) -> RailState {
        let (state, until) = match self.busy {
            None => (rail::IDLE, None),
            Some((op, end)) => {
                let state = match op {
                    FlashOp::Erase { .. } => rail::ERASE,
                    FlashOp::Program { .. } | FlashOp::ProgramRow { .. } => rail::PROGRAM,
                };
                (state, Some((end, rail::IDLE)))
            }
        };
        RailState { state, until, seen: rail.seen }
    }

    fn flash_region(&self) -> Option<(u32, u32)> {
        Some(self.region())
    }

    fn flash_ops(&self) -> u32 {
        self.ops
    }

    fn flash_controller(&mut self) -> Option<&mut dyn FlashController> {
        Some(self)
    }
}

impl FlashController for NorFlash {
    fn take_done(&mut self) -> Vec<FlashOp> {
        NorFlash::take_done(self)
    }

    fn flag_program_error(&mut self) {
        NorFlash::flag_program_error(self)
    }

    fn cut(&mut self) -> Option<FlashOp> {
        NorFlash::cut(self)
    }
}

impl FromBoard for NorFlash {
    const IRQ_OUTPUTS: usize = 1;

    fn from_board(
        p: &twinbed_board::Peripheral,
        _: u8,
        irqs: IrqOutputs,
        board: &twinbed_board::Board,
    ) -> Result<Self, PeriphError> {
        let region = p.memory.as_deref().and_then(|m| board.memory.iter().find(|r| r.name == m));
        let Some(region) = region else {
            return Err(PeriphError::NoFlashMemory { name: p.name.clone() });
        };
        Ok(Self::new(region.base, region.size, irqs))
    }
}

/// The bytes a power cut leaves where `op` was in flight: `mem` is the memory the operation
/// covers ([`FlashOp::size`] bytes), changed in place from `seed`. The physics (which bits a cut
/// leaves changed, drawn from the seed) is the contract's [`twinbed_contract::tear`], shared
/// with abboot's test flash: the same seed tears the same bytes in both.
pub fn tear(op: FlashOp, mem: &mut [u8], seed: u64) {
    match op {
        FlashOp::Program { value, .. } => twinbed_contract::tear::program_words(&mut mem[..4], &[value], seed),
        FlashOp::ProgramRow { data, .. } => twinbed_contract::tear::program_words(mem, &data.0, seed),
        FlashOp::Erase { .. } => twinbed_contract::tear::erase(mem, seed),
    }
}

impl FlashOp {
    /// First address the operation changes.
    pub fn addr(&self) -> u32 {
        match *self {
            FlashOp::Program { addr, .. } | FlashOp::ProgramRow { addr, .. } | FlashOp::Erase { addr } => {
                addr
            }
        }
    }

    /// Bytes the operation changes.
    pub fn size(&self) -> usize {
        match self {
            FlashOp::Program { .. } => 4,
            FlashOp::ProgramRow { .. } => ROW_SIZE as usize,
            FlashOp::Erase { .. } => PAGE_SIZE as usize,
        }
    }

    /// Applies the completed operation to `mem` (its [`FlashOp::size`] bytes): programs clear
    /// bits, erases set them all. True if a program asked to set bits (PROG_ERR).
    pub fn apply(&self, mem: &mut [u8]) -> bool {
        let mut prog_err = false;
        let mut program = |w: &mut [u8], value: u32| {
            let old = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            prog_err |= value & !old != 0;
            w.copy_from_slice(&(old & value).to_le_bytes());
        };
        match self {
            FlashOp::Program { value, .. } => program(&mut mem[..4], *value),
            FlashOp::ProgramRow { data, .. } => {
                for (w, value) in mem.chunks_exact_mut(4).zip(data.0) {
                    program(w, value);
                }
            }
            FlashOp::Erase { .. } => mem.fill(0xff),
        }
        prog_err
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periph::{IrqLines, Output};

    fn ctx<'a>(now: u64, irq: &'a mut IrqLines, out: &'a mut Output) -> Ctx<'a> {
        Ctx { now, clock_hz: 25_000_000, irq, out }
    }

    #[test]
    fn program_takes_time_then_completes() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut f = NorFlash::new(0x1000_0000, 0x1_0000, IrqOutputs::new(&[30]));
        let mut c = ctx(100, &mut irq, &mut out);
        f.write(0x08, Size::Word, 1, &mut c);
        f.write(0x0c, Size::Word, 0x1000_0004, &mut c);
        f.write(0x10, Size::Word, 0x1234_5678, &mut c);
        f.write(0x14, Size::Word, 1, &mut c);
        assert_eq!(f.read(0x04, Size::Word, &mut c), status::BUSY);
        assert_eq!(f.next_deadline(), Some(100 + 40 * 25));
        // A second command while busy is refused.
        f.write(0x14, Size::Word, 2, &mut c);
        assert_ne!(f.read(0x04, Size::Word, &mut c) & status::BUSY_ERR, 0);
        let mut c = ctx(100 + 40 * 25, &mut irq, &mut out);
        f.advance(&mut c);
        assert_eq!(f.take_done(), vec![FlashOp::Program { addr: 0x1000_0004, value: 0x1234_5678 }]);
        assert_eq!(f.read(0x04, Size::Word, &mut c) & (status::BUSY | status::DONE), status::DONE);
        assert_eq!(irq.levels(), 1 << 30, "DONE raises the interrupt when enabled");
        assert_eq!(f.ops(), 1);
    }

    #[test]
    fn a_row_program_takes_the_row_buffer_in_one_operation() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut f = NorFlash::new(0, 0x2000, IrqOutputs::default());
        let mut c = ctx(0, &mut irq, &mut out);
        assert_eq!(f.read(0x28, Size::Word, &mut c), ROW_SIZE);
        assert_eq!(f.read(0x100, Size::Word, &mut c), u32::MAX, "the buffer resets erased");
        for i in 0..ROW_WORDS as u32 {
            f.write(0x100 + 4 * i, Size::Word, i * 3, &mut c);
        }
        assert_eq!(f.read(0x104, Size::Word, &mut c), 3);
        // A row must be row-aligned.
        f.write(0x0c, Size::Word, 0x80, &mut c);
        f.write(0x14, Size::Word, 3, &mut c);
        assert_eq!(f.read(0x04, Size::Word, &mut c), status::ALIGN_ERR);
        f.write(0x04, Size::Word, status::W1C, &mut c);
        f.write(0x0c, Size::Word, 0x100, &mut c);
        f.write(0x14, Size::Word, 3, &mut c);
        assert_eq!(f.next_deadline(), Some(ROW_PROGRAM_US * 25));
        let mut c = ctx(ROW_PROGRAM_US * 25, &mut irq, &mut out);
        f.advance(&mut c);
        let done = f.take_done();
        let [FlashOp::ProgramRow { addr: 0x100, data }] = done.as_slice() else { panic!("{done:?}") };
        assert!(data.0.iter().enumerate().all(|(i, &w)| w == 3 * i as u32));
        assert_eq!(f.ops(), 1);
        let mut mem = [0xffu8; ROW_SIZE as usize];
        assert!(!done[0].apply(&mut mem));
        assert_eq!(&mem[4..8], &3u32.to_le_bytes());
        // Programming a 1 where the row holds a 0 is a PROG_ERR, and the word keeps its 0s.
        mem[4] = 0;
        assert!(done[0].apply(&mut mem));
        // A torn row only clears bits the row was clearing, word by word.
        let mut torn = [0xffu8; ROW_SIZE as usize];
        tear(done[0], &mut torn, 9);
        for (i, w) in torn.chunks_exact(4).enumerate() {
            let w = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
            assert_eq!(w & (3 * i as u32), 3 * i as u32, "word {i}: a bit the row keeps was cleared");
        }
        assert_ne!(torn, [0xffu8; ROW_SIZE as usize], "some bits were cleared");
        let back: FlashOp = postcard::from_bytes(&postcard::to_allocvec(&done[0]).unwrap()).unwrap();
        assert_eq!(back, done[0], "a row in flight survives a snapshot");
    }

    #[test]
    fn bad_addresses_are_refused() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut f = NorFlash::new(0, 0x2000, IrqOutputs::default());
        let mut c = ctx(0, &mut irq, &mut out);
        for (addr, cmd, bit) in [
            (2, 1, status::ALIGN_ERR),
            (0x100, 2, status::ALIGN_ERR),
            (0x2000, 1, status::RANGE_ERR),
            (0x1ffe, 1, status::RANGE_ERR),
        ] {
            f.write(0x04, Size::Word, status::W1C, &mut c);
            f.write(0x0c, Size::Word, addr, &mut c);
            f.write(0x14, Size::Word, cmd, &mut c);
            assert_eq!(f.read(0x04, Size::Word, &mut c), bit, "addr 0x{addr:x} cmd {cmd}");
        }
        assert_eq!(f.ops(), 0);
        assert_eq!(f.read(0x00, Size::Word, &mut c), ID);
    }

    /// The model tears exactly the bytes the contract pins for these seeds (the table in
    /// `twinbed_contract::tear`'s tests, which abboot's test flash is checked against too): the
    /// same seed tears the same bytes in the emulator and in the firmware's host tests.
    #[test]
    fn tearing_leaves_the_contracts_pinned_bytes() {
        let hex = |b: &[u8]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        for (seed, want) in [(1, "3ea3fd76"), (7, "28f2cda6"), (0xdead_beef, "64143697")] {
            let mut mem = [0xff; 4];
            tear(FlashOp::Program { addr: 0, value: 0 }, &mut mem, seed);
            assert_eq!(hex(&mem), want, "word program, seed {seed}");
        }
        let mut mem = [0u8; PAGE_SIZE as usize];
        tear(FlashOp::Erase { addr: 0 }, &mut mem, 1);
        assert_eq!(hex(&mem[..20]), "c15c0289ec2d0a9167ec8e65a18debbe5e5532fb", "erase, seed 1");
    }

    #[test]
    fn tearing_is_seeded_and_only_moves_bits_the_way_the_operation_did() {
        let mut a = [0xffu8, 0x0f, 0xf0, 0xaa];
        let mut b = a;
        tear(FlashOp::Program { addr: 0, value: 0 }, &mut a, 7);
        tear(FlashOp::Program { addr: 0, value: 0 }, &mut b, 7);
        assert_eq!(a, b, "same seed, same torn word");
        let old = u32::from_le_bytes([0xff, 0x0f, 0xf0, 0xaa]);
        let torn = u32::from_le_bytes(a);
        assert_eq!(torn & !old, 0, "a program never sets bits");
        let mut page = vec![0u8; 4096];
        tear(FlashOp::Erase { addr: 0 }, &mut page, 1);
        assert!(page.iter().any(|&b| b != 0) && page.iter().any(|&b| b != 0xff), "partly erased");
    }
}
