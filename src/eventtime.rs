//! Event time (contract section 3): per-stream watermarks and lateness, dedup by
//! `event_id`, per-key ordering by `ts` (ties keep arrival order) and release to the
//! engine once the global watermark reaches a record's `ts`.
//!
//! Pure: no clocks, no I/O. Live drivers pass the wall clock in; replay passes none.
//! Release is global `(ts, arrival)` order, which implies per-key order.

use std::cmp::Reverse;
use std::collections::hash_map::Entry as Seen;
use std::collections::{BTreeMap, BinaryHeap, HashMap};

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::datatypes::Int64Type;

use crate::event::schema::col;
use serde::{Deserialize, Serialize};

use crate::event::rows::Corrupt;
use crate::event::{DeadLetter, DecodedChunk, Decoder, RawRecord, Reason, Topic};
use crate::time::{Millis, format_ms};

/// One input stream: a Kafka partition or a replay file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct StreamId {
    /// Topic of the stream.
    pub topic: Topic,
    /// Kafka partition, or replay file index.
    pub partition: i32,
}

/// Event-time settings (from `[engine]`).
#[derive(Debug, Clone, Copy)]
pub struct EventTimeConfig {
    /// Watermark lag behind a stream's highest `ts`.
    pub allowed_lateness: Millis,
    /// How long event ids are remembered.
    pub dedup_horizon: Millis,
    /// Quiet time after which a caught-up partition stops holding the watermark.
    pub idle_timeout: Millis,
    /// How far past the processing clock a `ts` may lie before it is `future`.
    pub max_future: Millis,
}

/// A business check run after dedup (unknown service/customer) on a row of the
/// chunk being ingested; returns the dead-letter reason and message to reject it.
pub type Admit<'a> = dyn FnMut(usize) -> Result<Option<(Reason, String)>, Corrupt> + 'a;

#[derive(Debug)]
struct Stream {
    generation: u64,
    max_ts: Option<Millis>,
    finished: bool,
    caught_up: bool,
    last_record_wall: Millis,
    /// Next offset to read; `None` until a record was read (then the committed
    /// offset, unknown here, must not be overwritten).
    next_offset: Option<i64>,
}

impl Stream {
    /// `future` (past `future_after`, the processing clock `now` plus
    /// `max_future`) or `late` (behind the stream's watermark), checked in that
    /// order (contract section 2).
    fn refuse_by_time(
        &self,
        ts: Millis,
        future_after: Millis,
        now: Millis,
        lateness: Millis,
    ) -> Option<(Reason, String)> {
        if ts > future_after {
            let (ts, now) = (format_ms(ts), format_ms(now));
            let why = format!("ts {ts} is more than max_future past the processing clock {now}");
            return Some((Reason::Future, why));
        }
        let wm = self.watermark(lateness).filter(|wm| ts < *wm)?;
        Some((
            Reason::Late,
            format!("ts {ts} is older than the stream watermark {wm}"),
        ))
    }

    fn watermark(&self, lateness: Millis) -> Option<Millis> {
        self.max_ts.map(|m| m.saturating_sub(lateness))
    }
    /// Notes that the record at `offset` was read.
    fn read_up_to(&mut self, offset: i64) {
        let next = offset.saturating_add(1);
        self.next_offset = Some(self.next_offset.map_or(next, |o| o.max(next)));
    }
    fn idle(&self, wall: Millis, idle_timeout: Millis) -> bool {
        self.caught_up && wall.saturating_sub(self.last_record_wall) >= idle_timeout
    }
}

fn widen(range: &mut Option<(Millis, Millis)>, ts: Millis) {
    *range = Some(range.map_or((ts, ts), |(lo, hi)| (lo.min(ts), hi.max(ts))));
}

/// An event id as the dedup set keeps it: 64 bits of XXH3 (fixed seed, so
/// checkpoints and replays agree), 8 bytes whatever the id's length. Two
/// different ids of one topic within one horizon collide with probability
/// about n²/2^65 for n ids in the horizon (10^7 ids: 3·10^-6; 10^9: 3 %); a
/// collision makes the later event a `duplicate` (docs/performance.md).
pub fn id_hash(event_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(event_id.as_bytes())
}

/// A dedup entry in a checkpoint: the id's hash, or (checkpoints written
/// before ids were hashed) the id itself.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DedupKey {
    /// [`id_hash`] of the id.
    Hash(u64),
    /// The id as written by older versions.
    Id(String),
}

impl DedupKey {
    fn hash(&self) -> u64 {
        match self {
            DedupKey::Hash(h) => *h,
            DedupKey::Id(id) => id_hash(id),
        }
    }
}

#[derive(Debug, Default)]
struct Dedup {
    /// [`id_hash`] of an event id → (ts, partition) of its last sighting.
    /// The key is already a hash: foldhash (randomly seeded per process, so
    /// crafted ids cannot pile into one bucket) only mixes it, where SipHash
    /// would hash the hash again.
    seen: HashMap<u64, (Millis, i32), foldhash::fast::RandomState>,
    swept_at: Millis,
}

impl Dedup {
    /// Whether the id of hash `id` was admitted less than `horizon` from
    /// `ts`; if not, remembers it at `ts`.
    fn repeats(&mut self, id: u64, ts: Millis, partition: i32, horizon: Millis) -> bool {
        match self.seen.entry(id) {
            Seen::Occupied(e) if (ts - e.get().0).abs() < horizon => return true,
            Seen::Occupied(mut e) => *e.get_mut() = (ts, partition),
            Seen::Vacant(e) => {
                e.insert((ts, partition));
            }
        }
        false
    }
}

