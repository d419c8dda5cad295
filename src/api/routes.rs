//! The endpoints of contract section 10, each documented for OpenAPI.

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::auth::Principal;
use super::error::ApiError;
use crate::config::{Config, ServiceConfig};
use crate::engine::availability::State as SvcState;
use crate::engine::incidents::Incident;
use crate::engine::tickets::TicketLine;
use crate::report::html::report_html;
use crate::report::{
    AvailabilityStep, CapacityReport, ContractTerms, SlaReport, availability_steps,
    capacity_report, sla_csv, sla_report,
};
use crate::state::{Shared, Snapshot};
use crate::time::{Millis, checked_ms, format_ms, parse_flexible};

type Shared_ = State<Arc<Shared>>;

/// Longest report period accepted (guards against absurd ranges).
const MAX_PERIOD: Millis = 400 * 86_400_000;
/// At most this many incidents in one answer.
const MAX_INCIDENTS: usize = 5_000;
/// At most this many steps in an availability series.
const MAX_STEPS: i64 = 5_000;

/// `customer`, `from`, `to` (RFC 3339, epoch ms or YYYY-MM-DD) of a report;
/// another parameter is refused (400), not ignored.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PeriodParams {
    /// Customer id; required with an admin token, a customer token's own by default.
    #[param(required = true, min_length = 1)]
    customer: Option<String>,
    /// Period start; default `to` − 7 days (not before the first hour with data).
    from: Option<String>,
    /// Period end (exclusive); default the current watermark.
    to: Option<String>,
}

/// [`PeriodParams`] and the SLA report's `format`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReportParams {
    /// Customer id; required with an admin token, a customer token's own by default.
    #[param(required = true, min_length = 1)]
    customer: Option<String>,
    /// Period start; default `to` − 7 days (not before the first hour with data).
    from: Option<String>,
    /// Period end (exclusive); default the current watermark.
    to: Option<String>,
    /// `json` (default) or `csv`.
    #[param(pattern = "^(json|csv)$")]
    format: Option<String>,
}

fn parse_time(name: &str, v: &Option<String>) -> Result<Option<Millis>, ApiError> {
    v.as_deref()
        .map(|s| parse_flexible(s).map_err(|e| ApiError::bad_request(format!("{name}: {e}"))))
        .transpose()
}

/// Resolves `[from, to)` with defaults, rejecting empty or huge periods.
/// 400 when `[from, …)` starts before what `engine.retention` keeps: the answer
/// would silently count the forgotten time as `nodata`.
fn check_retention(config: &Config, snap: &Snapshot, from: Millis) -> Result<(), ApiError> {
    let retention = config.engine.retention;
    if from < snap.default_to().saturating_sub(retention.0) {
        return Err(ApiError::bad_request(format!(
            "`from` lies before what engine.retention ({}) keeps: replay the topics, or use an evidence pack, for older periods",
            humantime::format_duration(retention.std())
        )));
    }
    Ok(())
}

fn period(
    config: &Config,
    snap: &Snapshot,
    from: &Option<String>,
    to: &Option<String>,
) -> Result<(Millis, Millis), ApiError> {
    let first = snap.min_ts;
    let to = parse_time("to", to)?.unwrap_or_else(|| snap.default_to());
    // Default: the last 7 days, but not before the first hour with data.
    let week_ago = to.saturating_sub(7 * 86_400_000);
    let default_from = first.map_or(week_ago, |f| {
        week_ago
            .max(f.div_euclid(3_600_000) * 3_600_000)
            .min(to.saturating_sub(1))
    });
    let from = parse_time("from", from)?.unwrap_or(default_from);
    if from >= to {
        return Err(ApiError::bad_request("`from` must be before `to`"));
    }
    if to.checked_sub(from).is_none_or(|span| span > MAX_PERIOD) {
        return Err(ApiError::bad_request("period longer than 400 days"));
    }
    check_retention(config, snap, from)?;
    Ok((from, to))
}

