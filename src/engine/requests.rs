//! Request-based SLOs (contract section 14): cumulative counter samples become
//! increases dated at their samples; an SLO's total and bad events over any
//! period are sums of those increases, and its burn-rate alerts are evaluated
//! at every bucket close like a service's (section 11).
//!
//! Maintenance and service hours are known when a sample is applied (neither
//! is retroactive), so increases dated inside them are dropped then.
//! Exclusions may come later and reach back, so the increases are kept by
//! sample time and the exclusions in force are taken out when a period is
//! summed.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::{BurnAlert, Config, SloConfig, SloSide};
use crate::engine::burn::{BurnAlerts, BurnSubject, Spent};
use crate::engine::incidents::Incident;
use crate::ids;
use crate::model::Rule;
use crate::time::{Millis, check_instant};

/// The counted increases of one counter name of a service, by sample time:
/// `cum[i]` = the sum of the increases dated at or before `ts[i]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncreaseLog {
    ts: Vec<Millis>,
    cum: Vec<f64>,
    /// The sum of the increases pruned away (before `ts[0]`).
    base: f64,
}

impl IncreaseLog {
    /// Adds an increase dated `ts` (no earlier than the last one).
    fn push(&mut self, ts: Millis, increase: f64) {
        let last = self.cum.last().copied().unwrap_or(self.base);
        match self.ts.last() {
            Some(&t) if t >= ts => {
                if let Some(c) = self.cum.last_mut() {
                    *c += increase;
                }
            }
            _ => {
                self.ts.push(ts);
                self.cum.push(last + increase);
            }
        }
    }

    /// The sum of the increases dated before `x`.
    fn before(&self, x: Millis) -> f64 {
        // A window mostly ends after the newest increase: no search then.
        if let (Some(&t), Some(&c)) = (self.ts.last(), self.cum.last())
            && t < x
        {
            return c;
        }
        match self.ts.partition_point(|&t| t < x) {
            0 => self.base,
            i => self.cum[i - 1],
        }
    }

    /// The sum of the increases dated in `[a, b)`, minus those dated inside
    /// the sorted, disjoint `excluded` windows.
    pub fn sum(&self, a: Millis, b: Millis, excluded: &[(Millis, Millis)]) -> f64 {
        if b <= a {
            return 0.0;
        }
        let mut sum = self.before(b) - self.before(a);
        let first = excluded.partition_point(|w| w.1 <= a);
        for &(s, e) in excluded[first..].iter().take_while(|w| w.0 < b) {
            sum -= self.before(e.min(b)) - self.before(s.max(a));
        }
        sum
    }

    /// The first increase dated at or after `x`.
    fn first_at_or_after(&self, x: Millis) -> Option<Millis> {
        self.ts.get(self.ts.partition_point(|&t| t < x)).copied()
    }

    /// `(ts, increase)` of every kept sample time, oldest first.
    pub fn increases(&self) -> impl Iterator<Item = (Millis, f64)> + '_ {
        let prev = std::iter::once(self.base).chain(self.cum.iter().copied());
        (self.ts.iter().zip(self.cum.iter()).zip(prev)).map(|((&t, &c), p)| (t, c - p))
    }

    /// Forgets the increases dated before `horizon`.
    fn prune(&mut self, horizon: Millis) {
        let n = self.ts.partition_point(|&t| t < horizon);
        if n > 0 {
            self.base = self.cum[n - 1];
            self.ts.drain(..n);
            self.cum.drain(..n);
        }
    }

    fn check(&self) -> Result<(), String> {
        if self.ts.len() != self.cum.len() || self.ts.windows(2).any(|w| w[0] >= w[1]) {
            return Err("counter increases unordered".into());
        }
        if !(self.base.is_finite() && self.cum.iter().all(|c| c.is_finite())) {
            return Err("counter sums not finite".into());
        }
        self.ts
            .iter()
            .try_for_each(|&t| check_instant("counter sample", t))
    }
}

/// Total and bad events of `slo` dated in `[a, b)` from `logs`, the
/// `excluded` windows taken out.
fn counts_in(
    logs: &BTreeMap<String, IncreaseLog>,
    slo: &SloConfig,
    (a, b): (Millis, Millis),
    excluded: &[(Millis, Millis)],
) -> SloCounts {
    SloCounts::of(slo, |name| {
        logs.get(name).map_or(0.0, |l| l.sum(a, b, excluded))
    })
}

