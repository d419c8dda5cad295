//! A durable, bounded outbox: one file per pending delivery in a directory,
//! written with write + fsync + rename + directory fsync, removed once delivered.
//! After a restart the pending deliveries are read back in their original order.
//!
//! When full, the oldest pending `trigger` is dropped together with its pending
//! `resolve`, and a `resolve` arriving later for a dropped trigger is skipped: a
//! receiver never gets one half of an incident. A `resolve` whose trigger was
//! delivered is never dropped (the receiver would keep the incident open
//! forever), so resolves may exceed the bound by the number of open incidents.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::engine::incidents::{Action, Incident};

/// Outbox failures (disk).
#[derive(Debug, thiserror::Error)]
#[error("outbox {path}: {source}")]
pub struct OutboxError {
    path: PathBuf,
    source: std::io::Error,
}

fn at(path: &Path) -> impl FnOnce(std::io::Error) -> OutboxError + '_ {
    move |source| OutboxError {
        path: path.to_owned(),
        source,
    }
}

/// One pending delivery: which target, and the incident (stored as the
/// contract's record).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the outbox (file name); increases with every entry.
    #[serde(skip)]
    pub seq: u64,
    /// Delivery target id.
    pub target: String,
    /// The incident action.
    pub incident: Incident,
}

impl Entry {
    /// `incident_id/action`, to skip an action already pending for the same target.
    fn key(&self) -> (&str, Action) {
        (&self.incident.incident_id, self.incident.action)
    }
}

/// Pending deliveries per target, in order, mirrored on disk.
pub struct Outbox {
    dir: PathBuf,
    capacity: usize,
    queues: BTreeMap<String, VecDeque<Entry>>,
    next_seq: u64,
    /// (target, incident id) of triggers dropped when full, oldest first: their
    /// resolves are not queued (bounded; forgotten on restart).
    dropped: VecDeque<(String, String)>,
}

