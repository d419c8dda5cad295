//! The engine's state as Arrow tables: what reports and `POST /v1/query` read.

use std::sync::Arc;

use datafusion::arrow::array::{
    BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UInt64Array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext, col};

use super::ReportError;
use crate::engine::Engine;
use crate::engine::availability::State;
use crate::engine::incidents::Incident;
use crate::engine::tickets::{ClockKind, Ticket, Verdict};

/// A consistent snapshot of state tables, by name:
/// - `availability_intervals(service, state, start_ms, end_ms)`;
/// - `availability_buckets(service, bucket_ms, up_ms, degraded_ms, down_ms, maintenance_ms, nodata_ms)`;
/// - `exclusions(service, exclusion_id, start_ms, end_ms, reason, approved_by, versions, ts_ms)`: the versions in force;
/// - `counter_increases(service, counter, ts_ms, increase, excluded)`: the counted increases of the counters request SLOs read (section 14), `excluded` under the exclusions in force;
/// - `changes(service, change_id, ts_ms, outcome, induced_outages)`: the changes kept (section 15);
/// - `tickets(ticket, customer, priority, created_ms, response_ms, response_verdict, resolution_ms, resolution_verdict)`;
/// - `incidents(incident_id, action, rule, severity, customer, service, ticket, started_ms, at_ms, summary)`;
/// - `capacity_hours(service, resource, metric, hour_ms, count, min, max, mean, p50, p95, p99, util_mean, util_max, util_p95)`.
#[derive(Debug, Clone)]
pub struct Tables {
    tables: Vec<(&'static str, Table)>,
}

/// One table's rows and, when they are known to be in that order, the
/// columns they are sorted by (ascending): DataFusion then answers an
/// `ORDER BY` on them without sorting. The order is checked on the rows
/// themselves when the table is built, never assumed: a wrong declared order
/// would make DataFusion return rows out of order.
#[derive(Debug, Clone)]
struct Table {
    batch: RecordBatch,
    sorted_by: &'static [&'static str],
}

impl Table {
    fn unsorted(batch: RecordBatch) -> Self {
        Table {
            batch,
            sorted_by: &[],
        }
    }
}

/// `columns` when `keys`, one per row in the columns' order, never decrease;
/// else no columns.
fn order_if_sorted<K: PartialOrd>(
    columns: &'static [&'static str],
    keys: impl Iterator<Item = K>,
) -> &'static [&'static str] {
    if keys.is_sorted() { columns } else { &[] }
}

impl Tables {
    /// Snapshots every table (for `POST /v1/query`).
    pub fn from_engine(engine: &Engine, incidents: &[Incident]) -> Result<Tables, ReportError> {
        Ok(Tables {
            tables: vec![
                ("availability_intervals", availability_intervals(engine)?),
                (
                    "availability_buckets",
                    Table::unsorted(availability_buckets(engine)?),
                ),
                ("exclusions", exclusions_table(engine)?),
                ("counter_increases", counter_increases(engine)?),
                ("changes", changes_table(engine)?),
                ("tickets", Table::unsorted(tickets_table(engine)?)),
                ("incidents", Table::unsorted(incidents_table(incidents)?)),
                ("capacity_hours", Table::unsorted(capacity_hours(engine)?)),
            ],
        })
    }

    /// Snapshots only what the SLA report's queries read, so serving a report does
    /// not compute capacity percentiles or copy buckets.
    pub fn for_sla_report(engine: &Engine) -> Result<Tables, ReportError> {
        Ok(Tables {
            tables: vec![
                ("availability_intervals", availability_intervals(engine)?),
                ("exclusions", exclusions_table(engine)?),
                ("counter_increases", counter_increases(engine)?),
                ("changes", changes_table(engine)?),
                ("tickets", Table::unsorted(tickets_table(engine)?)),
            ],
        })
    }

    /// A DataFusion session with every table of the snapshot registered, for
    /// the reports' queries. One partition: the tables are small and in
    /// memory, and split across cores their rows would be merged back into
    /// the order they are built in.
    pub fn session(&self) -> Result<SessionContext, ReportError> {
        let config = SessionConfig::new().with_target_partitions(1);
        self.session_in(SessionContext::new_with_config(config))
    }

