//! Kafka source: one consumer in the group, subscribed to both input topics.
//!
//! A blocking `BaseConsumer` poll loop run on its own thread (never on the async
//! runtime), so rebalance callbacks are served promptly. Offsets are never stored
//! automatically (`enable.auto.offset.store=false`): the driver stores only offsets
//! whose records' effects are safe, and librdkafka commits what was stored.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use rdkafka::ClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList, TopicPartitionListElem};

use crate::config::KafkaConfig;
use crate::event::{KEPT_RECORD_BYTES, Topic};
use crate::eventtime::StreamId;
use crate::kafka::consumer_config;
use crate::source::{LineBlock, Lines};

/// What the source tells the driver, in order.
#[derive(Debug)]
pub enum SourceEvent {
    /// Records of one partition, in offset order: (offset, value; empty for
    /// a null value).
    Records(StreamId, LineBlock),
    /// Partitions assigned to this instance.
    Assigned(Vec<StreamId>),
    /// Partitions taken away from this instance.
    Revoked(Vec<StreamId>),
    /// Whether a partition has been read to its end.
    CaughtUp(StreamId, bool),
}

/// Kafka source errors.
#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    /// Client creation or subscription failed.
    #[error("kafka consumer: {0}")]
    Kafka(#[from] KafkaError),
}

/// Decides where newly assigned partitions start reading. Called inside the
/// rebalance, before librdkafka starts fetching, so no record is read from a
/// position that is then abandoned (state restore happens here).
pub trait AssignHook: Send + Sync {
    /// The start offset of each stream (`Offset::Beginning` to rebuild from Kafka).
    fn start_at(&self, streams: &[StreamId]) -> Vec<(StreamId, Offset)>;
}

/// Collects rebalance notifications raised inside `poll`.
pub struct RebalanceContext {
    topics: [String; 2],
    events: Mutex<Vec<SourceEvent>>,
    hook: Option<Box<dyn AssignHook>>,
}

impl RebalanceContext {
    /// The stream of a list element, if it is one of the input topics.
    fn stream_of(&self, e: &TopicPartitionListElem<'_>) -> Option<StreamId> {
        let topic = Topic::ALL
            .into_iter()
            .find(|t| self.topics[t.index()] == e.topic())?;
        Some(StreamId {
            topic,
            partition: e.partition(),
        })
    }

    fn streams(&self, tpl: &TopicPartitionList) -> Vec<StreamId> {
        tpl.elements()
            .iter()
            .filter_map(|e| self.stream_of(e))
            .collect()
    }
    fn push(&self, ev: SourceEvent) {
        if let Ok(mut q) = self.events.lock() {
            q.push(ev);
        }
    }
}

impl ClientContext for RebalanceContext {}

impl ConsumerContext for RebalanceContext {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(tpl) => {
                let s = self.streams(tpl);
                tracing::info!(partitions = ?s, "partitions revoked");
                self.push(SourceEvent::Revoked(s));
            }
            Rebalance::Assign(tpl) => {
                let Some(hook) = &self.hook else { return };
                let starts: std::collections::HashMap<StreamId, Offset> =
                    hook.start_at(&self.streams(tpl)).into_iter().collect();
                // The elements point into the list librdkafka is about to assign.
                for mut e in tpl.elements() {
                    let Some(id) = self.stream_of(&e) else {
                        continue;
                    };
                    if let Some(&offset) = starts.get(&id)
                        && let Err(err) = e.set_offset(offset)
                    {
                        tracing::error!(stream = ?id, error = %err, "cannot set the start offset");
                    }
                }
            }
            Rebalance::Error(_) => {}
        }
    }
    fn post_rebalance(&self, _c: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Assign(tpl) => {
                let s = self.streams(tpl);
                tracing::info!(partitions = ?s, "partitions assigned");
                self.push(SourceEvent::Assigned(s));
            }
            Rebalance::Error(e) => tracing::warn!(error = %e, "rebalance error"),
            Rebalance::Revoke(_) => {}
        }
    }
}

/// The consumer over both input topics.
pub struct KafkaSource {
    consumer: BaseConsumer<RebalanceContext>,
    topics: [String; 2],
    stored: BTreeMap<StreamId, i64>,
}

impl KafkaSource {
    /// Creates the consumer and subscribes to the monitoring and ticket topics;
    /// `hook` (if any) chooses where assigned partitions start.
    pub fn new(
        kafka: &KafkaConfig,
        hook: Option<Box<dyn AssignHook>>,
    ) -> Result<Self, KafkaSourceError> {
        let topics = [kafka.monitoring_topic.clone(), kafka.tickets_topic.clone()];
        let cfg = consumer_config(kafka);
        let ctx = RebalanceContext {
            topics: topics.clone(),
            events: Mutex::new(Vec::new()),
            hook,
        };
        let consumer: BaseConsumer<RebalanceContext> = cfg.create_with_context(ctx)?;
        consumer.subscribe(&[&topics[0], &topics[1]])?;
        Ok(KafkaSource {
            consumer,
            topics,
            stored: BTreeMap::new(),
        })
    }

