//! Shared helpers for integration tests: the real broker started by
//! `scripts/test.sh`, topic creation, producing, consuming, and running the binary.
#![allow(dead_code)]

pub mod sockets;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use slaflow::kafka::TopicSpec;

/// The broker address exported by `scripts/test.sh`.
pub fn brokers() -> String {
    std::env::var("SLAFLOW_TEST_BROKERS").unwrap_or_else(|_| {
        panic!("SLAFLOW_TEST_BROKERS is not set: run the test suite with ./scripts/test.sh (it starts a real broker)")
    })
}

/// A name unique to this test process and call.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Creates topics with `partitions` partitions each.
pub fn create_topics(brokers: &str, names: &[&str], partitions: i32) {
    let kafka = slaflow::config::KafkaConfig {
        brokers: brokers.to_owned(),
        ..Default::default()
    };
    let topics: Vec<TopicSpec> = (names.iter())
        .map(|name| TopicSpec {
            name,
            partitions,
            compacted: false,
        })
        .collect();
    slaflow::kafka::create_topics(&kafka, &topics).expect("create topics");
}

/// Enqueues `record`, waiting while librdkafka's local queue is full: a slow
/// broker (CI) fills it long before a test has produced everything.
pub fn send<K, P>(p: &ThreadedProducer<DefaultProducerContext>, mut record: BaseRecord<'_, K, P>)
where
    K: rdkafka::message::ToBytes + ?Sized,
    P: rdkafka::message::ToBytes + ?Sized,
{
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((
                rdkafka::error::KafkaError::MessageProduction(
                    rdkafka::types::RDKafkaErrorCode::QueueFull,
                ),
                r,
            )) => {
                record = r;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err((e, _)) => panic!("send: {e}"),
        }
    }
}

/// Produces `(key, value)` messages and waits for delivery.
pub fn produce(brokers: &str, topic: &str, messages: &[(String, String)]) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .create()
        .expect("producer");
    for (k, v) in messages {
        send(&p, BaseRecord::to(topic).key(k).payload(v));
    }
    p.flush(Duration::from_secs(30)).expect("flush");
}

/// Committed offsets of `group` on `topic` (partition → offset), via OffsetFetch.
pub fn committed(brokers: &str, group: &str, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = c
        .committed_offsets(tpl, Duration::from_secs(10))
        .expect("committed");
    got.elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some((e.partition(), o)),
            _ => None,
        })
        .collect()
}

/// High watermarks of `topic` (partition → end offset).
pub fn end_offsets(brokers: &str, topic: &str, partitions: i32) -> HashMap<i32, i64> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()
        .expect("consumer");
    (0..partitions)
        .map(|p| {
            (
                p,
                c.fetch_watermarks(topic, p, Duration::from_secs(10))
                    .expect("watermarks")
                    .1,
            )
        })
        .collect()
}

/// Polls `cond` every 200 ms until true or `timeout`; returns whether it became true.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The built `slaflow` binary.
pub fn slaflow() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slaflow"))
}

/// A running `slaflow` child, killed if the test fails.
pub struct Running {
    pub child: Child,
    pub log: PathBuf,
}

impl Running {
    /// Starts `slaflow run --config config`, logging to `log`.
    pub fn start(config: &Path, log: &Path) -> Running {
        Running::start_with(config, log, &[])
    }

