//! The same events through the real broker and through replay give the same
//! incidents: `slaflow run` publishes on the incidents topic exactly the
//! (incident_id, action) pairs that `slaflow replay` writes, up to a cutoff that
//! both watermarks have passed.
// Needs a real broker: `scripts/test.sh` enables the feature and starts one.
#![cfg(feature = "broker-tests")]

mod common;

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
    // Committed to the end: every record applied and every incident its state
    // produced acknowledged by the broker. Then the incidents topic is read to
    // its end: exactly what was published, not what arrived within a window.
    let inputs = [mon_t.as_str(), tkt_t.as_str()];
    assert!(
        wait_until(Duration::from_secs(240), || caught_up(
            &brokers, &group, &inputs, PARTITIONS
        )),
        "offsets not committed to the end; log:\n{}",
        run.log_text()
    );
    let msgs = values(&brokers, &inc_t, PARTITIONS, Duration::from_secs(60));
    // Keys are incident ids.
    assert!(
        msgs.iter()
            .all(|(k, v)| v.contains(&format!("\"incident_id\":\"{k}\"")))
    );
    let lines: Vec<String> = msgs.into_iter().map(|(_, v)| v).collect();
    let got = incident_pairs(&lines, cutoff);
    assert_eq!(
        got.len(),
        (lines.iter())
            .filter(|l| !incident_pairs(&[(*l).clone()], cutoff).is_empty())
            .count(),
        "one instance, never restarted, publishes each action once"
    );
    assert_eq!(
        got,
        want,
        "missing: {:?}, extra: {:?}\nlog:\n{}",
        want.difference(&got).collect::<Vec<_>>(),
        got.difference(&want).collect::<Vec<_>>(),
        run.log_text()
    );
    assert!(run.terminate().success());
}
