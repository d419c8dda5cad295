//! JSON → Arrow decoding. A chunk of raw records from one stream becomes one
//! `RecordBatch` of valid rows plus the malformed records, each with its position
//! in the chunk (dead letters keep arrival order). A malformed record never moves
//! a watermark (contract section 2), so its `ts` is not salvaged.

use std::borrow::Cow;
use std::fmt;
use std::mem::ManuallyDrop;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, ArrowPrimitiveType, BooleanBufferBuilder, PrimitiveArray,
    StringBuilder, StringViewBuilder,
};
use datafusion::arrow::buffer::{Buffer, NullBuffer};
use datafusion::arrow::datatypes::{Float64Type, Int32Type, Int64Type, UInt8Type};
use datafusion::arrow::record_batch::RecordBatch;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

use super::Topic;
use super::deadletter::{DeadLetter, Reason};
use super::flat::{self, Value};
use super::schema::schema;
use crate::model::{
    ChangeOutcome, MonitoringKind, Priority, ProbeStatus, TicketEventType, TicketKind,
};
use crate::time::{Millis, checked_ms, parse_rfc3339};

/// One undecoded input record.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// Kafka partition or replay file index.
    pub partition: i32,
    /// Kafka offset or replay line number.
    pub offset: i64,
    /// The message value / NDJSON line.
    pub payload: &'a [u8],
}

impl<'a> RawRecord<'a> {
    /// Records for consecutive `lines` of one stream, numbered from `first_offset`.
    pub fn numbered<L: AsRef<[u8]>>(
        lines: &'a [L],
        partition: i32,
        first_offset: i64,
    ) -> Vec<RawRecord<'a>> {
        lines
            .iter()
            .enumerate()
            .map(|(i, l)| RawRecord {
                partition,
                offset: first_offset + i as i64,
                payload: l.as_ref(),
            })
            .collect()
    }
}

/// A record that failed decoding.
#[derive(Debug, Clone)]
pub struct Malformed {
    /// Index of the record within its chunk.
    pub position: usize,
    /// The dead letter to emit.
    pub dead: DeadLetter,
}

/// The result of decoding one chunk from one stream.
#[derive(Debug, Clone)]
pub struct DecodedChunk {
    /// Topic of every record in the chunk.
    pub topic: Topic,
    /// Partition (or file index) of every record in the chunk.
    pub partition: i32,
    /// Valid rows in arrival order.
    pub batch: RecordBatch,
    /// Malformed records in arrival order.
    pub malformed: Vec<Malformed>,
}

impl DecodedChunk {
    /// Number of input records (valid + malformed).
    pub fn len(&self) -> usize {
        self.batch.num_rows() + self.malformed.len()
    }
    /// True when the chunk holds no record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// An event time as it appears on input: RFC 3339 string or integer epoch ms.
#[derive(Debug, Clone, Copy, Default)]
struct Ts(Millis);

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Ts;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an RFC 3339 string or integer epoch milliseconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Ts, E> {
                checked_ms(v).map(Ts).map_err(E::custom)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Ts, E> {
                let v = i64::try_from(v).unwrap_or(i64::MAX);
                checked_ms(v).map(Ts).map_err(E::custom)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Ts, E> {
                parse_rfc3339(v).map(Ts).map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// `Default` is the fast path's blank record, filled member by member.
#[derive(Deserialize, Default)]
struct MonitoringJson<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    ts: Ts,
    #[serde(borrow)]
    service: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow, default)]
    source: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
    #[serde(default)]
    latency_ms: Option<f64>,
    #[serde(borrow, default)]
    resource: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    metric: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    value: Option<f64>,
    #[serde(default)]
    capacity: Option<f64>,
    #[serde(default)]
    start: Option<Ts>,
    #[serde(default)]
    end: Option<Ts>,
    #[serde(borrow, default)]
    change_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    outcome: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    exclusion_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    reason: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    approved_by: Option<Cow<'a, str>>,
}

/// Keys a record on the fast path ([`flat::scan`]) has met, one bit each, so a
/// repeated key (an error to serde) is refused and a missing required one
/// sends the record to serde.
#[derive(Default)]
struct Seen(u32);

impl Seen {
    /// Stores the member `bit` in `slot` unless the key was met before or
    /// `value` is not what serde would read there.
    fn set<T>(&mut self, bit: u32, slot: &mut T, value: Option<T>) -> Option<()> {
        let mask = 1 << bit;
        if self.0 & mask != 0 {
            return None;
        }
        self.0 |= mask;
        *slot = value?;
        Some(())
    }