    /// [`Running::start`] with extra environment variables.
    pub fn start_with(config: &Path, log: &Path, env: &[(&str, &str)]) -> Running {
        let f = std::fs::File::create(log).expect("log file");
        let child = slaflow()
            .args(["run", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env("SLAFLOW_LOG", "info,slaflow::run=debug")
            .stdout(Stdio::null())
            .stderr(f)
            .spawn()
            .expect("spawn slaflow run");
        Running {
            child,
            log: log.to_owned(),
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("slaflow did not stop on SIGTERM; log:\n{}", self.log_text());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The API address, read from the "API listening" log line (waits up to 60 s).
    pub fn api_addr(&self) -> String {
        let mut addr = None;
        wait_until(Duration::from_secs(60), || {
            addr = self.log_text().lines().find_map(|l| {
                let rest = l.split("API listening").nth(1)?;
                Some(log_field(rest, "listen")?.to_owned())
            });
            addr.is_some()
        });
        addr.unwrap_or_else(|| panic!("no API address in the log:\n{}", self.log_text()))
    }

    /// Kills the process with SIGKILL (no cleanup of any kind) and waits for it.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// [`Running::kill9`], then waits until the broker must count the dead
    /// member as gone, as a supervisor's restart delay would. tansu 0.6 needs
    /// this before a replacement joins: when the new member joins while the
    /// dead one is still the group's leader, tansu evicts that leader during the
    /// sync and leaves the new member with an empty assignment and no further
    /// rebalance (its log: "missed heartbeat for leader", then heartbeats
    /// answered OK for minutes); Apache Kafka rebalances in that case.
    ///
    /// tansu times the session from the last request it handled, not from the
    /// kill: a loaded broker still handles the dead member's queued heartbeats
    /// and commits seconds after it died (up to 2.6 s seen). So the session is
    /// waited out from the moment the broker has closed every connection of
    /// the dead process, after which it can read none of its requests.
    pub fn kill9_and_wait_out_session(self) {
        let port = (brokers().rsplit(':').next()).and_then(|p| p.parse().ok());
        let broker_side = port.map(|port| sockets::BrokerSide::of(self.child.id(), port));
        let killed = Instant::now();
        self.kill9();
        match broker_side {
            Some(side) if !side.is_empty() => assert!(
                wait_until(Duration::from_secs(120), || !side.still_open()),
                "the broker still holds the killed instance's connections after 120 s"
            ),
            _ => eprintln!("broker not on this host: the session is timed from the kill"),
        }
        let closed = killed.elapsed();
        if closed > Duration::from_millis(500) {
            eprintln!(
                "the broker closed the killed instance's connections {closed:?} after the kill"
            );
        }
        std::thread::sleep(Duration::from_millis(SESSION_TIMEOUT_MS + 1_000));
    }

    /// The process's stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `session.timeout.ms` of the instances the tests start. It must outlast the
/// broker's stalls: under the suite's load tansu (sqlite) answers nothing for
/// seconds at a time (6 to 8 s seen), and a member whose session expires in
/// one can leave tansu 0.6 with a group whose leader is gone and that never
/// assigns again ("missed heartbeat", then empty assignments for minutes).
pub const SESSION_TIMEOUT_MS: u64 = 20_000;

/// Generated traffic produced to the broker, and the same lines for replay.
pub struct Prepared {
    /// Monitoring lines, in production order (one replay file).
    pub mon_lines: Vec<String>,
    /// Ticket lines.
    pub tkt_lines: Vec<String>,
    /// Event time of the sentinels closing every partition.
    pub end: i64,
    /// Every stream's watermark passes this once the sentinels are read.
    pub cutoff: i64,
}

/// 2026-11-02T00:00:00Z, the start of generated traffic.
pub const START: i64 = 1_793_577_600_000;

/// Produces `minutes` of generated traffic at `intensity` (25 is busy; jittered
/// within the lateness, with duplicates and bad lines) to the two topics, then a
/// sentinel on every partition that moves every stream's watermark past `cutoff`.
pub fn prepare(
    brokers: &str,
    mon_t: &str,
    tkt_t: &str,
    partitions: i32,
    minutes: u32,
    intensity: f64,
) -> Prepared {
    use slaflow::event::Topic;
    use slaflow::generate::{Generator, roughen};
    let mut generator = Generator::new(42, START, intensity);
    let mut events = Vec::new();
    for _ in 0..minutes {
        events.extend(generator.minute());
    }
    let events = roughen(events, 42, 20_000, 0.01, 0.003, 0.0);
    let end = events.iter().map(|g| g.ts).max().unwrap_or(START) + 3_600_000;
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("acks", "all")
        .set("max.in.flight.requests.per.connection", "1")
        .create()
        .expect("producer");
    let (mut mon_lines, mut tkt_lines) = (Vec::new(), Vec::new());
    for g in &events {
        let (topic, lines) = match g.topic {
            Topic::Monitoring => (mon_t, &mut mon_lines),
            Topic::Tickets => (tkt_t, &mut tkt_lines),
        };
        send(&p, BaseRecord::to(topic).key(&g.key).payload(&g.line));
        lines.push(g.line.clone());
    }
    for q in 0..partitions {
        // An unknown service: dead-lettered everywhere, but its ts still moves the
        // partition's watermark, and no service's state spans partitions.
        let probe = format!(
            r#"{{"event_id":"sentinel-{q}","ts":{end},"service":"sentinel","kind":"probe","source":"sentinel","status":"up"}}"#
        );
        let ticket = format!(
            r#"{{"event_id":"sentinel-t{q}","ts":{end},"ticket":"SENTINEL-{q}","type":"created","customer":"acme","priority":"P4","kind":"request"}}"#
        );
        send(
            &p,
            BaseRecord::to(mon_t)
                .key("web")
                .partition(q)
                .payload(&probe),
        );
        send(
            &p,
            BaseRecord::to(tkt_t)
                .key(&format!("SENTINEL-{q}"))
                .partition(q)
                .payload(&ticket),
        );
        mon_lines.push(probe);
        tkt_lines.push(ticket);
    }
    p.flush(Duration::from_secs(60)).expect("flush");
    Prepared {
        mon_lines,
        tkt_lines,
        end,
        cutoff: end - 30_000,
    }
}

/// Runs `slaflow replay` on the prepared lines with `config_text`; `args` are
/// extra arguments (e.g. `--from`, `--to`). Returns the output directory.
pub fn replay(dir: &Path, config_text: &str, p: &Prepared, args: &[String]) -> PathBuf {
    let cfg = dir.join("replay.toml");
    std::fs::write(&cfg, config_text).expect("config");
    std::fs::write(dir.join("m.ndjson"), p.mon_lines.join("\n") + "\n").expect("write");
    std::fs::write(dir.join("t.ndjson"), p.tkt_lines.join("\n") + "\n").expect("write");
    let out = dir.join("replay-out");
    let status = slaflow()
        .args(["replay", "--config"])
        .arg(&cfg)
        .arg("--monitoring")
        .arg(dir.join("m.ndjson"))
        .arg("--tickets")
        .arg(dir.join("t.ndjson"))
        .arg("--out")
        .arg(&out)
        .args(args)
        .status()
        .expect("replay");
    assert!(status.success());
    out
}

/// The (incident_id, action) pairs of incident records with `at` before `cutoff`.
pub fn incident_pairs(
    lines: &[String],
    cutoff: i64,
) -> std::collections::BTreeSet<(String, String)> {
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

/// Every message on `topic` up to the partition ends as they are when called:
/// each partition is read until its position reaches that end, so nothing
/// there is missed and nothing produced later is included. A broker that does
/// not deliver them within `timeout` fails the test (never a short read).
pub fn values(
    brokers: &str,
    topic: &str,
    partitions: i32,
    timeout: Duration,
) -> Vec<(String, String)> {
    let ends = end_offsets(brokers, topic, partitions);
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut next: HashMap<i32, i64> = (0..partitions).map(|p| (p, 0)).collect();
    let mut out = Vec::new();
    let deadline = Instant::now() + timeout;
    while ends.iter().any(|(p, end)| next[p] < *end) {
        assert!(
            Instant::now() < deadline,
            "{topic}: read to {next:?} of {ends:?} in {timeout:?}"
        );
        let Some(m) = c.poll(Duration::from_millis(200)) else {
            continue;
        };
        let m = m.expect("message");
        if m.offset() < ends[&m.partition()] {
            let text =
                |b: Option<&[u8]>| String::from_utf8_lossy(b.unwrap_or_default()).into_owned();
            out.push((text(m.key()), text(m.payload())));
        }
        next.insert(m.partition(), m.offset() + 1);
    }
    out
}

/// Whether `group` has committed every record of each of `topics`: every
/// record's fate is decided and the outputs its state produced are
/// acknowledged (slaflow commits only after that).
pub fn caught_up(brokers: &str, group: &str, topics: &[&str], partitions: i32) -> bool {
    topics.iter().all(|topic| {
        let ends: HashMap<i32, i64> = (end_offsets(brokers, topic, partitions).into_iter())
            .filter(|(_, o)| *o > 0)
            .collect();
        committed(brokers, group, topic, partitions) == ends
    })
}

/// Fresh topics and a consumer group for one live test.
pub struct LiveTopics {
    /// Monitoring input.
    pub mon: String,
    /// Ticket input.
    pub tkt: String,
    /// Incidents output.
    pub inc: String,
    /// Dead letters output.
    pub dl: String,
    /// Checkpoint changelog.
    pub state: String,
    /// Consumer group.
    pub group: String,
}

impl LiveTopics {
    /// Creates the input and output topics with `partitions` partitions each
    /// (`slaflow run` creates the changelog topic itself).
    pub fn create(brokers: &str, partitions: i32) -> LiveTopics {
        let t = LiveTopics {
            mon: unique("mon"),
            tkt: unique("tkt"),
            inc: unique("inc"),
            dl: unique("dl"),
            state: unique("state"),
            group: unique("group"),
        };
        create_topics(brokers, &[&t.mon, &t.tkt, &t.inc, &t.dl], partitions);
        t
    }

    /// `config_text` (with an `[engine]` table) for `slaflow run` on these topics:
    /// `engine` lines are added to `[engine]`, `data_dir` is set, the API listens
    /// on a free loopback port with `ADMIN` as admin token.
    pub fn live_config(
        &self,
        brokers: &str,
        config_text: &str,
        engine: &str,
        data_dir: &Path,
    ) -> String {
        let admin = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(ADMIN.as_bytes()));
        let engine = format!(
            "[engine]\n{engine}\ndata_dir = \"{}\"\nretention = \"{TEST_RETENTION}\"\n",
            data_dir.display()
        );
        config_text.replacen("[engine]\n", &engine, 1)
            + &format!(
                "\n[api]\nlisten = \"127.0.0.1:0\"\n[[api.tokens]]\nsha256 = \"{admin}\"\n[kafka]\nbrokers = \"{brokers}\"\ngroup_id = \"{}\"\nmonitoring_topic = \"{}\"\ntickets_topic = \"{}\"\nincidents_topic = \"{}\"\ndeadletter_topic = \"{}\"\nstate_topic = \"{}\"\n[kafka.options]\n\"fetch.wait.max.ms\" = \"100\"\n\"session.timeout.ms\" = \"{SESSION_TIMEOUT_MS}\"\n\"heartbeat.interval.ms\" = \"500\"\n",
                self.group, self.mon, self.tkt, self.inc, self.dl, self.state
            )
    }
}

/// `engine.retention` of live test configs. Their traffic is dated from
/// [`START`] (2026-11-02) while a caught-up `run` moves its watermark with the
/// wall clock: under the default 400 days, pruning would start eating the test
/// data in December 2027.
pub const TEST_RETENTION: &str = "36500d";

/// The admin token of [`LiveTopics::live_config`].
pub const ADMIN: &str = "admin-token-for-tests";

/// GET with a bearer token; (status, body).
pub fn http_get(url: &str, token: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    match agent
        .get(url)
        .header("Authorization", &format!("Bearer {token}"))
        .call()
    {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(e) => (0, e.to_string()),
    }
}

/// (status, body) of a POST with a JSON body.
pub fn http_post_json(url: &str, token: &str, body: &str) -> (u16, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    match agent
        .post(url)
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/json")
        .send(body)
    {
        Ok(mut r) => (
            r.status().as_u16(),
            r.body_mut().read_to_string().unwrap_or_default(),
        ),
        Err(e) => (0, e.to_string()),
    }
}

/// Replay's expectations for the prepared stream over [START, cutoff).
pub struct Expected {
    /// (incident_id, action) pairs before the cutoff.
    pub incidents: BTreeSet<(String, String)>,
    /// Incident id → (rule, service or ticket), for messages.
    pub what: BTreeMap<String, String>,
    /// Comparable SLA report per customer.
    pub reports: BTreeMap<String, Value>,
    dead: BTreeMap<(String, String), usize>,
}

pub fn expected(dir: &Path, p: &Prepared) -> Expected {
    use slaflow::generate::scenario_config;
    let window = [
        "--from".to_owned(),
        START.to_string(),
        "--to".to_owned(),
        p.cutoff.to_string(),
    ];
    let out = replay(dir, &scenario_config(), p, &window);
    let lines = |f: &str| -> Vec<String> {
        std::fs::read_to_string(out.join(f))
            .expect(f)
            .lines()
            .map(str::to_owned)
            .collect()
    };
    let summary: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("summary.json")).expect("summary"))
            .expect("JSON");
    let dead_n: u64 = summary["deadletter"]
        .as_object()
        .expect("by reason")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(
        summary["read"].as_u64(),
        Some(summary["applied"].as_u64().unwrap_or(0) + dead_n),
        "replay: read = applied + dead-lettered"
    );
    let reports = ["acme", "globex"]
        .into_iter()
        .map(|c| {
            let text =
                std::fs::read_to_string(out.join(format!("report-{c}.json"))).expect("report");
            (
                c.to_owned(),
                comparable(serde_json::from_str(&text).expect("JSON")),
            )
        })
        .collect();
    let what = lines("incidents.ndjson")
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| {
            let id = v["incident_id"].as_str().unwrap_or("?").to_owned();
            (
                id,
                format!(
                    "{} {} {} {}",
                    v["rule"], v["service"], v["ticket"], v["started_at"]
                ),
            )
        })
        .collect();
    Expected {
        what,
        incidents: incident_pairs(&lines("incidents.ndjson"), p.cutoff),
        reports,
        dead: dead_letters(lines("deadletter.ndjson").into_iter()),
    }
}

/// A report without what legitimately differs between the two: `generated_at`,
/// the config hash, and whether a still-open ticket clock counts as `pending` or
/// `breached` — the live watermark follows the wall clock once caught up (weeks
/// past this traffic), replay's stops at the end of the input. Their sum, and
/// everything else, must be equal.
pub fn comparable(mut report: Value) -> Value {
    if let Some(o) = report.as_object_mut() {
        o.remove("generated_at");
        o.remove("config_sha256");
    }
    if let Some(rows) = report["tickets"]["by_priority"].as_array_mut() {
        for row in rows {
            for clock in ["response", "resolution"] {
                let c = &mut row[clock];
                let open = c["pending"].as_u64().unwrap_or(0) + c["breached"].as_u64().unwrap_or(0);
                if let Some(o) = c.as_object_mut() {
                    o.remove("pending");
                    o.remove("breached");
                    o.insert("not_met".into(), open.into());
                }
            }
        }
    }
    report
}

/// Dead letters as a multiset of (reason, raw text).
pub fn dead_letters(lines: impl Iterator<Item = String>) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for l in lines {
        let v: Value = serde_json::from_str(&l).expect("dead letter JSON");
        let key = (
            v["reason"].as_str().unwrap_or("?").to_owned(),
            v["raw"].as_str().unwrap_or("?").to_owned(),
        );
        *m.entry(key).or_insert(0) += 1;
    }
    m
}

/// A live scenario: fresh topics, `minutes` of busy generated traffic produced to
/// them, a temporary directory, and replay's results on the same input.
pub struct Scenario {
    pub brokers: String,
    pub t: LiveTopics,
    pub partitions: i32,
    pub p: Prepared,
    pub dir: tempfile::TempDir,
    pub want: Expected,
}

impl Scenario {
    pub fn new(partitions: i32, minutes: u32) -> Scenario {
        let brokers = brokers();
        let t = LiveTopics::create(&brokers, partitions);
        let p = prepare(&brokers, &t.mon, &t.tkt, partitions, minutes, 25.0);
        let dir = tempfile::tempdir().expect("tempdir");
        let want = expected(dir.path(), &p);
        Scenario {
            brokers,
            t,
            partitions,
            p,
            dir,
            want,
        }
    }

