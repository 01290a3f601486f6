//! CMSDK APB UART0 (0x4000_4000; TX interrupt is IRQ 1 on mps2-an385) after the Cortex-M System
//! Design Kit TRM (DDI 0479) section 4.3: register readback, the TX interrupt flag after a
//! transmit with TXINTEN (INTSTATUS, latched NVIC pending, INTCLEAR), and every printable byte.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use panic_semihosting as _;
use twinbed_bsp::uart::Uart;
use twinbed_selftest::{nvic_is_pending, nvic_unpend, rd, wr, Checker};

const UART0: usize = 0x4000_4000;
const DATA: usize = 0x00;
const STATE: usize = 0x04;
const CTRL: usize = 0x08;
const INTSTATUS: usize = 0x0C;
const BAUDDIV: usize = 0x10;
const TX_EN: u32 = 1 << 0;
const TX_INTEN: u32 = 1 << 2;
const TX_IRQ: u32 = 1;

fn reg(off: usize) -> u32 {
    // SAFETY: UART0 registers other than DATA have no read side effects.
    unsafe { rd(UART0 + off) }
}

fn set(off: usize, v: u32) {
    // SAFETY: UART0 registers; the program restores the console configuration.
    unsafe { wr(UART0 + off, v) }
}

/// Waits until the transmit buffer is empty (STATE.TXFULL clear).
fn drain() {
    while reg(STATE) & 1 != 0 {}
}

#[entry]
fn main() -> ! {
    let mut t = Checker::start("uart", "CMSDK APB UART0");
    drain();
    t.check("STATE when idle", 0, reg(STATE));
    t.check("CTRL after console init (TX enable)", TX_EN, reg(CTRL));
    t.check("BAUDDIV after console init", 16, reg(BAUDDIV));
    t.check("INTSTATUS idle", 0, reg(INTSTATUS));
    set(BAUDDIV, 0xffff_ffff);
    let wide = reg(BAUDDIV);
    set(BAUDDIV, 16);
    t.check("BAUDDIV is 20 bits", 0xf_ffff, wide);
    let cid = (0..4).fold(0, |a, i| a | (reg(0xFF0 + 4 * i) & 0xff) << (8 * i));
    let pid = (0..3).fold(0, |a, i| a | (reg(0xFE0 + 4 * i) & 0xff) << (8 * i));
    t.check_eq("CID, PID0-2", &(0xb105_f00d, 0x1b_b821), &(cid, pid));

    // One byte with TX interrupts on (NVIC line disabled): the flag rises once the byte is out.
    nvic_unpend(TX_IRQ);
    set(CTRL, TX_EN | TX_INTEN);
    let ctrl = reg(CTRL);
    set(DATA, u32::from(b'>'));
    drain();
    let int_after = reg(INTSTATUS);
    let pending_after = nvic_is_pending(TX_IRQ);
    set(INTSTATUS, 1);
    let int_cleared = reg(INTSTATUS);
    set(CTRL, TX_EN);
    nvic_unpend(TX_IRQ);
    let pending_cleared = nvic_is_pending(TX_IRQ);
    twinbed_bsp::println!();
    t.check("CTRL readback with TXINTEN", TX_EN | TX_INTEN, ctrl);
    t.check("INTSTATUS.TX after transmit", 1, int_after);
    t.check_true("IRQ 1 pending in NVIC", pending_after);
    t.check("INTCLEAR clears TX", 0, int_cleared);
    t.check_true("ICPR clears IRQ 1", !pending_cleared);

    // TX without TXINTEN leaves INTSTATUS alone.
    let uart = Uart::console();
    for b in 0x20u8..0x7f {
        uart.write_byte(b);
    }
    uart.write_byte(b'\n');
    drain();
    t.check("INTSTATUS after 96 bytes without TXINTEN", 0, reg(INTSTATUS));
    t.check("STATE: no overrun", 0, reg(STATE));
    t.finish()
}
