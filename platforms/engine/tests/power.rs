//! Energy accounting on tiny hand-assembled programs (assembled with `llvm-mc -triple
//! thumbv7m-none-eabi`): exact charge per state for run, sleep, deep sleep and flash operations;
//! the same figures whatever the run's slicing (and with the block compiler on or off, and
//! through snapshots); the fuel gauge as firmware reads it while the battery drains; errors.
//!
//! The test boards run at 1 MHz, so one cycle is one µs and a current of n µA accumulates
//! n × 1000 nA·cycles per cycle.

mod common;

use common::Rng;
use twinbed_board::Board;
use twinbed_engine::periph::fuel_gauge::{self, status};
use twinbed_engine::periph::nor_flash;
use twinbed_engine::power::{EnergyReport, PowerError, RailKind};
use twinbed_engine::{Machine, Stop};

const FLASH_CTRL: u32 = 0x4003_0000;
const GAUGE: u32 = 0x4003_2000;

const POWER: &str = "[power]\nsupply_mv = 3000\ncpu_run_ua = 1000\ncpu_sleep_ua = 100\n\
    cpu_deep_sleep_ua = 2.5\nflash_program_ua = 4000\nflash_erase_ua = 6000\nsensor_ua = 50\n\
    sensor_shutdown_ua = 0.25\nmodem_off_ua = 10\nmodem_idle_ua = 200\nmodem_rx_ua = 3000\n\
    modem_tx_ua = 9000\n";

/// Flash (programmed by the controller) at 0, RAM at 0x2000_0000, the controller, a fuel gauge,
/// a TMP105 on an SBCon bus; `power` and `battery` tables appended.
fn board(power: &str, battery: &str) -> Board {
    let text = format!(
        "name = \"power\"\ncpu = \"cortex-m3\"\nclock_hz = 1000000\n\
         [[memory]]\nname = \"flash\"\nbase = 0\nsize = 0x10000\n\
         [[memory]]\nname = \"ram\"\nbase = 0x20000000\nsize = 0x10000\n\
         [[peripheral]]\nname = \"fc\"\nmodel = \"twinbed-nor-flash\"\nbase = 0x40030000\nmemory = \"flash\"\n\
         [[peripheral]]\nname = \"gauge\"\nmodel = \"twinbed-fuel-gauge\"\nbase = 0x40032000\n\
         [[peripheral]]\nname = \"i2c\"\nmodel = \"sbcon-i2c\"\nbase = 0x4002A000\n\
         [[device]]\nname = \"temp\"\nmodel = \"tmp105\"\nbus = \"i2c\"\naddress = 0x48\n\
         {power}{battery}"
    );
    Board::parse(&text, "power test board").unwrap()
}

const BATTERY: &str =
    "[battery]\ncapacity_mah = 1000\nself_discharge_pct_per_month = 0\ncurve = [[0, 3000], [500, 3600], [1000, 4200]]\n";

/// A machine running `code` from 0x100, SysTick (exception 15) handled at 0x200 by `handler`.
fn machine(board: &Board, code: &[u16], handler: &[u16]) -> Machine {
    let mut m = Machine::new(board).unwrap();
    let mut image = vec![0xffu8; 0x400];
    image[0..4].copy_from_slice(&0x2000_8000u32.to_le_bytes());
    image[4..8].copy_from_slice(&0x101u32.to_le_bytes());
    image[60..64].copy_from_slice(&0x201u32.to_le_bytes());
    for (at, words) in [(0x100, code), (0x200, handler)] {
        for (i, h) in words.iter().enumerate() {
            image[at + 2 * i..at + 2 + 2 * i].copy_from_slice(&h.to_le_bytes());
        }
    }
    assert!(m.poke(0, &image));
    m.reset();
    m
}

/// Semihosting exit(0): movw r1,#0x26 ; movt r1,#2 ; movw r0,#0x18 ; bkpt 0xab ; b .
const EXIT_OK: [u16; 8] = [0xf240, 0x0126, 0xf2c0, 0x0102, 0xf240, 0x0018, 0xbeab, 0xe7fe];

