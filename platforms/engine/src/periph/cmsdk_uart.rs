//! CMSDK APB UART (ARM Cortex-M System Design Kit TRM, DDI0479C §4.3), as QEMU 7.2 models it
//! (hw/char/cmsdk-apb-uart.c; QEMU is the oracle).
//!
//! Registers: DATA 0x000, STATE 0x004, CTRL 0x008, INTSTATUS/INTCLEAR 0x00C, BAUDDIV 0x010,
//! PID4..PID7 0xFD0, PID0..PID3 0xFE0, CID0..CID3 0xFF0 (PID0 = 0x21). Interrupt outputs, in
//! QEMU's order: TXINT, RXINT, TXOVRINT, RXOVRINT, UARTINT (OR of all).
//!
//! How QEMU behaves, reproduced here:
//! - Transmission is instantaneous: a DATA write with TX enabled sends the byte at once
//!   (to [`Output`](super::Output), tagged `Uart(n)`), so STATE.TXFULL never reads 1 and the TX
//!   interrupt status is set at once if CTRL.TXINTEN. Baud rate is not timed.
//! - A DATA write while TX is *disabled* leaves the byte in the holding register with TXFULL
//!   set; enabling TX later does not send it, and further DATA writes only set TXOVERRUN. (A
//!   QEMU quirk: only a reset recovers.)
//! - The TXO/RXO interrupt status bits are STATE's overrun bits ANDed with CTRL's overrun
//!   interrupt enables; writing 1 to them in INTCLEAR (or in STATE) clears the overrun itself.
//! - TX/RX interrupt status bits are set only while the matching enable is set, and stay set
//!   (a DATA read or write does not clear them) until written 1 in INTCLEAR.
//! - Receive: QEMU's character backend holds input back while RX is disabled or the buffer is
//!   full (no overrun from the host side). [`CmsdkUart::push_rx`] queues bytes the same way and
//!   delivers the next one as soon as the buffer empties (QEMU delivers it a little later, from
//!   its main loop; the exact moment is host timing there).
//! - Bad offsets read 0 and ignore writes (logged as guest errors); BAUDDIV below 16 is only
//!   logged when TX is enabled.
//!
//! Not modelled: CTRL.HSTEST (reads back as written, no effect), the baud-rate timing.

use super::regs::{self, RegFile, Registers};
use super::{Ctx, Device, FromBoard, IrqOutputs, OutputSource, PeriphError, Size};
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

crate::registers! {
    /// The UART's registers.
    pub enum Reg for "cmsdk-apb-uart", Any {
        /// Received data (read) / data to send (write: the holding register, 8 bits).
        #[doc(alias = "DATA")]
        Data = 0x000, RW, reset = 0, mask = 0xff;
        /// Buffer status: TXFULL, RXFULL (read-only), TXOVERRUN, RXOVERRUN (write 1 to clear).
        #[doc(alias = "STATE")]
        State = 0x004, W1C, reset = 0, mask = STATE_TXOVERRUN | STATE_RXOVERRUN;
        /// Control: TXEN, RXEN, TXINTEN, RXINTEN, TXOVRINTEN, RXOVRINTEN, HSTEST.
        #[doc(alias = "CTRL")]
        Ctrl = 0x008, RW, reset = 0, mask = 0x7f;
        /// Interrupt status (read) / INTCLEAR (write 1 to clear).
        #[doc(alias = "INTSTATUS", alias = "INTCLEAR")]
        IntStatus = 0x00c, W1C, reset = 0;
        /// Baud rate divider (20 bits).
        #[doc(alias = "BAUDDIV")]
        BaudDiv = 0x010, RW, reset = 0, mask = 0xf_ffff;
        /// PID4..PID7, PID0..PID3, CID0..CID3.
        Id[12] = 0xfd0, RO;
    }
}

