//! The API at dashboard rate (issue 29): concurrent keep-alive clients
//! against `slaflow`'s HTTP API over generated traffic, as the dashboard and
//! report consumers call it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use sha2::{Digest, Sha256};

use datafusion::physical_plan::collect;
use datafusion::scalar::ScalarValue;

use super::{Row, parse, traffic};
use crate::generate::{run_through, scenario_config};
use crate::ingest::NoIntake;
use crate::report::changes::CHANGES_SQL;
use crate::report::slo::SLOS_SQL;
use crate::report::{AVAILABILITY_SQL, EXCLUSIONS_SQL, TICKETS_SQL, Tables};
use crate::state::{Core, Shared};

/// The bench's admin token (the server stores only its hash).
const TOKEN: &str = "bench-admin-token";
/// How long each row's clients send requests.
const SECONDS: u64 = 5;

/// Rows of requests/s, mean and p99 latency with `clients` concurrent
/// clients, over `days` of generated traffic behind one published snapshot
/// (the demo between clock steps; a live instance publishes at most every
/// 200 ms): the same SLA report again and again (a dashboard refreshing),
/// an SLA report of a new period each time (nothing to reuse), and the
/// availability series.
pub fn api_rows(days: u32, clients: usize) -> Vec<Row> {
    let server = match Server::start(days) {
        Ok(s) => s,
        Err(e) => {
            return vec![Row {
                name: "API".into(),
                value: format!("not measured: {e}"),
                target: String::new(),
            }];
        }
    };
    let base = server.base.clone();
    let same = |_: u64| format!("{base}/v1/reports/sla?customer=acme");
    let end = server.end;
    let fresh = |k: u64| {
        let from = super::START + (k as i64 % 1_000_000) * 1000;
        format!("{base}/v1/reports/sla?customer=acme&from={from}&to={end}")
    };
    let series = |_: u64| format!("{base}/v1/services/web/availability?step=1h");
    let rows = [
        (
            "SLA report, the same again (a dashboard refreshing)",
            &same as &(dyn Fn(u64) -> String + Sync),
            "≥ 1,000 requests/s, p99 ≤ 20 ms",
        ),
        (
            "SLA report, a new period each request",
            &fresh,
            "what one report costs",
        ),
        ("availability series (step 1h)", &series, ""),
    ];
    let mut out: Vec<Row> = (rows.into_iter())
        .map(|(what, url, target)| {
            let m = drive(url, clients);
            Row {
                name: format!("API, {clients} clients, {days} days behind it: {what}"),
                value: m.to_string(),
                target: target.into(),
            }
        })
        .collect();
    out.push(server.query_costs());
    out
}

/// The API over generated traffic on a loopback port, served by its own
/// runtime until dropped.
struct Server {
    base: String,
    /// The watermark: where the generated traffic ends.
    end: i64,
    /// The tables the SLA report reads, as the snapshot serves them.
    tables: Tables,
    runtime: tokio::runtime::Runtime,
}

impl Server {
    fn start(days: u32) -> std::io::Result<Server> {
        let hash = hex::encode(Sha256::digest(TOKEN.as_bytes()));
        let text = format!(
            "{}\n[api]\nlisten = \"127.0.0.1:0\"\n[[api.tokens]]\nsha256 = \"{hash}\"\n",
            scenario_config()
        );
        let config = parse(&text);
        let events = traffic(days, 7, 1.0);
        let (pipeline, out) = run_through(&config, &events, crate::time::wall_now())
            .map_err(std::io::Error::other)?;
        let end = pipeline.eventtime().watermark();
        let tables = Tables::for_sla_report(pipeline.engine()).map_err(std::io::Error::other)?;
        let mut core = Core::new(pipeline);
        core.record(&out.incidents);
        let shared = Arc::new(Shared::new(config, core, Box::new(NoIntake)));
        shared.set_ready(true);
        // As `run` serves it: two worker threads.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let addr = listener.local_addr()?;
        runtime.spawn(crate::api::serve(listener, shared, std::future::pending()));
        Ok(Server {
            base: format!("http://{addr}"),
            end,
            tables,
            runtime,
        })
    }

