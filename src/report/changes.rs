//! The `changes` block of the SLA report (contract section 15): changes
//! deployed in the period, how many failed or induced an outage, and the mean
//! time to restore service.

use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use super::{ReportError, query, round_ms};
use crate::config::Config;
use crate::engine::incidents::{Action, Incident};
use crate::model::{ChangeOutcome, Rule};
use crate::time::{Millis, parse_rfc3339};

/// The changes query, compiled into the binary.
pub const CHANGES_SQL: &str = include_str!("../../queries/changes.sql");

/// Changes of the customer's services over the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ChangesReport {
    /// Changes with `ts` in the period.
    pub total: u64,
    /// Those whose outcome is not success, or that induced an outage.
    pub failed: u64,
    /// Outages attributed to them.
    pub induced_outages: u64,
    /// `100 × failed / total`; null without changes.
    pub failure_rate_pct: Option<f64>,
    /// Mean `ended_at − started_at` of the outages whose resolve has
    /// `ended_at` in the period, seconds; null without one.
    pub mttr_s: Option<f64>,
}

/// A change deployed in the period: a row of `CHANGES_SQL`, whichever
/// customer's service it is of.
pub(super) struct ChangeRow {
    service: String,
    outcome: String,
    induced_outages: i64,
}

/// Every change deployed in `[from, to)`, read once for every customer's report.
pub(super) async fn change_rows(
    ctx: &SessionContext,
    from: Millis,
    to: Millis,
) -> Result<Vec<ChangeRow>, ReportError> {
    let mut rows = Vec::new();
    for b in &query(ctx, CHANGES_SQL, from, to).await? {
        let service = b.column(0).as_string::<i32>();
        let outcome = b.column(2).as_string::<i32>();
        let induced = b.column(3).as_primitive::<Int64Type>();
        rows.extend((0..b.num_rows()).map(|i| ChangeRow {
            service: service.value(i).to_owned(),
            outcome: outcome.value(i).to_owned(),
            induced_outages: induced.value(i),
        }));
    }
    Ok(rows)
}

/// The block for `customer` over `[from, to)`, from the period's `changes`.
pub(super) fn changes_report(
    config: &Config,
    changes: &[ChangeRow],
    incidents: &[Incident],
    customer: &str,
    (from, to): (Millis, Millis),
) -> ChangesReport {
    let theirs = |service: &str| {
        config
            .service(service)
            .is_some_and(|s| s.customer == customer)
    };
    let mut r = ChangesReport::default();
    for c in changes.iter().filter(|c| theirs(&c.service)) {
        let n = u64::try_from(c.induced_outages).unwrap_or(0);
        r.total += 1;
        r.induced_outages += n;
        if c.outcome != ChangeOutcome::Success.as_str() || n > 0 {
            r.failed += 1;
        }
    }
    r.failure_rate_pct = (r.total > 0).then(|| 100.0 * r.failed as f64 / r.total as f64);
    let restored: Vec<Millis> = (incidents.iter())
        .filter(|i| i.rule == Rule::Outage && i.action == Action::Resolve && i.customer == customer)
        .filter_map(|i| {
            // `ended_at` is written by `format_ms`, so it always reads back.
            let ended = parse_rfc3339(i.ended_at.as_deref()?).ok()?;
            (from <= ended && ended < to).then_some(ended - i.started_ms)
        })
        .collect();
    r.mttr_s = (!restored.is_empty()).then(|| {
        let sum: i128 = restored.iter().map(|&d| i128::from(d)).sum();
        round_ms(sum as f64 / restored.len() as f64 / 1000.0)
    });
    r
}
