//! Prometheus remote write 1.0 (`POST /v1/ingest/prometheus`): a
//! snappy-compressed protobuf `WriteRequest` becomes probe and metric events,
//! as `[ingest.prometheus]` says.
//!
//! - A sample of `probe_series` (`probe_success` from the blackbox exporter) is a
//!   probe: 1 `up`, 0 `down`; `latency_ms` from `duration_series` of the same
//!   target at the same timestamp, and `degraded` when that exceeds the service's
//!   `degraded_after`.
//! - A sample of a `[[ingest.prometheus.metrics]]` series is a metric event,
//!   its capacity fixed or from another series with the same labels and
//!   timestamp.
//! - A sample of a series a `[[ingest.prometheus.counters]]` entry matches
//!   (name and label regexes) is a counter sample (contract section 14) named
//!   as the entry says; its source is the series' other labels.
//! - Other series, and Prometheus's staleness markers (NaN), are counted as
//!   ignored, never refused.
//!
//! Event ids derive from the series' labels and the timestamp, so a batch
//! Prometheus sends again yields the same ids (repeats, not double counts).

use std::collections::HashMap;

use prost::Message;

use super::{Rejected, Translated, derived_id};
use sha2::{Digest, Sha256};

use crate::config::{Config, PrometheusConfig, PrometheusCounter, PrometheusMetric, SeriesIs};
use crate::event::Topic;

/// `prompb.WriteRequest` (remote write 1.0): the fields slaflow reads; metadata
/// and histograms are skipped.
#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    /// The series.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// `prompb.TimeSeries`.
#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    /// Labels, `__name__` among them.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Samples in time order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// `prompb.Label`.
#[derive(Clone, PartialEq, Message)]
pub struct Label {
    /// Name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `prompb.Sample`.
#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    /// Value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Epoch milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// Largest body accepted once decompressed (the compressed body is capped by
/// the ingest body limit; snappy states the decompressed length up front).
pub const MAX_DECOMPRESSED: usize = 64 * 1024 * 1024;

/// Decompresses (snappy block format) and decodes a remote-write body.
pub fn decode(body: &[u8]) -> Result<WriteRequest, String> {
    let len = snap::raw::decompress_len(body)
        .map_err(|e| format!("body is not snappy-compressed (block format): {e}"))?;
    if len > MAX_DECOMPRESSED {
        return Err(format!(
            "body decompresses to {len} bytes, more than {MAX_DECOMPRESSED}"
        ));
    }
    let raw = (snap::raw::Decoder::new().decompress_vec(body))
        .map_err(|e| format!("body is not snappy-compressed (block format): {e}"))?;
    WriteRequest::decode(raw.as_slice())
        .map_err(|e| format!("body is not a remote-write WriteRequest: {e}"))
}

/// A series by name and its other labels, sorted.
struct Series<'a> {
    name: &'a str,
    labels: Vec<(&'a str, &'a str)>,
    samples: &'a [Sample],
}

impl Series<'_> {
    fn label(&self, name: &str) -> Option<&str> {
        (self.labels.iter())
            .find(|(k, v)| *k == name && !v.is_empty())
            .map(|(_, v)| *v)
    }

    /// `name{k="v",…}` as Prometheus writes it.
    fn text(&self) -> String {
        let labels: Vec<String> = (self.labels.iter())
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        format!("{}{{{}}}", self.name, labels.join(","))
    }
}

/// Samples by (series name, other labels) and timestamp: the joins of durations
/// and capacities.
type Index<'a> = HashMap<(&'a str, &'a [(&'a str, &'a str)]), HashMap<i64, f64>>;

