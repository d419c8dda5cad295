//! Capacity (contract section 7): hourly statistics per metric series (exact
//! count/min/max/mean, HdrHistogram percentiles within 1%), sustained-threshold
//! incidents with episodes, and a least-squares exhaustion forecast.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::ServiceConfig;
pub use crate::engine::dist::Dist;
use crate::engine::episodes::{EpisodeEvent, Episodes};
use crate::engine::incidents::{Action, Incident};
use crate::model::{Rule, Severity};
use crate::time::{Millis, check_instant, format_ms};

/// One hour in milliseconds.
pub const HOUR: Millis = 3_600_000;
const DAY: f64 = 86_400_000.0;
/// Statistics of one series in one hour.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Hour {
    /// Metric values.
    pub value: Dist,
    /// Utilisation (value / capacity) of samples that had a capacity.
    pub util: Option<Dist>,
}

/// A series' key: (service, resource, metric).
type SeriesKey = (String, String, String);

/// A [`SeriesKey`]'s parts, borrowed: it hashes as the key does (a tuple
/// hashes its fields in order), so a metric sample finds its series without
/// allocating the key.
#[derive(Hash)]
struct SeriesRef<'a>(&'a str, &'a str, &'a str);

impl hashbrown::Equivalent<SeriesKey> for SeriesRef<'_> {
    fn equivalent(&self, key: &SeriesKey) -> bool {
        use crate::ids::same;
        same(self.0, &key.0) && same(self.1, &key.1) && same(self.2, &key.2)
    }
}

/// Every capacity series, found by hash per sample and listed in key order
/// (reports, checkpoints and deadlines see one deterministic order).
#[derive(Debug, Clone, Default)]
pub struct SeriesMap {
    series: hashbrown::HashMap<SeriesKey, Series, foldhash::fast::RandomState>,
}

impl SeriesMap {
    /// The series (service, resource, metric), if it exists.
    pub fn get_mut(&mut self, service: &str, resource: &str, metric: &str) -> Option<&mut Series> {
        self.series.get_mut(&SeriesRef(service, resource, metric))
    }

    /// Adds `series`, or replaces the one with its key.
    pub fn insert(&mut self, series: Series) -> &mut Series {
        let key = (
            series.service.clone(),
            series.resource.clone(),
            series.metric.clone(),
        );
        self.series.entry(key).insert(series).into_mut()
    }

    /// The series in key order.
    pub fn values(&self) -> impl Iterator<Item = &Series> {
        let mut all: Vec<(&SeriesKey, &Series)> = self.series.iter().collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all.into_iter().map(|(_, s)| s)
    }

    /// The series in key order, to change.
    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Series> {
        let mut all: Vec<(&SeriesKey, &mut Series)> = self.series.iter_mut().collect();
        all.sort_unstable_by(|a, b| a.0.cmp(b.0));
        all.into_iter().map(|(_, s)| s)
    }

    /// Keeps only the series for which `keep` holds.
    pub fn retain(&mut self, mut keep: impl FnMut(&Series) -> bool) {
        self.series.retain(|_, s| keep(s));
    }
}

/// One metric series: (service, resource, metric).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Series {
    /// Input partition of its records.
    pub partition: i32,
    /// Service id.
    pub service: String,
    /// Customer of the service.
    pub customer: String,
    /// Resource.
    pub resource: String,
    /// Metric name.
    pub metric: String,
    threshold: f64,
    stale_after: Millis,
    forecast_window: Millis,
    last: Option<(Millis, Option<f64>)>,
    cursor: Option<Millis>,
    saturated: bool,
    episodes: Episodes,
    hours: BTreeMap<Millis, Hour>,
}

impl Series {
    /// A new series of a configured service.
    pub fn new(cfg: &ServiceConfig, resource: &str, metric: &str) -> Self {
        Series {
            partition: 0,
            service: cfg.id.clone(),
            customer: cfg.customer.clone(),
            resource: resource.to_owned(),
            metric: metric.to_owned(),
            threshold: cfg.capacity_threshold,
            stale_after: cfg.stale_after.0,
            forecast_window: cfg.forecast_window.0,
            last: None,
            cursor: None,
            saturated: false,
            episodes: Episodes::new(cfg.capacity_sustain.0, cfg.resolve_after.0),
            hours: BTreeMap::new(),
        }
    }

    /// Checks a restored series against its service's config (`cfg`) and the
    /// invariants the engine keeps (instants in range, hours on the hour).
    pub fn check(&self, cfg: &ServiceConfig) -> Result<(), String> {
        let fresh = Series::new(cfg, &self.resource, &self.metric);
        let same = self.service == fresh.service
            && self.customer == fresh.customer
            && self.threshold.to_bits() == fresh.threshold.to_bits()
            && self.stale_after == fresh.stale_after
            && self.forecast_window == fresh.forecast_window;
        if !same {
            return Err(format!(
                "series {}: settings differ from the config",
                self.key()
            ));
        }
        self.episodes.check(&fresh.episodes)?;
        for t in self
            .last
            .map(|l| l.0)
            .into_iter()
            .chain(self.cursor)
            .chain(self.hours.keys().copied())
        {
            check_instant("instant", t)?;
        }
        if self.hours.keys().any(|h| h.rem_euclid(HOUR) != 0) {
            return Err(format!("series {}: an hour not on the hour", self.key()));
        }
        Ok(())
    }

