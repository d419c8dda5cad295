//! Ticket SLA clocks (contract section 6): SLA selection, response and resolution
//! clocks on business calendars, pauses, reopen, priority changes, and warning and
//! breach incidents at exactly computed instants.

mod store;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::config::{BUILTIN_24X7, Config};
use crate::engine::calendar::Calendar;
use crate::engine::incidents::{Action, Incident, incident_id};
use crate::model::{Priority, Rule, Severity, TicketKind};
use crate::time::{Millis, check_duration, check_instant, format_ms, ms_to_s};
use store::{Slot, TicketStore};

/// Which clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClockKind {
    /// Time to first response.
    Response = 0,
    /// Time to resolution.
    Resolution = 1,
}

impl ClockKind {
    fn name(self) -> &'static str {
        match self {
            ClockKind::Response => "response",
            ClockKind::Resolution => "resolution",
        }
    }
    fn rules(self) -> (Rule, Rule) {
        match self {
            ClockKind::Response => (Rule::ResponseWarning, Rule::ResponseBreach),
            ClockKind::Resolution => (Rule::ResolutionWarning, Rule::ResolutionBreach),
        }
    }
}

/// A clock's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Stopped and never breached.
    Met,
    /// A breach fired.
    Breached,
    /// Running or paused.
    Pending,
}

/// One SLA clock.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Clock {
    /// Business ms counted before `since`.
    acc: Millis,
    /// Running since this instant.
    since: Option<Millis>,
    /// Stopped (by response or a terminal status); else paused when `since` is None.
    stopped: bool,
    /// Trigger instants of the incidents fired, if any.
    warned: Option<Millis>,
    breached: Option<Millis>,
    /// Whether those incidents were resolved.
    warn_open: bool,
    breach_open: bool,
    /// Scheduled warning and breach instants.
    warn_due: Option<Millis>,
    breach_due: Option<Millis>,
}

impl Clock {
    fn running(&self) -> bool {
        self.since.is_some()
    }
    fn elapsed(&self, cal: &Calendar, t: Millis) -> Millis {
        self.acc + self.since.map_or(0, |s| cal.business_between(s, t))
    }
    fn halt(&mut self, cal: &Calendar, t: Millis) {
        if let Some(s) = self.since.take() {
            self.acc += cal.business_between(s, t);
        }
    }
    /// The verdict now.
    pub fn verdict(&self) -> Verdict {
        if self.breached.is_some() {
            Verdict::Breached
        } else if self.stopped {
            Verdict::Met
        } else {
            Verdict::Pending
        }
    }
}

/// The SLA a ticket is held to.
#[derive(Debug, Clone)]
struct Sla {
    customer: String,
    kinds: Vec<TicketKind>,
    calendar: Arc<Calendar>,
    pause: HashSet<String>,
    warn_at: f64,
    targets: HashMap<Priority, [Option<Millis>; 2]>,
}

/// One tracked ticket (serialisable for checkpoints).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ticket {
    /// Input partition of its records.
    pub partition: i32,
    /// Ticket id.
    pub id: CompactString,
    /// Customer.
    pub customer: CompactString,
    /// Service, if given.
    pub service: Option<CompactString>,
    /// `incident` or `request`.
    pub kind: TicketKind,
    /// Current priority.
    pub priority: Priority,
    /// `created` instant.
    pub created: Millis,
    /// Current status (`new` until a status event).
    pub status: CompactString,
    sla: Option<u32>,
    clocks: [Clock; 2],
}

