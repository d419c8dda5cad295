//! Where tickets live: fixed-size chunks of slots (growth never copies or
//! doubles the whole set), an index from id to slot that stores only the slot
//! (the id is hashed from the ticket itself), and one timer per ticket, its
//! earliest pending warning or breach, keyed by slot. An open ticket costs
//! about 400 heap bytes in all, its dedup id included (`cargo bench --bench
//! memory`; 665 with a map by id string and four timers keyed by id).

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};

use hashbrown::HashTable;

use super::Ticket;
use crate::time::Millis;

/// A ticket's place in the store; stable while the ticket is kept.
pub(super) type Slot = u32;

const CHUNK: usize = 1024;

#[derive(Debug, Clone, Default)]
pub(super) struct TicketStore {
    chunks: Vec<Vec<Option<Ticket>>>,
    free: Vec<Slot>,
    /// Slot of each ticket, by the hash of its id.
    index: HashTable<Slot>,
    /// Random per process, so ids cannot be chosen to collide.
    hasher: RandomState,
    /// (instant, slot) of every ticket's [`Ticket::next_due`].
    timers: BTreeSet<(Millis, Slot)>,
    len: usize,
}

impl TicketStore {
    pub(super) fn len(&self) -> usize {
        self.len
    }

    /// The slot of ticket `id`.
    pub(super) fn slot(&self, id: &str) -> Option<Slot> {
        let hash = self.hasher.hash_one(id);
        self.index.find(hash, |&s| self.get(s).id == id).copied()
    }

    /// The ticket in `slot` (which must hold one).
    pub(super) fn get(&self, slot: Slot) -> &Ticket {
        let (c, i) = split(slot);
        match self.chunks.get(c).and_then(|chunk| chunk.get(i)) {
            Some(Some(t)) => t,
            _ => unreachable!("slot {slot} is not a kept ticket"),
        }
    }

    /// The ticket with id `id`.
    pub(super) fn by_id(&self, id: &str) -> Option<&Ticket> {
        self.slot(id).map(|s| self.get(s))
    }

    /// Every ticket, in no particular order.
    pub(super) fn iter(&self) -> impl Iterator<Item = (Slot, &Ticket)> {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .filter_map(move |(i, t)| Some(((c * CHUNK + i) as Slot, t.as_ref()?)))
        })
    }

    /// Keeps a ticket whose id is not kept yet, and arms its timer.
    pub(super) fn insert(&mut self, ticket: Ticket) -> Slot {
        let due = ticket.next_due();
        let hash = self.hasher.hash_one(ticket.id.as_str());
        let slot = match self.free.pop() {
            Some(slot) => {
                let (c, i) = split(slot);
                self.chunks[c][i] = Some(ticket);
                slot
            }
            None => {
                if self.chunks.last().is_none_or(|c| c.len() == CHUNK) {
                    self.chunks.push(Vec::with_capacity(CHUNK));
                }
                let c = self.chunks.len() - 1;
                let chunk = &mut self.chunks[c];
                chunk.push(Some(ticket));
                (c * CHUNK + chunk.len() - 1) as Slot
            }
        };
        let Self {
            index,
            hasher,
            chunks,
            ..
        } = self;
        index.insert_unique(hash, slot, |&s| {
            let (c, i) = split(s);
            let id = chunks[c][i].as_ref().map_or("", |t| t.id.as_str());
            hasher.hash_one(id)
        });
        if let Some(at) = due {
            self.timers.insert((at, slot));
        }
        self.len += 1;
        slot
    }

    /// Forgets the ticket in `slot` and its timer.
    pub(super) fn remove(&mut self, slot: Slot) -> Ticket {
        let (c, i) = split(slot);
        let Some(ticket) = self.chunks[c][i].take() else {
            unreachable!("slot {slot} is not a kept ticket")
        };
        let hash = self.hasher.hash_one(ticket.id.as_str());
        if let Ok(entry) = self.index.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
        if let Some(at) = ticket.next_due() {
            self.timers.remove(&(at, slot));
        }
        self.free.push(slot);
        self.len -= 1;
        ticket
    }

    /// Changes the ticket in `slot` and moves its timer to its new next due instant.
    pub(super) fn update<R>(&mut self, slot: Slot, change: impl FnOnce(&mut Ticket) -> R) -> R {
        let (c, i) = split(slot);
        let Some(ticket) = self.chunks[c][i].as_mut() else {
            unreachable!("slot {slot} is not a kept ticket")
        };
        let before = ticket.next_due();
        let r = change(ticket);
        let after = ticket.next_due();
        if before != after {
            if let Some(at) = before {
                self.timers.remove(&(at, slot));
            }
            if let Some(at) = after {
                self.timers.insert((at, slot));
            }
        }
        r
    }

    /// The earliest timer's instant.
    pub(super) fn first_due(&self) -> Option<Millis> {
        self.timers.first().map(|(at, _)| *at)
    }

    /// Takes the timers due at `at`, as slots in ticket id order (the order
    /// incidents of one instant are emitted in). Each is re-armed by the next
    /// [`TicketStore::update`] of its ticket.
    pub(super) fn take_due_at(&mut self, at: Millis) -> Vec<Slot> {
        let mut slots = Vec::new();
        while let Some(&(t, slot)) = self.timers.first()
            && t == at
        {
            self.timers.pop_first();
            slots.push(slot);
        }
        slots.sort_by(|a, b| self.get(*a).id.cmp(&self.get(*b).id));
        slots
    }
}

