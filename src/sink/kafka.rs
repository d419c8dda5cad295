//! Kafka sink: an idempotence-friendly producer for dead letters (and incidents).
//! Delivery failures are counted; the driver refuses to store input offsets past
//! a failed delivery, so nothing is lost.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::config::KafkaConfig;
use crate::kafka::producer_config;

/// Counts failed deliveries.
#[derive(Default)]
pub struct DeliveryContext {
    failed: AtomicU64,
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            tracing::error!(error = %e, "kafka delivery failed");
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Kafka sink errors.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSinkError {
    /// librdkafka refused or failed.
    #[error("kafka producer: {0}")]
    Kafka(#[from] KafkaError),
    /// Some messages were not delivered.
    #[error("{0} message(s) could not be delivered to Kafka")]
    Undelivered(u64),
}

/// A producer shared by all outputs.
pub struct KafkaSink {
    producer: ThreadedProducer<DeliveryContext>,
}

impl KafkaSink {
    /// Creates the producer (acks=all; user options from `[kafka.options]` that a
    /// producer understands are passed through).
    pub fn new(kafka: &KafkaConfig) -> Result<Self, KafkaSinkError> {
        let producer = producer_config(kafka, 5).create_with_context(DeliveryContext::default())?;
        Ok(KafkaSink { producer })
    }

    /// Queues one message; blocks briefly when the local queue is full.
    pub fn send(&self, topic: &str, key: &str, payload: &str) -> Result<(), KafkaSinkError> {
        self.send_bytes(topic, key, payload.as_bytes(), None)
    }

    /// Queues one binary message with optional headers.
    pub fn send_bytes(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
        headers: Option<rdkafka::message::OwnedHeaders>,
    ) -> Result<(), KafkaSinkError> {
        let mut record = BaseRecord::to(topic).key(key).payload(payload);
        if let Some(h) = headers {
            record = record.headers(h);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull),
                    r,
                )) => {
                    record = r;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }

    /// Waits until everything queued is delivered; fails if anything was not.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaSinkError> {
        self.producer.flush(timeout)?;
        self.check()
    }

    /// Messages queued or in flight, not yet acknowledged (or failed).
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Fails if any message so far could not be delivered.
    pub fn check(&self) -> Result<(), KafkaSinkError> {
        match self.producer.context().failed.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => Err(KafkaSinkError::Undelivered(n)),
        }
    }
}
