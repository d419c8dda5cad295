//! `POST /v1/ingest/*`: Alertmanager and Jira webhooks and batches of contract
//! events, for an admin or an ingest token.
//!
//! Each request is translated (`crate::ingest`), valid events not published
//! recently are handed to the intake (Kafka in `run`), and every refused item gets
//! a dead letter. Answers: 200 when every item was accepted (or repeated, or
//! deliberately ignored); 400 when anything was refused, with the same body
//! listing what was accepted and what was not (retrying is harmless: accepted
//! events are not published twice); 503 when the intake is unavailable.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::ApiError;
use crate::config::Config;
use crate::event::Topic;
use crate::ingest::{Event, Rejected, Translated, alertmanager, events, github, jira, prometheus};
use crate::state::Shared;

/// What became of an ingest request.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResponse {
    /// Events published now.
    pub accepted: usize,
    /// Events already published recently (repeated notifications, retries).
    pub duplicates: usize,
    /// Items that map to no event by configuration (e.g. alerts mapped to `ignore`).
    pub ignored: usize,
    /// Items refused (each also written as a dead letter).
    pub rejected: Vec<Rejected>,
    /// Ids of the valid events, whether published now or before.
    pub event_ids: Vec<String>,
}

type Translate = fn(&Config, &[u8]) -> Result<Translated, Rejected>;

/// Translates, checks and publishes one body; also says whether the body as a
/// whole could not be read.
async fn ingest_body(
    shared: Arc<Shared>,
    who: Principal,
    endpoint: &'static str,
    body: Result<Bytes, BytesRejection>,
    translate: Translate,
) -> Result<(IngestResponse, bool), ApiError> {
    who.check_ingest()?;
    let body = body?;
    let worker = shared.clone();
    // Parsing up to 8 MiB, reading the engine for the tenancy check and waiting
    // for Kafka's acknowledgement all happen off the async workers.
    let (response, unreadable) = tokio::task::spawn_blocking(move || {
        let (mut translated, unreadable) = match translate(&worker.config, &body) {
            Ok(t) => (t, false),
            Err(whole) => {
                let rejected = vec![whole];
                (
                    Translated {
                        rejected,
                        ..Translated::default()
                    },
                    true,
                )
            }
        };
        let max_future = worker.config.engine.max_future.0;
        translated.refuse_future(worker.intake.now().saturating_add(max_future));
        check_exclusions(&who, &translated.events)?;
        check_tenancy(&worker, &who, &translated.events)?;
        publish(&worker, endpoint, translated).map(|r| (r, unreadable))
    })
    .await
    .map_err(ApiError::internal)??;
    let m = &shared.metrics;
    m.count_ingest(endpoint, "accepted", response.accepted);
    m.count_ingest(endpoint, "duplicate", response.duplicates);
    m.count_ingest(endpoint, "ignored", response.ignored);
    m.count_ingest(endpoint, "rejected", response.rejected.len());
    Ok((response, unreadable))
}

/// The JSON endpoints' answer: 200 when every item was accepted, 400 otherwise.
async fn ingest(
    shared: Arc<Shared>,
    who: Principal,
    endpoint: &'static str,
    body: Result<Bytes, BytesRejection>,
    translate: Translate,
) -> Result<Response, ApiError> {
    let (response, _) = ingest_body(shared, who, endpoint, body, translate).await?;
    let status = if response.rejected.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((status, Json(response)).into_response())
}

/// 403 for an exclusion from anything but an admin token: exclusions change
/// what the contract counts (contract section 13), like `POST /v1/exclusions`.
fn check_exclusions(who: &Principal, events: &[Event]) -> Result<(), ApiError> {
    if matches!(who, Principal::Admin) {
        return Ok(());
    }
    let monitoring = events.iter().filter(|e| e.topic == Topic::Monitoring);
    for e in monitoring.filter(|e| e.json.contains("exclusion")) {
        let v: serde_json::Value = serde_json::from_str(&e.json).unwrap_or_default();
        if v["kind"] == "exclusion" {
            return Err(ApiError::forbidden(format!(
                "item {}: exclusions need an admin token",
                e.index
            )));
        }
    }
    Ok(())
}

