//! Scale-out against the real broker: two `slaflow run` instances on different
//! "machines" (separate data directories) share the consumer group and split the
//! partitions, and either answers the global report. One is stopped mid-stream
//! and the survivor takes its partitions
//! over, restoring their state from the changelog topic; then the survivor is
//! killed with SIGKILL and a replacement with an empty disk takes everything
//! over from the changelog. Each time the global report, the incidents and the
//! dead letters equal those of `slaflow replay`.
//!
//! The first hand-over uses SIGTERM (the instance leaves the group): with
//! tansu 0.6 a member killed with SIGKILL is not expired from a group that
//! still has live members, so its partitions would stay with the dead member.
//! A SIGKILL hand-over is therefore exercised with a replacement instance.
// Needs a real broker: `scripts/test.sh` enables the feature and starts one.
#![cfg(feature = "broker-tests")]

mod common;

use std::time::Duration;

use common::*;
use slaflow::generate::scenario_config;

const PARTITIONS: i32 = 4;

/// Whether the last assignment in `run`'s log covers every partition.
fn owns_everything(run: &Running) -> bool {
    owned(run) == 2 * PARTITIONS as usize
}

/// How many partitions `run` owns now: those of its last assignment, unless a
/// revocation came after it.
fn owned(run: &Running) -> usize {
    let log = run.log_text();
    let last = log
        .lines()
        .rfind(|l| l.contains("partitions assigned") || l.contains("partitions revoked"))
        .unwrap_or_default();
    if last.contains("partitions assigned") {
        last.matches("StreamId").count()
    } else {
        0
    }
}

#[test]
fn partitions_move_between_instances_through_the_changelog() {
    let scenario = Scenario::new(PARTITIONS, 3 * 24 * 60);
    let (brokers, t, dir) = (&scenario.brokers, &scenario.t, &scenario.dir);

    let config = |name: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        let text = t.live_config(
            brokers,
            &scenario_config(),
            "idle_timeout = \"1s\"\ncheckpoint_interval = \"500ms\"",
            &dir.path().join(format!("data-{name}")),
        );
        std::fs::write(&path, text).expect("config");
        path
    };
    let a = Running::start(&config("a"), &dir.path().join("a.log"));
    assert!(wait_until(Duration::from_secs(60), || a
        .log_text()
        .contains("partitions assigned")));
    let b = Running::start(&config("b"), &dir.path().join("b.log"));
    // Both work on their share: A was reassigned after B joined, B has checkpointed
    // and (rebalances can come in series) owns a share now.
    let split = wait_until(Duration::from_secs(90), || {
        b.log_text().contains("checkpoint written")
            && a.log_text().matches("partitions assigned").count() >= 2
            && (1..2 * PARTITIONS as usize).contains(&owned(&b))
    });
    assert!(
        split,
        "no split (B owns {}):\nA:\n{}\nB:\n{}",
        owned(&b),
        a.log_text(),
        b.log_text()
    );
    // Either instance answers the global report (from every partition's checkpoint).
    scenario.check(&b);
    scenario.check(&a);
    assert!(a.terminate().success());

    assert!(
        wait_until(Duration::from_secs(60), || owns_everything(&b)),
        "B never took over:\n{}",
        b.log_text()
    );
    scenario.check(&b);
    assert!(
        b.log_text().contains("source=\"changelog\""),
        "B restored nothing from the changelog:\n{}",
        b.log_text()
    );

    // SIGKILL the survivor; a replacement with an empty disk takes everything over.
    b.kill9_and_wait_out_session();
    let c = Running::start(&config("c"), &dir.path().join("c.log"));
    assert!(
        wait_until(Duration::from_secs(90), || owns_everything(&c)),
        "C never took over:\n{}",
        c.log_text()
    );
    scenario.check(&c);
    let log = c.log_text();
    assert_eq!(
        log.matches("source=\"changelog\"").count(),
        2 * PARTITIONS as usize,
        "{log}"
    );
    assert!(c.terminate().success());
}
