//! The annual pack (contract section 15): `slaflow evidence --year` on
//! generated traffic spanning two months writes both monthly packs (each one
//! verifies on its own, as `--month` would make it), `review.json` and
//! `review.html` and a root manifest; `slaflow verify` accepts the pack and
//! names the first file and field of an edited month report, review or input.

mod common;

use std::path::Path;

use common::slaflow;
use serde_json::Value;

fn run(args: &[&str]) -> (bool, String) {
    let o = slaflow().args(args).output().expect("slaflow");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.success(), text)
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).expect("read");
    assert!(text.contains(from), "{} lacks {from}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).expect("write");
}

#[test]
fn a_year_pack_of_generated_traffic_verifies_and_catches_edits() {
    let dir = tempfile::tempdir().expect("tempdir");
    let p = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let (ok, out) = run(&[
        "generate",
        "--out",
        &p("data"),
        "--days",
        "10",
        "--start",
        "2026-01-26",
    ]);
    assert!(ok, "{out}");
    let inputs = [
        "--config",
        &p("data/config.toml"),
        "--monitoring",
        &p("data/monitoring-0.ndjson"),
        "--tickets",
        &p("data/tickets.ndjson"),
    ];
    let year_dir = p("year");
    let mut args = vec!["evidence"];
    args.extend(inputs);
    args.extend(["--customer", "acme", "--year", "2026", "--out", &year_dir]);
    let (ok, out) = run(&args);
    assert!(ok, "{out}");
    assert!(out.contains("2 monthly packs"), "{out}");

    // The root manifest lists every file; each month is a pack of its own.
    let root: Value =
        serde_json::from_slice(&std::fs::read(p("year/manifest.json")).expect("manifest"))
            .expect("json");
    assert_eq!(root["months"], serde_json::json!(["2026-01", "2026-02"]));
    let listed: Vec<&str> = (root["outputs"].as_array().expect("outputs").iter())
        .filter_map(|o| o["name"].as_str())
        .collect();
    for name in [
        "2026-01/report.json",
        "2026-02/manifest.json",
        "2026-02/report.html",
        "review.json",
        "review.html",
    ] {
        assert!(listed.contains(&name), "{name} not in {listed:?}");
    }
    for month in ["2026-01", "2026-02"] {
        let (ok, out) = run(&["verify", &p(&format!("year/{month}"))]);
        assert!(ok && out.trim() == "verified", "{month} on its own: {out}");
    }
    let (ok, out) = run(&["verify", &p("year")]);
    assert!(ok && out.trim() == "verified", "{out}");

    // The review holds both months, per service, with the monthly figures.
    let review: Value =
        serde_json::from_slice(&std::fs::read(p("year/review.json")).expect("review"))
            .expect("json");
    let jan: Value =
        serde_json::from_slice(&std::fs::read(p("year/2026-01/report.json")).expect("jan"))
            .expect("json");
    let months = review["months"].as_array().expect("months");
    assert_eq!(months.len(), 2);
    let web = (months[0]["services"].as_array().expect("services").iter())
        .find(|s| s["service"] == "web")
        .expect("web in January");
    let web_report = (jan["services"].as_array().expect("services").iter())
        .find(|s| s["service"] == "web")
        .expect("web in the report");
    for field in [
        "availability_pct",
        "raw_availability_pct",
        "outages",
        "longest_outage_s",
        "credit_pct",
    ] {
        assert_eq!(web[field], web_report[field], "{field}");
    }
    assert_eq!(
        months[0]["change_failure_rate_pct"],
        jan["changes"]["failure_rate_pct"]
    );
    let page = std::fs::read_to_string(p("year/review.html")).expect("page");
    assert!(
        page.contains("<svg") && page.contains(r#"data-month="2026-02""#),
        "trend and months"
    );

    // Edits are named: a month's report field, the review, an input line.
    let copy = |name: &str| {
        let to = dir.path().join(name);
        let o = std::process::Command::new("cp")
            .args(["-r", &p("year"), &to.to_string_lossy()])
            .status();
        assert!(o.expect("cp").success());
        to
    };
    let edited = copy("edited-month");
    let field = format!("\"outages\": {}", web_report["outages"]);
    edit(
        &edited.join("2026-01/report.json"),
        &field,
        "\"outages\": 99",
    );
    let (ok, out) = run(&["verify", &edited.to_string_lossy()]);
    assert!(
        !ok && out.contains("2026-01/report.json") && out.contains("outages"),
        "{out}"
    );

    let edited = copy("edited-review");
    edit(
        &edited.join("review.json"),
        "\"year\": 2026",
        "\"year\": 2025",
    );
    let (ok, out) = run(&["verify", &edited.to_string_lossy()]);
    assert!(
        !ok && out.contains("review.json") && out.contains("year"),
        "{out}"
    );

    let monitoring = dir.path().join("data/monitoring-0.ndjson");
    edit(&monitoring, "\"status\":\"up\"", "\"status\":\"down\"");
    let (ok, out) = run(&["verify", &p("year")]);
    assert!(!ok && out.contains("monitoring-0.ndjson"), "{out}");
}
