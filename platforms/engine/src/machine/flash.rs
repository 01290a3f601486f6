//! Flash and power: applying the operations flash controllers complete to memory, stopping
//! at a flash operation, power cut (tearing the operation in flight) and power on.

use super::Machine;
use crate::periph::nor_flash::{self, FlashOp};
use crate::periph::Device;

impl Machine {
    /// Makes [`Machine::run`] stop with [`Stop::FlashOp`](super::Stop::FlashOp) right after a flash controller starts
    /// operation number `index` (0 is the first since the machine was made), once.
    pub fn set_stop_at_flash_op(&mut self, index: Option<u32>) {
        self.flash_stop_at = index;
    }

    /// The memory each flash controller programs, as (base, size): what survives a power cycle.
    pub fn flash_regions(&self) -> Vec<(u32, u32)> {
        self.periphs.iter().filter_map(|p| p.model.flash_region()).collect()
    }

    /// A 128-bit digest of everything the flash controllers keep across power cycles, to tell
    /// power-on states apart (the power-cut sweep memoises on it). Not cryptographic: two lanes
    /// of multiply-rotate mixing over 64-bit words; for the ~10^5 states of a sweep a chance
    /// collision is ~2^-90.
    pub fn flash_digest(&self) -> u128 {
        let (mut a, mut b) = (0x243f_6a88_85a3_08d3u64, 0x1319_8a2e_0370_7344u64);
        for (base, size) in self.flash_regions() {
            let Some(bytes) = self.peek(base, size as usize) else { continue };
            let mut words = bytes.chunks_exact(8);
            for w in &mut words {
                let w = u64::from_le_bytes([w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7]]);
                a = (a ^ w).wrapping_mul(twinbed_contract::rng::SplitMix64::GAMMA).rotate_left(29);
                b = (b.rotate_left(17) ^ w).wrapping_mul(0xc2b2_ae3d_27d4_eb4f);
            }
            for &byte in words.remainder() {
                a = (a ^ u64::from(byte)).wrapping_mul(twinbed_contract::rng::SplitMix64::GAMMA);
            }
            a ^= u64::from(base);
            b ^= u64::from(size);
        }
        u128::from(a) << 64 | u128::from(b)
    }

    /// Flash operations started since the machine was made (all flash controllers).
    pub fn flash_ops(&self) -> u32 {
        self.periphs.iter().map(|p| p.model.flash_ops()).sum()
    }

    /// Applies the operations flash controllers have completed to memory.
    pub(super) fn apply_flash_ops(&mut self) {
        for i in 0..self.periphs.len() {
            self.apply_flash_ops_of(i);
        }
    }

    /// Applies the operations peripheral `i` completed, if it is a flash controller.
    pub(super) fn apply_flash_ops_of(&mut self, i: usize) {
        let Some(f) = self.periphs[i].model.as_flash_mut() else { return };
        for op in f.take_done() {
            if self.write_flash(op, None) {
                if let Some(f) = self.periphs[i].model.as_flash_mut() {
                    f.flag_program_error();
                }
            }
        }
    }

    /// Writes a flash operation's result into memory (torn from `tear_seed` if given), dropping
    /// decoded code there; true if a program asked to set bits (PROG_ERR).
    pub(super) fn write_flash(&mut self, op: FlashOp, tear_seed: Option<u64>) -> bool {
        let (addr, len) = (op.addr(), op.size());
        let Some(r) = self.mem.iter_mut().find(|r| {
            let off = addr.wrapping_sub(r.base) as usize;
            off < r.data.len() && r.data.len() - off >= len
        }) else {
            return false; // the controller checked the range against its region
        };
        let off = (addr - r.base) as usize;
        let bytes = &mut r.data[off..off + len];
        let prog_err = match tear_seed {
            Some(seed) => {
                nor_flash::tear(op, bytes, seed);
                false
            }
            None => op.apply(bytes),
        };
        if !r.code.is_empty() {
            r.invalidate(off, len, &mut self.retired);
        }
        self.next_event = 0;
        prog_err
    }

    /// Cuts the power: a flash operation in flight stops half way and leaves a torn state
    /// chosen by `seed` (the same seed, the same bytes); operations already complete are
    /// applied. Returns the torn operation, if there was one. The machine is then off until
    /// [`Machine::power_on`].
    ///
    /// Energy accounting (if any) goes on: the rails the engine owns drop to their zero-current
    /// states until [`Machine::power_on`] (see [`crate::power`]); charge drawn so far is kept.
    pub fn power_cut(&mut self, seed: u64) -> Option<FlashOp> {
        self.apply_flash_ops();
        let mut torn = None;
        for i in 0..self.periphs.len() {
            if let Some(op) = self.periphs[i].model.as_flash_mut().and_then(|f| f.cut()) {
                self.write_flash(op, Some(seed));
                torn = Some(op);
            }
        }
        if let Some(p) = &mut self.power {
            p.cut(self.now);
        }
        torn
    }

    /// Powers the machine on after [`Machine::power_cut`]: memory that no flash controller
    /// programs is volatile and comes back zeroed; flash keeps its contents; the core and the
    /// peripherals reset, and the firmware boots from the vector table in memory. Virtual time
    /// goes on from where it was.
    pub fn power_on(&mut self) {
        let flash = self.flash_regions();
        for r in &mut self.mem {
            if !flash.iter().any(|&(base, _)| base == r.base) {
                r.data.fill(0);
                r.clear_code();
            }
        }
        self.reset();
    }
}