/// SysTick every 1000 cycles, SCR <- r5, WFI; the SysTick handler exits.
///   movw r0,#0xe010 ; movt r0,#0xe000 ; movw r1,#999 ; str r1,[r0,#4]
///   movw r2,#0xed10 ; movt r2,#0xe000 ; str r5,[r2] ; movs r1,#7 ; str r1,[r0]
///   wfi ; b .
const RUN_THEN_SLEEP: [u16; 16] = [
    0xf24e, 0x0010, 0xf2ce, 0x0000, 0xf240, 0x31e7, 0x6041, 0xf64e, 0x5210, 0xf2ce, 0x0200, 0x6015, 0x2107,
    0x6001, 0xbf30, 0xe7fe,
];
/// Address of the WFI in [`RUN_THEN_SLEEP`].
const WFI_AT: u32 = 0x100 + 2 * 14;

fn state(r: &EnergyReport, rail: &str, state: &str) -> (u64, u128) {
    let s = r.state(rail, state).unwrap_or_else(|| panic!("no state {rail}/{state}"));
    (s.cycles, s.charge)
}

/// Per state: (rail, state, cycles, nA·cycles), the figures slicing must not change.
fn figures(r: &EnergyReport) -> Vec<(String, String, u64, u128)> {
    r.states.iter().map(|s| (s.rail.clone(), s.state.clone(), s.cycles, s.charge)).collect()
}

/// 12 cycles of set-up (each MOVW/MOVT/MOVS 1, each STR 2), then WFI: SysTick, enabled by the
/// store at cycle 10 with its counter at 0, counts to zero 1000 cycles later (cycle 1010); the
/// exception entry takes 12 cycles and the handler 3 more before its BKPT exits at 1025.
fn run_then_sleep(scr: u32, sleep_state: &str, sleep_na: u128) {
    let mut m = machine(&board(POWER, BATTERY), &RUN_THEN_SLEEP, &EXIT_OK);
    m.cpu.r[5] = scr;
    m.set_stop_at(Some(WFI_AT));
    assert_eq!(m.run(1_000_000), Stop::StopPoint);
    assert_eq!(m.now, 12);
    let e = m.energy().expect("the board has [power]");
    assert_eq!(state(&e, "cpu", "run"), (12, 12 * 1_000_000));
    assert_eq!(e.current_na, 1_000_000 + 50_000 + 10_000, "core running, sensor converting, modem off");

    m.set_stop_at(None);
    assert_eq!(m.run(1_000_000), Stop::Exit(0));
    assert_eq!(m.now, 1025);
    let e = m.energy().unwrap();
    assert_eq!(state(&e, "cpu", "run"), (27, 27 * 1_000_000));
    assert_eq!(state(&e, "cpu", sleep_state), (998, 998 * sleep_na));
    let other = if sleep_state == "sleep" { "deep-sleep" } else { "sleep" };
    assert_eq!(state(&e, "cpu", other), (0, 0));
    assert_eq!(state(&e, "temp", "measuring"), (1025, 1025 * 50_000), "the TMP105 converts from power-on");
    assert_eq!(state(&e, "modem", "off"), (1025, 1025 * 10_000));
    assert_eq!(state(&e, "fc", "idle"), (1025, 0));
    let total = 27 * 1_000_000 + 998 * sleep_na + 1025 * 60_000;
    assert_eq!(e.total_charge, total);
    assert_eq!(e.average_na, (total / 1025) as u64);
    assert_eq!((e.now, e.time_ns), (1025, 1_025_000));
    // 1 MHz: one nAh is 3.6e9 nA·cycles.
    assert_eq!(e.total_nah, (total / 3_600_000_000) as u64);
    assert!((e.total_uah() - total as f64 / 3.6e12).abs() < 1e-12);
    assert!((e.energy_uwh() - e.total_uah() * 3.0).abs() < 1e-12, "at the 3000 mV supply");
    let table = e.to_string();
    assert!(
        table.contains(&format!("{sleep_state:<11}")) && table.contains("battery 999 \u{2030}, 4199 mV"),
        "{table}"
    );
    assert!(!table.contains("program"), "states that saw no time are left out: {table}");
}

#[test]
fn run_then_sleep_is_charged_exactly_per_cycle() {
    run_then_sleep(0, "sleep", 100_000);
}

#[test]
fn sleepdeep_makes_the_same_sleep_a_deep_sleep() {
    run_then_sleep(1 << 2, "deep-sleep", 2_500);
}

/// The flash test program: ADDR <- r1, DATA <- r2, CMD <- r3 (stores at cycles 0, 2, 4), wait
/// while STATUS.BUSY, exit(0).
const FLASH_COMMAND: [u16; 14] = [
    0x60c1, 0x6102, 0x6143, 0x6844, 0x07e4, 0xd4fc, 0xf240, 0x0126, 0xf2c0, 0x0102, 0xf240, 0x0018, 0xbeab,
    0xe7fe,
];

