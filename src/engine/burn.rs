//! Error-budget burn-rate alerts (contract section 11): at every bucket close,
//! each `[[burn_alerts]]` entry compares the burn rate over its long and short
//! windows with its factor, and triggers or resolves a `burn_rate` incident.
//!
//! The windows' downtime and measured time come from the service's timeline
//! (prefix sums over its state runs, see [`crate::engine::runs`]), so a window
//! of days costs as little as one of minutes.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::config::BurnAlert;
use crate::engine::incidents::{Action, Incident};
use crate::model::Rule;
use crate::time::{Millis, check_instant};

/// Downtime and measured milliseconds of a window, under the service's
/// `nodata` policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowTime {
    /// Milliseconds counting as downtime.
    pub down: Millis,
    /// Milliseconds counting as measured.
    pub measured: Millis,
}

impl WindowTime {
    /// `down / (e × measured)`: how many times faster than the budget allows
    /// the window burned it (not finite when nothing was measured or `e` = 0).
    pub fn burn_rate(self, e: f64) -> f64 {
        Spent::from(self).burn_rate(e)
    }
}

/// What a window spent of a budget: bad and total amounts, in milliseconds
/// (availability, section 11) or events (request SLOs, section 14).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spent {
    /// Downtime, or bad events.
    pub bad: f64,
    /// Measured time, or all events.
    pub total: f64,
}

impl From<WindowTime> for Spent {
    fn from(t: WindowTime) -> Self {
        Spent {
            bad: t.down as f64,
            total: t.measured as f64,
        }
    }
}

impl Spent {
    /// `bad / (e × total)`: how many times faster than the budget allows the
    /// window burned it (not finite when the total is 0 or `e` = 0).
    pub fn burn_rate(self, e: f64) -> f64 {
        self.bad / (e * self.total)
    }

    /// The contract's condition: a total, and burn rate ≥ `factor`.
    fn burns(self, factor: f64, e: f64) -> bool {
        self.total > 0.0 && self.bad >= factor * e * self.total
    }
}

/// What an evaluation is for: a service's availability (rule `burn_rate`) or
/// a request SLO (rule `slo_burn_rate`).
pub struct BurnSubject<'a> {
    /// `burn_rate` or `slo_burn_rate`.
    pub rule: Rule,
    /// The SLO's id for `slo_burn_rate`.
    pub slo: Option<&'a str>,
    /// Service id.
    pub service: &'a str,
    /// Its customer.
    pub customer: &'a str,
    /// The error budget ratio: `1 − target/100`.
    pub budget_ratio: f64,
}

impl BurnSubject<'_> {
    /// The first part of the incident key: the SLO, else the service.
    fn key(&self) -> &str {
        self.slo.unwrap_or(self.service)
    }
}

/// One service's burn-rate alerts: the configured rules and which are open.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct BurnAlerts {
    /// `[[burn_alerts]]` (from the config, not checkpointed: the config hash
    /// already ties a checkpoint to them).
    #[serde(skip)]
    rules: Arc<[BurnAlert]>,
    /// Alert name → the bucket close it triggered at, while its incident is open.
    open: BTreeMap<String, Millis>,
    /// End of the latest downtime walked through (section 4's downtime under
    /// the `nodata` policy): alerts are looked at only while a short window
    /// reaches back to it.
    #[serde(default)]
    pub last_bad: Option<Millis>,
    /// Per rule, where the long and the short window's start was found last
    /// (windows slide forward, so the next lookup starts there).
    #[serde(skip)]
    hints: Vec<[usize; 2]>,
}

impl BurnAlerts {
    /// No alert open yet.
    pub fn new(rules: Arc<[BurnAlert]>) -> Self {
        BurnAlerts {
            rules,
            open: BTreeMap::new(),
            last_bad: None,
            hints: Vec::new(),
        }
    }

    /// The same alert state under `rules` (after a restore).
    pub fn with_rules(self, rules: Arc<[BurnAlert]>) -> Self {
        BurnAlerts { rules, ..self }
    }

    /// The configured rules.
    pub fn rules(&self) -> Arc<[BurnAlert]> {
        self.rules.clone()
    }

    /// Names of the alerts whose incident is open.
    pub fn open_names(&self) -> impl Iterator<Item = &str> {
        self.open.keys().map(String::as_str)
    }

    /// The longest short window of any rule (`None` without rules).
    pub fn longest_short(&self) -> Option<Millis> {
        self.rules.iter().map(|r| r.short.ms).max()
    }

