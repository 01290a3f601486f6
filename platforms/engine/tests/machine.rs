//! Machine-level tests on tiny hand-assembled programs: reset, exceptions, semihosting, sleep,
//! snapshots, and the decoder/executor on random code (it must never panic).

mod common;

use common::{bare_board, board_with, Rng};
use twinbed_engine::{Machine, Stop};

/// A machine whose vector table points every exception at `handler` (or a default that exits
/// with the exception number + 100) and whose code starts at 0x100.
fn machine_with(code: &[u16], handlers: &[(u32, u32)]) -> Machine {
    let mut m = Machine::new(&bare_board()).unwrap();
    let mut vt = vec![0u8; 0x100];
    vt[0..4].copy_from_slice(&0x2000_8000u32.to_le_bytes());
    vt[4..8].copy_from_slice(&0x101u32.to_le_bytes());
    // Default handler at 0x80: mov r1, #? is not possible per exception, so exit with 1.
    for n in 2..48u32 {
        let target = handlers.iter().find(|(e, _)| *e == n).map_or(0x81, |(_, a)| *a | 1);
        vt[(4 * n) as usize..(4 * n + 4) as usize].copy_from_slice(&target.to_le_bytes());
    }
    // 0x80: semihosting exit with reason != ApplicationExit -> status 1
    let default: [u16; 4] = [0x2018, 0x2100, 0xbeab, 0xe7fe]; // movs r0,#0x18; movs r1,#0; bkpt 0xab; b .
    for (i, h) in default.iter().enumerate() {
        vt[0x80 + 2 * i..0x82 + 2 * i].copy_from_slice(&h.to_le_bytes());
    }
    assert!(m.poke(0, &vt));
    let bytes: Vec<u8> = code.iter().flat_map(|h| h.to_le_bytes()).collect();
    assert!(m.poke(0x100, &bytes));
    m.reset();
    m
}

/// Semihosting exit(0) without touching the flags:
/// movw r1, #0x0026 ; movt r1, #0x0002 ; movw r0, #0x18 ; bkpt 0xab ; b .
const EXIT_OK: [u16; 8] = [0xf240, 0x0126, 0xf2c0, 0x0102, 0xf240, 0x0018, 0xbeab, 0xe7fe];

#[test]
fn reset_reads_the_vector_table_and_exits_through_semihosting() {
    let mut m = machine_with(&EXIT_OK, &[]);
    assert_eq!(m.cpu.r[13], 0x2000_8000);
    assert_eq!(m.cpu.r[15], 0x100);
    assert_eq!(m.run(1_000_000), Stop::Exit(0));
}

#[test]
fn arithmetic_and_flags() {
    // movs r0, #5 ; movs r1, #7 ; subs r2, r0, r1 (-2, N set, C clear) ; then exit(0)
    let mut code = vec![0x2005, 0x2107, 0x1a42];
    code.extend_from_slice(&EXIT_OK);
    let mut m = machine_with(&code, &[]);
    assert_eq!(m.run(1_000_000), Stop::Exit(0));
    assert_eq!(m.cpu.r[2], (-2i32) as u32);
    assert!(m.cpu.n && !m.cpu.z && !m.cpu.c && !m.cpu.v);
}

#[test]
fn svc_enters_the_handler_and_returns() {
    // main: svc #1 ; movs r3, #9 ; exit(0)        handler at 0x180: movs r4, #4 ; bx lr
    // (r4, unlike r0-r3, is not restored from the exception frame)
    let mut code = vec![0xdf01, 0x2309];
    code.extend_from_slice(&EXIT_OK);
    let mut m = machine_with(&code, &[(11, 0x180)]);
    assert!(m.poke(0x180, &[0x04, 0x24, 0x70, 0x47]));
    m.reset();
    assert_eq!(m.run(1_000_000), Stop::Exit(0));
    assert_eq!((m.cpu.r[4], m.cpu.r[3]), (4, 9));
    assert_eq!(m.cpu.r[13], 0x2000_8000, "the frame was popped");
    assert_eq!(m.cpu.ipsr, 0);
}

#[test]
fn undefined_instruction_escalates_to_hardfault() {
    // udf #0 with UsageFault disabled -> HardFault (exception 3) -> handler exits with status 0
    let mut m = machine_with(&[0xde00], &[(3, 0x180)]);
    assert!(m.poke(0x180, &EXIT_OK.iter().flat_map(|h| h.to_le_bytes()).collect::<Vec<_>>()));
    m.reset();
    assert_eq!(m.run(1_000_000), Stop::Exit(0));
    assert_ne!(m.sys.hfsr & (1 << 30), 0, "FORCED");
    assert_ne!(m.sys.cfsr & (1 << 16), 0, "UNDEFINSTR");
}

