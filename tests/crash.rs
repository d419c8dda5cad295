//! Crash safety against the real broker: `slaflow run` is killed with SIGKILL at
//! random moments while it works through a prepared stream, and restarted each
//! time; afterwards the incidents (deduplicated by id and action), the SLA
//! reports and the dead letters equal those of `slaflow replay` on the same
//! events. A truncated checkpoint is detected and recovered from.
// Needs a real broker: `scripts/test.sh` enables the feature and starts one.
#![cfg(feature = "broker-tests")]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::*;
use slaflow::generate::scenario_config;

const PARTITIONS: i32 = 3;
const ROUNDS: usize = 10;

#[test]
fn killed_ten_times_mid_stream_the_outputs_equal_replay() {
    let scenario = Scenario::new(PARTITIONS, 3 * 24 * 60);
    let (brokers, t, dir, want) = (
        &scenario.brokers,
        &scenario.t,
        &scenario.dir,
        &scenario.want,
    );
    assert!(
        want.incidents.len() >= 40,
        "the scenario raises incidents: {}",
        want.incidents.len()
    );
    let burns = (want.incidents.iter())
        .filter(|(id, _)| {
            want.what
                .get(id)
                .is_some_and(|w| w.starts_with("\"burn_rate\""))
        })
        .count();
    assert!(
        burns > 0,
        "burn-rate alerts are among what must survive the kills"
    );

    let cfg = dir.path().join("live.toml");
    // Small fetches (a bounded queue, as in production) keep the catch-up going
    // for a few seconds, so kills land mid-stream.
    let text = t
        .live_config(
            brokers,
            &scenario_config(),
            "idle_timeout = \"1s\"\ncheckpoint_interval = \"300ms\"",
            &dir.path().join("data"),
        )
        .replace(
            "[kafka.options]\n",
            "[kafka.options]\n\"max.partition.fetch.bytes\" = \"32768\"\n",
        );
    std::fs::write(&cfg, text).expect("config");
    let ends = end_offsets(brokers, &t.mon, PARTITIONS);
    let total = (scenario.p.mon_lines.len() + scenario.p.tkt_lines.len()) as u64;
    // Deterministic per run, different across runs; printed to reproduce.
    let seed = std::process::id() as u64 ^ slaflow::time::wall_now() as u64;
    eprintln!("kill schedule seed {seed}");
    let mut x = seed | 1;
    let mut mid_stream = 0;
    for round in 0..ROUNDS {
        let run = Running::start(&cfg, &dir.path().join(format!("run{round}.log")));
        // Wait until it has made progress: a checkpoint that moves a monitoring
        // partition past where this round restored it. A first checkpoint of a
        // partition already read to its end is no progress: killed soon after
        // one, a slow round (a loaded broker) would get nowhere, every round.
        assert!(
            wait_until(Duration::from_secs(120), || progressed(
                &run.log_text(),
                &ends
            )),
            "round {round} never checkpointed progress:\n{}",
            run.log_text()
        );
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        // Then kill it at a random point of what is left to read (within its first
        // 80 %), judged by its own count of records read, not by time: how fast
        // it catches up must not decide whether the kill lands mid-stream.
        let metrics = format!("http://{}/metrics", run.api_addr());
        let read = || -> u64 {
            let (_, body) = http_get(&metrics, ADMIN);
            (body.lines())
                .find_map(|l| l.strip_prefix("slaflow_records_read_total ")?.parse().ok())
                .unwrap_or(0)
        };
        // A restarted instance reads only what its checkpoints do not cover.
        let covered: i64 = restores(&run.log_text()).iter().map(|(_, at)| at).sum();
        let left = total.saturating_sub(covered.max(0) as u64);
        let now = read();
        let target = now + (left.saturating_sub(now) * 4 / 5) * (x % 1000) / 1000;
        let started = Instant::now();
        while read() < target && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let log = run.log_text();
        run.kill9_and_wait_out_session();
        eprintln!(
            "round {round}: restored {:?} (ends {ends:?})",
            restores(&log)
        );
        assert!(
            !log.contains("checkpoint refused"),
            "kill -9 must never leave a corrupt checkpoint:\n{log}"
        );
        mid_stream += restores(&log)
            .iter()
            .filter(|(s, at)| {
                let partition: i32 = s
                    .rsplit('-')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(-1);
                s.starts_with("monitoring")
                    && *at > 0
                    && ends.get(&partition).is_some_and(|end| at < end)
            })
            .count();
    }
    assert!(
        mid_stream > 0,
        "no restart resumed mid-stream: the kills came too late to test anything"
    );
    let started = Instant::now();
    let run = Running::start(&cfg, &dir.path().join("final.log"));
    scenario.check(&run);
    eprintln!(
        "{mid_stream} mid-stream restores; final run caught up in {:?}",
        started.elapsed()
    );
    assert!(run.terminate().success());
}

