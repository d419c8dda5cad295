//! A service's closed state intervals ("runs") with prefix sums, so the time
//! per state in any window is the difference of two lookups (burn-rate windows
//! of days cost the same as windows of minutes).

use serde::de::Deserializer;
use serde::ser::Serializer;
use serde::{Deserialize, Serialize};

use crate::engine::availability::{State, StateDurations};
use crate::time::Millis;

/// Closed maximal intervals as `(start, state)`: contiguous, each ends where the
/// next starts, the last where the open run starts. Only the starts are
/// serialised (16 bytes a run); the sums are rebuilt when read.
#[derive(Debug, Clone, Default)]
pub struct Runs {
    starts: Vec<(Millis, State)>,
    /// Time per state from the first kept run's start to each run's start.
    before: Vec<StateDurations>,
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

    /// Closes a run starting at `start` (after the last one, which ends there).
    pub fn push(&mut self, start: Millis, state: State) {
        let before = self.sums_until(start);
        self.starts.push((start, state));
        self.before.push(before);
    }

    /// Reopens the latest run (a zero-length detour is undone).
    pub fn pop(&mut self) -> Option<(Millis, State)> {
        self.before.pop();
        self.starts.pop()
    }

    /// Forgets the `n` oldest runs.
    pub fn drop_oldest(&mut self, n: usize) {
        self.starts.drain(..n);
        self.before.drain(..n);
    }

    /// Time per state from the first kept run's start to `at`, where `at` is at
    /// or after the last run's start (the open run starts there: every later
    /// instant up to the open run's start lies in the last run).
    fn sums_until(&self, at: Millis) -> StateDurations {
        match (self.starts.last(), self.before.last()) {
            (Some(&(start, state)), Some(&before)) => before.plus(state, at - start),
            _ => StateDurations::default(),
        }
    }

    /// Time per state from the first kept run's start to `at`, given the open
    /// run (`open_start`, `open_state`) that extends to at least `at`. Before the
    /// first kept run it is zero: the caller clips windows there.
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
        let starts = &self.starts;
        let mut i = *hint;
        if starts.get(i).is_none_or(|r| r.0 > at) {
            match starts.partition_point(|r| r.0 <= at) {
                0 => return StateDurations::default(),
                n => i = n - 1,
            }
        }
        while starts.get(i + 1).is_some_and(|r| r.0 <= at) {
            i += 1;
        }
        *hint = i;
        let (start, state) = starts[i];
        self.before[i].plus(state, at - start)
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
        assert_eq!(runs.pop(), Some((130, State::NoData)));
        assert_eq!(runs.as_slice(), &[(100, State::Down)]);
    }
}
