//! Seeded garbage from the modem, mixed with commands and time: never a panic, and the client
//! always recovers once the garbage stops.

mod common;

use common::{Ev, Rig};
use modem_at::{Command, QoS, MAX_IN_FLIGHT};
use twinbed_contract::rng::SplitMix64;

/// The contract's SplitMix64 (the generator every test draws from), in the u32s this test uses.
struct Rng(SplitMix64);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0.next_u32()
    }

    fn below(&mut self, n: u32) -> u32 {
        self.0.below(u64::from(n)) as u32
    }
}

/// Pieces of real modem output, so that garbage often almost parses.
const TOKENS: &[&[u8]] = &[
    b"OK\r\n",
    b"ERROR\r\n",
    b"\r\n",
    b"\r",
    b"\n",
    b"> ",
    b">",
    b"\"",
    b",",
    b" ",
    b"-",
    b"0",
    b"1",
    b"7",
    b"128",
    b"65535",
    b"4294967296",
    b"99999999999",
    b"+QMTRECV: 0,",
    b"+QMTRECV: 0,1,\"t\",5,\"",
    b"+QMTRECV: 0,2,\"twinbed/d/down\",0,\"",
    b"+QMTRECV: 0,3,\"t\",70000,\"",
    b"+QMTRECV: 0,4,\"\xff\xfe\",2,\"",
    b"+QMTOPEN: 0,",
    b"+QMTCONN: 0,0,",
    b"+QMTSUB: 0,1,0,",
    b"+QMTPUBEX: 0,",
    b"+QMTPUBEX: 0,1,0\r\n",
    b"+QMTSTAT: 0,1\r\n",
    b"+QMTDISC: 0,0\r\n",
    b"+QMTCLOSE: 0,0\r\n",
    b"+CEREG: ",
    b"+CEREG: 0,1\r\n",
    b"+CME ERROR: 3\r\n",
    b"RDY\r\n",
    b"\x00",
    b"\xff",
];

fn garbage(rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1 + rng.below(6) {
        if rng.below(4) == 0 {
            out.push(rng.next() as u8);
        } else {
            out.extend_from_slice(TOKENS[rng.below(TOKENS.len() as u32) as usize]);
        }
    }
    out
}

fn call(rig: &mut Rig, rng: &mut Rng) {
    let topics = ["t", "twinbed/d/down", "bad\"topic", ""];
    let topic = topics[rng.below(4) as usize];
    let qos = [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce][rng.below(3) as usize];
    let payload = vec![b'p'; rng.below(40) as usize];
    // Results are ignored: Busy, InFlight, InvalidArgument, TooLong are all fine here.
    let _ = match rng.below(9) {
        0 => rig.m.at().map(|()| 0),
        1 => rig.m.set_radio(rng.below(2) == 0).map(|()| 0),
        2 => rig.m.query_registration().map(|()| 0),
        3 => rig.m.open(topic, 1883).map(|()| 0),
        4 => rig.m.connect(topic).map(|()| 0),
        5 => rig.m.subscribe(topic, qos),
        6 => rig.m.publish(topic, &payload, qos, rng.below(2) == 0),
        7 => rig.m.disconnect().map(|()| 0),
        _ => rig.m.close().map(|()| 0),
    };
}

#[test]
fn seeded_garbage_never_panics_and_the_client_recovers() {
    let mut received = 0;
    for seed in 1..=3000u32 {
        let mut rng = Rng(SplitMix64::new(u64::from(seed)));
        let mut rig = Rig::with_buffers(8 + rng.below(64) as usize, 8 + rng.below(32) as usize);
        for _ in 0..300 {
            match rng.below(10) {
                0..=5 => rig.feed(&garbage(&mut rng)),
                6..=7 => call(&mut rig, &mut rng),
                _ => rig.now = rig.now.wrapping_add(rng.below(3_000)),
            }
            for e in rig.events() {
                if let Ev::Received(_, topic, payload) = e {
                    assert!(topic.len() + payload.len() <= 72);
                    received += 1;
                }
            }
            assert!(rig.m.publishes_in_flight() <= MAX_IN_FLIGHT);
        }
        // The garbage stops (its last line, maybe unterminated, ends: it may still be a valid
        // URC): every wait ends within the longest timeout.
        rig.reply(b"\r\n");
        rig.advance(10_000);
        rig.advance(10_000);
        assert!(rig.m.is_idle(), "seed {seed}");
        // A clean exchange works.
        rig.tx();
        rig.m.at().unwrap();
        rig.expect_tx(b"AT\r\n");
        assert_eq!(rig.reply(b"\r\nOK\r\n"), [Ev::Done(Command::At, Ok(()))], "seed {seed}");
    }
    assert!(received > 100, "the garbage should sometimes form messages: {received}");
}
