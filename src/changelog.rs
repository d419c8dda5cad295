//! The state changelog: every checkpoint is also published to a compacted Kafka
//! topic (`kafka.state_topic`), so an instance on another machine can take a
//! partition over where its previous owner checkpointed, and every instance can
//! read every partition's state to answer global reports.
//!
//! A checkpoint is split into chunks of at most 512 KiB, keyed
//! `<group>/<input topic>/<stream>#<chunk>` (so deployments sharing a state topic stay apart); each carries the header `slaflow.checkpoint =
//! <next_offset>:<chunk>:<chunks>:<sha256>`. A reader keeps every version it sees
//! and uses, per stream, the most recently published checkpoint whose chunks are all present and
//! whose bytes match the checksum, so a publish cut short by a crash is skipped.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use sha2::{Digest, Sha256};

use crate::checkpoint::{StateKey, parse_stream_name, stream_name};
use crate::config::KafkaConfig;
use crate::eventtime::StreamId;
use crate::kafka::{TopicSpec, create_topics, reader_config};
use crate::sink::kafka::{KafkaSink, KafkaSinkError};

/// Largest chunk of a checkpoint in one message (below librdkafka's 1 MB default).
const CHUNK: usize = 512 * 1024;
const HEADER: &str = "slaflow.checkpoint";
/// HMAC of `<next_offset>:<sha256>` under the state key (see [`StateKey`]).
const HMAC_HEADER: &str = "slaflow.hmac";

/// The deployment a changelog key belongs to: the consumer group, plus the
/// input topic of the stream, so deployments (or tests) sharing a broker and a
/// state topic never restore each other's state.
fn key_prefix(kafka: &KafkaConfig, stream: StreamId) -> String {
    format!("{}/{}/", kafka.group_id, kafka.topic_name(stream.topic))
}

/// Queues a checkpoint's bytes on the changelog topic (flush the sink to wait).
pub fn publish(
    sink: &KafkaSink,
    kafka: &KafkaConfig,
    key: &StateKey,
    stream: StreamId,
    next_offset: i64,
    bytes: &[u8],
) -> Result<(), KafkaSinkError> {
    let sha = hex::encode(Sha256::digest(bytes));
    let tag = key.tag(next_offset, &sha);
    let chunks: Vec<&[u8]> = if bytes.is_empty() {
        vec![bytes]
    } else {
        bytes.chunks(CHUNK).collect()
    };
    let name = format!("{}{}", key_prefix(kafka, stream), stream_name(stream));
    for (i, chunk) in chunks.iter().enumerate() {
        let value = format!("{next_offset}:{i}:{}:{sha}", chunks.len());
        let mut headers = OwnedHeaders::new().insert(Header {
            key: HEADER,
            value: Some(value.as_str()),
        });
        if let Some(tag) = &tag {
            headers = headers.insert(Header {
                key: HMAC_HEADER,
                value: Some(tag.as_str()),
            });
        }
        sink.send_bytes(
            &kafka.state_topic,
            &format!("{name}#{i}"),
            chunk,
            Some(headers),
        )?;
    }
    Ok(())
}

/// Creates the changelog topic (compacted, one partition) unless it exists.
pub fn ensure_topic(kafka: &KafkaConfig) -> Result<(), KafkaError> {
    let changelog = TopicSpec {
        name: &kafka.state_topic,
        partitions: 1,
        compacted: true,
    };
    create_topics(kafka, &[changelog])
}

/// A stream's newest intact checkpoint on the changelog.
#[derive(Debug, Clone)]
pub struct Latest {
    /// Where reading resumes.
    pub next_offset: i64,
    /// SHA-256 of the bytes (hex): identifies the version.
    pub sha256: String,
    /// The Arrow IPC checkpoint.
    pub bytes: Arc<[u8]>,
}