/// Translates one remote-write body; `Err` when the body cannot be read at all.
pub fn translate(config: &Config, body: &[u8]) -> Result<Translated, Rejected> {
    let request = decode(body).map_err(|e| {
        Rejected::malformed(0, e, format!("({} bytes of remote-write body)", body.len()))
    })?;
    let series: Vec<Series> = (request.timeseries.iter())
        .map(|ts| {
            let mut labels: Vec<(&str, &str)> = (ts.labels.iter())
                .filter(|l| l.name != "__name__")
                .map(|l| (l.name.as_str(), l.value.as_str()))
                .collect();
            labels.sort_unstable();
            let name = (ts.labels.iter())
                .find(|l| l.name == "__name__")
                .map_or("", |l| l.value.as_str());
            Series {
                name,
                labels,
                samples: &ts.samples,
            }
        })
        .collect();
    let map = &config.ingest.prometheus;
    // Durations and capacities are only read through these joins.
    let joined = |name: &str| {
        name == map.duration_series
            || (map.metrics.iter()).any(|m| m.capacity_series.as_deref() == Some(name))
    };
    let mut index: Index = HashMap::new();
    for s in series.iter().filter(|s| joined(s.name)) {
        let at = index.entry((s.name, s.labels.as_slice())).or_default();
        at.extend(s.samples.iter().map(|x| (x.timestamp, x.value)));
    }
    let mut out = Translated::default();
    let mut position = 0;
    for s in &series {
        let first = position;
        position += s.samples.len();
        let metric = (map.metrics.iter()).find(|m| m.series == s.name);
        let counters: Vec<&PrometheusCounter> =
            (map.counters.iter()).filter(|c| counts(c, s)).collect();
        if !counters.is_empty() {
            counter_events(config, &counters, s, first, &mut out);
        }
        if s.name != map.probe_series && metric.is_none() {
            // Not slaflow's, unless read through a join or counted.
            if !joined(s.name) && counters.is_empty() {
                out.ignored += s.samples.len();
            }
            continue;
        }
        for (k, sample) in s.samples.iter().enumerate() {
            if sample.value.is_nan() {
                // A staleness marker: the series ended, nothing was observed.
                out.ignored += 1;
                continue;
            }
            let json = match metric {
                Some(m) => metric_event(m, &index, s, sample, map),
                None => probe(map, &index, s, sample),
            };
            match json {
                Ok(Some(json)) => out.push(config, Topic::Monitoring, first + k, json),
                Ok(None) => out.ignored += 1,
                Err(e) => (out.rejected).push(Rejected::malformed(first + k, e, s.text())),
            }
        }
    }
    Ok(out)
}

/// Whether counter mapping `c` takes series `s`: its name, and every `match`
/// regex on the whole label value (a missing label is empty, as in PromQL).
fn counts(c: &PrometheusCounter, s: &Series) -> bool {
    c.series == s.name
        && (c.matches.iter()).all(|(label, re)| re.0.is_match(s.label(label).unwrap_or("")))
}

/// The counter samples of series `s` for each mapping in `counters` (section
/// 14): `service` from the service labels (else every sample is ignored),
/// `source` = the other labels as `{k="v",…}`, sorted by key; the event id
/// hashes name, service, source and time, so a resent batch is a duplicate.
fn counter_events(
    config: &Config,
    counters: &[&PrometheusCounter],
    s: &Series,
    first: usize,
    out: &mut Translated,
) {
    let map = &config.ingest.prometheus;
    let named_by = (map.service_labels.iter()).find(|l| s.label(l).is_some());
    let Some((label, service)) = named_by.and_then(|l| Some((l.as_str(), s.label(l)?))) else {
        out.ignored += s.samples.len() * counters.len();
        return;
    };
    let others: Vec<String> = (s.labels.iter())
        .filter(|(k, _)| *k != label)
        .map(|(k, v)| format!("{k}={v:?}"))
        .collect();
    let source = format!("{{{}}}", others.join(","));
    for c in counters {
        for (k, sample) in s.samples.iter().enumerate() {
            if sample.value.is_nan() {
                out.ignored += 1;
                continue;
            }
            let ts = sample.timestamp.to_string();
            let key = [c.name.as_str(), service, &source, &ts].join("|");
            let event = serde_json::json!({
                "event_id": format!("prom:{}", hex::encode(Sha256::digest(key.as_bytes()))),
                "ts": sample.timestamp,
                "service": service,
                "kind": "counter",
                "source": source,
                "name": c.name,
                "value": sample.value,
            });
            out.push(config, Topic::Monitoring, first + k, event.to_string());
        }
    }
}

fn service<'a>(map: &PrometheusConfig, s: &'a Series) -> Result<&'a str, String> {
    (map.service_labels.iter())
        .find_map(|l| s.label(l))
        .ok_or_else(|| {
            format!(
                "series {} has none of the labels {:?} naming the service",
                s.text(),
                map.service_labels
            )
        })
}

