//! Typed reading of decoded batches. The decoder writes each enum as its code
//! (`UInt8`, [`crate::model`]'s `code`); every stage after it reads rows through
//! these views, as the model's enums and the fields their kind needs.
//!
//! A row that breaks what decoding guarantees (a code no value has, a field its
//! kind needs left null, a column of another type) is [`Corrupt`]: an internal
//! error that stops the driver before anything of that state is committed, never
//! a skipped row.

use datafusion::arrow::array::{Array, AsArray, PrimitiveArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, Float64Type, Int32Type, Int64Type, UInt8Type,
};

use super::Topic;
use super::schema::{col, mon, tkt};
use crate::model::{
    ChangeOutcome, MonitoringKind, Priority, ProbeStatus, TicketEventType, TicketKind,
};
use crate::time::Millis;

/// A decoded batch that breaks the decoder's invariants (a bug, not bad input).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("internal error: decoded {topic} batch, row {row}: {what}")]
pub struct Corrupt {
    /// Topic of the batch.
    pub topic: Topic,
    /// Row within the batch.
    pub row: usize,
    /// What is wrong.
    pub what: String,
}

/// One monitoring row, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MonitoringRow<'a> {
    /// Event time.
    pub ts: Millis,
    /// The service (the record key).
    pub service: &'a str,
    /// Input partition.
    pub partition: i32,
    /// What the row says.
    pub event: MonitoringEvent<'a>,
}

/// A monitoring event with the fields its kind needs (contract section 1).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MonitoringEvent<'a> {
    /// A probe result.
    Probe {
        /// The probing location.
        source: &'a str,
        /// Up, degraded or down.
        status: ProbeStatus,
    },
    /// A capacity sample.
    Metric {
        /// The resource measured.
        resource: &'a str,
        /// The metric's name.
        metric: &'a str,
        /// The value.
        value: f64,
        /// The capacity, when given.
        capacity: Option<f64>,
    },
    /// An announced maintenance window.
    Maintenance {
        /// `[start, end)`.
        window: (Millis, Millis),
        /// The change it belongs to, when given.
        change_id: Option<&'a str>,
    },
    /// A version of an audited exclusion (contract section 13).
    Exclusion {
        /// Its id.
        id: &'a str,
        /// `[start, end)`.
        window: (Millis, Millis),
        /// Why.
        reason: &'a str,
        /// Who approved it.
        approved_by: &'a str,
    },
    /// A cumulative counter sample (contract section 14).
    Counter {
        /// The counting location.
        source: &'a str,
        /// The counter's name.
        name: &'a str,
        /// The cumulative value.
        value: f64,
    },
    /// A deployed change (contract section 15).
    Change {
        /// Its id.
        change_id: &'a str,
        /// How it went.
        outcome: ChangeOutcome,
    },
}

/// What a `created` event says.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NewTicket<'a> {
    /// Owning customer.
    pub customer: &'a str,
    /// Service, if given.
    pub service: Option<&'a str>,
    /// `incident` or `request`.
    pub kind: TicketKind,
    /// Initial priority.
    pub priority: Priority,
    /// Input partition of the ticket's records.
    pub partition: i32,
}

/// Ticket events (other than `created`) as the engine applies them.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TicketEvent<'a> {
    /// `responded`.
    Responded,
    /// `status`.
    Status(&'a str),
    /// `priority`.
    Priority(Priority),
}

/// One ticket row, typed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TicketRow<'a> {
    /// Event time.
    pub ts: Millis,
    /// The ticket (the record key).
    pub ticket: &'a str,
    /// What the row says.
    pub event: TicketChange<'a>,
}

/// A ticket row's event: the creation, or a change to an existing ticket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TicketChange<'a> {
    /// `created`.
    Created(NewTicket<'a>),
    /// `responded`, `status` or `priority`.
    Change(TicketEvent<'a>),
}

/// The columns both topics share.
struct Shared<'a> {
    topic: Topic,
    partition: &'a PrimitiveArray<Int32Type>,
    ts: &'a PrimitiveArray<Int64Type>,
    key: &'a StringArray,
}

impl<'a> Shared<'a> {
    fn new(topic: Topic, batch: &'a RecordBatch) -> Result<Self, Corrupt> {
        let c = Columns { topic, batch };
        Ok(Shared {
            topic,
            partition: c.primitive(col::PARTITION)?,
            ts: c.primitive(col::TS)?,
            key: c.strings(col::KEY)?,
        })
    }

