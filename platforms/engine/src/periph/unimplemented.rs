//! A read-as-zero / write-ignored region: QEMU's `unimplemented-device` (hw/misc/unimp.c), which
//! QEMU maps over the reserved and not-modelled address ranges of mps2-an385.
//!
//! QEMU logs every access with LOG_UNIMP; this model logs the first access (target `"unimp"`)
//! and counts the rest at `trace` level, so a polling loop does not flood the log.
//!
//! Also used as a stand-in for devices QEMU models but the engine does not (yet): the CMSDK
//! watchdog, the PL022 SPI controllers and the LAN9118 Ethernet controller of mps2-an385. Those
//! read 0 here where QEMU returns their register values (e.g. PL022 SSPSR = 0x3), and raise no
//! interrupt (QEMU's watchdog would raise the NMI if the guest enabled it).
//!
//! No register table ([`registers!`](crate::registers)): there are no registers, every offset
//! of a window of any size answers alike, and what is logged is the first touch (target
//! `"unimp"`), not a guest error per access.

use super::{Ctx, Device, FromBoard, IrqOutputs, PeriphError, Size};
use serde::{Deserialize, Serialize};

/// A RAZ/WI region.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unimplemented {
    name: String,
    size: u32,
    /// The QEMU model this stands in for, if any.
    stand_in_for: Option<String>,
    touched: bool,
}

impl Unimplemented {
    /// A region named `name` of `size` bytes.
    pub fn new(name: &str, size: u32) -> Self {
        Self { name: name.to_owned(), size, stand_in_for: None, touched: false }
    }

    /// A RAZ/WI stand-in for a device of QEMU model `model` that the engine does not model.
    pub fn stand_in(name: &str, size: u32, model: &str) -> Self {
        Self { stand_in_for: Some(model.to_owned()), ..Self::new(name, size) }
    }

    /// Whether the guest has accessed the region since power-on.
    pub fn touched(&self) -> bool {
        self.touched
    }

    fn log(&mut self, what: &str, offset: u32, size: Size) {
        if self.touched {
            tracing::trace!(target: "unimp", "{}: {what} at +0x{offset:x} ({size:?})", self.name);
            return;
        }
        self.touched = true;
        match &self.stand_in_for {
            Some(m) => tracing::warn!(
                target: "unimp",
                "{}: first {what} at +0x{offset:x} ({size:?}); QEMU models this as `{m}`, the engine answers RAZ/WI",
                self.name
            ),
            None => tracing::warn!(
                target: "unimp",
                "{}: first {what} at +0x{offset:x} ({size:?}) of an unimplemented region (RAZ/WI)",
                self.name
            ),
        }
    }
}

impl Device for Unimplemented {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        let _ = ctx;
        self.log("read", offset, size);
        0
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        let _ = (ctx, value);
        self.log("write", offset, size);
    }

    /// Logging state survives reset (it is not hardware state).
    fn reset(&mut self) {}
}

impl FromBoard for Unimplemented {
    const IRQ_OUTPUTS: usize = 0;

    fn from_board(
        p: &twinbed_board::Peripheral,
        _: u8,
        _: IrqOutputs,
        _: &twinbed_board::Board,
    ) -> Result<Self, PeriphError> {
        Ok(Self::new(&p.name, p.window()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periph::{IrqLines, Output};

    #[test]
    fn reads_zero_ignores_writes() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut ctx = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        let mut u = Unimplemented::new("vga", 0x20_0000);
        assert!(!u.touched());
        u.write(0x10, Size::Word, 0xdead_beef, &mut ctx);
        assert_eq!(u.read(0x10, Size::Word, &mut ctx), 0);
        assert!(u.touched());
        assert_eq!(u.size, 0x20_0000);
    }
}
