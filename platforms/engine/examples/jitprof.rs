// Throwaway profiling driver (not committed): runs an ELF on mps2-an385 and prints wall time,
// instructions and compile stats.
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let board = twinbed_board::Board::builtin("mps2-an385").unwrap();
    let data = std::fs::read(&args[1]).unwrap();
    let mut m = twinbed_engine::Machine::new(&board).unwrap();
    m.load_elf(&data).unwrap();
    if args.get(2).map(String::as_str) == Some("off") {
        m.set_jit(None);
    }
    if let Ok(t) = std::env::var("TIER") {
        twinbed_engine::set_tier_up_cycles(t.parse().unwrap());
    }
    let t = std::time::Instant::now();
    let s0 = twinbed_engine::compile_stats();
    let stop = m.run(u64::MAX / 4);
    let wall = t.elapsed().as_secs_f64();
    let s1 = twinbed_engine::compile_stats();
    eprintln!("{stop:?} wall {wall:.3} s, {} instr ({:.0} M/s), compiled {} regions ({} instrs) in {:.3} s ({:.1}%)",
        m.instret, m.instret as f64 / wall / 1e6, s1.blocks - s0.blocks, s1.instrs - s0.instrs, (s1.nanos - s0.nanos) as f64 / 1e9,
        100.0 * (s1.nanos - s0.nanos) as f64 / 1e9 / wall);
}