    #[cold]
    fn corrupt(&self, row: usize, what: impl Into<String>) -> Corrupt {
        Corrupt {
            topic: self.topic,
            row,
            what: what.into(),
        }
    }

    /// `a`'s value at `r`, or [`Corrupt`] naming `field` when it is null.
    // Inlined: the engine reads several fields of every row through it.
    #[inline(always)]
    fn needs<A: Read<'a>>(&self, a: A, r: usize, field: &str) -> Result<A::Value, Corrupt> {
        a.read(r)
            .ok_or_else(|| self.corrupt(r, format!("`{field}` is null")))
    }

    /// The enum with the code at `r`, or [`Corrupt`] naming `field`.
    fn code<E>(
        &self,
        a: &PrimitiveArray<UInt8Type>,
        r: usize,
        field: &str,
        from: fn(u8) -> Option<E>,
    ) -> Result<E, Corrupt> {
        let code = self.needs(a, r, field)?;
        from(code)
            .ok_or_else(|| self.corrupt(r, format!("`{field}` has no value with code {code}")))
    }
}

/// A nullable column's value at a row.
trait Read<'a> {
    type Value;
    fn read(self, r: usize) -> Option<Self::Value>;
}

impl<'a> Read<'a> for &'a StringArray {
    type Value = &'a str;
    #[inline(always)]
    fn read(self, r: usize) -> Option<&'a str> {
        self.is_valid(r).then(|| self.value(r))
    }
}

impl<'a, T: ArrowPrimitiveType> Read<'a> for &'a PrimitiveArray<T> {
    type Value = T::Native;
    #[inline(always)]
    fn read(self, r: usize) -> Option<T::Native> {
        self.is_valid(r).then(|| self.value(r))
    }
}

/// Downcasts a batch's columns to the schema's types.
struct Columns<'a> {
    topic: Topic,
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    fn wrong(&self, c: usize) -> Corrupt {
        let field = self
            .batch
            .schema_ref()
            .fields()
            .get(c)
            .map(|f| f.name().clone());
        Corrupt {
            topic: self.topic,
            row: 0,
            what: format!("column {c} ({field:?}) is missing or of another type"),
        }
    }

    fn strings(&self, c: usize) -> Result<&'a StringArray, Corrupt> {
        let col = self.batch.columns().get(c).ok_or_else(|| self.wrong(c))?;
        col.as_string_opt::<i32>().ok_or_else(|| self.wrong(c))
    }

    fn primitive<T: ArrowPrimitiveType>(&self, c: usize) -> Result<&'a PrimitiveArray<T>, Corrupt> {
        let col = self.batch.columns().get(c).ok_or_else(|| self.wrong(c))?;
        col.as_primitive_opt::<T>().ok_or_else(|| self.wrong(c))
    }
}

/// The columns of a decoded monitoring batch.
pub struct MonitoringRows<'a> {
    shared: Shared<'a>,
    kind: &'a PrimitiveArray<UInt8Type>,
    source: &'a StringArray,
    status: &'a PrimitiveArray<UInt8Type>,
    outcome: &'a PrimitiveArray<UInt8Type>,
    resource: &'a StringArray,
    metric: &'a StringArray,
    value: &'a PrimitiveArray<Float64Type>,
    capacity: &'a PrimitiveArray<Float64Type>,
    start: &'a PrimitiveArray<Int64Type>,
    end: &'a PrimitiveArray<Int64Type>,
    change_id: &'a StringArray,
    exclusion_id: &'a StringArray,
    reason: &'a StringArray,
    approved_by: &'a StringArray,
}

impl<'a> MonitoringRows<'a> {
    /// The typed view of a decoded monitoring batch.
    pub fn new(batch: &'a RecordBatch) -> Result<Self, Corrupt> {
        let c = Columns {
            topic: Topic::Monitoring,
            batch,
        };
        Ok(MonitoringRows {
            shared: Shared::new(Topic::Monitoring, batch)?,
            kind: c.primitive(mon::KIND)?,
            source: c.strings(mon::SOURCE)?,
            status: c.primitive(mon::STATUS)?,
            outcome: c.primitive(mon::OUTCOME)?,
            resource: c.strings(mon::RESOURCE)?,
            metric: c.strings(mon::METRIC)?,
            value: c.primitive(mon::VALUE)?,
            capacity: c.primitive(mon::CAPACITY)?,
            start: c.primitive(mon::START)?,
            end: c.primitive(mon::END)?,
            change_id: c.strings(mon::CHANGE_ID)?,
            exclusion_id: c.strings(mon::EXCLUSION_ID)?,
            reason: c.strings(mon::REASON)?,
            approved_by: c.strings(mon::APPROVED_BY)?,
        })
    }