/// One chunk's admitted rows waiting for the watermark: a run sorted by
/// (ts, arrival). Release merges the runs, so the order is that of one global
/// sort while the work per row is a step along its run (input is mostly in
/// order), not a heap operation.
#[derive(Debug)]
struct Buffered {
    batch: RecordBatch,
    stream: StreamId,
    /// The stream's generation when the rows were read; rows of an older one
    /// (the partition was revoked since) are handed off, not released.
    generation: u64,
    /// (ts, arrival seq, row), sorted; those before `next` are released.
    rows: Vec<(Millis, u64, u32)>,
    next: usize,
}

impl Buffered {
    fn waiting(&self) -> &[(Millis, u64, u32)] {
        self.rows.get(self.next..).unwrap_or_default()
    }
}

/// Merge heap entry: the next row of the run in `slot`, as (ts, arrival seq, slot).
type Entry = Reverse<(Millis, u64, usize)>;

/// Records released to the engine, per topic in `(ts, arrival)` order.
#[derive(Debug, Default)]
pub struct Released {
    /// Monitoring rows.
    pub monitoring: ReleasedRows,
    /// Ticket rows.
    pub tickets: ReleasedRows,
    /// Buffered rows dropped because their partition was revoked.
    pub handed_off: u64,
}

/// Released rows of one topic, left in the chunks they were decoded in (the
/// engine reads them where they are; merging streams would otherwise copy
/// every row into a new batch).
#[derive(Debug, Default)]
pub struct ReleasedRows {
    /// The chunks.
    pub batches: Vec<RecordBatch>,
    /// (chunk, row) in release order.
    pub rows: Vec<(u32, u32)>,
}

impl ReleasedRows {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when nothing was released.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The rows as one batch, copied (for tests and tools).
    pub fn to_batch(&self) -> Option<RecordBatch> {
        if self.rows.is_empty() {
            // interleave needs at least one batch.
            return None;
        }
        let batches: Vec<&RecordBatch> = self.batches.iter().collect();
        let idx: Vec<(usize, usize)> = (self.rows.iter())
            .map(|&(b, r)| (b as usize, r as usize))
            .collect();
        interleave_record_batch(&batches, &idx).ok()
    }
}

/// The event-time state of one stream: what a checkpoint holds for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StreamState {
    /// The stream.
    pub stream: StreamId,
    /// Highest `ts` seen (its watermark trails it by the allowed lateness).
    pub max_ts: Option<Millis>,
    /// Next offset to read: every record before it is decided or in `pending`.
    pub next_offset: i64,
    /// Event ids last seen on this stream within the dedup horizon (hashed),
    /// with their `ts`.
    pub dedup: Vec<(DedupKey, Millis)>,
    /// Records waiting for the watermark: (offset, arrival sequence, original text).
    pub pending: Vec<(i64, u64, String)>,
}

impl StreamState {
    /// Checks restored state: offsets ordered, instants in range.
    pub fn check(&self) -> Result<(), String> {
        if self.next_offset < 0 {
            return Err(format!("next offset {} is negative", self.next_offset));
        }
        if self
            .pending
            .iter()
            .any(|p| !(0..self.next_offset).contains(&p.0))
        {
            return Err("a buffered record lies outside the offsets read".into());
        }
        for t in self
            .max_ts
            .into_iter()
            .chain(self.dedup.iter().map(|d| d.1))
        {
            crate::time::check_instant("ts", t)?;
        }
        Ok(())
    }
}

/// The event-time layer's state.
#[derive(Debug)]
pub struct EventTime {
    cfg: EventTimeConfig,
    topic_names: [String; 2],
    streams: BTreeMap<StreamId, Stream>,
    dedup: [Dedup; 2],
    /// Runs of buffered rows; `None` is free for reuse.
    slots: Vec<Option<Buffered>>,
    free_slots: Vec<usize>,
    /// Each run's next row.
    heap: BinaryHeap<Entry>,
    watermark: Millis,
    /// Lowest and highest `ts` that moved a watermark (never a malformed or future one).
    ts_range: Option<(Millis, Millis)>,
    seq: u64,
    generation: u64,
}

impl EventTime {
    /// A new layer with no streams; the global watermark starts at the beginning of time.
    /// `topic_names` (monitoring, tickets) name the topics in dead letters.
    pub fn new(cfg: EventTimeConfig, topic_names: [String; 2]) -> Self {
        EventTime {
            cfg,
            topic_names,
            streams: BTreeMap::new(),
            dedup: Default::default(),
            slots: Vec::new(),
            free_slots: Vec::new(),
            heap: BinaryHeap::new(),
            watermark: Millis::MIN,
            ts_range: None,
            seq: 0,
            generation: 0,
        }
    }

    /// The global watermark: every record with a `ts` before it has arrived (a later
    /// one would be late), so everything strictly before it is final.
    pub fn watermark(&self) -> Millis {
        self.watermark
    }

    /// Lowest and highest `ts` of the records that moved a watermark so far.
    pub fn ts_range(&self) -> Option<(Millis, Millis)> {
        self.ts_range
    }