const STATE_TXFULL: u32 = 1 << 0;
const STATE_RXFULL: u32 = 1 << 1;
const STATE_TXOVERRUN: u32 = 1 << 2;
const STATE_RXOVERRUN: u32 = 1 << 3;
const CTRL_TX_EN: u32 = 1 << 0;
const CTRL_RX_EN: u32 = 1 << 1;
const CTRL_TX_INTEN: u32 = 1 << 2;
const CTRL_RX_INTEN: u32 = 1 << 3;
const INT_TX: u32 = 1 << 0;
const INT_RX: u32 = 1 << 1;
const INT_TXO: u32 = 1 << 2;
const INT_RXO: u32 = 1 << 3;

/// PID4..PID7, PID0..PID3, CID0..CID3 (QEMU's values).
const IDS: [u8; 12] = [0x04, 0, 0, 0, 0x21, 0xb8, 0x1b, 0, 0x0d, 0xf0, 0x05, 0xb1];

/// One CMSDK APB UART.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmsdkUart {
    /// Which UART of the board (tags output bytes).
    index: u8,
    irqs: IrqOutputs,
    /// DATA (the byte to send), STATE, CTRL, INTSTATUS, BAUDDIV.
    regs: RegFile<Reg>,
    rxbuf: u8,
    /// Bytes waiting to be received (QEMU: held back by the character backend).
    rx_queue: VecDeque<u8>,
}

impl CmsdkUart {
    /// The UART's number on the board.
    pub fn index(&self) -> u8 {
        self.index
    }

    /// UART number `index` of the board, its interrupt outputs wired as `irqs`.
    pub fn new(index: u8, irqs: IrqOutputs) -> Self {
        Self { index, irqs, regs: RegFile::new(), rxbuf: 0, rx_queue: VecDeque::new() }
    }

    /// Queues a received byte (from a modem model or a host console) and delivers it to the
    /// receive buffer as soon as RX is enabled and the buffer is empty.
    pub fn push_rx(&mut self, byte: u8, ctx: &mut Ctx<'_>) {
        self.rx_queue.push_back(byte);
        self.deliver_rx(ctx);
    }

    /// Bytes queued for reception and not yet in the receive buffer.
    pub fn rx_pending(&self) -> usize {
        self.rx_queue.len()
    }

    fn deliver_rx(&mut self, ctx: &mut Ctx<'_>) {
        while self.regs[Reg::Ctrl] & CTRL_RX_EN != 0 && self.regs[Reg::State] & STATE_RXFULL == 0 {
            let Some(byte) = self.rx_queue.pop_front() else {
                return;
            };
            self.rxbuf = byte;
            self.regs[Reg::State] |= STATE_RXFULL;
            if self.regs[Reg::Ctrl] & CTRL_RX_INTEN != 0 {
                self.regs[Reg::IntStatus] |= INT_RX;
            }
            self.update_irq(ctx);
        }
    }

    fn update_irq(&mut self, ctx: &mut Ctx<'_>) {
        // TXO/RXO status = overrun bit AND its interrupt enable (CTRL bits 4/5 line up with
        // STATE bits 2/3 after a shift by 2).
        let omask = INT_TXO | INT_RXO;
        let (state, ctrl) = (self.regs[Reg::State], self.regs[Reg::Ctrl]);
        let s = (self.regs[Reg::IntStatus] & !omask) | (state & (ctrl >> 2) & omask);
        self.regs[Reg::IntStatus] = s;
        self.irqs
            .update(&[s & INT_TX != 0, s & INT_RX != 0, s & INT_TXO != 0, s & INT_RXO != 0, s != 0], ctx.irq);
    }

    fn transmit(&mut self, ctx: &mut Ctx<'_>) {
        if self.regs[Reg::Ctrl] & CTRL_TX_EN == 0 || self.regs[Reg::State] & STATE_TXFULL == 0 {
            return;
        }
        ctx.out.bytes.push((OutputSource::Uart(self.index), self.regs[Reg::Data] as u8));
        self.regs[Reg::State] &= !STATE_TXFULL;
        // TXFULL going from set to clear raises the TX interrupt.
        if self.regs[Reg::Ctrl] & CTRL_TX_INTEN != 0 {
            self.regs[Reg::IntStatus] |= INT_TX;
        }
        self.update_irq(ctx);
    }