    /// Row `r`'s service.
    pub fn service(&self, r: usize) -> Result<&'a str, Corrupt> {
        self.shared.needs(self.shared.key, r, "service")
    }

    /// Row `r`, typed.
    pub fn row(&self, r: usize) -> Result<MonitoringRow<'a>, Corrupt> {
        let s = &self.shared;
        let window = || {
            Ok((
                s.needs(self.start, r, "start")?,
                s.needs(self.end, r, "end")?,
            ))
        };
        let kind = s.code(self.kind, r, "kind", MonitoringKind::from_code)?;
        let event = match kind {
            MonitoringKind::Probe => MonitoringEvent::Probe {
                source: s.needs(self.source, r, "source")?,
                status: s.code(self.status, r, "status", ProbeStatus::from_code)?,
            },
            MonitoringKind::Metric => MonitoringEvent::Metric {
                resource: s.needs(self.resource, r, "resource")?,
                metric: s.needs(self.metric, r, "metric")?,
                value: s.needs(self.value, r, "value")?,
                capacity: self.capacity.read(r),
            },
            MonitoringKind::Maintenance => MonitoringEvent::Maintenance {
                window: window()?,
                change_id: self.change_id.read(r),
            },
            MonitoringKind::Exclusion => MonitoringEvent::Exclusion {
                id: s.needs(self.exclusion_id, r, "exclusion_id")?,
                window: window()?,
                reason: s.needs(self.reason, r, "reason")?,
                approved_by: s.needs(self.approved_by, r, "approved_by")?,
            },
            MonitoringKind::Counter => MonitoringEvent::Counter {
                source: s.needs(self.source, r, "source")?,
                name: s.needs(self.metric, r, "name")?,
                value: s.needs(self.value, r, "value")?,
            },
            MonitoringKind::Change => MonitoringEvent::Change {
                change_id: s.needs(self.change_id, r, "change_id")?,
                outcome: s.code(self.outcome, r, "outcome", ChangeOutcome::from_code)?,
            },
        };
        Ok(MonitoringRow {
            ts: s.needs(s.ts, r, "ts")?,
            service: self.service(r)?,
            partition: s.needs(s.partition, r, "partition")?,
            event,
        })
    }
}

/// The columns of a decoded tickets batch.
pub struct TicketRows<'a> {
    shared: Shared<'a>,
    ty: &'a PrimitiveArray<UInt8Type>,
    customer: &'a StringArray,
    service: &'a StringArray,
    priority: &'a PrimitiveArray<UInt8Type>,
    kind: &'a PrimitiveArray<UInt8Type>,
    status: &'a StringArray,
}

impl<'a> TicketRows<'a> {
    /// The typed view of a decoded tickets batch.
    pub fn new(batch: &'a RecordBatch) -> Result<Self, Corrupt> {
        let c = Columns {
            topic: Topic::Tickets,
            batch,
        };
        Ok(TicketRows {
            shared: Shared::new(Topic::Tickets, batch)?,
            ty: c.primitive(tkt::TYPE)?,
            customer: c.strings(tkt::CUSTOMER)?,
            service: c.strings(tkt::SERVICE)?,
            priority: c.primitive(tkt::PRIORITY)?,
            kind: c.primitive(tkt::KIND)?,
            status: c.strings(tkt::STATUS)?,
        })
    }

    /// Row `r`'s event type.
    pub fn event_type(&self, r: usize) -> Result<TicketEventType, Corrupt> {
        (self.shared).code(self.ty, r, "type", TicketEventType::from_code)
    }