impl Outbox {
    /// Opens (creating) `dir` and reads back what is pending. Unreadable entries are
    /// renamed to `*.corrupt` and reported in the second value, never delivered.
    pub fn open(dir: &Path, capacity: usize) -> Result<(Outbox, Vec<PathBuf>), OutboxError> {
        fs::create_dir_all(dir).map_err(at(dir))?;
        let mut entries = Vec::new();
        let mut corrupt = Vec::new();
        for item in fs::read_dir(dir).map_err(at(dir))? {
            let path = item.map_err(at(dir))?.path();
            let Some(seq) = path
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_suffix(".json"))
                .and_then(|n| n.parse::<u64>().ok())
            else {
                continue;
            };
            let parsed = fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<Entry>(&b).ok());
            match parsed {
                Some(e) => entries.push(Entry { seq, ..e }),
                None => {
                    let moved = path.with_extension("corrupt");
                    fs::rename(&path, &moved).map_err(at(&path))?;
                    corrupt.push(moved);
                }
            }
        }
        entries.sort_by_key(|e| e.seq);
        let mut outbox = Outbox {
            dir: dir.to_owned(),
            capacity: capacity.max(1),
            queues: BTreeMap::new(),
            next_seq: entries.last().map_or(0, |e| e.seq + 1),
            dropped: VecDeque::new(),
        };
        for e in entries {
            outbox
                .queues
                .entry(e.target.clone())
                .or_default()
                .push_back(e);
        }
        Ok((outbox, corrupt))
    }

    fn path(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:020}.json"))
    }

    /// Number of pending deliveries.
    pub fn len(&self) -> usize {
        self.queues.values().map(VecDeque::len).sum()
    }

    /// True when nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Pending deliveries of one target.
    pub fn pending(&self, target: &str) -> usize {
        self.queues.get(target).map_or(0, VecDeque::len)
    }

    /// Durably adds a delivery unless the same incident action is already pending
    /// for that target, or it resolves a trigger dropped when full (returns
    /// `false` then). When full, the oldest pending trigger and its resolve are
    /// dropped and returned, so the caller can report them.
    pub fn push(
        &mut self,
        target: &str,
        incident: Incident,
    ) -> Result<(bool, Vec<Entry>), OutboxError> {
        let entry = Entry {
            seq: self.next_seq,
            target: target.to_owned(),
            incident,
        };
        let (incident_id, action) = entry.key();
        let queue = self.queues.entry(target.to_owned()).or_default();
        let orphan = action == Action::Resolve
            && (self.dropped.iter()).any(|(t, id)| t == target && id.as_str() == incident_id);
        if orphan || queue.iter().any(|e| e.key() == entry.key()) {
            return Ok((false, Vec::new()));
        }
        let path = self.path(entry.seq);
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(&entry).map_err(|e| at(&tmp)(std::io::Error::other(e)))?;
        let mut file = File::create(&tmp).map_err(at(&tmp))?;
        file.write_all(&bytes).map_err(at(&tmp))?;
        file.sync_all().map_err(at(&tmp))?;
        fs::rename(&tmp, &path).map_err(at(&path))?;
        // The rename itself is durable only once the directory is synced.
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(at(&self.dir))?;
        self.next_seq += 1;
        self.queues
            .entry(target.to_owned())
            .or_default()
            .push_back(entry);
        let dropped = if self.len() > self.capacity {
            self.drop_oldest_trigger()?
        } else {
            Vec::new()
        };
        Ok((true, dropped))
    }

    /// Drops the oldest pending trigger with its pending resolve, if any.
    fn drop_oldest_trigger(&mut self) -> Result<Vec<Entry>, OutboxError> {
        let oldest = self
            .queues
            .values()
            .flatten()
            .filter(|e| e.incident.action == Action::Trigger)
            .min_by_key(|e| e.seq)
            .map(|e| (e.target.clone(), e.incident.incident_id.clone()));
        let Some((target, incident_id)) = oldest else {
            return Ok(Vec::new());
        };
        let mut gone = Vec::new();
        if let Some(queue) = self.queues.get_mut(&target) {
            let (drop, keep): (VecDeque<Entry>, VecDeque<Entry>) = std::mem::take(queue)
                .into_iter()
                .partition(|e| e.incident.incident_id == incident_id);
            *queue = keep;
            gone.extend(drop);
        }
        for e in &gone {
            remove(&self.path(e.seq))?;
        }
        self.dropped.push_back((target, incident_id));
        if self.dropped.len() > self.capacity {
            self.dropped.pop_front();
        }
        Ok(gone)
    }

    /// The next delivery of `target`.
    pub fn head(&self, target: &str) -> Option<&Entry> {
        self.queues.get(target)?.front()
    }

    /// Removes (from memory and disk) the next delivery of `target`.
    pub fn pop(&mut self, target: &str) -> Result<Option<Entry>, OutboxError> {
        let Some(entry) = self.queues.get_mut(target).and_then(VecDeque::pop_front) else {
            return Ok(None);
        };
        remove(&self.path(entry.seq))?;
        Ok(Some(entry))
    }
}

