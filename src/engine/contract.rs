//! The SLA as the contract states it (contract section 13): service hours,
//! audited exclusions, and the contractual state they give each instant.
//!
//! The operational timeline ([`crate::engine::availability`]) is kept as it
//! happened; the contractual figures are derived from it on demand, because an
//! exclusion may arrive after the fact or be replaced by a later version.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::NoData;
use crate::engine::calendar::Calendar;
use crate::engine::states::{State, StateDurations, measured_and_downtime};
use crate::time::Millis;

/// Milliseconds per contractual state (first match wins: maintenance,
/// excluded, outside hours, nodata, down, degraded, up).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractDurations {
    /// Inside an announced maintenance window.
    pub maintenance: Millis,
    /// Inside an exclusion in force (and not maintenance).
    pub excluded: Millis,
    /// Outside the service hours (and neither of the above).
    pub outside_hours: Millis,
    /// In hours, no source known.
    pub nodata: Millis,
    /// In hours, down.
    pub down: Millis,
    /// In hours, degraded.
    pub degraded: Millis,
    /// In hours, up.
    pub up: Millis,
}

impl ContractDurations {
    /// All time accounted.
    pub fn total(&self) -> Millis {
        self.maintenance
            + self.excluded
            + self.outside_hours
            + self.nodata
            + self.down
            + self.degraded
            + self.up
    }

    /// The sum of two sets of durations.
    pub fn plus(mut self, o: &ContractDurations) -> Self {
        self.maintenance += o.maintenance;
        self.excluded += o.excluded;
        self.outside_hours += o.outside_hours;
        self.nodata += o.nodata;
        self.down += o.down;
        self.degraded += o.degraded;
        self.up += o.up;
        self
    }

    /// Adds `ms` in contractual state `class`.
    pub fn add(&mut self, class: Class, ms: Millis) {
        *self.slot(class) += ms;
    }

    fn slot(&mut self, class: Class) -> &mut Millis {
        match class {
            Class::Maintenance => &mut self.maintenance,
            Class::Excluded => &mut self.excluded,
            Class::OutsideHours => &mut self.outside_hours,
            Class::In(State::NoData) => &mut self.nodata,
            Class::In(State::Down) => &mut self.down,
            Class::In(State::Degraded) => &mut self.degraded,
            Class::In(State::Up) => &mut self.up,
            Class::In(State::Maintenance) => &mut self.maintenance,
        }
    }

    /// Adds the operational durations `d` of a stretch that is `excluded` or
    /// not and in hours or not: maintenance stays maintenance, the rest takes
    /// the contractual state.
    fn add_ops(&mut self, d: &StateDurations, excluded: bool, in_hours: bool) {
        self.maintenance += d[State::Maintenance];
        let rest = d.total() - d[State::Maintenance];
        if excluded {
            self.excluded += rest;
        } else if !in_hours {
            self.outside_hours += rest;
        } else {
            self.nodata += d[State::NoData];
            self.down += d[State::Down];
            self.degraded += d[State::Degraded];
            self.up += d[State::Up];
        }
    }

    /// `100 × (measured − downtime) / measured` under the `nodata` policy:
    /// the report's `availability_pct`; `None` when nothing was measured.
    pub fn availability_pct(&self, policy: NoData) -> Option<f64> {
        let (measured, down) = self.measured_and_downtime(policy);
        (measured > 0).then(|| 100.0 * (measured - down) as f64 / measured as f64)
    }

    /// Measured time and downtime under the `nodata` policy (sections 4 and
    /// 13): maintenance, excluded and outside-hours time are never measured.
    pub fn measured_and_downtime(&self, policy: NoData) -> (Millis, Millis) {
        measured_and_downtime(
            policy,
            self.total(),
            self.maintenance + self.excluded + self.outside_hours,
            self.nodata,
            self.down,
        )
    }
}

/// The contractual state of a stretch where it does not change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// Maintenance (before everything else).
    Maintenance,
    /// Excluded.
    Excluded,
    /// Outside service hours.
    OutsideHours,
    /// In hours, neither maintenance nor excluded: the operational state.
    In(State),
}

impl Class {
    /// The contractual state of an instant in operational `state`.
    pub fn of(state: State, excluded: bool, in_hours: bool) -> Class {
        match state {
            State::Maintenance => Class::Maintenance,
            _ if excluded => Class::Excluded,
            _ if !in_hours => Class::OutsideHours,
            s => Class::In(s),
        }
    }

    /// Whether this time counts as downtime under `policy`.
    pub fn counts_down(self, policy: NoData) -> bool {
        match self {
            Class::In(State::Down) => true,
            Class::In(State::NoData) => policy == NoData::Down,
            _ => false,
        }
    }
}

