//! Edge aggregation: readings into windows, windows into records, with a deadband.
//!
//! Readings are numbered from 0 at every boot, one number per [`Aggregator::push`]. They are
//! grouped into **windows** of [`AggregatorConfig::window`] consecutive readings. When a window
//! completes, its mean (the window mean) is compared with the mean of the last aggregate this
//! aggregator *emitted* (what the protocol calls the last sent record: the aggregator cannot
//! know whether the outbox later dropped it):
//!
//! - the first window of a boot is always emitted;
//! - a window whose mean differs from the last emitted mean by **less than**
//!   [`AggregatorConfig::deadband`] is not emitted on its own: its readings stay pending and
//!   fold into the next aggregate that is emitted (`deadband` 0 emits every window);
//! - otherwise an aggregate is emitted covering every pending reading: the folded windows and
//!   this one, `first .. first + n`, with min / max / mean over all of them;
//! - a heartbeat bounds the folding: when the pending readings span
//!   [`AggregatorConfig::max_windows`] windows, the aggregate is emitted whatever its mean (so a
//!   steady temperature still reports, and the sums cannot overflow).
//!
//! So consecutive aggregates cover consecutive readings with no gap and no overlap, as
//! PROTOCOL.md §2 requires.
//!
//! # The integer mean
//!
//! `mean = floor(sum / n + 1/2)`: the exact mean rounded to the nearest integer, **ties toward
//! +∞** (1.5 → 2, −1.5 → −1, −2.5 → −2). Computed without floats and without 128-bit
//! arithmetic: `q = sum.div_euclid(n)`, `r = sum.rem_euclid(n)`, `q + (2r >= n)`. The sum is an
//! `i64`, exact for up to 2³² readings of any `i32`.

/// Aggregation settings. Construct with [`AggregatorConfig::new`] (which clamps) or by hand.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AggregatorConfig {
    /// Readings per window (at least 1; 0 reads as 1).
    pub window: u16,
    /// Deadband in milli-°C: a window whose mean is closer than this to the last emitted mean is
    /// folded into the next emitted aggregate. 0 emits every window.
    pub deadband: u32,
    /// Heartbeat: an aggregate spans at most this many windows, whatever the deadband says
    /// (at least 1; 0 reads as 1, which disables folding).
    pub max_windows: u16,
}

impl AggregatorConfig {
    /// A configuration; `window` and `max_windows` of 0 are raised to 1.
    pub const fn new(window: u16, deadband: u32, max_windows: u16) -> Self {
        AggregatorConfig {
            window: if window == 0 { 1 } else { window },
            deadband,
            max_windows: if max_windows == 0 { 1 } else { max_windows },
        }
    }

    fn window_len(&self) -> u32 {
        self.window.max(1) as u32
    }

    fn windows_cap(&self) -> u32 {
        self.max_windows.max(1) as u32
    }
}

impl Default for AggregatorConfig {
    /// Windows of 10 readings, no deadband, at most 10 windows per aggregate.
    fn default() -> Self {
        AggregatorConfig::new(10, 0, 10)
    }
}

/// A summary of consecutive readings `first .. first + n`: the body of a telemetry record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Aggregate {
    /// Number of the first reading covered (readings count from 0 at every boot).
    pub first: u32,
    /// Number of readings covered (at least 1).
    pub n: u32,
    /// Lowest reading, milli-°C.
    pub min: i32,
    /// Highest reading, milli-°C.
    pub max: i32,
    /// Integer mean, milli-°C, rounded to nearest, ties toward +∞ (see the module docs).
    pub mean: i32,
}

/// Rounded integer mean of `n` (> 0) values summing to `sum` (see the module docs).
pub fn mean(sum: i64, n: u32) -> i32 {
    let n = i64::from(n.max(1));
    let q = sum.div_euclid(n);
    let r = sum.rem_euclid(n);
    let m = if 2 * r >= n { q + 1 } else { q };
    // The mean of i32 values is within i32's range.
    m.clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32
}

