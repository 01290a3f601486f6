//! A 3-instruction loop (adds, cmp, bne) run for 3 M guest instructions on a bare board: the
//! engine's per-instruction cost without memory traffic. For profiling (callgrind's total over
//! 3 M gives host instructions per guest instruction).
use twinbed_engine::{Machine, Stop};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let board = twinbed_board::Board::parse(
        "name = \"bare\"\ncpu = \"cortex-m3\"\nclock_hz = 25000000\n[[memory]]\nname = \"code\"\nbase = 0\nsize = 0x10000\n[[memory]]\nname = \"ram\"\nbase = 0x20000000\nsize = 0x10000\n",
        "bare",
    )?;
    let mut m = Machine::new(&board)?;
    let mut image = vec![0u8; 0x200];
    image[0..4].copy_from_slice(&0x2000_8000u32.to_le_bytes());
    image[4..8].copy_from_slice(&0x101u32.to_le_bytes());
    // 0x100: movs r0,#0 ; movw r1,#0x4240 ; movt r1,#0xf (1,000,000)
    // 0x10a: adds r0,#1 ; cmp r0,r1 ; bne 0x10a ; bkpt 0xab (with r0 = 1e6: unknown op, returns)
    // 0x112: movw r1,#0x26 ; movt r1,#2 ; movw r0,#0x18 ; bkpt 0xab
    let code: [u16; 17] = [
        0x2000, 0xf244, 0x2140, 0xf2c0, 0x010f, 0x3001, 0x4288, 0xd1fc, 0xf240, 0x0126, 0xf2c0, 0x0102,
        0xf240, 0x0018, 0xbeab, 0xe7fe, 0xbf00,
    ];
    for (i, h) in code.iter().enumerate() {
        image[0x100 + 2 * i..0x102 + 2 * i].copy_from_slice(&h.to_le_bytes());
    }
    m.poke(0, &image);
    m.reset();
    let repeat: u32 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1);
    let t = std::time::Instant::now();
    let mut total = 0;
    for _ in 0..repeat {
        m.reset();
        m.instret = 0;
        let stop = m.run(u64::MAX / 2);
        assert_eq!(stop, Stop::Exit(0));
        total += m.instret;
    }
    let wall = t.elapsed();
    eprintln!("{total} instructions in {wall:?}: {:.1} M instr/s", total as f64 / wall.as_secs_f64() / 1e6);
    Ok(())
}