fn split(slot: Slot) -> (usize, usize) {
    (slot as usize / CHUNK, slot as usize % CHUNK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tickets::Clock;
    use crate::model::{Priority, TicketKind};

    fn ticket(id: &str, due: Option<Millis>) -> Ticket {
        let clock = Clock {
            breach_due: due,
            ..Clock::default()
        };
        Ticket {
            partition: 0,
            id: id.into(),
            customer: "c".into(),
            service: None,
            kind: TicketKind::Incident,
            priority: Priority::P1,
            created: 0,
            status: "new".into(),
            sla: None,
            clocks: [clock, Clock::default()],
        }
    }

    #[test]
    fn slots_are_found_reused_and_timers_follow_their_tickets() {
        let mut store = TicketStore::default();
        // More than two chunks, and due instants shared by many tickets.
        for i in 0..2500 {
            store.insert(ticket(&format!("T{i}"), Some(i % 7)));
        }
        assert_eq!(store.len(), 2500);
        for i in (0..2500).step_by(3) {
            let slot = store.slot(&format!("T{i}")).expect("kept");
            assert_eq!(store.remove(slot).id, format!("T{i}"));
        }
        assert!(store.slot("T0").is_none() && store.slot("T1").is_some());
        // Freed slots are reused; the new tickets are found by id.
        for i in 0..100 {
            store.insert(ticket(&format!("N{i}"), None));
        }
        assert_eq!(store.len(), 2500 - 834 + 100);
        assert_eq!(store.iter().count(), store.len());
        for (slot, t) in store.iter() {
            assert_eq!(store.slot(&t.id), Some(slot));
        }
        // An update moves the timer; removed tickets have none.
        let t1 = store.slot("T1").expect("kept");
        store.update(t1, |t| t.clocks[0].breach_due = Some(100));
        let mut fired = Vec::new();
        while let Some(at) = store.first_due() {
            for slot in store.take_due_at(at) {
                fired.push((at, store.get(slot).id.to_string()));
            }
        }
        let mut expected: Vec<(Millis, String)> = (0..2500)
            .filter(|i| i % 3 != 0 && *i != 1)
            .map(|i| (i % 7, format!("T{i}")))
            .chain([(100, "T1".to_string())])
            .collect();
        expected.sort();
        assert_eq!(fired, expected);
    }
}
