//! `slaflow openslo import|export` (contract section 14) on documents written
//! from the OpenSLO v1 specification (github.com/OpenSLO/OpenSLO, README
//! "SLO", "SLI" and "Objectives"), and the round trip of the generated config.

mod common;

use std::path::Path;

use common::slaflow;
use slaflow::config::Config;

/// A rolling ratio of good events (inline SLI, `target`), a calendar month of
/// bad events (`targetPercent`, an SLI by reference, listed objects in one
/// document), and a Service, a DataSource and an SLI that import nothing.
const SPEC_DOCUMENTS: &str = r#"
apiVersion: openslo/v1
kind: Service
metadata:
  name: web
spec:
  description: The web front end
---
apiVersion: openslo/v1
kind: SLO
metadata:
  name: web-availability
  displayName: SLO for web availability
spec:
  description: 99.5 % of requests are successful over 28 days
  service: web
  indicator:
    metadata:
      name: web-successful-requests
    spec:
      ratioMetric:
        counter: true
        good:
          metricSource:
            type: Prometheus
            spec:
              query: http_requests_ok_total
        total:
          metricSource:
            type: Prometheus
            spec:
              query: http_requests_total
  timeWindow:
    - duration: 4w
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - displayName: Good
      target: 0.995
---
- apiVersion: openslo/v1
  kind: DataSource
  metadata:
    name: prometheus
  spec:
    type: Prometheus
    connectionDetails:
      url: http://prometheus:9090
- apiVersion: openslo/v1
  kind: SLI
  metadata:
    name: shop-errors
  spec:
    ratioMetric:
      counter: true
      bad:
        metricSource:
          metricSourceRef: prometheus
          spec:
            query: shop_requests_failed_total
      total:
        metricSource:
          metricSourceRef: prometheus
          spec:
            query: shop_requests_total
- apiVersion: openslo/v1
  kind: SLO
  metadata:
    name: shop-monthly
  spec:
    service: shop
    indicatorRef: shop-errors
    timeWindow:
      - duration: 1M
        isRolling: false
        calendar:
          startTime: 2026-01-01 00:00:00
          timeZone: UTC
    budgetingMethod: Occurrences
    objectives:
      - targetPercent: 99.9
"#;

fn run(args: &[&str]) -> (bool, String, String) {
    let o = slaflow().args(args).output().expect("slaflow");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (o.status.success(), text(&o.stdout), text(&o.stderr))
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write");
    path.to_string_lossy().into_owned()
}

#[test]
fn documents_from_the_spec_import_as_slos() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = write(dir.path(), "slos.yaml", SPEC_DOCUMENTS);
    let (ok, out, err) = run(&["openslo", "import", &file]);
    assert!(ok, "{err}");
    let body: String = out
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(
        body.trim(),
        r#"[[slos]]
id = "web-availability"
service = "web"
objective = 99.5
window = "4w"
total = "http_requests_total"
good = "http_requests_ok_total"

[[slos]]
id = "shop-monthly"
service = "shop"
objective = 99.9
window = "month"
total = "shop_requests_total"
bad = "shop_requests_failed_total""#
    );
    // What it prints is a config slaflow loads (with the services it names).
    let config = format!(
        "[[customers]]\nid = \"c\"\n[[services]]\nid = \"web\"\ncustomer = \"c\"\n[[services]]\nid = \"shop\"\ncustomer = \"c\"\n{out}"
    );
    let c = Config::parse(&config, Path::new("imported.toml")).expect("a valid config");
    assert_eq!(c.slos[0].window.rolling_ms(), Some(28 * 86_400_000));
}

