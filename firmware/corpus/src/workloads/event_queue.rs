//! An event-driven protocol parser: a producer puts the bytes of framed messages (`0x7e`,
//! length, payload, xor checksum; some corrupted on purpose, some line noise between them)
//! into a `heapless::Deque`, and a branchy state machine consumes them whenever the queue is
//! full and at the end of each slice, collecting payloads in a `heapless::Vec`.
//!
//! Checks: the parser accepted exactly the good frames, rejected exactly the corrupted ones,
//! skipped exactly the noise, and saw no bad length.

use crate::{fold, Failure, Workload, XorShift32};
use heapless::{Deque, Vec};

const SYNC: u8 = 0x7e;
const MAX_PAYLOAD: usize = 12;
const FRAMES_PER_SLICE: u32 = 8;

/// The parser's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Skipping bytes until a sync byte.
    Hunt,
    /// Expecting the length.
    Length,
    /// Collecting `len` payload bytes.
    Payload { len: u8 },
    /// Expecting the checksum.
    Checksum,
}

/// What the producer made and what the parser found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    good: u32,
    bad: u32,
    noise: u32,
    bad_length: u32,
}

/// The producer, the queue and the parser.
pub struct EventQueue {
    rng: XorShift32,
    queue: Deque<u8, 32>,
    state: State,
    payload: Vec<u8, MAX_PAYLOAD>,
    xsum: u8,
    produced: Counts,
    parsed: Counts,
    digest: u32,
}

impl EventQueue {
    /// A fresh workload.
    pub fn new() -> Self {
        Self {
            rng: XorShift32(0x510e_527f),
            queue: Deque::new(),
            state: State::Hunt,
            payload: Vec::new(),
            xsum: 0,
            produced: Counts::default(),
            parsed: Counts::default(),
            digest: 0,
        }
    }

    fn push(&mut self, byte: u8) {
        if self.queue.is_full() {
            self.drain();
        }
        // Never fails: the queue was just drained if it was full.
        let _ = self.queue.push_back(byte);
    }

    fn drain(&mut self) {
        while let Some(b) = self.queue.pop_front() {
            self.on_byte(b);
        }
    }

    fn on_byte(&mut self, b: u8) {
        self.state = match self.state {
            State::Hunt if b == SYNC => State::Length,
            State::Hunt => {
                self.parsed.noise += 1;
                State::Hunt
            }
            State::Length if b == 0 || usize::from(b) > MAX_PAYLOAD => {
                self.parsed.bad_length += 1;
                State::Hunt
            }
            State::Length => {
                self.payload.clear();
                self.xsum = b;
                State::Payload { len: b }
            }
            State::Payload { len } => {
                let _ = self.payload.push(b);
                self.xsum ^= b;
                if self.payload.len() == usize::from(len) {
                    State::Checksum
                } else {
                    State::Payload { len }
                }
            }
            State::Checksum => {
                if b == self.xsum {
                    self.parsed.good += 1;
                    let word =
                        self.payload.iter().fold(0u32, |h, &x| (h ^ u32::from(x)).wrapping_mul(0x0100_0193));
                    self.digest = fold(self.digest, word);
                } else {
                    self.parsed.bad += 1;
                }
                State::Hunt
            }
        };
    }
}

impl Default for EventQueue {
    fn default() -> Self {
        Self::new()
    }
}

impl Workload for EventQueue {
    const NAME: &'static str = "event-queue";

    fn step(&mut self) {
        for _ in 0..FRAMES_PER_SLICE {
            let r = self.rng.next_u32();
            // Line noise before one frame in four: 1-3 bytes that are never the sync byte.
            if r & 3 == 0 {
                for i in 0..1 + (r >> 2) % 3 {
                    let noise = (r >> (8 + 4 * i)) as u8;
                    self.push(if noise == SYNC { 0 } else { noise });
                    self.produced.noise += 1;
                }
            }
            let len = 1 + (r >> 20) as u8 % MAX_PAYLOAD as u8;
            self.push(SYNC);
            self.push(len);
            let mut xsum = len;
            let mut bits = self.rng.next_u32();
            for i in 0..len {
                if i % 4 == 0 && i > 0 {
                    bits = self.rng.next_u32();
                }
                let b = (bits >> (8 * (i % 4))) as u8;
                xsum ^= b;
                self.push(b);
            }
            // One frame in five is corrupted.
            if (r >> 24).is_multiple_of(5) {
                self.push(xsum ^ 0x5a);
                self.produced.bad += 1;
            } else {
                self.push(xsum);
                self.produced.good += 1;
            }
        }
        self.drain();
    }

    fn digest(&self) -> u32 {
        fold(fold(self.digest, self.parsed.good), self.parsed.noise)
    }

    fn check(&self) -> Result<(), Failure> {
        if self.parsed != self.produced {
            return Err(Failure("the parser's counts differ from the producer's"));
        }
        Ok(())
    }
}