fn flash_machine(addr: u32, cmd: u32) -> Machine {
    let mut m = machine(&board(POWER, BATTERY), &FLASH_COMMAND, &EXIT_OK);
    m.cpu.r[0] = FLASH_CTRL;
    m.cpu.r[1] = addr;
    m.cpu.r[2] = 0;
    m.cpu.r[3] = cmd;
    m
}

#[test]
fn a_flash_erase_is_charged_from_its_command_to_its_completion_or_the_cut() {
    const ERASE: u64 = nor_flash::ERASE_US; // cycles at 1 MHz
    let mut m = flash_machine(0x8000, 2);
    m.set_stop_at_flash_op(Some(0));
    assert_eq!(m.run(1_000_000), Stop::FlashOp { index: 0 });
    assert_eq!(m.now, 6, "the CMD store started at cycle 4 and took 2");
    let e = m.energy().unwrap();
    assert_eq!(state(&e, "fc", "erase"), (2, 2 * 6_000_000), "in flight: charged up to now");
    assert_eq!(m.current_na(), Some(1_000_000 + 6_000_000 + 50_000 + 10_000), "erase on top of the core");
    assert_eq!(m.current_ua(), Some(7060.0));

    // Cut half way: the erase stops drawing at the cut; the engine's rails are off until power-on.
    let mut cut = m.clone();
    assert_eq!(cut.run(10_000), Stop::Budget);
    let at = cut.now;
    assert!(cut.power_cut(3).is_some(), "the erase was torn");
    let e = cut.energy().unwrap();
    assert_eq!(state(&e, "fc", "erase"), (at - 4, u128::from(at - 4) * 6_000_000));
    assert_eq!(state(&e, "cpu", "run"), (at, u128::from(at) * 1_000_000));
    assert_eq!(cut.current_na(), Some(10_000), "only the modem (the host's) still draws");
    let before = e.total_charge;
    cut.power_on();
    assert_eq!(cut.current_na(), Some(1_060_000), "running again; the sensor converts");
    assert_eq!(cut.energy().unwrap().total_charge, before, "power cycles keep the charge");

    // Left alone, it erases for exactly ERASE cycles while the core polls.
    assert_eq!(m.run(1_000_000), Stop::Exit(0));
    let e = m.energy().unwrap();
    assert_eq!(state(&e, "fc", "erase"), (ERASE, u128::from(ERASE) * 6_000_000));
    assert_eq!(state(&e, "fc", "program"), (0, 0));
    assert_eq!(state(&e, "fc", "idle").0, m.now - ERASE);
    assert_eq!(state(&e, "cpu", "run").0, m.now, "the core never slept");
    assert_eq!(m.current_na(), Some(1_060_000));
}

#[test]
fn word_and_row_programs_count_as_program() {
    for (cmd, us) in [(1, nor_flash::PROGRAM_US), (3, nor_flash::ROW_PROGRAM_US)] {
        let mut m = flash_machine(0x8000, cmd);
        assert_eq!(m.run(1_000_000), Stop::Exit(0));
        let e = m.energy().unwrap();
        assert_eq!(state(&e, "fc", "program"), (us, u128::from(us) * 4_000_000), "command {cmd}");
        assert_eq!(state(&e, "fc", "erase"), (0, 0));
    }
}

/// SysTick every 3000 cycles (handler: BX LR); 40 times: a busy loop of 200 iterations, an
/// erase command every 4th round (issued while the last is still busy, sometimes: BUSY_ERR),
/// SCR.SLEEPDEEP on every other round, WFI. Then exit(0). r0 = controller, r1 = page.
const DUTY_CYCLE: [u16; 37] = [
    0xf24e, 0x0210, 0xf2ce, 0x0200, 0xf640, 0x33b7, 0x6053, 0x2307, 0x6013, 0xf64e, 0x5410, 0xf2ce, 0x0400,
    0x2600, 0x27c8, 0x3f01, 0xd1fd, 0x07b3, 0xd102, 0x60c1, 0x2302, 0x6143, 0x07f3, 0x0f5b, 0x6023, 0xbf30,
    0x3601, 0x2e28, 0xd1f0, 0xf240, 0x0126, 0xf2c0, 0x0102, 0xf240, 0x0018, 0xbeab, 0xe7fe,
];
/// BX LR.
const RETURN: [u16; 1] = [0x4770];

