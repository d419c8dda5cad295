//! Live evidence packs (contract section 12) through the real broker:
//! `GET /v1/evidence` reads both input topics back by offset, and `slaflow
//! verify` re-reads the same offsets and re-derives the same bytes; the pack's
//! report equals the live engine's report of the month.
// Needs a real broker: `scripts/test.sh` enables the feature and starts one.
#![cfg(feature = "broker-tests")]

mod common;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;
use slaflow::generate::scenario_config;

const PARTITIONS: i32 = 2;

/// GET returning the raw body bytes.
fn http_get_bytes(url: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut r = agent
        .get(url)
        .header("Authorization", &format!("Bearer {ADMIN}"))
        .call()
        .expect("GET");
    let mut body = Vec::new();
    r.body_mut()
        .as_reader()
        .read_to_end(&mut body)
        .expect("body");
    (r.status().as_u16(), body)
}

fn unpack(tar_gz: &[u8], into: &Path) {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(tar_gz));
    archive.unpack(into).expect("unpack");
}

fn verify(dir: &Path) -> (Option<i32>, String) {
    let o = slaflow().arg("verify").arg(dir).output().expect("verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    (o.status.code(), text)
}

#[test]
fn a_live_pack_verifies_against_the_topics() {
    let brokers = brokers();
    let t = LiveTopics::create(&brokers, PARTITIONS);
    let dir = tempfile::tempdir().expect("tempdir");
    let prepared = prepare(&brokers, &t.mon, &t.tkt, PARTITIONS, 120, 10.0);
    let total = (prepared.mon_lines.len() + prepared.tkt_lines.len()) as u64;
    let cfg = dir.path().join("live.toml");
    let text = t.live_config(
        &brokers,
        &scenario_config(),
        "idle_timeout = \"1s\"",
        &dir.path().join("data"),
    );
    std::fs::write(&cfg, text).expect("config");
    let run = Running::start(&cfg, &dir.path().join("run.log"));
    let base = format!("http://{}", run.api_addr());
    let read_all = wait_until(Duration::from_secs(120), || {
        let (s, body) = http_get(&format!("{base}/v1/overview"), ADMIN);
        s == 200
            && serde_json::from_str::<Value>(&body)
                .is_ok_and(|o| o["records_read"].as_u64() == Some(total))
    });
    assert!(read_all, "not every record read:\n{}", run.log_text());

    let (status, body) = http_get_bytes(&format!("{base}/v1/evidence?customer=acme&month=2026-11"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let out = dir.path().join("unpacked");
    unpack(&body, &out);
    let pack = out.join("evidence-acme-2026-11");
    let m: Value =
        serde_json::from_slice(&std::fs::read(pack.join("manifest.json")).expect("manifest"))
            .expect("json");
    // Every partition of both topics, read from its first offset to its end.
    let inputs = m["inputs"].as_array().expect("inputs");
    assert_eq!(inputs.len(), 2 * PARTITIONS as usize);
    let records: u64 = inputs
        .iter()
        .map(|i| i["records"].as_u64().expect("n"))
        .sum();
    assert_eq!(records, total);
    for i in inputs {
        assert_eq!(i["first_offset"], 0);
        assert_eq!(
            i["last_offset"].as_u64().map(|l| l + 1),
            i["records"].as_u64()
        );
    }
    let (code, text) = verify(&pack);
    assert_eq!(code, Some(0), "{text}");
    assert_eq!(text.trim(), "verified");

    // The pack's report is the live engine's report of the month.
    let (s, live) = http_get(
        &format!("{base}/v1/reports/sla?customer=acme&from=2026-11-01&to=2026-12-01"),
        ADMIN,
    );
    assert_eq!(s, 200, "{live}");
    let packed: Value =
        serde_json::from_slice(&std::fs::read(pack.join("report.json")).expect("report"))
            .expect("json");
    let live: Value = serde_json::from_str(&live).expect("json");
    assert_eq!(comparable(packed), comparable(live));

    // One pack at a time: of three asked at once, one is built, two get 429.
    let url = format!("{base}/v1/evidence?customer=acme&month=2026-11");
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(3));
    let asked: Vec<_> = (0..3)
        .map(|_| {
            let (url, barrier) = (url.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                http_get_bytes(&url)
            })
        })
        .collect();
    let mut answers: Vec<(u16, Vec<u8>)> = asked
        .into_iter()
        .map(|a| a.join().expect("client"))
        .collect();
    answers.sort_by_key(|a| a.0);
    assert_eq!(
        answers.iter().map(|a| a.0).collect::<Vec<_>>(),
        [200, 429, 429]
    );
    let busy: Value = serde_json::from_slice(&answers[1].1).expect("a JSON error");
    assert!(
        busy["error"]
            .as_str()
            .is_some_and(|e| e.contains("being built")),
        "{busy}"
    );
    assert!(run.terminate().success());

    // api.evidence_max_records bounds what a pack reads: exactly the records
    // the topics hold are read; one fewer allowed is a 400 naming the setting.
    for (most, status) in [(total - 1, 400), (total, 200)] {
        let cfg = dir.path().join(format!("most-{most}.toml"));
        let text = std::fs::read_to_string(dir.path().join("live.toml")).expect("config");
        let text = text.replacen(
            "[api]\n",
            &format!("[api]\nevidence_max_records = {most}\n"),
            1,
        );
        std::fs::write(&cfg, text).expect("config");
        let run = Running::start(&cfg, &dir.path().join(format!("most-{most}.log")));
        let (s, body) = http_get_bytes(&format!(
            "http://{}/v1/evidence?customer=acme&month=2026-11",
            run.api_addr()
        ));
        assert_eq!(s, status, "{}", String::from_utf8_lossy(&body));
        if s == 400 {
            let e: Value = serde_json::from_slice(&body).expect("a JSON error");
            let e = e["error"].as_str().unwrap_or_default().to_owned();
            assert!(
                e.contains(&format!(
                    "more than {most} records (api.evidence_max_records)"
                )),
                "{e}"
            );
        }
        assert!(run.terminate().success());
    }

    // An edited report is named.
    let report = std::fs::read_to_string(pack.join("report.csv")).expect("csv");
    std::fs::write(pack.join("report.csv"), report.replacen("acme", "acne", 1)).expect("write");
    let (code, text) = verify(&pack);
    assert_eq!(code, Some(1), "{text}");
    assert!(
        text.contains("report.csv: line 2, column customer"),
        "{text}"
    );
    std::fs::write(pack.join("report.csv"), report).expect("restore");

    // Offsets the log no longer holds are said to be so.
    let manifest = std::fs::read_to_string(pack.join("manifest.json")).expect("manifest");
    let gone = manifest.replacen("\"first_offset\": 0", "\"first_offset\": -7", 1);
    std::fs::write(pack.join("manifest.json"), gone).expect("write");
    let (code, text) = verify(&pack);
    assert_eq!(code, Some(1), "{text}");
    assert!(text.contains("no longer all retained"), "{text}");
}
