//! `slaflow replay` as a user runs it: counts add up on a large input, and bad
//! arguments get a one-line error and a non-zero exit.

mod common;

use std::fmt::Write as _;
use std::path::Path;

use common::slaflow;

const CONFIG: &str = r#"
[[customers]]
id = "acme"

[[services]]
id = "web"
customer = "acme"
"#;

const T0: i64 = 1_793_577_600_000; // 2026-11-02T00:00:00Z

/// 270,000 monitoring lines with 270 each of malformed, duplicate, late and
/// unknown-service records.
fn monitoring(path: &Path) {
    let mut s = String::with_capacity(270_000 * 110);
    for i in 0..270_000i64 {
        let ts = T0 + i * 1_000;
        match i % 1000 {
            500 => writeln!(s, "garbage line {i}"),
            700 => writeln!(s, r#"{{"event_id":"m{}","ts":{ts},"service":"web","kind":"probe","source":"a","status":"up"}}"#, i - 1),
            900 => writeln!(s, r#"{{"event_id":"m{i}","ts":{},"service":"web","kind":"probe","source":"a","status":"down"}}"#, ts - 120_000),
            300 => writeln!(s, r#"{{"event_id":"m{i}","ts":{ts},"service":"ghost","kind":"probe","source":"a","status":"up"}}"#),
            _ => writeln!(s, r#"{{"event_id":"m{i}","ts":{ts},"service":"web","kind":"probe","source":"a","status":"up"}}"#),
        }
        .expect("write");
    }
    std::fs::write(path, s).expect("write monitoring");
}

/// 30,000 ticket lines (10,000 tickets × 3) with 10 conflicts, 10 unknown
/// customers (whose 20 follow-ups are unknown tickets) and 10 more unknown tickets.
fn tickets(path: &Path) {
    let mut s = String::new();
    for k in 0..10_000i64 {
        let t = T0 + k * 3_000;
        let customer = if k % 1000 == 30 { "nobody" } else { "acme" };
        writeln!(s, r#"{{"event_id":"c{k}","ts":{t},"ticket":"T{k}","type":"created","customer":"{customer}","priority":"P2","kind":"incident"}}"#).expect("w");
        let target = if k % 1000 == 10 {
            format!("GHOST{k}")
        } else {
            format!("T{k}")
        };
        writeln!(
            s,
            r#"{{"event_id":"r{k}","ts":{},"ticket":"{target}","type":"responded"}}"#,
            t + 1_000
        )
        .expect("w");
        if k % 1000 == 20 {
            writeln!(s, r#"{{"event_id":"x{k}","ts":{},"ticket":"T{k}","type":"created","customer":"acme","priority":"P1","kind":"incident"}}"#, t + 2_000).expect("w");
        } else {
            writeln!(s, r#"{{"event_id":"s{k}","ts":{},"ticket":"T{k}","type":"status","status":"resolved"}}"#, t + 2_000).expect("w");
        }
    }
    std::fs::write(path, s).expect("write tickets");
}

#[test]
fn replay_of_300k_lines_accounts_for_every_record() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, mon, tkt, out) = (
        dir.path().join("c.toml"),
        dir.path().join("m.ndjson"),
        dir.path().join("t.ndjson"),
        dir.path().join("out"),
    );
    std::fs::write(&cfg, CONFIG).expect("config");
    monitoring(&mon);
    tickets(&tkt);
    let summary = replay(
        &cfg,
        &[("--monitoring", &mon), ("--tickets", &tkt)],
        &out,
        &[],
    );
    let dl = &summary["deadletter"];
    let expect = [
        ("malformed", 270),
        ("late", 270),
        ("duplicate", 270),
        ("unknown_service", 270),
        ("unknown_customer", 10),
        ("unknown_ticket", 30),
        ("conflict", 10),
    ];
    for (reason, n) in expect {
        assert_eq!(dl[reason], n, "{reason}: {summary}");
    }
    let dead_total: u64 = expect.iter().map(|(_, n)| *n as u64).sum();
    assert_eq!(summary["read"], 300_000);
    assert_eq!(summary["applied"].as_u64(), Some(300_000 - dead_total));
    let lines = std::fs::read_to_string(out.join("deadletter.ndjson")).expect("deadletter");
    assert_eq!(lines.lines().count() as u64, dead_total);
    // Every dead letter points back at its input line.
    for l in lines.lines().take(50) {
        let d: serde_json::Value = serde_json::from_str(l).expect("json line");
        let file = if d["partition"] == 0 { &mon } else { &tkt };
        let n = d["offset"].as_u64().expect("offset") as usize;
        let original = std::fs::read_to_string(file)
            .expect("read")
            .lines()
            .nth(n)
            .map(str::to_owned);
        assert_eq!(original.as_deref(), d["raw"].as_str(), "{l}");
    }
}

#[test]
fn replay_writes_every_output_and_is_deterministic() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let g = slaflow()
        .args([
            "generate",
            "--days",
            "1",
            "--seed",
            "9",
            "--monitoring-files",
            "2",
            "--out",
        ])
        .arg(&data)
        .output()
        .expect("generate");
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    let run = |out: &str| {
        let o = slaflow()
            .args(["replay", "--config"])
            .arg(data.join("config.toml"))
            .arg("--monitoring")
            .arg(data.join("monitoring-0.ndjson"))
            .arg(data.join("monitoring-1.ndjson"))
            .arg("--tickets")
            .arg(data.join("tickets.ndjson"))
            .args(["--from", "2026-11-02", "--to", "2026-11-03", "--out"])
            .arg(dir.path().join(out))
            .output()
            .expect("replay");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let mut files: Vec<(String, String)> = std::fs::read_dir(dir.path().join(out))
            .expect("out dir")
            .map(|e| {
                let p = e.expect("entry").path();
                let text = std::fs::read_to_string(&p).expect("read");
                // generated_at is the only field allowed to differ.
                let text: String = text
                    .lines()
                    .filter(|l| !l.contains("\"generated_at\""))
                    .collect::<Vec<_>>()
                    .join("\n");
                (
                    p.file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    text,
                )
            })
            .collect();
        files.sort();
        files
    };
    let a = run("a");
    let names: Vec<&str> = a.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "capacity-acme.json",
            "capacity-globex.json",
            "deadletter.ndjson",
            "incidents.ndjson",
            "report-acme.json",
            "report-globex.json",
            "summary.json",
            "tickets.ndjson"
        ]
    );
    for (name, text) in &a {
        if name != "deadletter.ndjson" {
            assert!(!text.trim().is_empty(), "{name} is empty");
        }
    }
    assert_eq!(a, run("b"));
}

fn one_line_error(args: &[&str]) -> String {
    let out = slaflow().args(args).output().expect("run");
    assert!(!out.status.success(), "{args:?} should fail");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    assert_eq!(err.lines().count(), 1, "not one line: {err}");
    err
}

#[test]
fn cli_errors_say_what_would_work() {
    // The live rows need a broker: no silent empty table.
    let err = one_line_error(&["bench", "--only", "live"]);
    assert!(err.contains("--brokers"), "{err}");
    // One line, and clap's "did you mean" kept.
    let err = one_line_error(&["replya"]);
    assert!(
        err.contains("tip: a similar subcommand exists: 'replay'"),
        "{err}"
    );
    // Every accepted time form is named.
    let err = one_line_error(&[
        "replay",
        "--config",
        "/dev/null",
        "--out",
        "/tmp/x",
        "--from",
        "2026/11/01",
    ]);
    assert!(err.contains("YYYY-MM-DD"), "{err}");
}

#[test]
fn missing_input_file_is_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, CONFIG).expect("config");
    let out = dir.path().join("out");
    let err = one_line_error(&[
        "replay",
        "--config",
        cfg.to_str().unwrap_or(""),
        "--monitoring",
        "/no/such.ndjson",
        "--out",
        out.to_str().unwrap_or(""),
    ]);
    assert!(err.contains("/no/such.ndjson"), "{err}");
    assert!(!out.exists(), "no output directory for a failed start");
}