    /// Widens [`EventTime::ts_range`] (a restored partition's range).
    pub fn widen_ts_range(&mut self, ts: Millis) {
        widen(&mut self.ts_range, ts);
    }

    /// A stream's own watermark (highest `ts` − allowed lateness), if it has seen a `ts`.
    pub fn stream_watermark(&self, id: StreamId) -> Option<Millis> {
        self.streams
            .get(&id)
            .and_then(|s| s.watermark(self.cfg.allowed_lateness))
    }

    /// Registers a stream (a new replay file or an assigned partition).
    /// `wall` is the live wall clock (ignored in replay).
    ///
    /// A new stream holds the global watermark back from now on, so the watermark
    /// is recomputed from scratch and may move back: a partition taken over (or
    /// restored from a checkpoint) must not see its records judged against a
    /// watermark that ran ahead while it was not here. Nothing already decided
    /// changes: every stream still present only admits records at or after its
    /// own watermark, which is at or after the old global one.
    pub fn add_stream(&mut self, id: StreamId, wall: Millis) {
        if !self.streams.contains_key(&id) {
            self.watermark = Millis::MIN;
        }
        self.generation += 1;
        let generation = self.generation;
        self.streams.entry(id).or_insert(Stream {
            generation,
            max_ts: None,
            finished: false,
            caught_up: false,
            last_record_wall: wall,
            next_offset: None,
        });
    }

    /// Forgets a stream (its partition was revoked); its buffered rows are dropped at
    /// the next release, since the partition's new owner will read them again, and
    /// so are the event ids it saw: whoever reads the partition next (this process
    /// after a restore, or another) must not take its records for duplicates.
    pub fn remove_stream(&mut self, id: StreamId) {
        if self.streams.remove(&id).is_some() {
            self.dedup[id.topic.index()]
                .seen
                .retain(|_, (_, p)| *p != id.partition);
        }
    }

    /// Streams currently registered.
    pub fn streams(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.streams.keys().copied()
    }

