//! `slaflow run` against a real broker: dead letters on the dead-letter topic,
//! offsets committed only for decided records, no re-reading after a restart.
// Needs a real broker: `scripts/test.sh` enables the feature and starts one.
#![cfg(feature = "broker-tests")]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use rdkafka::consumer::{BaseConsumer, Consumer};

const PARTITIONS: i32 = 4;

fn config(dir: &std::path::Path, brokers: &str, t: &LiveTopics) -> std::path::PathBuf {
    let text = format!(
        r#"
[engine]
allowed_lateness = "1s"
idle_timeout = "1s"
data_dir = "{data}"

[api]
listen = "127.0.0.1:0"

[kafka]
brokers = "{brokers}"
group_id = "{group}"
monitoring_topic = "{mon}"
tickets_topic = "{tkt}"
incidents_topic = "{inc}"
deadletter_topic = "{dl}"
[kafka.options]
"fetch.wait.max.ms" = "100"

[[customers]]
id = "acme"

[[services]]
id = "web"
customer = "acme"
"#,
        data = dir.join("data").display(),
        group = t.group,
        mon = t.mon,
        tkt = t.tkt,
        inc = t.inc,
        dl = t.dl,
    );
    let path = dir.join("slaflow.toml");
    std::fs::write(&path, text).expect("write config");
    path
}

fn reasons(dead: &[(String, String)]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (_, v) in dead {
        let j: serde_json::Value = serde_json::from_str(v).expect("dead letter is JSON");
        for k in ["reason", "error", "topic", "partition", "offset", "raw"] {
            assert!(j.get(k).is_some(), "dead letter lacks {k}: {v}");
        }
        *m.entry(j["reason"].as_str().unwrap_or("?").to_owned())
            .or_insert(0) += 1;
    }
    m
}

