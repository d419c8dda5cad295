//! The same events through the real broker and through replay give the same
//! incidents: `slaflow run` publishes on the incidents topic exactly the
//! (incident_id, action) pairs that `slaflow replay` writes, up to a cutoff that
//! both watermarks have passed.
// Needs a real broker: `scripts/test.sh` enables the feature and starts one.
#![cfg(feature = "broker-tests")]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use slaflow::generate::scenario_config;

const PARTITIONS: i32 = 3;

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

    // Six hours of busy traffic, then the same lines through replay.
    let prepared = prepare(&brokers, &mon_t, &tkt_t, PARTITIONS, 360, 25.0);
    let cutoff = prepared.cutoff;
    let cfg_text = scenario_config();
    let out = replay(dir.path(), &cfg_text, &prepared, &[]);
    let replay_lines: Vec<String> = std::fs::read_to_string(out.join("incidents.ndjson"))
        .expect("incidents")
        .lines()
        .map(str::to_owned)
        .collect();
    let want = incident_pairs(&replay_lines, cutoff);
    let burn_lines: Vec<String> = (replay_lines.iter())
        .filter(|l| l.contains("\"rule\":\"burn_rate\""))
        .cloned()
        .collect();
    let burns = incident_pairs(&burn_lines, cutoff);
    assert!(
        !burns.is_empty() && burns.is_subset(&want),
        "burn-rate alerts are compared too"
    );
    let slo_burns = (replay_lines.iter()).filter(|l| l.contains("\"rule\":\"slo_burn_rate\""));
    assert!(
        slo_burns.count() > 0,
        "request SLO burn alerts (section 14) are compared too"
    );
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
    let live_text = cfg_text.replacen(
        "[engine]\n",
        &format!(
            "[engine]\nidle_timeout = \"1s\"\nretention = \"{TEST_RETENTION}\"\ndata_dir = \"{}\"\n",
            dir.path().join("data").display()
        ),
        1,
    ) + &kafka;
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