    /// Marks a replay file as fully read: it no longer holds the watermark back.
    pub fn finish_stream(&mut self, id: StreamId) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.finished = true;
        }
    }

    /// Records whether a live partition has been read to its end.
    pub fn set_caught_up(&mut self, id: StreamId, caught_up: bool) {
        if let Some(s) = self.streams.get_mut(&id) {
            s.caught_up = caught_up;
        }
    }

    /// The state of one stream, `None` before its first record.
    pub fn export_stream(&self, id: StreamId) -> Option<StreamState> {
        let s = self.streams.get(&id)?;
        let next_offset = s.next_offset?;
        let mut dedup: Vec<(DedupKey, Millis)> = self.dedup[id.topic.index()]
            .seen
            .iter()
            .filter(|(_, (_, p))| *p == id.partition)
            .map(|(k, (ts, _))| (DedupKey::Hash(*k), *ts))
            .collect();
        dedup.sort_unstable();
        let mut pending: Vec<(i64, u64, String)> = (self.slots.iter().flatten())
            .filter(|b| b.stream == id && b.generation == s.generation)
            .flat_map(|b| {
                let offsets = b.batch.column(col::OFFSET).as_primitive::<Int64Type>();
                let raw = b.batch.column(col::RAW).as_string_view();
                (b.waiting().iter()).map(move |&(_, seq, row)| {
                    let row = row as usize;
                    (offsets.value(row), seq, raw.value(row).to_owned())
                })
            })
            .collect();
        pending.sort_unstable_by_key(|p| p.1);
        Some(StreamState {
            stream: id,
            max_ts: s.max_ts,
            next_offset,
            dedup,
            pending,
        })
    }

    /// Restores a stream from its checkpointed state: its watermark, dedup ids
    /// and buffered records (re-decoded from their text, already admitted, keeping
    /// their arrival order). Reading resumes at `next_offset`.
    pub fn import_stream(&mut self, state: StreamState, decoder: &Decoder, wall: Millis) {
        let id = state.stream;
        self.remove_stream(id);
        self.add_stream(id, wall);
        let dedup = &mut self.dedup[id.topic.index()];
        for (key, ts) in state.dedup {
            let e = dedup.seen.entry(key.hash()).or_insert((ts, id.partition));
            if ts >= e.0 {
                *e = (ts, id.partition);
            }
        }
        if let Some(stream) = self.streams.get_mut(&id) {
            stream.max_ts = state.max_ts;
            stream.next_offset = Some(state.next_offset);
        }
        if state.pending.is_empty() {
            return;
        }
        let records: Vec<RawRecord> = state
            .pending
            .iter()
            .map(|(offset, _, raw)| RawRecord {
                partition: id.partition,
                offset: *offset,
                payload: raw.as_bytes(),
            })
            .collect();
        let batch = decoder.decode(id.partition, &records).batch;
        let seqs: HashMap<i64, u64> = state.pending.iter().map(|(o, s, _)| (*o, *s)).collect();
        let ts = batch.column(col::TS).as_primitive::<Int64Type>();
        let offsets = batch.column(col::OFFSET).as_primitive::<Int64Type>();
        let rows: Vec<(Millis, u64, u32)> = (0..batch.num_rows())
            .map(|r| {
                let seq = seqs.get(&offsets.value(r)).copied().unwrap_or(0);
                (ts.value(r), seq, r as u32)
            })
            .collect();
        if let Some(max_seq) = rows.iter().map(|r| r.1).max() {
            self.seq = self.seq.max(max_seq);
        }
        self.buffer(id, batch, rows);
    }

    /// Number of rows waiting for the watermark.
    pub fn buffered(&self) -> usize {
        self.slots.iter().flatten().map(|b| b.waiting().len()).sum()
    }

    /// Event ids remembered for deduplication, all topics.
    pub fn dedup_ids(&self) -> usize {
        self.dedup.iter().map(|d| d.seen.len()).sum()
    }

    /// Takes in one decoded chunk, in arrival order: dead-letters future, late,
    /// duplicate and inadmissible records, advances the stream watermark with every
    /// record that is neither malformed nor future, and buffers the rest.
    ///
    /// `now` is the processing clock: the wall clock live, the simulated clock in
    /// the demo, `--now` in replay. It also stamps the stream's last activity.
    pub fn ingest(
        &mut self,
        chunk: DecodedChunk,
        now: Millis,
        admit: &mut Admit,
        dead: &mut Vec<DeadLetter>,
    ) -> Result<(), Corrupt> {
        let id = StreamId {
            topic: chunk.topic,
            partition: chunk.partition,
        };
        self.add_stream(id, now);
        let total = chunk.len();
        let batch = chunk.batch;
        let Some(mut refusals) = self.time_refusals(id, &batch, now) else {
            return Ok(());
        };
        self.refuse_repeats(id, &batch, &mut refusals);
        let Some(stream) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if total > 0 {
            stream.last_record_wall = now;
        }
        let ts = batch.column(col::TS).as_primitive::<Int64Type>();
        let offsets = batch.column(col::OFFSET).as_primitive::<Int64Type>();
        let topic_name = &self.topic_names[id.topic.index()];
        let mut kept: Vec<(Millis, u64, u32)> = Vec::with_capacity(batch.num_rows());
        let mut malformed = chunk.malformed.into_iter().peekable();
        let mut rows = refusals.into_iter().enumerate();
        for pos in 0..total {
            // `peek`, not `next_if`: that moves the record out and back in
            // for every row that is not malformed.
            if malformed.peek().is_some_and(|m| m.position == pos)
                && let Some(m) = malformed.next()
            {
                stream.read_up_to(m.dead.offset);
                dead.push(m.dead);
                continue;
            }
            let Some((r, refusal)) = rows.next() else {
                return Err(Corrupt {
                    topic: id.topic,
                    row: batch.num_rows(),
                    what: format!("record {pos} of the chunk is neither a row nor malformed"),
                });
            };
            stream.read_up_to(offsets.value(r));
            let refusal = match refusal {
                Some(refusal) => Some(refusal),
                None => admit(r)?,
            };
            if let Some((reason, error)) = refusal {
                dead.push(DeadLetter::from_row(&batch, r, topic_name, reason, error));
                continue;
            }
            self.seq += 1;
            kept.push((ts.value(r), self.seq, r as u32));
        }
        self.buffer(id, batch, kept);
        Ok(())
    }

    /// `future` and `late` per row of `batch` (contract section 2), in
    /// arrival order: a row is late by the stream's max ts over the rows
    /// before it, which each row these checks pass raises. `None` for a
    /// stream not registered.
    fn time_refusals(
        &mut self,
        id: StreamId,
        batch: &RecordBatch,
        now: Millis,
    ) -> Option<Vec<Option<(Reason, String)>>> {
        let stream = self.streams.get_mut(&id)?;
        let lateness = self.cfg.allowed_lateness;
        let future_after = now.saturating_add(self.cfg.max_future);
        let ts = batch.column(col::TS).as_primitive::<Int64Type>();
        let refusals = (ts.values().iter()).map(|&t| {
            let refusal = stream.refuse_by_time(t, future_after, now, lateness);
            if refusal.is_none() {
                stream.max_ts = Some(stream.max_ts.map_or(t, |x| x.max(t)));
                widen(&mut self.ts_range, t);
            }
            refusal
        });
        Some(refusals.collect())
    }

    /// `duplicate` for the rows of `batch` the time checks passed, in
    /// arrival order. A loop of its own over precomputed hashes: with the
    /// set larger than the cache each probe misses it, and only a loop this
    /// small lets the processor overlap several misses (inside the per-row
    /// loop they were about 7 % of a replay's time, docs/performance.md).
    fn refuse_repeats(
        &mut self,
        id: StreamId,
        batch: &RecordBatch,
        refusals: &mut [Option<(Reason, String)>],
    ) {
        let ids = batch.column(col::EVENT_ID).as_string::<i32>();
        let ts = batch.column(col::TS).as_primitive::<Int64Type>();
        let hashes: Vec<u64> = (0..batch.num_rows())
            .map(|r| id_hash(ids.value(r)))
            .collect();
        let (dedup, horizon) = (&mut self.dedup[id.topic.index()], self.cfg.dedup_horizon);
        let rows = refusals.iter_mut().zip(hashes).zip(ts.values());
        for (r, ((refusal, hash), &t)) in rows.enumerate() {
            if refusal.is_none() && dedup.repeats(hash, t, id.partition, horizon) {
                let why = format!("event_id {:?} already seen", ids.value(r));
                *refusal = Some((Reason::Duplicate, why));
            }
        }
    }

    /// Recomputes the global watermark (`wall` = live wall clock, `None` in replay)
    /// and releases every buffered record with `ts` < it.
    pub fn advance(&mut self, wall: Option<Millis>) -> Released {
        if let Some(wm) = self.compute_watermark(wall)
            && wm > self.watermark
        {
            self.watermark = wm;
        }
        self.sweep_dedup();
        // Strictly before the watermark: a record at exactly the watermark may still
        // be joined by others of the same `ts`, which must be applied together.
        self.release(self.watermark.saturating_sub(1))
    }

    /// End of replay input: releases everything and sets the watermark to at least
    /// `final_watermark`.
    pub fn finish(&mut self, final_watermark: Millis) -> Released {
        self.watermark = self.watermark.max(final_watermark);
        self.release(Millis::MAX)
    }

    fn compute_watermark(&self, wall: Option<Millis>) -> Option<Millis> {
        let mut min: Option<Millis> = None;
        let mut holding = false;
        for s in self.streams.values() {
            if s.finished || wall.is_some_and(|w| s.idle(w, self.cfg.idle_timeout)) {
                continue;
            }
            holding = true;
            let w = s.watermark(self.cfg.allowed_lateness)?;
            min = Some(min.map_or(w, |m| m.min(w)));
        }
        if holding {
            min
        } else {
            // Every stream is finished or idle: in live mode time moves with the clock.
            wall.map(|w| w.saturating_sub(self.cfg.allowed_lateness))
        }
    }

    fn sweep_dedup(&mut self) {
        // Safe eviction: any future record has ts ≥ the global watermark, so an
        // entry older than watermark − horizon can no longer match.
        let horizon = self.cfg.dedup_horizon;
        let wm = self.watermark;
        if wm == Millis::MIN {
            return;
        }
        for d in &mut self.dedup {
            if wm.saturating_sub(d.swept_at) >= horizon / 4 {
                d.seen.retain(|_, (ts, _)| ts.saturating_add(horizon) > wm);
                // After a burst the table would keep its peak size for good.
                if d.seen.len() < d.seen.capacity() / 4 {
                    d.seen.shrink_to(d.seen.len() * 2);
                }
                d.swept_at = wm;
            }
        }
    }

    fn release(&mut self, upto: Millis) -> Released {
        let mut picks: [Vec<(usize, usize)>; 2] = Default::default();
        let mut emptied = Vec::new();
        let mut handed_off = 0;
        while let Some(&Reverse((ts, _, slot))) = self.heap.peek() {
            if ts > upto {
                break;
            }
            self.heap.pop();
            let Some(run) = self.slots[slot].as_mut() else {
                continue;
            };
            let live =
                (self.streams.get(&run.stream)).is_some_and(|s| s.generation == run.generation);
            if !live {
                handed_off += run.waiting().len() as u64;
                run.next = run.rows.len();
                emptied.push(slot);
                continue;
            }
            // Take this run's rows up to the next run's head (or `upto`).
            let bound = self.heap.peek().map(|&Reverse((ts, seq, _))| (ts, seq));
            let picked = &mut picks[run.stream.topic.index()];
            while let Some(&(ts, seq, row)) = run.rows.get(run.next) {
                if ts > upto || bound.is_some_and(|b| (ts, seq) > b) {
                    self.heap.push(Reverse((ts, seq, slot)));
                    break;
                }
                picked.push((slot, row as usize));
                run.next += 1;
            }
            if run.waiting().is_empty() {
                emptied.push(slot);
            }
        }
        let mut out = Released {
            handed_off,
            ..Default::default()
        };
        for topic in Topic::ALL {
            let p = std::mem::take(&mut picks[topic.index()]);
            if p.is_empty() {
                continue;
            }
            let rows = self.gather(&p);
            match topic {
                Topic::Monitoring => out.monitoring = rows,
                Topic::Tickets => out.tickets = rows,
            }
        }
        for slot in emptied {
            self.slots[slot] = None;
            self.free_slots.push(slot);
        }
        out
    }

    /// The picked (slot, row)s as released rows over the slots' chunks.
    fn gather(&self, picks: &[(usize, usize)]) -> ReleasedRows {
        let mut out = ReleasedRows::default();
        // Slot → its batch's place in `out.batches` (slots are a small dense index).
        let mut index: Vec<Option<u32>> = vec![None; self.slots.len()];
        for &(slot, row) in picks {
            let Some(buffered) = self.slots[slot].as_ref() else {
                continue;
            };
            let b = *index[slot].get_or_insert_with(|| {
                out.batches.push(buffered.batch.clone());
                (out.batches.len() - 1) as u32
            });
            out.rows.push((b, row as u32));
        }
        out
    }

    /// Keeps the admitted `rows` (ts, arrival seq, row) of `batch` as a run of `id`.
    fn buffer(&mut self, id: StreamId, batch: RecordBatch, mut rows: Vec<(Millis, u64, u32)>) {
        let Some(generation) = self.streams.get(&id).map(|s| s.generation) else {
            return;
        };
        sort_rows(&mut rows);
        let Some(&(ts, seq, _)) = rows.first() else {
            return;
        };
        let run = Buffered {
            batch,
            stream: id,
            generation,
            rows,
            next: 0,
        };
        let slot = match self.free_slots.pop() {
            Some(slot) => {
                self.slots[slot] = Some(run);
                slot
            }
            None => {
                self.slots.push(Some(run));
                self.slots.len() - 1
            }
        };
        self.heap.push(Reverse((ts, seq, slot)));
    }
}