    /// The longest window of any rule (`None` without rules).
    pub fn longest(&self) -> Option<Millis> {
        self.rules.iter().map(|r| r.long.ms).max()
    }

    /// Checks restored state against `rules`: only configured alerts open, at
    /// instants in range.
    pub fn check(&self, rules: &[BurnAlert]) -> Result<(), String> {
        for (name, &at) in &self.open {
            if !rules.iter().any(|r| r.name == *name) {
                return Err(format!("burn alert {name:?} is not configured"));
            }
            check_instant("burn alert start", at)?;
        }
        if let Some(t) = self.last_bad {
            check_instant("last downtime", t)?;
        }
        Ok(())
    }

    /// Evaluates every rule at the bucket close `at`; `window(w, hint)` gives
    /// what `[at − w, at)` spent (for availability clipped at the service's
    /// first record), searching from and updating `hint`.
    pub fn evaluate(
        &mut self,
        at: Millis,
        subject: &BurnSubject,
        mut window: impl FnMut(Millis, &mut usize) -> Spent,
        out: &mut Vec<Incident>,
    ) {
        let e = subject.budget_ratio;
        self.hints.resize(self.rules.len(), [usize::MAX; 2]);
        for (rule, [hl, hs]) in self.rules.iter().zip(self.hints.iter_mut()) {
            let name = &rule.name;
            let short = window(rule.short.ms, hs);
            // An alert holds only while both windows burn: with it resolved
            // and the short window under the factor nothing changes, so the
            // long window is not summed (half the sums while all is well).
            let short_burns = short.burns(rule.factor, e);
            if !short_burns && !self.open.contains_key(name) {
                continue;
            }
            let long = window(rule.long.ms, hl);
            let holds = short_burns && long.burns(rule.factor, e);
            let (action, started) = match (holds, self.open.get(name)) {
                (true, None) => {
                    self.open.insert(name.clone(), at);
                    (Action::Trigger, at)
                }
                (false, Some(&started)) => {
                    self.open.remove(name);
                    (Action::Resolve, started)
                }
                _ => continue,
            };
            out.push(incident(rule, subject, action, started, at, (long, short)));
        }
    }

    /// Whether any alert's incident is open.
    pub fn any_open(&self) -> bool {
        !self.open.is_empty()
    }
}

