//! Kafka sink: an idempotence-friendly producer for dead letters (and incidents).
//! Delivery failures are counted; the driver refuses to store input offsets past
//! a failed delivery, so nothing is lost.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use rdkafka::ClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};

use crate::config::KafkaConfig;
use crate::kafka::producer_config;

/// Counts failed deliveries, and messages not yet acknowledged by epoch (see
/// [`KafkaSink::mark`]).
#[derive(Default)]
pub struct DeliveryContext {
    failed: AtomicU64,
    pending: Mutex<BTreeMap<usize, u64>>,
    delivered: Condvar,
}

impl DeliveryContext {
    fn pending(&self) -> std::sync::MutexGuard<'_, BTreeMap<usize, u64>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn settle(&self, epoch: usize) {
        let mut pending = self.pending();
        if let Some(n) = pending.get_mut(&epoch) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                pending.remove(&epoch);
            }
        }
        self.delivered.notify_all();
    }
}

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = usize;
    fn delivery(&self, result: &DeliveryResult<'_>, epoch: usize) {
        if let Err((e, _)) = result {
            tracing::error!(error = %e, "kafka delivery failed");
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.settle(epoch);
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
    epoch: AtomicUsize,
}

impl KafkaSink {
    /// Creates the producer (acks=all; user options from `[kafka.options]` that a
    /// producer understands are passed through).
    pub fn new(kafka: &KafkaConfig) -> Result<Self, KafkaSinkError> {
        let producer = producer_config(kafka, 5).create_with_context(DeliveryContext::default())?;
        Ok(KafkaSink {
            producer,
            epoch: AtomicUsize::new(0),
        })
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
        let epoch = self.epoch.load(Ordering::SeqCst);
        let mut record = BaseRecord::with_opaque_to(topic, epoch)
            .key(key)
            .payload(payload);
        if let Some(h) = headers {
            record = record.headers(h);
        }
        let context = self.producer.context();
        *context.pending().entry(epoch).or_insert(0) += 1;
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
                Err((e, _)) => {
                    context.settle(epoch);
                    return Err(e.into());
                }
            }
        }
    }

    /// Marks what has been sent so far: [`KafkaSink::wait_for`] with the mark
    /// waits for those messages only, not for the ones sent after it.
    pub fn mark(&self) -> usize {
        self.epoch.fetch_add(1, Ordering::SeqCst)
    }

    /// Waits until every message sent before `mark` was taken is acknowledged
    /// (or failed); fails if any message so far was not delivered.
    pub fn wait_for(&self, mark: usize, timeout: Duration) -> Result<(), KafkaSinkError> {
        let context = self.producer.context();
        let deadline = Instant::now() + timeout;
        let mut pending = context.pending();
        while pending.first_key_value().is_some_and(|(&e, _)| e <= mark) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(
                    KafkaError::Flush(rdkafka::types::RDKafkaErrorCode::MessageTimedOut).into(),
                );
            }
            pending = (context.delivered.wait_timeout(pending, left))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        drop(pending);
        self.check()
    }

    /// Waits until everything queued is delivered; fails if anything was not.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaSinkError> {
        self.producer.flush(timeout)?;
        self.check()
    }

    /// Fails if any message so far could not be delivered.
    pub fn check(&self) -> Result<(), KafkaSinkError> {
        match self.producer.context().failed.load(Ordering::Relaxed) {
            0 => Ok(()),
            n => Err(KafkaSinkError::Undelivered(n)),
        }
    }
}
