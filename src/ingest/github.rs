//! GitHub `deployment_status` webhooks (`POST /v1/ingest/github`, contract
//! section 15): a deployment's final status becomes a change event.
//!
//! - `success` → `success`; `failure` and `error` → `failed`; other states
//!   (`pending`, `queued`, `in_progress`, `inactive`) are ignored and counted;
//! - `change_id` = the deployment's id, `ts` = the status's `created_at`,
//!   `event_id` = `github:` + the status's id (a redelivery is a duplicate);
//! - the service comes from `[ingest.github.repositories]` by the repository's
//!   `full_name`; deployments to environments not in `environments` are
//!   ignored and counted.
//!
//! The body's signature (`X-Hub-Signature-256`) is checked by the handler.

use serde_json::Value;

use super::{Rejected, Translated};
use crate::config::Config;
use crate::event::Topic;

/// Translates one `deployment_status` body.
pub fn translate(config: &Config, body: &[u8]) -> Result<Translated, Rejected> {
    let raw = || String::from_utf8_lossy(body).into_owned();
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| Rejected::malformed(0, format!("not a GitHub webhook body: {e}"), raw()))?;
    let mut out = Translated::default();
    let Some(github) = &config.ingest.github else {
        out.ignored += 1;
        return Ok(out);
    };
    let status = &v["deployment_status"];
    let outcome = match status["state"].as_str() {
        Some("success") => "success",
        Some("failure" | "error") => "failed",
        Some(_) => {
            out.ignored += 1;
            return Ok(out);
        }
        None => {
            let e = "deployment_status.state missing: not a deployment_status event";
            out.rejected.push(Rejected::malformed(0, e, raw()));
            return Ok(out);
        }
    };
    let environment = (status["environment"].as_str())
        .or_else(|| v["deployment"]["environment"].as_str())
        .unwrap_or("");
    if !github.environments.is_empty() && !github.environments.iter().any(|e| e == environment) {
        out.ignored += 1;
        return Ok(out);
    }
    let repo = v["repository"]["full_name"].as_str().unwrap_or("");
    let Some(service) = github.repositories.get(repo) else {
        let e = format!("repository {repo:?} is not in [ingest.github.repositories]");
        out.rejected.push(Rejected::malformed(0, e, raw()));
        return Ok(out);
    };
    let id = |x: &Value| {
        x.as_u64()
            .map(|n| n.to_string())
            .or_else(|| x.as_str().map(str::to_owned))
    };
    let (Some(deployment), Some(status_id)) = (id(&v["deployment"]["id"]), id(&status["id"]))
    else {
        let e = "deployment.id and deployment_status.id are needed";
        out.rejected.push(Rejected::malformed(0, e, raw()));
        return Ok(out);
    };
    let event = serde_json::json!({
        "event_id": format!("github:{status_id}"),
        "ts": status["created_at"],
        "service": service,
        "kind": "change",
        "change_id": deployment,
        "outcome": outcome,
    });
    out.push(config, Topic::Monitoring, 0, event.to_string());
    Ok(out)
}