    /// The series without its hours (a checkpoint writes those apart, so hours
    /// that no longer change are not written again).
    pub fn without_hours(&self) -> Series {
        Series {
            partition: self.partition,
            service: self.service.clone(),
            customer: self.customer.clone(),
            resource: self.resource.clone(),
            metric: self.metric.clone(),
            threshold: self.threshold,
            stale_after: self.stale_after,
            forecast_window: self.forecast_window,
            last: self.last,
            cursor: self.cursor,
            saturated: self.saturated,
            episodes: self.episodes.clone(),
            hours: BTreeMap::new(),
        }
    }

    /// Takes in hours written apart from the series (see [`Series::without_hours`]).
    pub fn restore_hours(&mut self, hours: Vec<(Millis, Hour)>) {
        self.hours.extend(hours);
    }

    /// `service/resource/metric`, the incident key.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.service, self.resource, self.metric)
    }

    /// Applies a sample at `ts`.
    pub fn sample(
        &mut self,
        ts: Millis,
        value: f64,
        capacity: Option<f64>,
        out: &mut Vec<Incident>,
    ) {
        let ts = match self.cursor {
            Some(c) if ts < c => c,
            Some(_) => {
                self.walk(ts, out);
                ts
            }
            None => {
                self.cursor = Some(ts);
                ts
            }
        };
        let util = capacity.filter(|c| *c > 0.0).map(|c| value / c);
        let start = ts.div_euclid(HOUR) * HOUR;
        // `ts` never goes back, so its hour is mostly the last one: taken
        // without searching the map.
        let hour = match self.hours.last_entry() {
            Some(last) if *last.key() == start => last.into_mut(),
            _ => self.hours.entry(start).or_insert_with(|| Hour {
                value: Dist::default(),
                util: None,
            }),
        };
        hour.value.record(value);
        if let Some(u) = util {
            hour.util.get_or_insert_with(Dist::default).record(u);
        }
        self.last = Some((ts, util));
        self.settle(ts, out);
    }

    /// Moves to `t`, firing due deadlines.
    pub fn advance(&mut self, t: Millis, out: &mut Vec<Incident>) {
        if self.cursor.is_some_and(|c| c < t) {
            self.walk(t, out);
        }
    }

    fn walk(&mut self, t: Millis, out: &mut Vec<Incident>) {
        let Some(mut cur) = self.cursor else { return };
        while cur < t {
            let mut next = t;
            if let Some((ts, _)) = self.last {
                let stale = ts.saturating_add(self.stale_after);
                if stale > cur {
                    next = next.min(stale);
                }
            }
            if let Some(d) = self.episodes.next_deadline(cur) {
                next = next.min(d);
            }
            cur = next;
            self.cursor = Some(cur);
            self.settle(cur, out);
        }
    }

    fn settle(&mut self, x: Millis, out: &mut Vec<Incident>) {
        self.fire(x, out);
        let saturated = self.last.is_some_and(|(ts, u)| {
            x - ts < self.stale_after && u.is_some_and(|u| u >= self.threshold)
        });
        if saturated != self.saturated {
            self.saturated = saturated;
            self.episodes.set_bad(x, saturated);
            self.fire(x, out);
        }
    }

    fn fire(&mut self, x: Millis, out: &mut Vec<Incident>) {
        let mut events = Vec::new();
        self.episodes.fire(x, &mut |e| events.push(e));
        if events.is_empty() {
            // Called on every sample: format nothing when nothing fired.
            return;
        }
        let key = self.key();
        for e in events {
            let (action, start, at, ended) = match e {
                EpisodeEvent::Trigger { start, at } => (Action::Trigger, start, at, None),
                EpisodeEvent::Resolve { start, end, at } => (Action::Resolve, start, at, Some(end)),
            };
            let summary = match ended {
                None => format!(
                    "{key} utilisation ≥ {} since {}",
                    self.threshold,
                    format_ms(start)
                ),
                Some(e) => format!(
                    "{key} utilisation ≥ {} from {} to {}",
                    self.threshold,
                    format_ms(start),
                    format_ms(e)
                ),
            };
            let mut i = Incident::service(
                Rule::Capacity,
                Severity::Major,
                &key,
                &self.customer,
                &self.service,
                action,
                start,
                at,
                ended,
                summary,
            );
            i.details = serde_json::json!({ "resource": self.resource, "metric": self.metric, "threshold": self.threshold });
            out.push(i);
        }
    }

    /// Hourly statistics by hour start.
    pub fn hours(&self) -> &BTreeMap<Millis, Hour> {
        &self.hours
    }

    /// Forgets the hours that ended before `horizon` (retention).
    pub fn prune(&mut self, horizon: Millis) {
        let keep_from = horizon.saturating_sub(HOUR).saturating_add(1);
        self.hours = self.hours.split_off(&keep_from);
    }

    /// Least-squares line over the hourly mean utilisation of the hours in
    /// `[to − forecast_window, to)`.
    pub fn forecast(&self, to: Millis) -> Forecast {
        let pts: Vec<(f64, f64)> = self
            .hours
            .range(to.saturating_sub(self.forecast_window)..to)
            .filter_map(|(h, s)| s.util.as_ref().map(|u| ((*h - to) as f64 / DAY, u.mean())))
            .collect();
        let n = pts.len() as f64;
        if pts.len() < 2 {
            return Forecast {
                slope_per_day: None,
                exhausted_at: None,
            };
        }
        let (mx, my) = (
            pts.iter().map(|p| p.0).sum::<f64>() / n,
            pts.iter().map(|p| p.1).sum::<f64>() / n,
        );
        let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
        let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
        if sxx == 0.0 {
            return Forecast {
                slope_per_day: None,
                exhausted_at: None,
            };
        }
        let slope = sxy / sxx;
        let intercept = my - slope * mx;
        let exhausted_at = (slope > 0.0)
            .then(|| format_ms(to + ((1.0 - intercept) / slope * DAY).round() as Millis));
        Forecast {
            slope_per_day: Some(slope),
            exhausted_at,
        }
    }
}