    /// The customer of row `r` when it is a `created` event.
    pub fn created_for(&self, r: usize) -> Result<Option<&'a str>, Corrupt> {
        Ok(match self.event_type(r)? {
            TicketEventType::Created => Some(self.shared.needs(self.customer, r, "customer")?),
            _ => None,
        })
    }

    /// Row `r`, typed.
    pub fn row(&self, r: usize) -> Result<TicketRow<'a>, Corrupt> {
        let s = &self.shared;
        let priority = || s.code(self.priority, r, "priority", Priority::from_code);
        let event = match self.event_type(r)? {
            TicketEventType::Created => TicketChange::Created(NewTicket {
                customer: s.needs(self.customer, r, "customer")?,
                service: self.service.read(r),
                kind: s.code(self.kind, r, "kind", TicketKind::from_code)?,
                priority: priority()?,
                partition: s.needs(s.partition, r, "partition")?,
            }),
            TicketEventType::Responded => TicketChange::Change(TicketEvent::Responded),
            TicketEventType::Priority => TicketChange::Change(TicketEvent::Priority(priority()?)),
            TicketEventType::Status => {
                TicketChange::Change(TicketEvent::Status(s.needs(self.status, r, "status")?))
            }
        };
        Ok(TicketRow {
            ts: s.needs(s.ts, r, "ts")?,
            ticket: s.needs(s.key, r, "ticket")?,
            event,
        })
    }
}

/// The typed view of a decoded batch of either topic.
pub enum Rows<'a> {
    /// A monitoring batch.
    Monitoring(MonitoringRows<'a>),
    /// A tickets batch.
    Tickets(TicketRows<'a>),
}

impl<'a> Rows<'a> {
    /// The view of `batch`, decoded from `topic`.
    pub fn new(topic: Topic, batch: &'a RecordBatch) -> Result<Self, Corrupt> {
        Ok(match topic {
            Topic::Monitoring => Rows::Monitoring(MonitoringRows::new(batch)?),
            Topic::Tickets => Rows::Tickets(TicketRows::new(batch)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{ArrayRef, UInt8Array};

    use super::*;
    use crate::event::{Decoder, RawRecord};

    fn decode(topic: Topic, lines: &[&str]) -> RecordBatch {
        let recs = RawRecord::numbered(lines, 3, 0);
        let chunk = Decoder::new(topic, "t").decode(3, &recs);
        assert!(chunk.malformed.is_empty(), "{:?}", chunk.malformed);
        chunk.batch
    }

    /// The batch with column `c` replaced.
    fn with_column(batch: &RecordBatch, c: usize, col: ArrayRef) -> RecordBatch {
        let mut cols = batch.columns().to_vec();
        cols[c] = col;
        RecordBatch::try_new(batch.schema(), cols).expect("same type")
    }

    #[test]
    fn a_code_no_value_has_is_an_internal_error() {
        let b = decode(
            Topic::Monitoring,
            &[
                r#"{"event_id":"a","ts":5,"service":"web","kind":"probe","source":"x","status":"up"}"#,
            ],
        );
        let rows = MonitoringRows::new(&b).expect("decoded schema");
        assert!(matches!(
            rows.row(0).map(|r| r.event),
            Ok(MonitoringEvent::Probe {
                source: "x",
                status: ProbeStatus::Up
            })
        ));
        let bad = with_column(&b, mon::STATUS, Arc::new(UInt8Array::from(vec![7])));
        let err = MonitoringRows::new(&bad).and_then(|rows| rows.row(0));
        assert_eq!(
            err.map_err(|e| e.to_string()),
            Err("internal error: decoded monitoring batch, row 0: `status` has no value with code 7".into())
        );
        let null = with_column(&b, mon::STATUS, Arc::new(UInt8Array::from(vec![None])));
        let err = MonitoringRows::new(&null).and_then(|rows| rows.row(0));
        assert!(err.is_err_and(|e| e.what == "`status` is null"));
    }

    #[test]
    fn a_column_of_another_type_is_an_internal_error() {
        let b = decode(
            Topic::Tickets,
            &[r#"{"event_id":"t","ts":5,"ticket":"T","type":"responded"}"#],
        );
        let rows = TicketRows::new(&b).expect("decoded schema");
        assert_eq!(rows.event_type(0), Ok(TicketEventType::Responded));
        let wrong = decode(
            Topic::Monitoring,
            &[
                r#"{"event_id":"a","ts":5,"service":"web","kind":"probe","source":"x","status":"up"}"#,
            ],
        );
        assert!(TicketRows::new(&wrong).is_err());
    }
}