#[test]
fn bad_config_is_one_line_with_file_line_and_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, format!("{CONFIG}stale_after = \"soon\"\n")).expect("config");
    let err = one_line_error(&[
        "replay",
        "--config",
        cfg.to_str().unwrap_or(""),
        "--monitoring",
        "/dev/null",
        "--out",
        "/tmp/x",
    ]);
    assert!(
        err.contains("c.toml:8") && err.contains("services[0].stale_after") && err.contains("soon"),
        "{err}"
    );
    let err = one_line_error(&[
        "replay",
        "--config",
        "/no/config.toml",
        "--monitoring",
        "/dev/null",
        "--out",
        "/tmp/x",
    ]);
    assert!(err.contains("/no/config.toml"), "{err}");
    let err = one_line_error(&[
        "replay",
        "--config",
        cfg.to_str().unwrap_or(""),
        "--from",
        "someday",
    ]);
    assert!(err.contains("someday"), "{err}");
}

/// Runs `slaflow replay --config cfg` with `inputs` (flag, file) into `out`, plus
/// `extra` arguments; returns the summary.
fn replay(cfg: &Path, inputs: &[(&str, &Path)], out: &Path, extra: &[&str]) -> serde_json::Value {
    let mut cmd = slaflow();
    cmd.args(["replay", "--config"])
        .arg(cfg)
        .arg("--out")
        .arg(out);
    for (flag, file) in inputs {
        cmd.arg(flag).arg(file);
    }
    let res = cmd.args(extra).output().expect("run replay");
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    serde_json::from_slice(&std::fs::read(out.join("summary.json")).expect("summary"))
        .expect("json")
}

