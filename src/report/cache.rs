//! What one published snapshot's reports are made from, made once: the
//! snapshot never changes, so a dashboard asking for the same report again
//! (or for another period of the same state) reuses the work.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::OnceCell;

use super::{ReportError, SlaReport, Tables};
use crate::engine::Engine;
use crate::time::Millis;

/// Reports kept per snapshot; when full, it starts over (a snapshot lives
/// for a fraction of a second while data flows, and the demo's periods are few).
const MAX_REPORTS: usize = 256;

/// (customer, from, to) of an SLA report.
type Key = (String, Millis, Millis);

/// The SLA report tables and reports of one snapshot.
#[derive(Default)]
pub struct ReportCache {
    tables: OnceLock<Tables>,
    reports: Mutex<HashMap<Key, Arc<OnceCell<Arc<SlaReport>>>>>,
}

/// A copy starts empty: what it would hold is made again on first use.
impl Clone for ReportCache {
    fn clone(&self) -> Self {
        ReportCache::default()
    }
}

impl std::fmt::Debug for ReportCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReportCache").finish_non_exhaustive()
    }
}

impl ReportCache {
    /// The tables the SLA report reads, built from `engine` on first use.
    pub fn tables(&self, engine: &Engine) -> Result<&Tables, ReportError> {
        if let Some(t) = self.tables.get() {
            return Ok(t);
        }
        let built = Tables::for_sla_report(engine)?;
        // Two first callers may both build; the tables are equal, one is kept.
        Ok(self.tables.get_or_init(|| built))
    }

    /// The report of `key`, computed by `compute` on first use. Concurrent
    /// first requests for one key wait for one computation; a failed one is
    /// not kept.
    pub async fn report<F, Fut>(
        &self,
        customer: &str,
        (from, to): (Millis, Millis),
        compute: F,
    ) -> Result<Arc<SlaReport>, ReportError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<SlaReport, ReportError>>,
    {
        let cell = {
            let mut reports = self.reports.lock().unwrap_or_else(|p| p.into_inner());
            if reports.len() >= MAX_REPORTS {
                reports.clear();
            }
            let key = (customer.to_owned(), from, to);
            reports.entry(key).or_default().clone()
        };
        let report = cell.get_or_try_init(|| async { compute().await.map(Arc::new) });
        report.await.cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::config::Config;
    use crate::pipeline::Pipeline;

    #[test]
    fn concurrent_first_requests_compute_once_and_failures_are_not_kept() {
        let text =
            "[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n";
        let config = Arc::new(Config::parse(text, Path::new("t.toml")).expect("config"));
        let pipeline = Pipeline::new(config.clone(), ["m".into(), "t".into()]);
        let cache = ReportCache::default();
        let tables = cache.tables(pipeline.engine()).expect("tables");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("runtime");
        let computed = AtomicUsize::new(0);
        let compute = |fail: bool, to: Millis| {
            let (config, computed) = (&config, &computed);
            move || async move {
                computed.fetch_add(1, Ordering::SeqCst);
                tokio::task::yield_now().await;
                if fail {
                    let e = datafusion::error::DataFusionError::Plan("refused".into());
                    return Err(ReportError::from(e));
                }
                super::super::sla_report(config, tables, &[], "acme", 0, to, 0).await
            }
        };
        runtime.block_on(async {
            let period = (0, 60_000);
            let failed = cache.report("acme", period, compute(true, 60_000)).await;
            assert!(failed.is_err());
            let (a, b, c) = tokio::join!(
                cache.report("acme", period, compute(false, 60_000)),
                cache.report("acme", period, compute(false, 60_000)),
                cache.report("acme", period, compute(false, 60_000)),
            );
            let (a, b, c) = (a.expect("a"), b.expect("b"), c.expect("c"));
            assert!(Arc::ptr_eq(&a, &b) && Arc::ptr_eq(&b, &c));
            // The failure, then one computation for the three.
            assert_eq!(computed.load(Ordering::SeqCst), 2);
            let other = cache
                .report("acme", (0, 120_000), compute(false, 120_000))
                .await;
            assert_eq!(other.expect("other").services[0].period_s, 120.0);
            assert_eq!(computed.load(Ordering::SeqCst), 3);
        });
    }
}
