//! Reading a topic's records back by offset (live evidence packs): what each
//! partition holds now, and the records of one offset range, checked to be
//! all there.

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::config::KafkaConfig;
use crate::kafka::reader_config;

/// Records `[first, end)` of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetRange {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// First offset.
    pub first: i64,
    /// One past the last offset.
    pub end: i64,
}

/// Why a range could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RangeError {
    /// The broker or the client.
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    /// Retention (or a deleted topic) took records the range needs.
    #[error(
        "{topic}[{partition}] offsets {first}..{end} are no longer all retained (the log now holds {low}..{high})"
    )]
    NotRetained {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Range start.
        first: i64,
        /// Range end (exclusive).
        end: i64,
        /// The log's first offset now.
        low: i64,
        /// The log's end now.
        high: i64,
    },
    /// More records than allowed.
    #[error("more than {0} records to read")]
    TooMany(usize),
    /// The broker did not deliver in time.
    #[error("{topic}[{partition}]: timed out at offset {at} of {first}..{end}")]
    TimedOut {
        /// Topic.
        topic: String,
        /// Partition.
        partition: i32,
        /// Range start.
        first: i64,
        /// Range end.
        end: i64,
        /// Next offset expected.
        at: i64,
    },
}

/// A consumer that only reads assigned partitions (no group membership, no commits).
pub fn reader(kafka: &KafkaConfig) -> Result<BaseConsumer, RangeError> {
    Ok(reader_config(kafka, "evidence-reader").create()?)
}

/// What every partition of `topic` holds now: `[low, high)`.
pub fn retained(
    consumer: &BaseConsumer,
    topic: &str,
    timeout: Duration,
) -> Result<Vec<OffsetRange>, RangeError> {
    let metadata = consumer.fetch_metadata(Some(topic), timeout)?;
    let mut partitions: Vec<i32> = (metadata.topics().iter())
        .filter(|t| t.name() == topic)
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect();
    partitions.sort_unstable();
    partitions
        .into_iter()
        .map(|partition| {
            let (first, end) = consumer.fetch_watermarks(topic, partition, timeout)?;
            Ok(OffsetRange {
                topic: topic.to_owned(),
                partition,
                first,
                end,
            })
        })
        .collect()
}

/// The records of `range` (offset, payload), in offset order; `budget` is how
/// many more records the caller accepts. Fails when the log no longer holds
/// the whole range.
pub fn read(
    consumer: &BaseConsumer,
    range: &OffsetRange,
    budget: usize,
    timeout: Duration,
) -> Result<Vec<(i64, Vec<u8>)>, RangeError> {
    let (low, high) = consumer.fetch_watermarks(&range.topic, range.partition, timeout)?;
    if range.first < low || range.end > high || range.first > range.end {
        return Err(RangeError::NotRetained {
            topic: range.topic.clone(),
            partition: range.partition,
            first: range.first,
            end: range.end,
            low,
            high,
        });
    }
    let mut out = Vec::new();
    if range.first == range.end {
        return Ok(out);
    }
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&range.topic, range.partition, Offset::Offset(range.first))?;
    consumer.assign(&tpl)?;
    let deadline = Instant::now() + timeout;
    let mut next = range.first;
    while next < range.end {
        if Instant::now() > deadline {
            return Err(RangeError::TimedOut {
                topic: range.topic.clone(),
                partition: range.partition,
                first: range.first,
                end: range.end,
                at: next,
            });
        }
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m?;
        let other = m.topic() != range.topic || m.partition() != range.partition;
        if other || m.offset() < next {
            continue;
        }
        if m.offset() >= range.end {
            break;
        }
        if out.len() >= budget {
            return Err(RangeError::TooMany(budget));
        }
        next = m.offset() + 1;
        out.push((m.offset(), m.payload().unwrap_or_default().to_vec()));
    }
    Ok(out)
}
