//! The state changelog: every checkpoint file is also published to a
//! compacted Kafka topic (`kafka.state_topic`), so an instance on another
//! machine can take a partition over where its previous owner checkpointed, and
//! every instance can read every partition's state to answer global reports.
//!
//! A file is split into chunks of at most 512 KiB. A full file's chunks are
//! keyed `<group>/<input topic>/<stream>#<chunk>` (so deployments sharing a
//! state topic stay apart), the k-th delta of a chain's `<stream>~<k>#<chunk>`:
//! compaction keeps one full file and at most [`MAX_DELTAS`](crate::checkpoint::MAX_DELTAS) deltas per stream.
//! Each chunk carries the header `slaflow.checkpoint =
//! <next_offset>:<chunk>:<chunks>:<sha256>`, a delta's also `slaflow.previous`
//! (the SHA-256 of the file before it). A reader keeps every version it sees
//! and uses, per stream, the most recently published full file whose chunks are
//! all present and whose bytes match the checksum, followed by the longest run
//! of intact deltas that each follow the file before; so a publish cut short by
//! a crash is skipped, and deltas of another chain are never applied.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use sha2::{Digest, Sha256};

use crate::checkpoint::{StateKey, Written, parse_stream_name, stream_name};
use crate::config::KafkaConfig;
use crate::eventtime::StreamId;
use crate::kafka::{TopicSpec, create_topics, reader_config};
use crate::sink::kafka::{KafkaSink, KafkaSinkError};

/// Largest chunk of a checkpoint in one message (below librdkafka's 1 MB default).
const CHUNK: usize = 512 * 1024;
const HEADER: &str = "slaflow.checkpoint";
/// HMAC of `<next_offset>:<sha256>` under the state key (see [`StateKey`]).
const HMAC_HEADER: &str = "slaflow.hmac";
/// A delta's predecessor (SHA-256 of the file before it in the chain).
const PREVIOUS_HEADER: &str = "slaflow.previous";

/// The deployment a changelog key belongs to: the consumer group, plus the
/// input topic of the stream, so deployments (or tests) sharing a broker and a
/// state topic never restore each other's state.
fn key_prefix(kafka: &KafkaConfig, stream: StreamId) -> String {
    format!("{}/{}/", kafka.group_id, kafka.topic_name(stream.topic))
}

/// Queues a checkpoint file on the changelog topic (flush the sink to wait).
pub fn publish(
    sink: &KafkaSink,
    kafka: &KafkaConfig,
    key: &StateKey,
    stream: StreamId,
    written: &Written,
) -> Result<(), KafkaSinkError> {
    let file = File {
        next_offset: written.manifest.next_offset,
        bytes: &written.bytes,
        sha256: written.manifest.tip().sha256.clone(),
        delta: written.delta(),
        previous: written.previous(),
    };
    for (name, chunk, headers) in file.messages(kafka, key, stream) {
        sink.send_bytes(&kafka.state_topic, &name, chunk, Some(headers))?;
    }
    Ok(())
}

/// A checkpoint file as published.
struct File<'a> {
    next_offset: i64,
    bytes: &'a [u8],
    /// SHA-256 of `bytes` (hex), as the store computed it.
    sha256: String,
    /// Its place in the chain (0: the full file).
    delta: usize,
    /// For a delta, the SHA-256 of the file before it.
    previous: Option<&'a str>,
}