impl Ticket {
    /// Checks a restored ticket: a configured customer, an SLA of that customer
    /// (the index is into `config.slas`), instants in range.
    pub fn check(&self, config: &Config) -> Result<(), String> {
        let bad = |what: String| Err(format!("ticket {:?}: {what}", self.id));
        if config.customer(&self.customer).is_none() {
            return bad(format!("unknown customer {:?}", self.customer));
        }
        if let Some(i) = self.sla
            && config
                .slas
                .get(i as usize)
                .is_none_or(|s| *s.customer != self.customer)
        {
            return bad(format!("SLA #{i} is not one of its customer's"));
        }
        check_instant("created", self.created)?;
        for c in &self.clocks {
            check_duration("clock", c.acc)?;
            for t in [c.since, c.warned, c.breached, c.warn_due, c.breach_due]
                .into_iter()
                .flatten()
            {
                check_instant("clock instant", t)?;
            }
        }
        Ok(())
    }
}

/// A ticket line of `tickets.ndjson`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TicketLine {
    /// Ticket id.
    pub ticket: String,
    /// Customer.
    pub customer: String,
    /// Current priority.
    pub priority: Priority,
    /// RFC 3339 creation time.
    pub created: String,
    /// Current status.
    pub status: String,
    /// Business seconds to response, while that clock is stopped.
    pub response_s: Option<f64>,
    /// Business seconds to resolution, while that clock is stopped.
    pub resolution_s: Option<f64>,
    /// true = met, false = breached, null = pending.
    pub response_met: Option<bool>,
    /// true = met, false = breached, null = pending.
    pub resolution_met: Option<bool>,
}

pub use crate::event::rows::{NewTicket, TicketEvent};

/// Why a ticket event was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No such ticket (at or before the event).
    Unknown,
    /// A second `created`.
    Conflict,
}

/// All tickets and their timers.
#[derive(Debug, Clone)]
pub struct Tickets {
    slas: Vec<Sla>,
    always: Arc<Calendar>,
    store: TicketStore,
}

impl Tickets {
    /// Tickets engine for `config`'s SLAs and calendars.
    pub fn new(config: &Config) -> Self {
        let always = Arc::new(Calendar::Always);
        let calendars: HashMap<&str, Arc<Calendar>> = config
            .calendars
            .iter()
            .map(|c| (c.id.as_str(), Arc::new(Calendar::from_config(c))))
            .collect();
        let slas = config
            .slas
            .iter()
            .map(|s| Sla {
                customer: s.customer.clone(),
                kinds: s.kinds.clone(),
                calendar: match s.calendar.as_str() {
                    BUILTIN_24X7 => always.clone(),
                    id => calendars.get(id).cloned().unwrap_or_else(|| always.clone()),
                },
                pause: s.pause_statuses.iter().cloned().collect(),
                warn_at: s.warn_at,
                targets: s
                    .targets
                    .iter()
                    .map(|(p, t)| (*p, [t.response.map(|d| d.0), t.resolution.map(|d| d.0)]))
                    .collect(),
            })
            .collect();
        Tickets {
            slas,
            always,
            store: TicketStore::default(),
        }
    }

    /// Number of tickets tracked.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// True when no ticket is tracked.
    pub fn is_empty(&self) -> bool {
        self.store.len() == 0
    }

    /// Tickets whose resolution clock has not stopped.
    pub fn open_count(&self) -> usize {
        self.iter().filter(|t| !t.clocks[1].stopped).count()
    }

    /// A ticket by id.
    pub fn get(&self, id: &str) -> Option<&Ticket> {
        self.store.by_id(id)
    }

    /// Copies of the tickets of one input partition (for a checkpoint).
    pub fn export(&self, partition: i32) -> Vec<Ticket> {
        let mut v: Vec<Ticket> = self
            .iter()
            .filter(|t| t.partition == partition)
            .cloned()
            .collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v
    }

    /// Takes in restored tickets and re-arms their pending warnings and breaches.
    pub fn import(&mut self, tickets: Vec<Ticket>) {
        for t in tickets {
            if let Some(slot) = self.store.slot(&t.id) {
                self.store.remove(slot);
            }
            self.store.insert(t);
        }
    }

