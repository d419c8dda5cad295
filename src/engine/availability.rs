//! Availability (contract section 4) and outage incidents (section 5).
//!
//! Each service keeps its probe sources and maintenance windows and walks its
//! timeline forward in event time. It stops at every instant where the state can
//! change (a probe going stale, a window opening or closing), at every outage
//! deadline and at every bucket boundary. So durations are exact to the
//! millisecond, and no deadline is found by polling.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{BurnAlert, DownWhen, NoData, ServiceConfig, SloConfig};
use crate::engine::burn::{BurnAlerts, BurnSubject, Spent, WindowTime};
use crate::engine::calendar::Calendar;
use crate::engine::changes::Changes;
use crate::engine::contract::{
    Class, ContractDurations, Exclusion, Exclusions, Hours, contract_of, overlap_sums,
};
use crate::engine::episodes::{EpisodeEvent, Episodes};
use crate::engine::incidents::{Action, Incident};
use crate::engine::requests::{Owner, Requests, SloCounts, SloRules};
use crate::engine::runs::Runs;
use crate::engine::sources::Sources;
pub use crate::engine::states::{State, StateDurations, measured_and_downtime};
use crate::model::{ChangeOutcome, ProbeStatus, Rule, Severity};
use crate::time::{Millis, check_instant, format_ms, month_of};

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
struct Window {
    /// `max(start, announcement ts)`: no retroactive exclusion.
    from: Millis,
    end: Millis,
}

/// An announced maintenance window as reports list it (contract section 12):
/// kept while retention reaches it, unlike [`Window`], which goes once passed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaintenanceNote {
    /// When it was announced (the record's `ts`).
    pub announced: Millis,
    /// The window as announced: `[start, end)`.
    pub start: Millis,
    /// End (exclusive).
    pub end: Millis,
    /// The change record it belongs to.
    pub change_id: Option<String>,
}

impl MaintenanceNote {
    /// The part that counts as maintenance: none of it before the announcement.
    pub fn effective(&self) -> (Millis, Millis) {
        (self.start.max(self.announced), self.end)
    }
}

/// One service's availability state (serialisable for checkpoints).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServiceTimeline {
    /// Input partition its records come from (`None` before the first one).
    pub partition: Option<i32>,
    id: String,
    customer: String,
    down_when: DownWhen,
    stale_after: Millis,
    bucket: Millis,
    sources: Sources,
    windows: Vec<Window>,
    /// Announced windows with their change ids, for reports.
    #[serde(default)]
    maintenance_log: VecDeque<MaintenanceNote>,
    /// Everything before `cursor` is accounted for; `None` before the first record.
    cursor: Option<Millis>,
    state: State,
    run_start: Millis,
    /// Closed maximal intervals: they are contiguous, so each ends where the
    /// next starts, the last at `run_start`. Buckets are derived from them when
    /// asked for ([`ServiceTimeline::buckets`]), burn-rate windows too.
    runs: Runs,
    outages: Episodes,
    target_pct: f64,
    nodata: NoData,
    /// The UTC month being accounted for the error-budget rule: [start, end).
    month: (Millis, Millis),
    /// Contractual time of `[month start, cursor)` (section 13). Derived from
    /// the intervals, so rebuilt rather than trusted from a checkpoint.
    #[serde(skip)]
    month_acc: ContractDurations,
    /// Service-hours time of `[month start, cursor)` (derived).
    #[serde(skip)]
    month_in_hours: Millis,
    /// Service-hours time of the whole month (derived).
    #[serde(skip)]
    month_open: Millis,
    /// Service hours (section 13; from the config, not checkpointed).
    #[serde(skip)]
    hours: Hours,
    /// Exclusions in force (section 13).
    #[serde(default)]
    exclusions: Exclusions,
    /// The cursor when the exclusions last changed: windows reaching back
    /// before it may see different contractual time than when they were walked.
    #[serde(default = "min_millis")]
    exclusions_changed: Millis,
    /// `availability_breach` trigger instant in the current month, if it fired.
    budget_breached: Option<Millis>,
    /// Burn-rate alerts (contract section 11).
    #[serde(default)]
    burn: BurnAlerts,
    /// Counters and request SLOs (contract section 14).
    #[serde(default)]
    requests: Requests,
    /// Changes and the outages they induced (contract section 15).
    #[serde(default)]
    changes: Changes,
    /// `engine.change_window` (from the config, not checkpointed).
    #[serde(skip)]
    change_window: Millis,
}

fn min_millis() -> Millis {
    Millis::MIN
}

impl ServiceTimeline {
    /// A timeline for a configured service; `hours` its service hours,
    /// `bucket` is `engine.bucket` in ms, `alerts` the `[[burn_alerts]]`.
    pub fn new(
        cfg: &ServiceConfig,
        hours: Arc<Calendar>,
        bucket: Millis,
        alerts: &Arc<[BurnAlert]>,
    ) -> Self {
        ServiceTimeline {
            partition: None,
            id: cfg.id.clone(),
            customer: cfg.customer.clone(),
            down_when: cfg.down_when,
            stale_after: cfg.stale_after.0,
            bucket,
            sources: Sources::default(),
            windows: Vec::new(),
            maintenance_log: VecDeque::new(),
            cursor: None,
            state: State::NoData,
            run_start: Millis::MIN,
            runs: Runs::default(),
            outages: Episodes::new(cfg.outage_after.0, cfg.resolve_after.0),
            target_pct: cfg.availability_target,
            nodata: cfg.nodata,
            month: (0, 0),
            month_acc: ContractDurations::default(),
            month_in_hours: 0,
            month_open: 0,
            hours: Hours::new(hours),
            exclusions: Exclusions::default(),
            exclusions_changed: Millis::MIN,
            budget_breached: None,
            burn: BurnAlerts::new(alerts.clone()),
            requests: Requests::default(),
            changes: Changes::default(),
            change_window: 0,
        }
    }

    /// This timeline attributing outages to changes up to `ms` before them.
    pub fn with_change_window(mut self, ms: Millis) -> Self {
        self.change_window = ms;
        self
    }

    /// This timeline with the request SLOs of its service.
    pub fn with_slos(mut self, rules: Arc<SloRules>) -> Self {
        self.requests = Requests::new(rules);
        self
    }

    /// Takes over a restored timeline's state, keeping this one's burn-rate
    /// rules (they come from the config, not the checkpoint).
    pub fn restore(&mut self, restored: ServiceTimeline) {
        let rules = self.burn.rules();
        let slos = self.requests.rules();
        let hours = std::mem::take(&mut self.hours);
        let change_window = self.change_window;
        *self = restored;
        self.change_window = change_window;
        self.burn = std::mem::take(&mut self.burn).with_rules(rules);
        self.requests = std::mem::take(&mut self.requests).with_rules(slos);
        self.hours = hours;
        self.exclusions.rebuild();
        self.recompute_month();
    }