/// 403 unless the token may write every event: an ingest token limited to some
/// customers writes only their services and tickets.
fn check_tenancy(shared: &Shared, who: &Principal, events: &[Event]) -> Result<(), ApiError> {
    if matches!(who, Principal::Admin | Principal::Ingest(None)) {
        return Ok(());
    }
    // Tickets created earlier in this payload, by id.
    let mut created: HashMap<&str, String> = HashMap::new();
    for e in events {
        let customer = match e.topic {
            Topic::Monitoring => shared.config.service(&e.key).map(|s| s.customer.clone()),
            Topic::Tickets => {
                let v: serde_json::Value = serde_json::from_str(&e.json).unwrap_or_default();
                match v["customer"].as_str() {
                    Some(c) if v["type"] == "created" => {
                        created.insert(&e.key, c.to_owned());
                        Some(c.to_owned())
                    }
                    _ => created.get(e.key.as_str()).cloned().or_else(|| {
                        let snapshot = shared.snapshot();
                        let ticket = snapshot.engine.tickets().get(&e.key)?;
                        Some(ticket.customer.to_string())
                    }),
                }
            }
        };
        if !customer.is_some_and(|c| who.writes_for(&c)) {
            return Err(ApiError::forbidden(format!(
                "item {}: this token may not write events of {} {:?}",
                e.index,
                if e.topic == Topic::Monitoring {
                    "service"
                } else {
                    "ticket"
                },
                e.key
            )));
        }
    }
    Ok(())
}

fn publish(shared: &Shared, endpoint: &str, t: Translated) -> Result<IngestResponse, ApiError> {
    let event_ids = t.events.iter().map(|e| e.event_id.clone()).collect();
    let (fresh, duplicates) = shared.recent.claim(t.events);
    if !fresh.is_empty()
        && let Err(e) = shared.intake.publish(&fresh)
    {
        shared.recent.forget(&fresh);
        return Err(e.into());
    }
    if !t.rejected.is_empty() {
        let source = format!("http:{endpoint}");
        let dead: Vec<_> = t.rejected.iter().map(|r| r.dead_letter(&source)).collect();
        shared.intake.dead_letter(&dead)?;
    }
    Ok(IngestResponse {
        accepted: fresh.len(),
        duplicates,
        ignored: t.ignored,
        rejected: t.rejected,
        event_ids,
    })
}

/// Prometheus Alertmanager webhook (payload version 4): firing alerts become
/// `down`/`degraded` probe events, resolved alerts `up` ones (see `[ingest.alertmanager]`).
#[utoipa::path(post, path = "/v1/ingest/alertmanager", request_body(content = Object, description = "Alertmanager webhook payload, version 4"),
    security(("bearer" = [])),
    responses((status = 200, body = IngestResponse), (status = 400, body = IngestResponse), (status = 401), (status = 403), (status = 413), (status = 503)))]
pub async fn alertmanager(
    State(shared): State<Arc<Shared>>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(
        shared,
        who,
        "/v1/ingest/alertmanager",
        body,
        alertmanager::translate,
    )
    .await
}

/// Contract events, as NDJSON or a JSON array; an object with `ticket` is a
/// ticket event, others are monitoring events.
#[utoipa::path(post, path = "/v1/ingest/events", request_body(content = String, description = "NDJSON or a JSON array of contract events"),
    security(("bearer" = [])),
    responses((status = 200, body = IngestResponse), (status = 400, body = IngestResponse), (status = 401), (status = 403), (status = 413), (status = 503)))]
pub async fn events(
    State(shared): State<Arc<Shared>>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(shared, who, "/v1/ingest/events", body, events::translate).await
}

/// Jira (Service Management) webhook: issue created/updated and comments become
/// ticket events (see `[ingest.jira]`).
#[utoipa::path(post, path = "/v1/ingest/jira", request_body(content = Object, description = "Jira webhook payload"),
    security(("bearer" = [])),
    responses((status = 200, body = IngestResponse), (status = 400, body = IngestResponse), (status = 401), (status = 403), (status = 413), (status = 503)))]