/// Operational time per state of `[a, b)` from sorted, disjoint `intervals`
/// that start with the one holding `a` (or any earlier one): time they do not
/// cover is left out.
pub fn overlap_sums(
    intervals: impl Iterator<Item = (Millis, Millis, State)>,
    a: Millis,
    b: Millis,
) -> StateDurations {
    let mut d = StateDurations::default();
    for (s, e, state) in intervals.take_while(|i| i.0 < b) {
        d[state] += (e.min(b) - s.max(a)).max(0);
    }
    d
}

/// Contractual durations of `[a, b)`. `hours` are the open spans of the
/// service hours inside `[a, b)` (sorted, disjoint), `excluded` the exclusions
/// in force (sorted, disjoint: [`Exclusions::union`]), and `ops(c, d)` the
/// operational time per state of `[c, d)`; whatever of `[c, d)` it leaves
/// unaccounted (before the first record, after the cursor) is `nodata`.
pub fn contract_of(
    a: Millis,
    b: Millis,
    hours: &[(Millis, Millis)],
    excluded: &[(Millis, Millis)],
    mut ops: impl FnMut(Millis, Millis) -> StateDurations,
) -> ContractDurations {
    let mut out = ContractDurations::default();
    let (mut h, mut e) = (0, 0);
    let mut x = a;
    while x < b {
        while h < hours.len() && hours[h].1 <= x {
            h += 1;
        }
        while e < excluded.len() && excluded[e].1 <= x {
            e += 1;
        }
        let in_hours = hours.get(h).is_some_and(|s| s.0 <= x);
        let is_excluded = excluded.get(e).is_some_and(|s| s.0 <= x);
        let mut next = b;
        for edge in [hours.get(h), excluded.get(e)].into_iter().flatten() {
            next = next.min(if edge.0 > x { edge.0 } else { edge.1 });
        }
        let mut d = ops(x, next);
        let unaccounted = (next - x) - d.total();
        d[State::NoData] += unaccounted;
        out.add_ops(&d, is_excluded, in_hours);
        x = next;
    }
    out
}

/// Windows `[start, end)` merged into disjoint ones, in time order.
pub fn merge_windows(windows: impl Iterator<Item = (Millis, Millis)>) -> Vec<(Millis, Millis)> {
    let mut w: Vec<(Millis, Millis)> = windows.collect();
    w.sort_unstable();
    let mut out: Vec<(Millis, Millis)> = Vec::with_capacity(w.len());
    for (s, e) in w {
        match out.last_mut() {
            Some(last) if last.1 >= s => last.1 = last.1.max(e),
            _ => out.push((s, e)),
        }
    }
    out
}

/// One exclusion as the version applied last says (contract section 13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exclusion {
    /// Window start.
    pub start: Millis,
    /// Window end (exclusive).
    pub end: Millis,
    /// Why (e.g. "customer firewall change").
    pub reason: String,
    /// Who approved it.
    pub approved_by: String,
    /// How many records of this identity were applied.
    pub versions: u32,
    /// `ts` of the version in force.
    pub ts: Millis,
}

/// A service's exclusions in force, by `exclusion_id`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Exclusions {
    by_id: BTreeMap<String, Exclusion>,
    /// The windows merged (derived; rebuilt after every change and restore).
    #[serde(skip)]
    union: Vec<(Millis, Millis)>,
}

impl Exclusions {
    /// Applies a version: it replaces the one in force under the same id.
    pub fn apply(&mut self, id: &str, mut version: Exclusion) {
        let before = self.by_id.get(id).map_or(0, |e| e.versions);
        version.versions = before.saturating_add(1);
        self.by_id.insert(id.to_owned(), version);
        self.rebuild();
    }

    /// Rebuilds the merged windows (after deserialising).
    pub fn rebuild(&mut self) {
        self.union = merge_windows(self.by_id.values().map(|e| (e.start, e.end)));
    }

    /// The windows in force, merged, in time order.
    pub fn union(&self) -> &[(Millis, Millis)] {
        &self.union
    }

    /// No exclusion in force.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The exclusions in force by id.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &Exclusion)> {
        self.by_id.iter()
    }

    /// Whether `x` is excluded, with the stretch around it where that holds:
    /// `(excluded, since, until)` as [`Hours::at`] gives them
    /// (`Millis::MIN`/`MAX` for no edge).
    pub fn at(&self, x: Millis) -> (bool, Millis, Millis) {
        let i = self.union.partition_point(|w| w.1 <= x);
        match self.union.get(i) {
            Some(&(s, e)) if s <= x => (true, s, e),
            next => {
                let prev = i.checked_sub(1).map_or(Millis::MIN, |j| self.union[j].1);
                (false, prev, next.map_or(Millis::MAX, |w| w.0))
            }
        }
    }

    /// Forgets exclusions that ended at or before `horizon` (retention).
    pub fn prune(&mut self, horizon: Millis) {
        let before = self.by_id.len();
        self.by_id.retain(|_, e| e.end > horizon);
        if self.by_id.len() != before {
            self.rebuild();
        }
    }
}