#[test]
fn run_dead_letters_bad_records_and_commits_offsets() {
    let brokers = brokers();
    let t = LiveTopics::create(&brokers, PARTITIONS);
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path(), &brokers, &t);

    let now = chrono::Utc::now().timestamp_millis();
    let mut mon = Vec::new();
    for i in 0..20 {
        let ts = now - 60_000 + i * 1_000;
        mon.push(("web".to_owned(), format!(r#"{{"event_id":"p{i}","ts":{ts},"service":"web","kind":"probe","source":"eu-1","status":"up"}}"#)));
    }
    mon.push(("web".into(), "this is not json".into()));
    // Over the 64 KiB record limit: malformed, its dead letter holding the
    // first 64 KiB (docs/semantics.md).
    let long = format!(
        r#"{{"event_id":"big","ts":{now},"service":"web","kind":"probe","source":"eu-1","status":"up","pad":"{}"}}"#,
        "x".repeat(200_000)
    );
    mon.push(("web".into(), long.clone()));
    mon.push(("ghost".into(), format!(r#"{{"event_id":"g1","ts":{now},"service":"ghost","kind":"probe","source":"eu-1","status":"up"}}"#)));
    mon.push(("web".into(), format!(r#"{{"event_id":"p3","ts":{now},"service":"web","kind":"probe","source":"eu-1","status":"up"}}"#)));
    // A probe with a broken clock is `future` and moves no watermark: the next
    // probe of the same partition is applied, not `late`.
    mon.push(("web".into(), r#"{"event_id":"f1","ts":"2099-01-01T00:00:00Z","service":"web","kind":"probe","source":"eu-1","status":"up"}"#.into()));
    mon.push(("web".into(), format!(r#"{{"event_id":"p21","ts":{},"service":"web","kind":"probe","source":"eu-1","status":"up"}}"#, now + 1)));
    let tk = |id: &str, body: &str| {
        (
            "INC-1".to_owned(),
            format!(r#"{{"event_id":"{id}","ts":{now},"ticket":"INC-1",{body}}}"#),
        )
    };
    let tkt = vec![
        tk(
            "t1",
            r#""type":"created","customer":"acme","priority":"P2","kind":"incident""#,
        ),
        tk("t2", r#""type":"responded""#),
        tk(
            "t3",
            r#""type":"created","customer":"acme","priority":"P2","kind":"incident""#,
        ),
        (
            "INC-9".into(),
            format!(r#"{{"event_id":"t4","ts":{now},"ticket":"INC-9","type":"responded"}}"#),
        ),
        (
            "INC-2".into(),
            format!(
                r#"{{"event_id":"t5","ts":{now},"ticket":"INC-2","type":"created","customer":"nobody","priority":"P1","kind":"incident"}}"#
            ),
        ),
    ];
    produce(&brokers, &t.mon, &mon);
    produce(&brokers, &t.tkt, &tkt);

    let run = Running::start(&cfg, &dir.path().join("run1.log"));
    // Every record's fate is decided, so the group's committed offsets reach
    // the end; dead letters are flushed before that.
    let inputs = [t.mon.as_str(), t.tkt.as_str()];
    assert!(
        wait_until(Duration::from_secs(60), || caught_up(
            &brokers, &t.group, &inputs, PARTITIONS
        )),
        "offsets not committed: {:?} vs end {:?}\nlog:\n{}",
        committed(&brokers, &t.group, &t.mon, PARTITIONS),
        end_offsets(&brokers, &t.mon, PARTITIONS),
        run.log_text()
    );
    let dead = values(&brokers, &t.dl, PARTITIONS, Duration::from_secs(60));
    let want: BTreeMap<String, usize> = [
        ("malformed", 2),
        ("future", 1),
        ("unknown_service", 1),
        ("duplicate", 1),
        ("conflict", 1),
        ("unknown_ticket", 1),
        ("unknown_customer", 1),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(
        reasons(&dead),
        want,
        "dead letters: {dead:?}\nlog:\n{}",
        run.log_text()
    );
    let cut = dead.iter().find_map(|(_, v)| {
        let j: serde_json::Value = serde_json::from_str(v).ok()?;
        let raw = j["raw"].as_str()?.to_owned();
        raw.starts_with(r#"{"event_id":"big""#).then_some(raw)
    });
    assert_eq!(
        cut.as_deref(),
        Some(&long[..65_536]),
        "dead letters: {dead:?}"
    );
    let log1 = run.log_text();
    let status = run.terminate();
    assert!(status.success(), "exit {status:?}; log:\n{log1}");

    // A restarted consumer does not re-read committed records: one new bad record
    // yields exactly one new dead letter.
    let run = Running::start(&cfg, &dir.path().join("run2.log"));
    produce(&brokers, &t.mon, &[("web".into(), "{broken".into())]);
    assert!(
        wait_until(Duration::from_secs(60), || caught_up(
            &brokers, &t.group, &inputs, PARTITIONS
        )),
        "the new record is not committed; log:\n{}",
        run.log_text()
    );
    let dead = values(&brokers, &t.dl, PARTITIONS, Duration::from_secs(60));
    assert_eq!(
        dead.len(),
        9,
        "re-read after restart: {dead:?}\nlog:\n{}",
        run.log_text()
    );
    assert_eq!(reasons(&dead)["malformed"], 3);
    let status = run.terminate();
    assert!(status.success());
}

/// Topics are looked up before they are created: one that exists keeps the
/// partitions it has, one that does not is created as asked.
#[test]
fn create_topics_leaves_existing_topics_and_creates_missing_ones() {
    let brokers = brokers();
    let existing = unique("existing");
    create_topics(&brokers, &[&existing], 3);
    let missing = unique("missing");
    create_topics(&brokers, &[&existing, &missing], 2);
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .expect("consumer");
    let partitions = |topic: &str| {
        let metadata =
            (consumer.fetch_metadata(Some(topic), Duration::from_secs(10))).expect("metadata");
        metadata.topics()[0].partitions().len()
    };
    assert_eq!(partitions(&existing), 3);
    assert_eq!(partitions(&missing), 2);
}

/// Issue 32: a config naming a checkpoint key variable that is not set is
/// refused at start (docs/security.md), before any partition is read: state
/// must not be written unsigned when signing was asked for.
#[test]
fn run_refuses_to_start_when_the_checkpoint_key_variable_is_unset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("signed.toml");
    let var = "SLAFLOW_TEST_UNSET_STATE_KEY";
    let text = format!(
        "[engine]\ncheckpoint_key_env = \"{var}\"\ndata_dir = \"{}\"\n[api]\nlisten = \"127.0.0.1:0\"\n[kafka]\nbrokers = \"{}\"\n[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n",
        dir.path().join("data").display(),
        brokers()
    );
    std::fs::write(&path, text).expect("write");
    let out = slaflow()
        .args(["run", "--config"])
        .arg(&path)
        .env_remove(var)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(var) && err.trim().lines().count() == 1,
        "{err}"
    );
    assert!(
        !dir.path().join("data").exists()
            || std::fs::read_dir(dir.path().join("data")).map_or(0, |d| d.count()) == 0,
        "state written"
    );
}

#[test]
fn run_refuses_a_bad_config_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "[kafka]\nbrokers = 42\n").expect("write");
    let out = slaflow()
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("bad.toml:2") && err.contains("kafka.brokers"),
        "{err}"
    );
}