    /// Forgets the tickets of one input partition (it moved to another instance).
    pub fn forget(&mut self, partition: i32) {
        self.remove_where(|t| t.partition == partition);
    }

    /// Forgets tickets created before `horizon` that are resolved or closed and
    /// have no open incident (retention). A later event of one is `unknown_ticket`.
    pub fn prune(&mut self, horizon: Millis) {
        self.remove_where(|t| {
            t.created < horizon
                && matches!(t.status.as_str(), "resolved" | "closed")
                && t.clocks.iter().all(|c| !c.warn_open && !c.breach_open)
        });
    }

    fn remove_where(&mut self, doomed: impl Fn(&Ticket) -> bool) {
        let slots: Vec<Slot> = (self.store.iter())
            .filter(|(_, t)| doomed(t))
            .map(|(slot, _)| slot)
            .collect();
        for slot in slots {
            self.store.remove(slot);
        }
    }

    /// Fires every warning and breach strictly before `horizon`: instant by
    /// instant, and within one instant by ticket id.
    pub fn advance(&mut self, horizon: Millis, out: &mut Vec<Incident>) {
        while let Some(at) = self.store.first_due().filter(|&at| at < horizon) {
            for slot in self.store.take_due_at(at) {
                self.fire(slot, at, out);
            }
        }
    }

    /// Applies `created` at `ts`.
    pub fn create(
        &mut self,
        ts: Millis,
        id: &str,
        new: NewTicket,
        out: &mut Vec<Incident>,
    ) -> Result<(), Refusal> {
        let NewTicket {
            customer,
            service,
            kind,
            priority,
            partition,
        } = new;
        self.advance(ts, out);
        if self.store.slot(id).is_some() {
            return Err(Refusal::Conflict);
        }
        let sla = self
            .slas
            .iter()
            .position(|s| s.customer == customer && s.kinds.contains(&kind))
            .and_then(|i| u32::try_from(i).ok());
        let running = Clock {
            since: Some(ts),
            ..Clock::default()
        };
        let slot = self.store.insert(Ticket {
            partition,
            id: id.into(),
            customer: customer.into(),
            service: service.map(CompactString::from),
            kind,
            priority,
            created: ts,
            status: CompactString::const_new("new"),
            sla,
            clocks: [running.clone(), running],
        });
        self.schedule(slot, ts);
        Ok(())
    }

    /// Applies a non-`created` event at `ts`.
    pub fn apply(
        &mut self,
        ts: Millis,
        id: &str,
        ev: TicketEvent,
        out: &mut Vec<Incident>,
    ) -> Result<(), Refusal> {
        self.advance(ts, out);
        let slot = match self.store.slot(id) {
            Some(slot) if self.store.get(slot).created <= ts => slot,
            _ => return Err(Refusal::Unknown),
        };
        let sla = self.store.get(slot).sla;
        let cal = self.calendar(sla);
        let pause = |s: &str| sla.is_some_and(|i| self.slas[i as usize].pause.contains(s));
        let terminal = |s: &str| s == "resolved" || s == "closed";
        let stops = self.store.update(slot, |t| {
            let mut stops = Vec::new();
            match ev {
                TicketEvent::Responded => {
                    if !t.clocks[0].stopped {
                        stops.push(ClockKind::Response);
                    }
                }
                TicketEvent::Priority(p) => t.priority = p,
                TicketEvent::Status(s) => {
                    t.status = s.into();
                    let res = &mut t.clocks[1];
                    if terminal(s) {
                        if !t.clocks[0].stopped {
                            stops.push(ClockKind::Response);
                        }
                        if !t.clocks[1].stopped {
                            stops.push(ClockKind::Resolution);
                        }
                    } else if pause(s) {
                        res.halt(&cal, ts);
                        // A pause status after a stop reopens the ticket, paused.
                        res.stopped = false;
                    } else if !res.running() {
                        res.stopped = false;
                        res.since = Some(ts);
                    }
                }
            }
            stops
        });
        for kind in stops {
            self.stop(slot, kind, ts, &cal, out);
        }
        self.schedule(slot, ts);
        Ok(())
    }