pub async fn jira(
    State(shared): State<Arc<Shared>>,
    who: Principal,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    ingest(shared, who, "/v1/ingest/jira", body, jira::translate).await
}

/// GitHub `deployment_status` webhook (contract section 15): authenticated by
/// `X-Hub-Signature-256` with `[ingest.github] secret`, not a bearer token.
/// Final states become change events (`success`, `failure`/`error` → failed);
/// other states, other environments and other events (`ping`) are ignored and
/// counted.
#[utoipa::path(post, path = "/v1/ingest/github", request_body(content = Object, description = "GitHub deployment_status webhook payload"),
    params(("X-Hub-Signature-256" = String, Header, description = "sha256=<HMAC-SHA256 of the body under the webhook secret, hex>"),
        ("X-GitHub-Event" = String, Header, description = "deployment_status (others are ignored)")),
    responses((status = 200, body = IngestResponse), (status = 400, body = IngestResponse), (status = 401, description = "no [ingest.github], or the signature does not match"), (status = 413), (status = 503)))]
pub async fn github(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body?;
    let Some(config) = &shared.config.ingest.github else {
        return Err(ApiError::unauthorized(
            "no [ingest.github] secret is configured",
        ));
    };
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    let tag = signature.and_then(|s| s.strip_prefix("sha256="));
    let secret = config.secret.as_bytes();
    if !tag.is_some_and(|t| crate::sign::hmac_matches(secret, &[&body], &t.to_ascii_lowercase())) {
        return Err(ApiError::unauthorized(
            "X-Hub-Signature-256 does not match the body",
        ));
    }
    let event = headers.get("x-github-event").and_then(|v| v.to_str().ok());
    let endpoint = "/v1/ingest/github";
    if event != Some("deployment_status") {
        shared.metrics.count_ingest(endpoint, "ignored", 1);
        let ignored = IngestResponse {
            accepted: 0,
            duplicates: 0,
            ignored: 1,
            rejected: Vec::new(),
            event_ids: Vec::new(),
        };
        return Ok((StatusCode::OK, Json(ignored)).into_response());
    }
    // The signature is the credential: the events may be any service's.
    ingest(
        shared,
        Principal::Ingest(None),
        endpoint,
        Ok(body),
        github::translate,
    )
    .await
}

/// Prometheus remote write 1.0 (a snappy-compressed protobuf `WriteRequest`):
/// `probe_success` samples become probe events and mapped series metric events
/// (see `[ingest.prometheus]`). 204 once every sample was published, ignored or
/// dead-lettered (an unknown service is a dead letter, not a reason for
/// Prometheus to resend); 400 for a body that cannot be read; 503 while Kafka is
/// unavailable, so Prometheus retries.
#[utoipa::path(post, path = "/v1/ingest/prometheus",
    request_body(content = Vec<u8>, content_type = "application/x-protobuf", description = "snappy-compressed prompb.WriteRequest (Content-Encoding: snappy)"),
    security(("bearer" = [])),
    responses((status = 204, description = "read: every sample published, ignored or dead-lettered"),
        (status = 400, description = "a body that is not a snappy-compressed WriteRequest, or not snappy-encoded"), (status = 401), (status = 403), (status = 413), (status = 503)))]
pub async fn prometheus(
    State(shared): State<Arc<Shared>>,
    who: Principal,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let encoding = headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes());
    if encoding.is_some_and(|e| !e.eq_ignore_ascii_case(b"snappy")) {
        return Err(ApiError::bad_request(
            "remote write 1.0 bodies are snappy-compressed: Content-Encoding must be snappy",
        ));
    }
    let endpoint = "/v1/ingest/prometheus";
    let (response, unreadable) =
        ingest_body(shared, who, endpoint, body, prometheus::translate).await?;
    match response.rejected.first() {
        Some(whole) if unreadable => Err(ApiError::bad_request(whole.error.clone())),
        _ => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}
