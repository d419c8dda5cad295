//! `slaflow run`'s live loop apart from any broker's ceiling (issue 29): the
//! same consumer, processing, publishing and checkpointing, fed by
//! librdkafka's in-process mock cluster. The mock serves only this bench;
//! every correctness test runs against a real broker.

use rdkafka::ClientConfig;
use rdkafka::mocking::MockCluster;

use super::{
    Row, bare_consumer_rate, config, live_config, live_consumer_rate, median_round,
    produce_traffic, replay_in_memory, traffic,
};
use crate::generate::Generated;
use crate::run::RunError;

/// Partitions per topic. The mock keeps at most 5 MB per partition and
/// silently drops older data; records are keyed by service, so [`DAYS`] of
/// traffic is what stays whole ([`check_retained`] makes sure).
const PARTITIONS: i32 = 16;

/// Days of generated traffic: the busiest service writes about 2.2 MB a day
/// to its partition, so two fit; the longer the processing, the less the
/// clock's and the scheduler's granularity weigh.
const DAYS: u32 = 2;

/// Rounds of the three measurements; the row reports the median round.
const ROUNDS: usize = 3;

/// Rows: a bare consumer, slaflow's live loop and replay over the same
/// [`DAYS`] of generated traffic, on the cores this process may use (run it
/// under `taskset` for 1 and 2). The live loop processes them in about 150 ms,
/// timed by a counter read every millisecond, and one run shares the cores
/// with the mock's threads: runs of one binary spread by more than 10 %, so
/// each measurement runs [`ROUNDS`] times, alternating, and the round with
/// the median ratio of live loop to replay is reported. Each measurement
/// starts on a purged heap ([`purge_heap`]), as a fresh process would.
pub fn mock_live_rows() -> Result<Vec<Row>, RunError> {
    let cluster = MockCluster::new(1)?;
    let brokers = cluster.bootstrap_servers();
    let (mon, tkt, inc, dl) = ("mon", "tkt", "inc", "dl");
    let states: Vec<String> = (0..ROUNDS).map(|r| format!("state{r}")).collect();
    for t in [mon, tkt, inc, dl]
        .into_iter()
        .chain(states.iter().map(String::as_str))
    {
        cluster.create_topic(t, PARTITIONS, 1)?;
    }
    let events = traffic(DAYS, 11, 1.0);
    let n = events.len();
    produce_traffic(&brokers, &events, mon, tkt)?;
    check_retained(&brokers, &[mon, tkt])?;

    let all: Vec<&Generated> = events.iter().collect();
    let mut rounds = Vec::new();
    for (round, state) in states.iter().enumerate() {
        // Fresh groups and state topics: every round reads from the start.
        purge_heap();
        let bare = bare_consumer_rate(&brokers, &format!("bare{round}"), &[mon, tkt], n)?;
        let text = live_config(
            &brokers,
            &format!("slaflow{round}"),
            [mon, tkt, inc, dl],
            &format!("state_topic = \"{state}\"\n"),
        );
        purge_heap();
        let (live, decided) = live_consumer_rate(&text, n)?;
        purge_heap();
        let replay = n as f64 / replay_in_memory(&config(), &all);
        rounds.push((bare.rate, live.rate, replay, decided));
    }
    let ((bare, live, replay, decided), each) = median_round(&rounds, |r| r.1 / r.2.max(1.0));
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    Ok(vec![
        Row {
            name: format!(
                "in-process mock broker, {cores} core(s): bare rdkafka consumer ({n} events, 2 topics × {PARTITIONS} partitions)"
            ),
            value: format!("{bare:.0} events/s"),
            target: String::new(),
        },
        Row {
            name: format!(
                "in-process mock broker, {cores} core(s): slaflow run's live loop (consume, process, publish, checkpoint; median of {ROUNDS} rounds: {each}; {decided} of {n} records decided)"
            ),
            value: format!(
                "{live:.0} events/s ({:.0}% of replay, {:.0}% of bare)",
                100.0 * live / replay.max(1.0),
                100.0 * live / bare.max(1.0)
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

/// Returns the heap's free pages to the system now. The live loop starts
/// processing seconds after its start (the group join), longer than
/// mimalloc keeps freed pages (`purge_delay`, 1 s), so it builds its state
/// on fresh pages, each a page fault; a replay started right after it would
/// reuse the pages it just freed. Purging before each measurement starts
/// all three alike.
fn purge_heap() {
    // SAFETY: `mi_collect` has no preconditions; with another global
    // allocator (the tests') it finds nothing to collect.
    unsafe { libmimalloc_sys::mi_collect(true) }
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
