//! The same events through the real broker and through replay give the same
//! incidents: `slaflow run` publishes on the incidents topic exactly the
//! (incident_id, action) pairs that `slaflow replay` writes, up to a cutoff that
//! both watermarks have passed.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use slaflow::event::Topic;
use slaflow::generate::{Generator, roughen, scenario_config};

const PARTITIONS: i32 = 3;
const START: i64 = 1_793_577_600_000; // 2026-11-02T00:00:00Z
const HOUR: i64 = 3_600_000;

fn incident_pairs(lines: &[String], cutoff: i64) -> BTreeSet<(String, String)> {
    lines
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|j| {
            j["at"]
                .as_str()
                .and_then(|a| slaflow::time::parse_rfc3339(a).ok())
                .is_some_and(|at| at < cutoff)
        })
        .map(|j| {
            (
                j["incident_id"].as_str().unwrap_or("").to_owned(),
                j["action"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[test]
fn run_publishes_the_same_incidents_as_replay() {
    let brokers = brokers();
    let (mon_t, tkt_t, inc_t, dl_t, group) = (
        unique("mon"),
        unique("tkt"),
        unique("inc"),
        unique("dl"),
        unique("group"),
    );
    create_topics(&brokers, &[&mon_t, &tkt_t, &inc_t, &dl_t], PARTITIONS);
    let dir = tempfile::tempdir().expect("tempdir");

    // Six hours of busy traffic, jittered within the lateness, with duplicates and bad lines.
    let mut generator = Generator::new(42, START, 25.0);
    let mut events = Vec::new();
    for _ in 0..360 {
        events.extend(generator.minute());
    }
    let events = roughen(events, 42, 20_000, 0.01, 0.003, 0.0);
    let end = events.iter().map(|g| g.ts).max().unwrap_or(START) + HOUR;
    // A sentinel on every partition moves every stream's watermark past `end − lateness`.
    let cutoff = end - 30_000;

    let mut mon_lines = Vec::new();
    let mut tkt_lines = Vec::new();
    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "1")
        .create()
        .expect("producer");
    for g in &events {
        let topic = if g.topic == Topic::Monitoring {
            &mon_t
        } else {
            &tkt_t
        };
        producer
            .send(BaseRecord::to(topic).key(&g.key).payload(&g.line))
            .expect("send");
        if g.topic == Topic::Monitoring {
            mon_lines.push(g.line.clone())
        } else {
            tkt_lines.push(g.line.clone())
        }
    }
    for p in 0..PARTITIONS {
        let probe = format!(
            r#"{{"event_id":"sentinel-{p}","ts":{end},"service":"web","kind":"probe","source":"sentinel","status":"up"}}"#
        );
        let ticket = format!(
            r#"{{"event_id":"sentinel-t{p}","ts":{end},"ticket":"SENTINEL-{p}","type":"created","customer":"acme","priority":"P4","kind":"request"}}"#
        );
        producer
            .send(
                BaseRecord::to(&mon_t)
                    .key("web")
                    .partition(p)
                    .payload(&probe),
            )
            .expect("send");
        producer
            .send(
                BaseRecord::to(&tkt_t)
                    .key(&format!("SENTINEL-{p}"))
                    .partition(p)
                    .payload(&ticket),
            )
            .expect("send");
        mon_lines.push(probe);
        tkt_lines.push(ticket);
    }
    producer.flush(Duration::from_secs(60)).expect("flush");

    // Replay the same events.
    let cfg_text = scenario_config();
    let replay_cfg = dir.path().join("replay.toml");
    std::fs::write(&replay_cfg, &cfg_text).expect("config");
    std::fs::write(dir.path().join("m.ndjson"), mon_lines.join("\n") + "\n").expect("write");
    std::fs::write(dir.path().join("t.ndjson"), tkt_lines.join("\n") + "\n").expect("write");
    let out = dir.path().join("out");
    let status = slaflow()
        .args(["replay", "--config"])
        .arg(&replay_cfg)
        .arg("--monitoring")
        .arg(dir.path().join("m.ndjson"))
        .arg("--tickets")
        .arg(dir.path().join("t.ndjson"))
        .arg("--out")
        .arg(&out)
        .status()
        .expect("replay");
    assert!(status.success());
    let replay_lines: Vec<String> = std::fs::read_to_string(out.join("incidents.ndjson"))
        .expect("incidents")
        .lines()
        .map(str::to_owned)
        .collect();
    let want = incident_pairs(&replay_lines, cutoff);
    assert!(
        want.len() >= 20,
        "the scenario should raise incidents, got {}",
        want.len()
    );

    // Live.
    let live_cfg = dir.path().join("live.toml");
    let kafka = format!(
        "\n[api]\nlisten = \"127.0.0.1:0\"\n[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{group}\"\nmonitoring_topic = \"{mon_t}\"\ntickets_topic = \"{tkt_t}\"\nincidents_topic = \"{inc_t}\"\ndeadletter_topic = \"{dl_t}\"\n"
    );
    let live_text =
        cfg_text.replacen("[engine]\n", "[engine]\nidle_timeout = \"1s\"\n", 1) + &kafka;
    std::fs::write(&live_cfg, live_text).expect("config");
    let run = Running::start(&live_cfg, &dir.path().join("run.log"));
    let mut got = BTreeSet::new();
    let arrived = wait_until(Duration::from_secs(120), || {
        let msgs = consume_all(
            &brokers,
            &inc_t,
            PARTITIONS,
            usize::MAX,
            Duration::from_secs(2),
        );
        let lines: Vec<String> = msgs.into_iter().map(|(_, v)| v).collect();
        got = incident_pairs(&lines, cutoff);
        want.is_subset(&got)
    });
    assert!(
        arrived,
        "missing on the incidents topic: {:?}\nlog:\n{}",
        want.difference(&got).collect::<Vec<_>>(),
        run.log_text()
    );
    std::thread::sleep(Duration::from_secs(2));
    let msgs = consume_all(
        &brokers,
        &inc_t,
        PARTITIONS,
        usize::MAX,
        Duration::from_secs(3),
    );
    // Keys are incident ids.
    assert!(
        msgs.iter()
            .all(|(k, v)| v.contains(&format!("\"incident_id\":\"{k}\"")))
    );
    let lines: Vec<String> = msgs.into_iter().map(|(_, v)| v).collect();
    assert_eq!(incident_pairs(&lines, cutoff), want);
    assert!(run.terminate().success());
}
