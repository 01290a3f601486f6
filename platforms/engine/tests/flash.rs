//! The NOR flash controller (`twinbed-nor-flash`) driven by a tiny hand-assembled program:
//! program and erase with NOR rules in virtual time, error bits, power cuts that tear the
//! operation in flight (seeded), and power-on that keeps flash and clears RAM.

use twinbed_board::Board;
use twinbed_engine::periph::nor_flash::{self, status, FlashOp};
use twinbed_engine::{Machine, Stop};

const CTRL: u32 = 0x4003_0000;
const FLASH_SIZE: u32 = 0x1_0000;

/// Code and flash at 0 (the controller programs it), RAM at 0x2000_0000.
fn board() -> Board {
    Board::parse(
        "name = \"flash\"\ncpu = \"cortex-m3\"\nclock_hz = 25000000\n\
         [[memory]]\nname = \"flash\"\nbase = 0\nsize = 0x10000\n\
         [[memory]]\nname = \"ram\"\nbase = 0x20000000\nsize = 0x10000\n\
         [[peripheral]]\nname = \"fc\"\nmodel = \"twinbed-nor-flash\"\nbase = 0x40030000\nmemory = \"flash\"\n",
        "flash test board",
    )
    .unwrap()
}

/// The program at 0x100: ADDR <- r1, DATA <- r2, CMD <- r3, wait while STATUS.BUSY, exit(0).
///   str r1,[r0,#0xc]; str r2,[r0,#0x10]; str r3,[r0,#0x14]
///   poll: ldr r4,[r0,#4]; lsls r4,r4,#31; bmi poll
///   exit(0): movw r1,#0x26; movt r1,#2; movw r0,#0x18; bkpt 0xab; b .
const PROGRAM: [u16; 14] = [
    0x60c1, 0x6102, 0x6143, 0x6844, 0x07e4, 0xd4fc, 0xf240, 0x0126, 0xf2c0, 0x0102, 0xf240, 0x0018, 0xbeab,
    0xe7fe,
];

/// A machine that will run one flash command (`cmd` 1 = program, 2 = erase) at `addr`.
fn machine(addr: u32, data: u32, cmd: u32) -> Machine {
    let mut m = Machine::new(&board()).unwrap();
    let mut image = vec![0xffu8; FLASH_SIZE as usize];
    image[0..4].copy_from_slice(&0x2000_8000u32.to_le_bytes());
    image[4..8].copy_from_slice(&0x101u32.to_le_bytes());
    for (i, h) in PROGRAM.iter().enumerate() {
        image[0x100 + 2 * i..0x102 + 2 * i].copy_from_slice(&h.to_le_bytes());
    }
    // Something to program over and to erase: a known pattern at 0x8000..0x9000.
    for (i, b) in image[0x8000..0x9000].iter_mut().enumerate() {
        *b = (i as u8) ^ 0x5a;
    }
    assert!(m.poke(0, &image));
    m.reset();
    boot_registers(&mut m, addr, data, cmd);
    m
}

fn boot_registers(m: &mut Machine, addr: u32, data: u32, cmd: u32) {
    m.cpu.r[0] = CTRL;
    m.cpu.r[1] = addr;
    m.cpu.r[2] = data;
    m.cpu.r[3] = cmd;
}