    /// Runs until every expected incident is on the topic, then checks the
    /// incidents, the reports (over the API of this instance) and the dead letters.
    pub fn check(&self, run: &Running) {
        check_against(
            run,
            &self.brokers,
            &self.t,
            self.partitions,
            &self.p,
            &self.want,
        )
    }
}

fn check_against(
    run: &Running,
    brokers: &str,
    t: &LiveTopics,
    partitions: i32,
    p: &Prepared,
    want: &Expected,
) {
    let mut got = BTreeSet::new();
    let arrived = wait_until(Duration::from_secs(240), || {
        let lines: Vec<String> = values(brokers, &t.inc, partitions, Duration::from_secs(30))
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        got = incident_pairs(&lines, p.cutoff);
        want.incidents.is_subset(&got)
    });
    assert!(
        arrived,
        "{} missing incidents, e.g. {:?}\nlog:\n{}",
        want.incidents.difference(&got).count(),
        want.incidents
            .difference(&got)
            .take(30)
            .map(|(id, a)| format!("{a} {}", want.what.get(id).map_or("?", String::as_str)))
            .collect::<Vec<_>>(),
        run.log_text()
    );
    assert!(!want.incidents.is_empty(), "replay raised no incident");
    assert_eq!(got, want.incidents, "no incident beyond replay's");
    let base = format!("http://{}", run.api_addr());
    for (customer, report) in &want.reports {
        let url = format!(
            "{base}/v1/reports/sla?customer={customer}&from={START}&to={}",
            p.cutoff
        );
        // Incidents from an earlier run may already be on the topic: wait until
        // this instance has caught up too.
        let fetch = || {
            let (status, body) = http_get(&url, ADMIN);
            assert_eq!(status, 200, "{body}");
            comparable(serde_json::from_str(&body).expect("JSON"))
        };
        wait_until(Duration::from_secs(120), || fetch() == *report);
        let live = fetch();
        assert_eq!(
            &live,
            report,
            "SLA report of {customer}; log:\n{}",
            run.log_text()
        );
    }
    // Dead letters: one per input record that was not applied (re-published copies
    // after a crash carry the same key, topic/partition/offset).
    let mut by_key = BTreeMap::new();
    for (k, v) in values(brokers, &t.dl, partitions, Duration::from_secs(60)) {
        by_key.insert(k, v);
    }
    assert_eq!(
        dead_letters(by_key.into_values()),
        want.dead,
        "dead letters"
    );
}

/// "partition restored" log lines: (stream, next offset).
pub fn restores(log: &str) -> Vec<(String, i64)> {
    log.lines()
        .filter(|l| l.contains("partition restored"))
        .filter_map(|l| {
            let stream = log_field(l, "stream")?.to_owned();
            Some((stream, log_field(l, "next_offset")?.parse().ok()?))
        })
        .collect()
}

/// The value of `key=value` in a log line (up to the next whitespace).
pub fn log_field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.split(&format!("{key}="))
        .nth(1)?
        .split_whitespace()
        .next()
}