/// Replays `lines` as one monitoring file with `--now`; returns the summary.
fn replay_monitoring(dir: &Path, lines: &[String], now: &str) -> serde_json::Value {
    let (cfg, mon, out) = (
        dir.join("c.toml"),
        dir.join(format!("m-{now}.ndjson")),
        dir.join(format!("out-{now}")),
    );
    std::fs::write(&cfg, CONFIG).expect("config");
    std::fs::write(&mon, lines.join("\n")).expect("monitoring");
    replay(&cfg, &[("--monitoring", &mon)], &out, &["--now", now])
}

/// Contract section 2: one probe with a broken clock costs one `future` dead
/// letter, and a malformed record never moves the watermark, so the rest of
/// the stream is applied (before, both made every later record `late`).
#[test]
fn a_probe_stamped_2099_is_future_and_the_rest_of_its_stream_is_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = |i: i64, ts: String| {
        format!(
            r#"{{"event_id":"m{i}","ts":{ts},"service":"web","kind":"probe","source":"a","status":"up"}}"#
        )
    };
    let mut lines: Vec<String> = (0..3_000)
        .map(|i| probe(i, (T0 + i * 1_000).to_string()))
        .collect();
    lines[100] = probe(100, "\"2099-01-01T00:00:00Z\"".into());
    lines[200] = r#"{"event_id":"bad","ts":"2099-01-01T00:00:00Z","service":"web","kind":"probe","source":"a","status":"sideways"}"#.to_owned();
    lines[300] = probe(300, "253402300800000".into()); // past year 9999: malformed
    let s = replay_monitoring(dir.path(), &lines, "2026-11-03");
    let dl = &s["deadletter"];
    assert_eq!(
        (
            dl["future"].as_u64(),
            dl["malformed"].as_u64(),
            dl["late"].as_u64()
        ),
        (Some(1), Some(2), Some(0)),
        "{s}"
    );
    assert_eq!(s["applied"], 2_997, "{s}");
    // The processing clock is `--now`: before the data, everything is future.
    let s = replay_monitoring(dir.path(), &lines, "2026-11-01");
    assert_eq!(s["deadletter"]["future"], 2_998, "{s}");
    assert_eq!(s["applied"], 0, "{s}");
    // A bad `--now` is refused like any time argument.
    let err = one_line_error(&[
        "replay",
        "--config",
        "c.toml",
        "--monitoring",
        "m",
        "--out",
        "o",
        "--now",
        "9000000000000000000",
    ]);
    assert!(err.contains("now") || err.contains("bad time"), "{err}");
}

/// Contract section 2 with the record size limit (docs/semantics.md): a line
/// over 64 KiB is one `malformed` dead letter whose `raw` is its first 64 KiB,
/// and the lines around it are applied; a megabytes-long line is read without
/// being held whole.
#[test]
fn lines_over_the_record_limit_are_malformed_and_the_rest_is_applied() {
    let dir = tempfile::tempdir().expect("tempdir");
    let probe = |i: i64, pad: usize| {
        format!(
            r#"{{"event_id":"m{i}","ts":{},"service":"web","kind":"probe","source":"a","status":"up","pad":"{}"}}"#,
            T0 + i * 1_000,
            "x".repeat(pad)
        )
    };
    let mut lines: Vec<String> = (0..100).map(|i| probe(i, 0)).collect();
    lines[10] = probe(10, 70_000);
    lines[20] = probe(20, 5 << 20);
    lines[30] = probe(30, 60_000);
    let s = replay_monitoring(dir.path(), &lines, "2026-11-03");
    assert_eq!(s["deadletter"]["malformed"], 2, "{s}");
    assert_eq!(s["applied"], 98, "{s}");
    let out = dir.path().join("out-2026-11-03/deadletter.ndjson");
    let dead: Vec<serde_json::Value> = std::fs::read_to_string(out)
        .expect("dead letters")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let got: Vec<(u64, usize)> = dead
        .iter()
        .map(|d| {
            (
                d["offset"].as_u64().unwrap_or(0),
                d["raw"].as_str().map_or(0, str::len),
            )
        })
        .collect();
    assert_eq!(got, [(10, 65_536), (20, 65_536)], "{dead:?}");
    assert!(lines[20].starts_with(dead[1]["raw"].as_str().unwrap_or("-")));
    assert_eq!(
        dead[0]["error"],
        "record longer than 65536 bytes; `raw` holds its first 65536"
    );
}

