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
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::ApiError;
use crate::config::Config;
use crate::event::Topic;
use crate::ingest::{Event, Rejected, Translated, alertmanager, events, jira};
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

async fn ingest(
    shared: Arc<Shared>,
    who: Principal,
    endpoint: &'static str,
    body: Result<Bytes, BytesRejection>,
    translate: Translate,
) -> Result<Response, ApiError> {
    who.check_ingest()?;
    let body = body?;
    let worker = shared.clone();
    // Parsing up to 8 MiB, reading the engine for the tenancy check and waiting
    // for Kafka's acknowledgement all happen off the async workers.
    let response = tokio::task::spawn_blocking(move || {
        let mut translated = translate(&worker.config, &body).unwrap_or_else(|whole| Translated {
            rejected: vec![whole],
            ..Translated::default()
        });
        let max_future = worker.config.engine.max_future.0;
        translated.refuse_future(worker.intake.now().saturating_add(max_future));
        check_tenancy(&worker, &who, &translated.events)?;
        publish(&worker, endpoint, translated)
    })
    .await
    .map_err(ApiError::internal)??;
    shared
        .metrics
        .count_ingest(endpoint, "accepted", response.accepted);
    shared
        .metrics
        .count_ingest(endpoint, "duplicate", response.duplicates);
    shared
        .metrics
        .count_ingest(endpoint, "ignored", response.ignored);
    shared
        .metrics
        .count_ingest(endpoint, "rejected", response.rejected.len());
    let status = if response.rejected.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((status, Json(response)).into_response())
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
            Topic::Monitoring => shared
                .config
                .service(&e.key)
                .map(|s| s.customer.get_ref().clone()),
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
                        Some(ticket.customer.clone())
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
        return Err(ApiError::unavailable(e));
    }
    if !t.rejected.is_empty() {
        let source = format!("http:{endpoint}");
        let dead: Vec<_> = t.rejected.iter().map(|r| r.dead_letter(&source)).collect();
        shared
            .intake
            .dead_letter(&dead)
            .map_err(ApiError::unavailable)?;
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
