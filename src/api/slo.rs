//! `GET /v1/services/{id}/slo`: a service's error budget and burn rates now
//! (contract section 11), for the dashboard and for scripts.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::ApiError;
use super::routes::visible_service;
use crate::model::Severity;
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
            BurnAlertStatus {
                name: a.name.get_ref().clone(),
                severity: a.severity,
                factor: a.factor,
                long: a.long.text.clone(),
                short: a.short.text.clone(),
                long_burn: rates[0],
                short_burn: rates[1],
                firing: open.contains(&a.name.get_ref().as_str()),
            }
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