/// The service hours of a service: its calendar, with the stretch last looked
/// up kept (the walk asks about the same stretch at every step).
#[derive(Debug, Clone)]
pub struct Hours {
    calendar: std::sync::Arc<Calendar>,
    /// `(open, start, end)` of the stretch last looked up.
    last: Option<(bool, Millis, Millis)>,
}

impl Default for Hours {
    fn default() -> Self {
        Hours::new(std::sync::Arc::new(Calendar::Always))
    }
}

impl Hours {
    /// Hours following `calendar`.
    pub fn new(calendar: std::sync::Arc<Calendar>) -> Self {
        Hours {
            calendar,
            last: None,
        }
    }

    /// Always open (`24x7`).
    pub fn always(&self) -> bool {
        matches!(*self.calendar, Calendar::Always)
    }

    /// `(open, since, until)` of the stretch holding `x` (see [`Calendar::stretch_at`]).
    pub fn at(&mut self, x: Millis) -> (bool, Millis, Millis) {
        match self.last {
            Some(s @ (_, start, end)) if start <= x && x < end => s,
            _ => {
                let s = self.calendar.stretch_at(x);
                self.last = Some(s);
                s
            }
        }
    }

    /// Open spans inside `[a, b)`.
    pub fn spans(&self, a: Millis, b: Millis) -> Vec<(Millis, Millis)> {
        self.calendar.spans(a, b)
    }

    /// Open time inside `[a, b)`.
    pub fn open_between(&self, a: Millis, b: Millis) -> Millis {
        self.calendar.business_between(a, b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference: instant by instant (one ms steps over a short range).
    fn brute(
        ops: &[(Millis, Millis, State)],
        hours: &[(Millis, Millis)],
        excl: &[(Millis, Millis)],
        a: Millis,
        b: Millis,
    ) -> ContractDurations {
        let mut out = ContractDurations::default();
        for x in a..b {
            let state = (ops.iter().find(|o| o.0 <= x && x < o.1)).map_or(State::NoData, |o| o.2);
            let inside = |w: &[(Millis, Millis)]| w.iter().any(|s| s.0 <= x && x < s.1);
            out.add(Class::of(state, inside(excl), inside(hours)), 1);
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn contract_of_equals_instant_by_instant(
            cuts in proptest::collection::vec((1..40i64, 0..4usize), 1..12),
            hour_cuts in proptest::collection::vec(1..50i64, 0..8),
            excl_cuts in proptest::collection::vec(1..50i64, 0..6),
            a in 0..100i64, len in 0..300i64,
        ) {
            let states = [State::Up, State::Degraded, State::Down, State::Maintenance];
            let mut ops = Vec::new();
            let mut x = 20;
            for (d, s) in cuts {
                ops.push((x, x + d, states[s]));
                x += d;
            }
            let spans = |cuts: &[i64]| {
                let mut v = Vec::new();
                let mut x = 0;
                for pair in cuts.chunks(2) {
                    let s = x + pair[0];
                    let e = s + pair.get(1).copied().unwrap_or(10);
                    v.push((s, e));
                    x = e;
                }
                v
            };
            let (hours, excl) = (spans(&hour_cuts), spans(&excl_cuts));
            let b = a + len;
            let clipped: Vec<_> = hours.iter().filter_map(|&(s, e)| {
                let (s, e) = (s.max(a), e.min(b));
                (s < e).then_some((s, e))
            }).collect();
            let ops_sums = |c: Millis, d: Millis| {
                let mut sd = StateDurations::default();
                for &(s, e, st) in &ops {
                    let o = e.min(d) - s.max(c);
                    if o > 0 {
                        sd[st] += o;
                    }
                }
                sd
            };
            let got = contract_of(a, b, &clipped, &excl, ops_sums);
            proptest::prop_assert_eq!(got, brute(&ops, &hours, &excl, a, b));
        }
    }

    #[test]
    fn exclusions_replace_by_id_and_merge() {
        let mut x = Exclusions::default();
        let v = |start, end| Exclusion {
            start,
            end,
            reason: "r".into(),
            approved_by: "a".into(),
            versions: 0,
            ts: 0,
        };
        x.apply("A", v(10, 50));
        x.apply("B", v(40, 60));
        assert_eq!(x.union(), &[(10, 60)]);
        x.apply("A", v(10, 20));
        assert_eq!(x.union(), &[(10, 20), (40, 60)]);
        assert_eq!(x.iter().next().map(|e| e.1.versions), Some(2));
        assert_eq!(x.at(30), (false, 20, 40));
        assert_eq!(x.at(45), (true, 40, 60));
        assert_eq!(x.at(5), (false, Millis::MIN, 10));
        x.prune(20);
        assert_eq!(x.union(), &[(40, 60)]);
    }
}