fn id(s: &Series, sample: &Sample) -> String {
    derived_id("prom", &[&s.text(), &sample.timestamp.to_string()])
}

/// The probe event of one `probe_series` sample.
fn probe(
    map: &PrometheusConfig,
    index: &Index,
    s: &Series,
    sample: &Sample,
) -> Result<Option<String>, String> {
    let service = service(map, s)?;
    let up = match sample.value {
        1.0 => true,
        0.0 => false,
        v => return Err(format!("{} = {v}: a probe result is 1 or 0", s.text())),
    };
    let latency_ms = (index.get(&(map.duration_series.as_str(), s.labels.as_slice())))
        .and_then(|at| at.get(&sample.timestamp))
        .filter(|d| d.is_finite() && **d >= 0.0)
        .map(|d| d * 1000.0);
    let slow = (map.degraded_after.get(service))
        .zip(latency_ms)
        .is_some_and(|(limit, ms)| ms > limit.0 as f64);
    let status = match (up, slow) {
        (false, _) => "down",
        (true, true) => "degraded",
        (true, false) => "up",
    };
    let mut event = serde_json::json!({
        "event_id": id(s, sample),
        "ts": sample.timestamp,
        "service": service,
        "kind": "probe",
        "source": s.label(&map.source_label).unwrap_or("prometheus"),
        "status": status,
    });
    if let Some(ms) = latency_ms {
        event["latency_ms"] = ms.into();
    }
    Ok(Some(event.to_string()))
}