pub(super) fn customer_param(
    shared: &Shared,
    who: &Principal,
    c: &Option<String>,
) -> Result<String, ApiError> {
    let customer = match (c, who) {
        (Some(c), _) => c.clone(),
        (None, Principal::Customer(c)) => c.clone(),
        (None, Principal::Admin) => return Err(ApiError::bad_request("missing `customer`")),
        (None, Principal::Ingest(_)) => {
            return Err(ApiError::forbidden("an ingest token sees no reports"));
        }
    };
    if shared.config.customer(&customer).is_none() {
        // Same answer for unknown and forbidden customers to a customer token.
        who.check_customer(&customer)?;
        return Err(ApiError::not_found(format!(
            "unknown customer {customer:?}"
        )));
    }
    who.check_customer(&customer)?;
    Ok(customer)
}

/// The SLA report of `customer` over `[from, to)` from a published snapshot
/// (computed once per snapshot and period).
async fn snapshot_report(
    config: &Config,
    snap: &Snapshot,
    customer: &str,
    (from, to): (Millis, Millis),
) -> Result<Arc<SlaReport>, ApiError> {
    let tables = snap.report_tables().map_err(ApiError::internal)?;
    let compute = || {
        sla_report(
            config,
            tables,
            &snap.incidents,
            customer,
            from,
            to,
            snap.now,
        )
    };
    let report = snap.reports.report(customer, (from, to), compute);
    report.await.map_err(ApiError::internal)
}

/// SLA report of a customer (same JSON as `report-<customer>.json`), or CSV.
#[utoipa::path(get, path = "/v1/reports/sla", params(ReportParams), security(("bearer" = [])),
    responses((status = 200, description = "JSON report; `format=csv` gives one CSV row per service",
            content((SlaReport = "application/json"), (String = "text/csv"))),
        (status = 400, description = "bad parameters"), (status = 401), (status = 403), (status = 404)))]
pub async fn sla(
    State(shared): Shared_,
    who: Principal,
    q: Result<Query<ReportParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let customer = customer_param(&shared, &who, &q.customer)?;
    let snap = shared.snapshot();
    let (from, to) = period(&shared.config, &snap, &q.from, &q.to)?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(f) => {
            return Err(ApiError::bad_request(format!(
                "unknown format {f:?} (json | csv)"
            )));
        }
    };
    let report = snapshot_report(&shared.config, &snap, &customer, (from, to)).await?;
    if csv {
        Ok((
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            sla_csv(&report).map_err(ApiError::internal)?,
        )
            .into_response())
    } else {
        Ok(Json(report.as_ref()).into_response())
    }
}

/// The customer report page of a period: the same page as an evidence pack's
/// `report.html` (contract section 12), self-contained and printable.
#[utoipa::path(get, path = "/v1/reports/sla.html", params(PeriodParams), security(("bearer" = [])),
    responses((status = 200, content_type = "text/html", body = String, description = "one self-contained HTML page"),
        (status = 400, description = "bad parameters"), (status = 401), (status = 403), (status = 404)))]
pub async fn sla_html(
    State(shared): Shared_,
    who: Principal,
    q: Result<Query<PeriodParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let customer = customer_param(&shared, &who, &q.customer)?;
    let snap = shared.snapshot();
    let (from, to) = period(&shared.config, &snap, &q.from, &q.to)?;
    let report = snapshot_report(&shared.config, &snap, &customer, (from, to)).await?;
    let config = shared.config.clone();
    let page = tokio::task::spawn_blocking(move || {
        let report = SlaReport::clone(&report);
        report_html(&config, &snap.engine, &snap.incidents, report, (from, to))
    });
    let page = page.await.map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            // Nothing but the inline styles may load or run, whatever the data holds.
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'none'; style-src 'unsafe-inline'",
            ),
        ],
        page,
    )
        .into_response())
}