    /// Whether every key of bits `0..n` was met.
    fn all_of_first(&self, n: u32) -> bool {
        let mask = (1 << n) - 1;
        self.0 & mask == mask
    }
}

/// A string member as serde reads it into `Cow<str>`.
fn text(v: Value<'_>) -> Option<Cow<'_, str>> {
    match v {
        Value::Str(s) => Some(Cow::Borrowed(s)),
        _ => None,
    }
}

/// An optional string member: `null` is `None`.
fn opt_text(v: Value<'_>) -> Option<Option<Cow<'_, str>>> {
    match v {
        Value::Null => Some(None),
        v => text(v).map(Some),
    }
}

/// An optional number member as serde reads it into `f64`.
fn opt_number(v: Value<'_>) -> Option<Option<f64>> {
    match v {
        Value::Null => Some(None),
        Value::Int(i) => Some(Some(i as f64)),
        Value::Float(f) => Some(Some(f)),
        Value::Str(_) => None,
    }
}

/// A time member as [`Ts`] reads it; `None` where serde would fail (the serde
/// path then words the error).
fn time(v: Value<'_>) -> Option<Ts> {
    match v {
        Value::Int(i) => checked_ms(i).ok().map(Ts),
        Value::Str(s) => parse_rfc3339(s).ok().map(Ts),
        Value::Float(_) | Value::Null => None,
    }
}

fn opt_time(v: Value<'_>) -> Option<Option<Ts>> {
    match v {
        Value::Null => Some(None),
        v => time(v).map(Some),
    }
}

/// A record type with a fast path.
trait Fast<'a>: Sized {
    /// Reads `text` and hands the record to `row`; `None`, without calling
    /// `row`, sends the record to serde. The record stays in this frame: it
    /// is hundreds of bytes, and returning it would copy it.
    fn fast<R>(text: &'a str, row: impl FnOnce(&Self) -> R) -> Option<R>;
}

/// The monitoring members the fast path reads; a member's index is its bit in
/// [`Seen`], and the first four are the required ones.
const MONITORING_NAMES: flat::Names = flat::Names::new(&[
    "event_id",
    "ts",
    "service",
    "kind",
    "start",
    "end",
    "latency_ms",
    "value",
    "capacity",
    "source",
    "status",
    "resource",
    "metric",
    "name",
    "change_id",
    "outcome",
    "exclusion_id",
    "reason",
    "approved_by",
]);

impl<'a> Fast<'a> for MonitoringJson<'a> {
    fn fast<R>(text_: &'a str, row: impl FnOnce(&Self) -> R) -> Option<R> {
        // Every string here borrows from `text_` (`text` gives
        // `Cow::Borrowed`), so there is nothing to drop, and the drop glue,
        // a call per record checking 19 members, is skipped.
        let mut m = ManuallyDrop::new(MonitoringJson::default());
        let mut seen = Seen::default();
        flat::scan(text_, &MONITORING_NAMES, |name, v| match name {
            Some(0) => seen.set(0, &mut m.event_id, text(v)),
            Some(1) => seen.set(1, &mut m.ts, time(v)),
            Some(2) => seen.set(2, &mut m.service, text(v)),
            Some(3) => seen.set(3, &mut m.kind, text(v)),
            Some(4) => seen.set(4, &mut m.start, opt_time(v)),
            Some(5) => seen.set(5, &mut m.end, opt_time(v)),
            Some(6) => seen.set(6, &mut m.latency_ms, opt_number(v)),
            Some(7) => seen.set(7, &mut m.value, opt_number(v)),
            Some(8) => seen.set(8, &mut m.capacity, opt_number(v)),
            Some(9) => seen.set(9, &mut m.source, opt_text(v)),
            Some(10) => seen.set(10, &mut m.status, opt_text(v)),
            Some(11) => seen.set(11, &mut m.resource, opt_text(v)),
            Some(12) => seen.set(12, &mut m.metric, opt_text(v)),
            Some(13) => seen.set(13, &mut m.name, opt_text(v)),
            Some(14) => seen.set(14, &mut m.change_id, opt_text(v)),
            Some(15) => seen.set(15, &mut m.outcome, opt_text(v)),
            Some(16) => seen.set(16, &mut m.exclusion_id, opt_text(v)),
            Some(17) => seen.set(17, &mut m.reason, opt_text(v)),
            Some(18) => seen.set(18, &mut m.approved_by, opt_text(v)),
            // serde ignores other members.
            _ => Some(()),
        })?;
        seen.all_of_first(4).then(|| row(&m))
    }
}

/// The ticket members the fast path reads, as [`MONITORING_NAMES`].
const TICKET_NAMES: flat::Names = flat::Names::new(&[
    "event_id", "ts", "ticket", "type", "customer", "service", "priority", "kind", "status",
]);

impl<'a> Fast<'a> for TicketJson<'a> {
    fn fast<R>(text_: &'a str, row: impl FnOnce(&Self) -> R) -> Option<R> {
        // Borrowed throughout, as in `MonitoringJson::fast`.
        let mut t = ManuallyDrop::new(TicketJson::default());
        let mut seen = Seen::default();
        flat::scan(text_, &TICKET_NAMES, |name, v| match name {
            Some(0) => seen.set(0, &mut t.event_id, text(v)),
            Some(1) => seen.set(1, &mut t.ts, time(v)),
            Some(2) => seen.set(2, &mut t.ticket, text(v)),
            Some(3) => seen.set(3, &mut t.kind_of_event, text(v)),
            Some(4) => seen.set(4, &mut t.customer, opt_text(v)),
            Some(5) => seen.set(5, &mut t.service, opt_text(v)),
            Some(6) => seen.set(6, &mut t.priority, opt_text(v)),
            Some(7) => seen.set(7, &mut t.kind, opt_text(v)),
            Some(8) => seen.set(8, &mut t.status, opt_text(v)),
            _ => Some(()),
        })?;
        seen.all_of_first(4).then(|| row(&t))
    }
}

#[derive(Deserialize, Default)]
struct TicketJson<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    ts: Ts,
    #[serde(borrow)]
    ticket: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind_of_event: Cow<'a, str>,
    #[serde(borrow, default)]
    customer: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    service: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    priority: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    status: Option<Cow<'a, str>>,
}

fn required<'s>(v: &'s Option<Cow<'_, str>>, name: &str, what: &str) -> Result<&'s str, String> {
    match v.as_deref() {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(format!("{what} event needs a non-empty `{name}`")),
    }
}

fn non_empty(v: &str, name: &str) -> Result<(), String> {
    if v.is_empty() {
        Err(format!("`{name}` must not be empty"))
    } else {
        Ok(())
    }
}

/// Column builders shared by both topics.
struct Common {
    partition: Dense<Int32Type>,
    offset: Dense<Int64Type>,
    event_id: StringBuilder,
    ts: Dense<Int64Type>,
    raw: RawColumn,
    key: StringBuilder,
}

impl Common {
    fn new(n: usize, text: Option<&Buffer>) -> Self {
        Common {
            partition: Dense::with_capacity(n),
            offset: Dense::with_capacity(n),
            event_id: StringBuilder::with_capacity(n, n * 16),
            ts: Dense::with_capacity(n),
            raw: RawColumn::new(n, text),
            key: StringBuilder::with_capacity(n, n * 8),
        }
    }
    /// The rows pushed so far.
    fn rows(&self) -> usize {
        self.ts.0.len()
    }
    fn push(&mut self, r: &RawRecord, event_id: &str, ts: Millis, raw: &str, key: &str) {
        self.partition.push(r.partition);
        self.offset.push(r.offset);
        self.event_id.append_value(event_id);
        self.ts.push(ts);
        self.raw.push(raw);
        self.key.append_value(key);
    }
    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            self.partition.finish(),
            self.offset.finish(),
            Arc::new(self.event_id.finish()),
            self.ts.finish(),
            Arc::new(self.raw.0.finish()),
            Arc::new(self.key.finish()),
        ]
    }
}

/// The `raw` column: each row's record text. When the chunk's records lie in
/// one buffer (a file block, a Kafka poll), a row is a view into it, and the
/// text is not copied (a second pass over the whole input); any other record
/// is copied into the column's own blocks.
struct RawColumn(StringViewBuilder, Option<Buffer>);

impl RawColumn {
    /// The block views point into, when there is one.
    const TEXT: u32 = 0;

    fn new(n: usize, text: Option<&Buffer>) -> Self {
        let mut views = StringViewBuilder::with_capacity(n);
        // A view's offset is a `u32`; a larger chunk (not one a source makes)
        // is copied instead.
        let text = text.filter(|t| t.len() < u32::MAX as usize).cloned();
        if let Some(t) = &text {
            let block = views.append_block(t.clone());
            debug_assert_eq!(block, Self::TEXT);
        }
        RawColumn(views, text)
    }

    fn push(&mut self, raw: &str) {
        match self.1.as_ref().and_then(|t| offset_in(t, raw.as_bytes())) {
            // SAFETY: block `TEXT` is `self.1`, appended in `new`;
            // `offset_in` found `raw` at `offset` in it, so the range lies in
            // the block and its bytes are `raw`'s, valid UTF-8. That is what
            // the array needs (`StringViewArray::try_new` checks each view's
            // bytes, not whole blocks; the text may hold a record that is not
            // UTF-8, one the decoder refused).
            Some(offset) => unsafe {
                (self.0).append_view_unchecked(Self::TEXT, offset, raw.len() as u32)
            },
            None => self.0.append_value(raw),
        }
    }
}

/// Where `part` starts in `whole`, when it lies entirely in it.
fn offset_in(whole: &[u8], part: &[u8]) -> Option<u32> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (start.checked_add(part.len())? <= whole.len()).then_some(start as u32)
}

