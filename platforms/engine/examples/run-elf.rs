//! Runs an ELF on the mps2-an385 to its exit and prints the console, then timing figures on
//! stderr: `cargo run --release -p twinbed-engine --example run-elf -- app.elf`. A tool for
//! profiling the engine (e.g. under `perf` or `valgrind --tool=callgrind`).
use std::time::Instant;
use twinbed_engine::{Machine, Stop};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: run-elf ELF")?;
    let board = twinbed_board::Board::builtin("mps2-an385")?;
    let mut m = Machine::new(&board)?;
    m.load_elf(&std::fs::read(&path)?)?;
    let started = Instant::now();
    let stop = loop {
        match m.run(25_000_000) {
            Stop::Budget => {}
            other => break other,
        }
        if started.elapsed().as_secs() > 120 {
            break Stop::Budget;
        }
    };
    let wall = started.elapsed();
    let out: Vec<u8> = m.take_output().into_iter().map(|(_, b)| b).collect();
    print!("{}", String::from_utf8_lossy(&out));
    eprintln!(
        "{stop:?}: {} instructions, {} cycles ({:.3} s virtual) in {:.3} s: {:.1} M instr/s",
        m.instret,
        m.now,
        m.now as f64 / f64::from(m.clock_hz),
        wall.as_secs_f64(),
        m.instret as f64 / wall.as_secs_f64() / 1e6
    );
    Ok(())
}