#[test]
fn fault_in_hardfault_locks_up() {
    // HardFault handler is itself an undefined instruction.
    let mut m = machine_with(&[0xde00], &[(3, 0x180)]);
    assert!(m.poke(0x180, &0xde00u16.to_le_bytes()));
    m.reset();
    assert_eq!(m.run(1_000_000), Stop::Lockup { pc: 0x180 });
}

#[test]
fn wfi_with_nothing_to_wake_is_idle_and_systick_wakes_it() {
    let mut m = machine_with(&[0xbf30, 0xe7fd], &[]); // wfi ; b wfi
    assert_eq!(m.run(1_000_000), Stop::Idle);

    // SysTick every 1000 cycles; handler counts in r5 and exits at 3.
    // main: ldr r0,=0xE000E010 ; movw r1,#999 ; str r1,[r0,#4] ; movs r1,#7 ; str r1,[r0] ; loop: wfi ; b loop
    let main: [u16; 12] =
        [0xf24e, 0x0010, 0xf2ce, 0x0000, 0xf240, 0x31e7, 0x6041, 0x2107, 0x6001, 0xbf30, 0xe7fd, 0xbf00];
    // handler: adds r5,#1 ; cmp r5,#3 ; bne out ; exit(0) ; out: bx lr
    let mut handler: Vec<u16> = vec![0x3501, 0x2d03, 0xd107]; // bne skips the 8 halfwords of EXIT_OK
    handler.extend_from_slice(&EXIT_OK);
    handler.push(0x4770);
    let mut m = machine_with(&main, &[(15, 0x200)]);
    assert!(m.poke(0x200, &handler.iter().flat_map(|h| h.to_le_bytes()).collect::<Vec<_>>()));
    m.reset();
    assert_eq!(m.run(100_000_000), Stop::Exit(0));
    assert_eq!(m.cpu.r[5], 3);
    assert!(m.now >= 3000 && m.now < 3200, "virtual time jumped to the 3rd tick: {}", m.now);
    assert!(m.instret < 100, "WFI skipped idle time: {} instructions", m.instret);
}

#[test]
fn a_snapshot_is_a_clone_and_survives_serde() {
    let mut m = machine_with(&[0x3001, 0xe7fd], &[]); // adds r0, #1 ; b .-2 (forever)
    assert_eq!(m.run(10_000), Stop::Budget);
    let mut fork = m.clone();
    let json = serde_json::to_string(&m).unwrap();
    let mut restored: Machine = serde_json::from_str(&json).unwrap();
    for x in [&mut m, &mut fork, &mut restored] {
        assert_eq!(x.run(50_000), Stop::Budget);
    }
    assert_eq!(m.cpu, fork.cpu);
    assert_eq!(m.cpu, restored.cpu);
    assert_eq!((m.now, m.instret), (restored.now, restored.instret));
}

#[test]
fn self_modifying_code_is_re_decoded() {
    // Code in RAM: movs r0,#1 ; then we overwrite it with movs r0,#2 and run again.
    let mut m = machine_with(&[0xf240, 0x0000, 0xf2c2, 0x0000, 0x4700], &[]); // r0 = 0x20000000 ; bx r0
    assert!(m.poke(0x2000_0000, &[0x01, 0x20, 0xfe, 0xe7])); // movs r0,#1 ; b .
    m.reset();
    // bx r0 with bit 0 clear faults (INVSTATE); jump with bit 0 set instead: patch to r0 = 0x20000001.
    assert!(m.poke(0x100, &[0x40, 0xf2, 0x01, 0x00]));
    m.reset();
    assert_eq!(m.run(1000), Stop::Budget);
    assert_eq!(m.cpu.r[0], 1);
    // A store through the bus invalidates the cached decode.
    m.cpu.r[15] = 0x2000_0000;
    assert!(m.poke(0x2000_0000, &[0x02, 0x20]));
    assert_eq!(m.run(1000), Stop::Budget);
    assert_eq!(m.cpu.r[0], 2);
}

#[test]
fn random_halfword_streams_never_panic_the_engine() {
    let seed = std::env::var("TWINBED_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x7b1d_2026u64);
    let streams = if std::env::var("TWINBED_FULL").is_ok() { 20_000 } else { 1_000 };
    let mut rng = Rng(seed | 1);
    let base = machine_with(&[], &[]);
    for i in 0..streams {
        let mut m = base.clone();
        // Every other stream with every block compiled at first sight: the block compiler must
        // not panic on random code either.
        if i % 2 == 1 {
            m.set_jit(Some(1));
        }
        let code: Vec<u8> = (0..256).flat_map(|_| (rng.next() as u16).to_le_bytes()).collect();
        assert!(m.poke(0x100, &code));
        // Random registers too, so loads and stores go everywhere.
        for r in 0..13 {
            m.cpu.r[r] = rng.next() as u32;
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| m.run(20_000)));
        assert!(
            result.is_ok(),
            "the engine panicked on random stream {i} (seed {seed}; rerun with TWINBED_SEED={seed})"
        );
    }
}