/// A primitive column every row has a value in: a push onto a `Vec`, which
/// inlines (a builder's `append_value` is a call, and also counts validity).
struct Dense<T: ArrowPrimitiveType>(Vec<T::Native>);

impl<T: ArrowPrimitiveType> Dense<T> {
    fn with_capacity(n: usize) -> Self {
        Dense(Vec::with_capacity(n))
    }
    fn push(&mut self, v: T::Native) {
        self.0.push(v);
    }
    fn finish(self) -> ArrayRef {
        Arc::new(PrimitiveArray::<T>::new(self.0.into(), None))
    }
}

/// A column most records leave null (a probe has no `resource`, a metric no
/// `source`), set by row in rising order: a record without a value, or of a
/// kind the column is not read for, costs nothing. Every such column carries
/// a validity buffer, even when no row is null, as the builders it replaced did.
trait Sparse {
    /// What one value of the column is.
    type Item<'a>;
    /// Sets `row`, which is after every row set before, to `v`.
    fn set(&mut self, row: usize, v: Self::Item<'_>);
    /// The column of `rows` rows.
    fn finish(self, rows: usize) -> ArrayRef;

    fn set_option(&mut self, row: usize, v: Option<Self::Item<'_>>) {
        if let Some(v) = v {
            self.set(row, v);
        }
    }
}

/// A sparse text column: the nulls before a value are appended as one run
/// when the value comes.
struct SparseText(StringBuilder);

impl Sparse for SparseText {
    type Item<'a> = &'a str;
    fn set(&mut self, row: usize, v: &str) {
        let len = self.0.len();
        if row > len {
            self.0.append_nulls(row - len);
        }
        self.0.append_value(v);
    }
    fn finish(mut self, rows: usize) -> ArrayRef {
        let len = self.0.len();
        self.0.append_nulls(rows.saturating_sub(len));
        Arc::new(self.0.finish())
    }
}

/// A sparse primitive column: a null slot per record up front, so a value is
/// two stores (a builder's run of nulls before each value was a call and a
/// `memset`, and runs here are short).
struct SparseSlots<T: ArrowPrimitiveType> {
    values: Vec<T::Native>,
    valid: BooleanBufferBuilder,
}

impl<T: ArrowPrimitiveType> SparseSlots<T> {
    /// A column for at most `n` rows.
    fn new(n: usize) -> Self {
        let mut valid = BooleanBufferBuilder::new(n);
        valid.append_n(n, false);
        SparseSlots {
            values: vec![T::Native::default(); n],
            valid,
        }
    }
}

impl<T: ArrowPrimitiveType> Sparse for SparseSlots<T> {
    type Item<'a> = T::Native;
    fn set(&mut self, row: usize, v: T::Native) {
        // Rows are numbered among a chunk's records, so `row` < `n`.
        self.values[row] = v;
        self.valid.set_bit(row, true);
    }
    fn finish(mut self, rows: usize) -> ArrayRef {
        self.values.truncate(rows);
        self.valid.truncate(rows);
        let nulls = NullBuffer::new(self.valid.finish());
        Arc::new(PrimitiveArray::<T>::new(self.values.into(), Some(nulls)))
    }
}

/// The longest record read, in bytes. Contract records are a few hundred
/// bytes. The limit keeps a hostile input from pushing a chunk's text columns
/// past Arrow's 2 GiB of offsets (a panic), and keeps every dead letter (its
/// `raw` holds at most this many bytes) under Kafka's default 1 MB message
/// size even when each byte needs a six-byte escape.
pub const MAX_RECORD_BYTES: usize = 64 * 1024;

/// The most of one record a source needs to keep: one byte past
/// [`MAX_RECORD_BYTES`] is enough for the decoder to refuse it, so a source
/// can drop the rest and an endless record cannot exhaust memory.
pub const KEPT_RECORD_BYTES: usize = MAX_RECORD_BYTES + 1;

/// The error of a record over [`MAX_RECORD_BYTES`]; cold, so the formatting
/// stays out of the per-record loop it is called from.
#[cold]
fn too_long() -> String {
    format!("record longer than {MAX_RECORD_BYTES} bytes; `raw` holds its first {MAX_RECORD_BYTES}")
}

/// The contract's default `engine.max_window` (31 days).
pub const DEFAULT_MAX_WINDOW: Millis = 31 * 86_400_000;

/// Decodes raw records of one topic into Arrow batches.
#[derive(Debug, Clone)]
pub struct Decoder {
    topic: Topic,
    topic_name: Arc<str>,
    /// Longest maintenance or exclusion window (`engine.max_window`).
    max_window: Millis,
    /// Whether plain records take the fast path ([`flat::scan`]).
    fast: bool,
}

impl Decoder {
    /// A decoder for `topic`, naming it `topic_name` in dead letters.
    pub fn new(topic: Topic, topic_name: &str) -> Self {
        Decoder {
            topic,
            topic_name: Arc::from(topic_name),
            max_window: DEFAULT_MAX_WINDOW,
            fast: true,
        }
    }

    /// This decoder reading every record with serde, as before the fast path
    /// (the reference of the equivalence test, and a bench row).
    pub fn serde_only(mut self) -> Self {
        self.fast = false;
        self
    }

    /// This decoder with `engine.max_window` = `ms`.
    pub fn with_max_window(mut self, ms: Millis) -> Self {
        self.max_window = ms;
        self
    }

    /// The topic this decoder reads.
    pub fn topic(&self) -> Topic {
        self.topic
    }

    /// The topic name used in dead letters.
    pub fn topic_name(&self) -> &str {
        &self.topic_name
    }

    /// Decodes a chunk of records that all come from `partition`.
    pub fn decode(&self, partition: i32, records: &[RawRecord]) -> DecodedChunk {
        self.decode_in(partition, records, None)
    }

    /// [`Decoder::decode`] for records whose payloads lie in `text` (a
    /// [`crate::source::LineBlock`]'s): the batch's `raw` column points into
    /// `text` instead of copying it. A record outside `text` is copied, as
    /// `decode` does.
    pub fn decode_in(
        &self,
        partition: i32,
        records: &[RawRecord],
        text: Option<&Buffer>,
    ) -> DecodedChunk {
        match self.topic {
            Topic::Monitoring => self.decode_monitoring(partition, records, text),
            Topic::Tickets => self.decode_tickets(partition, records, text),
        }
    }

    fn malformed(&self, position: usize, r: &RawRecord, error: String) -> Malformed {
        Malformed {
            position,
            dead: DeadLetter {
                reason: Reason::Malformed,
                error,
                topic: self.topic_name.to_string(),
                partition: r.partition,
                offset: r.offset,
                raw: String::from_utf8_lossy(&r.payload[..r.payload.len().min(MAX_RECORD_BYTES)])
                    .into_owned(),
            },
        }
    }

