//! `slaflow evidence` and `slaflow verify` as a provider and an auditor use them
//! (contract section 12): a pack of generated traffic verifies; its report page
//! shows the JSON report's numbers; a changed input line, a changed config and
//! edited outputs are each caught and named; with Chromium, the page prints.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::slaflow;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Generated traffic (3 days from 2026-11-02) and one pack of acme's November.
struct Fixture {
    _dir: tempfile::TempDir,
    input: PathBuf,
    pack: PathBuf,
}

fn run(args: &[&str]) -> Output {
    slaflow().args(args).output().expect("run slaflow")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn evidence(input: &Path, out: &Path, extra: &[&str]) -> Output {
    let s = |p: PathBuf| p.to_string_lossy().into_owned();
    let (config, mon, tickets, out) = (
        s(input.join("config.toml")),
        s(input.join("monitoring-0.ndjson")),
        s(input.join("tickets.ndjson")),
        s(out.to_owned()),
    );
    let mut args = vec![
        "evidence",
        "--config",
        &config,
        "--monitoring",
        &mon,
        "--tickets",
        &tickets,
        "--customer",
        "acme",
        "--month",
        "2026-11",
        "--out",
        &out,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    let generated = run(&["generate", "--out", &input.to_string_lossy(), "--days", "3"]);
    assert!(generated.status.success(), "{}", text(&generated));
    // Three days hold no service with three outages: point out two.
    let config = input.join("config.toml");
    let text_of = std::fs::read_to_string(&config).expect("config");
    std::fs::write(&config, format!("{text_of}\n[report]\nproblem_after = 2\n")).expect("write");
    let pack = dir.path().join("pack");
    let made = evidence(&input, &pack, &[]);
    assert!(made.status.success(), "{}", text(&made));
    Fixture {
        _dir: dir,
        input,
        pack,
    }
}

fn verify(dir: &Path, extra: &[&str]) -> (bool, String) {
    let mut args = vec!["verify".to_owned(), dir.to_string_lossy().into_owned()];
    args.extend(extra.iter().map(|s| s.to_string()));
    let o = slaflow().args(&args).output().expect("verify");
    let code = o.status.code();
    assert!(matches!(code, Some(0 | 1)), "{code:?}: {}", text(&o));
    (code == Some(0), text(&o))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("read")).expect("json")
}

/// A copy of the pack to tamper with.
fn copy_pack(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("pack") {
        let e = e.expect("entry");
        std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
    }
}

#[test]
fn a_pack_verifies_and_every_tampering_is_named() {
    let f = fixture();
    let (ok, out) = verify(&f.pack, &[]);
    assert!(ok && out.trim() == "verified", "{out}");

    // The manifest names every input with its hash and lines, every output with
    // its hash and size.
    let m = read_json(&f.pack.join("manifest.json"));
    assert_eq!(
        (&m["customer"], &m["from"], &m["to"]),
        (
            &Value::from("acme"),
            &Value::from("2026-11-01T00:00:00.000Z"),
            &Value::from("2026-12-01T00:00:00.000Z")
        )
    );
    for input in m["inputs"].as_array().expect("inputs") {
        let bytes = std::fs::read(input["path"].as_str().expect("path")).expect("input");
        assert_eq!(input["sha256"], hex::encode(Sha256::digest(&bytes)));
        let lines = bytes.iter().filter(|&&b| b == b'\n').count();
        assert_eq!(input["lines"], lines as u64);
    }
    let names: Vec<&str> = (m["outputs"].as_array().expect("outputs").iter())
        .map(|o| o["name"].as_str().expect("name"))
        .collect();
    assert_eq!(
        names,
        [
            "report.json",
            "report.csv",
            "report.html",
            "incidents.ndjson",
            "tickets.ndjson"
        ]
    );
    for o in m["outputs"].as_array().expect("outputs") {
        let bytes = std::fs::read(f.pack.join(o["name"].as_str().expect("name"))).expect("out");
        assert_eq!(o["sha256"], hex::encode(Sha256::digest(&bytes)));
        assert_eq!(o["size"], bytes.len() as u64);
    }

    // The pack holds what a replay of the same files says about acme.
    let replay_out = f.pack.parent().expect("parent").join("replay");
    let replayed = run(&[
        "replay",
        "--config",
        &f.input.join("config.toml").to_string_lossy(),
        "--monitoring",
        &f.input.join("monitoring-0.ndjson").to_string_lossy(),
        "--tickets",
        &f.input.join("tickets.ndjson").to_string_lossy(),
        "--out",
        &replay_out.to_string_lossy(),
        "--from",
        "2026-11-01",
        "--to",
        "2026-12-01",
        "--now",
        m["generated_at"].as_str().expect("generated_at"),
    ]);
    assert!(replayed.status.success(), "{}", text(&replayed));
    let report = read_json(&f.pack.join("report.json"));
    assert_eq!(
        common::comparable(report.clone()),
        common::comparable(read_json(&replay_out.join("report-acme.json")))
    );
    let all = std::fs::read_to_string(replay_out.join("incidents.ndjson")).expect("incidents");
    // Actions with `at` in [from, to): a month-end resolve belongs to the next month.
    let acme: Vec<&str> = (all.lines())
        .filter(|l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| {
                v["customer"] == "acme" && v["at"].as_str().is_some_and(|a| a < "2026-12-01")
            })
        })
        .collect();
    let packed = std::fs::read_to_string(f.pack.join("incidents.ndjson")).expect("pack incidents");
    assert!(!acme.is_empty());
    let packed: Vec<&str> = packed.lines().collect();
    assert_eq!(packed.len(), acme.len());
    assert!(
        packed == acme,
        "every action of acme in November, in replay order"
    );
    let tickets = std::fs::read_to_string(f.pack.join("tickets.ndjson")).expect("tickets");
    assert!(tickets.lines().count() > 10);
    assert!(tickets.lines().all(|l| l.contains(r#""customer":"acme""#)));

    // The page shows the report's numbers.
    let html = std::fs::read_to_string(f.pack.join("report.html")).expect("html");
    common::check_report_page(&html, &report);
    assert!(html.contains("CHG-"), "maintenance listed with change ids");
    assert!(html.contains("Services with 2 or more outages"));
    // Problem candidates: the services with `problem_after` (2) or more outages.
    let mut candidates = 0;
    for svc in report["services"].as_array().expect("services") {
        let item = format!(
            r#"<li data-service="{}">"#,
            svc["service"].as_str().expect("id")
        );
        let recurring = svc["outages"].as_u64().expect("outages") >= 2;
        assert_eq!(html.contains(&item), recurring, "{}", svc["service"]);
        candidates += usize::from(recurring);
    }
    assert!(
        candidates > 0,
        "the generated days have a service with recurring outages"
    );

    // A changed input line: the input is named.
    let tampered = f
        .pack
        .parent()
        .expect("parent")
        .join("tampered-input.ndjson");
    let mon = std::fs::read_to_string(f.input.join("monitoring-0.ndjson")).expect("monitoring");
    let line = mon
        .lines()
        .position(|l| l.contains(r#""status":"up""#))
        .expect("an up probe");
    let changed: Vec<String> = (mon.lines().enumerate())
        .map(|(i, l)| {
            if i == line {
                l.replace(r#""up""#, r#""down""#)
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(&tampered, changed.join("\n") + "\n").expect("write");
    let (ok, out) = verify(&f.pack, &["--monitoring", &tampered.to_string_lossy()]);
    assert!(
        !ok && out.contains("tampered-input.ndjson") && out.contains("SHA-256"),
        "{out}"
    );

    // A changed config: named.
    let config = std::fs::read_to_string(f.input.join("config.toml")).expect("config");
    let edited = f.pack.parent().expect("parent").join("edited.toml");
    std::fs::write(&edited, config.replacen("99.9", "99.5", 1)).expect("write");
    let (ok, out) = verify(&f.pack, &["--config", &edited.to_string_lossy()]);
    assert!(
        !ok && out.contains("config") && out.contains("edited.toml"),
        "{out}"
    );

    // Edited outputs: the file and the field or line are named.
    // As written (serde_json may read a float one ulp off, so not re-serialised).
    let written = std::fs::read_to_string(f.pack.join("report.json")).expect("report");
    let key = r#""availability_pct": "#;
    let at = written.find(key).expect("an availability") + key.len();
    let first = written[at..]
        .split([',', '\n'])
        .next()
        .expect("a value")
        .to_owned();
    assert!(first.parse::<f64>().is_ok(), "{first}");
    for (file, from, to, named) in [
        (
            "report.json",
            format!(r#""availability_pct": {first}"#),
            r#""availability_pct": 100.0"#.to_owned(),
            "report.json: field services[0].availability_pct is 100.0".to_owned(),
        ),
        (
            "report.html",
            "incidents triggered in the period".into(),
            "incidents triggered in this period".into(),
            "report.html: line".into(),
        ),
        (
            "incidents.ndjson",
            r#""action":"trigger""#.into(),
            r#""action":"resolve""#.into(),
            "incidents.ndjson: line 1: field action".into(),
        ),
        (
            "report.csv",
            ",false,".into(),
            ",true,".into(),
            "report.csv: line 2, column met".into(),
        ),
    ] {
        let copy = f
            .pack
            .parent()
            .expect("parent")
            .join(format!("edited-{file}"));
        copy_pack(&f.pack, &copy);
        let body = std::fs::read_to_string(copy.join(file)).expect("read");
        assert!(body.contains(&from), "{file} holds {from}");
        std::fs::write(copy.join(file), body.replacen(&from, &to, 1)).expect("write");
        let (ok, out) = verify(&copy, &[]);
        assert!(!ok && out.contains(&named), "{file}: {out}");
    }
    // An edited manifest hash: named even though the file re-derives.
    let copy = f.pack.parent().expect("parent").join("edited-manifest");
    copy_pack(&f.pack, &copy);
    let manifest = std::fs::read_to_string(copy.join("manifest.json")).expect("manifest");
    let sha = m["outputs"][1]["sha256"].as_str().expect("sha");
    std::fs::write(
        copy.join("manifest.json"),
        manifest.replace(sha, &"0".repeat(64)),
    )
    .expect("write");
    let (ok, out) = verify(&copy, &[]);
    assert!(
        !ok && out.contains("manifest.json: outputs[report.csv]"),
        "{out}"
    );

    // A hostile manifest or pack: endless files are refused, not read.
    let hostile = manifest.replacen(
        "\"name\": \"report.csv\"",
        "\"name\": \"../../../../dev/zero\"",
        1,
    );
    assert_ne!(hostile, manifest);
    std::fs::write(copy.join("manifest.json"), &hostile).expect("write");
    let (ok, out) = verify(&copy, &[]);
    assert!(
        !ok && out.contains("lists an output \"../../../../dev/zero\""),
        "{out}"
    );
    std::fs::write(copy.join("manifest.json"), &manifest).expect("write");
    std::fs::remove_file(copy.join("report.csv")).expect("remove");
    std::os::unix::fs::symlink("/dev/zero", copy.join("report.csv")).expect("symlink");
    let o = run(&["verify", &copy.to_string_lossy()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("not a regular file"), "{}", text(&o));
    let o = run(&[
        "verify",
        &f.pack.to_string_lossy(),
        "--tickets",
        "/dev/zero",
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("not a regular file"), "{}", text(&o));
}

#[test]
fn bad_arguments_are_one_line_errors() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("in");
    let g = run(&["generate", "--out", &input.to_string_lossy(), "--days", "1"]);
    assert!(g.status.success());
    for (extra, says) in [
        (vec!["--month", "2026-13"], "expected YYYY-MM"),
        (vec!["--month", "November"], "expected YYYY-MM"),
        (vec!["--customer", "nobody"], "unknown customer"),
    ] {
        let mut args = vec![
            "evidence".to_owned(),
            "--config".into(),
            input.join("config.toml").to_string_lossy().into_owned(),
            "--monitoring".into(),
            input
                .join("monitoring-0.ndjson")
                .to_string_lossy()
                .into_owned(),
            "--customer".into(),
            "acme".into(),
            "--month".into(),
            "2026-11".into(),
            "--out".into(),
            dir.path().join("pack").to_string_lossy().into_owned(),
        ];
        for pair in extra.chunks(2) {
            let at = args.iter().position(|a| a == pair[0]).expect("flag");
            args[at + 1] = pair[1].to_owned();
        }
        let o = slaflow().args(&args).output().expect("run");
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(1), "{err}");
        assert!(err.contains(says) && err.lines().count() == 1, "{err}");
    }
    let o = run(&["verify", &dir.path().join("nothing").to_string_lossy()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("manifest.json"));
}

/// Prints the page to PDF and takes a screenshot with Debian's headless
/// Chromium; `scripts/test.sh` installs it and requires it.
#[test]
fn the_report_prints_with_chromium() {
    let found = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .any(|d| d.join("chromium").is_file());
    if !found {
        assert!(
            std::env::var_os("SLAFLOW_REQUIRE_PEERS").is_none(),
            "chromium is required (SLAFLOW_REQUIRE_PEERS)"
        );
        eprintln!("skipped: no chromium on PATH (apt-get install chromium)");
        return;
    }
    let f = fixture();
    let pack = f.pack.parent().expect("parent").join("with-pdf");
    let made = evidence(&f.input, &pack, &["--pdf"]);
    assert!(made.status.success(), "{}", text(&made));
    let pdf = std::fs::read(pack.join("report.pdf")).expect("report.pdf");
    assert!(
        pdf.starts_with(b"%PDF") && pdf.len() > 10_000,
        "{} bytes",
        pdf.len()
    );
    // Several A4 pages: a page break before each service and section.
    let pages = pdf
        .windows(b"/Type /Page\n".len())
        .filter(|w| w.starts_with(b"/Type /Page") && !w.starts_with(b"/Type /Pages"))
        .count();
    assert!(pages >= 4, "{pages} pages");
    let m = read_json(&pack.join("manifest.json"));
    assert!(
        m["outputs"]
            .as_array()
            .expect("outputs")
            .iter()
            .any(|o| o["name"] == "report.pdf")
    );
    let (ok, out) = verify(&pack, &[]);
    assert!(ok, "{out}");
    std::fs::write(pack.join("report.pdf"), b"%PDF-1.4 edited").expect("write");
    let (ok, out) = verify(&pack, &[]);
    assert!(!ok && out.contains("report.pdf"), "{out}");

    let shot = pack.join("report.png");
    let profile = tempfile::tempdir().expect("profile");
    let status = std::process::Command::new("chromium")
        .args(slaflow::evidence::HEADLESS_ARGS)
        .args(["--hide-scrollbars", "--window-size=1100,1600"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", pack.join("report.html").display()))
        .output()
        .expect("chromium");
    assert!(status.status.success(), "{}", text(&status));
    let png = std::fs::read(&shot).expect("screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
}