    fn calendar(&self, sla: Option<u32>) -> Arc<Calendar> {
        sla.map_or_else(
            || self.always.clone(),
            |i| self.slas[i as usize].calendar.clone(),
        )
    }

    fn target(&self, t: &Ticket, kind: ClockKind) -> Option<Millis> {
        let sla = &self.slas[t.sla? as usize];
        sla.targets.get(&t.priority)?[kind as usize]
    }

    fn stop(
        &mut self,
        slot: Slot,
        kind: ClockKind,
        ts: Millis,
        cal: &Calendar,
        out: &mut Vec<Incident>,
    ) {
        let resolved = self.store.update(slot, |t| {
            let c = &mut t.clocks[kind as usize];
            c.halt(cal, ts);
            c.stopped = true;
            let (warn_rule, breach_rule) = kind.rules();
            let mut resolved = Vec::new();
            if c.warn_open {
                c.warn_open = false;
                resolved.extend(c.warned.map(|started| (warn_rule, started)));
            }
            if c.breach_open {
                c.breach_open = false;
                resolved.extend(c.breached.map(|started| (breach_rule, started)));
            }
            resolved
        });
        let t = self.store.get(slot);
        for (rule, started) in resolved {
            out.push(ticket_incident(
                t,
                rule,
                severity(rule, t.priority),
                Action::Resolve,
                started,
                ts,
                Some(ts),
                kind,
            ));
        }
    }

    /// Recomputes a ticket's warning and breach instants from `now`.
    fn schedule(&mut self, slot: Slot, now: Millis) {
        let t = self.store.get(slot);
        let cal = self.calendar(t.sla);
        let warn_at = t.sla.map_or(1.0, |i| self.slas[i as usize].warn_at);
        let mut due: [(Option<Millis>, Option<Millis>); 2] = [(None, None); 2];
        for kind in [ClockKind::Response, ClockKind::Resolution] {
            let c = &t.clocks[kind as usize];
            let Some(target) = self.target(t, kind) else {
                continue;
            };
            if !c.running() {
                continue;
            }
            let elapsed = c.elapsed(&cal, now);
            let at = |threshold: Millis| {
                if elapsed >= threshold {
                    Some(now)
                } else {
                    cal.add_business(now, threshold - elapsed)
                }
            };
            let warn_threshold = (warn_at * target as f64).round() as Millis;
            due[kind as usize] = (
                if c.warned.is_none() {
                    at(warn_threshold)
                } else {
                    None
                },
                if c.breached.is_none() {
                    at(target)
                } else {
                    None
                },
            );
        }
        self.store.update(slot, |t| {
            for (c, (w, b)) in t.clocks.iter_mut().zip(due) {
                c.warn_due = w;
                c.breach_due = b;
            }
        });
    }

    fn fire(&mut self, slot: Slot, at: Millis, out: &mut Vec<Incident>) {
        let fired = self.store.update(slot, |t| {
            let mut fired = Vec::new();
            for kind in [ClockKind::Response, ClockKind::Resolution] {
                let c = &mut t.clocks[kind as usize];
                let (warn_rule, breach_rule) = kind.rules();
                if c.warn_due.is_some_and(|d| d <= at) && c.warned.is_none() {
                    c.warned = Some(at);
                    c.warn_open = true;
                    fired.push((warn_rule, kind));
                }
                if c.breach_due.is_some_and(|d| d <= at) && c.breached.is_none() {
                    c.breached = Some(at);
                    c.breach_open = true;
                    fired.push((breach_rule, kind));
                }
            }
            fired
        });
        let t = self.store.get(slot);
        for (rule, kind) in fired {
            out.push(ticket_incident(
                t,
                rule,
                severity(rule, t.priority),
                Action::Trigger,
                at,
                at,
                None,
                kind,
            ));
        }
        self.schedule(slot, at);
    }

