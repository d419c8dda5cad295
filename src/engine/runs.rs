//! A service's closed state intervals ("runs") with prefix sums, so the time
//! per state in any window is the difference of two lookups (burn-rate windows
//! of days cost the same as windows of minutes).

use std::collections::VecDeque;

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::engine::states::{State, StateDurations};
use crate::time::Millis;

/// Closed maximal intervals as `(start, state)`: contiguous, each ends where the
/// next starts, the last where the open run starts. Only the starts are
/// serialised (16 bytes a run); the sums are rebuilt when read, and kept only
/// for the recent runs windows still reach ([`Runs::forget_sums_before`]).
#[derive(Debug, Clone, Default)]
pub struct Runs {
    starts: Vec<(Millis, State)>,
    /// Time per state up to the start of each of the last `before.len()` runs,
    /// from an arbitrary origin (only differences are used). Never empty while
    /// there are runs: the last run's sum is the base of the next.
    before: VecDeque<StateDurations>,
}

impl Serialize for Runs {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.starts.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Runs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let mut runs = Runs::default();
        for (start, state) in Vec::<(Millis, State)>::deserialize(d)? {
            runs.push(start, state);
        }
        Ok(runs)
    }
}

impl Runs {
    /// The runs, oldest first.
    pub fn as_slice(&self) -> &[(Millis, State)] {
        &self.starts
    }

    /// The latest closed run.
    pub fn last(&self) -> Option<(Millis, State)> {
        self.starts.last().copied()
    }

    /// Index of the first run with a sum.
    fn summed(&self) -> usize {
        self.starts.len() - self.before.len()
    }

    /// Closes a run starting at `start` (after the last one, which ends there).
    pub fn push(&mut self, start: Millis, state: State) {
        let before = self.sums_until(start);
        self.starts.push((start, state));
        self.before.push_back(before);
    }

    /// Reopens the latest run (a zero-length detour is undone).
    pub fn pop(&mut self) -> Option<(Millis, State)> {
        let run = self.starts.pop();
        self.before.pop_back();
        if self.before.is_empty() && !self.starts.is_empty() {
            // Sums only differ by an origin: restart from zero at the last run.
            self.before.push_back(StateDurations::default());
        }
        run
    }

    /// Forgets the `n` oldest runs.
    pub fn drop_oldest(&mut self, n: usize) {
        let unsummed = self.summed();
        self.starts.drain(..n);
        self.before.drain(..n.saturating_sub(unsummed));
    }

    /// Forgets the sums of runs that ended at or before `t` (no window reaches
    /// back to them any more), keeping the last run's.
    pub fn forget_sums_before(&mut self, t: Millis) {
        while self.before.len() > 1 && self.starts[self.summed() + 1].0 <= t {
            self.before.pop_front();
        }
    }

    /// Time per state up to `at`, where `at` is at or after the last run's
    /// start (the open run starts there: every later instant up to the open
    /// run's start lies in the last run).
    fn sums_until(&self, at: Millis) -> StateDurations {
        match (self.starts.last(), self.before.back()) {
            (Some(&(start, state)), Some(&before)) => before.plus(state, at - start),
            _ => StateDurations::default(),
        }
    }

    /// Time per state up to `at`, given the open run (`open_start`,
    /// `open_state`) that extends to at least `at`. Before the first summed run
    /// it is that run's sum: the caller clips windows at the first record and
    /// never reaches further back than the sums kept.
    pub fn sums_at(&self, at: Millis, open_start: Millis, open_state: State) -> StateDurations {
        self.sums_at_from(at, open_start, open_state, &mut { usize::MAX })
    }

    /// [`Runs::sums_at`], starting the search for `at`'s run at `hint` and
    /// leaving it there: a caller asking for later and later instants (a
    /// sliding window's start) pays O(1) per lookup, not a binary search. Any
    /// hint is safe; one past `at` (or stale after pruning) costs a search.
    pub fn sums_at_from(
        &self,
        at: Millis,
        open_start: Millis,
        open_state: State,
        hint: &mut usize,
    ) -> StateDurations {
        if at >= open_start {
            return self
                .sums_until(open_start)
                .plus(open_state, at - open_start);
        }
        // The hint is an index into all runs, so forgetting old sums keeps it valid.
        let (starts, first) = (&self.starts, self.summed());
        let mut i = *hint;
        if i < first || starts.get(i).is_none_or(|r| r.0 > at) {
            match starts[first..].partition_point(|r| r.0 <= at) {
                0 => return self.before.front().copied().unwrap_or_default(),
                n => i = first + n - 1,
            }
        }
        while starts.get(i + 1).is_some_and(|r| r.0 <= at) {
            i += 1;
        }
        *hint = i;
        let (start, state) = starts[i];
        self.before[i - first].plus(state, at - start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_sums_are_differences_and_survive_a_round_trip_and_pruning() {
        let mut runs = Runs::default();
        runs.push(0, State::Up);
        runs.push(100, State::Down);
        runs.push(130, State::NoData);
        // Open run: maintenance from 200.
        let open = (200, State::Maintenance);
        let window = |r: &Runs, a, b| {
            r.sums_at(b, open.0, open.1)
                .minus(&r.sums_at(a, open.0, open.1))
        };
        let w = window(&runs, 90, 250);
        assert_eq!(w, [10, 0, 30, 50, 70]);
        let json = serde_json::to_string(&runs).expect("serialises");
        assert_eq!(json, r#"[[0,"Up"],[100,"Down"],[130,"NoData"]]"#);
        let back: Runs = serde_json::from_str(&json).expect("reads");
        assert_eq!(window(&back, 90, 250), w);
        runs.drop_oldest(1);
        assert_eq!(window(&runs, 100, 250), [0, 0, 30, 50, 70]);
        // Any hint gives the same sums: ahead of the instant, behind it, or stale.
        for hint in [0, 1, 5, usize::MAX] {
            for at in [90, 100, 129, 130, 199, 230] {
                let mut h = hint;
                let got = runs.sums_at_from(at, open.0, open.1, &mut h);
                assert_eq!(got, runs.sums_at(at, open.0, open.1), "{at} from {hint}");
            }
        }
        // Sums of runs no window reaches are dropped; later windows stay exact.
        runs.forget_sums_before(130);
        assert_eq!(window(&runs, 140, 250), [0, 0, 0, 50, 60]);
        assert_eq!(window(&runs, 130, 250), [0, 0, 0, 50, 70]);
        assert_eq!(runs.pop(), Some((130, State::NoData)));
        assert_eq!(runs.as_slice(), &[(100, State::Down)]);
        assert_eq!(window(&runs, 100, 250), [0, 0, 100, 50, 0]);
    }
}
