//! `[kafka]`: brokers, topics and client options.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::model::Topic;

/// `[kafka]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers.
    pub brokers: String,
    /// Consumer group.
    pub group_id: String,
    /// Monitoring events topic.
    pub monitoring_topic: String,
    /// Ticket events topic.
    pub tickets_topic: String,
    /// Incident output topic.
    pub incidents_topic: String,
    /// Dead-letter output topic.
    pub deadletter_topic: String,
    /// Compacted changelog of partition checkpoints (state handoff, global reports).
    pub state_topic: String,
    /// Passed to librdkafka as-is (consumer and producer).
    pub options: BTreeMap<String, String>,
}

impl KafkaConfig {
    /// The Kafka topic an input topic is read from.
    pub fn topic_name(&self, topic: Topic) -> &str {
        match topic {
            Topic::Monitoring => &self.monitoring_topic,
            Topic::Tickets => &self.tickets_topic,
        }
    }
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".into(),
            group_id: "slaflow".into(),
            monitoring_topic: "monitoring.events".into(),
            tickets_topic: "tickets.events".into(),
            incidents_topic: "sla.incidents".into(),
            deadletter_topic: "sla.deadletter".into(),
            state_topic: "slaflow.state".into(),
            options: BTreeMap::new(),
        }
    }
}