    /// Lines for `tickets.ndjson`, sorted by ticket id.
    pub fn lines(&self) -> Vec<TicketLine> {
        let mut v: Vec<&Ticket> = self.iter().collect();
        v.sort_by(|a, b| a.id.cmp(&b.id));
        v.into_iter().map(Ticket::line).collect()
    }

    /// The `tickets.ndjson` line of one ticket.
    pub fn line(&self, id: &str) -> Option<TicketLine> {
        self.get(id).map(Ticket::line)
    }

    /// Every ticket.
    pub fn iter(&self) -> impl Iterator<Item = &Ticket> {
        self.store.iter().map(|(_, t)| t)
    }
}

impl Ticket {
    /// The earliest warning or breach still to fire, if any.
    fn next_due(&self) -> Option<Millis> {
        (self.clocks.iter())
            .flat_map(|c| {
                [
                    c.warn_due.filter(|_| c.warned.is_none()),
                    c.breach_due.filter(|_| c.breached.is_none()),
                ]
            })
            .flatten()
            .min()
    }

    /// This ticket's `tickets.ndjson` line.
    pub fn line(&self) -> TicketLine {
        let (r, s) = (&self.clocks[0], &self.clocks[1]);
        let secs = |c: &Clock| c.stopped.then(|| ms_to_s(c.acc));
        TicketLine {
            ticket: self.id.to_string(),
            customer: self.customer.to_string(),
            priority: self.priority,
            created: format_ms(self.created),
            status: self.status.to_string(),
            response_s: secs(r),
            resolution_s: secs(s),
            response_met: met(r),
            resolution_met: met(s),
        }
    }

    /// A clock of this ticket.
    pub fn clock(&self, kind: ClockKind) -> &Clock {
        &self.clocks[kind as usize]
    }
    /// Business ms counted by a stopped clock.
    pub fn stopped_ms(&self, kind: ClockKind) -> Option<Millis> {
        let c = self.clock(kind);
        c.stopped.then_some(c.acc)
    }
}

fn met(c: &Clock) -> Option<bool> {
    match c.verdict() {
        Verdict::Met => Some(true),
        Verdict::Breached => Some(false),
        Verdict::Pending => None,
    }
}

fn is_warning(rule: Rule) -> bool {
    matches!(rule, Rule::ResponseWarning | Rule::ResolutionWarning)
}

fn severity(rule: Rule, p: Priority) -> Severity {
    if is_warning(rule) {
        return Severity::Warning;
    }
    match p {
        Priority::P1 => Severity::Critical,
        Priority::P2 => Severity::Major,
        Priority::P3 | Priority::P4 => Severity::Minor,
    }
}

