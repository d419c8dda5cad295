//! `GET /v1/evidence`: a live evidence pack as a gzipped tar (contract section 12).
//!
//! Both input topics are read back by offset and replayed like files, so
//! `slaflow verify` can re-read the same ranges and re-derive the same bytes.
//! One pack is built at a time, on the blocking pool, and a pack reads at most
//! `api.evidence_max_records` records.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::Semaphore;
use utoipa::IntoParams;

use super::auth::Principal;
use super::error::ApiError;
use super::routes::customer_param;
use crate::evidence::{EvidenceError, live_pack, parse_month, tar_gz};
use crate::source::kafka_range::RangeError;
use crate::state::Shared;
use crate::time::wall_now;

/// Packs being built: one at a time, others are answered 429.
static BUILDING: Semaphore = Semaphore::const_new(1);

/// `customer`, `month`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EvidenceParams {
    /// Customer id; required with an admin token, a customer token's own by default.
    #[param(required = true, min_length = 1)]
    customer: Option<String>,
    /// UTC calendar month, `YYYY-MM`.
    #[param(required = true, pattern = "^[0-9]{4}-(0[1-9]|1[0-2])$")]
    month: Option<String>,
}

/// The evidence pack of a customer's month, made from the input topics.
#[utoipa::path(get, path = "/v1/evidence", params(EvidenceParams), security(("bearer" = [])),
    responses((status = 200, content_type = "application/gzip", description = "the pack: a gzipped tar of one folder"),
        (status = 400, description = "bad parameters, or more records than a live pack reads"), (status = 401), (status = 403),
        (status = 404, description = "unknown customer, or no Kafka input (demo)"),
        (status = 429, description = "another pack is being built"), (status = 503, description = "Kafka unavailable")))]
pub async fn evidence(
    State(shared): State<Arc<Shared>>,
    who: Principal,
    q: Result<Query<EvidenceParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let customer = customer_param(&shared, &who, &q.customer)?;
    let month = q
        .month
        .ok_or_else(|| ApiError::bad_request("missing `month` (YYYY-MM)"))?;
    parse_month(&month).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if shared.config.kafka.is_none() {
        return Err(ApiError::not_found(
            "live evidence packs read the input topics back from Kafka, and this instance has none: run `slaflow evidence` on files",
        ));
    }
    let permit = (BUILDING.try_acquire()).map_err(|_| {
        ApiError::too_many_requests("an evidence pack is being built; retry shortly")
    })?;
    let (config, now) = (shared.config.clone(), wall_now());
    // Also a file name in a header: only characters that need no quoting.
    let safe: String = (customer.chars())
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let name = format!("evidence-{safe}-{month}");
    let built = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        live_pack(config, &customer, &month, now)
    });
    let files = built.await.map_err(ApiError::internal)?.map_err(|e| match e {
        EvidenceError::Kafka(RangeError::TooMany(most)) => ApiError::bad_request(format!(
            "the input topics hold more than {most} records (api.evidence_max_records): export them and run `slaflow evidence` on the files"
        )),
        EvidenceError::Kafka(e) => ApiError::unavailable(format!("cannot read the input topics: {e}")),
        e => ApiError::internal(e),
    })?;
    let mtime = u64::try_from(now / 1000).unwrap_or(0);
    let body = tar_gz(&name, &files, mtime).map_err(ApiError::internal)?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/gzip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}.tar.gz\""),
            ),
        ],
        body,
    )
        .into_response())
}