    /// The tables in a session with its own settings and memory pool.
    pub fn session_with(
        &self,
        config: datafusion::execution::context::SessionConfig,
        runtime: Arc<datafusion::execution::runtime_env::RuntimeEnv>,
    ) -> Result<SessionContext, ReportError> {
        self.session_in(SessionContext::new_with_config_rt(config, runtime))
    }

    fn session_in(&self, ctx: SessionContext) -> Result<SessionContext, ReportError> {
        for (name, t) in &self.tables {
            let order: Vec<_> = (t.sorted_by.iter())
                .map(|c| col(*c).sort(true, false))
                .collect();
            let mem = MemTable::try_new(t.batch.schema(), vec![vec![t.batch.clone()]])?;
            let mem = if order.is_empty() {
                mem
            } else {
                mem.with_sort_order(vec![order])
            };
            ctx.register_table(*name, Arc::new(mem))?;
        }
        Ok(ctx)
    }
}

fn batch(
    fields: Vec<Field>,
    cols: Vec<datafusion::arrow::array::ArrayRef>,
) -> Result<RecordBatch, ReportError> {
    Ok(RecordBatch::try_new(Arc::new(Schema::new(fields)), cols)?)
}

/// `availability_intervals(service, state, start_ms, end_ms)`: every maximal state
/// interval of every service, up to each service's accounted time.
fn availability_intervals(engine: &Engine) -> Result<Table, ReportError> {
    let (mut service, mut state, mut start, mut end) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (id, t) in engine.services() {
        for (a, b, s) in t.intervals() {
            service.push(id);
            state.push(s.as_str());
            start.push(a);
            end.push(b);
        }
    }
    intervals_table(service, state, start, end)
}

/// The `availability_intervals` table of these rows (one per index), with
/// its order when they are in (service, start) order.
fn intervals_table(
    service: Vec<&str>,
    state: Vec<&str>,
    start: Vec<i64>,
    end: Vec<i64>,
) -> Result<Table, ReportError> {
    let sorted_by = order_if_sorted(&["service", "start_ms"], service.iter().zip(&start));
    let batch = batch(
        vec![
            Field::new("service", DataType::Utf8, false),
            Field::new("state", DataType::Utf8, false),
            Field::new("start_ms", DataType::Int64, false),
            Field::new("end_ms", DataType::Int64, false),
        ],
        vec![
            Arc::new(StringArray::from(service)),
            Arc::new(StringArray::from(state)),
            Arc::new(Int64Array::from(start)),
            Arc::new(Int64Array::from(end)),
        ],
    )?;
    Ok(Table { batch, sorted_by })
}

/// `exclusions(service, exclusion_id, start_ms, end_ms, reason, approved_by,
/// versions, ts_ms)`: every exclusion in force (contract section 13), the
/// version applied last with the count of versions applied.
fn exclusions_table(engine: &Engine) -> Result<Table, ReportError> {
    let (mut service, mut id, mut start, mut end) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut reason, mut approver, mut versions, mut ts) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (svc, t) in engine.services() {
        for (x, e) in t.exclusions().iter() {
            service.push(svc);
            id.push(x.as_str());
            start.push(e.start);
            end.push(e.end);
            reason.push(e.reason.as_str());
            approver.push(e.approved_by.as_str());
            versions.push(i64::from(e.versions));
            ts.push(e.ts);
        }
    }
    let keys = (service.iter().zip(&start).zip(&id)).map(|((s, t), x)| (s, t, x));
    let sorted_by = order_if_sorted(&["service", "start_ms", "exclusion_id"], keys);
    let batch = batch(
        vec![
            Field::new("service", DataType::Utf8, false),
            Field::new("exclusion_id", DataType::Utf8, false),
            Field::new("start_ms", DataType::Int64, false),
            Field::new("end_ms", DataType::Int64, false),
            Field::new("reason", DataType::Utf8, false),
            Field::new("approved_by", DataType::Utf8, false),
            Field::new("versions", DataType::Int64, false),
            Field::new("ts_ms", DataType::Int64, false),
        ],
        vec![
            Arc::new(StringArray::from(service)),
            Arc::new(StringArray::from(id)),
            Arc::new(Int64Array::from(start)),
            Arc::new(Int64Array::from(end)),
            Arc::new(StringArray::from(reason)),
            Arc::new(StringArray::from(approver)),
            Arc::new(Int64Array::from(versions)),
            Arc::new(Int64Array::from(ts)),
        ],
    )?;
    Ok(Table { batch, sorted_by })
}