fn duty_cycle_machine() -> Machine {
    let mut m = machine(&board(POWER, BATTERY), &DUTY_CYCLE, &RETURN);
    m.cpu.r[0] = FLASH_CTRL;
    m.cpu.r[1] = 0x8000;
    m.set_external_state("modem", "idle").unwrap();
    m
}

#[test]
fn the_figures_do_not_depend_on_the_slicing_of_the_run() {
    let mut whole = duty_cycle_machine();
    assert_eq!(whole.run(u64::MAX / 2), Stop::Exit(0));
    let reference = whole.energy().unwrap();
    for s in ["run", "sleep", "deep-sleep"] {
        assert!(state(&reference, "cpu", s).0 > 0, "the program has some {s}");
    }
    assert!(state(&reference, "fc", "erase").0 >= 2 * nor_flash::ERASE_US, "some erases");
    assert_eq!(reference.total_charge, reference.states.iter().map(|s| s.charge).sum::<u128>());
    assert_eq!(state(&reference, "modem", "idle").0, whole.now);

    let seed = std::env::var("TWINBED_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(0x005e_ed0f_e4e6);
    let mut rng = Rng(seed);
    for (round, jit) in [(0, Some(256)), (1, None), (2, Some(1))] {
        let mut m = duty_cycle_machine();
        m.set_jit(jit);
        let mut calls = 0;
        let stop = loop {
            // Budgets from 1 cycle up, queried in between: neither may change the figures.
            let budget = 1 + u64::from(rng.below(if calls % 3 == 0 { 40 } else { 5000 }));
            let stop = m.run(budget);
            calls += 1;
            if calls % 7 == 0 {
                let _ = (m.energy(), m.current_na());
            }
            if calls % 500 == 250 {
                // A snapshot through postcard, then on from the copy.
                m = Machine::from_bytes(&m.to_bytes().unwrap()).unwrap();
            }
            if stop != Stop::Budget {
                break stop;
            }
        };
        assert_eq!(stop, Stop::Exit(0), "round {round} (seed {seed})");
        assert!(calls > 50, "sliced into {calls} calls");
        let e = m.energy().unwrap();
        assert_eq!((m.now, m.instret), (whole.now, whole.instret), "round {round} (seed {seed})");
        assert_eq!(figures(&e), figures(&reference), "round {round}, {calls} calls (seed {seed})");
        assert_eq!(e, reference, "round {round} (seed {seed})");
    }
}

#[test]
fn a_snapshot_carries_the_accounting() {
    let mut m = duty_cycle_machine();
    assert_eq!(m.run(50_000), Stop::Budget);
    let json = serde_json::to_string(&m).unwrap();
    let mut from_json: Machine = serde_json::from_str(&json).unwrap();
    let mut from_bytes = Machine::from_bytes(&m.to_bytes().unwrap()).unwrap();
    let mut fork = m.clone();
    assert_eq!(from_json.energy(), m.energy());
    assert_eq!(from_bytes.energy(), m.energy());
    for x in [&mut m, &mut fork, &mut from_json, &mut from_bytes] {
        x.set_external_state("modem", "tx").unwrap();
        assert_eq!(x.run(u64::MAX / 2), Stop::Exit(0));
    }
    let e = m.energy().unwrap();
    assert_eq!(fork.energy().unwrap(), e);
    assert_eq!(from_json.energy().unwrap(), e);
    assert_eq!(from_bytes.energy().unwrap(), e);
    assert_eq!(state(&e, "modem", "idle"), (50_000, 50_000 * 200_000));
    assert_eq!(state(&e, "modem", "tx").0, m.now - 50_000);
}

#[test]
fn external_loads_follow_the_host_at_the_machine_time() {
    let mut m = machine(&board(POWER, BATTERY), &[0xe7fe], &RETURN); // b .
    assert_eq!(m.run(1000), Stop::Budget);
    let t0 = m.now;
    m.set_external_state("modem", "rx").unwrap();
    assert_eq!(m.current_na(), Some(1_000_000 + 50_000 + 3_000_000));
    assert_eq!(m.run(500), Stop::Budget);
    let t1 = m.now;
    m.set_external_state("modem", "tx").unwrap();
    m.set_external_state("modem", "tx").unwrap(); // no change
    assert_eq!(m.run(100), Stop::Budget);
    m.set_external_state("modem", "off").unwrap();
    let e = m.energy().unwrap();
    assert_eq!(state(&e, "modem", "rx"), (t1 - t0, u128::from(t1 - t0) * 3_000_000));
    assert_eq!(state(&e, "modem", "tx"), (m.now - t1, u128::from(m.now - t1) * 9_000_000));
    assert_eq!(state(&e, "modem", "off").0, t0);
    assert_eq!(e.states.iter().find(|s| s.rail == "modem").map(|s| s.kind), Some(RailKind::External));

    let err = m.set_external_state("radio", "tx").unwrap_err();
    assert!(matches!(err, PowerError::UnknownLoad { .. }) && err.to_string().contains("`modem`"), "{err}");
    let err = m.set_external_state("cpu", "sleep").unwrap_err();
    assert!(matches!(err, PowerError::UnknownLoad { .. }), "the core is the engine's: {err}");
    let err = m.set_external_state("modem", "psm").unwrap_err();
    assert_eq!(err.to_string(), "external load `modem` has no state `psm`: it has off, idle, rx, tx");
}

#[test]
fn a_board_without_power_is_not_accounted() {
    let b = Board::parse(
        "name = \"bare\"\ncpu = \"cortex-m3\"\nclock_hz = 1000000\n\
         [[memory]]\nname = \"code\"\nbase = 0\nsize = 0x10000\n\
         [[memory]]\nname = \"ram\"\nbase = 0x20000000\nsize = 0x10000\n",
        "bare",
    )
    .unwrap();
    let mut m = machine(&b, &RUN_THEN_SLEEP, &EXIT_OK);
    m.cpu.r[5] = 0;
    assert_eq!(m.run(1_000_000), Stop::Exit(0));
    assert_eq!(m.now, 1025, "the same run as with [power]");
    assert_eq!(m.energy(), None);
    assert_eq!(m.current_ua(), None);
    assert_eq!(m.set_external_state("modem", "tx"), Err(PowerError::NotAccounted));
    assert_eq!(m.set_battery_soc(500), Err(PowerError::NotAccounted));
}

#[test]
fn a_fuel_gauge_needs_a_battery() {
    let e = Machine::new(&board(POWER, "")).unwrap_err().to_string();
    assert!(e.contains("twinbed-fuel-gauge needs a [battery]"), "{e}");
}

#[test]
fn the_an385_board_has_accounting_and_a_gauge() {
    let b = Board::builtin("mps2-an385").unwrap();
    let mut m = Machine::new(&b).unwrap();
    let e = m.energy().expect("mps2-an385 has [power]");
    let rails: Vec<&str> = e.states.iter().map(|s| s.rail.as_str()).collect();
    for r in ["cpu", "flash", "temp", "modem"] {
        assert!(rails.contains(&r), "rail {r} in {rails:?}");
    }
    assert_eq!(e.battery.as_ref().map(|b| (b.soc_permille, b.voltage_mv)), Some((1000, 4190)));
    assert!(matches!(m.periph_mut("fuel-gauge"), Some(twinbed_engine::periph::Model::FuelGauge(_))));
    assert_eq!(m.current_na(), Some(5_500_000 + 50_000 + 600_000), "core, sensor, modem off");
}

/// Reads the gauge in a loop, r0 = gauge base:
///   ldr r1,[r0,#8] (VOLTAGE) ; ldr r2,[r0,#0xc] (SOC) ; ldr r3,[r0,#4] (STATUS)
///   ldr r4,[r0,#0x14] (AVG) ; ldr r5,[r0,#0x18] (µAh) ; ldr r6,[r0,#0x1c] (nAh lo)
///   ldr r7,[r0,#0] (ID) ; b loop
const READ_GAUGE: [u16; 8] = [0x6881, 0x68c2, 0x6843, 0x6944, 0x6985, 0x69c6, 0x6807, 0xe7f7];
/// Address of the `b loop`; the loads before it start 14, 12, ..., 2 cycles earlier.
const READ_GAUGE_END: u32 = 0x100 + 2 * 7;

/// A 1 µAh battery on a board drawing exactly 1 mA while the core runs: it empties in
/// 3.6e12 nA·cycles / 1e6 nA = 3.6 s of virtual time.
fn tiny_battery_machine() -> Machine {
    let power = "[power]\nsupply_mv = 3000\ncpu_run_ua = 1000\ncpu_sleep_ua = 0\ncpu_deep_sleep_ua = 0\n\
        flash_program_ua = 0\nflash_erase_ua = 0\nsensor_ua = 0\nmodem_off_ua = 0\nmodem_idle_ua = 0\n\
        modem_rx_ua = 0\nmodem_tx_ua = 0\n";
    let battery = "[battery]\ncapacity_mah = 0.001\nself_discharge_pct_per_month = 0\n\
        curve = [[0, 3000], [500, 3600], [1000, 4200]]\n";
    let mut m = machine(&board(power, battery), &READ_GAUGE, &RETURN);
    m.cpu.r[0] = GAUGE;
    m
}

/// State of charge (ppm) of the tiny battery at cycle `t`: 1 - t / 3.6e6.
fn tiny_ppm(t: u64) -> u64 {
    (3_600_000 - t.min(3_600_000)) * 1_000_000 / 3_600_000
}

/// The curve [[0, 3000], [500, 3600], [1000, 4200]] at `ppm`.
fn tiny_mv(ppm: u64) -> u32 {
    (3000 + 1200 * ppm / 1_000_000) as u32
}

#[test]
fn the_gauge_shows_the_battery_draining_along_its_curve() {
    let mut m = tiny_battery_machine();
    for target in [1_800_000u64, 2_700_000, 3_700_000] {
        assert_eq!(m.run(target - m.now), Stop::Budget);
        m.set_stop_at(Some(READ_GAUGE_END));
        assert_eq!(m.run(1000), Stop::StopPoint);
        m.set_stop_at(None);
        let end = m.now;
        let [volt, soc, st, avg, uah, nah, id] = [1, 2, 3, 4, 5, 6, 7].map(|r| m.cpu.r[r]);
        assert_eq!(id, fuel_gauge::ID, "\"TBFG\"");
        assert_eq!(volt, tiny_mv(tiny_ppm(end - 14)), "voltage read at {}", end - 14);
        assert_eq!(u64::from(soc), tiny_ppm(end - 12) / 1000);
        assert_eq!(avg, 1000, "1 mA all along");
        assert_eq!(u64::from(uah), (end - 6) / 3_600_000, "1 mA for t µs is t/3.6e6 µAh");
        assert_eq!(u64::from(nah), (end - 4) * 1000 / 3_600_000);
        let e = m.energy().unwrap();
        let b = e.battery.as_ref().unwrap();
        assert_eq!((u64::from(b.soc_permille), b.voltage_mv), (tiny_ppm(end) / 1000, tiny_mv(tiny_ppm(end))));
        match target {
            // Read within a loop iteration of the target (the exact figures are checked above).
            1_800_000 => {
                assert!((3599..=3600).contains(&volt) && (499..=500).contains(&soc), "half way: {volt} mV");
                assert_eq!(st, status::READY);
            }
            2_700_000 => {
                assert!((3299..=3300).contains(&volt) && (249..=250).contains(&soc), "a quarter: {volt} mV");
                assert_eq!(st, status::READY);
            }
            _ => {
                assert_eq!((volt, soc), (3000, 0), "empty: the curve's first point");
                assert_eq!(st, status::READY | status::LOW | status::EMPTY);
                assert!(b.empty);
                assert_eq!(b.drawn_nah, 1000, "at most the capacity");
            }
        }
    }
}

#[test]
fn the_host_can_start_from_a_given_state_of_charge_and_self_discharge_drains_it() {
    let mut m = machine(&board(POWER, BATTERY), &[0xe7fe], &RETURN);
    m.set_battery_soc(800).unwrap();
    let b = m.energy().unwrap().battery.unwrap();
    assert_eq!((b.soc_permille, b.voltage_mv), (800, 3960), "3600 + 600 × 300/500");
    assert_eq!(m.set_battery_soc(1001), Err(PowerError::SocOutOfRange { permille: 1001 }));

    // 60 % per month on 1000 mAh: 1 s of virtual time self-discharges 600 mAh / 2_592_000 s.
    let battery = BATTERY.replace("month = 0", "month = 60");
    let mut m = machine(&board(POWER, &battery), &[0xe7fe], &RETURN);
    assert_eq!(m.run(1_000_000), Stop::Budget);
    let e = m.energy().unwrap();
    let b = e.battery.as_ref().unwrap();
    // 600 mAh / 2_592_000 s = 231.48 nAh per second; exactly, capacity (µAh) × rate (1/1000 %)
    // × cycles / 72_000 nA·cycles.
    let sd = 1_000_000u128 * 60_000 * u128::from(m.now) / 72_000;
    assert_eq!(b.self_discharge_nah, 231);
    assert_eq!(b.self_discharge_nah, (sd / 3_600_000_000) as u64);
    assert_eq!(b.drawn_nah, ((e.total_charge + sd) / 3_600_000_000) as u64);
}