    /// Checks a restored timeline: the service's config as `cfg` and `bucket` say,
    /// and the invariants the engine keeps (instants in range, runs in order
    /// before the open one, month sums within the month). A checkpoint failing
    /// this is refused like a corrupt one.
    pub fn check(
        &self,
        cfg: &ServiceConfig,
        bucket: Millis,
        alerts: &Arc<[BurnAlert]>,
    ) -> Result<(), String> {
        let fresh = ServiceTimeline::new(cfg, Arc::new(Calendar::Always), bucket, alerts);
        let same = self.id == fresh.id
            && self.customer == fresh.customer
            && self.down_when == fresh.down_when
            && self.stale_after == fresh.stale_after
            && self.bucket == fresh.bucket
            && self.target_pct.to_bits() == fresh.target_pct.to_bits()
            && self.nodata == fresh.nodata;
        if !same {
            return Err(format!(
                "service {:?}: settings differ from the config",
                self.id
            ));
        }
        self.outages.check(&fresh.outages)?;
        self.burn.check(alerts)?;
        let instants = self
            .sources
            .values()
            .map(|s| s.1)
            .chain(self.windows.iter().flat_map(|w| [w.from, w.end]))
            .chain((self.maintenance_log.iter()).flat_map(|m| [m.announced, m.start, m.end]))
            .chain((self.exclusions.iter()).flat_map(|(_, e)| [e.start, e.end, e.ts]))
            .chain(self.cursor)
            .chain(self.budget_breached)
            .chain([self.month.0, self.month.1])
            .chain((self.run_start != Millis::MIN).then_some(self.run_start))
            .chain(self.runs.as_slice().iter().map(|r| r.0));
        for t in instants {
            check_instant("instant", t)?;
        }
        if self.month.0 > self.month.1 {
            return Err("month ends before it starts".into());
        }
        let runs = self.runs.as_slice();
        if runs.windows(2).any(|w| w[0].0 >= w[1].0)
            || runs.last().is_some_and(|r| r.0 >= self.run_start)
        {
            return Err("intervals empty or unordered".into());
        }
        if (self.exclusions.iter()).any(|(id, e)| id.is_empty() || e.end <= e.start) {
            return Err("exclusion empty or unnamed".into());
        }
        Ok(())
    }

    /// Applies a probe at `ts`.
    pub fn probe(
        &mut self,
        ts: Millis,
        source: &str,
        status: ProbeStatus,
        out: &mut Vec<Incident>,
    ) {
        let ts = self.start_or_clamp(ts, out);
        self.sources.set(source, status, ts);
        self.settle(ts, out);
    }

    /// Applies a maintenance announcement at `ts` for `[start, end)`.
    pub fn maintenance(
        &mut self,
        ts: Millis,
        (start, end): (Millis, Millis),
        change_id: Option<&str>,
        out: &mut Vec<Incident>,
    ) {
        let ts = self.start_or_clamp(ts, out);
        let from = start.max(ts);
        if end > from {
            self.windows.push(Window { from, end });
            self.maintenance_log.push_back(MaintenanceNote {
                announced: ts,
                start,
                end,
                change_id: change_id.map(str::to_owned),
            });
        }
        self.settle(ts, out);
    }

    /// Applies a version of exclusion `id` at `ts` (contract section 13). It
    /// does not start the timeline; once started, everything evaluated after
    /// `ts` (and every report) sees the exclusions in force, including their
    /// parts before `ts`; incidents already emitted stay as they were.
    pub fn exclusion(&mut self, ts: Millis, id: &str, version: Exclusion, out: &mut Vec<Incident>) {
        self.evaluate_slos(ts, out);
        if self.cursor.is_some() {
            let ts = self.start_or_clamp(ts, out);
            self.exclusions.apply(id, Exclusion { ts, ..version });
            self.exclusions_changed = ts;
            // A shorter version gives time back, which may be downtime: look
            // at the burn-rate alerts again while a short window reaches it.
            self.burn.last_bad = Some(self.burn.last_bad.map_or(ts, |b| b.max(ts)));
            self.recompute_month();
            self.settle(ts, out);
        } else {
            self.exclusions.apply(id, Exclusion { ts, ..version });
        }
    }

    /// Applies a counter sample at `ts` (contract section 14). Like an
    /// exclusion it does not start the timeline; its increase counts unless
    /// `ts` lies in maintenance or outside service hours (exclusions are taken
    /// out when sums are read, as they may come later).
    pub fn counter(
        &mut self,
        ts: Millis,
        source: &str,
        name: &str,
        value: f64,
        out: &mut Vec<Incident>,
    ) {
        self.evaluate_slos(ts, out);
        let maintenance = self.windows.iter().any(|w| w.from <= ts && ts < w.end);
        let counted = !maintenance && self.hours.at(ts).0;
        self.requests.sample(ts, source, name, value, counted);
    }

    /// Applies a change record at `ts` (contract section 15). Like an exclusion
    /// it does not start the timeline.
    pub fn change(&mut self, ts: Millis, id: &str, outcome: ChangeOutcome) {
        self.changes.apply(ts, id, outcome);
    }

    /// Changes and the outages they induced.
    pub fn changes(&self) -> &Changes {
        &self.changes
    }

    /// Evaluates the request SLOs' burn-rate alerts at the closes up to `t`.
    fn evaluate_slos(&mut self, t: Millis, out: &mut Vec<Incident>) {
        let owner = Owner {
            service: &self.id,
            customer: &self.customer,
        };
        (self.requests).evaluate_to(t, &owner, self.exclusions.union(), out);
    }

    /// Counters and request SLOs.
    pub fn requests(&self) -> &Requests {
        &self.requests
    }

    /// Total and bad events of `slo` (one of this service's) dated in `[a, b)`,
    /// with the exclusions in force.
    pub fn slo_counts(&self, slo: &SloConfig, a: Millis, b: Millis) -> SloCounts {
        self.requests.counts(slo, a, b, self.exclusions.union())
    }

    /// `slo`'s burn rate over `[at − w, at)` for each `w` of `windows`
    /// (section 14); `None` where no event was counted.
    pub fn slo_burn_rates(
        &self,
        slo: &SloConfig,
        at: Millis,
        windows: &[Millis],
    ) -> Vec<Option<f64>> {
        (windows.iter())
            .map(|&w| {
                let c = self.slo_counts(slo, at.saturating_sub(w), at);
                let rate = Spent {
                    bad: c.bad,
                    total: c.total,
                }
                .burn_rate(slo.budget_ratio());
                rate.is_finite().then_some(rate)
            })
            .collect()
    }

    /// The exclusions in force, by id.
    pub fn exclusions(&self) -> &Exclusions {
        &self.exclusions
    }

    /// Announced maintenance windows that still count, in announcement order.
    pub fn maintenance_log(&self) -> impl Iterator<Item = &MaintenanceNote> {
        self.maintenance_log.iter()
    }

    /// A record of any kind at `ts` (e.g. a metric): starts the timeline and moves it forward.
    pub fn touch(&mut self, ts: Millis, out: &mut Vec<Incident>) {
        let ts = self.start_or_clamp(ts, out);
        self.settle(ts, out);
    }

    /// Moves the timeline to `t` (a watermark), firing due deadlines.
    pub fn advance(&mut self, t: Millis, out: &mut Vec<Incident>) {
        if self.cursor.is_some_and(|c| c < t) {
            self.walk(t, out);
        }
        self.evaluate_slos(t, out);
    }

    /// Walks to `ts` (or starts the timeline there); a record older than the
    /// cursor (possible only after an idle partition rejoins) applies at the cursor.
    fn start_or_clamp(&mut self, ts: Millis, out: &mut Vec<Incident>) -> Millis {
        match self.cursor {
            None => {
                self.cursor = Some(ts);
                self.run_start = ts;
                self.month = month_of(ts);
                self.recompute_month();
                ts
            }
            Some(c) if ts < c => c,
            Some(_) => {
                self.walk(ts, out);
                ts
            }
        }
    }

    fn settle(&mut self, at: Millis, out: &mut Vec<Incident>) {
        self.fire_deadlines(at, out);
        let s = self.state_at(at);
        self.transition(at, s);
        self.fire_deadlines(at, out);
    }

    /// Walks from the cursor to `t`, stopping where something can change: a
    /// source going stale, a window edge, an outage deadline, a month end. Between
    /// two such stops the state is constant, so the bucket closes in between can
    /// only trip the month's error budget, which within one state never un-trips:
    /// the first close that trips it is found by bisection instead of visiting
    /// every close. A year of silence costs a few steps, not half a million.
    fn walk(&mut self, t: Millis, out: &mut Vec<Incident>) {
        let Some(mut cur) = self.cursor else { return };
        while cur < t {
            let here = self.class_at(cur);
            let next = self.next_event(cur, &here).min(t);
            let stop = (self.first_close_over_budget(cur, next, &here)).unwrap_or(next);
            self.burn_closes(cur, stop, &here, out);
            self.account(cur, stop, &here);
            cur = stop;
            self.cursor = Some(cur);
            self.month_boundaries(cur, out);
            self.settle(cur, out);
        }
        self.windows.retain(|w| w.end > cur);
        self.runs.forget_sums_before(self.window_reach(cur));
    }

