//! Cross-field checks run once the file has parsed: each returns the first
//! fault with the key path and message that `Config::parse` turns into a
//! `file:line: key` error.

use std::collections::HashSet;

use super::{ApiConfig, BUILTIN_24X7, ConfigFile, DeliveryType, Dur};

/// Where (dotted key path) and what.
pub(super) struct Fault {
    pub key: String,
    pub message: String,
}

type Checked = Result<(), Fault>;

fn fault(key: impl Into<String>, message: impl Into<String>) -> Checked {
    Err(Fault {
        key: key.into(),
        message: message.into(),
    })
}

/// Collects ids, refusing an empty or repeated one.
fn unique_ids<'a>(
    ids: impl Iterator<Item = &'a String>,
    section: &str,
    seen: &mut HashSet<String>,
) -> Checked {
    for (i, id) in ids.enumerate() {
        if id.is_empty() || !seen.insert(id.clone()) {
            let what = format!("empty or duplicate id {:?}", id);
            return fault(format!("{section}[{i}].id"), what);
        }
    }
    Ok(())
}

fn known(set: &HashSet<String>, id: &String, key: String, what: &str) -> Checked {
    if set.contains(id) {
        return Ok(());
    }
    fault(key, format!("unknown {what} {:?}", id))
}

/// A name that goes into incident keys and metric labels: `[A-Za-z0-9_.-]+`.
fn name_ok(name: &str) -> bool {
    !name.is_empty() && (name.bytes()).all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn positive(durations: &[(&str, Dur)]) -> Checked {
    match durations.iter().find(|(_, d)| d.0 <= 0) {
        Some((key, _)) => fault(*key, "must be greater than zero"),
        None => Ok(()),
    }
}

impl ConfigFile {
    /// Cross-field checks: the first fault found.
    pub(super) fn validate(&self) -> Checked {
        self.check_prometheus_metrics()?;
        self.check_engine()?;
        let mut customers = HashSet::new();
        unique_ids(
            self.customers.iter().map(|c| &c.id),
            "customers",
            &mut customers,
        )?;
        let mut calendars = HashSet::from([BUILTIN_24X7.to_owned()]);
        unique_ids(
            self.calendars.iter().map(|c| &c.id),
            "calendars",
            &mut calendars,
        )?;
        self.check_services(&customers, &calendars)?;
        self.check_credits(&customers)?;
        self.check_slas(&customers, &calendars)?;
        if let Some(api) = &self.api {
            check_tokens(api, &customers)?;
        }
        self.check_deliveries(&customers)?;
        self.check_burn_alerts()?;
        self.check_slos()?;
        self.check_github()
    }

    fn check_engine(&self) -> Checked {
        let eng = &self.engine;
        positive(&[
            ("engine.bucket", eng.bucket),
            ("engine.checkpoint_interval", eng.checkpoint_interval),
            ("engine.idle_timeout", eng.idle_timeout),
            ("engine.dedup_horizon", eng.dedup_horizon),
            ("engine.shutdown_grace", eng.shutdown_grace),
            ("engine.retention", eng.retention),
            ("engine.max_window", eng.max_window),
            ("engine.change_window", eng.change_window),
        ])
    }

    fn check_services(&self, customers: &HashSet<String>, calendars: &HashSet<String>) -> Checked {
        let mut ids = HashSet::new();
        unique_ids(self.services.iter().map(|s| &s.id), "services", &mut ids)?;
        for (i, s) in self.services.iter().enumerate() {
            let key = |k: &str| format!("services[{i}].{k}");
            known(customers, &s.customer, key("customer"), "customer")?;
            known(
                calendars,
                &s.service_hours,
                key("service_hours"),
                "calendar",
            )?;
            if !(0.0..=100.0).contains(&s.availability_target) {
                return fault(key("availability_target"), "must be between 0 and 100");
            }
            if !(s.capacity_threshold > 0.0 && s.capacity_threshold.is_finite()) {
                return fault(key("capacity_threshold"), "must be a positive number");
            }
            let (stale, window) = (key("stale_after"), key("forecast_window"));
            positive(&[(&stale, s.stale_after), (&window, s.forecast_window)])?;
        }
        Ok(())
    }

    /// `[[credits]]`: one entry per known customer, tiers with `below` in
    /// (0, 100] and `credit_pct` in [0, 100].
    fn check_credits(&self, customers: &HashSet<String>) -> Checked {
        let mut seen = HashSet::new();
        for (i, c) in self.credits.iter().enumerate() {
            let key = |k: &str| format!("credits[{i}].{k}");
            known(customers, &c.customer, key("customer"), "customer")?;
            if !seen.insert(c.customer.clone()) {
                let what = format!("a second entry for customer {:?}", c.customer);
                return fault(key("customer"), what);
            }
            if c.tiers.is_empty() {
                return fault(key("tiers"), "needs at least one tier");
            }
            for (j, t) in c.tiers.iter().enumerate() {
                if !(t.below > 0.0 && t.below <= 100.0) {
                    let what = "`below` must be a percentage in (0, 100]";
                    return fault(format!("credits[{i}].tiers[{j}].below"), what);
                }
                if !(0.0..=100.0).contains(&t.credit_pct) {
                    let what = "`credit_pct` must be a percentage in [0, 100]";
                    let k = format!("credits[{i}].tiers[{j}].credit_pct");
                    return fault(k, what);
                }
            }
        }
        Ok(())
    }

    fn check_slas(&self, customers: &HashSet<String>, calendars: &HashSet<String>) -> Checked {
        let mut ids = HashSet::new();
        for (i, s) in self.slas.iter().enumerate() {
            let key = |k: &str| format!("slas[{i}].{k}");
            if !ids.insert(s.id.clone()) {
                let what = format!("duplicate SLA id {:?}", s.id);
                return fault(key("id"), what);
            }
            known(customers, &s.customer, key("customer"), "customer")?;
            known(calendars, &s.calendar, key("calendar"), "calendar")?;
            if !(s.warn_at > 0.0 && s.warn_at <= 1.0) {
                return fault(key("warn_at"), "must be in (0, 1]");
            }
        }
        Ok(())
    }

    /// `[[burn_alerts]]` (contract section 11).
    fn check_burn_alerts(&self) -> Checked {
        let bucket = self.engine.bucket.0;
        let defaults = super::burn::default_burn_alerts();
        let (alerts, written) = match &self.burn_alerts {
            Some(alerts) => (alerts, true),
            None => (&defaults, false),
        };
        let mut names = HashSet::new();
        for (i, a) in alerts.iter().enumerate() {
            let key = |k: &str| format!("burn_alerts[{i}].{k}");
            let name = &a.name;
            if !name_ok(name) || !names.insert(name.clone()) {
                let what = format!("empty, duplicate or not [A-Za-z0-9_.-]: {name:?}");
                return fault(key("name"), what);
            }
            for (k, d) in [("long", &a.long), ("short", &a.short)] {
                if d.ms % bucket != 0 && !written {
                    let what = format!(
                        "the default burn alerts' windows ({}) are not multiples of engine.bucket: write [[burn_alerts]] that fit it, or burn_alerts = []",
                        d.text
                    );
                    return fault("engine.bucket", what);
                }
                if d.ms <= 0 || d.ms % bucket != 0 {
                    let what = format!(
                        "{:?} must be a positive multiple of engine.bucket ({} ms)",
                        d.text, bucket
                    );
                    return fault(key(k), what);
                }
            }
            if a.short.ms >= a.long.ms {
                return fault(key("short"), "must be shorter than `long`");
            }
            if !(a.factor > 0.0 && a.factor.is_finite()) {
                return fault(key("factor"), "must be a positive number");
            }
        }
        Ok(())
    }

    /// `[[slos]]` (contract section 14): ids like alert names, a known
    /// service, an objective with a budget, exactly one of `bad` and `good`.
    fn check_slos(&self) -> Checked {
        let services: HashSet<&str> = self.services.iter().map(|s| s.id.as_str()).collect();
        let mut ids = HashSet::new();
        for (i, s) in self.slos.iter().enumerate() {
            let key = |k: &str| format!("slos[{i}].{k}");
            if !name_ok(s.id()) || !ids.insert(s.id()) {
                let what = format!("empty, duplicate or not [A-Za-z0-9_.-]: {:?}", s.id());
                return fault(key("id"), what);
            }
            if !services.contains(s.service()) {
                let what = format!("unknown service {:?}", s.service());
                return fault(key("service"), what);
            }
            if !(s.objective > 0.0 && s.objective < 100.0) {
                let what = "must be a percentage in (0, 100): 100 leaves no budget to burn";
                return fault(key("objective"), what);
            }
            if s.window.rolling_ms().is_some_and(|ms| ms <= 0) {
                return fault(key("window"), "must be greater than zero");
            }
            let side = match (&s.bad, &s.good) {
                (Some(b), None) => ("bad", b),
                (None, Some(g)) => ("good", g),
                _ => return fault(key("bad"), "give exactly one of `bad` and `good`"),
            };
            for (k, name) in [("total", &s.total), side] {
                if name.is_empty() {
                    return fault(key(k), "must not be empty");
                }
            }
            if side.1 == &s.total {
                return fault(key(side.0), "must name another counter than `total`");
            }
        }
        Ok(())
    }

    /// `[ingest.github]`: a secret GitHub can sign with, known services.
    fn check_github(&self) -> Checked {
        let Some(g) = &self.ingest.github else {
            return Ok(());
        };
        if g.secret.len() < 16 {
            return fault(
                "ingest.github.secret",
                "use at least 16 characters (GitHub signs with it)",
            );
        }
        for (repo, service) in &g.repositories {
            if self.services.iter().all(|s| s.id != *service) {
                let what = format!("repository {repo:?}: unknown service {service:?}");
                return fault("ingest.github.repositories", what);
            }
        }
        Ok(())
    }

    /// `[delivery]` and `[[deliveries]]`.
    fn check_deliveries(&self, customers: &HashSet<String>) -> Checked {
        let d = &self.delivery;
        if d.max_pending == 0
            || d.timeout.0 <= 0
            || d.min_backoff.0 <= 0
            || d.max_backoff < d.min_backoff
        {
            return fault(
                "delivery",
                "max_pending, timeout and min_backoff must be positive, max_backoff ≥ min_backoff",
            );
        }
        let mut ids = HashSet::new();
        for (i, t) in self.deliveries.iter().enumerate() {
            let key = |k: &str| format!("deliveries[{i}].{k}");
            let id = &t.id;
            let id_ok = !id.is_empty()
                && (id.bytes()).all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            if !id_ok || !ids.insert(id.clone()) {
                let what = format!("empty, duplicate or not [A-Za-z0-9_-]: {id:?}");
                return fault(key("id"), what);
            }
            match &t.url {
                Some(u) if !["http://", "https://"].iter().any(|p| u.starts_with(p)) => {
                    return fault(key("url"), "must be an http:// or https:// URL");
                }
                None if t.kind == DeliveryType::Webhook => {
                    return fault(key("url"), "a webhook needs a url");
                }
                _ => {}
            }
            if t.kind == DeliveryType::Pagerduty
                && t.routing_key.is_none() == t.routing_key_env.is_none()
            {
                let what = "pagerduty needs exactly one of routing_key and routing_key_env";
                return fault(key("routing_key"), what);
            }
            for c in &t.customers {
                known(customers, c, key("customers"), "customer")?;
            }
        }
        Ok(())
    }
}

fn check_tokens(api: &ApiConfig, customers: &HashSet<String>) -> Checked {
    for (i, t) in api.tokens.iter().enumerate() {
        let key = |k: &str| format!("api.tokens[{i}].{k}");
        let h = &t.sha256;
        if h.len() != 64
            || !h
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            let what = "must be 64 lower-case hex characters (SHA-256 of the token)";
            return fault(key("sha256"), what);
        }
        if let Some(c) = &t.customer {
            known(customers, c, key("customer"), "customer")?;
        }
        if let (Some(_), Some(_)) = (&t.scope, &t.customer) {
            let what = "an ingest token cannot also be limited to a customer (use `customers`)";
            return fault(key("scope"), what);
        }
        if let Some(list) = &t.customers {
            if t.scope.is_none() {
                let what = "only an ingest token (scope = \"ingest\") takes `customers`";
                return fault(key("customers"), what);
            }
            if let Some(c) = list.iter().find(|c| !customers.contains(*c)) {
                return fault(key("customers"), format!("unknown customer {c:?}"));
            }
        }
    }
    Ok(())
}

