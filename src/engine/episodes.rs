//! Episodes (contract section 5): bad intervals (down, saturated) separated by
//! less than `resolve_after` of good time merge into one episode. An episode
//! triggers once it contains a continuous bad interval of at least `sustain`,
//! at that interval's start + `sustain`, and resolves `resolve_after` after its
//! last bad interval ends. Shared by outages and capacity incidents.

use crate::time::{Millis, check_instant};

/// An episode event to turn into an incident action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpisodeEvent {
    /// Trigger at `at`; the episode started at `start`.
    Trigger {
        /// Episode start.
        start: Millis,
        /// Firing instant.
        at: Millis,
    },
    /// Resolve at `at`; the episode ran from `start` to `end`.
    Resolve {
        /// Episode start.
        start: Millis,
        /// End of the last bad interval.
        end: Millis,
        /// Firing instant (`end + resolve_after`).
        at: Millis,
    },
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Episode {
    start: Millis,
    last_bad_end: Option<Millis>,
    triggered: bool,
}

/// Episode tracking for one key.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Episodes {
    sustain: Millis,
    resolve_after: Millis,
    bad_since: Option<Millis>,
    prev_bad_since: Option<Millis>,
    episode: Option<Episode>,
}

impl Episodes {
    /// Checks restored state: the same rule as `fresh`, instants in range.
    pub fn check(&self, fresh: &Episodes) -> Result<(), String> {
        if (self.sustain, self.resolve_after) != (fresh.sustain, fresh.resolve_after) {
            return Err("episode rule differs from the config".into());
        }
        let ep = self.episode.iter();
        for t in [self.bad_since, self.prev_bad_since]
            .into_iter()
            .chain(ep.clone().map(|e| Some(e.start)))
            .chain(ep.map(|e| e.last_bad_end))
            .flatten()
        {
            check_instant("episode instant", t)?;
        }
        Ok(())
    }

    /// Tracker with the rule's `sustain` (outage_after, capacity_sustain) and `resolve_after`.
    pub fn new(sustain: Millis, resolve_after: Millis) -> Self {
        Episodes {
            sustain,
            resolve_after,
            bad_since: None,
            prev_bad_since: None,
            episode: None,
        }
    }

    /// Records a change between good and bad at `x`. Call [`Episodes::fire`] for `x` first.
    pub fn set_bad(&mut self, x: Millis, bad: bool) {
        let was_bad = self.bad_since.is_some();
        if bad && !was_bad {
            match &mut self.episode {
                Some(ep) if ep.last_bad_end.is_some_and(|e| x - e < self.resolve_after) => {
                    // Back to bad at the very instant it ended: one continuous interval.
                    let continuous = ep.last_bad_end == Some(x);
                    ep.last_bad_end = None;
                    self.bad_since = if continuous {
                        self.prev_bad_since.or(Some(x))
                    } else {
                        Some(x)
                    };
                }
                _ => {
                    self.episode = Some(Episode {
                        start: x,
                        last_bad_end: None,
                        triggered: false,
                    });
                    self.bad_since = Some(x);
                }
            }
        } else if !bad && was_bad {
            if let Some(ep) = &mut self.episode {
                ep.last_bad_end = Some(x);
            }
            self.prev_bad_since = self.bad_since.take();
        }
    }

    /// True while an episode is open: only then can [`Episodes::fire`] fire.
    #[inline(always)]
    pub fn is_open(&self) -> bool {
        self.episode.is_some()
    }

    /// Fires what is due at or before `x`.
    pub fn fire(&mut self, x: Millis, out: &mut impl FnMut(EpisodeEvent)) {
        let Some(ep) = &mut self.episode else { return };
        if let Some(s) = self.bad_since
            && !ep.triggered
            && s.saturating_add(self.sustain) <= x
        {
            ep.triggered = true;
            out(EpisodeEvent::Trigger {
                start: ep.start,
                at: s + self.sustain,
            });
        }
        if let Some(end) = ep.last_bad_end
            && self.bad_since.is_none()
            && end.saturating_add(self.resolve_after) <= x
        {
            if ep.triggered {
                out(EpisodeEvent::Resolve {
                    start: ep.start,
                    end,
                    at: end + self.resolve_after,
                });
            }
            self.episode = None;
        }
    }

    /// The next instant after `x` at which something may fire.
    pub fn next_deadline(&self, x: Millis) -> Option<Millis> {
        let ep = self.episode?;
        let trigger = self
            .bad_since
            .filter(|_| !ep.triggered)
            .map(|s| s.saturating_add(self.sustain));
        let resolve = ep
            .last_bad_end
            .map(|e| e.saturating_add(self.resolve_after));
        [trigger, resolve]
            .into_iter()
            .flatten()
            .filter(|&d| d > x)
            .min()
    }
}