    /// Polls for up to `timeout`, then drains what is ready, up to `max_records`.
    /// Returns events in the order they happened.
    pub fn poll_batch(&mut self, max_records: usize, timeout: Duration) -> Vec<SourceEvent> {
        let mut out = Vec::new();
        let mut pending: BTreeMap<StreamId, Lines> = BTreeMap::new();
        let mut n = 0;
        let mut wait = timeout;
        while n < max_records {
            let polled = self.consumer.poll(wait);
            wait = Duration::ZERO;
            self.take_rebalance_events(&mut pending, &mut out);
            match polled {
                None => break,
                Some(Ok(m)) => {
                    let Some(topic) = self.topic_of(m.topic()) else {
                        continue;
                    };
                    let stream = StreamId {
                        topic,
                        partition: m.partition(),
                    };
                    let payload = m.payload().unwrap_or_default();
                    let payload = &payload[..payload.len().min(KEPT_RECORD_BYTES)];
                    pending.entry(stream).or_default().push(m.offset(), payload);
                    n += 1;
                }
                Some(Err(KafkaError::PartitionEOF(p))) => {
                    flush(&mut pending, &mut out);
                    self.check_caught_up(p, &mut out);
                }
                Some(Err(e)) => tracing::warn!(error = %e, "kafka consumer error"),
            }
        }
        flush(&mut pending, &mut out);
        out
    }

    fn take_rebalance_events(
        &self,
        pending: &mut BTreeMap<StreamId, Lines>,
        out: &mut Vec<SourceEvent>,
    ) {
        let events = match self.consumer.context().events.lock() {
            Ok(mut q) => std::mem::take(&mut *q),
            Err(_) => return,
        };
        if !events.is_empty() {
            flush(pending, out);
            out.extend(events);
        }
    }

    fn topic_of(&self, name: &str) -> Option<Topic> {
        Topic::ALL
            .into_iter()
            .find(|t| self.topics[t.index()] == name)
    }

    /// End of partition `p` was reached on some topic. librdkafka does not say which,
    /// so compare the consumed position with the high watermark for each topic.
    fn check_caught_up(&self, p: i32, out: &mut Vec<SourceEvent>) {
        let Ok(positions) = self.consumer.position() else {
            return;
        };
        for topic in Topic::ALL {
            let name = &self.topics[topic.index()];
            let Some(elem) = positions.find_partition(name, p) else {
                continue;
            };
            let Some((low, high)) = self.cached_watermarks(name, p) else {
                continue;
            };
            let pos = match elem.offset() {
                Offset::Offset(o) => o,
                _ => low,
            };
            out.push(SourceEvent::CaughtUp(
                StreamId {
                    topic,
                    partition: p,
                },
                pos >= high,
            ));
        }
    }

    /// The partition's low and high watermarks as last seen in fetch responses:
    /// no network round trip, so the poll loop never blocks on it.
    fn cached_watermarks(&self, topic: &str, partition: i32) -> Option<(i64, i64)> {
        use rdkafka::bindings::{rd_kafka_get_watermark_offsets, rd_kafka_resp_err_t};
        let topic = std::ffi::CString::new(topic).ok()?;
        let (mut low, mut high) = (-1i64, -1i64);
        // SAFETY: the client handle lives as long as `self.consumer`; the call only
        // reads librdkafka's cached partition state into the two locals.
        let err = unsafe {
            rd_kafka_get_watermark_offsets(
                self.consumer.client().native_ptr(),
                topic.as_ptr(),
                partition,
                &mut low,
                &mut high,
            )
        };
        (err == rd_kafka_resp_err_t::RD_KAFKA_RESP_ERR_NO_ERROR && high >= 0).then_some((low, high))
    }

    /// Records behind the end of each assigned partition (high watermark − position).
    pub fn lags(&self) -> Vec<(StreamId, i64)> {
        let Ok(positions) = self.consumer.position() else {
            return Vec::new();
        };
        positions
            .elements()
            .iter()
            .filter_map(|e| {
                let topic = self.topic_of(e.topic())?;
                let (_, high) = self.cached_watermarks(e.topic(), e.partition())?;
                let pos = match e.offset() {
                    Offset::Offset(o) => o,
                    _ => {
                        return Some((
                            StreamId {
                                topic,
                                partition: e.partition(),
                            },
                            0,
                        ));
                    }
                };
                Some((
                    StreamId {
                        topic,
                        partition: e.partition(),
                    },
                    (high - pos).max(0),
                ))
            })
            .collect()
    }

    /// Stores offsets (next offset to read) for the given streams, to be committed
    /// by librdkafka. Offsets never move backwards; unassigned partitions are skipped.
    pub fn store_offsets(&mut self, offsets: &[(StreamId, i64)]) -> Result<(), KafkaError> {
        let mut tpl = TopicPartitionList::new();
        for &(s, off) in offsets {
            if self.stored.get(&s).is_some_and(|&prev| prev >= off) {
                continue;
            }
            tpl.add_partition_offset(
                &self.topics[s.topic.index()],
                s.partition,
                Offset::Offset(off),
            )?;
        }
        if tpl.count() == 0 {
            return Ok(());
        }
        match self.consumer.store_offsets(&tpl) {
            Ok(()) => {
                for &(s, off) in offsets {
                    let e = self.stored.entry(s).or_insert(off);
                    *e = (*e).max(off);
                }
                Ok(())
            }
            // A partition revoked in between: its new owner decides.
            Err(e) => {
                tracing::debug!(error = %e, "store_offsets");
                Ok(())
            }
        }
    }

    /// Forgets stored offsets of revoked partitions.
    pub fn forget(&mut self, streams: &[StreamId]) {
        for s in streams {
            self.stored.remove(s);
        }
    }

    /// Commits stored offsets synchronously (at shutdown).
    pub fn commit_stored(&self) -> Result<(), KafkaError> {
        match self
            .consumer
            .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
        {
            Err(KafkaError::ConsumerCommit(rdkafka::types::RDKafkaErrorCode::NoOffset)) => Ok(()),
            other => other,
        }
    }
}

fn flush(pending: &mut BTreeMap<StreamId, Lines>, out: &mut Vec<SourceEvent>) {
    for (s, recs) in std::mem::take(pending) {
        out.push(SourceEvent::Records(s, recs.into_block()));
    }
}
