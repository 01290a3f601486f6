//! A down-counter with the semantics of QEMU's `ptimer` (hw/core/ptimer.c, QEMU 7.2) under the
//! policy set both CMSDK timers use: `WRAP_AFTER_ONE_PERIOD | TRIGGER_ONLY_ON_DECREMENT |
//! NO_IMMEDIATE_RELOAD | NO_COUNTER_ROUND_DOWN`. Time is in core-clock cycles; `period` is the
//! number of cycles per count (1 for a timer clocked at the core clock, 16 or 256 with the dual
//! timer's prescaler).
//!
//! What that means for a guest (facts of QEMU's implementation, reproduced exactly):
//! - Started at count N, the counter reaches 0 after N periods and fires ("trigger").
//! - Periodic: it then holds 0 for one period and reloads the limit L, so later triggers come
//!   every L + 1 periods. Read between two edges, the count is rounded *up* (QEMU's
//!   NO_COUNTER_ROUND_DOWN), so at whole-period times a read shows `remaining + 1`, and a read
//!   during the hold period after a wrap shows 0 for two periods.
//! - One-shot: it stops at 0 after the trigger.
//! - Writing the count or starting the timer never fires by itself, even at count 0.
//! - Periodic with count 0 and limit L > 0: one period at 0, then L, with no trigger for the 0.
//!
//! Not reproduced: QEMU's clamp of periodic timers to >= 10 µs per wrap, which QEMU applies only
//! without `-icount` (twinbed runs QEMU with `-icount`, where the clamp is off).

use serde::{Deserialize, Serialize};

/// Run state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Run {
    /// Not counting.
    Stopped,
    /// Reloads from the limit after reaching 0.
    Periodic,
    /// Stops after reaching 0.
    OneShot,
}

/// `delta_adjust` of QEMU's `ptimer_reload`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Adjust {
    /// From a register write or start (0).
    None,
    /// From an expiry that wraps (+1: the hold-at-0 period).
    Wrap,
    /// From a deferred reload expiry (no adjustment).
    Deferred,
}

/// The counter state (QEMU's `ptimer_state` minus host timers).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Ptimer {
    run: Run,
    limit: u64,
    delta: u64,
    /// Cycles per count, >= 1.
    period: u64,
    last_event: u64,
    next_event: u64,
    /// A write inside the current "transaction" asks for a reload at commit.
    need_reload: bool,
}

impl Ptimer {
    /// A stopped timer with limit and count 0.
    pub(crate) fn new(period: u64) -> Self {
        Self {
            run: Run::Stopped,
            limit: 0,
            delta: 0,
            period: period.max(1),
            last_event: 0,
            next_event: 0,
            need_reload: false,
        }
    }

    /// Whether it is counting.
    pub(crate) fn running(&self) -> bool {
        self.run != Run::Stopped
    }

    /// The reload value.
    pub(crate) fn limit(&self) -> u64 {
        self.limit
    }

    /// The cycle of the next expiry, if counting.
    pub(crate) fn next_event(&self) -> Option<u64> {
        self.running().then_some(self.next_event)
    }

    /// The count at `now` (`ptimer_get_count`).
    pub(crate) fn count(&self, now: u64) -> u64 {
        if self.run == Run::Stopped || self.delta == 0 {
            return self.delta;
        }
        let mut counter = if now >= self.next_event {
            0
        } else {
            let c = (self.next_event - now) / self.period;
            if self.run == Run::Periodic && self.delta == self.limit {
                // WRAP_AFTER_ONE_PERIOD: the counter sits at 0 for one period before it wraps.
                let holding = if now == self.last_event { c == self.limit + 1 } else { c == self.limit };
                if holding {
                    return 0;
                }
            }
            c
        };
        // NO_COUNTER_ROUND_DOWN: between edges the count rounds up.
        if now != self.last_event {
            counter += 1;
        }
        counter
    }

    /// Sets the count (`ptimer_set_count`); takes effect at [`Ptimer::commit`].
    pub(crate) fn set_count(&mut self, count: u64) {
        self.delta = count;
        if self.running() {
            self.need_reload = true;
        }
    }

    /// Sets the limit, and the count too if `reload` (`ptimer_set_limit`).
    pub(crate) fn set_limit(&mut self, limit: u64, reload: bool) {
        self.limit = limit;
        if reload {
            self.delta = limit;
            if self.running() {
                self.need_reload = true;
            }
        }
    }

