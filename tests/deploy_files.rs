//! The configs shipped in `deploy/` stay valid.

use std::path::{Path, PathBuf};

/// `deploy/` of the checkout under test. The directory comes from the
/// environment cargo gives the running test, not from the build: a build
/// cache shared by two checkouts may hand over a binary compiled in the other.
fn deploy_dir() -> PathBuf {
    let root = std::env::var_os("CARGO_MANIFEST_DIR").expect("run by cargo test");
    PathBuf::from(root).join("deploy")
}

#[test]
fn deploy_configs_parse() {
    let dir = deploy_dir();
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("deploy dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "toml") {
            let c = slaflow::config::Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
            assert!(
                !c.services.is_empty() && c.kafka.is_some() && c.api.is_some(),
                "{}",
                path.display()
            );
            n += 1;
        }
    }
    assert_eq!(n, 2, "slaflow.toml and slaflow.compose.toml");
}

/// A shipped config must not carry a token anyone can guess (copied configs
/// keep their tokens).
#[test]
fn deploy_configs_ship_no_guessable_tokens() {
    use sha2::{Digest, Sha256};
    let words = [
        "test", "acme", "globex", "ingest", "admin", "token", "secret", "password", "slaflow",
        "changeme", "",
    ];
    let guessable: Vec<String> = words
        .iter()
        .map(|w| hex::encode(Sha256::digest(w.as_bytes())))
        .collect();
    for path in files(&deploy_dir()) {
        let text = std::fs::read_to_string(&path).expect("read");
        for (word, hash) in words.iter().zip(&guessable) {
            assert!(
                !text.contains(hash.as_str()),
                "{} ships the token {word:?}",
                path.display()
            );
        }
        if path.extension().is_some_and(|e| e == "toml") {
            let c = slaflow::config::Config::load(&path).expect("config");
            assert!(
                c.api.is_some_and(|a| a.tokens.is_empty()),
                "{}",
                path.display()
            );
        }
    }
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("dir") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn yaml(path: &Path) -> serde_norway::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The metric families `/metrics` exposes, with the sample names each gives
/// (`x_total` for counters, `x_bucket`… for histograms).
/// A family appears once it has a sample, so this runs a day of generated
/// traffic through the engine first.
fn exported_names() -> std::collections::BTreeSet<String> {
    use std::sync::Arc;
    let text = slaflow::generate::scenario_config();
    let config = Arc::new(
        slaflow::config::Config::parse(&text, Path::new("scenario.toml")).expect("config"),
    );
    let mut g = slaflow::generate::Generator::new(3, 1_793_577_600_000, 5.0);
    let events: Vec<_> = (0..1440).flat_map(|_| g.minute()).collect();
    let (p, out) = slaflow::generate::run_through(&config, &events, slaflow::time::wall_now())
        .expect("decoded rows");
    let mut core = slaflow::state::Core::new(p);
    core.record(&out.incidents);
    let metrics = slaflow::metrics::Metrics::new();
    core.observe(
        &metrics,
        std::time::Duration::from_millis(1),
        &out.incidents,
    );
    let body = metrics.render(core.pipeline.engine(), &config.burn_alerts);
    let mut names = std::collections::BTreeSet::new();
    for line in body.lines() {
        let mut parts = line.split(' ');
        if let (Some("#"), Some("TYPE"), Some(name), Some(kind)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        {
            let suffixes: &[&str] = match kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{name}{s}")));
        }
    }
    names
}

/// Grafana (issue 15): the compose file mounts the provisioning and dashboards
/// that exist, the datasource points at the compose Prometheus, and every
/// panel queries only metrics slaflow exports.
#[test]
fn grafana_is_provisioned_with_a_dashboard_of_exported_metrics() {
    let deploy = deploy_dir();
    let compose = yaml(&deploy.join("docker-compose.yml"));
    let grafana = &compose["services"]["grafana"];
    let mounts: Vec<&str> = (grafana["volumes"]
        .as_sequence()
        .expect("grafana volumes")
        .iter())
    .filter_map(|v| v.as_str())
    .collect();
    for (host, container) in [
        ("grafana/provisioning", "/etc/grafana/provisioning"),
        ("grafana/dashboards", "/var/lib/grafana/dashboards"),
    ] {
        let mount = mounts.iter().find(|m| m.starts_with(&format!("./{host}:")));
        assert!(
            mount.is_some_and(|m| m.contains(container)),
            "{host} mounted at {container}: {mounts:?}"
        );
        assert!(deploy.join(host).is_dir(), "{host} exists");
    }
    assert!(
        compose["services"]["prometheus"].is_mapping(),
        "grafana reads the compose Prometheus"
    );
    let ds = yaml(&deploy.join("grafana/provisioning/datasources/prometheus.yml"));
    let source = &ds["datasources"][0];
    assert_eq!(
        (source["type"].as_str(), source["url"].as_str()),
        (Some("prometheus"), Some("http://prometheus:9090"))
    );
    let uid = source["uid"].as_str().expect("datasource uid");
    let provider = yaml(&deploy.join("grafana/provisioning/dashboards/slaflow.yml"));
    assert_eq!(
        provider["providers"][0]["options"]["path"].as_str(),
        Some("/var/lib/grafana/dashboards")
    );

    let text = std::fs::read_to_string(deploy.join("grafana/dashboards/slaflow-slo.json"))
        .expect("dashboard");
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("dashboard JSON");
    let exported = exported_names();
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut queried = std::collections::BTreeSet::new();
    for p in panels {
        let title = p["title"].as_str().expect("title");
        assert_eq!(p["datasource"]["uid"].as_str(), Some(uid), "{title}");
        let targets = p["targets"].as_array().filter(|t| !t.is_empty());
        for t in targets.unwrap_or_else(|| panic!("{title} has no query")) {
            let expr = t["expr"].as_str().expect("expr");
            for name in metric_names(expr) {
                assert!(
                    exported.contains(&name),
                    "{title}: {name} is not exported ({exported:?})"
                );
                queried.insert(name);
            }
        }
    }
    for needed in [
        "slaflow_slo_availability_ratio",
        "slaflow_slo_objective_ratio",
        "slaflow_slo_error_budget_remaining_ratio",
        "slaflow_slo_burn_rate",
        "slaflow_open_incidents_by_rule",
        "slaflow_slo_ratio",
        "slaflow_request_slo_burn_rate",
    ] {
        assert!(queried.contains(needed), "a panel shows {needed}");
    }
    // The burn-rate panel marks the default alerts' factors.
    let burn = panels
        .iter()
        .find(|p| {
            p["targets"][0]["expr"]
                .as_str()
                .is_some_and(|e| e.contains("slo_burn_rate"))
        })
        .expect("burn panel");
    let steps: Vec<f64> = (burn["fieldConfig"]["defaults"]["thresholds"]["steps"]
        .as_array()
        .expect("thresholds")
        .iter())
    .filter_map(|s| s["value"].as_f64())
    .collect();
    let config = slaflow::config::Config::parse("", Path::new("empty.toml")).expect("defaults");
    for a in &config.burn_alerts {
        assert!(steps.contains(&a.factor), "threshold at {}", a.factor);
    }
    for v in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        for name in metric_names(v["definition"].as_str().expect("definition")) {
            assert!(exported.contains(&name), "variable queries {name}");
        }
    }
}

/// The `slaflow_*` metric names in a PromQL expression.
fn metric_names(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = expr;
    while let Some(i) = rest.find("slaflow_") {
        let name: String = rest[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[i + name.len()..];
        out.push(name);
    }
    out
}

/// Issue 31: the compose config is the documented example with container
/// addresses, and Docker and systemd wait longer than slaflow's own shutdown
/// grace, so their SIGKILL never lands while slaflow is still committing.
#[test]
fn compose_config_is_the_example_with_container_addresses_and_a_longer_grace() {
    let deploy = deploy_dir();
    let read = |f: &str| std::fs::read_to_string(deploy.join(f)).expect(f);
    let (example, compose) = (read("slaflow.toml"), read("slaflow.compose.toml"));
    let body = |text: &str| -> Vec<String> {
        (text.lines())
            .skip_while(|l| l.starts_with('#'))
            .map(|l| {
                match ["data_dir =", "brokers =", "listen ="]
                    .iter()
                    .find(|k| l.starts_with(*k))
                {
                    Some(k) => k.to_string(),
                    None => l.to_owned(),
                }
            })
            .collect()
    };
    assert_eq!(body(&example), body(&compose));
    let config =
        slaflow::config::Config::load(&deploy.join("slaflow.compose.toml")).expect("config");
    let grace = config.engine.shutdown_grace.std();
    let compose_yaml = yaml(&deploy.join("docker-compose.yml"));
    let docker = compose_yaml["services"]["slaflow"]["stop_grace_period"]
        .as_str()
        .expect("stop_grace_period");
    let docker = humantime::parse_duration(docker).expect("duration");
    let systemd = (read("slaflow.service").lines())
        .find_map(|l| l.strip_prefix("TimeoutStopSec="))
        .and_then(|s| s.trim().parse::<u64>().ok())
        .map(std::time::Duration::from_secs)
        .expect("TimeoutStopSec");
    assert!(
        docker > grace && systemd > grace,
        "{docker:?}, {systemd:?} vs grace {grace:?}"
    );
}