/// Capacity report of a customer (same JSON as `capacity-<customer>.json`).
#[utoipa::path(get, path = "/v1/reports/capacity", params(PeriodParams), security(("bearer" = [])),
    responses((status = 200, body = CapacityReport), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn capacity(
    State(shared): Shared_,
    who: Principal,
    q: Result<Query<PeriodParams>, QueryRejection>,
) -> Result<Json<CapacityReport>, ApiError> {
    let Query(q) = q?;
    let customer = customer_param(&shared, &who, &q.customer)?;
    let snap = shared.snapshot();
    let (from, to) = period(&shared.config, &snap, &q.from, &q.to)?;
    let report = tokio::task::spawn_blocking(move || {
        capacity_report(&snap.engine, &snap.incidents, &customer, from, to)
    });
    Ok(Json(report.await.map_err(ApiError::internal)?))
}

/// `from`, `to`, `step`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SeriesParams {
    /// Start; default `to` − 1 day.
    from: Option<String>,
    /// End (exclusive); default the current watermark.
    to: Option<String>,
    /// Step as a duration (`1h`, `15m`); default `1h`.
    step: Option<String>,
}

/// The service `id` if `who` may see it. Another customer's service answers
/// exactly like a missing one, so ids cannot be enumerated.
pub(super) fn visible_service<'a>(
    config: &'a Config,
    who: &Principal,
    id: &str,
) -> Result<&'a ServiceConfig, ApiError> {
    let unknown = || ApiError::not_found(format!("unknown service {id:?}"));
    let svc = config.service(id).ok_or_else(unknown)?;
    if !who.sees(&svc.customer) {
        return Err(unknown());
    }
    Ok(svc)
}

/// A service's availability over time.
#[derive(Debug, Serialize, ToSchema)]
pub struct AvailabilitySeries {
    /// Service id.
    pub service: String,
    /// Current state.
    pub state: String,
    /// The steps.
    pub steps: Vec<AvailabilityStep>,
}

/// Availability of one service in steps.
#[utoipa::path(get, path = "/v1/services/{id}/availability", params(("id" = String, Path, description = "service id"), SeriesParams),
    security(("bearer" = [])), responses((status = 200, body = AvailabilitySeries), (status = 400), (status = 401), (status = 403), (status = 404)))]
pub async fn availability(
    State(shared): Shared_,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<SeriesParams>, QueryRejection>,
) -> Result<Json<AvailabilitySeries>, ApiError> {
    let (Path(id), Query(q)) = (id?, q?);
    let svc = visible_service(&shared.config, &who, &id)?;
    let step: Millis = match &q.step {
        None => 3_600_000,
        Some(s) => humantime::parse_duration(s)
            .map_err(|e| ApiError::bad_request(format!("step: {e}")))?
            .as_millis()
            .try_into()
            .ok()
            .filter(|ms| *ms <= MAX_PERIOD)
            .ok_or_else(|| ApiError::bad_request("step longer than 400 days"))?,
    };
    if step < 1000 {
        return Err(ApiError::bad_request("step must be at least 1s"));
    }
    let snap = shared.snapshot();
    let to = parse_time("to", &q.to)?.unwrap_or_else(|| snap.default_to());
    let from = parse_time("from", &q.from)?.unwrap_or(to.saturating_sub(86_400_000));
    if from >= to {
        return Err(ApiError::bad_request("`from` must be before `to`"));
    }
    check_retention(&shared.config, &snap, from)?;
    // Both ends lie within years 0000-9999, so the span cannot overflow; the step
    // count is checked before anything is allocated.
    let span = to.checked_sub(from).unwrap_or(Millis::MAX);
    if span / step > MAX_STEPS {
        return Err(ApiError::bad_request(format!(
            "more than {MAX_STEPS} steps: use a larger step"
        )));
    }
    let t = (snap.engine.services().get(&id))
        .ok_or_else(|| ApiError::not_found("service has no timeline"))?;
    let intervals: Vec<(Millis, Millis, SvcState)> = t
        .intervals()
        .filter(|(a, b, _)| *b > from && *a < to)
        .collect();
    let state = t.state().as_str().to_owned();
    let policy = svc.nodata;
    let hours = crate::engine::service_hours(&shared.config, svc);
    let excluded = t.exclusions().union().to_vec();
    let steps = tokio::task::spawn_blocking(move || {
        let terms = ContractTerms {
            policy,
            hours: &hours,
            excluded: &excluded,
        };
        availability_steps(&terms, &intervals, from, to, step)
    });
    let steps = steps.await.map_err(ApiError::internal)?;
    Ok(Json(AvailabilitySeries {
        service: id,
        state,
        steps,
    }))
}

