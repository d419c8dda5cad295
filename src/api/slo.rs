//! `GET /v1/services/{id}/slo`: a service's error budget and burn rates now
//! (contract section 11), and `GET /v1/slos/{id}`: a request SLO over its
//! window (section 14), for the dashboard and for scripts.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::ApiError;
use super::routes::visible_service;
use crate::config::BurnAlert;
use crate::engine::requests::Requests;
use crate::model::Severity;
use crate::report::slo::SloReport;
use crate::state::Shared;
use crate::time::{Millis, format_ms};

/// One hour: the step of the budget series.
const BUDGET_STEP: Millis = 3_600_000;

/// One `[[burn_alerts]]` entry on one service.
#[derive(Debug, Serialize, ToSchema)]
pub struct BurnAlertStatus {
    /// Alert name.
    pub name: String,
    /// Severity of its incidents.
    pub severity: Severity,
    /// Burn rate at which it fires.
    pub factor: f64,
    /// Long window, as configured.
    pub long: String,
    /// Short window, as configured.
    pub short: String,
    /// Burn rate over the long window at `at` (null when nothing was measured).
    pub long_burn: Option<f64>,
    /// Burn rate over the short window at `at`.
    pub short_burn: Option<f64>,
    /// Whether its `burn_rate` incident is open.
    pub firing: bool,
}

impl BurnAlertStatus {
    /// Alert `a` with its (long, short) burn rates; firing when `open` names it.
    fn of(
        a: &BurnAlert,
        (long_burn, short_burn): (Option<f64>, Option<f64>),
        open: &[&str],
    ) -> Self {
        BurnAlertStatus {
            name: a.name.clone(),
            severity: a.severity,
            factor: a.factor,
            long: a.long.text.clone(),
            short: a.short.text.clone(),
            long_burn,
            short_burn,
            firing: open.contains(&a.name.as_str()),
        }
    }
}

/// The month's budget left at one instant.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetPoint {
    /// Instant (RFC 3339).
    pub at: String,
    /// `budget_remaining_s / budget_s` of the month (below zero once spent).
    pub remaining_ratio: f64,
}

/// A service's error budget and burn rates.
#[derive(Debug, Serialize, ToSchema)]
pub struct SloStatus {
    /// Service id.
    pub service: String,
    /// Its customer.
    pub customer: String,
    /// Availability target in percent.
    pub target_pct: f64,
    /// The bucket close the burn rates are at (null before the first one).
    pub at: Option<String>,
    /// The current UTC month's budget left, as on `/metrics` (null while the
    /// budget is zero).
    pub budget_remaining_ratio: Option<f64>,
    /// The current UTC month's availability so far, in percent.
    pub month_availability_pct: Option<f64>,
    /// Each burn alert.
    pub alerts: Vec<BurnAlertStatus>,
    /// The budget left every hour of the current month so far, and now.
    pub budget: Vec<BudgetPoint>,
}

/// A service's error budget and burn rates now.
#[utoipa::path(get, path = "/v1/services/{id}/slo", params(("id" = String, Path, description = "service id")),
    security(("bearer" = [])), responses((status = 200, body = SloStatus), (status = 401), (status = 404)))]
pub async fn slo(
    State(shared): State<Arc<Shared>>,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<SloStatus>, ApiError> {
    let Path(id) = id?;
    let svc = visible_service(&shared.config, &who, &id)?;
    let snap = shared.snapshot();
    let t = (snap.engine.services().get(&id))
        .ok_or_else(|| ApiError::not_found("service has no timeline"))?;
    let open: Vec<&str> = t.open_burn_alerts().collect();
    let alerts = (shared.config.burn_alerts.iter())
        .map(|a| {
            let rates = t.burn_rates(&[a.long.ms, a.short.ms]);
            BurnAlertStatus::of(a, (rates[0], rates[1]), &open)
        })
        .collect();
    let budget = (t.month_budget_series(BUDGET_STEP).into_iter())
        .map(|(at, remaining_ratio)| BudgetPoint {
            at: format_ms(at),
            remaining_ratio,
        })
        .collect();
    Ok(Json(SloStatus {
        service: id.clone(),
        customer: t.customer().to_owned(),
        target_pct: svc.availability_target,
        at: t.latest_close().map(format_ms),
        budget_remaining_ratio: t.budget_remaining_ratio(),
        month_availability_pct: t.month_availability().map(|a| a * 100.0),
        alerts,
        budget,
    }))
}

/// A request SLO (contract section 14) over its own window ending at the
/// watermark, with the burn rate of each alert.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestSloStatus {
    /// The SLO's figures, as in the report's `slos` block.
    #[serde(flatten)]
    pub figures: SloReport,
    /// Its service's customer.
    pub customer: String,
    /// Window start: the watermark − the window, or the start of its UTC month.
    pub from: String,
    /// Window end: the watermark.
    pub to: String,
    /// The bucket close the burn rates are at (null before the first one).
    pub at: Option<String>,
    /// Each burn alert on this SLO.
    pub alerts: Vec<BurnAlertStatus>,
}

/// A request SLO now.
#[utoipa::path(get, path = "/v1/slos/{id}", params(("id" = String, Path, description = "SLO id")),
    security(("bearer" = [])), responses((status = 200, body = RequestSloStatus), (status = 401), (status = 404)))]
pub async fn request_slo(
    State(shared): State<Arc<Shared>>,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<RequestSloStatus>, ApiError> {
    let Path(id) = id?;
    let unknown = || ApiError::not_found(format!("unknown SLO {id:?}"));
    let slo = shared.config.slo(&id).ok_or_else(unknown)?;
    // Another customer's SLO is answered like one that does not exist.
    let svc = visible_service(&shared.config, &who, slo.service()).map_err(|_| unknown())?;
    let snap = shared.snapshot();
    let t = (snap.engine.services().get(slo.service()))
        .ok_or_else(|| ApiError::not_found("service has no state on this instance"))?;
    let (from, to) = Requests::window_of(slo, snap.default_to());
    let close = t.requests().evaluated();
    let open = t.requests().open_alerts(slo.id());
    let alerts = (shared.config.burn_alerts.iter())
        .map(|a| {
            let rates = close.map(|c| t.slo_burn_rates(slo, c, &[a.long.ms, a.short.ms]));
            let rate = |i: usize| rates.as_ref().and_then(|r| r[i]);
            BurnAlertStatus::of(a, (rate(0), rate(1)), &open)
        })
        .collect();
    Ok(Json(RequestSloStatus {
        figures: SloReport::new(slo, t.slo_counts(slo, from, to)),
        customer: svc.customer.clone(),
        from: format_ms(from),
        to: format_ms(to),
        at: close.map(format_ms),
        alerts,
    }))
}