impl<'a> File<'a> {
    /// Its messages: (key, chunk, headers).
    fn messages(
        &self,
        kafka: &KafkaConfig,
        key: &StateKey,
        stream: StreamId,
    ) -> Vec<(String, &'a [u8], OwnedHeaders)> {
        let sha = &self.sha256;
        let tag = key.tag(self.next_offset, sha);
        let chunks: Vec<&'a [u8]> = if self.bytes.is_empty() {
            vec![self.bytes]
        } else {
            self.bytes.chunks(CHUNK).collect()
        };
        let mut name = format!("{}{}", key_prefix(kafka, stream), stream_name(stream));
        if self.delta > 0 {
            name = format!("{name}~{}", self.delta);
        }
        let n = chunks.len();
        let headers = |i: usize| {
            let value = format!("{}:{i}:{n}:{sha}", self.next_offset);
            let mut headers = OwnedHeaders::new().insert(Header {
                key: HEADER,
                value: Some(value.as_str()),
            });
            for (k, v) in [
                (HMAC_HEADER, tag.as_deref()),
                (PREVIOUS_HEADER, self.previous),
            ] {
                if let Some(v) = v {
                    headers = headers.insert(Header {
                        key: k,
                        value: Some(v),
                    });
                }
            }
            headers
        };
        (chunks.into_iter().enumerate())
            .map(|(i, chunk)| (format!("{name}#{i}"), chunk, headers(i)))
            .collect()
    }
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
    /// SHA-256 of the chain's last file (hex): identifies the version.
    pub sha256: String,
    /// The chain: a full Arrow IPC file, then its deltas.
    pub files: Vec<Arc<[u8]>>,
}

/// One version of a stream's checkpoint as seen on the topic.
struct Version {
    next_offset: i64,
    sha: String,
    chunks: BTreeMap<usize, Vec<u8>>,
    total: usize,
    /// The HMAC header its chunks carried, if any.
    tag: Option<String>,
    /// For a delta, the SHA-256 of the file before it.
    previous: Option<String>,
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
        // `<group>/<input topic>/<stream>[~<delta>]#<chunk>`; other deployments' keys are skipped.
        let Some(stream) = key
            .split_once('#')
            .and_then(|(s, _)| s.rsplit('/').next())
            .and_then(|s| parse_stream_name(s.split_once('~').map_or(s, |(s, _)| s)))
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
        let previous = header(m, PREVIOUS_HEADER);
        let versions = self.versions.entry(stream).or_default();
        // Chunks of one file are published together: look from the newest.
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
                    previous,
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

    /// Per stream, the most recently published intact full file and the
    /// intact deltas that follow it; versions before that full file are dropped.
    fn latest(&mut self) -> HashMap<StreamId, Latest> {
        let mut out = HashMap::new();
        for (&stream, versions) in &mut self.versions {
            let full = (0..versions.len()).rev().find_map(|i| {
                let v = &mut versions[i];
                v.previous
                    .is_none()
                    .then(|| v.verify(stream, &self.key).map(|b| (i, b)))?
            });
            let Some((base, bytes)) = full else {
                continue;
            };
            versions.drain(..base);
            let mut files = vec![bytes];
            let mut tip = 0;
            while let Some((i, bytes)) = (tip + 1..versions.len()).find_map(|i| {
                let follows = versions[i].previous.as_ref() == Some(&versions[tip].sha);
                follows.then(|| versions[i].verify(stream, &self.key).map(|b| (i, b)))?
            }) {
                files.push(bytes);
                tip = i;
            }
            let tip = &versions[tip];
            let latest = Latest {
                next_offset: tip.next_offset,
                sha256: tip.sha.clone(),
                files,
            };
            out.insert(stream, latest);
        }
        out
    }
}