    /// The earliest instant a burn-rate window can still ask prefix sums for.
    fn window_reach(&self, cur: Millis) -> Millis {
        let reach = self.burn.longest().unwrap_or(0).saturating_add(self.bucket);
        cur.saturating_sub(reach)
    }

    /// The contractual state on `[x, next event)`: the operational state (the
    /// one at the cursor), service hours and exclusions.
    fn class_at(&mut self, x: Millis) -> Here {
        let (in_hours, hours_since, hours_until) = self.hours.at(x);
        let (excluded, excl_since, excl_until) = self.exclusions.at(x);
        let since = (self.run_start.max(hours_since).max(excl_since)).max(self.exclusions_changed);
        Here {
            class: Class::of(self.state, excluded, in_hours),
            in_hours,
            since,
            until: hours_until.min(excl_until),
        }
    }

    /// Operational time per state of `[a, b)` from the prefix sums (`a` no
    /// earlier than [`ServiceTimeline::window_reach`], `b` up to the open
    /// run's reach); time before the first record is left unaccounted.
    fn ops_between(&self, a: Millis, b: Millis) -> StateDurations {
        let (open, state) = (self.run_start, self.state);
        (self.runs.sums_at(b, open, state)).minus(&self.runs.sums_at(a, open, state))
    }

    /// Operational time per state of `[a, b)` walking the kept intervals:
    /// for spans the prefix sums no longer reach (the month).
    fn ops_walked(&self, a: Millis, b: Millis) -> StateDurations {
        let first = (self.runs.as_slice().partition_point(|r| r.0 <= a)).saturating_sub(1);
        overlap_sums(self.intervals_from(first), a, b)
    }

    /// Contractual time of `[a, b)` with the exclusions in force; `walk`
    /// when `a` may lie before the prefix sums kept.
    fn contract_between(&self, a: Millis, b: Millis, walk: bool) -> ContractDurations {
        let spans = self.hours.spans(a, b);
        let excluded = self.exclusions.union();
        if walk {
            contract_of(a, b, &spans, excluded, |c, d| self.ops_walked(c, d))
        } else {
            contract_of(a, b, &spans, excluded, |c, d| self.ops_between(c, d))
        }
    }

    /// Rebuilds the month's contractual sums from the intervals (at the start,
    /// after a restore, and when the exclusions change).
    fn recompute_month(&mut self) {
        let Some(cur) = self.cursor else { return };
        let (start, end) = self.month;
        self.month_acc = self.contract_between(start, cur, true);
        self.month_in_hours = self.hours.open_between(start, cur);
        self.month_open = self.hours.open_between(start, end);
    }

    /// Evaluates the burn-rate alerts at the bucket closes in `(cur, stop]`,
    /// where the state stays as it is on `[cur, stop)`. Two kinds of closes
    /// cannot change any alert and are skipped, so the cost follows the
    /// outages, not the time: once even the longest window lies inside the
    /// current run, every later close in it sees the same windows; and with a
    /// nonzero budget rate, an alert holds only when its short window holds
    /// downtime, so once no short window reaches back to downtime every alert
    /// is resolved and stays so.
    fn burn_closes(&mut self, cur: Millis, stop: Millis, here: &Here, out: &mut Vec<Incident>) {
        let (Some(longest), Some(short)) = (self.burn.longest(), self.burn.longest_short()) else {
            return;
        };
        let bad = here.class.counts_down(self.nodata);
        let pure_from = (here.since.saturating_add(longest)).saturating_add(self.bucket - 1);
        let clear_from = match self.burn.last_bad {
            _ if bad || self.budget_ratio() <= 0.0 => Millis::MAX,
            Some(end) => (end.saturating_add(short)).saturating_add(self.bucket - 1),
            None => Millis::MIN,
        };
        if bad {
            self.burn.last_bad = Some(stop);
        }
        let last = stop.min(pure_from).min(clear_from);
        let mut x = (cur.div_euclid(self.bucket) + 1) * self.bucket;
        if x > last {
            return;
        }
        let mut burn = std::mem::take(&mut self.burn);
        let service = BurnSubject {
            rule: Rule::BurnRate,
            slo: None,
            service: &self.id,
            customer: &self.customer,
            budget_ratio: self.budget_ratio(),
        };
        while x <= last {
            let window = |w, hint: &mut usize| self.window_time(x, w, hint).into();
            burn.evaluate(x, &service, window, out);
            x += self.bucket;
        }
        self.burn = burn;
    }

    /// `availability_target / 100`.
    pub fn objective(&self) -> f64 {
        self.target_pct / 100.0
    }

    /// `1 − availability_target/100`.
    fn budget_ratio(&self) -> f64 {
        1.0 - self.target_pct / 100.0
    }

    /// Downtime and measured time of `[at − w, at)` under the `nodata` policy,
    /// clipped at the first record (the first kept run: pruning keeps every run
    /// the longest window reaches). The state must be known up to `at`: the
    /// cursor, or the current state beyond it.
    fn window_time(&self, at: Millis, w: Millis, hint: &mut usize) -> WindowTime {
        let from = at.saturating_sub(w).max(self.first_kept()).min(at);
        if !self.hours.always() || !self.exclusions.is_empty() {
            let (measured, down) = self
                .contract_between(from, at, false)
                .measured_and_downtime(self.nodata);
            return WindowTime { down, measured };
        }
        let (open, state) = (self.run_start, self.state);
        let start = self.runs.sums_at_from(from, open, state, hint);
        let d = self.runs.sums_at(at, open, state).minus(&start);
        let (measured, down) = measured_and_downtime(
            self.nodata,
            d.total(),
            d[State::Maintenance],
            d[State::NoData],
            d[State::Down],
        );
        WindowTime { down, measured }
    }

    /// The burn rate over each window length in `windows` at the latest bucket
    /// close the timeline has reached (for `/metrics`); `None` where nothing was
    /// measured, before the first close, or with a 100 % target.
    pub fn burn_rates(&self, windows: &[Millis]) -> Vec<Option<f64>> {
        let close = self.latest_close();
        (windows.iter())
            .map(|&w| {
                let time = self.window_time(close?, w, &mut { usize::MAX });
                let rate = time.burn_rate(self.budget_ratio());
                rate.is_finite().then_some(rate)
            })
            .collect()
    }

    /// The latest bucket close after the first record that the timeline has
    /// reached: where burn rates are evaluated last.
    pub fn latest_close(&self) -> Option<Millis> {
        let close = self.cursor?.div_euclid(self.bucket) * self.bucket;
        (close > self.first_kept()).then_some(close)
    }

    /// The start of the first interval kept: the first record's `ts` unless
    /// retention pruned older intervals.
    fn first_kept(&self) -> Millis {
        self.runs.as_slice().first().map_or(self.run_start, |r| r.0)
    }

    /// Names of the burn-rate alerts whose incident is open.
    pub fn open_burn_alerts(&self) -> impl Iterator<Item = &str> {
        self.burn.open_names()
    }

    /// The current UTC month's `budget_remaining_s / budget_s` (as
    /// [`ServiceTimeline::budget_remaining_ratio`]) at every multiple of `step`
    /// from the month's start after the first record, and at the cursor.
    pub fn month_budget_series(&self, step: Millis) -> Vec<(Millis, f64)> {
        let Some(cursor) = self.cursor else {
            return Vec::new();
        };
        let (start, step) = (self.month.0, step.max(1));
        let mut points = Vec::new();
        let (mut acc, mut in_hours) = (ContractDurations::default(), 0);
        let mut prev = start;
        let first = self.first_kept();
        let mut at = start + step;
        while at < cursor {
            acc = acc.plus(&self.contract_between(prev, at, true));
            in_hours += self.hours.open_between(prev, at);
            prev = at;
            if at > first {
                points.extend(self.remaining_ratio(&acc, in_hours).map(|r| (at, r)));
            }
            at += step;
        }
        points.extend(self.budget_remaining_ratio().map(|r| (cursor, r)));
        points
    }