fn incident(
    rule: &BurnAlert,
    subject: &BurnSubject,
    action: Action,
    started: Millis,
    at: Millis,
    (long, short): (Spent, Spent),
) -> Incident {
    let e = subject.budget_ratio;
    let (long_burn, short_burn) = (long.burn_rate(e), short.burn_rate(e));
    let name = &rule.name;
    let what = match subject.slo {
        Some(slo) => format!("SLO {slo} of {}", subject.service),
        None => subject.service.to_owned(),
    };
    let summary = match action {
        Action::Trigger => format!(
            "{what} is burning its error budget {long_burn:.1}x over {} and {short_burn:.1}x over {} (alert {name}: {}x)",
            rule.long.text, rule.short.text, rule.factor
        ),
        Action::Resolve => format!(
            "{what} error budget burn back under {}x over {} or {} (alert {name})",
            rule.factor, rule.long.text, rule.short.text
        ),
    };
    let ended = (action == Action::Resolve).then_some(at);
    let key = format!("{}/{name}", subject.key());
    let mut i = Incident::service(
        subject.rule,
        rule.severity,
        &key,
        subject.customer,
        subject.service,
        action,
        started,
        at,
        ended,
        summary,
    );
    // Non-finite burn rates (nothing measured, or a 100 % target) become null.
    i.details = serde_json::json!({
        "alert": name,
        "factor": rule.factor,
        "long": rule.long.text,
        "short": rule.short.text,
        "long_burn": long_burn,
        "short_burn": short_burn,
    });
    if let Some(slo) = subject.slo {
        i.details["slo"] = slo.into();
    }
    i
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::config::Config;
    use crate::engine::availability::{
        ServiceTimeline, State, StateDurations, measured_and_downtime,
    };
    use crate::engine::incidents::incident_id;
    use crate::model::{ProbeStatus, Severity};

    const M: Millis = 60_000;
    const H: Millis = 60 * M;
    /// 2026-11-02T00:00:00Z.
    const T0: Millis = 1_793_577_600_000;

    /// A timeline for service `web` (customer `c`) with `service` settings and
    /// `alerts` (TOML; empty for the contract's three).
    fn config(service: &str, alerts: &str) -> Config {
        let text = format!(
            "{alerts}\n[[customers]]\nid = \"c\"\n[[services]]\nid = \"web\"\ncustomer = \"c\"\n{service}\n"
        );
        Config::parse(&text, Path::new("t.toml")).expect("config")
    }

    fn timeline(service: &str, alerts: &str) -> ServiceTimeline {
        let cfg = config(service, alerts);
        ServiceTimeline::new(
            &cfg.services[0],
            crate::engine::service_hours(&cfg, &cfg.services[0]),
            M,
            &cfg.burn_alerts.clone().into(),
        )
    }

    /// The burn-rate incidents as (alert, action, at − T0).
    fn burns(out: &[Incident]) -> Vec<(String, Action, Millis)> {
        (out.iter())
            .filter(|i| i.rule == Rule::BurnRate)
            .map(|i| {
                (
                    i.details["alert"].as_str().unwrap_or("").to_owned(),
                    i.action,
                    i.at_ms - T0,
                )
            })
            .collect()
    }

    /// A probe every minute in `[from, to)` with `status` for minutes inside `down`.
    fn probe_minutes(
        t: &mut ServiceTimeline,
        from: Millis,
        to: Millis,
        down: (Millis, Millis),
        out: &mut Vec<Incident>,
    ) {
        let mut x = from;
        while x < to {
            let s = if (down.0..down.1).contains(&x) {
                ProbeStatus::Down
            } else {
                ProbeStatus::Up
            };
            t.probe(x, "a", s, out);
            x += M;
        }
    }

    #[test]
    fn a_twenty_minute_outage_at_three_nines_fires_and_resolves_each_default_alert() {
        // Up from T0, down [4h00, 4h20), e = 0.001 (worked through in docs/slo.md).
        let mut t = timeline("availability_target = 99.9", "");
        let mut out = Vec::new();
        probe_minutes(
            &mut t,
            T0,
            T0 + 11 * H,
            (T0 + 4 * H, T0 + 4 * H + 20 * M),
            &mut out,
        );
        t.advance(T0 + 11 * H, &mut out);
        let name = |s: &str| s.to_owned();
        assert_eq!(
            burns(&out),
            vec![
                // 1 min down of 60 and of 5: over 14.4 × 0.1 %.
                (name("page-fast"), Action::Trigger, 4 * H + M),
                // 1 min of 241 measured is under 6 × 0.1 % = 1.446 min; 2 of 242 is over.
                (name("ticket"), Action::Trigger, 4 * H + M),
                (name("page-slow"), Action::Trigger, 4 * H + 2 * M),
                // The 5m window holds no downtime from the close at 4h25.
                (name("page-fast"), Action::Resolve, 4 * H + 25 * M),
                // The 30m window is clear of the outage at 4h50.
                (name("page-slow"), Action::Resolve, 4 * H + 50 * M),
                // The 6h window is clear at 10h20; 20 min of 3 days stays over 1 ×.
                (name("ticket"), Action::Resolve, 10 * H + 20 * M),
            ]
        );
        let fast: Vec<_> = (out.iter())
            .filter(|i| i.rule == Rule::BurnRate && i.details["alert"] == "page-fast")
            .collect();
        let trigger = fast[0];
        assert_eq!(trigger.severity, Severity::Critical);
        assert_eq!(trigger.started_ms, trigger.at_ms);
        assert_eq!(
            trigger.incident_id,
            incident_id(Rule::BurnRate, "web/page-fast", T0 + 4 * H + M)
        );
        let d = &trigger.details;
        assert_eq!(
            (
                d["long"].as_str(),
                d["short"].as_str(),
                d["factor"].as_f64()
            ),
            (Some("1h"), Some("5m"), Some(14.4))
        );
        let approx =
            |v: &serde_json::Value, x: f64| (v.as_f64().unwrap_or(f64::NAN) - x).abs() < 1e-9;
        assert!(approx(&d["long_burn"], 60.0 / (0.001 * 3600.0)), "{d}");
        assert!(approx(&d["short_burn"], 60.0 / (0.001 * 300.0)), "{d}");
        let resolve = fast[1];
        assert_eq!(
            (resolve.incident_id.as_str(), resolve.started_ms),
            (trigger.incident_id.as_str(), trigger.started_ms)
        );
        assert_eq!(resolve.ended_at.as_deref(), Some(resolve.at.as_str()));
        assert!(approx(&resolve.details["short_burn"], 0.0));
        let ticket = out
            .iter()
            .find(|i| i.details["alert"] == "ticket")
            .map(|i| i.severity);
        assert_eq!(ticket, Some(Severity::Minor));
    }

    #[test]
    fn retention_never_prunes_what_the_longest_window_reaches() {
        let run = |prune: bool| {
            let mut t = timeline("", "");
            let mut out = Vec::new();
            // From 2026-10-30: retention keeps the current month (exclusions
            // may make it be recomputed), so pruning shows from November on.
            let start = T0 - 3 * 24 * H;
            let down = (start + 4 * H, start + 4 * H + 20 * M);
            let mut x = start;
            while x < start + 4 * 24 * H {
                let flap = (x / M) % 7 == 0;
                let s = if (down.0..down.1).contains(&x) || flap {
                    ProbeStatus::Down
                } else {
                    ProbeStatus::Up
                };
                t.probe(x, "a", s, &mut out);
                if prune {
                    // Retention of one minute: only the burn windows' reach is kept.
                    t.prune(x - M);
                }
                x += M;
            }
            (burns(&out), t.intervals().next().map(|i| i.0))
        };
        let (kept, first_kept) = run(false);
        let (pruned, first_pruned) = run(true);
        assert_eq!(pruned, kept);
        assert!(first_pruned > first_kept, "old runs were pruned");
    }

    #[test]
    fn the_months_budget_series_equals_the_budget_at_each_point() {
        let feed = |t: &mut ServiceTimeline, until: Millis, out: &mut Vec<Incident>| {
            let down = (T0 + 4 * H, T0 + 4 * H + 20 * M);
            probe_minutes(t, T0 + 30 * M, until, down, out);
        };
        let mut t = timeline("", "");
        let mut out = Vec::new();
        feed(&mut t, T0 + 11 * H, &mut out);
        t.advance(T0 + 11 * H, &mut out);
        let series = t.month_budget_series(H);
        // From the first hour after the first record (00:30) to the cursor.
        assert_eq!(series.first().map(|p| p.0), Some(T0 + H));
        assert_eq!(series.last().map(|p| p.0), t.cursor());
        assert_eq!(series.len(), 11);
        for &(at, ratio) in &series {
            let mut u = timeline("", "");
            feed(&mut u, at, &mut out);
            u.advance(at, &mut out);
            assert_eq!(u.budget_remaining_ratio(), Some(ratio), "at {}", at - T0);
        }
        assert!(series[3].1 > series[4].1, "the outage at 4h spends budget");
    }

    #[test]
    fn maintenance_leaves_the_windows_so_the_same_downtime_burns_faster() {
        let page_fast = |maintenance: bool| {
            let mut t = timeline("availability_target = 99.9", "");
            let mut out = Vec::new();
            probe_minutes(&mut t, T0, T0 + 3 * H, (0, 0), &mut out);
            if maintenance {
                t.maintenance(
                    T0 + 3 * H,
                    (T0 + 3 * H, T0 + 3 * H + 55 * M),
                    None,
                    &mut out,
                );
            }
            probe_minutes(&mut t, T0 + 3 * H, T0 + 3 * H + 55 * M, (0, 0), &mut out);
            // 30 s down at 3h55, then up.
            t.probe(T0 + 3 * H + 55 * M, "a", ProbeStatus::Down, &mut out);
            t.probe(T0 + 3 * H + 55 * M + 30_000, "a", ProbeStatus::Up, &mut out);
            t.advance(T0 + 3 * H + 58 * M, &mut out);
            (burns(&out).into_iter())
                .filter(|b| b.0 == "page-fast")
                .collect::<Vec<_>>()
        };
        // Without maintenance: 30 s of 60 min is a burn of 8.3, under 14.4.
        assert_eq!(page_fast(false), vec![]);
        // With 55 min of maintenance the hour measures 5 min: a burn of 100
        // (and the 5 minutes measure 1: 500).
        assert_eq!(
            page_fast(true),
            vec![("page-fast".to_owned(), Action::Trigger, 3 * H + 56 * M)]
        );
    }

    #[test]
    fn nodata_burns_only_where_the_policy_counts_it_down() {
        let run = |policy: &str| {
            let mut t = timeline(&format!("nodata = \"{policy}\"\nstale_after = \"2m\""), "");
            let mut out = Vec::new();
            // Probes until 0h59; the source goes stale at 1h01; silence to 2h.
            probe_minutes(&mut t, T0, T0 + H, (0, 0), &mut out);
            t.advance(T0 + 2 * H, &mut out);
            burns(&out)
                .into_iter()
                .filter(|b| b.0 == "page-fast")
                .collect::<Vec<_>>()
        };
        assert_eq!(run("exclude"), vec![]);
        assert_eq!(run("up"), vec![]);
        assert_eq!(
            run("down"),
            vec![("page-fast".to_owned(), Action::Trigger, H + 2 * M)]
        );
    }

    #[test]
    fn a_window_reaching_before_the_first_record_is_clipped_there() {
        let mut t = timeline("", "");
        let mut out = Vec::new();
        // First record 30 s into a bucket, down: the first close sees 30 s, all down.
        t.probe(T0 + 30_000, "a", ProbeStatus::Down, &mut out);
        t.advance(T0 + M, &mut out);
        let mut got = burns(&out);
        got.sort();
        let fired = |n: &str| (n.to_owned(), Action::Trigger, M);
        assert_eq!(
            got,
            vec![fired("page-fast"), fired("page-slow"), fired("ticket")]
        );
        let burn = out
            .iter()
            .find(|i| i.rule == Rule::BurnRate)
            .map(|i| i.details["long_burn"].as_f64());
        assert!(
            burn.flatten().is_some_and(|b| (b - 1000.0).abs() < 1e-6),
            "{burn:?}"
        );
    }

    #[test]
    fn no_alerts_with_an_empty_list_and_a_year_counted_down_fires_each_once() {
        let mut t = timeline("nodata = \"down\"", "burn_alerts = []");
        let mut out = Vec::new();
        t.probe(T0, "a", ProbeStatus::Down, &mut out);
        t.advance(T0 + 400 * 24 * H, &mut out);
        assert!(burns(&out).is_empty());
        // A year of nodata counted down fires each alert once and never resolves.
        let mut t = timeline("nodata = \"down\"", "");
        let mut out = Vec::new();
        t.probe(T0, "a", ProbeStatus::Up, &mut out);
        t.advance(T0 + 400 * 24 * H, &mut out);
        let got: Vec<_> = burns(&out).into_iter().map(|b| (b.0, b.1)).collect();
        let fired = |n: &str| (n.to_owned(), Action::Trigger);
        assert_eq!(
            got,
            vec![fired("page-fast"), fired("page-slow"), fired("ticket")]
        );
    }

    /// The reference: for every bucket close after the first record, sum each
    /// window's overlap with the timeline's intervals directly and apply the
    /// contract's condition, opening and closing alerts.
    fn reference(
        t: &ServiceTimeline,
        rules: &[BurnAlert],
        e: f64,
        policy: crate::config::NoData,
    ) -> Vec<(String, Action, Millis, Millis)> {
        let iv: Vec<_> = t.intervals().collect();
        let (Some(first), Some(end)) = (iv.first().map(|i| i.0), t.cursor()) else {
            return Vec::new();
        };
        let window = |at: Millis, w: Millis| {
            let from = (at - w).max(first);
            let mut d = StateDurations::default();
            for &(a, b, s) in &iv {
                let overlap = b.min(at) - a.max(from);
                if overlap > 0 {
                    d[s] += overlap;
                }
            }
            let (measured, down) = measured_and_downtime(
                policy,
                at - from,
                d[State::Maintenance],
                d[State::NoData],
                d[State::Down],
            );
            WindowTime { down, measured }
        };
        let mut open: BTreeMap<String, Millis> = BTreeMap::new();
        let mut got = Vec::new();
        let mut x = (first.div_euclid(M) + 1) * M;
        while x <= end {
            for r in rules {
                let holds = Spent::from(window(x, r.long.ms)).burns(r.factor, e)
                    && Spent::from(window(x, r.short.ms)).burns(r.factor, e);
                let name = r.name.clone();
                match (holds, open.get(&name).copied()) {
                    (true, None) => {
                        open.insert(name.clone(), x);
                        got.push((name, Action::Trigger, x, x));
                    }
                    (false, Some(s)) => {
                        open.remove(&name);
                        got.push((name, Action::Resolve, s, x));
                    }
                    _ => {}
                }
            }
            x += M;
        }
        got
    }

    /// Two days of generated traffic through the whole pipeline: every
    /// service's `burn_rate` incidents equal the brute-force reference over its
    /// intervals, to the millisecond.
    #[test]
    fn generated_traffic_gives_the_reference_alerts() {
        use crate::generate::{Generator, run_through, scenario_config};
        // The reference knows neither service hours nor exclusions (section
        // 13; `availability::tests` has a reference that does): 24x7 only.
        let text = (scenario_config().lines())
            .filter(|l| !l.starts_with("service_hours"))
            .collect::<Vec<_>>()
            .join("\n");
        let config =
            std::sync::Arc::new(Config::parse(&text, Path::new("s.toml")).expect("config"));
        let mut g = Generator::new(7, T0, 5.0);
        let events: Vec<_> = (0..2 * 1440)
            .flat_map(|_| g.minute())
            .filter(|e| !e.line.contains(r#""kind":"exclusion""#))
            .collect();
        let (p, out) = run_through(&config, &events, T0 + 3 * 24 * H).expect("consistent rows");
        let mut compared = 0;
        for (id, t) in p.engine().services() {
            let cfg = config.service(id).expect("service");
            let e = 1.0 - cfg.availability_target / 100.0;
            let got: Vec<_> = (out.incidents.iter())
                .filter(|i| i.rule == Rule::BurnRate && i.service.as_deref() == Some(id))
                .map(|i| {
                    (
                        i.details["alert"].as_str().unwrap_or("").to_owned(),
                        i.action,
                        i.started_ms,
                        i.at_ms,
                    )
                })
                .collect();
            assert_eq!(
                got,
                reference(t, &config.burn_alerts, e, cfg.nodata),
                "{id}"
            );
            compared += got.len();
        }
        assert!(compared >= 10, "the scenario burns budgets: {compared}");
    }

    const RULES: &str = r#"
[[burn_alerts]]
name = "fast"
long = "10m"
short = "2m"
factor = 2.0
severity = "critical"
[[burn_alerts]]
name = "slow"
long = "40m"
short = "5m"
factor = 0.6
severity = "minor"
"#;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(150))]

        /// Incremental evaluation (prefix sums, skipped closes) equals the
        /// brute-force reference, and a timeline checkpointed at any step and
        /// restored goes on exactly as the original.
        #[test]
        fn incremental_alerts_equal_brute_force_and_survive_a_restore(
            steps in proptest::collection::vec((0..300_000i64, 0..3usize, 0..5u8), 1..80),
            policy in 0..3usize,
            split in 0..80usize,
        ) {
            let policy_name = ["exclude", "down", "up"][policy];
            let service = format!("availability_target = 90\nnodata = \"{policy_name}\"\nstale_after = \"2m\"\ndown_when = \"any\"");
            let mut t = timeline(&service, RULES);
            let mut restored: Option<ServiceTimeline> = None;
            let (mut out, mut out_restored) = (Vec::new(), Vec::new());
            let mut ts = T0 + 12_345;
            for (i, &(dt, source, what)) in steps.iter().enumerate() {
                if i == split {
                    let bytes = serde_json::to_vec(&t).expect("serialises");
                    let back: ServiceTimeline = serde_json::from_slice(&bytes).expect("reads");
                    let mut fresh = timeline(&service, RULES);
                    fresh.restore(back);
                    restored = Some(fresh);
                    out_restored = out.clone();
                }
                ts += dt;
                let src = ["a", "b", "c"][source];
                let apply = |t: &mut ServiceTimeline, out: &mut Vec<Incident>| match what {
                    0 => t.probe(ts, src, ProbeStatus::Up, out),
                    1 | 2 => t.probe(ts, src, ProbeStatus::Down, out),
                    3 => t.probe(ts, src, ProbeStatus::Degraded, out),
                    _ => t.maintenance(ts, (ts + 60_000, ts + dt.max(1) * 3), None, out),
                };
                apply(&mut t, &mut out);
                if let Some(r) = restored.as_mut() {
                    apply(r, &mut out_restored);
                }
            }
            let end = ts + 2 * H;
            t.advance(end, &mut out);
            let got: Vec<_> = (out.iter())
                .filter(|i| i.rule == Rule::BurnRate)
                .map(|i| (i.details["alert"].as_str().unwrap_or("").to_owned(), i.action, i.started_ms, i.at_ms))
                .collect();
            let rules = config(&service, RULES).burn_alerts;
            let nodata = [crate::config::NoData::Exclude, crate::config::NoData::Down, crate::config::NoData::Up][policy];
            proptest::prop_assert_eq!(&got, &reference(&t, &rules, 1.0 - 90.0 / 100.0, nodata));
            if let Some(mut r) = restored {
                r.advance(end, &mut out_restored);
                proptest::prop_assert_eq!(&out_restored, &out);
            }
        }
    }
}