impl ConfigFile {
    /// `[[ingest.prometheus.metrics]]`: at most one capacity source, a fixed
    /// capacity positive and finite, and `series_is = "free"` only with one.
    fn check_prometheus_metrics(&self) -> Checked {
        for (i, m) in self.ingest.prometheus.metrics.iter().enumerate() {
            let key = |k: &str| format!("ingest.prometheus.metrics[{i}].{k}");
            if m.capacity.is_some() && m.capacity_series.is_some() {
                return fault(
                    key("capacity"),
                    "give `capacity` or `capacity_series`, not both",
                );
            }
            if m.capacity.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
                return fault(key("capacity"), "must be a positive number");
            }
            let no_capacity = m.capacity.is_none() && m.capacity_series.is_none();
            if m.series_is == super::SeriesIs::Free && no_capacity {
                return fault(
                    key("series_is"),
                    "\"free\" needs `capacity` or `capacity_series`",
                );
            }
        }
        for (i, c) in self.ingest.prometheus.counters.iter().enumerate() {
            let key = |k: &str| format!("ingest.prometheus.counters[{i}].{k}");
            if c.series.is_empty() {
                return fault(key("series"), "must not be empty");
            }
            if c.name.is_empty() {
                return fault(key("name"), "must not be empty");
            }
        }
        Ok(())
    }
}