    /// The current UTC month's contractual availability so far (sections 4
    /// and 13 over `[month start, cursor)`): `None` before the first record or
    /// while nothing was measured.
    pub fn month_availability(&self) -> Option<f64> {
        self.cursor?;
        let (measured, down) = self.month_acc.measured_and_downtime(self.nodata);
        (measured > 0).then(|| (measured - down) as f64 / measured as f64)
    }

    /// [`ServiceTimeline::month_availability`] in percent, computed as
    /// reports compute `availability_pct` (so credit tiers see the same value).
    pub fn month_availability_pct(&self) -> Option<f64> {
        self.cursor?;
        self.month_acc.availability_pct(self.nodata)
    }

    /// The current UTC month's `budget_remaining_s / budget_s` at the cursor,
    /// with the budget of the whole month as `availability_breach` counts it
    /// (the rest of the month's service hours as measured): below zero exactly
    /// when that rule has fired. `None` before the first record or while the
    /// budget is zero.
    pub fn budget_remaining_ratio(&self) -> Option<f64> {
        self.cursor?;
        self.remaining_ratio(&self.month_acc, self.month_in_hours)
    }

    /// `budget_remaining_s / budget_s` of the month with `a` accounted since
    /// its start, `in_hours` of it in service hours (`None` while the budget
    /// is zero).
    fn remaining_ratio(&self, a: &ContractDurations, in_hours: Millis) -> Option<f64> {
        let (budget, down) = self.month_budget(a, in_hours);
        (budget > 0.0).then(|| (budget - down as f64) / budget)
    }

    /// The first bucket close in `(cur, next)` at which the error budget is
    /// exceeded, if the contractual state stays `here`; `None` when none is
    /// (or when the month's breach already fired).
    fn first_close_over_budget(&self, cur: Millis, next: Millis, here: &Here) -> Option<Millis> {
        if self.budget_breached.is_some() {
            return None;
        }
        let first = (cur.div_euclid(self.bucket) + 1) * self.bucket;
        if first >= next {
            return None;
        }
        let closes = (next - 1 - first).div_euclid(self.bucket); // index of the last close < next
        let over = |k: Millis| {
            let x = first + k * self.bucket;
            let (acc, in_hours) = self.accounted_to(cur, x, here);
            self.budget_exceeded_with(&acc, in_hours)
        };
        if !over(closes) {
            return None;
        }
        // `over` is monotone in k within one contractual state: downtime only
        // grows and the basis (measured so far + the hours left) only shrinks.
        let (mut lo, mut hi) = (0, closes);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if over(mid) {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Some(first + lo * self.bucket)
    }

    /// The month's contractual sums and hours time at `x`, when `[cur, x)`
    /// is all `here`.
    fn accounted_to(&self, cur: Millis, x: Millis, here: &Here) -> (ContractDurations, Millis) {
        let mut acc = self.month_acc;
        acc.add(here.class, x - cur);
        let in_hours = self.month_in_hours + if here.in_hours { x - cur } else { 0 };
        (acc, in_hours)
    }

    /// The next instant after `x` where the state or a deadline can change
    /// (bucket closes excluded, see [`ServiceTimeline::walk`]); `here` is the
    /// contractual state at `x`, which holds until a service-hours or an
    /// exclusion edge.
    fn next_event(&self, x: Millis, here: &Here) -> Millis {
        let mut next = Millis::MAX;
        let mut consider = |c: Millis| {
            if c > x && c < next {
                next = c;
            }
        };
        consider(self.month.1);
        consider(here.until);
        for &(_, ts) in self.sources.values() {
            consider(ts.saturating_add(self.stale_after));
        }
        for w in &self.windows {
            consider(w.from);
            consider(w.end);
        }
        if let Some(d) = self.outages.next_deadline(x) {
            consider(d);
        }
        next
    }

    fn state_at(&self, x: Millis) -> State {
        if self.windows.iter().any(|w| w.from <= x && x < w.end) {
            return State::Maintenance;
        }
        let (mut known, mut down, mut not_up) = (0usize, 0usize, 0usize);
        for &(status, ts) in self.sources.values() {
            if ts <= x && x - ts < self.stale_after {
                known += 1;
                down += usize::from(status == ProbeStatus::Down);
                not_up += usize::from(status != ProbeStatus::Up);
            }
        }
        if known == 0 {
            return State::NoData;
        }
        let quorum = match self.down_when {
            DownWhen::Any => down >= 1,
            DownWhen::Majority => down * 2 > known,
            DownWhen::All => down == known,
        };
        if quorum {
            State::Down
        } else if not_up > 0 {
            State::Degraded
        } else {
            State::Up
        }
    }

    /// Accounts `[a, b)`, all `here`, for the month's error budget (the
    /// interval itself is recorded when the state changes).
    fn account(&mut self, a: Millis, b: Millis, here: &Here) {
        (self.month_acc, self.month_in_hours) = self.accounted_to(a, b, here);
    }

    fn transition(&mut self, x: Millis, new: State) {
        let old = self.state;
        if new == old {
            return;
        }
        if x > self.run_start {
            // Runs are contiguous: the last closed one ends at `run_start`, and one of
            // the same state simply goes on.
            if self.runs.last().is_none_or(|last| last.1 != old) {
                self.runs.push(self.run_start, old);
            }
        } else if let Some((start, state)) = self.runs.last()
            && state == new
        {
            // A zero-length detour (two changes at one instant): resume the previous run.
            self.run_start = start;
            self.runs.pop();
            self.state = new;
            self.outage_transition(x, old, new);
            return;
        }
        self.run_start = x;
        self.state = new;
        self.outage_transition(x, old, new);
    }

    /// At a bucket close, checks the month's error budget; at a month end, resolves
    /// the month's `availability_breach` and starts the next month.
    fn month_boundaries(&mut self, x: Millis, out: &mut Vec<Incident>) {
        let (start, end) = self.month;
        if (x.rem_euclid(self.bucket) == 0 || x == end)
            && self.budget_breached.is_none()
            && self.budget_exceeded_with(&self.month_acc, self.month_in_hours)
        {
            self.budget_breached = Some(x);
            out.push(self.budget_incident(Action::Trigger, x, x, None));
        }
        if x >= end {
            if let Some(started) = self.budget_breached.take() {
                out.push(self.budget_incident(Action::Resolve, started, end, Some(end)));
            }
            self.month = month_of(x);
            self.recompute_month();
            debug_assert!(self.month.0 >= start);
        }
    }

    /// Downtime since month start > (1 − target) × (the measured time since
    /// month start + the service hours left in the month), with `a` accounted
    /// since month start, `in_hours` of it in service hours (contract
    /// sections 5 and 13).
    fn budget_exceeded_with(&self, a: &ContractDurations, in_hours: Millis) -> bool {
        let (budget, downtime) = self.month_budget(a, in_hours);
        downtime as f64 > budget
    }

    /// The month's downtime budget in ms and its downtime so far.
    fn month_budget(&self, a: &ContractDurations, in_hours: Millis) -> (f64, Millis) {
        let (measured, downtime) = a.measured_and_downtime(self.nodata);
        let basis = measured + (self.month_open - in_hours);
        (self.budget_ratio() * basis as f64, downtime)
    }

    fn budget_incident(
        &self,
        action: Action,
        started: Millis,
        at: Millis,
        ended: Option<Millis>,
    ) -> Incident {
        let month = format_ms(self.month.0);
        let summary = format!(
            "{} exceeded its {}% monthly error budget ({})",
            self.id,
            self.target_pct,
            &month[..7]
        );
        let mut i = Incident::service(
            Rule::AvailabilityBreach,
            Severity::Major,
            &self.id,
            &self.customer,
            &self.id,
            action,
            started,
            at,
            ended,
            summary,
        );
        i.details = serde_json::json!({ "month": &month[..7], "target_pct": self.target_pct });
        i
    }

    fn outage_transition(&mut self, x: Millis, old: State, new: State) {
        if (old == State::Down) != (new == State::Down) {
            self.outages.set_bad(x, new == State::Down);
        }
    }

    /// Inlined, since a settle calls it twice and mostly no outage is open.
    #[inline(always)]
    fn fire_deadlines(&mut self, x: Millis, out: &mut Vec<Incident>) {
        if self.outages.is_open() {
            self.fire_due(x, out);
        }
    }

    fn fire_due(&mut self, x: Millis, out: &mut Vec<Incident>) {
        let mut events = Vec::new();
        self.outages.fire(x, &mut |e| events.push(e));
        for e in events {
            out.push(match e {
                EpisodeEvent::Trigger { start, at } => {
                    let mut i = self.outage(Action::Trigger, start, at, None);
                    // Section 15: the key is there only when a change is attributed.
                    if let Some(id) = self.changes.attribute(start, self.change_window) {
                        i.details = serde_json::json!({ "change_id": id });
                    }
                    i
                }
                EpisodeEvent::Resolve { start, end, at } => {
                    self.outage(Action::Resolve, start, at, Some(end))
                }
            });
        }
    }

    fn outage(&self, action: Action, start: Millis, at: Millis, ended: Option<Millis>) -> Incident {
        let summary = match ended {
            None => format!("{} down since {}", self.id, format_ms(start)),
            Some(e) => format!(
                "{} down from {} to {}",
                self.id,
                format_ms(start),
                format_ms(e)
            ),
        };
        Incident::service(
            Rule::Outage,
            Severity::Critical,
            &self.id,
            &self.customer,
            &self.id,
            action,
            start,
            at,
            ended,
            summary,
        )
    }

    /// The state at the cursor.
    pub fn state(&self) -> State {
        self.state
    }

    /// Service id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Customer id.
    pub fn customer(&self) -> &str {
        &self.customer
    }

    /// Maximal state intervals up to the cursor (the open run included), in time
    /// order. Time before the first interval is `nodata`.
    pub fn intervals(&self) -> impl Iterator<Item = (Millis, Millis, State)> + '_ {
        self.intervals_from(0)
    }