    /// Starts (or switches the mode of) the timer (`ptimer_run`).
    pub(crate) fn start(&mut self, oneshot: bool) {
        let was_stopped = !self.running();
        self.run = if oneshot { Run::OneShot } else { Run::Periodic };
        if was_stopped {
            self.need_reload = true;
        }
    }

    /// Stops, keeping the count (`ptimer_stop`).
    pub(crate) fn stop(&mut self, now: u64) {
        if !self.running() {
            return;
        }
        self.delta = self.count(now);
        self.run = Run::Stopped;
        self.need_reload = false;
    }

    /// Changes the cycles per count (`ptimer_set_period_from_clock`).
    pub(crate) fn set_period(&mut self, period: u64, now: u64) {
        self.delta = self.count(now);
        self.period = period.max(1);
        if self.running() {
            self.need_reload = true;
        }
    }

    /// Ends a group of changes (`ptimer_transaction_commit`): restarts counting from `now` if
    /// a change asked for it. Never fires (TRIGGER_ONLY_ON_DECREMENT).
    pub(crate) fn commit(&mut self, now: u64) {
        while self.need_reload && self.running() {
            self.need_reload = false;
            self.next_event = now;
            // With Adjust::None the trigger is suppressed, so the result is always false.
            let _ = self.reload(Adjust::None);
        }
        self.need_reload = false;
    }

    /// `ptimer_reload`; returns whether it fired.
    fn reload(&mut self, adjust: Adjust) -> bool {
        let fired = self.delta == 0 && adjust != Adjust::None;
        let mut delta = self.delta;
        if adjust == Adjust::Wrap {
            delta += 1;
        }
        if delta == 0 && self.run == Run::Periodic && self.limit != 0 {
            delta = 1; // NO_IMMEDIATE_RELOAD: one period at 0 first
        }
        if delta == 0 {
            // QEMU: "Timer with delta zero, disabling".
            self.run = Run::Stopped;
            return fired;
        }
        self.last_event = self.next_event;
        self.next_event = self.last_event.saturating_add(delta.saturating_mul(self.period));
        fired
    }

    /// Processes every expiry up to `now`; returns how many times the timer fired.
    pub(crate) fn advance(&mut self, now: u64) -> u64 {
        let mut fired = 0;
        while self.running() && self.next_event <= now {
            // Steady periodic wrapping: every expiry fires and the next one is (L + 1) periods
            // later; skip whole runs of them arithmetically.
            if self.run == Run::Periodic && self.delta == self.limit && self.limit != 0 {
                let step = (self.limit + 1).saturating_mul(self.period);
                let extra = (now - self.next_event) / step;
                if extra > 1 {
                    let skip = extra - 1;
                    self.next_event += skip * step;
                    self.last_event = self.next_event - step;
                    fired += skip;
                }
            }
            fired += self.expire();
        }
        fired
    }

    /// `ptimer_tick` at `next_event`.
    fn expire(&mut self) -> u64 {
        match self.run {
            Run::Stopped => 0,
            Run::OneShot => {
                self.delta = 0;
                self.run = Run::Stopped;
                1
            }
            Run::Periodic => {
                let adjust = if self.delta == 0 || self.limit == 0 { Adjust::Deferred } else { Adjust::Wrap };
                self.delta = self.limit;
                let inner = u64::from(self.reload(adjust));
                inner + u64::from(adjust == Adjust::Wrap)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periodic_fires_after_n_then_every_n_plus_one() {
        let mut t = Ptimer::new(1);
        t.set_limit(10, true);
        t.start(false);
        t.commit(100);
        assert_eq!(t.count(100), 10);
        assert_eq!(t.count(101), 10); // rounds up between edges
        assert_eq!(t.count(109), 2);
        assert_eq!(t.advance(109), 0);
        assert_eq!(t.advance(110), 1);
        assert_eq!(t.count(110), 0);
        assert_eq!(t.count(111), 0); // the hold period
        assert_eq!(t.count(112), 10);
        assert_eq!(t.next_event(), Some(121));
        assert_eq!(t.advance(121 + 11 * 5), 6);
        assert_eq!(t.next_event(), Some(121 + 11 * 6));
    }

    #[test]
    fn oneshot_stops_at_zero() {
        let mut t = Ptimer::new(1);
        t.set_count(5);
        t.start(true);
        t.commit(0);
        assert_eq!(t.advance(1000), 1);
        assert!(!t.running());
        assert_eq!(t.count(2000), 0);
    }
}