/// Whether `log` shows a checkpoint moving a monitoring partition past where
/// the instance restored it; with every partition restored at its end `ends`,
/// whether it shows any checkpoint.
fn progressed(log: &str, ends: &HashMap<i32, i64>) -> bool {
    let restored: HashMap<String, i64> = restores(log).into_iter().collect();
    let at = |stream: &str| restored.get(stream).copied().unwrap_or(0);
    let short = (ends.iter()).any(|(p, end)| at(&format!("monitoring-{p}")) < *end);
    let mut checkpoints = (log.lines()).filter(|l| l.contains("checkpoint written"));
    if !short {
        return checkpoints.next().is_some();
    }
    checkpoints.any(|l| {
        (log_field(l, "next_offsets").unwrap_or("").split(','))
            .filter_map(|c| c.split_once('@'))
            .any(|(stream, next)| {
                stream.starts_with("monitoring-") && next.parse().is_ok_and(|n: i64| n > at(stream))
            })
    })
}

#[test]
fn a_truncated_checkpoint_is_detected_and_recovered_from() {
    let scenario = Scenario::new(PARTITIONS, 6 * 60);
    let (brokers, t, dir) = (&scenario.brokers, &scenario.t, &scenario.dir);
    let data = dir.path().join("data");
    let cfg = dir.path().join("live.toml");
    let text = t.live_config(
        brokers,
        &scenario_config(),
        "idle_timeout = \"1s\"\ncheckpoint_interval = \"1s\"",
        &data,
    );
    std::fs::write(&cfg, &text).expect("config");
    let run = Running::start(&cfg, &dir.path().join("run1.log"));
    scenario.check(&run);
    // Checkpoints every second: the chains on disk and on the changelog have deltas.
    let (_, metrics) = http_get(&format!("http://{}/metrics", run.api_addr()), ADMIN);
    let deltas = metrics
        .lines()
        .find_map(|l| l.strip_prefix("slaflow_checkpoints_total{result=\"written_delta\"} "))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(deltas.is_some_and(|n| n > 0), "{metrics}");
    assert!(run.terminate().success());

    // `<data>/checkpoints/<group>/<topic>-<partition>/{state,delta}-….arrow`, skipping
    // directories set aside as corrupt.
    let truncate_all = || {
        let mut n = 0;
        let groups = std::fs::read_dir(data.join("checkpoints"))
            .expect("checkpoints")
            .flatten();
        for dir in groups.flat_map(|g| std::fs::read_dir(g.path()).expect("group").flatten()) {
            if dir.file_name().to_string_lossy().contains("corrupt") {
                continue;
            }
            // A chain's full file and deltas alike: the partition counts once.
            let mut truncated = false;
            for f in std::fs::read_dir(dir.path()).expect("dir").flatten() {
                if f.file_name().to_string_lossy().ends_with(".arrow") {
                    let bytes = std::fs::read(f.path()).expect("read");
                    std::fs::write(f.path(), &bytes[..bytes.len() / 2]).expect("truncate");
                    truncated = true;
                }
            }
            n += usize::from(truncated);
        }
        n
    };
    assert_eq!(truncate_all(), 2 * PARTITIONS as usize);

    // The corrupt local checkpoints are refused; the changelog's copies restore.
    let run = Running::start(&cfg, &dir.path().join("run2.log"));
    scenario.check(&run);
    let log = run.log_text();
    assert_eq!(
        log.matches("checkpoint refused").count(),
        2 * PARTITIONS as usize,
        "{log}"
    );
    assert!(
        log.contains("source=\"changelog\"") || log.contains("source=changelog"),
        "{log}"
    );
    let (_, metrics) = http_get(&format!("http://{}/metrics", run.api_addr()), ADMIN);
    assert!(
        metrics.contains("slaflow_checkpoints_total{result=\"corrupt\"} 6"),
        "{metrics}"
    );
    assert!(run.terminate().success());

    // Corrupt again and take the changelog away too: rebuilt from the topics.
    assert_eq!(truncate_all(), 2 * PARTITIONS as usize);
    std::fs::write(&cfg, text.replace(&t.state, &unique("state-empty"))).expect("config");
    let run = Running::start(&cfg, &dir.path().join("run3.log"));
    scenario.check(&run);
    assert!(run.log_text().contains("rebuilding from the beginning"));
    assert!(run.terminate().success());
}