/// `status=open|all`, optional `customer`, `limit`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IncidentParams {
    /// `open` (default): triggered and not resolved; `all`: every action, newest first.
    #[param(pattern = "^(open|all)$")]
    status: Option<String>,
    /// Only this customer (an unknown one has none).
    customer: Option<String>,
    /// At most this many (default 500).
    #[param(minimum = 0, maximum = 5000)]
    limit: Option<usize>,
}

/// Incidents visible to the caller.
#[utoipa::path(get, path = "/v1/incidents", params(IncidentParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<Incident>), (status = 400), (status = 401), (status = 403)))]
pub async fn incidents(
    State(shared): Shared_,
    who: Principal,
    q: Result<Query<IncidentParams>, QueryRejection>,
) -> Result<Json<Vec<Incident>>, ApiError> {
    let Query(q) = q?;
    if let Some(c) = &q.customer {
        who.check_customer(c)?;
    }
    let limit = match q.limit {
        None => 500,
        Some(n) if n <= MAX_INCIDENTS => n,
        Some(n) => {
            return Err(ApiError::bad_request(format!(
                "limit {n} is above {MAX_INCIDENTS}"
            )));
        }
    };
    let keep = |i: &&Incident| {
        who.sees(&i.customer) && q.customer.as_ref().is_none_or(|c| *c == i.customer)
    };
    let core = shared.snapshot();
    let list: Vec<Incident> = match q.status.as_deref() {
        None | Some("open") => {
            let mut v: Vec<Incident> = core.open.values().filter(keep).cloned().collect();
            v.sort_by(|a, b| {
                b.at_ms
                    .cmp(&a.at_ms)
                    .then_with(|| a.incident_id.cmp(&b.incident_id))
            });
            v.truncate(limit);
            v
        }
        Some("all") => core
            .incidents
            .iter()
            .rev()
            .filter(keep)
            .take(limit)
            .cloned()
            .collect(),
        Some(s) => {
            return Err(ApiError::bad_request(format!(
                "unknown status {s:?} (open | all)"
            )));
        }
    };
    Ok(Json(list))
}

/// A ticket with its SLA state and incidents.
#[derive(Debug, Serialize, ToSchema)]
pub struct TicketView {
    /// As in `tickets.ndjson`.
    #[serde(flatten)]
    pub line: TicketLine,
    /// Service, if any.
    pub service: Option<String>,
    /// `incident` or `request`.
    pub kind: String,
    /// Incident actions about this ticket.
    pub incidents: Vec<Incident>,
}

/// One ticket.
#[utoipa::path(get, path = "/v1/tickets/{id}", params(("id" = String, Path, description = "ticket id")), security(("bearer" = [])),
    responses((status = 200, body = TicketView), (status = 401), (status = 403), (status = 404)))]
pub async fn ticket(
    State(shared): Shared_,
    who: Principal,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<TicketView>, ApiError> {
    let Path(id) = id?;
    let core = shared.snapshot();
    let tickets = core.engine.tickets();
    // Another customer's ticket answers exactly like a missing one, so ids
    // cannot be enumerated.
    let (Some(t), Some(line)) = (tickets.get(&id), tickets.line(&id)) else {
        return Err(ApiError::not_found(format!("unknown ticket {id:?}")));
    };
    if !who.sees(&t.customer) {
        return Err(ApiError::not_found(format!("unknown ticket {id:?}")));
    }
    let incidents = core
        .incidents
        .iter()
        .filter(|i| i.ticket.as_deref() == Some(id.as_str()))
        .cloned()
        .collect();
    Ok(Json(TicketView {
        line,
        service: t.service.as_ref().map(ToString::to_string),
        kind: t.kind.to_string(),
        incidents,
    }))
}

/// A maintenance window to record.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MaintenanceRequest {
    /// Service id.
    #[schema(min_length = 1)]
    pub service: String,
    /// Window start (RFC 3339, a date or epoch ms).
    #[schema(schema_with = super::openapi::time_value)]
    pub start: serde_json::Value,
    /// Window end (exclusive).
    #[schema(schema_with = super::openapi::time_value)]
    pub end: serde_json::Value,
    /// Change reference.
    pub change_id: Option<String>,
}

