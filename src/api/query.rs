//! `POST /v1/query`: read-only DataFusion SQL over the state tables (admin).
//!
//! A query cannot hurt the process: its text is capped, expressions nested deeper
//! than [`MAX_EXPR_DEPTH`] are refused before planning (DataFusion's own recursion
//! protection covers the rest), the memory all queries hold together is bounded
//! by `api.query_memory`, and queries run on their own runtime, at most
//! [`MAX_RUNNING`] at a time, so `/healthz` and reports answer meanwhile. The
//! time limit is kept by the API's runtime; every operator of a plan yields
//! regularly, so a query stopped at the limit also frees its place.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::{Extension, Json};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::Dialect;
use datafusion::execution::context::{SQLOptions, SessionConfig};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{Expr, Visit, Visitor};
use serde::{Deserialize, Serialize};
use tokio::sync::Semaphore;
use utoipa::ToSchema;

use super::auth::Principal;
use super::error::ApiError;
use crate::config::Config;
use crate::state::Shared;

/// Rows returned at most.
const MAX_ROWS: usize = 10_000;
/// Time a query may run.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest SQL text accepted, bytes.
pub const MAX_SQL_LEN: usize = 16 * 1024;
/// Deepest expression nesting accepted.
pub const MAX_EXPR_DEPTH: usize = 64;
/// Queries running at once; more are answered 429.
const MAX_RUNNING: usize = 2;
/// Stack of the query threads: planning walks expression trees recursively.
const QUERY_STACK: usize = 32 * 1024 * 1024;

/// A read-only SQL query over the state tables.
#[derive(Debug, Deserialize, ToSchema)]
pub struct QueryRequest {
    /// One SELECT statement. Tables: availability_intervals, availability_buckets,
    /// tickets, incidents, capacity_hours.
    #[schema(min_length = 1)]
    pub sql: String,
    /// Row limit (default 1000).
    #[schema(minimum = 0, maximum = 10_000)]
    pub limit: Option<usize>,
}

/// Query result.
#[derive(Debug, Serialize, ToSchema)]
pub struct QueryResponse {
    /// Column names.
    pub columns: Vec<String>,
    /// Rows as objects.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<serde_json::Value>,
    /// True when rows were cut at the limit.
    pub truncated: bool,
}

/// Where queries run: a runtime of their own, a bound on how many run at once,
/// and one memory pool they share.
pub struct QueryEngine {
    runtime: Option<tokio::runtime::Runtime>,
    running: Arc<Semaphore>,
    memory: Arc<RuntimeEnv>,
}