    fn baudrate_ok(&self, clock_hz: u32) -> bool {
        let bauddiv = self.regs[Reg::BaudDiv];
        (16..=clock_hz).contains(&bauddiv)
    }
}

impl Registers for CmsdkUart {
    type Reg = Reg;

    fn regs(&mut self) -> &mut RegFile<Reg> {
        &mut self.regs
    }

    fn read_reg(&mut self, reg: Reg, stored: u32, ctx: &mut Ctx<'_>) -> u32 {
        match reg {
            Reg::Data => {
                let r = u32::from(self.rxbuf);
                self.regs[Reg::State] &= !STATE_RXFULL;
                self.update_irq(ctx);
                self.deliver_rx(ctx);
                r
            }
            Reg::Id(i) => u32::from(IDS[i]),
            _ => stored,
        }
    }

    fn write_reg(&mut self, reg: Reg, value: u32, ctx: &mut Ctx<'_>) {
        match reg {
            Reg::Data => {
                if self.regs[Reg::State] & STATE_TXFULL != 0 {
                    // Holding register already full: note the overrun.
                    self.regs[Reg::State] |= STATE_TXOVERRUN;
                    self.update_irq(ctx);
                } else {
                    self.regs[Reg::State] |= STATE_TXFULL;
                    self.transmit(ctx);
                }
            }
            // TXFULL/RXFULL are read-only; the overrun bits are write-1-to-clear (by the table).
            Reg::State => self.update_irq(ctx),
            Reg::Ctrl => {
                if self.regs[Reg::Ctrl] & CTRL_TX_EN != 0 && !self.baudrate_ok(ctx.clock_hz) {
                    tracing::warn!(target: "guest", "cmsdk-apb-uart{}: TX enabled with invalid BAUDDIV {}", self.index, self.regs[Reg::BaudDiv]);
                }
                self.update_irq(ctx);
                self.deliver_rx(ctx);
            }
            Reg::IntStatus => {
                // INTCLEAR: write 1 to clear (by the table); clearing TXO/RXO clears the overrun
                // bits in STATE.
                self.regs[Reg::State] &= !(value & (INT_TXO | INT_RXO));
                self.update_irq(ctx);
            }
            Reg::BaudDiv | Reg::Id(_) => {}
        }
    }
}

impl Device for CmsdkUart {
    fn read(&mut self, offset: u32, size: Size, ctx: &mut Ctx<'_>) -> u32 {
        regs::read(self, offset, size, ctx)
    }

    fn write(&mut self, offset: u32, size: Size, value: u32, ctx: &mut Ctx<'_>) {
        regs::write(self, offset, size, value, ctx);
    }

    fn reset(&mut self) {
        *self =
            Self { rx_queue: std::mem::take(&mut self.rx_queue), ..Self::new(self.index, self.irqs.clone()) };
        self.irqs.reset();
    }

    fn serial_port(&self) -> Option<u8> {
        Some(self.index)
    }

    fn serial_rx(&mut self, byte: u8, ctx: &mut Ctx<'_>) {
        self.push_rx(byte, ctx);
    }
}

impl FromBoard for CmsdkUart {
    const IRQ_OUTPUTS: usize = 5;