fn json_time(name: &str, v: &serde_json::Value) -> Result<Millis, ApiError> {
    match v {
        serde_json::Value::Number(n) => {
            n.as_i64()
                .and_then(|ms| checked_ms(ms).ok())
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "{name}: expected integer epoch ms within years 0000-9999"
                    ))
                })
        }
        serde_json::Value::String(s) => {
            parse_flexible(s).map_err(|e| ApiError::bad_request(format!("{name}: {e}")))
        }
        _ => Err(ApiError::bad_request(format!(
            "{name}: expected RFC 3339 or epoch ms"
        ))),
    }
}

/// Records a maintenance window as a monitoring event (published to the
/// monitoring topic in `run`, so it is durable and replayable).
#[utoipa::path(post, path = "/v1/maintenance", request_body = MaintenanceRequest, security(("bearer" = [])),
    responses((status = 202, description = "accepted; the event is returned", body = Object), (status = 400), (status = 401), (status = 403)))]
pub async fn maintenance(
    State(shared): Shared_,
    who: Principal,
    body: Result<Json<MaintenanceRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    who.check_admin()?;
    let Json(req) = body?;
    let (start, end) = (json_time("start", &req.start)?, json_time("end", &req.end)?);
    let ts = shared.intake.now();
    let digest = Sha256::digest(format!("{}|{start}|{end}|{ts}", req.service).as_bytes());
    let event = serde_json::json!({
        "event_id": format!("api-maint-{}", hex::encode(&digest[..8])),
        "ts": ts,
        "service": req.service,
        "kind": "maintenance",
        "start": start,
        "end": end,
        "change_id": req.change_id,
    });
    publish_monitoring(shared, event).await
}

/// An exclusion to record (contract section 13).
#[derive(Debug, Deserialize, ToSchema)]
pub struct ExclusionRequest {
    /// Service id.
    #[schema(min_length = 1)]
    pub service: String,
    /// Its identity per service: a later request with the same id replaces it.
    #[schema(min_length = 1)]
    pub exclusion_id: String,
    /// Window start (RFC 3339, a date or epoch ms); may lie in the past.
    #[schema(schema_with = super::openapi::time_value)]
    pub start: serde_json::Value,
    /// Window end (exclusive).
    #[schema(schema_with = super::openapi::time_value)]
    pub end: serde_json::Value,
    /// Why the time is excluded (e.g. "customer firewall change").
    #[schema(min_length = 1)]
    pub reason: String,
    /// Who approved it.
    #[schema(min_length = 1)]
    pub approved_by: String,
}

/// Records an exclusion (or a new version of one) as a monitoring event,
/// published to the monitoring topic in `run` like maintenance. Admin tokens only.
#[utoipa::path(post, path = "/v1/exclusions", request_body = ExclusionRequest, security(("bearer" = [])),
    responses((status = 202, description = "accepted; the event is returned", body = Object), (status = 400), (status = 401), (status = 403)))]
pub async fn exclusions(
    State(shared): Shared_,
    who: Principal,
    body: Result<Json<ExclusionRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    who.check_admin()?;
    let Json(req) = body?;
    let (start, end) = (json_time("start", &req.start)?, json_time("end", &req.end)?);
    let mut id = [0u8; 16];
    getrandom::fill(&mut id).map_err(ApiError::internal)?;
    // A version 4 UUID (RFC 9562).
    id[6] = (id[6] & 0x0f) | 0x40;
    id[8] = (id[8] & 0x3f) | 0x80;
    let h = hex::encode(id);
    let uuid = format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..]
    );
    let event = serde_json::json!({
        "event_id": format!("api:{uuid}"),
        "ts": shared.intake.now(),
        "service": req.service,
        "kind": "exclusion",
        "exclusion_id": req.exclusion_id,
        "start": start,
        "end": end,
        "reason": req.reason,
        "approved_by": req.approved_by,
    });
    publish_monitoring(shared, event).await
}