#[allow(clippy::too_many_arguments)]
fn ticket_incident(
    t: &Ticket,
    rule: Rule,
    severity: Severity,
    action: Action,
    started: Millis,
    at: Millis,
    ended: Option<Millis>,
    kind: ClockKind,
) -> Incident {
    let what = if is_warning(rule) {
        "nearing its target"
    } else {
        "breached"
    };
    let summary = match action {
        Action::Trigger => format!("{} {} {} ({})", t.id, kind.name(), what, t.priority),
        Action::Resolve => format!("{} {} clock stopped", t.id, kind.name()),
    };
    Incident {
        incident_id: incident_id(rule, &t.id, started),
        action,
        rule,
        severity,
        customer: t.customer.to_string(),
        service: t.service.as_ref().map(CompactString::to_string),
        ticket: Some(t.id.to_string()),
        started_at: format_ms(started),
        at: format_ms(at),
        ended_at: ended.map(format_ms),
        summary,
        details: serde_json::json!({ "priority": t.priority.as_str(), "clock": kind.name() }),
        at_ms: at,
        started_ms: started,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;
    use std::path::Path;

    const CONFIG: &str = r#"
[[customers]]
id = "acme"
[[calendars]]
id = "office"
timezone = "UTC"
[calendars.hours]
mon = "09:00-17:00"
tue = "09:00-17:00"
wed = "09:00-17:00"
thu = "09:00-17:00"
fri = "09:00-17:00"
[[slas]]
id = "gold"
customer = "acme"
calendar = "office"
kinds = ["incident"]
pause_statuses = ["pending_customer"]
warn_at = 0.75
[slas.targets.P1]
response = "15m"
resolution = "4h"
[slas.targets.P2]
response = "1h"
resolution = "1d"
"#;

    fn t(s: &str) -> Millis {
        parse_rfc3339(s).expect("time")
    }

    fn tickets() -> Tickets {
        Tickets::new(&Config::parse(CONFIG, Path::new("t.toml")).expect("config"))
    }

    fn new_ticket(service: Option<&str>, kind: TicketKind, priority: Priority) -> NewTicket<'_> {
        NewTicket {
            customer: "acme",
            service,
            kind,
            priority,
            partition: 0,
        }
    }

    fn created(tk: &mut Tickets, at: &str, p: Priority, kind: TicketKind, out: &mut Vec<Incident>) {
        let new = new_ticket(Some("web"), kind, p);
        tk.create(t(at), "INC-1", new, out).expect("create");
    }

    fn ev(tk: &mut Tickets, at: &str, e: TicketEvent, out: &mut Vec<Incident>) {
        tk.apply(t(at), "INC-1", e, out).expect("apply");
    }

    fn seen(out: &[Incident]) -> Vec<(Rule, Action, String, Severity)> {
        out.iter()
            .map(|i| (i.rule, i.action, i.at.clone(), i.severity))
            .collect()
    }

    const MON: &str = "2026-11-02";

    fn at(hms: &str) -> String {
        format!("{MON}T{hms}.000Z")
    }

    #[test]
    fn response_warning_and_breach_fire_at_exact_instants_and_resolve_on_response() {
        let mut tk = tickets();
        let mut out = Vec::new();
        created(
            &mut tk,
            &at("09:00:00"),
            Priority::P1,
            TicketKind::Incident,
            &mut out,
        );
        tk.advance(t(&at("09:20:00")), &mut out);
        ev(&mut tk, &at("09:30:00"), TicketEvent::Responded, &mut out);
        assert_eq!(
            seen(&out),
            vec![
                (
                    Rule::ResponseWarning,
                    Action::Trigger,
                    at("09:11:15"),
                    Severity::Warning
                ),
                (
                    Rule::ResponseBreach,
                    Action::Trigger,
                    at("09:15:00"),
                    Severity::Critical
                ),
                (
                    Rule::ResponseWarning,
                    Action::Resolve,
                    at("09:30:00"),
                    Severity::Warning
                ),
                (
                    Rule::ResponseBreach,
                    Action::Resolve,
                    at("09:30:00"),
                    Severity::Critical
                ),
            ]
        );
        assert_eq!(out[0].incident_id, out[2].incident_id);
        assert_eq!(
            out[0].incident_id,
            incident_id(Rule::ResponseWarning, "INC-1", t(&at("09:11:15")))
        );
        assert_eq!(out[3].ended_at.as_deref(), Some(at("09:30:00").as_str()));
        let line = &tk.lines()[0];
        assert_eq!(
            (line.response_s, line.response_met),
            (Some(1800.0), Some(false))
        );
        assert_eq!((line.resolution_s, line.resolution_met), (None, None));
    }

    #[test]
    fn stop_exactly_at_the_breach_instant_is_met() {
        let mut tk = tickets();
        let mut out = Vec::new();
        created(
            &mut tk,
            &at("09:00:00"),
            Priority::P1,
            TicketKind::Incident,
            &mut out,
        );
        ev(&mut tk, &at("09:15:00"), TicketEvent::Responded, &mut out);
        tk.advance(t(&at("23:00:00")), &mut out);
        let response: Vec<_> = seen(&out)
            .into_iter()
            .filter(|s| s.0.as_str().starts_with("response"))
            .collect();
        assert_eq!(
            response,
            vec![
                (
                    Rule::ResponseWarning,
                    Action::Trigger,
                    at("09:11:15"),
                    Severity::Warning
                ),
                (
                    Rule::ResponseWarning,
                    Action::Resolve,
                    at("09:15:00"),
                    Severity::Warning
                ),
            ]
        );
        assert_eq!(tk.lines()[0].response_met, Some(true));
    }

    #[test]
    fn breach_instant_walks_the_calendar_over_a_weekend() {
        let mut tk = tickets();
        let mut out = Vec::new();
        created(
            &mut tk,
            "2026-11-06T16:55:00Z",
            Priority::P1,
            TicketKind::Incident,
            &mut out,
        ); // Friday
        tk.advance(t("2026-11-09T12:00:00Z"), &mut out);
        let r: Vec<_> = seen(&out)
            .into_iter()
            .filter(|s| s.0 == Rule::ResponseBreach)
            .collect();
        assert_eq!(
            r,
            vec![(
                Rule::ResponseBreach,
                Action::Trigger,
                "2026-11-09T09:10:00.000Z".to_owned(),
                Severity::Critical
            )]
        );
    }

    #[test]
    fn pause_then_resolve_counts_only_running_business_time() {
        let mut tk = tickets();
        let mut out = Vec::new();
        created(
            &mut tk,
            &at("09:00:00"),
            Priority::P1,
            TicketKind::Incident,
            &mut out,
        );
        ev(&mut tk, &at("09:05:00"), TicketEvent::Responded, &mut out);
        ev(
            &mut tk,
            &at("10:00:00"),
            TicketEvent::Status("pending_customer"),
            &mut out,
        );
        ev(
            &mut tk,
            &at("12:00:00"),
            TicketEvent::Status("in_progress"),
            &mut out,
        );
        ev(
            &mut tk,
            &at("14:00:00"),
            TicketEvent::Status("resolved"),
            &mut out,
        );
        tk.advance(t("2026-11-20T00:00:00Z"), &mut out);
        assert!(
            out.iter()
                .all(|i| !i.rule.as_str().starts_with("resolution")),
            "{:?}",
            seen(&out)
        );
        let line = &tk.lines()[0];
        assert_eq!(
            (line.resolution_s, line.resolution_met),
            (Some(10_800.0), Some(true))
        );
        assert_eq!(line.status, "resolved");
    }

    #[test]
    fn paused_clock_breaches_when_it_resumes() {
        let mut tk = tickets();
        let mut out = Vec::new();
        created(
            &mut tk,
            &at("09:00:00"),
            Priority::P2,
            TicketKind::Incident,
            &mut out,
        );
        ev(&mut tk, &at("09:05:00"), TicketEvent::Responded, &mut out);
        ev(
            &mut tk,
            &at("16:00:00"),
            TicketEvent::Status("pending_customer"),
            &mut out,
        );
        ev(
            &mut tk,
            &at("16:30:00"),
            TicketEvent::Priority(Priority::P1),
            &mut out,
        );
        tk.advance(t(&at("17:00:00")), &mut out);
        assert!(
            out.iter().all(|i| i.rule != Rule::ResolutionBreach),
            "paused: no breach yet"
        );
        ev(
            &mut tk,
            &at("17:30:00"),
            TicketEvent::Status("in_progress"),
            &mut out,
        );
        tk.advance(t(&at("17:30:01")), &mut out);
        let b: Vec<_> = seen(&out)
            .into_iter()
            .filter(|s| s.0 == Rule::ResolutionBreach)
            .collect();
        assert_eq!(
            b,
            vec![(
                Rule::ResolutionBreach,
                Action::Trigger,
                at("17:30:00"),
                Severity::Critical
            )]
        );
    }

    #[test]
    fn raising_priority_past_elapsed_time_breaches_at_that_instant() {
        let mut tk = tickets();
        let mut out = Vec::new();
        created(
            &mut tk,
            &at("09:00:00"),
            Priority::P2,
            TicketKind::Incident,
            &mut out,
        );
        ev(&mut tk, &at("09:05:00"), TicketEvent::Responded, &mut out);
        ev(
            &mut tk,
            &at("13:00:00"),
            TicketEvent::Priority(Priority::P1),
            &mut out,
        );
        tk.advance(t(&at("13:00:01")), &mut out);
        let r: Vec<_> = seen(&out)
            .into_iter()
            .filter(|s| s.0.as_str().starts_with("resolution"))
            .collect();
        assert_eq!(
            r,
            vec![
                (
                    Rule::ResolutionWarning,
                    Action::Trigger,
                    at("13:00:00"),
                    Severity::Warning
                ),
                (
                    Rule::ResolutionBreach,
                    Action::Trigger,
                    at("13:00:00"),
                    Severity::Critical
                ),
            ]
        );
    }

    #[test]
    fn reopen_resumes_and_adds_to_counted_time() {
        let mut tk = tickets();
        let mut out = Vec::new();
        created(
            &mut tk,
            &at("09:00:00"),
            Priority::P1,
            TicketKind::Incident,
            &mut out,
        );
        ev(
            &mut tk,
            &at("10:00:00"),
            TicketEvent::Status("resolved"),
            &mut out,
        );
        assert_eq!(tk.lines()[0].resolution_met, Some(true));
        ev(
            &mut tk,
            &at("11:00:00"),
            TicketEvent::Status("reopened"),
            &mut out,
        );
        let line = &tk.lines()[0];
        assert_eq!(
            (line.resolution_s, line.resolution_met),
            (None, None),
            "reopened: pending again"
        );
        assert_eq!(
            (line.response_s, line.response_met),
            (Some(3600.0), Some(false)),
            "response never restarts"
        );
        ev(
            &mut tk,
            &at("12:00:00"),
            TicketEvent::Status("closed"),
            &mut out,
        );
        let line = &tk.lines()[0];
        assert_eq!(
            (line.resolution_s, line.resolution_met),
            (Some(7200.0), Some(true))
        );
    }

    #[test]
    fn tickets_without_sla_have_no_targets() {
        let mut tk = tickets();
        let mut out = Vec::new();
        created(
            &mut tk,
            &at("09:00:00"),
            Priority::P1,
            TicketKind::Request,
            &mut out,
        );
        tk.advance(t("2026-12-01T00:00:00Z"), &mut out);
        ev(
            &mut tk,
            "2026-12-01T00:00:00Z",
            TicketEvent::Responded,
            &mut out,
        );
        assert!(out.is_empty());
        // No SLA: measured on the 24x7 calendar.
        assert_eq!(
            tk.lines()[0].response_s,
            Some(ms_to_s(t("2026-12-01T00:00:00Z") - t(&at("09:00:00"))))
        );
    }

    #[test]
    fn unknown_and_conflict() {
        let mut tk = tickets();
        let mut out = Vec::new();
        assert_eq!(
            tk.apply(0, "X", TicketEvent::Responded, &mut out),
            Err(Refusal::Unknown)
        );
        created(
            &mut tk,
            &at("09:00:00"),
            Priority::P1,
            TicketKind::Incident,
            &mut out,
        );
        assert_eq!(
            tk.create(
                t(&at("10:00:00")),
                "INC-1",
                new_ticket(None, TicketKind::Incident, Priority::P1),
                &mut out
            ),
            Err(Refusal::Conflict)
        );
    }
}