    fn from_board(
        _: &twinbed_board::Peripheral,
        index: u8,
        irqs: IrqOutputs,
        _: &twinbed_board::Board,
    ) -> Result<Self, PeriphError> {
        Ok(Self::new(index, irqs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::periph::{IrqLines, Output};

    fn uart() -> CmsdkUart {
        // uart0 of mps2-an385: TX 1, RX 0, both overruns 12.
        CmsdkUart::new(0, IrqOutputs::new(&[1, 0, 12, 12]))
    }

    #[test]
    fn transmits_at_once_and_raises_tx_interrupt() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut ctx = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        let mut u = uart();
        u.write(0x010, Size::Word, 217, &mut ctx);
        u.write(0x008, Size::Word, CTRL_TX_EN | CTRL_TX_INTEN, &mut ctx);
        u.write(0x000, Size::Word, u32::from(b'h'), &mut ctx);
        u.write(0x000, Size::Byte, u32::from(b'i'), &mut ctx);
        assert_eq!(u.read(0x004, Size::Word, &mut ctx), 0, "never TXFULL");
        assert_eq!(u.read(0x00c, Size::Word, &mut ctx), INT_TX);
        assert_eq!(ctx.irq.levels(), 1 << 1);
        u.write(0x00c, Size::Word, INT_TX, &mut ctx);
        assert_eq!(ctx.irq.levels(), 0);
        assert_eq!(out.bytes, vec![(OutputSource::Uart(0), b'h'), (OutputSource::Uart(0), b'i')]);
    }

    #[test]
    fn tx_disabled_holds_the_byte_and_overruns() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut ctx = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        let mut u = uart();
        u.write(0x008, Size::Word, 1 << 4, &mut ctx); // TXO interrupt enabled, TX disabled
        u.write(0x000, Size::Word, 0x41, &mut ctx);
        assert_eq!(u.read(0x004, Size::Word, &mut ctx), STATE_TXFULL);
        u.write(0x000, Size::Word, 0x42, &mut ctx);
        assert_eq!(u.read(0x004, Size::Word, &mut ctx), STATE_TXFULL | STATE_TXOVERRUN);
        assert_eq!(u.read(0x00c, Size::Word, &mut ctx), INT_TXO);
        assert_eq!(ctx.irq.levels(), 1 << 12);
        u.write(0x00c, Size::Word, INT_TXO, &mut ctx);
        assert_eq!(u.read(0x004, Size::Word, &mut ctx), STATE_TXFULL);
        assert_eq!(ctx.irq.levels(), 0);
        assert!(out.bytes.is_empty());
    }

    #[test]
    fn receives_queued_bytes_one_at_a_time() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut ctx = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        let mut u = uart();
        u.push_rx(b'a', &mut ctx);
        u.push_rx(b'b', &mut ctx);
        assert_eq!(u.read(0x004, Size::Word, &mut ctx), 0, "held back while RX is off");
        u.write(0x008, Size::Word, CTRL_RX_EN | CTRL_RX_INTEN, &mut ctx);
        assert_eq!(u.read(0x004, Size::Word, &mut ctx), STATE_RXFULL);
        assert_eq!(ctx.irq.levels(), 1 << 0);
        assert_eq!(u.read(0x000, Size::Word, &mut ctx), u32::from(b'a'));
        assert_eq!(u.read(0x000, Size::Word, &mut ctx), u32::from(b'b'));
        assert_eq!(u.read(0x004, Size::Word, &mut ctx), 0);
        assert_eq!(u.rx_pending(), 0);
        u.write(0x00c, Size::Word, INT_RX, &mut ctx);
        assert_eq!(ctx.irq.levels(), 0);
    }

    #[test]
    fn id_registers_and_bad_offsets() {
        let (mut irq, mut out) = (IrqLines::default(), Output::default());
        let mut ctx = Ctx { now: 0, clock_hz: 25_000_000, irq: &mut irq, out: &mut out };
        let mut u = uart();
        assert_eq!(u.read(0xfe0, Size::Word, &mut ctx), 0x21);
        assert_eq!(u.read(0xffc, Size::Word, &mut ctx), 0xb1);
        assert_eq!(u.read(0x014, Size::Word, &mut ctx), 0);
        assert_eq!(u.read(0x001, Size::Byte, &mut ctx), 0);
        u.write(0xfe0, Size::Word, 5, &mut ctx);
        assert_eq!(u.read(0xfe0, Size::Word, &mut ctx), 0x21);
    }
}