    /// Where one SLA report's time goes: its five queries over the 7 days up
    /// to the end, each planned (SQL → physical plan) and executed, one at a
    /// time; medians of 20.
    fn query_costs(&self) -> Row {
        let (from, to) = (self.end - 7 * 86_400_000, self.end);
        let params = || vec![ScalarValue::Int64(Some(from)), ScalarValue::Int64(Some(to))];
        let queries = [
            AVAILABILITY_SQL,
            EXCLUSIONS_SQL,
            TICKETS_SQL,
            SLOS_SQL,
            CHANGES_SQL,
        ];
        let once = || -> datafusion::error::Result<(Duration, Duration)> {
            let ctx = (self.tables.session())
                .map_err(|e| datafusion::error::DataFusionError::External(e.into()))?;
            let (mut planning, mut execution) = (Duration::ZERO, Duration::ZERO);
            for sql in queries {
                let started = Instant::now();
                let plan = self.runtime.block_on(async {
                    let df = ctx.sql(sql).await?.with_param_values(params())?;
                    df.create_physical_plan().await
                })?;
                let planned = Instant::now();
                self.runtime.block_on(collect(plan, ctx.task_ctx()))?;
                planning += planned - started;
                execution += planned.elapsed();
            }
            Ok((planning, execution))
        };
        let mut runs: Vec<(Duration, Duration)> = Vec::new();
        for _ in 0..20 {
            match once() {
                Ok(r) => runs.push(r),
                Err(e) => {
                    return Row {
                        name: "one SLA report's queries".into(),
                        value: format!("not measured: {e}"),
                        target: String::new(),
                    };
                }
            }
        }
        let median = |pick: fn(&(Duration, Duration)) -> Duration| {
            let mut v: Vec<Duration> = runs.iter().map(pick).collect();
            v.sort();
            v[v.len() / 2].as_secs_f64() * 1000.0
        };
        Row {
            name: "one SLA report's five queries over 7 days, one at a time (median of 20)".into(),
            value: format!(
                "planning {:.1} ms, execution {:.1} ms",
                median(|r| r.0),
                median(|r| r.1)
            ),
            target: String::new(),
        }
    }
}

/// What the clients measured.
struct Measured {
    requests: u64,
    failed: u64,
    elapsed: Duration,
    latency_us: Histogram<u64>,
}

impl std::fmt::Display for Measured {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |us: f64| us / 1000.0;
        write!(
            f,
            "{:.0} requests/s, mean {:.2} ms, p99 {:.2} ms",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            ms(self.latency_us.mean()),
            ms(self.latency_us.value_at_quantile(0.99) as f64),
        )?;
        if self.failed > 0 {
            write!(f, "; {} not 200", self.failed)?;
        }
        Ok(())
    }
}

/// `clients` threads, each with a keep-alive connection, GET `url(k)` (k
/// counts the requests of all clients) for [`SECONDS`].
fn drive(url: &(dyn Fn(u64) -> String + Sync), clients: usize) -> Measured {
    let next = std::sync::atomic::AtomicU64::new(0);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(SECONDS);
    let per_client: Vec<(u64, Histogram<u64>)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                s.spawn(|| {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .build()
                        .into();
                    let mut latency = new_histogram();
                    let mut failed = 0;
                    while Instant::now() < deadline {
                        let k = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let sent = Instant::now();
                        let ok = (agent.get(url(k)))
                            .header("Authorization", &format!("Bearer {TOKEN}"))
                            .call()
                            .ok()
                            .and_then(|mut r| {
                                let status = r.status().as_u16();
                                r.body_mut().read_to_vec().ok().map(|_| status == 200)
                            });
                        failed += u64::from(ok != Some(true));
                        let _ = latency.record(sent.elapsed().as_micros() as u64);
                    }
                    (failed, latency)
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let elapsed = started.elapsed();
    let mut latency_us = new_histogram();
    let mut failed = 0;
    for (f, h) in per_client {
        failed += f;
        let _ = latency_us.add(&h);
    }
    Measured {
        requests: latency_us.len(),
        failed,
        elapsed,
        latency_us,
    }
}

fn new_histogram() -> Histogram<u64> {
    // 1 µs to 100 s, 3 significant digits: fixed bounds, so it cannot fail.
    Histogram::new_with_bounds(1, 100_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).expect("3 digits"))
}