/// `counter_increases(service, counter, ts_ms, increase, excluded)`: every
/// counted increase kept (maintenance and outside hours already dropped),
/// `excluded` when an exclusion in force holds its sample time.
fn counter_increases(engine: &Engine) -> Result<Table, ReportError> {
    let (mut service, mut counter, mut ts, mut increase, mut excluded) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (svc, t) in engine.services() {
        for (name, log) in t.requests().logs() {
            for (x, inc) in log.increases() {
                service.push(svc);
                counter.push(name.as_str());
                ts.push(x);
                increase.push(inc);
                excluded.push(t.exclusions().at(x).0);
            }
        }
    }
    let keys = (service.iter().zip(&counter).zip(&ts)).map(|((s, c), t)| (s, c, t));
    let sorted_by = order_if_sorted(&["service", "counter", "ts_ms"], keys);
    let batch = batch(
        vec![
            Field::new("service", DataType::Utf8, false),
            Field::new("counter", DataType::Utf8, false),
            Field::new("ts_ms", DataType::Int64, false),
            Field::new("increase", DataType::Float64, false),
            Field::new("excluded", DataType::Boolean, false),
        ],
        vec![
            Arc::new(StringArray::from(service)),
            Arc::new(StringArray::from(counter)),
            Arc::new(Int64Array::from(ts)),
            Arc::new(Float64Array::from(increase)),
            Arc::new(BooleanArray::from(excluded)),
        ],
    )?;
    Ok(Table { batch, sorted_by })
}

/// `changes(service, change_id, ts_ms, outcome, induced_outages)`: every
/// change kept, with its last outcome and the outages attributed to it.
fn changes_table(engine: &Engine) -> Result<Table, ReportError> {
    let (mut service, mut id, mut ts, mut outcome, mut induced) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (svc, t) in engine.services() {
        for c in t.changes().iter() {
            service.push(svc);
            id.push(c.id.as_str());
            ts.push(c.ts);
            outcome.push(c.outcome.as_str());
            induced.push(i64::try_from(c.induced.len()).unwrap_or(i64::MAX));
        }
    }
    let keys = (service.iter().zip(&ts).zip(&id)).map(|((s, t), x)| (s, t, x));
    let sorted_by = order_if_sorted(&["service", "ts_ms", "change_id"], keys);
    let batch = batch(
        vec![
            Field::new("service", DataType::Utf8, false),
            Field::new("change_id", DataType::Utf8, false),
            Field::new("ts_ms", DataType::Int64, false),
            Field::new("outcome", DataType::Utf8, false),
            Field::new("induced_outages", DataType::Int64, false),
        ],
        vec![
            Arc::new(StringArray::from(service)),
            Arc::new(StringArray::from(id)),
            Arc::new(Int64Array::from(ts)),
            Arc::new(StringArray::from(outcome)),
            Arc::new(Int64Array::from(induced)),
        ],
    )?;
    Ok(Table { batch, sorted_by })
}