/// Total and bad events of an SLO over a period (contract section 14).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SloCounts {
    /// All events.
    pub total: f64,
    /// Bad events (with `good` configured: clamp(total − good, 0, total)).
    pub bad: f64,
}

impl SloCounts {
    /// The counts of `slo` given the sum of each counter name over a period.
    pub fn of(slo: &SloConfig, sum: impl Fn(&str) -> f64) -> Self {
        let total = sum(&slo.total);
        let bad = match slo.side() {
            SloSide::Bad(name) => sum(name),
            SloSide::Good(name) => (total - sum(name)).clamp(0.0, total),
        };
        SloCounts { total, bad }
    }

    /// `100 × (total − bad) / total`; `None` when there was no event.
    pub fn ratio_pct(&self) -> Option<f64> {
        (self.total > 0.0).then(|| 100.0 * (self.total - self.bad) / self.total)
    }
}

/// The config an SLO evaluation needs, from `[[slos]]` and `[[burn_alerts]]`.
#[derive(Debug, Clone, Default)]
pub struct SloRules {
    /// The service's SLOs.
    pub slos: Vec<SloConfig>,
    /// `[[burn_alerts]]`.
    pub alerts: Arc<[BurnAlert]>,
    /// `engine.bucket`.
    pub bucket: Millis,
}

impl SloRules {
    /// The SLOs of service `id`.
    pub fn of(config: &Config, id: &str) -> Arc<SloRules> {
        Arc::new(SloRules {
            slos: (config.slos.iter())
                .filter(|s| s.service() == id)
                .cloned()
                .collect(),
            alerts: config.burn_alerts.clone().into(),
            bucket: config.engine.bucket.0,
        })
    }

    /// Whether some SLO reads counter `name`.
    fn reads(&self, name: &str) -> bool {
        (self.slos.iter()).any(|s| {
            s.total == name || matches!(s.side(), SloSide::Bad(n) | SloSide::Good(n) if n == name)
        })
    }
}

/// One service's counters and request SLOs (serialisable for checkpoints).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Requests {
    /// From the config, not checkpointed.
    #[serde(skip)]
    rules: Arc<SloRules>,
    /// Counter name → source → the series' last applied value. Only names
    /// some SLO reads are kept: nothing else would ever read them.
    series: BTreeMap<String, BTreeMap<String, f64>>,
    /// Counter name → counted increases.
    logs: BTreeMap<String, IncreaseLog>,
    /// SLO id → its burn-rate alerts.
    alerts: BTreeMap<String, BurnAlerts>,
    /// The last bucket close evaluated.
    evaluated: Option<Millis>,
}

/// Who the incidents are for.
pub struct Owner<'a> {
    /// Service id.
    pub service: &'a str,
    /// Its customer.
    pub customer: &'a str,
}

impl Requests {
    /// No sample yet, under `rules`.
    pub fn new(rules: Arc<SloRules>) -> Self {
        Requests {
            rules,
            ..Requests::default()
        }
    }

    /// The same state under `rules` (after a restore).
    pub fn with_rules(self, rules: Arc<SloRules>) -> Self {
        let alerts = (self.alerts.into_iter())
            .map(|(id, a)| (id, a.with_rules(rules.alerts.clone())))
            .collect();
        Requests {
            rules,
            alerts,
            ..self
        }
    }

    /// The rules it runs under.
    pub fn rules(&self) -> Arc<SloRules> {
        self.rules.clone()
    }

    /// Checks restored state: only counters and SLOs the config has, instants in range.
    pub fn check(&self, rules: &SloRules) -> Result<(), String> {
        if let Some(name) = (self.series.keys().chain(self.logs.keys())).find(|n| !rules.reads(n)) {
            return Err(format!("counter {name:?} is read by no SLO"));
        }
        for (id, alerts) in &self.alerts {
            if !rules.slos.iter().any(|s| s.id() == id) {
                return Err(format!("SLO {id:?} is not configured for this service"));
            }
            alerts.check(&rules.alerts)?;
        }
        if (self.series.values().flat_map(|s| s.values())).any(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err("counter value negative or not finite".into());
        }
        self.logs.values().try_for_each(IncreaseLog::check)?;
        self.evaluated
            .map_or(Ok(()), |t| check_instant("SLO close", t))
    }