    /// [`ServiceTimeline::intervals`] from the `first`-th closed run on.
    fn intervals_from(&self, first: usize) -> impl Iterator<Item = (Millis, Millis, State)> + '_ {
        let runs = self.runs.as_slice().get(first..).unwrap_or_default();
        let ends = (runs.iter())
            .skip(1)
            .map(|r| r.0)
            .chain(std::iter::once(self.run_start));
        let closed = (runs.iter().zip(ends)).map(|(&(a, s), b)| (a, b, s));
        let open = self
            .cursor
            .filter(|&c| c > self.run_start)
            .map(|c| (self.run_start, c, self.state));
        closed.chain(open)
    }

    /// Forgets the closed intervals that ended before `horizon` (retention),
    /// keeping what the longest burn-rate window still reaches back to.
    pub fn prune(&mut self, horizon: Millis) {
        let Some(cursor) = self.cursor else { return };
        // Keep the month too: an exclusion rebuilds its sums from the intervals.
        let horizon = horizon.min(self.window_reach(cursor)).min(self.month.0);
        // Run i ends where run i + 1 starts; the last one at `run_start`.
        let runs = self.runs.as_slice();
        let mut old = (runs.get(1..)).map_or(0, |rest| rest.partition_point(|r| r.0 <= horizon));
        if old + 1 == runs.len() && self.run_start <= horizon {
            old += 1;
        }
        self.runs.drop_oldest(old);
        self.maintenance_log.retain(|m| m.end > horizon);
        self.exclusions.prune(horizon);
        self.requests.prune(horizon);
        self.changes
            .prune(horizon.min(cursor.saturating_sub(self.change_window)));
    }

    /// Per-bucket durations by state (bucket start → ms per [`State`]), derived
    /// from the intervals: a row for every bucket that holds time with data, with
    /// the `nodata` time accounted in it; a bucket entirely without data has no
    /// row (silence costs nothing). Time before the first record and after the
    /// cursor is not accounted.
    pub fn buckets(&self) -> BTreeMap<Millis, StateDurations> {
        let mut out: BTreeMap<Millis, StateDurations> = BTreeMap::new();
        let split = |a: Millis, b: Millis, f: &mut dyn FnMut(Millis, Millis)| {
            let mut x = a;
            while x < b {
                let start = x.div_euclid(self.bucket) * self.bucket;
                let end = (start + self.bucket).min(b);
                f(start, end - x);
                x = end;
            }
        };
        for (a, b, s) in self.intervals().filter(|i| i.2 != State::NoData) {
            split(a, b, &mut |start, ms| {
                out.entry(start).or_default()[s] += ms
            });
        }
        // Nodata time only where a bucket has data too: look up those buckets
        // instead of walking a silence bucket by bucket.
        for (a, b, _) in self.intervals().filter(|i| i.2 == State::NoData) {
            let first = a.div_euclid(self.bucket) * self.bucket;
            for (&start, d) in out.range_mut(first..b) {
                let overlap = (start + self.bucket).min(b) - start.max(a);
                d[State::NoData] += overlap;
            }
        }
        out
    }

    /// How far the timeline is accounted.
    pub fn cursor(&self) -> Option<Millis> {
        self.cursor
    }
}

/// The contractual state of the stretch the walk is in (section 13).
struct Here {
    class: Class,
    in_hours: bool,
    /// Since when it holds (or a later instant).
    since: Millis,
    /// Where service hours or exclusions change next.
    until: Millis,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    const M: Millis = 60_000;

    fn timeline(extra: &str) -> ServiceTimeline {
        let text = format!(
            "burn_alerts = []\n[[customers]]\nid = \"c\"\n[[services]]\nid = \"web\"\ncustomer = \"c\"\n{extra}\n"
        );
        let cfg = Config::parse(&text, Path::new("t.toml")).expect("config");
        ServiceTimeline::new(
            &cfg.services[0],
            crate::engine::service_hours(&cfg, &cfg.services[0]),
            M,
            &cfg.burn_alerts.clone().into(),
        )
    }

    fn totals(t: &ServiceTimeline) -> StateDurations {
        let mut d = StateDurations::default();
        for (a, b, s) in t.intervals() {
            d[s] += b - a;
        }
        d
    }

    fn actions(v: &[Incident]) -> Vec<(Action, Millis, Millis)> {
        v.iter()
            .map(|i| (i.action, i.started_ms, i.at_ms))
            .collect()
    }

    #[test]
    fn staleness_makes_nodata_and_buckets_match_intervals() {
        let mut t = timeline("");
        let mut out = Vec::new();
        t.probe(0, "a", ProbeStatus::Up, &mut out);
        t.advance(5 * M, &mut out);
        // up for stale_after (2m), then nodata.
        assert_eq!(totals(&t), [2 * M, 0, 0, 0, 3 * M]);
        let from_buckets = (t.buckets().values()).fold(StateDurations::default(), |mut acc, d| {
            for s in State::ALL {
                acc[s] += d[s];
            }
            acc
        });
        // Whole buckets without data are implicit: the three nodata minutes.
        assert_eq!(from_buckets, [2 * M, 0, 0, 0, 0]);
        assert_eq!(t.buckets().len(), 2);
        // A bucket partly without data keeps its nodata share.
        t.probe(5 * M + 30_000, "a", ProbeStatus::Up, &mut out);
        t.advance(6 * M, &mut out);
        assert_eq!(t.buckets()[&(5 * M)], [30_000, 0, 0, 0, 30_000]);
    }