/// One version of a stream's checkpoint as seen on the topic.
struct Version {
    next_offset: i64,
    sha: String,
    chunks: BTreeMap<usize, Vec<u8>>,
    total: usize,
    /// The HMAC header its chunks carried, if any.
    tag: Option<String>,
    /// The assembled bytes once verified (so a follower hashes each version once).
    verified: Option<Arc<[u8]>>,
    /// All chunks arrived but their bytes fail the checksum.
    bad: bool,
}

/// Assembles checkpoints from changelog messages, keeping every version (in
/// arrival order) until a newer complete one makes it useless.
struct Collector {
    kafka: KafkaConfig,
    key: StateKey,
    versions: HashMap<StreamId, Vec<Version>>,
}

fn header<M: Message>(m: &M, name: &str) -> Option<String> {
    m.headers().and_then(|hs| {
        hs.iter()
            .find(|h| h.key == name)
            .and_then(|h| std::str::from_utf8(h.value?).ok().map(str::to_owned))
    })
}

impl Collector {
    fn new(kafka: &KafkaConfig, key: &StateKey) -> Self {
        Collector {
            kafka: kafka.clone(),
            key: key.clone(),
            versions: HashMap::new(),
        }
    }

    fn add<M: Message>(&mut self, m: &M) {
        let key = m
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .unwrap_or_default();
        // `<group>/<input topic>/<stream>#<chunk>`; other deployments' keys are skipped.
        let Some(stream) = key
            .split_once('#')
            .and_then(|(s, _)| parse_stream_name(s.rsplit('/').next()?))
            .filter(|&s| key.starts_with(&key_prefix(&self.kafka, s)))
        else {
            return;
        };
        let Some((next_offset, index, total, sha)) =
            header(m, HEADER).as_deref().and_then(parse_header)
        else {
            return;
        };
        let tag = header(m, HMAC_HEADER);
        let versions = self.versions.entry(stream).or_default();
        // Chunks of one checkpoint are published together: look from the newest.
        let v = match versions
            .iter()
            .rposition(|v| v.sha == sha && v.next_offset == next_offset)
        {
            Some(i) => &mut versions[i],
            None => {
                versions.push(Version {
                    next_offset,
                    sha,
                    chunks: BTreeMap::new(),
                    total,
                    tag: None,
                    verified: None,
                    bad: false,
                });
                let last = versions.len() - 1;
                &mut versions[last]
            }
        };
        if tag.is_some() {
            v.tag = tag;
        }
        v.chunks
            .insert(index, m.payload().unwrap_or_default().to_vec());
    }

    /// Per stream, the most recently published complete and intact checkpoint;
    /// older versions are dropped.
    fn latest(&mut self) -> HashMap<StreamId, Latest> {
        let mut out = HashMap::new();
        for (&stream, versions) in &mut self.versions {
            let mut keep_from = None;
            for (i, v) in versions.iter_mut().enumerate().rev() {
                if v.verified.is_none() {
                    let complete =
                        v.chunks.len() == v.total && v.chunks.keys().copied().eq(0..v.total);
                    if v.bad || !complete {
                        continue;
                    }
                    let bytes: Vec<u8> = v.chunks.values().flatten().copied().collect();
                    let signed = self.key.verify(v.next_offset, &v.sha, v.tag.as_deref());
                    if hex::encode(Sha256::digest(&bytes)) != v.sha {
                        v.bad = true;
                        tracing::error!(stream = %stream_name(stream), next_offset = v.next_offset, "changelog checkpoint fails its checksum; skipped");
                    } else if let Err(e) = signed {
                        v.bad = true;
                        tracing::error!(stream = %stream_name(stream), next_offset = v.next_offset, error = %e, "changelog checkpoint refused");
                    } else {
                        v.verified = Some(bytes.into());
                    }
                    v.chunks.clear();
                }
                if let Some(bytes) = &v.verified {
                    out.insert(
                        stream,
                        Latest {
                            next_offset: v.next_offset,
                            sha256: v.sha.clone(),
                            bytes: bytes.clone(),
                        },
                    );
                    keep_from = Some(i);
                    break;
                }
            }
            if let Some(i) = keep_from {
                versions.drain(..i);
            }
        }
        out
    }
}

