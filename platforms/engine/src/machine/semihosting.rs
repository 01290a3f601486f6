//! Semihosting (ARM "Semihosting for AArch32 and AArch64", v2): `BKPT 0xAB` with the
//! operation in r0 and its parameter in r1; the result goes to r0. The console goes to the
//! machine's output; twinbed gives the guest no host files, and time is virtual.

use super::Machine;
use crate::cpu::{Exc, Size};
use crate::periph::OutputSource;

impl Machine {
    /// Handles `BKPT 0xAB`: operation `op` (r0) with parameter `arg` (r1); returns the result
    /// for r0.
    pub(super) fn semihosting(&mut self, op: u32, arg: u32) -> Result<u32, Exc> {
        let word = |m: &mut Self, i: u32| m.load(arg.wrapping_add(4 * i), Size::Word);
        const STDIN: u32 = 1;
        const STDOUT: u32 = 2;
        const STDERR: u32 = 3;
        let result: u32 = match op {
            0x01 => {
                // SYS_OPEN: only ":tt" (the console) exists; twinbed gives the guest no host files.
                let (name_ptr, mode, len) = (word(self, 0)?, word(self, 1)?, word(self, 2)?);
                let name = self.read_bytes(name_ptr, len.min(256))?;
                if name == b":tt" {
                    match mode {
                        0..=3 => STDIN,
                        4..=7 => STDOUT,
                        _ => STDERR,
                    }
                } else {
                    self.semihost_errno = 2; // ENOENT
                    u32::MAX
                }
            }
            0x02 => 0,
            0x03 => {
                let c = self.load(arg, Size::Byte)? as u8;
                self.out.bytes.push((OutputSource::Semihosting, c));
                0
            }
            0x04 => {
                let mut a = arg;
                for _ in 0..65_536 {
                    let c = self.load(a, Size::Byte)? as u8;
                    if c == 0 {
                        break;
                    }
                    self.out.bytes.push((OutputSource::Semihosting, c));
                    a = a.wrapping_add(1);
                }
                0
            }
            0x05 => {
                let (handle, ptr, len) = (word(self, 0)?, word(self, 1)?, word(self, 2)?);
                if handle == STDOUT || handle == STDERR {
                    let bytes = self.read_bytes(ptr, len.min(1 << 20))?;
                    self.out.bytes.extend(bytes.into_iter().map(|b| (OutputSource::Semihosting, b)));
                    0
                } else {
                    self.semihost_errno = 9; // EBADF
                    len
                }
            }
            0x06 => word(self, 2)?, // SYS_READ: end of file, nothing read
            0x07 => u32::MAX,       // SYS_READC: no input
            0x09 => u32::from(matches!(word(self, 0)?, STDIN | STDOUT | STDERR)),
            0x0c => u32::MAX, // SYS_FLEN
            0x10 => (self.now.saturating_mul(100) / u64::from(self.clock_hz)) as u32,
            // SYS_TIME: virtual seconds since power-on, counted from the epoch (deterministic;
            // QEMU returns the host's time instead).
            0x11 => (self.now / u64::from(self.clock_hz)) as u32,
            0x13 => self.semihost_errno,
            0x15 => {
                let (ptr, cap) = (word(self, 0)?, word(self, 1)?);
                let mut bytes = self.cmdline.clone().into_bytes();
                if bytes.len() as u32 + 1 > cap {
                    u32::MAX
                } else {
                    let len = bytes.len() as u32;
                    bytes.push(0);
                    for (i, b) in bytes.iter().enumerate() {
                        self.store(ptr.wrapping_add(i as u32), u32::from(*b), Size::Byte)?;
                    }
                    self.store(arg.wrapping_add(4), len, Size::Word)?;
                    0
                }
            }
            0x16 => {
                let block = word(self, 0)?;
                for i in 0..4 {
                    self.store(block.wrapping_add(4 * i), 0, Size::Word)?;
                }
                0
            }
            0x18 => {
                // SYS_EXIT: on AArch32 the parameter is the reason itself.
                return Err(Exc::Exit(if arg == 0x20026 { 0 } else { 1 }));
            }
            0x20 => {
                let (reason, code) = (word(self, 0)?, word(self, 1)?);
                return Err(Exc::Exit(if reason == 0x20026 { code as i32 } else { 1 }));
            }
            0x30 => {
                let now = self.now;
                self.store(arg, now as u32, Size::Word)?;
                self.store(arg.wrapping_add(4), (now >> 32) as u32, Size::Word)?;
                0
            }
            0x31 => self.clock_hz,
            _ => {
                tracing::warn!(target: "guest", "semihosting operation 0x{op:x} is not supported: returns -1");
                u32::MAX
            }
        };
        Ok(result)
    }

    pub(super) fn read_bytes(&mut self, addr: u32, len: u32) -> Result<Vec<u8>, Exc> {
        (0..len).map(|i| self.load(addr.wrapping_add(i), Size::Byte).map(|b| b as u8)).collect()
    }
}
