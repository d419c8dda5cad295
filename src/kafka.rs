//! Every Kafka client slaflow builds (input consumer, changelog reader,
//! producer, admin) takes its settings from `[kafka]` and `[kafka.options]`
//! here, so an option such as SASL/TLS reaches all of them; and the one way
//! topics are created.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use crate::config::KafkaConfig;

/// How long looking a topic up or creating it may wait for the brokers.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(30);

/// The input consumer's settings (also the bare-consumer benchmark's).
pub fn consumer_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &kafka.brokers)
        .set("group.id", &kafka.group_id)
        .set("enable.auto.commit", "true")
        .set("auto.commit.interval.ms", "1000")
        .set("auto.offset.reset", "earliest")
        // A broker that does not answer a fetch as soon as records arrive (tansu
        // waits out the fetch's maximum) would otherwise add up to librdkafka's
        // default 500 ms to every incident's latency.
        .set("fetch.wait.max.ms", "100");
    for (k, v) in &kafka.options {
        cfg.set(k, v);
    }
    // These two carry the delivery guarantee; user options may not override them.
    cfg.set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "true");
    cfg
}

/// Settings of a consumer that reads assigned partitions (the changelog, or
/// input ranges for evidence packs): the input consumer's, in a group of its
/// own (`<group_id>-<role>`) that never commits.
pub fn reader_config(kafka: &KafkaConfig, role: &str) -> ClientConfig {
    let mut cfg = consumer_config(kafka);
    cfg.set("group.id", format!("{}-{role}", kafka.group_id))
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false");
    cfg
}

/// A producer or admin client's settings: the brokers and the options such a
/// client accepts (security, SASL, TLS, client id…); consumer-only options
/// would make it refuse to start.
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut cfg = ClientConfig::new();
    cfg.set("bootstrap.servers", &kafka.brokers);
    for (k, v) in &kafka.options {
        if !is_consumer_only(k) {
            cfg.set(k, v);
        }
    }
    cfg
}

/// The producer's settings: acks from all replicas and idempotence (broker-side
/// dedup of producer retries; the brokers tested support it, transactions they
/// do not, see docs/operations.md), then [`client_config`].
pub fn producer_config(kafka: &KafkaConfig, linger_ms: u32) -> ClientConfig {
    let mut cfg = client_config(kafka);
    cfg.set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", linger_ms.to_string());
    cfg
}

fn is_consumer_only(key: &str) -> bool {
    key.starts_with("fetch.")
        || key.starts_with("auto.")
        || key.starts_with("enable.auto")
        || key.starts_with("session.")
        || key.starts_with("heartbeat.")
        || key.starts_with("group.")
        || key.starts_with("max.poll")
        || key.starts_with("partition.assignment")
        || key == "isolation.level"
        || key == "enable.partition.eof"
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct TopicSpec<'a> {
    /// Its name.
    pub name: &'a str,
    /// Its partition count.
    pub partitions: i32,
    /// Compacted (the changelog) rather than deleted by age.
    pub compacted: bool,
}

/// A client that asks the brokers for cluster metadata: whether they answer.
pub struct BrokerProbe(BaseConsumer);

impl BrokerProbe {
    /// A probe of `kafka.brokers` (no connection is made until [`BrokerProbe::check`]).
    pub fn new(kafka: &KafkaConfig) -> Result<Self, KafkaError> {
        client_config(kafka).create().map(BrokerProbe)
    }

    /// Fetches the cluster metadata, waiting at most `timeout`.
    pub fn check(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.0.fetch_metadata(None, timeout).map(drop)
    }
}

/// Creates the topics that do not exist yet; existing ones are left as they are.
///
/// Each topic is looked up first, so topics an operator created ahead need no
/// CREATE permission, and a broker without CreateTopics (librdkafka's mock)
/// is not asked.
pub fn create_topics(kafka: &KafkaConfig, topics: &[TopicSpec]) -> Result<(), KafkaError> {
    let mut cfg = client_config(kafka);
    // An admin client is a producer to librdkafka, whose metadata requests may
    // otherwise let the broker create a missing topic with its defaults
    // (never compacted): the lookup must not create what it looks for.
    cfg.set("allow.auto.create.topics", "false");
    let admin: AdminClient<DefaultClientContext> = cfg.create()?;
    let mut missing = Vec::new();
    for t in topics {
        if !topic_exists(&admin, t.name)? {
            missing.push(t);
        }
    }
    if missing.is_empty() {
        return Ok(());
    }
    let new: Vec<NewTopic> = missing
        .iter()
        .map(|t| {
            let topic = NewTopic::new(t.name, t.partitions, TopicReplication::Fixed(-1));
            match t.compacted {
                true => topic.set("cleanup.policy", "compact"),
                false => topic,
            }
        })
        .collect();
    // The admin API is async; this runs from blocking code, before any runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| KafkaError::AdminOpCreation(e.to_string()))?;
    // Bounded: a broker that goes away now must not hold up a shutdown.
    let options = AdminOptions::new().request_timeout(Some(ADMIN_TIMEOUT));
    for result in runtime.block_on(admin.create_topics(new.iter(), &options))? {
        match result {
            Ok(name) => tracing::info!(topic = %name, "topic created"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, e)) => {
                tracing::error!(topic = %name, error = %e, "cannot create topic");
                return Err(KafkaError::AdminOp(e));
            }
        }
    }
    Ok(())
}

/// Whether the brokers know `name` with its partitions. Any other answer (an
/// unknown topic, a leader election, no DESCRIBE permission) counts as
/// missing, so creating it is still tried.
fn topic_exists(admin: &AdminClient<DefaultClientContext>, name: &str) -> Result<bool, KafkaError> {
    let metadata = admin.inner().fetch_metadata(Some(name), ADMIN_TIMEOUT)?;
    Ok(metadata
        .topics()
        .iter()
        .any(|t| t.name() == name && t.error().is_none() && !t.partitions().is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_reach_every_client() {
        let mut kafka = KafkaConfig::default();
        for (k, v) in [
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("fetch.min.bytes", "65536"),
        ] {
            kafka.options.insert(k.into(), v.into());
        }
        for consumer in [
            consumer_config(&kafka),
            reader_config(&kafka, "changelog-reader"),
        ] {
            assert_eq!(consumer.get("security.protocol"), Some("SASL_SSL"));
            assert_eq!(consumer.get("fetch.min.bytes"), Some("65536"));
            assert_eq!(consumer.get("enable.auto.offset.store"), Some("false"));
        }
        let reader = reader_config(&kafka, "changelog-reader");
        assert_eq!(reader.get("enable.auto.commit"), Some("false"));
        assert_eq!(reader.get("group.id"), Some("slaflow-changelog-reader"));
        for client in [client_config(&kafka), producer_config(&kafka, 5)] {
            assert_eq!(client.get("sasl.mechanism"), Some("SCRAM-SHA-512"));
            // A consumer-only option would make a producer or admin refuse to start.
            assert_eq!(client.get("fetch.min.bytes"), None);
        }
        assert_eq!(producer_config(&kafka, 5).get("acks"), Some("all"));
    }
}