/// Checks a monitoring event made by the API as the decoder checks input
/// (an unknown service, a window ending before it starts or longer than
/// `engine.max_window`, a missing field: 400), then publishes it.
async fn publish_monitoring(
    shared: std::sync::Arc<crate::state::Shared>,
    event: serde_json::Value,
) -> Result<Response, ApiError> {
    let json = event.to_string();
    let topic = crate::event::Topic::Monitoring;
    let (key, event_id, ts) = crate::ingest::validate(&shared.config, topic, &json)
        .map_err(|(_, why)| ApiError::bad_request(why))?;
    let published = crate::ingest::Event {
        index: 0,
        topic,
        key,
        event_id,
        ts,
        json,
    };
    // Publishing waits for Kafka's acknowledgement: off the async workers.
    let worker = shared.clone();
    tokio::task::spawn_blocking(move || worker.intake.publish(&[published]))
        .await
        .map_err(ApiError::internal)??;
    Ok((StatusCode::ACCEPTED, Json(event)).into_response())
}

/// What the dashboard needs to start: customers visible to the token and clocks.
#[derive(Debug, Serialize, ToSchema)]
pub struct Overview {
    /// Customers (id, name) the token may see.
    pub customers: Vec<CustomerView>,
    /// Event-time "now" of the driver.
    pub now: String,
    /// Global watermark (everything before it is final).
    pub watermark: Option<String>,
    /// Records read so far.
    pub records_read: u64,
    /// Open incidents visible to the token.
    pub open_incidents: usize,
}

/// A customer.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: Option<String>,
    /// Services of the customer.
    pub services: Vec<String>,
    /// Request SLOs of those services (section 14).
    pub slos: Vec<String>,
    /// Calendar timezone of the customer.
    pub timezone: String,
}

/// Customers and clocks for the dashboard.
#[utoipa::path(get, path = "/v1/overview", security(("bearer" = [])), responses((status = 200, body = Overview), (status = 401)))]
pub async fn overview(State(shared): Shared_, who: Principal) -> Json<Overview> {
    let customers = shared
        .config
        .customers
        .iter()
        .filter(|c| who.sees(&c.id))
        .map(|c| CustomerView {
            id: c.id.clone(),
            name: c.name.clone(),
            services: shared
                .config
                .services
                .iter()
                .filter(|s| s.customer == c.id)
                .map(|s| s.id.clone())
                .collect(),
            slos: (shared.config.slos.iter())
                .filter(|s| {
                    let svc = shared.config.service(s.service());
                    svc.is_some_and(|svc| svc.customer == c.id)
                })
                .map(|s| s.id().to_owned())
                .collect(),
            timezone: c.timezone.0.name().to_owned(),
        })
        .collect();
    let core = shared.snapshot();
    let wm = core.watermark;
    Json(Overview {
        customers,
        now: format_ms(core.now),
        watermark: (wm > Millis::MIN).then(|| format_ms(wm)),
        records_read: core.records_read,
        open_incidents: core.open.values().filter(|i| who.sees(&i.customer)).count(),
    })
}

/// Prometheus metrics, in the OpenMetrics text format `prometheus-client` writes
/// (served as such: under the classic `text/plain` type a scraper would
/// misread its counter families).
#[utoipa::path(get, path = "/metrics", responses((status = 200, content_type = "application/openmetrics-text", body = String)))]
pub async fn metrics(State(shared): Shared_) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        shared
            .metrics
            .render(&shared.live_snapshot().engine, &shared.config.burn_alerts),
    )
        .into_response()
}

/// Liveness.
#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Object)))]
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

/// Readiness: state restored and partitions assigned.
#[utoipa::path(get, path = "/readyz", responses((status = 200, body = Object), (status = 503, body = Object)))]
pub async fn readyz(State(shared): Shared_) -> Response {
    if shared.is_ready() {
        Json(serde_json::json!({ "status": "ready" })).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({ "status": "starting" })),
        )
            .into_response()
    }
}