/// Checks a `report.html` against the `report.json` of the same customer and
/// period (contract section 12): every section there, every summary cell's
/// `data-value` equal to the report's field, the ticket and incident counts
/// equal, and nothing loaded from elsewhere.
pub fn check_report_page(html: &str, report: &Value) {
    for banned in ["<script", "src=", "href=", "url(", "@import"] {
        assert!(!html.contains(banned), "report.html holds {banned:?}");
    }
    for section in [
        r#"id="summary""#,
        r#"id="tickets""#,
        r#"id="incidents""#,
        r#"id="capacity""#,
    ] {
        assert!(html.contains(section), "no section {section}");
    }
    let services = report["services"].as_array().expect("services");
    assert!(!services.is_empty());
    for s in services {
        let id = s["service"].as_str().expect("service id");
        let section = format!(r#"<section class="service" data-service="{id}"><h2>"#);
        let at = html
            .find(&section)
            .unwrap_or_else(|| panic!("no section of {id}"));
        assert!(html[at..].contains("<svg"), "no day bars for {id}");
        let row_at = html
            .find(&format!(r#"<tr data-service="{id}">"#))
            .unwrap_or_else(|| panic!("no summary row of {id}"));
        let row = &html[row_at..row_at + html[row_at..].find("</tr>").expect("row end")];
        for field in [
            "target_pct",
            "availability_pct",
            "met",
            "downtime_s",
            "maintenance_s",
            "nodata_s",
            "budget_remaining_s",
            "outages",
            "longest_outage_s",
        ] {
            let key = format!(r#"data-field="{field}" data-value=""#);
            let v = row.find(&key).map(|i| &row[i + key.len()..]).expect(field);
            let shown: Value = serde_json::from_str(&v[..v.find('"').expect("quote")])
                .unwrap_or_else(|e| panic!("{id}.{field}: {e}"));
            match (shown.as_f64(), s[field].as_f64()) {
                // `100.0` is written `100`: compare numbers as numbers.
                (Some(a), Some(b)) => assert_eq!(a, b, "{id}.{field}"),
                _ => assert_eq!(shown, s[field], "{id}.{field}"),
            }
        }
    }
    for p in report["tickets"]["by_priority"]
        .as_array()
        .expect("by_priority")
    {
        let prio = p["priority"].as_str().expect("priority");
        let cell = format!(
            r#"<tr data-priority="{prio}"><td>{prio}</td><td class="n">{}</td>"#,
            p["count"]
        );
        assert!(html.contains(&cell), "{prio} count");
    }
    for (rule, n) in report["incidents"]["by_rule"].as_object().expect("by_rule") {
        let cell = format!(r#"<tr data-rule="{rule}"><td>{rule}</td><td class="n">{n}</td>"#);
        assert!(html.contains(&cell), "{rule} count");
    }
    let triggered = format!(
        "{} incidents triggered in the period",
        report["incidents"]["triggered"]
    );
    assert!(html.contains(&triggered));
}

/// A folder with a config, the monitoring lines `write_monitoring` writes and
/// no tickets: `slaflow COMMAND --config … --monitoring … --tickets … ARGS` on it.
pub struct Inputs {
    dir: tempfile::TempDir,
}

impl Inputs {
    /// The folder with `config` and what `write_monitoring` writes.
    pub fn new(config: &str, write_monitoring: impl FnOnce(&Path)) -> Inputs {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("c.toml"), config).expect("config");
        write_monitoring(&dir.path().join("m.ndjson"));
        std::fs::write(dir.path().join("t.ndjson"), "").expect("tickets");
        Inputs { dir }
    }

    /// A path in the folder, as a string for arguments.
    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// Runs `command` on the inputs with `args`; panics unless it succeeds.
    pub fn run(&self, command: &str, args: &[&str]) {
        let o = slaflow()
            .args([command, "--config", &self.path("c.toml")])
            .args(["--monitoring", &self.path("m.ndjson")])
            .args(["--tickets", &self.path("t.ndjson")])
            .args(args)
            .output()
            .expect(command);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }

    /// Runs `command` with `--out` the folder's `out` and `args`.
    pub fn run_to(&self, command: &str, out: &str, args: &[&str]) {
        let out = self.path(out);
        self.run(command, &[&["--out", out.as_str()][..], args].concat());
    }

    /// A JSON file of the folder.
    pub fn json(&self, file: &str) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(self.dir.path().join(file)).expect(file))
            .expect("json")
    }

    /// A text file of the folder.
    pub fn text(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(file)).expect(file)
    }

    /// `slaflow verify` on a pack of the folder; panics unless it verifies.
    pub fn verify(&self, pack: &str) {
        let o = slaflow()
            .args(["verify", &self.path(pack)])
            .output()
            .expect("verify");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stdout));
    }
}
