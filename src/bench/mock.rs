//! `slaflow run`'s live loop apart from any broker's ceiling (issue 29): the
//! same consumer, processing, publishing and checkpointing, fed by
//! librdkafka's in-process mock cluster. The mock serves only this bench;
//! every correctness test runs against a real broker.

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;

use super::{
    Row, bare_consumer_rate, config, live_config, live_consumer_rate, produce_traffic,
    replay_in_memory, traffic,
};
use crate::generate::Generated;
use crate::run::RunError;

/// Partitions per topic. The mock keeps at most 5 MB per partition and
/// silently drops older data; records are keyed by service, so one day of
/// traffic is what stays whole ([`check_retained`] makes sure).
const PARTITIONS: i32 = 16;

/// Rows: a bare consumer, slaflow's live loop and replay over the same day
/// of generated traffic, on the cores this process may use (run it under
/// `taskset` for 1 and 2).
pub fn mock_live_rows() -> Result<Vec<Row>, RunError> {
    let cluster = MockCluster::new(1)?;
    let brokers = cluster.bootstrap_servers();
    let (mon, tkt, inc, dl, state) = ("mon", "tkt", "inc", "dl", "state");
    for t in [mon, tkt, inc, dl, state] {
        cluster.create_topic(t, PARTITIONS, 1)?;
    }
    let events = traffic(1, 11, 1.0);
    let n = events.len();
    produce_traffic(&brokers, &events, mon, tkt)?;
    check_retained(&brokers, &[mon, tkt])?;

    let bare = bare_consumer_rate(&brokers, "bare", &[mon, tkt], n)?;
    let text = live_config(
        &brokers,
        "slaflow",
        [mon, tkt, inc, dl],
        &format!("state_topic = \"{state}\"\n"),
    );
    let live = live_consumer_rate(&text, n)?;
    let all: Vec<&Generated> = events.iter().collect();
    let replay = n as f64 / replay_in_memory(&config(), &all);
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Ok(vec![
        Row {
            name: format!(
                "in-process mock broker, {cores} core(s): bare rdkafka consumer ({n} events, 2 topics × {PARTITIONS} partitions)"
            ),
            value: format!("{:.0} events/s", bare.rate),
            target: String::new(),
        },
        Row {
            name: format!(
                "in-process mock broker, {cores} core(s): slaflow run's live loop (consume, process, publish, checkpoint)"
            ),
            value: format!(
                "{:.0} events/s ({:.0}% of replay, {:.0}% of bare)",
                live.rate,
                100.0 * live.rate / replay.max(1.0),
                100.0 * live.rate / bare.rate.max(1.0)
            ),
            target: "≥ 50% of replay".into(),
        },
        Row {
            name: format!("replay of the same events in memory, {cores} core(s) (one pipeline)"),
            value: format!("{replay:.0} events/s"),
            target: String::new(),
        },
    ])
}

/// Fails when the mock dropped the start of a partition's log.
fn check_retained(brokers: &str, topics: &[&str]) -> Result<(), RunError> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let reader: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .create()?;
    for t in topics {
        for p in 0..PARTITIONS {
            let (low, _) = reader.fetch_watermarks(t, p, std::time::Duration::from_secs(10))?;
            if low > 0 {
                return Err(RunError::Setup(format!(
                    "the mock broker dropped {t}[{p}] below offset {low}: too much input per partition"
                )));
            }
        }
    }
    Ok(())
}