    /// Dense reference: every bucket from the first record to the cursor, each
    /// state's overlap summed interval by interval; then the buckets without data
    /// dropped, as the sparse derivation promises.
    fn dense_buckets(t: &ServiceTimeline) -> BTreeMap<Millis, StateDurations> {
        let iv: Vec<_> = t.intervals().collect();
        let (Some(first), Some(end)) = (iv.first().map(|i| i.0), t.cursor()) else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        let mut start = first.div_euclid(M) * M;
        while start < end {
            let mut d = StateDurations::default();
            for &(a, b, s) in &iv {
                let overlap = b.min(start + M) - a.max(start);
                if overlap > 0 {
                    d[s] += overlap;
                }
            }
            if d.known() > 0 {
                out.insert(start, d);
            }
            start += M;
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]

        #[test]
        fn sparse_buckets_equal_dense_ones(steps in proptest::collection::vec((0..400_000i64, 0..3usize, 0..4u8), 1..60)) {
            let mut t = timeline("");
            let mut out = Vec::new();
            let mut ts = 1_793_577_600_000 + 12_345;
            for (dt, source, what) in steps {
                ts += dt;
                match what {
                    3 => t.maintenance(ts, (ts + dt / 2, ts + dt), Some("CHG"), &mut out),
                    s => {
                        let status = [ProbeStatus::Up, ProbeStatus::Degraded, ProbeStatus::Down][s as usize];
                        t.probe(ts, ["a", "b", "c"][source], status, &mut out);
                    }
                }
            }
            t.advance(ts + 300_000, &mut out);
            proptest::prop_assert_eq!(t.buckets(), dense_buckets(&t));
        }
    }

    /// A random stream for the section 13 reference: probes of two sources
    /// over three days from a Thursday, and exclusions (retroactive, some
    /// replaced) on a service with office hours (UTC, weekdays 09:00-17:00,
    /// lunch 12:00-13:00) under tight burn-rate alerts and a 99 % target.
    #[derive(Debug, Clone)]
    enum Step {
        Probe(Millis, usize, ProbeStatus),
        Exclusion(Millis, u8, Millis, Millis),
        Maintenance(Millis, Millis, Millis),
    }

    const HOURS_CONFIG: &str = r#"
[[burn_alerts]]
name = "fast"
long = "1h"
short = "5m"
factor = 10.0
severity = "critical"
[[burn_alerts]]
name = "slow"
long = "6h"
short = "30m"
factor = 2.0
severity = "minor"
[[customers]]
id = "c"
[[calendars]]
id = "office"
[calendars.hours]
mon = "09:00-12:00,13:00-17:00"
tue = "09:00-12:00,13:00-17:00"
wed = "09:00-12:00,13:00-17:00"
thu = "09:00-12:00,13:00-17:00"
fri = "09:00-12:00,13:00-17:00"
[[services]]
id = "web"
customer = "c"
availability_target = 99.0
service_hours = "office"
nodata = "down"
"#;

    /// 2026-11-26T00:00:00Z, a Thursday: the walk crosses a weekend and the
    /// month's end.
    const THU: Millis = 1_795_651_200_000;

    fn hours_steps() -> impl proptest::strategy::Strategy<Value = Vec<Step>> {
        use proptest::prelude::*;
        let step = prop_oneof![
            8 => (1..1_800_000i64, 0..2usize, 0..3u8).prop_map(|(dt, src, s)| {
                let status = [ProbeStatus::Up, ProbeStatus::Down, ProbeStatus::Degraded][s as usize];
                Step::Probe(dt, src, status)
            }),
            1 => (1..600_000i64, 0..3u8, -20_000_000..2_000_000i64, 60_000..20_000_000i64)
                .prop_map(|(dt, id, from, len)| Step::Exclusion(dt, id, from, len)),
            1 => (1..600_000i64, 0..5_000_000i64, 60_000..7_200_000i64)
                .prop_map(|(dt, from, len)| Step::Maintenance(dt, from, len)),
        ];
        proptest::collection::vec(step, 1..120)
    }

    /// The brute-force reference: the contractual state of every piece of
    /// `[lo, hi)` between two edges (an interval's, an exclusion's, or a whole
    /// hour, where the office calendar can change), from the operational
    /// intervals (which exclusions never change), with the exclusions in force
    /// at bucket close `x` (those applied at a `ts` before `x`), the calendar
    /// asked instant by instant. Time before the first record is `nodata`.
    type Piece = (Millis, Millis, Class);

    struct Reference {
        ops: Vec<(Millis, Millis, State)>,
        /// (ts, id, start, end) in application order.
        exclusions: Vec<(Millis, u8, Millis, Millis)>,
        hours: Calendar,
        lo: Millis,
        hi: Millis,
        /// Pieces per number of exclusions applied.
        cache: std::cell::RefCell<BTreeMap<usize, Vec<Piece>>>,
    }

    impl Reference {
        fn pieces(&self, x: Millis) -> Vec<Piece> {
            let applied = self.exclusions.iter().filter(|e| e.0 < x).count();
            let mut cache = self.cache.borrow_mut();
            cache
                .entry(applied)
                .or_insert_with(|| {
                    let mut in_force: BTreeMap<u8, (Millis, Millis)> = BTreeMap::new();
                    for &(_, id, a, b) in &self.exclusions[..applied] {
                        in_force.insert(id, (a, b));
                    }
                    let mut cuts: Vec<Millis> = vec![self.lo, self.hi];
                    cuts.extend(self.ops.iter().flat_map(|o| [o.0, o.1]));
                    cuts.extend(in_force.values().flat_map(|w| [w.0, w.1]));
                    cuts.extend((self.lo..self.hi).step_by(3_600_000));
                    cuts.retain(|&c| self.lo <= c && c <= self.hi);
                    cuts.sort_unstable();
                    cuts.dedup();
                    (cuts.windows(2))
                        .map(|w| {
                            let t = w[0];
                            let state = (self.ops.iter().find(|o| o.0 <= t && t < o.1))
                                .map_or(State::NoData, |o| o.2);
                            let excluded = in_force.values().any(|&(a, b)| a <= t && t < b);
                            let open = self.hours.business_between(t, t + 1) == 1;
                            (w[0], w[1], Class::of(state, excluded, open))
                        })
                        .collect()
                })
                .clone()
        }

        /// (down, measured) of `[a, b)` as seen at close `x` (`nodata = "down"`).
        fn window(&self, a: Millis, b: Millis, x: Millis) -> (Millis, Millis) {
            let (mut down, mut measured) = (0, 0);
            for (s, e, class) in self.pieces(x) {
                let len = e.min(b) - s.max(a);
                if len <= 0 {
                    continue;
                }
                match class {
                    Class::In(State::Down) | Class::In(State::NoData) => {
                        down += len;
                        measured += len;
                    }
                    Class::In(_) => measured += len,
                    _ => {}
                }
            }
            (down, measured)
        }
    }

