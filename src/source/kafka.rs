//! Kafka source (rdkafka).
