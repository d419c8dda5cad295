//! The vocabulary of a service's timeline: its states (contract section 4),
//! milliseconds per state, and what of them counts as measured time and as
//! downtime. A leaf of the engine: the timeline, its run sums and the
//! contractual split all build on it.

use serde::{Deserialize, Serialize};

use crate::config::NoData;
use crate::time::Millis;

/// A service's state at an instant, in the contract's precedence order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum State {
    /// All known sources up.
    Up = 0,
    /// Some known source not up, quorum not down.
    Degraded = 1,
    /// `down_when` quorum down.
    Down = 2,
    /// Inside an announced maintenance window.
    Maintenance = 3,
    /// No source known.
    NoData = 4,
}

impl State {
    /// All states, indexable by `as usize`.
    pub const ALL: [State; 5] = [
        State::Up,
        State::Degraded,
        State::Down,
        State::Maintenance,
        State::NoData,
    ];

    /// The state named `s` (as [`State::as_str`] writes it).
    pub fn parse(s: &str) -> Option<State> {
        State::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Lower-case name used in tables and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            State::Up => "up",
            State::Degraded => "degraded",
            State::Down => "down",
            State::Maintenance => "maintenance",
            State::NoData => "nodata",
        }
    }
}

/// Milliseconds per state (of a bucket, a month, a period), indexed by [`State`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct StateDurations([Millis; 5]);

impl StateDurations {
    /// Time in a known state (everything but `nodata`).
    pub fn known(&self) -> Millis {
        self.0[..State::NoData as usize].iter().sum()
    }

    /// These durations with `ms` more in `state`.
    pub fn plus(mut self, state: State, ms: Millis) -> Self {
        self[state] += ms;
        self
    }

    /// Per-state difference (the time of a window from two prefix sums).
    pub fn minus(&self, earlier: &StateDurations) -> Self {
        StateDurations(std::array::from_fn(|i| self.0[i] - earlier.0[i]))
    }

    /// All time accounted.
    pub fn total(&self) -> Millis {
        self.0.iter().sum()
    }
}

impl PartialEq<[Millis; 5]> for StateDurations {
    /// Compares with durations listed in [`State::ALL`] order.
    fn eq(&self, other: &[Millis; 5]) -> bool {
        self.0 == *other
    }
}

impl std::ops::Index<State> for StateDurations {
    type Output = Millis;
    fn index(&self, s: State) -> &Millis {
        &self.0[s as usize]
    }
}

impl std::ops::IndexMut<State> for StateDurations {
    fn index_mut(&mut self, s: State) -> &mut Millis {
        &mut self.0[s as usize]
    }
}

/// What counts as measured time and as downtime in a period of `period` ms
/// (contract section 4): maintenance is never measured; `nodata` time is left
/// out, counted down, or counted up, as the service's policy says. The one
/// place reports, series and the error budget take this from.
pub fn measured_and_downtime(
    policy: NoData,
    period: Millis,
    maintenance: Millis,
    nodata: Millis,
    down: Millis,
) -> (Millis, Millis) {
    match policy {
        NoData::Exclude => (period - maintenance - nodata, down),
        NoData::Down => (period - maintenance, down + nodata),
        NoData::Up => (period - maintenance, down),
    }
}