fn remove(path: &Path) -> Result<(), OutboxError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(at(path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Rule, Severity};

    fn incident(id: &str, action: &str) -> Incident {
        let action = Action::parse(action).expect("trigger or resolve");
        let mut i = Incident::service(
            Rule::Outage,
            Severity::Critical,
            id,
            "acme",
            id,
            action,
            1_793_613_600_000,
            1_793_613_660_000,
            None,
            format!("{id} down"),
        );
        i.incident_id = id.to_owned();
        i
    }

    #[test]
    fn survives_reopen_in_order_and_skips_pending_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Outbox::open(dir.path(), 10).unwrap();
        assert_eq!(
            o.push("pd", incident("a", "trigger")).unwrap(),
            (true, vec![])
        );
        assert_eq!(
            o.push("pd", incident("a", "trigger")).unwrap(),
            (false, vec![])
        );
        o.push("pd", incident("a", "resolve")).unwrap();
        o.push("hook", incident("a", "trigger")).unwrap();
        assert_eq!(
            o.pop("pd").unwrap().unwrap().incident,
            incident("a", "trigger")
        );
        drop(o);
        let (o, corrupt) = Outbox::open(dir.path(), 10).unwrap();
        assert!(corrupt.is_empty());
        assert_eq!(o.len(), 2);
        assert_eq!(o.head("pd").unwrap().incident, incident("a", "resolve"));
        assert_eq!(o.head("hook").unwrap().incident, incident("a", "trigger"));
    }

    /// Entries written before incidents were typed (the record as a JSON
    /// value, keys sorted) are read back as incidents.
    #[test]
    fn reads_entries_written_as_json_values() {
        let dir = tempfile::tempdir().unwrap();
        let record = serde_json::to_value(incident("a", "trigger")).unwrap();
        let entry = serde_json::json!({"target": "pd", "incident": record});
        std::fs::write(
            dir.path().join(format!("{:020}.json", 7)),
            entry.to_string(),
        )
        .unwrap();
        let (o, corrupt) = Outbox::open(dir.path(), 10).unwrap();
        assert!(corrupt.is_empty());
        let head = o.head("pd").unwrap();
        assert_eq!((head.seq, &head.incident), (7, &incident("a", "trigger")));
    }

    #[test]
    fn bounded_drops_oldest_and_sets_aside_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Outbox::open(dir.path(), 2).unwrap();
        o.push("pd", incident("a", "trigger")).unwrap();
        o.push("hook", incident("b", "trigger")).unwrap();
        let (_, dropped) = o.push("hook", incident("c", "trigger")).unwrap();
        assert_eq!(dropped[0].incident, incident("a", "trigger"));
        assert_eq!((o.pending("pd"), o.pending("hook")), (0, 2));
        std::fs::write(o.path(1), b"{truncated").unwrap();
        drop(o);
        let (o, corrupt) = Outbox::open(dir.path(), 2).unwrap();
        assert_eq!(corrupt.len(), 1);
        assert_eq!(o.len(), 1);
        assert_eq!(o.head("hook").unwrap().incident, incident("c", "trigger"));
    }

    #[test]
    fn dropping_when_full_never_separates_a_trigger_from_its_resolve() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Outbox::open(dir.path(), 2).unwrap();
        o.push("pd", incident("a", "trigger")).unwrap();
        o.push("pd", incident("b", "trigger")).unwrap();
        // Full: "a" goes, trigger and resolve together.
        let (_, dropped) = o.push("pd", incident("a", "resolve")).unwrap();
        let gone: Vec<_> = dropped.iter().map(|e| e.incident.clone()).collect();
        assert_eq!(gone, [incident("a", "trigger"), incident("a", "resolve")]);
        // "b" is delivered; its resolve arrives while two triggers wait.
        assert_eq!(
            o.pop("pd").unwrap().unwrap().incident,
            incident("b", "trigger")
        );
        o.push("pd", incident("c", "trigger")).unwrap();
        o.push("pd", incident("d", "trigger")).unwrap();
        let (queued, dropped) = o.push("pd", incident("b", "resolve")).unwrap();
        assert!(queued);
        // The oldest trigger ("c") went, never the resolve of delivered "b".
        assert_eq!(dropped.len(), 1);
        assert_eq!(dropped[0].incident, incident("c", "trigger"));
        assert_eq!(o.head("pd").unwrap().incident, incident("d", "trigger"));
        assert_eq!(o.pending("pd"), 2);
        // A resolve of a dropped trigger is not queued.
        for id in ["a", "c"] {
            assert_eq!(
                o.push("pd", incident(id, "resolve")).unwrap(),
                (false, vec![])
            );
        }
    }
}