#[derive(Clone, Copy, Debug)]
struct Acc {
    first: u32,
    n: u32,
    min: i32,
    max: i32,
    sum: i64,
}

impl Acc {
    const EMPTY: Acc = Acc { first: 0, n: 0, min: i32::MAX, max: i32::MIN, sum: 0 };

    fn add(&mut self, reading: i32) {
        self.n += 1;
        self.min = self.min.min(reading);
        self.max = self.max.max(reading);
        self.sum += i64::from(reading);
    }

    fn aggregate(&self) -> Aggregate {
        Aggregate { first: self.first, n: self.n, min: self.min, max: self.max, mean: mean(self.sum, self.n) }
    }
}

/// Turns readings into [`Aggregate`]s: windows, deadband, heartbeat (see the module docs).
#[derive(Clone, Debug)]
pub struct Aggregator {
    config: AggregatorConfig,
    /// Number of the next reading.
    next_reading: u32,
    /// Every reading not yet emitted (folded windows and the current one).
    pending: Acc,
    /// Sum and count of the current window only.
    window_sum: i64,
    window_n: u32,
    /// Completed windows in `pending`.
    windows: u32,
    /// Mean of the last emitted aggregate; `None` until the first.
    last_mean: Option<i32>,
}

impl Aggregator {
    /// A fresh aggregator: the next reading is number 0.
    pub const fn new(config: AggregatorConfig) -> Self {
        Aggregator {
            config,
            next_reading: 0,
            pending: Acc::EMPTY,
            window_sum: 0,
            window_n: 0,
            windows: 0,
            last_mean: None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> AggregatorConfig {
        self.config
    }

    /// Number the next reading will get (= readings pushed so far this boot).
    pub fn next_reading(&self) -> u32 {
        self.next_reading
    }

    /// Readings pushed but not yet in an emitted aggregate.
    pub fn pending_readings(&self) -> u32 {
        self.pending.n
    }

    /// Adds one reading (milli-°C); returns an aggregate when one is emitted.
    pub fn push(&mut self, reading: i32) -> Option<Aggregate> {
        if self.pending.n == 0 {
            self.pending.first = self.next_reading;
        }
        self.pending.add(reading);
        self.next_reading = self.next_reading.wrapping_add(1);
        self.window_sum += i64::from(reading);
        self.window_n += 1;
        if self.window_n < self.config.window_len() {
            return None;
        }
        let window_mean = mean(self.window_sum, self.window_n);
        self.window_sum = 0;
        self.window_n = 0;
        self.windows += 1;
        let emit = match self.last_mean {
            None => true,
            Some(last) => {
                (i64::from(window_mean) - i64::from(last)).unsigned_abs() >= u64::from(self.config.deadband)
            }
        };
        if emit || self.windows >= self.config.windows_cap() {
            self.emit()
        } else {
            None
        }
    }

    /// Emits every pending reading (folded windows and a partial window) as one aggregate, if
    /// there are any, whatever the deadband: before a configuration change, or when the app
    /// wants what it has (e.g. before a long sleep).
    pub fn flush(&mut self) -> Option<Aggregate> {
        self.emit()
    }

    /// Flushes (see [`flush`](Self::flush)) and then applies a new configuration; windows of
    /// the new size start at the next reading.
    pub fn set_config(&mut self, config: AggregatorConfig) -> Option<Aggregate> {
        let flushed = self.flush();
        self.config = config;
        flushed
    }

    fn emit(&mut self) -> Option<Aggregate> {
        self.window_sum = 0;
        self.window_n = 0;
        self.windows = 0;
        if self.pending.n == 0 {
            return None;
        }
        let a = self.pending.aggregate();
        self.pending = Acc::EMPTY;
        self.last_mean = Some(a.mean);
        Some(a)
    }
}