    /// Applies a counter sample; `counted` is false when the contractual state
    /// at `ts` is maintenance or outside service hours (its increase is dropped;
    /// the value still becomes the series' last).
    pub fn sample(&mut self, ts: Millis, source: &str, name: &str, value: f64, counted: bool) {
        // A kept name is one some SLO reads (restored state is checked for
        // it), so the rules are asked only about a new name, and only a new
        // name's key is allocated.
        let series = match ids::get_mut(&mut self.series, name) {
            Some(series) => series,
            None if self.rules.reads(name) => self.series.entry(name.to_owned()).or_default(),
            None => return,
        };
        let previous = match ids::get_mut(series, source) {
            Some(last) => Some(std::mem::replace(last, value)),
            None => {
                series.insert(source.to_owned(), value);
                None
            }
        };
        // A fall is a reset: the counter restarted from zero and counted `value` since.
        let increase = previous.map(|p| if value < p { value } else { value - p });
        if let Some(inc) = increase.filter(|_| counted) {
            let log = match ids::get_mut(&mut self.logs, name) {
                Some(log) => log,
                None => self.logs.entry(name.to_owned()).or_default(),
            };
            log.push(ts, inc);
        }
    }

    /// The counted increases of counter `name` (for the SQL table).
    pub fn log(&self, name: &str) -> Option<&IncreaseLog> {
        self.logs.get(name)
    }

    /// Counter names with increases, and their logs.
    pub fn logs(&self) -> impl Iterator<Item = (&String, &IncreaseLog)> {
        self.logs.iter()
    }

    /// Total and bad events of `slo` dated in `[a, b)`, the `excluded`
    /// windows taken out.
    pub fn counts(
        &self,
        slo: &SloConfig,
        a: Millis,
        b: Millis,
        excluded: &[(Millis, Millis)],
    ) -> SloCounts {
        counts_in(&self.logs, slo, (a, b), excluded)
    }

    /// Evaluates the SLOs' burn-rate alerts at every bucket close up to `t`
    /// not yet evaluated. Increases dated before each close must all be in.
    pub fn evaluate_to(
        &mut self,
        t: Millis,
        owner: &Owner,
        excluded: &[(Millis, Millis)],
        out: &mut Vec<Incident>,
    ) {
        // Before its first sample nothing can fire, and `run` may move the
        // watermark with the wall clock before any record arrived: the closes
        // start with the data, as they do in a replay.
        if self.series.is_empty() {
            return;
        }
        let rules = self.rules.clone();
        let bucket = rules.bucket.max(1);
        // `t` may be `Millis::MIN` (a watermark before any record).
        let Some(last) = t.checked_sub(t.rem_euclid(bucket)) else {
            return;
        };
        let Some(short) = rules.alerts.iter().map(|a| a.short.ms).max() else {
            // No alert to evaluate; the close still dates the SLO gauges.
            self.evaluated = Some(self.evaluated.map_or(last, |e| e.max(last)));
            return;
        };
        let mut x = self
            .evaluated
            .map_or(Millis::MIN, |e| e.saturating_add(bucket));
        while x <= last {
            // With no alert open, nothing can trigger until a short window
            // holds an increase: jump to the first close after the next one.
            if !self.alerts.values().any(BurnAlerts::any_open) {
                let next = (self.logs.values())
                    .filter_map(|l| l.first_at_or_after(x.saturating_sub(short)))
                    .min();
                match next {
                    Some(n) => x = x.max((n - n.rem_euclid(bucket)).saturating_add(bucket)),
                    None => break,
                }
                if x > last {
                    break;
                }
            }
            self.evaluate_at(x, &rules, owner, excluded, out);
            x += bucket;
        }
        self.evaluated = Some(self.evaluated.map_or(last, |e| e.max(last)));
    }

