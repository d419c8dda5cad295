//! Changes (contract section 15): deployments per service, and which outage
//! each one induced. One change per (service, change_id): its first `ts`, its
//! last applied outcome. An outage is attributed to the change of its service
//! with the greatest (`ts`, application order) in
//! `(started_at − engine.change_window, started_at]`.

use serde::{Deserialize, Serialize};

use crate::model::ChangeOutcome;
use crate::time::{Millis, check_instant};

/// One change of a service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// `change_id`.
    pub id: String,
    /// Its first `ts`: when it was deployed.
    pub ts: Millis,
    /// Its last applied outcome.
    pub outcome: ChangeOutcome,
    /// `started_at` of each outage attributed to it.
    pub induced: Vec<Millis>,
}

impl Change {
    /// Failed: an outcome other than success, or an outage attributed to it.
    pub fn failed(&self) -> bool {
        self.outcome != ChangeOutcome::Success || !self.induced.is_empty()
    }
}

/// A service's changes, in application order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    list: Vec<Change>,
}

impl Changes {
    /// Applies a change record: a new change, or the outcome of a known one.
    pub fn apply(&mut self, ts: Millis, id: &str, outcome: ChangeOutcome) {
        match self.list.iter_mut().find(|c| c.id == id) {
            Some(c) => c.outcome = outcome,
            None => self.list.push(Change {
                id: id.to_owned(),
                ts,
                outcome,
                induced: Vec::new(),
            }),
        }
    }

    /// Attributes the outage starting at `started` to the latest change in
    /// `(started − window, started]` and names it.
    pub fn attribute(&mut self, started: Millis, window: Millis) -> Option<&str> {
        let from = started.saturating_sub(window);
        // Application order breaks ties: the last applied of equal `ts` wins.
        let (_, c) = (self.list.iter_mut().enumerate())
            .filter(|(_, c)| from < c.ts && c.ts <= started)
            .max_by_key(|(i, c)| (c.ts, *i))?;
        if !c.induced.contains(&started) {
            c.induced.push(started);
        }
        Some(&c.id)
    }

    /// Every change kept, in application order.
    pub fn iter(&self) -> impl Iterator<Item = &Change> {
        self.list.iter()
    }

    /// Forgets changes deployed before `horizon` (the caller keeps what an
    /// outage may still be attributed to).
    pub fn prune(&mut self, horizon: Millis) {
        self.list.retain(|c| c.ts >= horizon);
    }

    /// Checks restored state.
    pub fn check(&self) -> Result<(), String> {
        for c in &self.list {
            if c.id.is_empty() {
                return Err("change without an id".into());
            }
            for t in std::iter::once(c.ts).chain(c.induced.iter().copied()) {
                check_instant("change", t)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: Millis = 3_600_000;

    #[test]
    fn the_latest_change_inside_the_window_is_induced() {
        let mut c = Changes::default();
        c.apply(10 * H, "before", ChangeOutcome::Success);
        c.apply(11 * H, "a", ChangeOutcome::Success);
        c.apply(11 * H, "b", ChangeOutcome::Success);
        c.apply(12 * H, "after", ChangeOutcome::Success);
        // (11h, 12h]: "before" (10h) is out, the window's end is in; equal
        // times: the one applied last.
        assert_eq!(c.attribute(11 * H + 30 * 60_000, H), Some("b"));
        assert_eq!(c.attribute(12 * H, H), Some("after"));
        assert_eq!(c.attribute(11 * H - 1, H / 2), None);
        // (10h, 11h]: 10h itself is outside.
        assert_eq!(c.attribute(11 * H, H), Some("b"));
        let failed: Vec<&str> = c
            .iter()
            .filter(|c| c.failed())
            .map(|c| c.id.as_str())
            .collect();
        assert_eq!(failed, ["b", "after"]);
        // A later record keeps the first ts and takes the outcome.
        c.apply(13 * H, "before", ChangeOutcome::RolledBack);
        let before = c.iter().find(|c| c.id == "before").expect("kept");
        assert_eq!(
            (before.ts, before.outcome),
            (10 * H, ChangeOutcome::RolledBack)
        );
        assert!(before.failed());
    }
}