/// The metric event of one mapped sample; `None` when its capacity series has
/// no sample at that timestamp.
fn metric_event(
    m: &PrometheusMetric,
    index: &Index,
    s: &Series,
    sample: &Sample,
    map: &PrometheusConfig,
) -> Result<Option<String>, String> {
    let service = service(map, s)?;
    let resource = s.label(&m.resource_label).ok_or_else(|| {
        format!(
            "series {} has no {:?} label naming the resource",
            s.text(),
            m.resource_label
        )
    })?;
    let capacity = match (&m.capacity_series, m.capacity) {
        (Some(name), _) => {
            let found = (index.get(&(name.as_str(), s.labels.as_slice())))
                .and_then(|at| at.get(&sample.timestamp));
            match found {
                Some(c) => Some(*c),
                None => return Ok(None),
            }
        }
        (None, fixed) => fixed,
    };
    let value = match (m.series_is, capacity) {
        (SeriesIs::Free, Some(c)) => c - sample.value,
        _ => sample.value,
    };
    let mut event = serde_json::json!({
        "event_id": id(s, sample),
        "ts": sample.timestamp,
        "service": service,
        "kind": "metric",
        "resource": resource,
        "metric": m.metric.as_deref().unwrap_or(s.name),
        "value": value,
    });
    if let Some(c) = capacity {
        event["capacity"] = c.into();
    }
    Ok(Some(event.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Reason;
    use crate::ingest::tests::config;

    const T: i64 = 1_793_613_600_000;

    fn series(name: &str, labels: &[(&str, &str)], samples: &[(f64, i64)]) -> TimeSeries {
        let mut all = vec![Label {
            name: "__name__".into(),
            value: name.into(),
        }];
        all.extend(labels.iter().map(|(k, v)| Label {
            name: (*k).into(),
            value: (*v).into(),
        }));
        TimeSeries {
            labels: all,
            samples: (samples.iter())
                .map(|&(value, timestamp)| Sample { value, timestamp })
                .collect(),
        }
    }

    /// The body Prometheus sends: the protobuf, snappy block-compressed.
    fn body(timeseries: Vec<TimeSeries>) -> Vec<u8> {
        let raw = WriteRequest { timeseries }.encode_to_vec();
        snap::raw::Encoder::new()
            .compress_vec(&raw)
            .expect("compress")
    }

    fn events(t: &Translated) -> Vec<serde_json::Value> {
        (t.events.iter())
            .map(|e| serde_json::from_str(&e.json).expect("json"))
            .collect()
    }

    const TARGET: [(&str, &str); 2] = [("instance", "https://web.example"), ("job", "web")];

    #[test]
    fn probes_with_latency_and_degraded() {
        let c = config("[ingest.prometheus.degraded_after]\nweb = \"500ms\"\n");
        let b = body(vec![
            series(
                "probe_success",
                &TARGET,
                &[(1.0, T), (1.0, T + 1000), (0.0, T + 2000)],
            ),
            series(
                "probe_duration_seconds",
                &TARGET,
                &[(0.041, T), (0.9, T + 1000), (10.0, T + 2000)],
            ),
            series("up", &TARGET, &[(1.0, T)]),
        ]);
        let t = translate(&c, &b).expect("readable");
        let e = events(&t);
        let status: Vec<&str> = e
            .iter()
            .map(|e| e["status"].as_str().unwrap_or(""))
            .collect();
        assert_eq!(status, ["up", "degraded", "down"]);
        assert_eq!(
            e[0]["service"], "web",
            "`job` when there is no `service` label"
        );
        assert_eq!(e[0]["source"], "https://web.example");
        assert_eq!(
            (e[0]["ts"].as_i64(), e[0]["latency_ms"].as_f64()),
            (Some(T), Some(41.0))
        );
        assert_eq!(
            t.ignored, 1,
            "`up` is not slaflow's; durations are joined, not ignored"
        );
        assert!(t.rejected.is_empty());
        // Prometheus resends a batch after a timeout: the same ids.
        let again = translate(&c, &b).expect("readable");
        let ids = |t: &Translated| {
            t.events
                .iter()
                .map(|e| e.event_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&again), ids(&t));
        assert_eq!(
            ids(&t)
                .iter()
                .collect::<std::collections::HashSet<_>>()
                .len(),
            3
        );
    }

    /// Section 14: counters and histogram buckets as counter samples.
    #[test]
    fn counters_and_buckets_become_counter_samples() {
        let c = config(
            r#"
[[ingest.prometheus.counters]]
series = "http_requests_total"
name = "requests"
[[ingest.prometheus.counters]]
series = "http_requests_total"
match = { code = "5.." }
name = "errors"
[[ingest.prometheus.counters]]
series = "http_request_duration_seconds_bucket"
match = { le = "0.3" }
name = "fast"
"#,
        );
        let ok = [("code", "200"), ("instance", "lb-1:9090"), ("job", "web")];
        let failed = [("code", "503"), ("instance", "lb-1:9090"), ("job", "web")];
        let b = body(vec![
            series(
                "http_requests_total",
                &ok,
                &[(10.0, T), (f64::NAN, T + 1000)],
            ),
            series("http_requests_total", &failed, &[(2.0, T)]),
            series(
                "http_request_duration_seconds_bucket",
                &[("instance", "lb-1:9090"), ("job", "web"), ("le", "0.3")],
                &[(7.0, T)],
            ),
            series(
                "http_request_duration_seconds_bucket",
                &[("instance", "lb-1:9090"), ("job", "web"), ("le", "0.35")],
                &[(8.0, T)],
            ),
            series("http_requests_total", &[("code", "200")], &[(1.0, T)]),
        ]);
        let t = translate(&c, &b).expect("readable");
        let got: Vec<(String, String, f64)> = (events(&t).iter())
            .map(|e| {
                assert_eq!(
                    (e["kind"].as_str(), e["service"].as_str(), e["ts"].as_i64()),
                    (Some("counter"), Some("web"), Some(T))
                );
                let text = |k: &str| e[k].as_str().unwrap_or("").to_owned();
                (
                    text("name"),
                    text("source"),
                    e["value"].as_f64().unwrap_or(f64::NAN),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "requests".into(),
                    r#"{code="200",instance="lb-1:9090"}"#.into(),
                    10.0
                ),
                (
                    "requests".into(),
                    r#"{code="503",instance="lb-1:9090"}"#.into(),
                    2.0
                ),
                (
                    "errors".into(),
                    r#"{code="503",instance="lb-1:9090"}"#.into(),
                    2.0
                ),
                (
                    "fast".into(),
                    r#"{instance="lb-1:9090",le="0.3"}"#.into(),
                    7.0
                ),
            ]
        );
        // The stale marker, the 0.35 bucket, and the series naming no service.
        assert_eq!(t.ignored, 3);
        assert!(t.rejected.is_empty(), "{:?}", t.rejected);
        let id = |k: &str| {
            let key = format!(r#"{k}|web|{{code="200",instance="lb-1:9090"}}|{T}"#);
            format!("prom:{}", hex::encode(Sha256::digest(key.as_bytes())))
        };
        assert_eq!(t.events[0].event_id, id("requests"));
    }

    #[test]
    fn the_service_label_wins_and_unknown_services_are_dead_letters() {
        let c = config("");
        let labelled = [("instance", "a"), ("job", "blackbox"), ("service", "web")];
        let unknown = [("instance", "b"), ("job", "blackbox"), ("service", "shop")];
        let b = body(vec![
            series("probe_success", &labelled, &[(1.0, T)]),
            series("probe_success", &unknown, &[(1.0, T)]),
            series("probe_success", &[("instance", "c")], &[(1.0, T)]),
            series(
                "probe_success",
                &labelled,
                &[(0.5, T + 1), (f64::NAN, T + 2)],
            ),
        ]);
        let t = translate(&c, &b).expect("readable");
        assert_eq!(events(&t)[0]["service"], "web");
        let fates: Vec<(usize, Reason)> = t.rejected.iter().map(|r| (r.index, r.reason)).collect();
        assert_eq!(
            fates,
            [
                (1, Reason::UnknownService),
                (2, Reason::Malformed),
                (3, Reason::Malformed)
            ]
        );
        assert!(
            t.rejected[1].error.contains("naming the service"),
            "{:?}",
            t.rejected[1]
        );
        assert_eq!(t.ignored, 1, "the staleness marker");
    }

    #[test]
    fn capacity_metrics_fixed_joined_and_free() {
        let c = config(
            r#"
[[ingest.prometheus.metrics]]
series = "node_filesystem_avail_bytes"
resource_label = "mountpoint"
metric = "disk_used_bytes"
capacity_series = "node_filesystem_size_bytes"
series_is = "free"
[[ingest.prometheus.metrics]]
series = "container_memory_working_set_bytes"
capacity = 1000
"#,
        );
        let fs = [("instance", "n1"), ("mountpoint", "/"), ("service", "web")];
        let b = body(vec![
            series(
                "node_filesystem_avail_bytes",
                &fs,
                &[(300.0, T), (200.0, T + 15_000)],
            ),
            series("node_filesystem_size_bytes", &fs, &[(1000.0, T)]),
            series(
                "container_memory_working_set_bytes",
                &[("instance", "pod-1"), ("service", "web")],
                &[(250.0, T)],
            ),
        ]);
        let t = translate(&c, &b).expect("readable");
        let e = events(&t);
        assert_eq!(e.len(), 2);
        assert_eq!(
            (
                e[0]["metric"].as_str(),
                e[0]["resource"].as_str(),
                e[0]["value"].as_f64(),
                e[0]["capacity"].as_f64()
            ),
            (
                Some("disk_used_bytes"),
                Some("/"),
                Some(700.0),
                Some(1000.0)
            )
        );
        assert_eq!(t.ignored, 1, "no capacity sample at T + 15s");
        assert_eq!(
            (
                e[1]["metric"].as_str(),
                e[1]["resource"].as_str(),
                e[1]["capacity"].as_f64()
            ),
            (
                Some("container_memory_working_set_bytes"),
                Some("pod-1"),
                Some(1000.0)
            )
        );
    }

    /// A body captured from Prometheus 2.42 (Debian) remote-writing a blackbox
    /// job (`probe_success`, `probe_duration_seconds`, `up`) with the headers
    /// Content-Encoding: snappy, X-Prometheus-Remote-Write-Version: 0.1.0.
    const CAPTURED: &[u8] = include_bytes!("../../tests/fixtures/prometheus-remote-write.bin");

    #[test]
    fn a_body_from_a_real_prometheus() {
        let request = decode(CAPTURED).expect("decodes");
        let names: std::collections::BTreeSet<&str> = (request.timeseries.iter())
            .flat_map(|t| &t.labels)
            .filter(|l| l.name == "__name__")
            .map(|l| l.value.as_str())
            .collect();
        assert!(names.contains("probe_success"), "{names:?}");
        let t = translate(&config(""), CAPTURED).expect("readable");
        let e = events(&t);
        assert!(!e.is_empty() && t.rejected.is_empty(), "{:?}", t.rejected);
        for probe in &e {
            assert_eq!(probe["service"], "web");
            assert_eq!(probe["source"], "http://127.0.0.1:19098/");
            assert_eq!(probe["status"], "up");
            assert!(
                probe["latency_ms"]
                    .as_f64()
                    .is_some_and(|ms| ms > 0.0 && ms < 1000.0)
            );
        }
    }

    #[test]
    fn a_batch_of_10000_samples() {
        let c = config("");
        let batch: Vec<TimeSeries> = (0..100)
            .map(|k| {
                let instance = format!("https://web.example/{k}");
                let samples: Vec<(f64, i64)> = (0..100).map(|i| (1.0, T + i * 1000)).collect();
                series(
                    "probe_success",
                    &[("instance", &instance), ("service", "web")],
                    &samples,
                )
            })
            .collect();
        let t = translate(&c, &body(batch)).expect("readable");
        assert_eq!(
            (t.events.len(), t.rejected.len(), t.ignored),
            (10_000, 0, 0)
        );
        let ids: std::collections::HashSet<&str> =
            t.events.iter().map(|e| e.event_id.as_str()).collect();
        assert_eq!(ids.len(), 10_000, "one id per series and timestamp");
    }

    #[test]
    fn unreadable_bodies_are_refused_whole() {
        let c = config("");
        let huge_claim = [0xff, 0xff, 0xff, 0xff, 0x0f];
        for bad in [
            &b"not snappy"[..],
            &huge_claim,
            &snap::raw::Encoder::new()
                .compress_vec(b"\xff\xff\xff")
                .expect("c"),
        ] {
            let e = translate(&c, bad).expect_err("unreadable");
            assert_eq!((e.index, e.reason), (0, Reason::Malformed));
        }
        let empty = translate(&c, &body(Vec::new())).expect("an empty request is fine");
        assert!(empty.events.is_empty() && empty.rejected.is_empty());
    }

    #[test]
    fn mapping_mistakes_are_config_errors() {
        let bad = [
            (
                "series = \"x\"\nseries_is = \"free\"\n",
                "ingest.prometheus.metrics[0].series_is",
            ),
            (
                "series = \"x\"\ncapacity = 0\n",
                "ingest.prometheus.metrics[0].capacity",
            ),
            (
                "series = \"x\"\ncapacity = 1\ncapacity_series = \"y\"\n",
                "ingest.prometheus.metrics[0].capacity",
            ),
        ];
        for (entry, key) in bad {
            let text = format!(
                "{}[[ingest.prometheus.metrics]]\n{entry}",
                crate::ingest::tests::CONFIG
            );
            match Config::parse(&text, std::path::Path::new("t.toml")) {
                Err(crate::config::ConfigError::Invalid { key: k, line, .. }) => {
                    assert_eq!(k, key);
                    assert!(line > 5, "{line}");
                }
                other => panic!("{entry}: {other:?}"),
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(300))]

        /// Any bytes: refused whole or read, never a panic.
        #[test]
        fn any_body_is_refused_or_read(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..400)) {
            let c = config("[[ingest.prometheus.metrics]]\nseries = \"m\"\ncapacity = 10\n");
            let _ = translate(&c, &bytes);
            let compressed = snap::raw::Encoder::new().compress_vec(&bytes).expect("compress");
            let _ = translate(&c, &compressed);
        }

        /// Any well-formed request: every sample ends published, ignored or refused.
        #[test]
        fn every_sample_has_one_fate(
            rows in proptest::collection::vec(
                (0..4usize, 0..3usize, proptest::num::f64::ANY, proptest::num::i64::ANY),
                0..40,
            )
        ) {
            let c = config("[[ingest.prometheus.metrics]]\nseries = \"m\"\ncapacity_series = \"cap\"\nseries_is = \"free\"\n[ingest.prometheus.degraded_after]\nweb = \"1s\"\n");
            let names = ["probe_success", "probe_duration_seconds", "m", "cap"];
            let services = ["web", "ghost", ""];
            let batch: Vec<TimeSeries> = rows
                .iter()
                .map(|&(n, s, v, t)| series(names[n], &[("service", services[s]), ("instance", "i")], &[(v, t)]))
                .collect();
            let joined = rows.iter().filter(|r| r.0 == 1 || r.0 == 3).count();
            let t = translate(&c, &body(batch)).expect("readable");
            proptest::prop_assert_eq!(t.events.len() + t.rejected.len() + t.ignored + joined, rows.len());
        }
    }
}