    /// Every SLO's alerts at the bucket close `x`.
    fn evaluate_at(
        &mut self,
        x: Millis,
        rules: &SloRules,
        owner: &Owner,
        excluded: &[(Millis, Millis)],
        out: &mut Vec<Incident>,
    ) {
        for slo in &rules.slos {
            let subject = BurnSubject {
                rule: Rule::SloBurnRate,
                slo: Some(slo.id()),
                service: owner.service,
                customer: owner.customer,
                budget_ratio: slo.budget_ratio(),
            };
            if !self.alerts.contains_key(slo.id()) {
                let fresh = BurnAlerts::new(rules.alerts.clone());
                self.alerts.insert(slo.id().to_owned(), fresh);
            }
            let (logs, all) = (&self.logs, &mut self.alerts);
            let Some(alerts) = all.get_mut(slo.id()) else {
                continue;
            };
            let window = |w: Millis, _: &mut usize| {
                let c = counts_in(logs, slo, (x.saturating_sub(w), x), excluded);
                Spent {
                    bad: c.bad,
                    total: c.total,
                }
            };
            alerts.evaluate(x, &subject, window, out);
        }
    }

    /// Names of `slo`'s alerts whose incident is open.
    pub fn open_alerts(&self, slo: &str) -> Vec<&str> {
        self.alerts
            .get(slo)
            .map_or_else(Vec::new, |a| a.open_names().collect())
    }

    /// The last bucket close evaluated.
    pub fn evaluated(&self) -> Option<Millis> {
        self.evaluated
    }

    /// The SLO's own window ending at `at`: `[at − window, at)`, or from the
    /// start of `at`'s UTC month for `"month"`.
    pub fn window_of(slo: &SloConfig, at: Millis) -> (Millis, Millis) {
        match slo.window.rolling_ms() {
            Some(w) => (at.saturating_sub(w), at),
            None => (crate::time::month_of(at).0.min(at), at),
        }
    }

    /// Forgets increases dated before `horizon`, keeping what the SLOs' own
    /// windows and the burn windows still reach from the last close.
    pub fn prune(&mut self, horizon: Millis) {
        let Some(close) = self.evaluated else { return };
        let longest = (self.rules.slos.iter())
            .map(|s| s.window.rolling_ms().unwrap_or(31 * 86_400_000))
            .chain(self.rules.alerts.iter().map(|a| a.long.ms))
            .max()
            .unwrap_or(0);
        let horizon = horizon.min(close.saturating_sub(longest));
        for log in self.logs.values_mut() {
            log.prune(horizon);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::engine::incidents::Action;

    const M: Millis = 60_000;
    /// 2026-11-02T00:00:00Z.
    const T0: Millis = 1_793_577_600_000;

    fn requests() -> Requests {
        let text = r#"
[[burn_alerts]]
name = "fast"
long = "10m"
short = "2m"
factor = 2.0
severity = "critical"
[[customers]]
id = "c"
[[services]]
id = "web"
customer = "c"
[[slos]]
id = "web-req"
service = "web"
objective = 90.0
window = "1h"
total = "all"
bad = "err"
"#;
        let config = Config::parse(text, Path::new("t.toml")).expect("config");
        Requests::new(SloRules::of(&config, "web"))
    }

    /// `run` can move the watermark with the wall clock before any record of
    /// a service arrived: its SLO closes must still start with its samples.
    #[test]
    fn closes_start_with_the_first_sample_not_with_an_early_watermark() {
        let owner = Owner {
            service: "web",
            customer: "c",
        };
        let mut r = requests();
        let mut out = Vec::new();
        r.evaluate_to(T0 + 30 * 86_400_000, &owner, &[], &mut out);
        assert_eq!(r.evaluated(), None, "nothing to evaluate before a sample");
        // Half the requests fail from minute 3: burn 5x the 10 % budget.
        for m in 0..10 {
            let ts = T0 + m * M;
            r.evaluate_to(ts, &owner, &[], &mut out);
            r.sample(ts, "lb", "all", (100 * m) as f64, true);
            let bad = if m > 3 { 50 * (m - 3) } else { 0 };
            r.sample(ts, "lb", "err", bad as f64, true);
        }
        r.evaluate_to(T0 + 10 * M, &owner, &[], &mut out);
        let fired: Vec<(Action, Millis)> = out.iter().map(|i| (i.action, i.at_ms - T0)).collect();
        // The first bad increase is dated minute 4. At the 5-minute close the
        // 10m window holds 50 bad of 400 (12.5 % < 2 × 10 %); at the 6-minute
        // close 100 of 500 (20 %) and the 2m window 100 of 200.
        assert_eq!(fired, vec![(Action::Trigger, 6 * M)]);
        assert_eq!(out[0].details["slo"], "web-req");
    }
}