    /// Reads each record (UTF-8, then JSON) and hands it to `row`, which
    /// checks it and appends it to the columns. A record that fails any step
    /// becomes a malformed one at its position. `row` borrows the record, so
    /// the parsed struct (hundreds of bytes) is not moved once per record.
    fn each<'r, T: Deserialize<'r> + Fast<'r>>(
        &self,
        records: &[RawRecord<'r>],
        malformed: &mut Vec<Malformed>,
        mut row: impl FnMut(&RawRecord<'r>, &'r str, &T) -> Result<(), String>,
    ) {
        for (pos, r) in records.iter().enumerate() {
            if let Err(e) = self.read(r, &mut row) {
                malformed.push(self.malformed(pos, r, e));
            }
        }
    }

    /// One record through UTF-8, then the fast path or serde, then `row`.
    fn read<'r, T: Deserialize<'r> + Fast<'r>>(
        &self,
        r: &RawRecord<'r>,
        row: &mut impl FnMut(&RawRecord<'r>, &'r str, &T) -> Result<(), String>,
    ) -> Result<(), String> {
        if r.payload.len() > MAX_RECORD_BYTES {
            return Err(too_long());
        }
        // SIMD validation (`simdutf8`, already in the tree through arrow);
        // where it refuses, std decides and words the error.
        let raw = (simdutf8::basic::from_utf8(r.payload))
            .or_else(|_| std::str::from_utf8(r.payload))
            .map_err(|e| format!("not UTF-8: {e}"))?;
        if self.fast
            && let Some(result) = T::fast(raw, |ev| row(r, raw, ev))
        {
            return result;
        }
        let ev = serde_json::from_str(raw).map_err(|e| e.to_string())?;
        row(r, raw, &ev)
    }

    fn decode_monitoring(
        &self,
        partition: i32,
        records: &[RawRecord],
        text: Option<&Buffer>,
    ) -> DecodedChunk {
        let n = records.len();
        let mut c = Common::new(n, text);
        let mut kind = Dense::<UInt8Type>::with_capacity(n);
        let mut sparse = MonitoringSparse::new(n);
        let mut malformed = Vec::new();

        self.each(records, &mut malformed, |r, raw, ev: &MonitoringJson| {
            let checked = check_monitoring(ev, self.max_window)?;
            sparse.set(c.rows(), ev, &checked);
            c.push(r, &ev.event_id, ev.ts.0, raw, &ev.service);
            kind.push(checked.kind.code());
            Ok(())
        });
        let rows = c.rows();
        let mut cols = c.finish();
        cols.push(kind.finish());
        cols.extend(sparse.finish(rows));
        self.chunk(partition, cols, malformed)
    }

    fn decode_tickets(
        &self,
        partition: i32,
        records: &[RawRecord],
        text: Option<&Buffer>,
    ) -> DecodedChunk {
        let n = records.len();
        let mut c = Common::new(n, text);
        let mut ty = Dense::<UInt8Type>::with_capacity(n);
        let mut customer = SparseText(StringBuilder::new());
        let mut service = SparseText(StringBuilder::new());
        let mut priority = SparseSlots::<UInt8Type>::new(n);
        let mut kind = SparseSlots::<UInt8Type>::new(n);
        let mut status = SparseText(StringBuilder::new());
        let mut malformed = Vec::new();

        self.each(records, &mut malformed, |r, raw, ev: &TicketJson| {
            let checked = check_ticket(ev)?;
            let row = c.rows();
            c.push(r, &ev.event_id, ev.ts.0, raw, &ev.ticket);
            ty.push(checked.ty.code());
            match checked.ty {
                TicketEventType::Created => {
                    customer.set_option(row, ev.customer.as_deref());
                    service.set_option(row, ev.service.as_deref());
                }
                TicketEventType::Status => status.set_option(row, ev.status.as_deref()),
                TicketEventType::Responded | TicketEventType::Priority => {}
            }
            priority.set_option(row, checked.priority.map(Priority::code));
            kind.set_option(row, checked.kind.map(TicketKind::code));
            Ok(())
        });
        let rows = c.rows();
        let mut cols = c.finish();
        cols.extend([
            ty.finish(),
            customer.finish(rows),
            service.finish(rows),
            priority.finish(rows),
            kind.finish(rows),
            status.finish(rows),
        ]);
        self.chunk(partition, cols, malformed)
    }

    fn chunk(
        &self,
        partition: i32,
        cols: Vec<ArrayRef>,
        malformed: Vec<Malformed>,
    ) -> DecodedChunk {
        // The builders above produce exactly the schema's columns and types, so
        // this holds for any input; an empty batch instead would lose records.
        let batch = RecordBatch::try_new(schema(self.topic), cols)
            .expect("the decoder's builders match its schema");
        DecodedChunk {
            topic: self.topic,
            partition,
            batch,
            malformed,
        }
    }
}

/// The monitoring columns only some kinds fill, in the schema's order.
struct MonitoringSparse {
    source: SparseText,
    status: SparseSlots<UInt8Type>,
    latency: SparseSlots<Float64Type>,
    resource: SparseText,
    metric: SparseText,
    value: SparseSlots<Float64Type>,
    capacity: SparseSlots<Float64Type>,
    start: SparseSlots<Int64Type>,
    end: SparseSlots<Int64Type>,
    change: SparseText,
    exclusion: SparseText,
    reason: SparseText,
    approved: SparseText,
    outcome: SparseSlots<UInt8Type>,
}

impl MonitoringSparse {
    /// The columns for a chunk of `n` records.
    fn new(n: usize) -> Self {
        MonitoringSparse {
            source: SparseText(StringBuilder::with_capacity(n, n * 6)),
            status: SparseSlots::new(n),
            latency: SparseSlots::new(n),
            resource: SparseText(StringBuilder::with_capacity(n, n * 8)),
            metric: SparseText(StringBuilder::with_capacity(n, n * 16)),
            value: SparseSlots::new(n),
            capacity: SparseSlots::new(n),
            start: SparseSlots::new(n),
            end: SparseSlots::new(n),
            change: SparseText(StringBuilder::new()),
            exclusion: SparseText(StringBuilder::new()),
            reason: SparseText(StringBuilder::new()),
            approved: SparseText(StringBuilder::new()),
            outcome: SparseSlots::new(n),
        }
    }

    /// Sets `row` from the record `ev`: only the members of its kind are read.
    fn set(&mut self, row: usize, ev: &MonitoringJson<'_>, checked: &CheckedMonitoring) {
        match checked.kind {
            MonitoringKind::Probe => {
                self.source.set_option(row, ev.source.as_deref());
                self.status
                    .set_option(row, checked.status.map(ProbeStatus::code));
                self.latency.set_option(row, ev.latency_ms);
            }
            MonitoringKind::Metric => {
                self.resource.set_option(row, ev.resource.as_deref());
                self.metric.set_option(row, ev.metric.as_deref());
                self.value.set_option(row, ev.value);
                self.capacity.set_option(row, ev.capacity);
            }
            MonitoringKind::Counter => {
                self.source.set_option(row, ev.source.as_deref());
                // A counter's `name` shares the metric name's column.
                self.metric.set_option(row, ev.name.as_deref());
                self.value.set_option(row, ev.value);
            }
            MonitoringKind::Maintenance => {
                self.start.set_option(row, ev.start.map(|t| t.0));
                self.end.set_option(row, ev.end.map(|t| t.0));
                self.change.set_option(row, ev.change_id.as_deref());
            }
            MonitoringKind::Change => {
                self.change.set_option(row, ev.change_id.as_deref());
                self.outcome
                    .set_option(row, checked.outcome.map(ChangeOutcome::code));
            }
            MonitoringKind::Exclusion => {
                self.start.set_option(row, ev.start.map(|t| t.0));
                self.end.set_option(row, ev.end.map(|t| t.0));
                self.exclusion.set_option(row, ev.exclusion_id.as_deref());
                self.reason.set_option(row, ev.reason.as_deref());
                self.approved.set_option(row, ev.approved_by.as_deref());
            }
        }
    }

