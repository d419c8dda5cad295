//! Kafka sinks (rdkafka).