impl QueryEngine {
    /// An engine whose queries share `api.query_memory` bytes.
    pub fn new(config: &Config) -> std::io::Result<Self> {
        let limit = config.api.as_ref().map_or_else(
            || crate::config::ApiConfig::default().query_memory,
            |a| a.query_memory,
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(MAX_RUNNING)
            .thread_name("slaflow-query")
            .thread_stack_size(QUERY_STACK)
            .enable_time()
            .build()?;
        // No spilling: a query that needs more memory than allowed is refused,
        // not moved to the API host's disk.
        let memory = RuntimeEnvBuilder::new()
            .with_disk_manager_builder(
                DiskManagerBuilder::default().with_mode(DiskManagerMode::Disabled),
            )
            .with_memory_limit(usize::try_from(limit.as_u64()).unwrap_or(usize::MAX), 1.0)
            .build_arc()
            .map_err(std::io::Error::other)?;
        Ok(QueryEngine {
            runtime: Some(runtime),
            running: Arc::new(Semaphore::new(MAX_RUNNING)),
            memory,
        })
    }
}

impl Drop for QueryEngine {
    fn drop(&mut self) {
        // The API may be dropped inside an async context, where a blocking
        // runtime shutdown would panic.
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Runs read-only DataFusion SQL over the state tables (admin).
#[utoipa::path(post, path = "/v1/query", request_body = QueryRequest, security(("bearer" = [])),
    responses((status = 200, body = QueryResponse), (status = 400, description = "bad SQL, not read-only, too deep, too big or too slow"),
        (status = 401), (status = 403), (status = 413), (status = 429, description = "too many queries running")))]
pub async fn query(
    State(shared): State<Arc<Shared>>,
    Extension(engine): Extension<Arc<QueryEngine>>,
    who: Principal,
    body: Result<Json<QueryRequest>, JsonRejection>,
) -> Result<Json<QueryResponse>, ApiError> {
    who.check_admin()?;
    let Json(req) = body?;
    if req.sql.len() > MAX_SQL_LEN {
        return Err(ApiError::bad_request(format!(
            "SQL text longer than {MAX_SQL_LEN} bytes"
        )));
    }
    let limit = req.limit.unwrap_or(1000);
    if limit > MAX_ROWS {
        return Err(ApiError::bad_request(format!(
            "limit {limit} is above {MAX_ROWS}"
        )));
    }
    let permit = engine.running.clone().try_acquire_owned().map_err(|_| {
        ApiError::too_many_requests(format!("{MAX_RUNNING} queries are running; retry later"))
    })?;
    let Some(runtime) = &engine.runtime else {
        return Err(ApiError::unavailable("query engine stopped"));
    };
    let memory = engine.memory.clone();
    let task = runtime.spawn(async move {
        let _permit = permit;
        execute(&shared, memory, &req.sql, limit).await
    });
    let abort = task.abort_handle();
    match tokio::time::timeout(QUERY_TIMEOUT, task).await {
        Ok(Ok(result)) => result.map(Json),
        // The SQL engine panicked on this statement (a DataFusion bug the input
        // reached): the statement is refused, the process goes on.
        Ok(Err(e)) if e.is_panic() => {
            tracing::warn!(error = %e, "query panicked inside DataFusion");
            Err(ApiError::bad_request(
                "the SQL engine failed on this statement",
            ))
        }
        Ok(Err(e)) => Err(ApiError::internal(e)),
        Err(_) => {
            // A plan that never yields keeps its thread until it ends; the permit
            // it holds keeps new queries from piling up behind it.
            abort.abort();
            Err(ApiError::bad_request(format!(
                "query took longer than {}s",
                QUERY_TIMEOUT.as_secs()
            )))
        }
    }
}

async fn execute(
    shared: &Shared,
    memory: Arc<RuntimeEnv>,
    sql: &str,
    limit: usize,
) -> Result<QueryResponse, ApiError> {
    let tables = shared.snapshot().tables().map_err(ApiError::internal)?;
    let ctx = tables
        .session_with(SessionConfig::new(), memory)
        .map_err(ApiError::internal)?;
    let bad = |e: datafusion::error::DataFusionError| ApiError::bad_request(e.to_string());
    let statement = ctx
        .state()
        .sql_to_statement(sql, &Dialect::Generic)
        .map_err(bad)?;
    check_depth(&statement)?;
    let options = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let plan = ctx
        .state()
        .statement_to_plan(statement)
        .await
        .map_err(bad)?;
    options.verify_plan(&plan).map_err(bad)?;
    let df = ctx.execute_logical_plan(plan).await.map_err(bad)?;
    let physical = (df.limit(0, Some(limit + 1)).map_err(bad)?)
        .create_physical_plan()
        .await
        .map_err(bad)?;
    let batches = collect(yielding(physical).map_err(bad)?, ctx.task_ctx())
        .await
        .map_err(bad)?;
    let columns: Vec<String> = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
    let refs: Vec<&datafusion::arrow::record_batch::RecordBatch> = batches.iter().collect();
    writer.write_batches(&refs).map_err(ApiError::internal)?;
    writer.finish().map_err(ApiError::internal)?;
    let buf = writer.into_inner();
    let mut rows: Vec<serde_json::Value> = if buf.is_empty() {
        Vec::new()
    } else {
        serde_json::from_slice(&buf).map_err(ApiError::internal)?
    };
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    Ok(QueryResponse {
        columns,
        rows,
        truncated,
    })
}

/// `plan` with every operator's output spending the task's scheduling budget.
/// DataFusion spends it only where batches come from (scans, exchanges), so
/// an operator that makes many batches from few, as a cross join does, would
/// run for minutes without yielding; a task that never yields cannot be
/// stopped when its time is up, and keeps its place among [`MAX_RUNNING`].
fn yielding(plan: Arc<dyn ExecutionPlan>) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
    let wrapped = plan.transform_up(|node| {
        Ok(if node.children().is_empty() {
            Transformed::no(node)
        } else {
            Transformed::yes(Arc::new(CooperativeExec::new(node)) as Arc<dyn ExecutionPlan>)
        })
    })?;
    Ok(wrapped.data)
}

/// Refuses expressions nested deeper than [`MAX_EXPR_DEPTH`] (e.g. `1+1+…+1`
/// with thousands of terms, which the parser builds without recursing).
fn check_depth(statement: &DfStatement) -> Result<(), ApiError> {
    struct Depth(usize);
    impl Visitor for Depth {
        type Break = ();
        fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.0 += 1;
            if self.0 > MAX_EXPR_DEPTH {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<()> {
            self.0 -= 1;
            ControlFlow::Continue(())
        }
    }
    let DfStatement::Statement(statement) = statement else {
        return Err(ApiError::bad_request("only SELECT statements are allowed"));
    };
    match statement.visit(&mut Depth(0)) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(()) => Err(ApiError::bad_request(format!(
            "expression nested deeper than {MAX_EXPR_DEPTH} levels"
        ))),
    }
}