/// Issue 32: with `engine.checkpoint_key_env`, a live run refuses state it
/// cannot authenticate, on disk and on the changelog alike (docs/security.md),
/// and rebuilds from the topics to the same outputs: first the unsigned state
/// of a run without a key, then state signed under another key. Under the
/// same key it restores its own state.
#[test]
fn under_a_state_key_unsigned_and_forged_state_is_refused_live() {
    let scenario = Scenario::new(PARTITIONS, 6 * 60);
    let (brokers, t, dir) = (&scenario.brokers, &scenario.t, &scenario.dir);
    let data = dir.path().join("data");
    let engine = "idle_timeout = \"1s\"\ncheckpoint_interval = \"1s\"";
    let plain = dir.path().join("plain.toml");
    std::fs::write(
        &plain,
        t.live_config(brokers, &scenario_config(), engine, &data),
    )
    .expect("config");
    let var = "SLAFLOW_TEST_STATE_KEY";
    let keyed = dir.path().join("keyed.toml");
    let engine = format!("{engine}\ncheckpoint_key_env = \"{var}\"");
    std::fs::write(
        &keyed,
        t.live_config(brokers, &scenario_config(), &engine, &data),
    )
    .expect("config");
    let streams = 2 * PARTITIONS as usize;
    let refusals = |log: &str| {
        let changelog = log.matches("changelog checkpoint refused").count();
        (
            log.matches("checkpoint refused").count() - changelog,
            changelog,
        )
    };

    let run = Running::start(&plain, &dir.path().join("plain.log"));
    scenario.check(&run);
    assert!(run.terminate().success());

    for (round, key) in [("unsigned", "key one"), ("forged", "key two")] {
        let run = Running::start_with(
            &keyed,
            &dir.path().join(format!("{round}.log")),
            &[(var, key)],
        );
        scenario.check(&run);
        let log = run.log_text();
        let (local, changelog) = refusals(&log);
        assert_eq!(
            local, streams,
            "{round}: every local checkpoint refused\n{log}"
        );
        assert!(
            changelog >= streams,
            "{round}: every changelog copy refused\n{log}"
        );
        assert_eq!(
            log.matches("rebuilding from the beginning").count(),
            streams,
            "{log}"
        );
        assert!(!log.contains("partition restored"), "{round}: {log}");
        assert!(run.terminate().success());
    }

    let run = Running::start_with(
        &keyed,
        &dir.path().join("same-key.log"),
        &[(var, "key two")],
    );
    scenario.check(&run);
    let log = run.log_text();
    // The changelog still holds the older versions (until compaction), which
    // are refused again as it is read; its own are restored.
    assert_eq!(refusals(&log).0, 0, "{log}");
    assert_eq!(log.matches("partition restored").count(), streams, "{log}");
    assert!(!log.contains("rebuilding from the beginning"), "{log}");
    assert!(run.terminate().success());
}