#[test]
fn what_slaflow_cannot_compute_is_refused_by_document_and_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let slo = |name: &str, edit: &dyn Fn(String) -> String| {
        let base = format!(
            r#"apiVersion: openslo/v1
kind: SLO
metadata:
  name: {name}
spec:
  service: web
  indicator:
    spec:
      ratioMetric:
        counter: true
        bad:
          metricSource:
            spec:
              query: errors_total
        total:
          metricSource:
            spec:
              query: requests_total
  timeWindow:
    - duration: 28d
      isRolling: true
  budgetingMethod: Occurrences
  objectives:
    - target: 0.99
"#
        );
        edit(base)
    };
    type Case<'a> = (&'a str, &'a dyn Fn(String) -> String, &'a str);
    let cases: [Case; 7] = [
        (
            "timeslices",
            &|d| d.replace("Occurrences", "Timeslices"),
            "spec.budgetingMethod: Timeslices is not expressible",
        ),
        (
            "threshold",
            &|d| {
                d.replace("ratioMetric:\n        counter: true", "thresholdMetric:\n        metricSource: {}\n      ratioMetric:\n        counter: true")
            },
            "spec.indicator.spec.thresholdMetric: not expressible",
        ),
        (
            "two-objectives",
            &|d| d + "    - target: 0.9\n",
            "spec.objectives: 2 objectives",
        ),
        (
            "promql",
            &|d| d.replace("query: errors_total", "query: sum(rate(errors_total[5m]))"),
            "spec.indicator.spec.ratioMetric.bad.metricSource.spec.query: \"sum(rate(errors_total[5m]))\" is not a plain metric name",
        ),
        (
            "gauge",
            &|d| d.replace("counter: true", "counter: false"),
            "spec.indicator.spec.ratioMetric.counter: must be true",
        ),
        (
            "week-in-ny",
            &|d| {
                d.replace("- duration: 28d\n      isRolling: true", "- duration: 1w\n      isRolling: false\n      calendar:\n        startTime: 2026-01-05 00:00:00\n        timeZone: America/New_York")
            },
            "spec.timeWindow[0]: calendar window 1w",
        ),
        (
            "both-targets",
            &|d| d.replace("- target: 0.99", "- target: 0.99\n      targetPercent: 99"),
            "spec.objectives[0]: give `target` or `targetPercent`, not both",
        ),
    ];
    let docs: Vec<String> = cases
        .iter()
        .map(|(name, edit, _)| slo(name, *edit))
        .collect();
    let file = write(dir.path(), "bad.yaml", &docs.join("---\n"));
    let (ok, out, err) = run(&["openslo", "import", &file]);
    assert!(!ok && out.is_empty(), "nothing printed on refusal: {out}");
    for (i, (name, _, why)) in cases.iter().enumerate() {
        let want = format!("{file}: document {} (SLO \"{name}\"): {why}", i + 1);
        assert!(err.contains(&want), "missing {want:?} in\n{err}");
    }
    assert_eq!(err.lines().count(), cases.len(), "{err}");
}

/// The generated scenario's [[slos]] export to OpenSLO and import back the same.
#[test]
fn export_then_import_gives_back_the_slos() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = slaflow::generate::scenario_config();
    let config = write(dir.path(), "c.toml", &text);
    let (ok, yaml, err) = run(&["openslo", "export", "--config", &config]);
    assert!(ok, "{err}");
    assert!(
        yaml.contains("kind: Service") && yaml.contains("budgetingMethod: Occurrences"),
        "{yaml}"
    );
    let file = write(dir.path(), "exported.yaml", &yaml);
    let (ok, toml, err) = run(&["openslo", "import", &file]);
    assert!(ok, "{err}");
    let original = Config::parse(&text, Path::new("c.toml")).expect("config");
    let without = text
        .split("\n# Request-based SLOs")
        .next()
        .expect("the services");
    let back = Config::parse(&format!("{without}\n{toml}"), Path::new("back.toml"))
        .expect("imported config");
    assert!(!original.slos.is_empty());
    let same = |c: &Config| -> Vec<String> {
        (c.slos.iter())
            .map(|s| {
                format!(
                    "{} {} {} {:?} {} {:?}",
                    s.id(),
                    s.service(),
                    s.objective,
                    s.window.rolling_ms(),
                    s.total,
                    s.side()
                )
            })
            .collect()
    };
    assert_eq!(same(&back), same(&original));
}
