//! A durable, bounded outbox: one file per pending delivery in a directory,
//! written with write + fsync + rename, removed once delivered. After a restart
//! the pending deliveries are read back in their original order.

use std::collections::{BTreeMap, VecDeque};
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

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

/// One pending delivery: which target, and the incident record (contract JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Position in the outbox (file name); increases with every entry.
    #[serde(skip)]
    pub seq: u64,
    /// Delivery target id.
    pub target: String,
    /// The incident record.
    pub incident: serde_json::Value,
}

impl Entry {
    /// `incident_id/action`, to skip an action already pending for the same target.
    fn key(&self) -> (String, String) {
        let field = |k: &str| self.incident[k].as_str().unwrap_or_default().to_owned();
        (field("incident_id"), field("action"))
    }
}

/// Pending deliveries per target, in order, mirrored on disk.
pub struct Outbox {
    dir: PathBuf,
    capacity: usize,
    queues: BTreeMap<String, VecDeque<Entry>>,
    next_seq: u64,
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
    /// for that target (returns `false` then). When full, the oldest pending
    /// delivery is dropped and returned, so the caller can report it.
    pub fn push(
        &mut self,
        target: &str,
        incident: serde_json::Value,
    ) -> Result<(bool, Option<Entry>), OutboxError> {
        let entry = Entry {
            seq: self.next_seq,
            target: target.to_owned(),
            incident,
        };
        let queue = self.queues.entry(target.to_owned()).or_default();
        if queue.iter().any(|e| e.key() == entry.key()) {
            return Ok((false, None));
        }
        let path = self.path(entry.seq);
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(&entry).unwrap_or_default();
        let mut file = File::create(&tmp).map_err(at(&tmp))?;
        file.write_all(&bytes).map_err(at(&tmp))?;
        file.sync_all().map_err(at(&tmp))?;
        fs::rename(&tmp, &path).map_err(at(&path))?;
        self.next_seq += 1;
        self.queues
            .entry(target.to_owned())
            .or_default()
            .push_back(entry);
        let dropped = if self.len() > self.capacity {
            self.drop_oldest()?
        } else {
            None
        };
        Ok((true, dropped))
    }

    fn drop_oldest(&mut self) -> Result<Option<Entry>, OutboxError> {
        let oldest = self
            .queues
            .iter()
            .filter_map(|(t, q)| Some((q.front()?.seq, t.clone())))
            .min();
        match oldest {
            Some((_, target)) => self.pop(&target),
            None => Ok(None),
        }
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
        let path = self.path(entry.seq);
        match fs::remove_file(&path) {
            Ok(()) => Ok(Some(entry)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Some(entry)),
            Err(e) => Err(at(&path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn incident(id: &str, action: &str) -> serde_json::Value {
        json!({"incident_id": id, "action": action})
    }

    #[test]
    fn survives_reopen_in_order_and_skips_pending_repeats() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Outbox::open(dir.path(), 10).unwrap();
        assert_eq!(
            o.push("pd", incident("a", "trigger")).unwrap(),
            (true, None)
        );
        assert_eq!(
            o.push("pd", incident("a", "trigger")).unwrap(),
            (false, None)
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

    #[test]
    fn bounded_drops_oldest_and_sets_aside_corrupt_files() {
        let dir = tempfile::tempdir().unwrap();
        let (mut o, _) = Outbox::open(dir.path(), 2).unwrap();
        o.push("pd", incident("a", "trigger")).unwrap();
        o.push("hook", incident("b", "trigger")).unwrap();
        let (_, dropped) = o.push("hook", incident("c", "trigger")).unwrap();
        assert_eq!(dropped.unwrap().incident, incident("a", "trigger"));
        assert_eq!((o.pending("pd"), o.pending("hook")), (0, 2));
        std::fs::write(o.path(1), b"{truncated").unwrap();
        drop(o);
        let (o, corrupt) = Outbox::open(dir.path(), 2).unwrap();
        assert_eq!(corrupt.len(), 1);
        assert_eq!(o.len(), 1);
        assert_eq!(o.head("hook").unwrap().incident, incident("c", "trigger"));
    }
}