/// A first record stamped 1970 (an agent with an uninitialised clock) before a
/// day of generated traffic changes nothing in that day's outputs.
#[test]
fn a_record_stamped_1970_changes_nothing_for_the_day_and_costs_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let g = slaflow()
        .args(["generate", "--days", "1", "--seed", "5", "--out"])
        .arg(&data)
        .output()
        .expect("generate");
    assert!(g.status.success(), "{}", String::from_utf8_lossy(&g.stderr));
    let day = std::fs::read_to_string(data.join("monitoring-0.ndjson")).expect("day");
    let service = day
        .lines()
        .find_map(|l| {
            serde_json::from_str::<serde_json::Value>(l).ok()?["service"]
                .as_str()
                .map(str::to_owned)
        })
        .expect("a service");
    let with_1970 = format!(
        "{{\"event_id\":\"epoch\",\"ts\":1000,\"service\":\"{service}\",\"kind\":\"probe\",\"source\":\"agent\",\"status\":\"up\"}}\n{day}"
    );
    std::fs::write(dir.path().join("m-1970.ndjson"), with_1970).expect("write");
    let run = |mon: &Path, out: &str| {
        let summary = replay(
            &data.join("config.toml"),
            &[
                ("--monitoring", mon),
                ("--tickets", &data.join("tickets.ndjson")),
            ],
            &dir.path().join(out),
            &["--from", "2026-11-02", "--to", "2026-11-03"],
        );
        let read = |f: &str| {
            std::fs::read_to_string(dir.path().join(out).join(f))
                .expect("output")
                .lines()
                .filter(|l| !l.contains("\"generated_at\""))
                .collect::<Vec<_>>()
                .join("\n")
        };
        (
            summary,
            read("incidents.ndjson"),
            read("report-acme.json"),
            read("report-globex.json"),
        )
    };
    let alone = run(&data.join("monitoring-0.ndjson"), "alone");
    let early = run(&dir.path().join("m-1970.ndjson"), "early");
    assert_eq!(
        early.0["applied"].as_u64(),
        alone.0["applied"].as_u64().map(|n| n + 1)
    );
    assert_eq!(early.1, alone.1, "incidents");
    assert_eq!(early.2, alone.2, "acme report");
    assert_eq!(early.3, alone.3, "globex report");
    // The cost (before: minutes and gigabytes) is measured by `slaflow bench
    // --only span`; structure sizes are bounded by the engine's unit tests.
}

/// Issue 31: data replayed with the wrong config no longer only shows as thin
/// reports; stderr says how much was refused and the likely cause, and a
/// normal share of faults (under 5 %) stays quiet.
#[test]
fn a_replay_mostly_dead_lettered_says_why_on_stderr() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (cfg, mon) = (dir.path().join("c.toml"), dir.path().join("m.ndjson"));
    std::fs::write(&cfg, CONFIG).expect("config");
    let run = |services: &[&str], out: &str| {
        let lines: Vec<String> = (services.iter().enumerate())
            .map(|(i, s)| format!(r#"{{"event_id":"m{i}","ts":{},"service":"{s}","kind":"probe","source":"a","status":"up"}}"#, T0 + i as i64 * 1000))
            .collect();
        std::fs::write(&mon, lines.join("\n")).expect("monitoring");
        let res = slaflow()
            .args(["replay", "--config"])
            .arg(&cfg)
            .arg("--monitoring")
            .arg(&mon)
            .arg("--out")
            .arg(dir.path().join(out))
            .output()
            .expect("run replay");
        assert!(res.status.success());
        String::from_utf8_lossy(&res.stderr).into_owned()
    };
    let mut services = vec!["web"; 4];
    services.extend(["ghost"; 6]);
    let err = run(&services, "a");
    assert!(
        err.contains("warning: 60.0 % of the records read were dead-lettered (unknown_service 6)")
            && err.contains("[[services]]"),
        "{err}"
    );
    let mut services = vec!["web"; 99];
    services.push("ghost");
    assert_eq!(run(&services, "b"), "");
}
