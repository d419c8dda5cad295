//! The `slos` block of the SLA report and `GET /v1/slos/{id}` (contract
//! section 14): total and bad events of each request SLO over a period.

use std::collections::BTreeMap;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Float64Type;
use datafusion::prelude::SessionContext;
use serde::{Serialize, Serializer};

use super::{ReportError, query};
use crate::config::{Config, SloConfig};
use crate::engine::requests::SloCounts;
use crate::time::Millis;

/// The SLO query, compiled into the binary.
pub const SLOS_SQL: &str = include_str!("../../queries/slos.sql");

/// A count of events: an integer in JSON when it is one (sums of integer
/// counters stay integers, section 14), else a number.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, utoipa::ToSchema)]
#[schema(value_type = f64)]
pub struct Count(pub f64);

/// Integers up to 2^53 are exact in an f64.
const EXACT: f64 = 9_007_199_254_740_992.0;

impl Count {
    /// The value as an integer, when it is one that f64 holds exactly.
    fn integer(self) -> Option<i64> {
        (self.0.fract() == 0.0 && self.0.abs() < EXACT).then_some(self.0 as i64)
    }
}

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.integer() {
            Some(i) => s.serialize_i64(i),
            None => s.serialize_f64(self.0),
        }
    }
}

/// As the JSON writes it (`120`, `2098.3`).
impl std::fmt::Display for Count {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.integer() {
            Some(i) => write!(f, "{i}"),
            None => write!(f, "{}", self.0),
        }
    }
}

/// One SLO over a period.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SloReport {
    /// SLO id.
    pub slo: String,
    /// Its service.
    pub service: String,
    /// Objective, percent of good events.
    pub objective_pct: f64,
    /// Its window as configured (`"28d"`, `"month"`).
    pub window: String,
    /// All events counted in the period.
    pub total: Count,
    /// Bad events counted in the period.
    pub bad: Count,
    /// `100 × (total − bad) / total`; null without events.
    pub ratio_pct: Option<f64>,
    /// `ratio_pct ≥ objective`; null without events.
    pub met: Option<bool>,
    /// `(1 − objective/100) × total`.
    pub budget_events: Count,
    /// `budget_events − bad`.
    pub budget_remaining_events: Count,
}

impl SloReport {
    /// The figures of `slo` from its counts.
    pub fn new(slo: &SloConfig, c: SloCounts) -> Self {
        let ratio_pct = c.ratio_pct();
        let budget = (100.0 - slo.objective) / 100.0 * c.total;
        SloReport {
            slo: slo.id().to_owned(),
            service: slo.service().to_owned(),
            objective_pct: slo.objective,
            window: slo.window.text().to_owned(),
            total: Count(c.total),
            bad: Count(c.bad),
            ratio_pct,
            met: ratio_pct.map(|r| r >= slo.objective),
            budget_events: Count(budget),
            budget_remaining_events: Count(budget - c.bad),
        }
    }
}

/// Each (service, counter)'s counted increases in the report period, summed
/// in sample order (`SLOS_SQL`).
pub(super) type CounterSums = BTreeMap<(String, String), f64>;

/// The SLOs of `customer`'s services.
pub(super) fn slos_of<'c>(config: &'c Config, customer: &str) -> Vec<&'c SloConfig> {
    (config.slos.iter())
        .filter(|s| {
            config
                .service(s.service())
                .is_some_and(|c| c.customer == customer)
        })
        .collect()
}

/// Sums `SLOS_SQL`'s rows per (service, counter). The rows come sorted by
/// (service, counter), so each key's run is summed in a local and stored
/// once: the same additions in the same order as adding each row into the
/// map, without two `String`s and a map search per row.
pub(super) async fn counter_sums(
    ctx: &SessionContext,
    from: Millis,
    to: Millis,
) -> Result<CounterSums, ReportError> {
    let mut sums = CounterSums::new();
    let mut run: Option<((String, String), f64)> = None;
    for b in &query(ctx, SLOS_SQL, from, to).await? {
        let (service, counter) = (
            b.column(0).as_string::<i32>(),
            b.column(1).as_string::<i32>(),
        );
        let increase = b.column(2).as_primitive::<Float64Type>();
        for r in 0..b.num_rows() {
            let key = (service.value(r), counter.value(r));
            if run
                .as_ref()
                .is_some_and(|((s, c), _)| (s.as_str(), c.as_str()) != key)
                && let Some((done, sum)) = run.take()
            {
                sums.insert(done, sum);
            }
            let (_, sum) = run.get_or_insert_with(|| {
                let key = (key.0.to_owned(), key.1.to_owned());
                let sum = sums.remove(&key).unwrap_or(0.0);
                (key, sum)
            });
            *sum += increase.value(r);
        }
    }
    if let Some((done, sum)) = run {
        sums.insert(done, sum);
    }
    Ok(sums)
}

/// The SLOs of `customer`'s services, in config order, from the period's `sums`.
pub(super) fn slos_report(config: &Config, customer: &str, sums: &CounterSums) -> Vec<SloReport> {
    let sum = |s: &SloConfig, name: &str| {
        let key = (s.service().to_owned(), name.to_owned());
        sums.get(&key).copied().unwrap_or(0.0)
    };
    let report = |s: &SloConfig| SloReport::new(s, SloCounts::of(s, |name| sum(s, name)));
    slos_of(config, customer).into_iter().map(report).collect()
}