#[test]
fn unprivileged_access_to_the_scs_is_a_busfault() {
    // main: movs r0, #1 ; msr control, r0 (nPRIV) ; isb ; ldr r1, =0xE000ED00 (CPUID) ; ldr r2, [r1]
    // The BusFault (disabled) escalates to HardFault, whose handler exits with status 0.
    let main: [u16; 9] = [0x2001, 0xf380, 0x8814, 0xf3bf, 0x8f6f, 0xf64e, 0x5100, 0xf2ce, 0x0100];
    let mut code = main.to_vec();
    code.push(0x680a); // ldr r2, [r1]
    code.push(0xe7fe);
    let mut m = machine_with(&code, &[(3, 0x200)]);
    assert!(m.poke(0x200, &EXIT_OK.iter().flat_map(|h| h.to_le_bytes()).collect::<Vec<_>>()));
    m.reset();
    assert_eq!(m.run(1_000_000), Stop::Exit(0));
    assert_ne!(m.sys.cfsr & (1 << 9), 0, "PRECISERR");
    assert_eq!(m.sys.bfar, 0xe000_ed00);
    assert_eq!(m.cpu.r[2], 0, "the load did not complete");
}

/// A UART attached to a model outside the machine (`attach_serial`): its bytes stop the run at
/// the store that sent them, stamped with that time, and bytes for the firmware go in with
/// `serial_rx`. The program enables UART1, sends 'A', waits for a byte and exits with it in r4:
///   str r1,[r0,#8]; str r2,[r0]; poll: ldr r3,[r0,#4]; lsls r3,r3,#30; bpl poll;
///   ldr r4,[r0]; exit(0)
#[test]
fn an_attached_uart_hands_its_bytes_out_at_their_time_and_takes_bytes_in() {
    let board = board_with(
        "uarts",
        (0, 0x1_0000),
        (0x2000_0000, 0x1_0000),
        "[[peripheral]]\nname = \"uart0\"\nmodel = \"cmsdk-apb-uart\"\nbase = 0x40004000\n\
         [[peripheral]]\nname = \"uart1\"\nmodel = \"cmsdk-apb-uart\"\nbase = 0x40005000\n",
    );
    let code: [u16; 14] = [
        0x6081, 0x6002, 0x6843, 0x079b, 0xd5fc, 0x6804, 0xf240, 0x0126, 0xf2c0, 0x0102, 0xf240, 0x0018,
        0xbeab, 0xe7fe,
    ];
    let mut m = Machine::new(&board).unwrap();
    let mut image = vec![0u8; 0x200];
    image[0..4].copy_from_slice(&0x2000_8000u32.to_le_bytes());
    image[4..8].copy_from_slice(&0x101u32.to_le_bytes());
    for (i, h) in code.iter().enumerate() {
        image[0x100 + 2 * i..0x102 + 2 * i].copy_from_slice(&h.to_le_bytes());
    }
    assert!(m.poke(0, &image));
    m.reset();
    m.cpu.r[0] = 0x4000_5000;
    m.cpu.r[1] = 3; // TX and RX enabled
    m.cpu.r[2] = u32::from(b'A');
    let mut unattached = m.clone();
    m.attach_serial(1, true);

    assert_eq!(m.run(1_000_000), Stop::Serial);
    let sent = m.take_serial_tx();
    assert_eq!(sent.len(), 1);
    let (at, uart, byte) = sent[0];
    assert_eq!((uart, byte), (1, b'A'));
    assert!(at > 0 && at <= m.now, "stamped with the time of the store: {at}, now {}", m.now);
    assert!(m.take_output().is_empty(), "an attached UART's bytes are not console output");
    // Nothing comes back yet: the firmware polls until the budget is used up.
    assert_eq!(m.run(10_000), Stop::Budget);
    assert!(m.serial_rx(1, b"Z"));
    assert!(!m.serial_rx(7, b"?"), "no UART 7 on this board");
    assert_eq!(m.run(1_000_000), Stop::Exit(0));
    assert_eq!(m.cpu.r[4], u32::from(b'Z'));

    // Not attached, the byte is ordinary output and the run does not stop for it.
    assert_eq!(unattached.run(100_000), Stop::Budget);
    assert_eq!(unattached.take_output().len(), 1);
    assert!(unattached.take_serial_tx().is_empty());
}
