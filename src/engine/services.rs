//! The availability timelines, one per configured service.

use std::collections::BTreeMap;

use super::availability::ServiceTimeline;
use crate::config::{IdIndex, index};

/// The timelines in id order, with an index by id. The engine finds one for
/// every monitoring row, so the index is the config's kind ([`IdIndex`]),
/// not an ordered map, whose search compared several strings: its keys come
/// from the config's services, never from input.
#[derive(Debug, Clone)]
pub struct Services {
    timelines: Vec<ServiceTimeline>,
    index: IdIndex,
}

impl Services {
    /// The timelines, ordered by id; of two with one id the last is kept.
    pub fn new(timelines: impl IntoIterator<Item = ServiceTimeline>) -> Self {
        let by_id: BTreeMap<String, ServiceTimeline> = (timelines.into_iter())
            .map(|t| (t.id().to_owned(), t))
            .collect();
        Services {
            index: index(by_id.keys()),
            timelines: by_id.into_values().collect(),
        }
    }

    /// The timeline of service `id`.
    pub fn get(&self, id: &str) -> Option<&ServiceTimeline> {
        self.index.get(id).and_then(|i| self.timelines.get(i))
    }

    pub(super) fn get_mut(&mut self, id: &str) -> Option<&mut ServiceTimeline> {
        self.index.get(id).and_then(|i| self.timelines.get_mut(i))
    }

    /// `(id, timeline)` in id order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ServiceTimeline)> {
        self.into_iter()
    }

    /// Whether there is no timeline (no service configured).
    pub fn is_empty(&self) -> bool {
        self.timelines.is_empty()
    }

    /// The timelines in id order.
    pub fn values(&self) -> std::slice::Iter<'_, ServiceTimeline> {
        self.timelines.iter()
    }

    pub(super) fn values_mut(&mut self) -> std::slice::IterMut<'_, ServiceTimeline> {
        self.timelines.iter_mut()
    }
}

/// As a map's: panics when no service has the id.
impl std::ops::Index<&str> for Services {
    type Output = ServiceTimeline;
    fn index(&self, id: &str) -> &ServiceTimeline {
        self.get(id)
            .unwrap_or_else(|| panic!("no timeline for service {id:?}"))
    }
}

/// A timeline with its id.
type WithId<'a> = fn(&'a ServiceTimeline) -> (&'a str, &'a ServiceTimeline);

impl<'a> IntoIterator for &'a Services {
    type Item = (&'a str, &'a ServiceTimeline);
    type IntoIter = std::iter::Map<std::slice::Iter<'a, ServiceTimeline>, WithId<'a>>;
    fn into_iter(self) -> Self::IntoIter {
        self.timelines.iter().map(|t| (t.id(), t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::engine::Engine;
    use std::path::Path;
    use std::sync::Arc;

    #[test]
    fn timelines_are_found_by_id_and_listed_in_id_order() {
        let mut text = String::from("burn_alerts = []\n[[customers]]\nid = \"c\"\n");
        for id in ["web", "api", "db2", "db"] {
            text += &format!("[[services]]\nid = \"{id}\"\ncustomer = \"c\"\n");
        }
        let config = Config::parse(&text, Path::new("t.toml")).expect("config");
        let engine = Engine::new(Arc::new(config), "tickets");
        let services = engine.services();
        let ids: Vec<&str> = services.iter().map(|(id, _)| id).collect();
        assert_eq!(ids, ["api", "db", "db2", "web"]);
        for id in ids {
            assert_eq!(services.get(id).map(ServiceTimeline::id), Some(id));
            assert_eq!(services[id].id(), id);
        }
        assert!(services.get("we").is_none() && services.get("").is_none());
    }

    #[test]
    fn of_two_timelines_with_one_id_the_last_is_kept() {
        let text = "burn_alerts = []\n[[customers]]\nid = \"c\"\n[[services]]\nid = \"web\"\ncustomer = \"c\"\n";
        let config = Config::parse(text, Path::new("t.toml")).expect("config");
        let cfg = &config.services[0];
        let timeline = || {
            let hours = crate::engine::service_hours(&config, cfg);
            ServiceTimeline::new(cfg, hours, 60_000, &config.burn_alerts.clone().into())
        };
        let mut probed = timeline();
        probed.probe(0, "a", crate::model::ProbeStatus::Up, &mut Vec::new());
        let services = Services::new([timeline(), probed]);
        assert_eq!(services.values().count(), 1);
        assert!(services["web"].cursor().is_some());
    }
}