    /// Applies `step` (taken at `ts`) to `t` as the property test does.
    fn replay_step(t: &mut ServiceTimeline, step: &Step, ts: Millis, out: &mut Vec<Incident>) {
        match *step {
            Step::Probe(dt, src, status) => t.probe(ts + dt, ["a", "b"][src], status, out),
            Step::Exclusion(dt, id, from, len) => {
                let ts = ts + dt;
                let version = Exclusion {
                    start: ts + from,
                    end: ts + from + len,
                    reason: "r".into(),
                    approved_by: "x".into(),
                    versions: 0,
                    ts,
                };
                t.exclusion(ts, &format!("X{id}"), version, out)
            }
            Step::Maintenance(dt, from, len) => {
                let ts = ts + dt;
                t.maintenance(ts, (ts + from, ts + from + len), None, out)
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(48))]

        /// `availability_breach` and `burn_rate` with service hours and
        /// exclusions (sections 5, 11 and 13) equal a brute-force evaluation
        /// at every bucket close; a timeline checkpointed at any step (its
        /// month's sums rebuilt from the intervals) goes on exactly the same.
        #[test]
        fn hours_and_exclusions_match_a_brute_force_reference(steps in hours_steps(), split in 0..120usize) {
            let cfg = Config::parse(HOURS_CONFIG, Path::new("t.toml")).expect("config");
            let svc = &cfg.services[0];
            let alerts: Arc<[BurnAlert]> = cfg.burn_alerts.clone().into();
            let calendar = crate::engine::service_hours(&cfg, svc);
            let mut t = ServiceTimeline::new(svc, calendar.clone(), M, &alerts);
            let mut out = Vec::new();
            let mut ts = THU + 8 * 3_600_000;
            let mut exclusions = Vec::new();
            let mut restored: Option<(ServiceTimeline, Vec<Incident>)> = None;
            for (i, step) in steps.iter().enumerate() {
                if i == split {
                    let bytes = serde_json::to_vec(&t).expect("serialises");
                    let back: ServiceTimeline = serde_json::from_slice(&bytes).expect("reads");
                    let mut fresh = ServiceTimeline::new(svc, calendar.clone(), M, &alerts);
                    fresh.restore(back);
                    restored = Some((fresh, out.clone()));
                }
                replay_step(&mut t, step, ts, &mut out);
                if let Some((r, out)) = restored.as_mut() {
                    replay_step(r, step, ts, out);
                }
                let (Step::Probe(dt, ..) | Step::Exclusion(dt, ..) | Step::Maintenance(dt, ..)) = *step;
                ts += dt;
                if let Step::Exclusion(_, id, from, len) = *step {
                    // Applied before the first record: in force from the start.
                    let at = if t.cursor().is_some() { ts } else { Millis::MIN };
                    exclusions.push((at, id, ts + from, ts + from + len));
                }
            }
            let end = ts + 8 * 3_600_000;
            t.advance(end, &mut out);
            if let Some((mut r, mut restored_out)) = restored {
                r.advance(end, &mut restored_out);
                proptest::prop_assert_eq!(&restored_out, &out);
            }
            let ops: Vec<_> = t.intervals().collect();
            let Some(first) = ops.first().map(|o| o.0) else { return Ok(()) };
            let reference = Reference {
                ops,
                exclusions,
                hours: (*calendar).clone(),
                lo: month_of(first).0,
                hi: end,
                cache: Default::default(),
            };
            let e = 1.0 - 99.0 / 100.0;

            // availability_breach: per month, the first close where downtime
            // exceeds 1 % of the measured time so far plus the hours left.
            let mut want = Vec::new();
            let mut month = month_of(first);
            let mut fired = false;
            let mut x = (first.div_euclid(M) + 1) * M;
            while x <= end {
                if x > month.1 {
                    if fired { want.push((Rule::AvailabilityBreach, Action::Resolve, month.1)); }
                    month = month_of(x - 1);
                    fired = false;
                }
                if !fired {
                    let (down, measured) = reference.window(month.0, x, x);
                    let left = reference.hours.business_between(x, month.1);
                    if down as f64 > e * (measured + left) as f64 {
                        want.push((Rule::AvailabilityBreach, Action::Trigger, x));
                        fired = true;
                    }
                }
                x += M;
            }
            // burn_rate: both windows burn at least `factor` times 1 %.
            let mut open = [false; 2];
            let mut x = (first.div_euclid(M) + 1) * M;
            while x <= end {
                for (i, a) in alerts.iter().enumerate() {
                    let holds = [a.long.ms, a.short.ms].iter().all(|&w| {
                        let (down, measured) = reference.window((x - w).max(first), x, x);
                        measured > 0 && down as f64 >= a.factor * e * measured as f64
                    });
                    if holds != open[i] {
                        open[i] = holds;
                        let action = if holds { Action::Trigger } else { Action::Resolve };
                        want.push((Rule::BurnRate, action, x));
                    }
                }
                x += M;
            }
            let mut got: Vec<_> = (out.iter())
                .filter(|i| matches!(i.rule, Rule::AvailabilityBreach | Rule::BurnRate))
                .map(|i| (i.rule, i.action, i.at_ms))
                .collect();
            got.sort_by_key(|g| (g.2, g.0 as u8, g.1 as u8));
            want.sort_by_key(|g| (g.2, g.0 as u8, g.1 as u8));
            // Only the closes the engine has walked past are final.
            want.retain(|w| w.2 <= end);
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn a_timeline_checkpointed_before_section_13_restores_the_same() {
        // Version-2 checkpoints carried `month_acc` (five operational sums) and
        // neither exclusions nor hours: the month is rebuilt from the intervals.
        let nov = 1_793_491_200_000;
        let mut t = timeline("availability_target = 99.9");
        let mut out = Vec::new();
        for i in 0..90 {
            let s = if (30..50).contains(&i) {
                ProbeStatus::Down
            } else {
                ProbeStatus::Up
            };
            t.probe(nov + i * M, "a", s, &mut out);
        }
        let mut old = serde_json::to_value(&t).expect("serialises");
        let fields = old.as_object_mut().expect("an object");
        fields.remove("exclusions");
        fields.remove("exclusions_changed");
        fields.insert(
            "month_acc".into(),
            serde_json::json!([3_540_000, 0, 1_200_000, 0, 0]),
        );
        let back: ServiceTimeline = serde_json::from_value(old).expect("reads the old shape");
        let mut restored = timeline("availability_target = 99.9");
        restored.restore(back);
        assert_eq!(restored.month_acc, t.month_acc);
        assert_eq!(
            restored.budget_remaining_ratio(),
            t.budget_remaining_ratio()
        );
        let mut out2 = out.clone();
        for i in 90..200 {
            t.probe(nov + i * M, "a", ProbeStatus::Down, &mut out);
            restored.probe(nov + i * M, "a", ProbeStatus::Down, &mut out2);
        }
        assert_eq!(out2, out);
        assert!(out.iter().any(|i| i.rule == Rule::AvailabilityBreach));
    }

    #[test]
    fn decades_of_silence_cost_a_few_steps() {
        let mut t = timeline("");
        let mut out = Vec::new();
        // An agent with an uninitialised clock, then real probes 56 years later.
        t.probe(1000, "a", ProbeStatus::Up, &mut out);
        let now = 1_793_577_600_000;
        for i in 0..10 {
            t.probe(now + i * M, "a", ProbeStatus::Up, &mut out);
        }
        t.advance(now + 10 * M, &mut out);
        assert!(t.buckets().len() <= 16, "{} buckets", t.buckets().len());
        assert!(out.is_empty(), "{out:?}");
        assert_eq!(totals(&t)[State::NoData], now - 1000 - 2 * M);
    }

    #[test]
    fn a_budget_tripped_by_silence_fires_at_the_first_close_over_it() {
        // 11 minutes down, then silence: with `nodata = "exclude"` the basis shrinks
        // as silence grows, until 11 minutes exceed 0.1 % of what is left.
        let nov = 1_793_491_200_000; // 2026-11-01T00:00:00Z
        let month = 30 * 1440 * M;
        let mut t = timeline("availability_target = 99.9");
        let mut out = Vec::new();
        for i in 0..10 {
            t.probe(nov + i * M, "a", ProbeStatus::Down, &mut out);
        }
        t.advance(nov + month, &mut out);
        // The oracle: scan every minute close with the contract's formula.
        let down = 11 * M;
        let allowed = 1.0 - 99.9 / 100.0;
        let first = (1..=30 * 1440)
            .map(|m| m * M)
            .find(|&x| down as f64 > allowed * (month - (x - down)) as f64)
            .expect("tripped within the month");
        let breach: Vec<_> = out
            .iter()
            .filter(|i| i.rule == Rule::AvailabilityBreach)
            .map(|i| (i.action, i.at_ms - nov))
            .collect();
        assert_eq!(breach, [(Action::Trigger, first), (Action::Resolve, month)]);
    }

    #[test]
    fn quorum_variants() {
        for (rule, want) in [
            ("any", State::Down),
            ("majority", State::Degraded),
            ("all", State::Degraded),
        ] {
            let mut t = timeline(&format!("down_when = \"{rule}\""));
            let mut out = Vec::new();
            t.probe(0, "a", ProbeStatus::Down, &mut out);
            t.probe(0, "b", ProbeStatus::Up, &mut out);
            t.probe(0, "c", ProbeStatus::Up, &mut out);
            assert_eq!(t.state_at(0), want, "{rule}, 1 of 3 down");
        }
        let mut t = timeline("");
        let mut out = Vec::new();
        t.probe(0, "a", ProbeStatus::Down, &mut out);
        t.probe(0, "b", ProbeStatus::Down, &mut out);
        t.probe(0, "c", ProbeStatus::Up, &mut out);
        assert_eq!(t.state_at(0), State::Down, "majority, 2 of 3 down");
        // A stale source no longer counts: at 2m only b's newer report is known.
        t.probe(M, "b", ProbeStatus::Down, &mut out);
        assert_eq!(t.state_at(2 * M), State::Down, "majority of 1 known");
    }

    #[test]
    fn maintenance_is_never_retroactive() {
        let mut t = timeline("");
        let mut out = Vec::new();
        t.probe(0, "a", ProbeStatus::Down, &mut out);
        t.probe(M, "a", ProbeStatus::Down, &mut out);
        // Announced at 90s for [0, 3m): only [90s, 3m) is maintenance.
        t.maintenance(90_000, (0, 3 * M), Some("CHG-1"), &mut out);
        t.probe(2 * M, "a", ProbeStatus::Down, &mut out);
        t.advance(3 * M, &mut out);
        assert_eq!(totals(&t), [0, 0, 90_000, 90_000, 0]);
        // Reports list it with its change id and the part that counted.
        let log: Vec<_> = t.maintenance_log().collect();
        assert_eq!(log.len(), 1);
        assert_eq!(log[0].change_id.as_deref(), Some("CHG-1"));
        assert_eq!(log[0].effective(), (90_000, 3 * M));
        // Kept while retention reaches it (and while it is in the current
        // month: an exclusion may make the month be recomputed), then forgotten.
        t.advance(32 * 1440 * M, &mut out);
        t.prune(3 * M - 1);
        assert_eq!(t.maintenance_log().count(), 1);
        t.prune(3 * M);
        assert_eq!(t.maintenance_log().count(), 0);
    }

    #[test]
    fn maintenance_announced_before_or_after_the_window() {
        // Announced an hour before: the whole window counts.
        let mut t = timeline("");
        let mut out = Vec::new();
        t.maintenance(0, (60 * M, 90 * M), None, &mut out);
        for i in 0..=120 {
            t.probe(i * M, "a", ProbeStatus::Down, &mut out);
        }
        t.advance(120 * M, &mut out);
        assert_eq!(totals(&t), [0, 0, 90 * M, 30 * M, 0]);
        // Announced after the window ended: nothing is excluded.
        let mut t = timeline("");
        for i in 0..=120 {
            t.probe(i * M, "a", ProbeStatus::Down, &mut out);
            if i == 100 {
                t.maintenance(100 * M, (60 * M, 90 * M), None, &mut out);
            }
        }
        t.advance(120 * M, &mut out);
        assert_eq!(totals(&t), [0, 0, 120 * M, 0, 0]);
        assert_eq!(t.maintenance_log().count(), 0, "nothing of it counted");
    }

    #[test]
    fn flapping_is_one_outage() {
        let mut t = timeline("");
        let mut out = Vec::new();
        // down 0–90s, up 90s–150s (60s < resolve_after 2m), down 150s–300s, then up.
        // (Without the 240s probe the 150s one would go stale at 270s.)
        t.probe(0, "a", ProbeStatus::Down, &mut out);
        t.probe(90_000, "a", ProbeStatus::Up, &mut out);
        t.probe(150_000, "a", ProbeStatus::Down, &mut out);
        t.probe(240_000, "a", ProbeStatus::Down, &mut out);
        t.probe(300_000, "a", ProbeStatus::Up, &mut out);
        t.probe(400_000, "a", ProbeStatus::Up, &mut out);
        t.advance(600_000, &mut out);
        assert_eq!(
            actions(&out),
            vec![(Action::Trigger, 0, 60_000), (Action::Resolve, 0, 420_000)]
        );
        assert_eq!(
            out[1].ended_at.as_deref(),
            Some(format_ms(300_000).as_str())
        );
        assert_eq!(out[0].incident_id, out[1].incident_id);
    }

    #[test]
    fn short_downs_do_not_trigger_and_exact_threshold_does() {
        let mut t = timeline("");
        let mut out = Vec::new();
        t.probe(0, "a", ProbeStatus::Down, &mut out);
        t.probe(59_999, "a", ProbeStatus::Up, &mut out);
        t.advance(10 * M, &mut out);
        assert!(out.is_empty(), "59.999s down is below outage_after");
        t.probe(10 * M, "a", ProbeStatus::Down, &mut out);
        t.probe(11 * M, "a", ProbeStatus::Up, &mut out);
        t.advance(20 * M, &mut out);
        assert_eq!(
            actions(&out),
            vec![
                (Action::Trigger, 10 * M, 11 * M),
                (Action::Resolve, 10 * M, 13 * M)
            ]
        );
    }

    #[test]
    fn error_budget_breach_fires_at_the_first_bucket_close_over_budget_and_resolves_at_month_end() {
        // 99.9% of November (30 days = 2,592,000 s) allows 2,592 s = 43.2 min of downtime,
        // with the whole month measured (a probe every minute keeps it known).
        let mut t =
            timeline("availability_target = 99.9\nstale_after = \"2m\"\noutage_after = \"100d\"");
        let mut out = Vec::new();
        let nov = crate::time::parse_rfc3339("2026-11-01T00:00:00Z").expect("t");
        for i in 0..44 {
            t.probe(nov + i * M, "a", ProbeStatus::Down, &mut out);
        }
        t.advance(nov + 43 * M, &mut out);
        assert!(out.is_empty(), "43 min of downtime is within budget");
        for i in 44..60 {
            t.probe(nov + i * M, "a", ProbeStatus::Down, &mut out);
        }
        for i in 60..(60 * 24 * 31) {
            t.probe(nov + i * M, "a", ProbeStatus::Up, &mut out);
        }
        t.advance(nov + 60 * 24 * 31 * M, &mut out);
        // Budget counts the whole month length (contract): 43.2 min, so the close of the
        // bucket ending at 00:44 (44 min down) is the first over budget.
        let got: Vec<_> = out
            .iter()
            .map(|i| (i.rule, i.action, i.at_ms - nov))
            .collect();
        assert_eq!(
            got,
            vec![
                (Rule::AvailabilityBreach, Action::Trigger, 44 * M),
                (Rule::AvailabilityBreach, Action::Resolve, 30 * 24 * 60 * M),
            ]
        );
        assert_eq!(month_of(nov + 5), (nov, nov + 30 * 24 * 60 * M));
    }

    #[test]
    fn deadline_fires_only_when_time_reaches_it() {
        let mut t = timeline("");
        let mut out = Vec::new();
        t.probe(0, "a", ProbeStatus::Down, &mut out);
        t.advance(59_999, &mut out);
        assert!(out.is_empty());
        t.advance(60_000, &mut out);
        assert_eq!(actions(&out), vec![(Action::Trigger, 0, 60_000)]);
    }
}