impl Version {
    /// The file's bytes once all its chunks are in and they match the
    /// checksum and the signature (checked once per version).
    fn verify(&mut self, stream: StreamId, key: &StateKey) -> Option<Arc<[u8]>> {
        if self.verified.is_none() && !self.bad {
            let complete =
                self.chunks.len() == self.total && self.chunks.keys().copied().eq(0..self.total);
            if !complete {
                return None;
            }
            let bytes: Vec<u8> = self.chunks.values().flatten().copied().collect();
            let signed = key.verify(self.next_offset, &self.sha, self.tag.as_deref());
            if hex::encode(Sha256::digest(&bytes)) != self.sha {
                self.bad = true;
                tracing::error!(stream = %stream_name(stream), next_offset = self.next_offset, "changelog checkpoint fails its checksum; skipped");
            } else if let Err(e) = signed {
                self.bad = true;
                tracing::error!(stream = %stream_name(stream), next_offset = self.next_offset, error = %e, "changelog checkpoint refused");
            } else {
                self.verified = Some(bytes.into());
            }
            self.chunks.clear();
        }
        self.verified.clone()
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
    use rdkafka::message::{OwnedMessage, Timestamp};

    use super::*;
    use crate::event::Topic;

    const S: StreamId = StreamId {
        topic: Topic::Monitoring,
        partition: 1,
    };

    fn file<'a>(
        next_offset: i64,
        bytes: &'a [u8],
        delta: usize,
        previous: Option<&'a str>,
    ) -> File<'a> {
        File {
            next_offset,
            bytes,
            sha256: sha(bytes),
            delta,
            previous,
        }
    }

    /// Feeds messages to `c`, leaving out the `skip`-th.
    fn send(c: &mut Collector, messages: Vec<(String, &[u8], OwnedHeaders)>, skip: Option<usize>) {
        for (i, (name, chunk, headers)) in messages.into_iter().enumerate() {
            if skip != Some(i) {
                let (topic, ts) = ("state".to_owned(), Timestamp::NotAvailable);
                let (payload, key) = (Some(chunk.to_vec()), Some(name.into_bytes()));
                c.add(&OwnedMessage::new(
                    payload,
                    key,
                    topic,
                    ts,
                    0,
                    0,
                    Some(headers),
                ));
            }
        }
    }

    fn add(c: &mut Collector, file: &File, skip: Option<usize>) {
        let messages = file.messages(&c.kafka, &c.key, S);
        send(c, messages, skip);
    }

    fn sha(b: &[u8]) -> String {
        hex::encode(Sha256::digest(b))
    }

    fn chain(c: &mut Collector) -> Option<(i64, Vec<Vec<u8>>)> {
        let l = c.latest().remove(&S)?;
        Some((l.next_offset, l.files.iter().map(|f| f.to_vec()).collect()))
    }

    #[test]
    fn a_reader_assembles_the_newest_full_file_and_its_deltas() {
        let mut c = Collector::new(&KafkaConfig::default(), &StateKey::new(b"k"));
        // Two chunks, so a publish can be cut short.
        let (f1, d1, d2) = (vec![1u8; CHUNK + 10], vec![2u8; 10], vec![3u8; 10]);
        let (after_f1, after_d1) = (sha(&f1), sha(&d1));
        add(&mut c, &file(10, &f1, 0, None), None);
        add(&mut c, &file(12, &d1, 1, Some(&after_f1)), None);
        // A delta of another chain, and one whose bytes fail their checksum.
        add(&mut c, &file(13, &[9], 2, Some("another chain")), None);
        let d2_file = file(13, &d2, 2, Some(&after_d1));
        let mut bad = d2_file.messages(&c.kafka, &c.key, S);
        bad[0].1 = &[4u8; 10];
        send(&mut c, bad, None);
        assert_eq!(chain(&mut c), Some((12, vec![f1.clone(), d1.clone()])));
        add(&mut c, &file(14, &d2, 2, Some(&after_d1)), None);
        assert_eq!(chain(&mut c), Some((14, vec![f1.clone(), d1, d2])));

        // A newer full file cut short leaves the chain in use; complete, it replaces it.
        let f2 = vec![5u8; CHUNK + 20];
        add(&mut c, &file(20, &f2, 0, None), Some(1));
        assert_eq!(chain(&mut c).map(|(o, f)| (o, f.len())), Some((14, 3)));
        add(&mut c, &file(20, &f2, 0, None), None);
        assert_eq!(chain(&mut c), Some((20, vec![f2])));

        // Signed under another key: refused.
        let mut other = Collector::new(&KafkaConfig::default(), &StateKey::new(b"k2"));
        send(&mut other, c_messages(&c, &f1), None);
        assert!(other.latest().is_empty());
    }

    /// A full file's messages as `c`'s writer would publish them.
    fn c_messages<'a>(c: &Collector, bytes: &'a [u8]) -> Vec<(String, &'a [u8], OwnedHeaders)> {
        file(10, bytes, 0, None).messages(&c.kafka, &c.key, S)
    }

    #[test]
    fn header_round_trip() {
        assert_eq!(
            parse_header("42:1:3:abc"),
            Some((42, 1, 3, "abc".to_owned()))
        );
        assert_eq!(parse_header("42:1"), None);
    }
}
