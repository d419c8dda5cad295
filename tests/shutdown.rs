//! Shutdown is bounded: SIGTERM stops `slaflow run` within `engine.shutdown_grace`
//! even when the broker has gone away at the same moment (before, the live
//! thread could wait forever in the consumer's close).
//!
//! The test starts a broker of its own (tansu, as `scripts/test.sh` installs it),
//! so it can kill that broker without disturbing the other tests.
// Needs a real broker: `scripts/test.sh` enables the feature and starts one.
#![cfg(feature = "broker-tests")]

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A private tansu broker (sqlite storage), killed on drop.
struct Broker {
    child: Child,
    addr: String,
}

impl Broker {
    fn start(dir: &Path) -> Broker {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let addr = format!("127.0.0.1:{port}");
        let url = format!("tcp://{addr}");
        let log = std::fs::File::create(dir.join("tansu.log")).expect("log");
        // tansu resolves sqlite:// paths against its working directory.
        let child = Command::new("tansu")
            .current_dir(dir)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("tansu on PATH (scripts/test.sh installs it)");
        let up = wait_until(Duration::from_secs(30), || {
            std::net::TcpStream::connect(&addr).is_ok()
        });
        assert!(up, "tansu did not start");
        Broker { child, addr }
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill9();
    }
}

#[test]
fn run_stops_within_the_grace_after_sigterm_when_the_broker_is_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let broker_dir = dir.path().join("broker");
    std::fs::create_dir_all(&broker_dir).expect("broker dir");
    let mut broker = Broker::start(&broker_dir);
    let t = LiveTopics::create(&broker.addr, 2);
    let config = dir.path().join("slaflow.toml");
    let text = t.live_config(
        &broker.addr,
        "[engine]\n[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n",
        "idle_timeout = \"1s\"\ncheckpoint_interval = \"1s\"\nshutdown_grace = \"3s\"",
        &dir.path().join("data"),
    );
    std::fs::write(&config, text).expect("config");
    let run = Running::start(&config, &dir.path().join("run.log"));
    let api = run.api_addr();
    let ready = wait_until(Duration::from_secs(60), || {
        http_get(&format!("http://{api}/readyz"), ADMIN).0 == 200
    });
    assert!(ready, "never ready; log:\n{}", run.log_text());
    let now = slaflow::time::wall_now();
    produce(
        &broker.addr,
        &t.mon,
        &[(
            "web".into(),
            format!(
                r#"{{"event_id":"p1","ts":{now},"service":"web","kind":"probe","source":"a","status":"up"}}"#
            ),
        )],
    );
    // The probe is read, checkpointed and committed: the instance is live.
    assert!(
        wait_until(Duration::from_secs(60), || caught_up(
            &broker.addr,
            &t.group,
            &[t.mon.as_str()],
            2
        )),
        "the probe was never committed; log:\n{}",
        run.log_text()
    );

    broker.kill9();
    let stopping = Instant::now();
    let log = run.log.clone();
    let status = run.terminate();
    let took = stopping.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    eprintln!("stopped {took:?} after SIGTERM");
    // The final checkpoint cannot reach the changelog, so only the deadline
    // can end the process: at the grace (3 s), plus the time a loaded machine
    // needs to notice and exit.
    assert!(
        text.contains("shutdown grace (engine.shutdown_grace) expired"),
        "the grace deadline did not fire; log:\n{text}"
    );
    assert!(
        (Duration::from_secs(3)..Duration::from_secs(10)).contains(&took),
        "stopped after {took:?}; log:\n{text}"
    );
    assert!(status.success(), "exit {status:?}; log:\n{text}");
}

/// Issue 31: `run` with no broker answering says so in its log (not only "API
/// listening"), keeps `/readyz` at 503 without logging each probe as an
/// ERROR, and stops on SIGTERM at once instead of waiting out the grace.
#[test]
fn run_without_a_reachable_broker_says_so_and_stops_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nothing listens on: bound, then released.
    let nobody = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .to_string();
    let t = LiveTopics::create(&brokers(), 1);
    let config = dir.path().join("slaflow.toml");
    let text = t.live_config(
        &nobody,
        "[engine]\n[[customers]]\nid = \"acme\"\n[[services]]\nid = \"web\"\ncustomer = \"acme\"\n",
        "shutdown_grace = \"20s\"",
        &dir.path().join("data"),
    );
    std::fs::write(&config, text).expect("config");
    let run = Running::start(&config, &dir.path().join("run.log"));
    let api = run.api_addr();
    let warned = wait_until(Duration::from_secs(30), || {
        run.log_text().contains("cannot reach the Kafka brokers")
    });
    assert!(warned, "no word about the broker; log:\n{}", run.log_text());
    assert_eq!(http_get(&format!("http://{api}/readyz"), ADMIN).0, 503);
    let stopping = Instant::now();
    let log = run.log.clone();
    let status = run.terminate();
    let took = stopping.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(status.success(), "exit {status:?}; log:\n{text}");
    // One broker probe (5 s) at most, far from the 20 s grace.
    assert!(
        took < Duration::from_secs(10) && !text.contains("shutdown grace"),
        "stopped after {took:?}; log:\n{text}"
    );
    assert!(!text.contains("ERROR"), "{text}");
    assert!(text.contains(&nobody), "the log names the brokers: {text}");
}
