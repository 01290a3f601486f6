//! Machine snapshots on the embedded engine: a snapshot is a clone. Fork the reference app in
//! the middle of a run (and also save it to a file and load it back), run every copy to the
//! end, and get the same transcript, byte for byte.

use twinbed::runner::{Console, Sources};
use twinbed::testkit;
use twinbed_engine::{Machine, Stop};

fn console(m: &mut Machine) -> String {
    let mut console = Console::new(Sources::Console);
    console.push(m.take_output());
    console.take_raw()
}

fn run_to_exit(m: &mut Machine) -> (Stop, String) {
    let mut text = String::new();
    for _ in 0..10_000 {
        let stop = m.run(2_500_000);
        text.push_str(&console(m));
        if stop != Stop::Budget {
            return (stop, text);
        }
    }
    panic!("the app did not exit within 10,000 slices");
}

#[test]
fn a_forked_machine_runs_to_the_same_end() {
    let fw = testkit::test_firmware();
    let board = twinbed::Board::builtin("mps2-an385").unwrap();
    let mut m = Machine::new(&board).unwrap();
    m.load_elf(&std::fs::read(&fw.app).unwrap()).unwrap();
    assert!(m.set_temperature("temp", 23_000));
    // Run into the middle: 2.5 samples' worth of virtual time (the app samples once a second).
    let mut head = String::new();
    while m.now < 62_500_000 {
        assert_eq!(m.run(2_500_000), Stop::Budget);
        head.push_str(&console(&mut m));
    }
    assert!(head.contains("sample 1:"), "{head}");
    assert!(!head.contains("sample 2:"), "{head}");

    let mut fork = m.clone();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mid-run.snapshot");
    m.save_file(&file).unwrap();
    let mut restored = Machine::load_file(&file).unwrap();
    assert_eq!(Machine::from_bytes(&m.to_bytes().unwrap()).unwrap().cpu, m.cpu);
    let (a_stop, a) = run_to_exit(&mut m);
    let (b_stop, b) = run_to_exit(&mut fork);
    let (c_stop, c) = run_to_exit(&mut restored);
    assert_eq!(a_stop, Stop::Exit(0));
    assert_eq!((a_stop, &a), (b_stop, &b), "fork diverged");
    assert_eq!((a_stop, &a), (c_stop, &c), "restored snapshot diverged");
    assert!(a.contains("sample 4: temperature 23.0000 C"), "{a}");
    assert_eq!((m.now, m.instret), (restored.now, restored.instret));
}