fn word(m: &Machine, addr: u32) -> u32 {
    let b = m.peek(addr, 4).unwrap();
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

fn flash_status(m: &mut Machine) -> u32 {
    match m.periph_mut("fc") {
        Some(twinbed_engine::periph::Model::NorFlash(f)) => f.status(),
        _ => unreachable!("the board has the controller"),
    }
}

#[test]
fn a_program_only_clears_bits_and_takes_virtual_time() {
    let old = word(&machine(0, 0, 0), 0x8004);
    let mut m = machine(0x8004, 0x0f0f_f0f0, 1);
    assert_eq!(m.run(10_000_000), Stop::Exit(0));
    assert_eq!(word(&m, 0x8004), old & 0x0f0f_f0f0);
    assert!(m.now >= nor_flash::PROGRAM_US * 25, "the program took {} cycles", m.now);
    let st = flash_status(&mut m);
    assert_eq!(st & status::DONE, status::DONE);
    assert_eq!(st & status::PROG_ERR, status::PROG_ERR, "0x{old:08x} -> 0x0f0ff0f0 sets bits");
    assert_eq!(m.flash_ops(), 1);
}

#[test]
fn an_erase_sets_the_page_to_ff_and_a_misaligned_one_is_refused() {
    let mut m = machine(0x8000, 0, 2);
    assert_eq!(m.run(100_000_000), Stop::Exit(0));
    assert!(m.peek(0x8000, 4096).unwrap().iter().all(|&b| b == 0xff));
    assert_ne!(m.peek(0x9000, 1).unwrap()[0], 0x5a ^ 0xff, "the next page is untouched");
    assert!(m.now >= nor_flash::ERASE_US * 25);

    let mut m = machine(0x8100, 0, 2);
    assert_eq!(m.run(100_000_000), Stop::Exit(0));
    assert_eq!(flash_status(&mut m) & status::ALIGN_ERR, status::ALIGN_ERR);
    assert_eq!(m.peek(0x8100, 1).unwrap()[0], 0x5a, "nothing erased");
    assert_eq!(m.flash_ops(), 0);
}

#[test]
fn a_power_cut_tears_the_operation_in_flight_the_same_way_for_the_same_seed() {
    let mut m = machine(0x8000, 0, 2);
    m.set_stop_at_flash_op(Some(0));
    assert_eq!(m.run(100_000_000), Stop::FlashOp { index: 0 });
    let before = m.peek(0x8000, 4096).unwrap().to_vec();
    let mut twin = m.clone();
    assert_eq!(m.power_cut(42), Some(FlashOp::Erase { addr: 0x8000 }));
    assert_eq!(twin.power_cut(42), Some(FlashOp::Erase { addr: 0x8000 }));
    let torn = m.peek(0x8000, 4096).unwrap().to_vec();
    assert_eq!(torn, twin.peek(0x8000, 4096).unwrap(), "same seed, same torn page");
    assert_ne!(torn, before, "some bits were erased");
    assert!(torn.iter().any(|&b| b != 0xff), "not all of them");
    assert!(torn.iter().zip(&before).all(|(t, b)| t & b == *b), "an erase only sets bits");
    // Power on: RAM is cleared, flash (with the torn page) kept, the core boots again.
    assert!(m.poke(0x2000_0000, &[1, 2, 3, 4]));
    m.power_on();
    assert_eq!(m.peek(0x2000_0000, 4).unwrap(), [0, 0, 0, 0]);
    assert_eq!(m.peek(0x8000, 4096).unwrap(), torn);
    assert_eq!((m.cpu.r[13], m.cpu.r[15]), (0x2000_8000, 0x100));
    // A different seed tears differently.
    let mut fourth = machine(0x8000, 0, 2);
    fourth.set_stop_at_flash_op(Some(0));
    assert_eq!(fourth.run(100_000_000), Stop::FlashOp { index: 0 });
    fourth.power_cut(43);
    assert_ne!(fourth.peek(0x8000, 4096).unwrap(), torn);
    // After power-on the interrupted erase can simply be run again.
    boot_registers(&mut m, 0x8000, 0, 2);
    assert_eq!(m.run(100_000_000), Stop::Exit(0));
    assert!(m.peek(0x8000, 4096).unwrap().iter().all(|&b| b == 0xff));
    assert_eq!(m.flash_ops(), 2, "operations count across power cycles");
}

#[test]
fn a_torn_program_only_clears_bits_it_was_clearing() {
    let mut m = machine(0x8008, 0, 1);
    let old = word(&m, 0x8008);
    m.set_stop_at_flash_op(Some(0));
    assert_eq!(m.run(10_000_000), Stop::FlashOp { index: 0 });
    assert_eq!(m.power_cut(7), Some(FlashOp::Program { addr: 0x8008, value: 0 }));
    let torn = word(&m, 0x8008);
    assert_eq!(torn & !old, 0);
    assert_ne!(torn, old, "seed 7 clears some bits of 0x{old:08x}");
}

#[test]
fn a_reset_lets_the_operation_in_flight_finish_and_no_cut_tears_nothing() {
    let mut m = machine(0x8000, 0, 2);
    m.set_stop_at_flash_op(Some(0));
    assert_eq!(m.run(100_000_000), Stop::FlashOp { index: 0 });
    m.reset();
    assert!(m.peek(0x8000, 4096).unwrap().iter().all(|&b| b == 0xff));
    assert_eq!(m.power_cut(1), None, "nothing in flight");
}

#[test]
fn programming_decoded_code_replaces_it() {
    // Program the `bkpt 0xab; b .` word of the running program into `b .; b .` (0xe7fe e7fe):
    // 0xbeab & 0xe7fe = 0xa6aa is not what we want, so instead clear the whole word to 0,
    // which decodes as `movs r0, r0` twice; then the machine must run what flash now holds.
    let exit_word = 0x100 + 2 * 12;
    let mut m = machine(exit_word, 0, 1);
    // Run once up to the operation so the code around it is decoded (and maybe compiled).
    m.set_stop_at_flash_op(Some(0));
    assert_eq!(m.run(10_000_000), Stop::FlashOp { index: 0 });
    let stop = m.run(10_000_000);
    assert_eq!(word(&m, exit_word), 0);
    // With the bkpt gone the program runs on past it into erased flash (0xffff: undefined), so it
    // must not exit through semihosting.
    assert_ne!(stop, Stop::Exit(0));
}

/// The program at 0x100 for the sleep tests: SCR <- r5; CTRL <- 1 (interrupt on DONE, the
/// NVIC leaves IRQ 31 disabled); ADDR, DATA, CMD <- r1, r2, r3; then WFE or WFI; r4 <- STATUS;
/// exit(0).
///   movw r6,#0xed10; movt r6,#0xe000; str r5,[r6]; movs r4,#1; str r4,[r0,#8]
///   str r1,[r0,#0xc]; str r2,[r0,#0x10]; str r3,[r0,#0x14]; wfe|wfi; ldr r4,[r0,#4]; exit(0)
fn sleeping_program(wfe: bool) -> [u16; 20] {
    [
        0xf64e,
        0x5610,
        0xf2ce,
        0x0600,
        0x6035,
        0x2401,
        0x6084,
        0x60c1,
        0x6102,
        0x6143,
        if wfe { 0xbf20 } else { 0xbf30 },
        0x6844,
        0xf240,
        0x0126,
        0xf2c0,
        0x0102,
        0xf240,
        0x0018,
        0xbeab,
        0xe7fe,
    ]
}

/// Runs `sleeping_program` for a word program with SCR = `scr`.
fn sleep_through_a_program(wfe: bool, scr: u32) -> (Stop, Machine) {
    let board = Board::parse(
        "name = \"flash\"\ncpu = \"cortex-m3\"\nclock_hz = 25000000\n\
         [[memory]]\nname = \"flash\"\nbase = 0\nsize = 0x10000\n\
         [[memory]]\nname = \"ram\"\nbase = 0x20000000\nsize = 0x10000\n\
         [[peripheral]]\nname = \"fc\"\nmodel = \"twinbed-nor-flash\"\nbase = 0x40030000\nmemory = \"flash\"\nirqs = [31]\n",
        "flash test board with its interrupt",
    )
    .unwrap();
    let mut m = Machine::new(&board).unwrap();
    let mut image = vec![0xffu8; FLASH_SIZE as usize];
    image[0..4].copy_from_slice(&0x2000_8000u32.to_le_bytes());
    image[4..8].copy_from_slice(&0x101u32.to_le_bytes());
    for (i, h) in sleeping_program(wfe).iter().enumerate() {
        image[0x100 + 2 * i..0x102 + 2 * i].copy_from_slice(&h.to_le_bytes());
    }
    assert!(m.poke(0, &image));
    m.reset();
    boot_registers(&mut m, 0x8000, 0x1234_5678, 1);
    m.cpu.r[5] = scr;
    let stop = m.run(25_000_000);
    (stop, m)
}

/// SCR.SEVONPEND (B3.2.7): an interrupt turning pending wakes a WFE even while the NVIC has it
/// disabled. This is how the BSP's flash driver sleeps through an operation with no handler.
#[test]
fn wfe_with_sevonpend_wakes_when_the_operation_is_done_and_wfi_does_not() {
    const SEVONPEND: u32 = 1 << 4;
    let (stop, m) = sleep_through_a_program(true, SEVONPEND);
    assert_eq!(stop, Stop::Exit(0));
    assert_eq!(m.cpu.r[4] & (status::BUSY | status::DONE), status::DONE, "woke after the program completed");
    let program = nor_flash::PROGRAM_US * 25;
    assert!((program..program + 100).contains(&m.now), "woke at the completion, {} cycles", m.now);
    assert_eq!(word(&m, 0x8000), 0x1234_5678);
    // Without SEVONPEND nothing wakes the WFE; a WFI waits for an interrupt the NVIC would take,
    // and this one is disabled.
    assert_eq!(sleep_through_a_program(true, 0).0, Stop::Idle);
    assert_eq!(sleep_through_a_program(false, SEVONPEND).0, Stop::Idle);
}