    fn finish(self, rows: usize) -> [ArrayRef; 14] {
        [
            self.source.finish(rows),
            self.status.finish(rows),
            self.latency.finish(rows),
            self.resource.finish(rows),
            self.metric.finish(rows),
            self.value.finish(rows),
            self.capacity.finish(rows),
            self.start.finish(rows),
            self.end.finish(rows),
            self.change.finish(rows),
            self.exclusion.finish(rows),
            self.reason.finish(rows),
            self.approved.finish(rows),
            self.outcome.finish(rows),
        ]
    }
}

/// A monitoring record's enums, parsed by [`check_monitoring`].
struct CheckedMonitoring {
    kind: MonitoringKind,
    /// A probe's status.
    status: Option<ProbeStatus>,
    /// A change's outcome.
    outcome: Option<ChangeOutcome>,
}

/// The fields a monitoring event of its kind needs (contract sections 1, 2 and 13).
fn check_monitoring(
    ev: &MonitoringJson<'_>,
    max_window: Millis,
) -> Result<CheckedMonitoring, String> {
    non_empty(&ev.event_id, "event_id")?;
    non_empty(&ev.service, "service")?;
    let kind = MonitoringKind::parse_listed(&ev.kind, "monitoring kind")?;
    let mut checked = CheckedMonitoring {
        kind,
        status: None,
        outcome: None,
    };
    match kind {
        MonitoringKind::Probe => {
            required(&ev.source, "source", "probe")?;
            match ev.status.as_deref() {
                Some(s) => checked.status = Some(ProbeStatus::parse_listed(s, "probe status")?),
                None => return Err("probe event needs `status`".into()),
            }
            if ev.latency_ms.is_some_and(|l| !l.is_finite() || l < 0.0) {
                return Err("`latency_ms` must be a non-negative number".into());
            }
        }
        MonitoringKind::Metric => {
            required(&ev.resource, "resource", "metric")?;
            required(&ev.metric, "metric", "metric")?;
            match ev.value {
                Some(v) if v.is_finite() => {}
                _ => return Err("metric event needs a finite numeric `value`".into()),
            }
            if ev.capacity.is_some_and(|c| !(c.is_finite() && c > 0.0)) {
                return Err("`capacity` must be a positive number".into());
            }
        }
        MonitoringKind::Maintenance => check_window(ev, "maintenance", max_window)?,
        MonitoringKind::Change => {
            required(&ev.change_id, "change_id", "change")?;
            match ev.outcome.as_deref() {
                Some(o) => {
                    checked.outcome = Some(ChangeOutcome::parse_listed(o, "change outcome")?)
                }
                None => return Err("change event needs `outcome`".into()),
            }
        }
        MonitoringKind::Counter => {
            required(&ev.source, "source", "counter")?;
            required(&ev.name, "name", "counter")?;
            match ev.value {
                Some(v) if v.is_finite() && v >= 0.0 => {}
                _ => {
                    return Err("counter event needs a finite, non-negative numeric `value`".into());
                }
            }
        }
        MonitoringKind::Exclusion => {
            required(&ev.exclusion_id, "exclusion_id", "exclusion")?;
            required(&ev.reason, "reason", "exclusion")?;
            required(&ev.approved_by, "approved_by", "exclusion")?;
            check_window(ev, "exclusion", max_window)?;
        }
    }
    Ok(checked)
}

/// A maintenance or exclusion window: `start` < `end`, at most `max_window` long.
fn check_window(ev: &MonitoringJson<'_>, what: &str, max_window: Millis) -> Result<(), String> {
    match (ev.start, ev.end) {
        (Some(s), Some(e)) if e.0 <= s.0 => Err(format!("{what} `end` must be after `start`")),
        (Some(s), Some(e)) if e.0 - s.0 > max_window => Err(format!(
            "{what} window of {} is longer than engine.max_window ({})",
            humantime::format_duration(std::time::Duration::from_millis(
                (e.0 - s.0).unsigned_abs()
            )),
            humantime::format_duration(std::time::Duration::from_millis(max_window.unsigned_abs())),
        )),
        (Some(_), Some(_)) => Ok(()),
        _ => Err(format!("{what} event needs `start` and `end`")),
    }
}

/// A ticket record's enums, parsed by [`check_ticket`].
struct CheckedTicket {
    ty: TicketEventType,
    /// The priority of a `created` or `priority` event.
    priority: Option<Priority>,
    /// The kind of a `created` event.
    kind: Option<TicketKind>,
}

