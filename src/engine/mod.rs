//! The SLA engine core: pure, no I/O, no clocks. It takes released batches (rows in
//! event-time order) and watermark advances, and returns outputs.

use std::collections::HashMap;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::Int64Type;

use crate::event::schema::{col, tkt};
use crate::event::{DeadLetter, Reason};
use crate::time::Millis;

/// What one engine step produced.
#[derive(Debug, Default)]
pub struct Outputs {
    /// Records rejected (any stage), in the order decided.
    pub dead_letters: Vec<DeadLetter>,
    /// Records applied to state.
    pub applied: u64,
}

/// The engine's state.
#[derive(Debug)]
pub struct Engine {
    tickets_topic: String,
    /// Ticket id → `created` time, for the `unknown_ticket`/`conflict` checks.
    tickets: HashMap<String, Millis>,
}

impl Engine {
    /// An empty engine; `tickets_topic` names the ticket topic in dead letters.
    pub fn new(tickets_topic: &str) -> Self {
        Engine {
            tickets_topic: tickets_topic.to_owned(),
            tickets: HashMap::new(),
        }
    }

    /// Applies released monitoring rows (in `ts` order).
    pub fn apply_monitoring(&mut self, batch: &RecordBatch, out: &mut Outputs) {
        out.applied += batch.num_rows() as u64;
    }

    /// Applies released ticket rows (in `ts` order).
    pub fn apply_tickets(&mut self, batch: &RecordBatch, out: &mut Outputs) {
        let ts = batch.column(col::TS).as_primitive::<Int64Type>();
        let ticket = batch.column(col::KEY).as_string::<i32>();
        let ty = batch.column(tkt::TYPE).as_string::<i32>();
        for r in 0..batch.num_rows() {
            let id = ticket.value(r);
            let t = ts.value(r);
            let verdict = if ty.value(r) == "created" {
                if self.tickets.contains_key(id) {
                    Err((
                        Reason::Conflict,
                        format!("ticket {id:?} was already created"),
                    ))
                } else {
                    self.tickets.insert(id.to_owned(), t);
                    Ok(())
                }
            } else {
                match self.tickets.get(id) {
                    Some(&created) if created <= t => Ok(()),
                    _ => Err((
                        Reason::UnknownTicket,
                        format!("ticket {id:?} has no `created` at or before ts {t}"),
                    )),
                }
            };
            match verdict {
                Ok(()) => out.applied += 1,
                Err((reason, error)) => {
                    out.dead_letters.push(DeadLetter::from_row(
                        batch,
                        r,
                        &self.tickets_topic,
                        reason,
                        error,
                    ));
                }
            }
        }
    }

    /// Fires every deadline at or before `watermark`.
    pub fn advance(&mut self, _watermark: Millis, _out: &mut Outputs) {}

    /// Number of tickets known.
    pub fn ticket_count(&self) -> usize {
        self.tickets.len()
    }
}
