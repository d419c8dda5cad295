//! A service's probe sources: the latest status of each and when it was seen.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::ids::{FEW, same};
use crate::model::ProbeStatus;
use crate::time::Millis;

/// The latest `(status, ts)` of each probe source, sorted by name. The
/// timeline reads every entry at each step of its walk (staleness deadlines,
/// the state): on a `Vec` a scan of contiguous memory, about half the
/// instructions of a `BTreeMap`'s iterator. Serialised as the map it
/// replaced, so checkpoints keep their form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sources(Vec<(String, (ProbeStatus, Millis))>);

impl Sources {
    /// Records `status` seen at `ts` for `source`.
    pub fn set(&mut self, source: &str, status: ProbeStatus, ts: Millis) {
        // A service has a few probe sources: scanned, without a `memcmp`
        // call per step of a search.
        if self.0.len() <= FEW
            && let Some((_, slot)) = self.0.iter_mut().find(|(name, _)| same(name, source))
        {
            *slot = (status, ts);
            return;
        }
        match self
            .0
            .binary_search_by(|(name, _)| name.as_str().cmp(source))
        {
            Ok(i) => self.0[i].1 = (status, ts),
            Err(i) => self.0.insert(i, (source.to_owned(), (status, ts))),
        }
    }

    /// `(status, ts)` of every source, in name order.
    pub fn values(&self) -> impl Iterator<Item = &(ProbeStatus, Millis)> {
        self.0.iter().map(|(_, v)| v)
    }
}

impl Serialize for Sources {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(name, v)| (name, v)))
    }
}

impl<'de> Deserialize<'de> for Sources {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Through the map: sorted, and a repeated name keeps its last value,
        // as it did when the field was a `BTreeMap`.
        let map = BTreeMap::<String, (ProbeStatus, Millis)>::deserialize(d)?;
        Ok(Sources(map.into_iter().collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_stay_sorted_and_serialise_as_the_map_they_replaced() {
        let mut sources = Sources::default();
        sources.set("us-1", ProbeStatus::Up, 3);
        sources.set("ap-1", ProbeStatus::Down, 1);
        sources.set("eu-1", ProbeStatus::Up, 2);
        sources.set("ap-1", ProbeStatus::Up, 4);
        let map: BTreeMap<String, (ProbeStatus, Millis)> = [
            ("ap-1".to_owned(), (ProbeStatus::Up, 4)),
            ("eu-1".to_owned(), (ProbeStatus::Up, 2)),
            ("us-1".to_owned(), (ProbeStatus::Up, 3)),
        ]
        .into();
        let values: Vec<_> = sources.values().copied().collect();
        assert_eq!(values, map.values().copied().collect::<Vec<_>>());
        let json = serde_json::to_string(&sources).expect("serialise");
        assert_eq!(json, serde_json::to_string(&map).expect("serialise"));
        let back: Sources = serde_json::from_str(&json).expect("deserialise");
        assert_eq!(back, sources);
        let repeated = r#"{"b":["up",1],"a":["down",2],"b":["down",3]}"#;
        let read: Sources = serde_json::from_str(repeated).expect("deserialise");
        let expected: BTreeMap<String, (ProbeStatus, Millis)> =
            serde_json::from_str(repeated).expect("deserialise");
        assert_eq!(read.0, expected.into_iter().collect::<Vec<_>>());
    }
}