fn reader(kafka: &KafkaConfig) -> Result<BaseConsumer, KafkaError> {
    reader_config(kafka, "changelog-reader").create()
}

/// Assigns every partition of the changelog from the beginning; returns the
/// partitions' current ends.
fn assign_all(
    consumer: &BaseConsumer,
    kafka: &KafkaConfig,
    timeout: Duration,
) -> Result<HashMap<i32, i64>, KafkaError> {
    let metadata = consumer.fetch_metadata(Some(&kafka.state_topic), timeout)?;
    let mut ends = HashMap::new();
    let mut tpl = TopicPartitionList::new();
    for p in metadata
        .topics()
        .iter()
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
    {
        let (low, high) = consumer.fetch_watermarks(&kafka.state_topic, p, timeout)?;
        if high > low {
            ends.insert(p, high);
        }
        tpl.add_partition_offset(&kafka.state_topic, p, Offset::Beginning)?;
    }
    consumer.assign(&tpl)?;
    Ok(ends)
}

/// Reads the whole changelog topic (up to its current end, at most `timeout`)
/// and returns, per stream, the newest complete and intact checkpoint bytes with
/// their next offset.
pub fn read_latest(
    kafka: &KafkaConfig,
    key: &StateKey,
    timeout: Duration,
) -> Result<HashMap<StreamId, Latest>, KafkaError> {
    let consumer = reader(kafka)?;
    let mut ends = assign_all(&consumer, kafka, timeout)?;
    let mut collector = Collector::new(kafka, key);
    let deadline = Instant::now() + timeout;
    while !ends.is_empty() && Instant::now() < deadline {
        let Some(m) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let m = m?;
        if ends
            .get(&m.partition())
            .is_some_and(|&end| m.offset() + 1 >= end)
        {
            ends.remove(&m.partition());
        }
        collector.add(&m);
    }
    if !ends.is_empty() {
        tracing::warn!(topic = %kafka.state_topic, "changelog not read to its end in time");
    }
    Ok(collector.latest())
}

/// A reader that follows the changelog as it grows (for the global view).
pub struct Tail {
    consumer: BaseConsumer,
    collector: Collector,
    kafka: KafkaConfig,
}

impl Tail {
    /// Starts reading the changelog from its beginning.
    pub fn new(kafka: &KafkaConfig, key: &StateKey) -> Result<Tail, KafkaError> {
        let consumer = reader(kafka)?;
        assign_all(&consumer, kafka, Duration::from_secs(30))?;
        Ok(Tail {
            consumer,
            collector: Collector::new(kafka, key),
            kafka: kafka.clone(),
        })
    }

    /// Reads what arrived (for up to `budget`) and returns the newest intact
    /// checkpoint of every stream seen so far.
    pub fn poll(&mut self, budget: Duration) -> HashMap<StreamId, Latest> {
        // The follower may start before any instance has created the changelog
        // topic: then nothing was assigned, and nothing would ever be read (the
        // scale test's intermittent "no global view"). Assign again until the
        // topic has partitions.
        let unassigned = self.consumer.assignment().is_ok_and(|a| a.count() == 0);
        if unassigned && let Err(e) = assign_all(&self.consumer, &self.kafka, budget) {
            tracing::debug!(error = %e, "changelog topic not there yet");
        }
        let deadline = Instant::now() + budget;
        while Instant::now() < deadline {
            match self.consumer.poll(Duration::from_millis(100)) {
                Some(Ok(m)) => self.collector.add(&m),
                Some(Err(e)) => tracing::warn!(error = %e, "changelog tail"),
                None => break,
            }
        }
        self.collector.latest()
    }
}

fn parse_header(h: &str) -> Option<(i64, usize, usize, String)> {
    let mut it = h.splitn(4, ':');
    Some((
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.to_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        assert_eq!(
            parse_header("42:1:3:abc"),
            Some((42, 1, 3, "abc".to_owned()))
        );
        assert_eq!(parse_header("42:1"), None);
    }
}