/// The exhaustion forecast of a series.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Forecast {
    /// Utilisation change per day; null without two hours of utilisation.
    pub slope_per_day: Option<f64>,
    /// When the line reaches 1.0; null if flat or falling.
    pub exhausted_at: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    const M: Millis = 60_000;

    fn series() -> Series {
        let text = "[[customers]]\nid = \"c\"\n[[services]]\nid = \"db\"\ncustomer = \"c\"\ncapacity_sustain = \"5m\"\n";
        let cfg = Config::parse(text, Path::new("t.toml")).expect("config");
        Series::new(&cfg.services[0], "db-1", "disk")
    }

    #[test]
    fn hourly_stats_are_exact_and_percentiles_within_one_percent() {
        let mut s = series();
        let mut out = Vec::new();
        for i in 0..60 {
            s.sample(i * M, (i + 1) as f64 * 10.0, Some(1000.0), &mut out);
        }
        let h = &s.hours()[&0];
        assert_eq!(h.value.count(), 60);
        assert_eq!(
            (h.value.min(), h.value.max(), h.value.mean()),
            (10.0, 600.0, 305.0)
        );
        for (q, exact) in [(0.5, 300.0), (0.95, 570.0), (0.99, 600.0)] {
            let p = h.value.quantile(q);
            assert!((p - exact).abs() / exact <= 0.01, "p{q}: {p} vs {exact}");
        }
        let u = h.util.as_ref().expect("utilisation");
        assert!((u.quantile(0.95) - 0.57).abs() <= 0.0057);
        assert_eq!(u.max(), 0.6);
    }

    #[test]
    fn sustained_saturation_triggers_and_resolves() {
        let mut s = series();
        let mut out = Vec::new();
        // ≥ 0.9 from 0 to 6m (samples every minute hold 2m), then 0.5.
        for i in 0..=6 {
            s.sample(i * M, 950.0, Some(1000.0), &mut out);
        }
        s.sample(7 * M, 500.0, Some(1000.0), &mut out);
        s.sample(8 * M, 500.0, Some(1000.0), &mut out);
        s.advance(20 * M, &mut out);
        let got: Vec<_> = out
            .iter()
            .map(|i| (i.action, i.at_ms, i.started_ms, i.rule))
            .collect();
        assert_eq!(
            got,
            vec![
                (Action::Trigger, 5 * M, 0, Rule::Capacity),
                (Action::Resolve, 9 * M, 0, Rule::Capacity)
            ]
        );
        assert_eq!(
            out[0].incident_id,
            crate::engine::incidents::incident_id(Rule::Capacity, "db/db-1/disk", 0)
        );
    }

    #[test]
    fn forecast_of_a_rising_line() {
        let mut s = series();
        let mut out = Vec::new();
        // Utilisation 0.5 at hour 0, rising 0.01 per hour (0.24 per day).
        for h in 0..48 {
            s.sample(h * HOUR, 500.0 + 10.0 * h as f64, Some(1000.0), &mut out);
        }
        let f = s.forecast(48 * HOUR);
        let slope = f.slope_per_day.expect("slope");
        assert!((slope - 0.24).abs() < 1e-9, "{slope}");
        // Reaches 1.0 at hour 50.
        assert_eq!(
            f.exhausted_at.as_deref(),
            Some(format_ms(50 * HOUR).as_str())
        );
        let flat = series().forecast(0);
        assert!(flat.slope_per_day.is_none() && flat.exhausted_at.is_none());
    }
}
