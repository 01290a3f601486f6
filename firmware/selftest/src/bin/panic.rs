//! Prints a line and panics: the runner must report the guest's failure (exit status 1) and
//! show the panic message that panic-semihosting writes to the host.
#![no_std]
#![no_main]

use cortex_m_rt::entry;
use panic_semihosting as _;
use twinbed_bsp::println;

#[entry]
fn main() -> ! {
    twinbed_bsp::init();
    println!("selftest panic: about to panic");
    let divisor = core::hint::black_box(0u32);
    panic!("deliberate panic (divisor {divisor})");
}