/// Sorts (ts, arrival seq, row) triples. Rows as `ingest` keeps them rise in
/// seq with their position, so their order is that of ts alone by a stable
/// sort. Input is mostly in order, a row a few places from its own, which an
/// insertion sort puts right in a few steps per row; input further out of
/// order is radix sorted on ts (`radsort`; a chunk's ts share their high
/// bytes, whose passes it skips). Buffering the generated week took 61 M
/// instructions with a comparison sort, 33 M so. Rows restored from a
/// checkpoint, whose seqs need not rise, are sorted as they are.
fn sort_rows(rows: &mut [(Millis, u64, u32)]) {
    sort_rows_within(rows, 16 * rows.len());
}

/// [`sort_rows`], giving the insertion sort up after `moves` moves.
fn sort_rows_within(rows: &mut [(Millis, u64, u32)], moves: usize) {
    if rows.is_sorted() {
        return;
    }
    if !rows.is_sorted_by_key(|r| r.1) {
        rows.sort_unstable();
    } else if !insertion_sort_by_ts(rows, moves) {
        radsort::sort_by_key(rows, |r| r.0);
    }
}

/// A stable insertion sort by ts that stops after `budget` moves (`false`).
/// Rows move only past rows of a later ts, so rows of equal ts keep their
/// order whether or not it finishes.
fn insertion_sort_by_ts(rows: &mut [(Millis, u64, u32)], mut budget: usize) -> bool {
    for i in 1..rows.len() {
        let row = rows[i];
        let mut j = i;
        while j > 0 && rows[j - 1].0 > row.0 {
            if budget == 0 {
                rows[j] = row;
                return false;
            }
            budget -= 1;
            rows[j] = rows[j - 1];
            j -= 1;
        }
        rows[j] = row;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Decoder, RawRecord};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn rows_sort_as_their_triples_do(
            ts in prop_oneof![
                prop::collection::vec(0i64..50, 0..300),
                prop::collection::vec(prop_oneof![30 => 0i64..50, 1 => any::<i64>()], 0..300),
                // Mostly in order: rising, each row a few places off.
                prop::collection::vec((0i64..4, -8i64..8), 0..300).prop_map(|steps| {
                    (steps.iter().scan(0, |t, (step, jitter)| {
                        *t += step;
                        Some(*t + jitter)
                    }))
                    .collect()
                }),
            ],
            shuffled_seqs in any::<bool>(),
            moves in prop_oneof![Just(usize::MAX), 0usize..2000],
        ) {
            // Arrival order (seq rising with position), or seqs in any order.
            let n = ts.len() as u64;
            let mut rows: Vec<(Millis, u64, u32)> = (ts.iter().enumerate())
                .map(|(i, &t)| (t, if shuffled_seqs { (i as u64 * 7919) % (n + 1) } else { i as u64 }, i as u32))
                .collect();
            let mut want = rows.clone();
            want.sort_unstable();
            sort_rows_within(&mut rows, moves);
            prop_assert_eq!(rows, want);
        }
    }

    const MON: StreamId = StreamId {
        topic: Topic::Monitoring,
        partition: 0,
    };
    const MON2: StreamId = StreamId {
        topic: Topic::Monitoring,
        partition: 1,
    };

    fn et() -> EventTime {
        let cfg = EventTimeConfig {
            allowed_lateness: 30_000,
            dedup_horizon: 3_600_000,
            idle_timeout: 10_000,
            max_future: 86_400_000,
        };
        EventTime::new(cfg, ["monitoring.events".into(), "tickets.events".into()])
    }

    fn probe(id: &str, ts: i64, service: &str) -> String {
        format!(
            r#"{{"event_id":"{id}","ts":{ts},"service":"{service}","kind":"probe","source":"a","status":"up"}}"#
        )
    }

    /// Ingests lines on `stream` starting at `first_offset`; returns dead letters.
    fn ingest(
        et: &mut EventTime,
        stream: StreamId,
        first_offset: i64,
        lines: &[String],
    ) -> Vec<DeadLetter> {
        let recs = RawRecord::numbered(lines, stream.partition, first_offset);
        let chunk = Decoder::new(stream.topic, "monitoring.events").decode(stream.partition, &recs);
        let mut dead = Vec::new();
        let services = chunk.batch.column(col::KEY).as_string::<i32>().clone();
        let mut admit = |r: usize| {
            Ok((services.value(r) == "ghost").then(|| (Reason::UnknownService, "no".to_owned())))
        };
        et.ingest(chunk, 0, &mut admit, &mut dead)
            .expect("decoded rows");
        dead
    }

    fn ids(r: &Released) -> Vec<String> {
        (r.monitoring.rows.iter())
            .map(|&(b, row)| {
                let ids = r.monitoring.batches[b as usize].column(col::EVENT_ID);
                ids.as_string::<i32>().value(row as usize).to_owned()
            })
            .collect()
    }

    fn reasons(d: &[DeadLetter]) -> Vec<Reason> {
        d.iter().map(|d| d.reason).collect()
    }

    #[test]
    fn late_is_judged_against_the_stream_watermark() {
        let mut e = et();
        let dead = ingest(
            &mut e,
            MON,
            0,
            &[
                probe("a", 100_000, "web"),
                probe("b", 70_000, "web"),
                probe("c", 69_999, "web"),
            ],
        );
        assert_eq!(reasons(&dead), vec![Reason::Late]);
        assert_eq!(dead[0].offset, 2);
        assert!(dead[0].raw.contains("\"c\""));
        assert_eq!(e.stream_watermark(MON), Some(70_000));
    }

    #[test]
    fn late_beats_duplicate_and_duplicate_beats_admission() {
        let mut e = et();
        let dead = ingest(
            &mut e,
            MON,
            0,
            &[
                probe("a", 100_000, "web"),
                probe("a", 10_000, "web"),   // late and duplicate: late
                probe("a", 90_000, "web"),   // duplicate
                probe("g", 95_000, "ghost"), // unknown service
                probe("g", 96_000, "web"), // duplicate of a rejected record: it entered the dedup set
            ],
        );
        assert_eq!(
            reasons(&dead),
            vec![
                Reason::Late,
                Reason::Duplicate,
                Reason::UnknownService,
                Reason::Duplicate
            ]
        );
    }

    #[test]
    fn dedup_forgets_beyond_horizon() {
        let mut e = et();
        let dead = ingest(
            &mut e,
            MON,
            0,
            &[
                probe("a", 0, "web"),
                probe("a", 3_600_000, "web"),
                probe("a", 3_600_001, "web"),
            ],
        );
        assert_eq!(reasons(&dead), vec![Reason::Duplicate]);
        assert_eq!(dead[0].offset, 2);
    }

    #[test]
    fn a_malformed_record_never_moves_the_watermark() {
        let mut e = et();
        let bad = r#"{"event_id":"x","ts":100000,"service":"web","kind":"probe","source":"a","status":"sideways"}"#;
        let dead = ingest(&mut e, MON, 0, &[bad.to_owned(), probe("b", 60_000, "web")]);
        assert_eq!(reasons(&dead), vec![Reason::Malformed]);
        assert_eq!(e.stream_watermark(MON), Some(30_000));
        assert_eq!(e.ts_range(), Some((60_000, 60_000)));
    }

    #[test]
    fn a_future_record_is_dead_lettered_and_moves_nothing() {
        let mut e = et();
        let year_2099 = 4_070_908_800_000;
        let dead = ingest(
            &mut e,
            MON,
            0,
            &[
                probe("a", 60_000, "web"),
                probe("z", year_2099, "web"),
                probe("d", 120_000, "web"), // would be late had 2099 moved the watermark
                probe("b", 86_400_000, "web"), // exactly now + max_future: accepted
                probe("c", 86_400_001, "web"),
            ],
        );
        assert_eq!(reasons(&dead), vec![Reason::Future, Reason::Future]);
        assert_eq!((dead[0].offset, dead[1].offset), (1, 4));
        assert!(
            dead[0].error.contains("2099-01-01T00:00:00.000Z"),
            "{}",
            dead[0].error
        );
        assert_eq!(e.ts_range(), Some((60_000, 86_400_000)));
        // The future record was read: the stream's next offset is past it.
        let next = e.export_stream(MON).map(|s| s.next_offset);
        assert_eq!(next, Some(5));
        let released = e.finish(0);
        assert_eq!(ids(&released), ["a", "d", "b"]);
        // A future `event_id` did not enter the dedup set.
        let dead = ingest(&mut e, MON, 5, &[probe("z", 86_399_000, "web")]);
        assert!(dead.is_empty(), "{dead:?}");
    }

    #[test]
    fn release_waits_for_the_slowest_stream_and_keeps_order() {
        let mut e = et();
        ingest(
            &mut e,
            MON,
            0,
            &[
                probe("a2", 20_000, "web"),
                probe("a1", 10_000, "web"),
                probe("a3", 20_000, "web"),
            ],
        );
        assert!(
            ids(&e.advance(None)).is_empty(),
            "one stream: watermark −10s releases nothing"
        );
        ingest(&mut e, MON, 3, &[probe("a4", 60_000, "web")]);
        assert_eq!(
            ids(&e.advance(None)),
            vec!["a1", "a2", "a3"],
            "wm 30s: ts order, ties in arrival order"
        );
        e.add_stream(MON2, 0);
        ingest(&mut e, MON, 4, &[probe("a5", 200_000, "web")]);
        assert!(
            ids(&e.advance(None)).is_empty(),
            "a second stream with no ts holds the watermark"
        );
        assert_eq!(
            e.watermark(),
            Millis::MIN,
            "a new stream makes the watermark start over"
        );
        ingest(&mut e, MON2, 0, &[probe("b1", 65_000, "db")]);
        assert!(ids(&e.advance(None)).is_empty(), "wm = min(170s, 35s)");
        assert_eq!(e.watermark(), 35_000);
        e.finish_stream(MON2);
        assert_eq!(ids(&e.advance(None)), vec!["a4", "b1"]);
        assert_eq!(e.watermark(), 170_000);
        let r = e.finish(500_000);
        assert_eq!(ids(&r), vec!["a5"]);
        assert_eq!(e.watermark(), 500_000);
        assert_eq!(e.buffered(), 0);
    }

    #[test]
    fn a_stream_removed_and_restored_forgets_the_ids_it_saw_later() {
        let mut e = et();
        e.add_stream(MON, 0);
        ingest(&mut e, MON, 0, &[probe("a", 100_000, "web")]);
        let cp = e.export_stream(MON).unwrap();
        ingest(&mut e, MON, 1, &[probe("b", 110_000, "web")]);
        // Revoked, then assigned again and restored from the checkpoint before "b".
        e.remove_stream(MON);
        e.import_stream(cp, &Decoder::new(Topic::Monitoring, "m"), 0);
        let dead = ingest(
            &mut e,
            MON,
            1,
            &[probe("b", 110_000, "web"), probe("a", 120_000, "web")],
        );
        assert_eq!(
            reasons(&dead),
            vec![Reason::Duplicate],
            "only \"a\" was seen as of the checkpoint"
        );
    }

    #[test]
    fn checkpoints_keep_id_hashes_and_older_ones_with_ids_still_dedup() {
        let mut e = et();
        e.add_stream(MON, 0);
        ingest(&mut e, MON, 0, &[probe("a", 100_000, "web")]);
        let cp = e.export_stream(MON).unwrap();
        assert_eq!(cp.dedup, [(DedupKey::Hash(id_hash("a")), 100_000)]);
        // A checkpoint written before ids were hashed holds the ids themselves.
        #[derive(Serialize)]
        struct Legacy {
            stream: StreamId,
            max_ts: Option<Millis>,
            next_offset: i64,
            dedup: Vec<(String, Millis)>,
            pending: Vec<(i64, u64, String)>,
        }
        let legacy = Legacy {
            stream: MON,
            max_ts: Some(100_000),
            next_offset: 1,
            dedup: vec![("a".into(), 100_000)],
            pending: Vec::new(),
        };
        let mut bytes = Vec::new();
        ciborium::into_writer(&legacy, &mut bytes).unwrap();
        let restored: StreamState = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(restored.dedup, [(DedupKey::Id("a".into()), 100_000)]);
        let mut e = et();
        e.import_stream(restored, &Decoder::new(Topic::Monitoring, "m"), 0);
        let dead = ingest(
            &mut e,
            MON,
            1,
            &[probe("a", 110_000, "web"), probe("ab", 110_000, "web")],
        );
        assert_eq!(reasons(&dead), vec![Reason::Duplicate]);
        assert_eq!(dead[0].offset, 1);
        assert!(dead[0].error.contains("\"a\""), "{}", dead[0].error);
    }

    #[test]
    fn a_partition_taken_over_is_not_judged_by_a_watermark_that_ran_ahead() {
        let mut e = et();
        e.add_stream(MON, 0);
        ingest(&mut e, MON, 0, &[probe("a", 1_000_000, "web")]);
        e.set_caught_up(MON, true);
        e.advance(Some(2_000_000));
        assert_eq!(e.watermark(), 1_970_000, "alone and idle: wall clock");
        // MON2 arrives (assigned, or restored) with history far behind.
        e.add_stream(MON2, 2_000_000);
        ingest(&mut e, MON2, 0, &[probe("b", 100_000, "db")]);
        assert!(ids(&e.advance(Some(2_000_100))).is_empty());
        assert_eq!(e.watermark(), 70_000, "held back by the newcomer's history");
        ingest(&mut e, MON2, 1, &[probe("c", 200_000, "db")]);
        assert_eq!(
            ids(&e.advance(Some(2_000_200))),
            vec!["b"],
            "released in event time"
        );
    }

    #[test]
    fn idle_partitions_stop_holding_and_wall_clock_advances() {
        let mut e = et();
        e.add_stream(MON, 0);
        e.add_stream(MON2, 0);
        ingest(&mut e, MON, 0, &[probe("a", 1_000_000, "web")]);
        assert_eq!(
            e.advance(Some(1_000)).monitoring.len(),
            0,
            "empty MON2 holds the watermark"
        );
        e.set_caught_up(MON2, true);
        assert_eq!(
            e.advance(Some(5_000)).monitoring.len(),
            0,
            "not idle for idle_timeout yet"
        );
        assert!(ids(&e.advance(Some(10_000))).is_empty());
        assert_eq!(e.watermark(), 970_000, "MON2 idle: MON alone holds");
        e.set_caught_up(MON, true);
        let r = e.advance(Some(1_040_000));
        assert_eq!(ids(&r), vec!["a"], "all idle: watermark = wall − lateness");
        assert_eq!(e.watermark(), 1_010_000);
        e.set_caught_up(MON, false);
        e.advance(Some(2_000_000));
        assert_eq!(
            e.watermark(),
            1_010_000,
            "a backlog being read never advances with the wall clock"
        );
    }

    #[test]
    fn a_record_at_exactly_the_watermark_waits() {
        let mut e = et();
        ingest(
            &mut e,
            MON,
            0,
            &[probe("a", 10_000, "web"), probe("b", 40_000, "web")],
        );
        assert!(
            ids(&e.advance(None)).is_empty(),
            "wm = 10s = ts of a: others at 10s may still come"
        );
        ingest(
            &mut e,
            MON,
            2,
            &[probe("c", 10_000, "web"), probe("d", 40_001, "web")],
        );
        assert_eq!(
            ids(&e.advance(None)),
            vec!["a", "c"],
            "released together once wm passed 10s"
        );
    }

    #[test]
    fn revoked_partition_rows_are_handed_off() {
        let mut e = et();
        ingest(&mut e, MON, 0, &[probe("a", 100_000, "web")]);
        e.remove_stream(MON);
        let r = e.finish(0);
        assert_eq!(r.handed_off, 1);
        assert!(r.monitoring.is_empty());
    }
}