/// `tickets(ticket, customer, priority, created_ms, response_ms, response_verdict,
/// resolution_ms, resolution_verdict)`; `*_ms` is null while the clock is not stopped.
fn tickets_table(engine: &Engine) -> Result<RecordBatch, ReportError> {
    let mut v: Vec<&Ticket> = engine.tickets().iter().collect();
    v.sort_by(|a, b| a.id.cmp(&b.id));
    let verdict = |t: &Ticket, k: ClockKind| match t.clock(k).verdict() {
        Verdict::Met => "met",
        Verdict::Breached => "breached",
        Verdict::Pending => "pending",
    };
    let schema = Schema::new(vec![
        Field::new("ticket", DataType::Utf8, false),
        Field::new("customer", DataType::Utf8, false),
        Field::new("priority", DataType::Utf8, false),
        Field::new("created_ms", DataType::Int64, false),
        Field::new("response_ms", DataType::Int64, true),
        Field::new("response_verdict", DataType::Utf8, false),
        Field::new("resolution_ms", DataType::Int64, true),
        Field::new("resolution_verdict", DataType::Utf8, false),
    ]);
    Ok(RecordBatch::try_new(
        Arc::new(schema),
        vec![
            Arc::new(StringArray::from_iter_values(
                v.iter().map(|t| t.id.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                v.iter().map(|t| t.customer.as_str()),
            )),
            Arc::new(StringArray::from_iter_values(
                v.iter().map(|t| t.priority.as_str()),
            )),
            Arc::new(Int64Array::from_iter_values(v.iter().map(|t| t.created))),
            Arc::new(Int64Array::from_iter(
                v.iter().map(|t| t.stopped_ms(ClockKind::Response)),
            )),
            Arc::new(StringArray::from_iter_values(
                v.iter().map(|t| verdict(t, ClockKind::Response)),
            )),
            Arc::new(Int64Array::from_iter(
                v.iter().map(|t| t.stopped_ms(ClockKind::Resolution)),
            )),
            Arc::new(StringArray::from_iter_values(
                v.iter().map(|t| verdict(t, ClockKind::Resolution)),
            )),
        ],
    )?)
}

fn availability_buckets(engine: &Engine) -> Result<RecordBatch, ReportError> {
    let mut svc = Vec::new();
    let mut start = Vec::new();
    let mut per: [Vec<i64>; 5] = Default::default();
    for (id, t) in engine.services() {
        for (b, d) in t.buckets() {
            svc.push(id);
            start.push(b);
            for s in State::ALL {
                per[s as usize].push(d[s]);
            }
        }
    }
    let mut fields = vec![
        Field::new("service", DataType::Utf8, false),
        Field::new("bucket_ms", DataType::Int64, false),
    ];
    let mut cols: Vec<datafusion::arrow::array::ArrayRef> = vec![
        Arc::new(StringArray::from(svc)),
        Arc::new(Int64Array::from(start)),
    ];
    for s in State::ALL {
        fields.push(Field::new(
            format!("{}_ms", s.as_str()),
            DataType::Int64,
            false,
        ));
        cols.push(Arc::new(Int64Array::from(std::mem::take(
            &mut per[s as usize],
        ))));
    }
    batch(fields, cols)
}

fn incidents_table(incidents: &[Incident]) -> Result<RecordBatch, ReportError> {
    let s = |f: fn(&Incident) -> Option<&str>| {
        Arc::new(StringArray::from_iter(incidents.iter().map(f)))
    };
    batch(
        vec![
            Field::new("incident_id", DataType::Utf8, true),
            Field::new("action", DataType::Utf8, true),
            Field::new("rule", DataType::Utf8, true),
            Field::new("severity", DataType::Utf8, true),
            Field::new("customer", DataType::Utf8, true),
            Field::new("service", DataType::Utf8, true),
            Field::new("ticket", DataType::Utf8, true),
            Field::new("started_ms", DataType::Int64, false),
            Field::new("at_ms", DataType::Int64, false),
            Field::new("summary", DataType::Utf8, true),
        ],
        vec![
            s(|i| Some(i.incident_id.as_str())),
            s(|i| Some(i.action.as_str())),
            s(|i| Some(i.rule.as_str())),
            s(|i| Some(i.severity.as_str())),
            s(|i| Some(i.customer.as_str())),
            s(|i| i.service.as_deref()),
            s(|i| i.ticket.as_deref()),
            Arc::new(Int64Array::from_iter_values(
                incidents.iter().map(|i| i.started_ms),
            )),
            Arc::new(Int64Array::from_iter_values(
                incidents.iter().map(|i| i.at_ms),
            )),
            s(|i| Some(i.summary.as_str())),
        ],
    )
}

fn capacity_hours(engine: &Engine) -> Result<RecordBatch, ReportError> {
    let mut svc = Vec::new();
    let mut res = Vec::new();
    let mut met = Vec::new();
    let mut hour = Vec::new();
    let mut count = Vec::new();
    let mut f: [Vec<f64>; 6] = Default::default();
    let mut u: [Vec<Option<f64>>; 3] = Default::default();
    for s in engine.capacity().values() {
        for (h, st) in s.hours() {
            svc.push(s.service.as_str());
            res.push(s.resource.as_str());
            met.push(s.metric.as_str());
            hour.push(*h);
            count.push(st.value.count());
            for (i, v) in [
                st.value.min(),
                st.value.max(),
                st.value.mean(),
                st.value.quantile(0.5),
                st.value.quantile(0.95),
                st.value.quantile(0.99),
            ]
            .into_iter()
            .enumerate()
            {
                f[i].push(v);
            }
            u[0].push(st.util.as_ref().map(|d| d.mean()));
            u[1].push(st.util.as_ref().map(|d| d.max()));
            u[2].push(st.util.as_ref().map(|d| d.quantile(0.95)));
        }
    }
    let mut fields = vec![
        Field::new("service", DataType::Utf8, false),
        Field::new("resource", DataType::Utf8, false),
        Field::new("metric", DataType::Utf8, false),
        Field::new("hour_ms", DataType::Int64, false),
        Field::new("count", DataType::UInt64, false),
    ];
    let mut cols: Vec<datafusion::arrow::array::ArrayRef> = vec![
        Arc::new(StringArray::from(svc)),
        Arc::new(StringArray::from(res)),
        Arc::new(StringArray::from(met)),
        Arc::new(Int64Array::from(hour)),
        Arc::new(UInt64Array::from(count)),
    ];
    for (i, name) in ["min", "max", "mean", "p50", "p95", "p99"]
        .into_iter()
        .enumerate()
    {
        fields.push(Field::new(name, DataType::Float64, false));
        cols.push(Arc::new(Float64Array::from(std::mem::take(&mut f[i]))));
    }
    for (i, name) in ["util_mean", "util_max", "util_p95"]
        .into_iter()
        .enumerate()
    {
        fields.push(Field::new(name, DataType::Float64, true));
        cols.push(Arc::new(Float64Array::from(std::mem::take(&mut u[i]))));
    }
    batch(fields, cols)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;

    use super::*;
    use crate::report::{AVAILABILITY_SQL, query};

    /// `availability_intervals` of `(service, start_ms)` rows, as built.
    fn intervals(rows: &[(&str, i64)]) -> Tables {
        let service = rows.iter().map(|r| r.0).collect();
        let start: Vec<i64> = rows.iter().map(|r| r.1).collect();
        let end = start.iter().map(|s| s + 10).collect();
        let table = intervals_table(service, vec!["up"; rows.len()], start, end).expect("table");
        Tables {
            tables: vec![("availability_intervals", table)],
        }
    }

    /// The report's interval query on `t`: its rows and whether its plan sorts.
    fn run(t: &Tables) -> (Vec<(String, i64)>, bool) {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        let ctx = t.session().expect("session");
        let explain = format!("EXPLAIN {AVAILABILITY_SQL}");
        let plan = rt
            .block_on(query(&ctx, &explain, 0, 1000))
            .expect("explain");
        let plan = format!(
            "{}",
            datafusion::arrow::util::pretty::pretty_format_batches(&plan).expect("plan")
        );
        let batches = rt
            .block_on(query(&ctx, AVAILABILITY_SQL, 0, 1000))
            .expect("rows");
        let mut rows = Vec::new();
        for b in &batches {
            let (s, t) = (
                b.column(0).as_string::<i32>(),
                b.column(2).as_primitive::<Int64Type>(),
            );
            rows.extend((0..b.num_rows()).map(|r| (s.value(r).to_owned(), t.value(r))));
        }
        let physical = plan.split("physical_plan").nth(1).expect("a physical plan");
        (rows, physical.contains("Sort"))
    }

    #[test]
    fn rows_built_in_order_are_queried_in_order_without_a_sort() {
        let (rows, sorts) = run(&intervals(&[("a", 1), ("a", 5), ("b", 0), ("b", 2)]));
        assert!(
            !sorts,
            "a table declared sorted is neither sorted nor merged"
        );
        let want = [("a", 1), ("a", 5), ("b", 0), ("b", 2)].map(|(s, t)| (s.to_owned(), t));
        assert_eq!(rows, want);
    }

    #[test]
    fn rows_out_of_order_are_not_declared_sorted_and_are_sorted_by_the_query() {
        let t = intervals(&[("b", 0), ("a", 5), ("a", 1)]);
        assert!(t.tables[0].1.sorted_by.is_empty());
        let (rows, sorts) = run(&t);
        assert!(sorts);
        let want = [("a", 1), ("a", 5), ("b", 0)].map(|(s, t)| (s.to_owned(), t));
        assert_eq!(rows, want);
    }

    #[test]
    fn equal_keys_are_in_order() {
        assert_eq!(order_if_sorted(&["x"], [1, 1, 2].iter()), &["x"]);
        assert!(order_if_sorted(&["x"], [1, 2, 1].iter()).is_empty());
    }
}