/// The fields a ticket event of its type needs (contract section 1).
fn check_ticket(ev: &TicketJson<'_>) -> Result<CheckedTicket, String> {
    non_empty(&ev.event_id, "event_id")?;
    non_empty(&ev.ticket, "ticket")?;
    let priority = |what: &str| match ev.priority.as_deref() {
        Some(p) => Priority::parse(p).ok_or_else(|| format!("unknown priority {p:?} (P1..P4)")),
        None => Err(format!("{what} event needs `priority`")),
    };
    let ty = TicketEventType::parse_listed(&ev.kind_of_event, "ticket event type")?;
    let mut checked = CheckedTicket {
        ty,
        priority: None,
        kind: None,
    };
    match ty {
        TicketEventType::Created => {
            required(&ev.customer, "customer", "created")?;
            checked.priority = Some(priority("created")?);
            match ev.kind.as_deref() {
                Some(k) => checked.kind = Some(TicketKind::parse_listed(k, "ticket kind")?),
                None => return Err("created event needs `kind`".into()),
            }
        }
        TicketEventType::Responded => {}
        TicketEventType::Status => {
            required(&ev.status, "status", "status")?;
        }
        TicketEventType::Priority => checked.priority = Some(priority("priority")?),
    }
    Ok(checked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::rows::{
        MonitoringEvent, MonitoringRows, NewTicket, TicketChange, TicketEvent, TicketRows,
    };
    use crate::event::schema::{col, mon, tkt};
    use crate::source::{LineBlock, Lines};
    use datafusion::arrow::array::{Array, AsArray};
    use datafusion::arrow::datatypes::{Float64Type, Int64Type};
    use proptest::prelude::*;

    fn decode(topic: Topic, lines: &[&str]) -> DecodedChunk {
        let recs = RawRecord::numbered(lines, 3, 0);
        Decoder::new(topic, "t").decode(3, &recs)
    }

    fn s(b: &RecordBatch, c: usize, r: usize) -> Option<String> {
        let a = b.column(c).as_string::<i32>();
        a.is_valid(r).then(|| a.value(r).to_owned())
    }

    #[test]
    fn monitoring_kinds_and_both_time_formats() {
        let c = decode(
            Topic::Monitoring,
            &[
                r#"{"event_id":"m1","ts":"2026-11-02T10:00:00Z","service":"web","kind":"probe","source":"eu-1","status":"up","latency_ms":41.5}"#,
                r#"{"event_id":"m2","ts":1793613600000,"service":"web","kind":"metric","resource":"db-1","metric":"disk_used","value":812.5,"capacity":1000}"#,
                r#"{"event_id":"m3","ts":"2026-11-02T11:00:00+01:00","service":"web","kind":"maintenance","start":"2026-11-02T22:00:00Z","end":"2026-11-02T23:00:00Z","change_id":"CHG-12"}"#,
            ],
        );
        assert!(c.malformed.is_empty(), "{:?}", c.malformed);
        let b = &c.batch;
        assert_eq!(b.num_rows(), 3);
        let ts = b.column(col::TS).as_primitive::<Int64Type>();
        assert_eq!(
            (ts.value(0), ts.value(1), ts.value(2)),
            (1_793_613_600_000, 1_793_613_600_000, 1_793_613_600_000)
        );
        let rows = MonitoringRows::new(b).expect("decoded schema");
        let event = |r| rows.row(r).map(|row| row.event);
        assert_eq!(
            event(0),
            Ok(MonitoringEvent::Probe {
                source: "eu-1",
                status: ProbeStatus::Up
            })
        );
        assert_eq!(
            event(2),
            Ok(MonitoringEvent::Maintenance {
                window: (1_793_656_800_000, 1_793_660_400_000),
                change_id: Some("CHG-12")
            })
        );
        assert_eq!(
            b.column(mon::LATENCY_MS)
                .as_primitive::<Float64Type>()
                .value(0),
            41.5
        );
        assert_eq!(s(b, mon::RESOURCE, 1).as_deref(), Some("db-1"));
        assert_eq!(
            b.column(mon::CAPACITY)
                .as_primitive::<Float64Type>()
                .value(1),
            1000.0
        );
        assert_eq!(
            b.column(mon::START).as_primitive::<Int64Type>().value(2),
            1_793_656_800_000
        );
        assert_eq!(s(b, mon::CHANGE_ID, 2).as_deref(), Some("CHG-12"));
        assert_eq!(s(b, col::KEY, 2).as_deref(), Some("web"));
        assert_eq!(s(b, mon::SOURCE, 1), None);
        assert_eq!(
            b.column(col::PARTITION)
                .as_primitive::<datafusion::arrow::datatypes::Int32Type>()
                .value(0),
            3
        );
        assert_eq!(
            b.column(col::OFFSET).as_primitive::<Int64Type>().value(2),
            2
        );
    }

    #[test]
    fn ticket_types() {
        let c = decode(
            Topic::Tickets,
            &[
                r#"{"event_id":"t1","ts":"2026-11-02T10:00:00Z","ticket":"INC-1","type":"created","customer":"acme","service":"web","priority":"P2","kind":"incident"}"#,
                r#"{"event_id":"t2","ts":"2026-11-02T10:05:00Z","ticket":"INC-1","type":"responded"}"#,
                r#"{"event_id":"t3","ts":1793614000000,"ticket":"INC-1","type":"status","status":"pending_customer"}"#,
                r#"{"event_id":"t4","ts":"2026-11-02T10:09:00Z","ticket":"INC-1","type":"priority","priority":"P1"}"#,
            ],
        );
        assert!(c.malformed.is_empty(), "{:?}", c.malformed);
        let b = &c.batch;
        let rows = TicketRows::new(b).expect("decoded schema");
        let event = |r| rows.row(r).map(|row| row.event);
        assert_eq!(
            event(0),
            Ok(TicketChange::Created(NewTicket {
                customer: "acme",
                service: Some("web"),
                kind: TicketKind::Incident,
                priority: Priority::P2,
                partition: 3,
            }))
        );
        assert_eq!(event(1), Ok(TicketChange::Change(TicketEvent::Responded)));
        assert_eq!(
            event(2),
            Ok(TicketChange::Change(TicketEvent::Status(
                "pending_customer"
            )))
        );
        assert_eq!(
            event(3),
            Ok(TicketChange::Change(TicketEvent::Priority(Priority::P1)))
        );
        assert_eq!(rows.row(3).map(|row| row.ticket), Ok("INC-1"));
        assert_eq!(s(b, tkt::STATUS, 2).as_deref(), Some("pending_customer"));
    }

    #[test]
    fn malformed_records_keep_position_and_raw() {
        let lines = [
            "not json",
            r#"{"event_id":"a","ts":"2026-11-02T10:00:00Z","service":"web","kind":"probe","source":"x","status":"sideways"}"#,
            r#"{"event_id":"b","ts":"yesterday","service":"web","kind":"probe","source":"x","status":"up"}"#,
            r#"{"event_id":"c","ts":1.5,"service":"web","kind":"probe","source":"x","status":"up"}"#,
            r#"{"event_id":"d","ts":5,"service":"web","kind":"teleport"}"#,
            r#"{"event_id":"e","ts":5,"service":"web","kind":"probe","status":"up"}"#,
            r#"{"event_id":"f","ts":5,"service":"web","kind":"metric","resource":"r","metric":"m"}"#,
            r#"{"event_id":"g","ts":5,"service":"web","kind":"maintenance","start":10,"end":10}"#,
            r#"{"event_id":"h","ts":5,"kind":"probe","source":"x","status":"up"}"#,
            r#"{"event_id":"i","ts":5,"service":"web","kind":"probe","source":"x","status":"up"}"#,
            r#"{"event_id":"","ts":5,"service":"web","kind":"probe","source":"x","status":"up"}"#,
            r#"{"event_id":"j","ts":253402300800000,"service":"web","kind":"probe","source":"x","status":"up"}"#,
            r#"{"event_id":"k","ts":-9223372036854775808,"service":"web","kind":"probe","source":"x","status":"up"}"#,
            r#"{"event_id":"l","ts":18446744073709551615,"service":"web","kind":"probe","source":"x","status":"up"}"#,
            r#"{"event_id":"m","ts":5,"service":"web","kind":"maintenance","start":0,"end":9223372036854775807}"#,
        ];
        let c = decode(Topic::Monitoring, &lines);
        assert_eq!(c.batch.num_rows(), 1);
        assert_eq!(c.malformed.len(), 14);
        let pos: Vec<usize> = c.malformed.iter().map(|m| m.position).collect();
        assert_eq!(pos, vec![0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11, 12, 13, 14]);
        assert!(c.malformed[10].dead.error.contains("years 0000-9999"));
        assert!(
            c.malformed
                .iter()
                .all(|m| m.dead.reason == Reason::Malformed)
        );
        assert!(c.malformed[1].dead.error.contains("sideways"));
        assert_eq!(c.malformed[0].dead.raw, "not json");
        assert_eq!(c.malformed[5].dead.offset, 5);
        assert_eq!(c.malformed[5].dead.partition, 3);
        assert_eq!(c.len(), lines.len());
    }

    #[test]
    fn malformed_tickets() {
        let lines = [
            r#"{"event_id":"a","ts":5,"ticket":"T","type":"created","customer":"acme","priority":"P9","kind":"incident"}"#,
            r#"{"event_id":"b","ts":5,"ticket":"T","type":"created","customer":"acme","priority":"P1","kind":"chore"}"#,
            r#"{"event_id":"c","ts":5,"ticket":"T","type":"created","priority":"P1","kind":"incident"}"#,
            r#"{"event_id":"d","ts":5,"ticket":"T","type":"status"}"#,
            r#"{"event_id":"e","ts":5,"ticket":"T","type":"priority"}"#,
            r#"{"event_id":"f","ts":5,"ticket":"T","type":"escalated"}"#,
            r#"{"event_id":"g","ts":5,"type":"responded"}"#,
            r#"[1,2,3]"#,
        ];
        let c = decode(Topic::Tickets, &lines);
        assert_eq!(c.batch.num_rows(), 0);
        assert_eq!(c.malformed.len(), lines.len());
    }

    #[test]
    fn invalid_utf8_is_malformed_with_lossy_raw() {
        let recs = [RawRecord {
            partition: 0,
            offset: 9,
            payload: b"{\"a\":\xff}",
        }];
        let c = Decoder::new(Topic::Tickets, "tickets.events").decode(0, &recs);
        assert_eq!(c.malformed.len(), 1);
        assert_eq!(c.malformed[0].dead.topic, "tickets.events");
        assert!(c.malformed[0].dead.raw.contains('\u{FFFD}'));
        // std's wording, with the position.
        assert_eq!(
            c.malformed[0].dead.error,
            "not UTF-8: invalid utf-8 sequence of 1 bytes from index 5"
        );
    }

    #[test]
    fn records_over_the_limit_are_malformed_with_raw_cut_to_it() {
        // A valid probe padded with an ignored member to `len` bytes.
        let padded = |len: usize| {
            let head = r#"{"event_id":"a","ts":5,"service":"web","kind":"probe","source":"x","status":"up","pad":""#;
            format!("{head}{}\"}}", "x".repeat(len - head.len() - 2))
        };
        let (at, over) = (padded(MAX_RECORD_BYTES), padded(MAX_RECORD_BYTES + 1));
        assert_eq!(
            (at.len(), over.len()),
            (MAX_RECORD_BYTES, MAX_RECORD_BYTES + 1)
        );
        let c = decode(Topic::Monitoring, &[&at, &over]);
        assert_eq!(c.batch.num_rows(), 1);
        assert_eq!(c.malformed.len(), 1);
        let dead = &c.malformed[0].dead;
        assert_eq!(c.malformed[0].position, 1);
        assert_eq!(dead.reason, Reason::Malformed);
        assert_eq!(
            dead.error,
            "record longer than 65536 bytes; `raw` holds its first 65536"
        );
        assert_eq!(dead.raw, over[..MAX_RECORD_BYTES]);
    }

    /// A value of a member, valid for some fields and not for others, with the
    /// numbers, times, escapes and unicode where two JSON readers might differ.
    fn any_value() -> impl Strategy<Value = String> {
        let fixed = [
            "null",
            "true",
            "0",
            "-0",
            "-1",
            "7",
            "01",
            "12.5",
            "1e3",
            "1E-2",
            "-2.5e+2",
            "1.",
            "9223372036854775807",
            "18446744073709551616",
            "123456789012345678",
            "1234567890123456789",
            "1793613600000",
            "253402300800000",
            "-62167219200001",
            "1.7976931348623157e308",
            "1e400",
            "0.1",
            "3.000000000000000444",
            "NaN",
            r#""2026-11-02T10:00:00Z""#,
            r#""2026-11-02T11:00:00.25+01:00""#,
            r#""2026-11-02""#,
            r#""2026-11-02 10:00:00""#,
            r#""yesterday""#,
            r#""""#,
            r#""up""#,
            r#""down""#,
            r#""degraded""#,
            r#""probe""#,
            r#""metric""#,
            r#""maintenance""#,
            r#""exclusion""#,
            r#""counter""#,
            r#""change""#,
            r#""success""#,
            r#""created""#,
            r#""P1""#,
            r#""incident""#,
            r#""web""#,
            r#""acme""#,
            r#""a\"b""#,
            r#""\u00e9""#,
            r#""é☃""#,
            r#""\ud800""#,
            "\"tab\there\"",
            "{}",
            r#"{"a":1}"#,
            "[1]",
            "\"x\"y",
        ];
        prop_oneof![
            3 => prop::sample::select(fixed.to_vec()).prop_map(str::to_owned),
            1 => "[a-z0-9 ]{0,6}".prop_map(|s| format!("\"{s}\"")),
            1 => any::<i64>().prop_map(|i| i.to_string()),
            1 => any::<f64>().prop_map(|f| format!("{f:?}")),
        ]
    }

    /// Valid records of every kind, to be mutated.
    const TEMPLATES: [(Topic, &str); 10] = [
        (
            Topic::Monitoring,
            r#"{"event_id":"p1","ts":1793613600000,"service":"web","kind":"probe","source":"eu-1","status":"up","latency_ms":41.5}"#,
        ),
        (
            Topic::Monitoring,
            r#"{"event_id":"m1","ts":"2026-11-02T10:00:00Z","service":"db","kind":"metric","resource":"db-1","metric":"disk","value":812,"capacity":1000.0}"#,
        ),
        (
            Topic::Monitoring,
            r#"{"event_id":"w1","ts":1793613600000,"service":"web","kind":"maintenance","start":"2026-11-02T22:00:00Z","end":1793660400000,"change_id":null}"#,
        ),
        (
            Topic::Monitoring,
            r#"{"event_id":"x1","ts":1793613600000,"service":"web","kind":"exclusion","exclusion_id":"e","start":1793613600000,"end":1793617200000,"reason":"r","approved_by":"a"}"#,
        ),
        (
            Topic::Monitoring,
            r#"{"event_id":"c1","ts":1793613600000,"service":"web","kind":"counter","source":"lb","name":"requests","value":12}"#,
        ),
        (
            Topic::Monitoring,
            r#"{"event_id":"g1","ts":1793613600000,"service":"web","kind":"change","change_id":"42","outcome":"rolled_back"}"#,
        ),
        (
            Topic::Tickets,
            r#"{"event_id":"t1","ts":1793613600000,"ticket":"INC-1","type":"created","customer":"acme","service":"web","priority":"P2","kind":"incident"}"#,
        ),
        (
            Topic::Tickets,
            r#"{"event_id":"t2","ts":"2026-11-02T10:05:00+00:00","ticket":"INC-1","type":"responded"}"#,
        ),
        (
            Topic::Tickets,
            r#"{"event_id":"t3","ts":1793614000000,"ticket":"INC-1","type":"status","status":"pending_customer"}"#,
        ),
        (
            Topic::Tickets,
            r#"{"event_id":"t4","ts":1793614000000,"ticket":"INC-1","type":"priority","priority":"P1"}"#,
        ),
    ];

    /// One change to a record's members.
    #[derive(Debug, Clone)]
    enum Edit {
        Replace(usize, String),
        Remove(usize),
        Repeat(usize),
        Add(String, String),
        Trailing(String),
    }

    fn any_edit() -> impl Strategy<Value = Edit> {
        let key = prop::sample::select(vec![
            "event_id",
            "ts",
            "service",
            "kind",
            "source",
            "status",
            "latency_ms",
            "value",
            "capacity",
            "start",
            "end",
            "name",
            "outcome",
            "ticket",
            "type",
            "priority",
            "customer",
            "x",
            "é",
            "a\\\"b",
            // Near misses of the names the fast path knows by their bytes.
            "kinds",
            "tss",
            "event_idx",
            "s",
        ]);
        prop_oneof![
            4 => (0..12usize, any_value()).prop_map(|(i, v)| Edit::Replace(i, v)),
            1 => (0..12usize).prop_map(Edit::Remove),
            1 => (0..12usize).prop_map(Edit::Repeat),
            1 => (key, any_value()).prop_map(|(k, v)| Edit::Add(k.to_owned(), v)),
            1 => prop::sample::select(vec!["x", "}", ",", " \n", "\t"]).prop_map(|t| Edit::Trailing(t.to_owned())),
        ]
    }

    /// `template` with `edits` applied, written with `spaces` around tokens.
    fn edited(template: &str, edits: &[Edit], spaced: bool) -> String {
        let v: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(template).expect("a template");
        let mut members: Vec<(String, String)> = (v.into_iter())
            .map(|(k, v)| (format!("{k:?}"), v.to_string()))
            .collect();
        let mut trailing = String::new();
        for e in edits {
            let n = members.len().max(1);
            match e {
                Edit::Replace(i, value) if !members.is_empty() => members[i % n].1 = value.clone(),
                Edit::Remove(i) if !members.is_empty() => {
                    members.remove(i % n);
                }
                Edit::Repeat(i) if !members.is_empty() => members.push(members[i % n].clone()),
                Edit::Add(k, value) => members.push((format!("\"{k}\""), value.clone())),
                Edit::Trailing(t) => trailing.push_str(t),
                _ => {}
            }
        }
        let sp = if spaced { " " } else { "" };
        let body: Vec<String> = (members.iter())
            .map(|(k, v)| format!("{sp}{k}{sp}:{sp}{v}{sp}"))
            .collect();
        format!("{sp}{{{}}}{trailing}", body.join(","))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The fast path gives exactly the rows and dead letters serde gives.
        #[test]
        fn the_fast_path_decodes_as_serde_does(
            picks in prop::collection::vec(
                (0..TEMPLATES.len(), prop::collection::vec(any_edit(), 0..3), any::<bool>()),
                1..12,
            ),
        ) {
            for topic in Topic::ALL {
                let lines: Vec<String> = (picks.iter())
                    .filter(|(t, ..)| TEMPLATES[*t].0 == topic)
                    .map(|(t, edits, spaced)| edited(TEMPLATES[*t].1, edits, *spaced))
                    .collect();
                let recs = RawRecord::numbered(&lines, 1, 0);
                let fast = Decoder::new(topic, "t").decode(1, &recs);
                let serde = Decoder::new(topic, "t").serde_only().decode(1, &recs);
                prop_assert_eq!(&fast.batch, &serde.batch, "{:?}", lines);
                let dead = |c: &DecodedChunk| -> Vec<(usize, String)> {
                    c.malformed.iter().map(|m| (m.position, m.dead.error.clone())).collect()
                };
                prop_assert_eq!(dead(&fast), dead(&serde), "{:?}", lines);
                // The same records laid in one buffer: `raw` viewed, not copied.
                let block = in_one_block(&lines);
                let viewed = Decoder::new(topic, "t").decode_in(1, &block.records(1), Some(block.text()));
                prop_assert_eq!(&viewed.batch, &fast.batch, "{:?}", lines);
                prop_assert_eq!(dead(&viewed), dead(&fast), "{:?}", lines);
            }
        }

        /// A record is `not UTF-8` exactly when std says so, in std's words:
        /// the SIMD check only decides what it accepts.
        #[test]
        fn utf8_is_judged_as_std_judges_it(
            inserts in prop::collection::vec((any::<prop::sample::Index>(), prop_oneof![
                any::<char>().prop_map(|c| c.to_string().into_bytes()),
                prop::collection::vec(any::<u8>(), 1..4),
            ]), 0..4),
        ) {
            let mut bytes = TEMPLATES[0].1.as_bytes().to_vec();
            for (at, insert) in inserts {
                let i = at.index(bytes.len());
                bytes.splice(i..i, insert);
            }
            let recs = [RawRecord { partition: 0, offset: 0, payload: &bytes }];
            let c = Decoder::new(Topic::Monitoring, "t").decode(0, &recs);
            let error = c.malformed.first().map(|m| m.dead.error.clone());
            match std::str::from_utf8(&bytes) {
                Err(e) => prop_assert_eq!(error, Some(format!("not UTF-8: {e}"))),
                Ok(_) => prop_assert!(!error.is_some_and(|e| e.starts_with("not UTF-8"))),
            }
        }
    }

    /// `lines` in one buffer, as the sources hand them over ([`Lines`]),
    /// numbered from 0.
    fn in_one_block<S: AsRef<str>>(lines: &[S]) -> LineBlock {
        let mut laid = Lines::new();
        for (n, l) in (0..).zip(lines) {
            laid.push(n, l.as_ref().as_bytes());
        }
        laid.into_block()
    }

    /// Records lying in one buffer decode to the rows scattered ones do,
    /// their `raw` text a view into the buffer; a record outside it is copied.
    #[test]
    fn records_in_a_block_keep_their_text_in_it() {
        let lines = [TEMPLATES[0].1, TEMPLATES[1].1, "{", TEMPLATES[4].1];
        let block = in_one_block(&lines);
        let text = block.text();
        let mut recs = block.records(1);
        let outside = TEMPLATES[0].1.replace("\"p1\"", "\"p9\"");
        recs.push(RawRecord {
            partition: 1,
            offset: 4,
            payload: outside.as_bytes(),
        });
        let decoder = Decoder::new(Topic::Monitoring, "t");
        let copied = decoder.decode(1, &recs);
        let viewed = decoder.decode_in(1, &recs, Some(text));
        assert_eq!(viewed.batch, copied.batch);
        assert_eq!(viewed.malformed.len(), 1);
        let raw = viewed.batch.column(col::RAW).as_string_view();
        assert_eq!(raw.value(3), outside);
        let buffers = raw.data_buffers();
        assert_eq!(
            buffers[0].as_ptr(),
            text.as_ptr(),
            "the block itself, not a copy"
        );
        assert_eq!(
            buffers.iter().map(|b| b.len()).sum::<usize>(),
            text.len() + outside.len(),
            "only the record outside the block was copied"
        );
    }

    #[test]
    fn generated_traffic_takes_the_fast_path() {
        let lines = [TEMPLATES[0].1, TEMPLATES[1].1, TEMPLATES[4].1];
        for l in lines {
            assert!(MonitoringJson::fast(l, |_| ()).is_some(), "{l}");
        }
        assert!(TicketJson::fast(TEMPLATES[6].1, |_| ()).is_some());
    }
}
