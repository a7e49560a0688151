//! At-least-once offset tracking: a partition's offset may be committed only up to the last message
//! before the oldest one still being handled (handlers of one partition can finish out of order).

use std::collections::{BTreeSet, HashMap};

#[derive(Default, Debug)]
struct Partition {
    in_flight: BTreeSet<i64>,
    max_seen: Option<i64>,
    stored: Option<i64>,
}

/// Per-partition in-flight offsets of one consumer.
#[derive(Default, Debug)]
pub struct OffsetTracker {
    partitions: HashMap<i32, Partition>,
}

impl OffsetTracker {
    /// A message was handed to the handler.
    pub fn start(&mut self, partition: i32, offset: i64) {
        let p = self.partitions.entry(partition).or_insert_with(|| Partition {
            // everything before the first message we were given is not ours to commit
            stored: Some(offset - 1),
            ..Default::default()
        });
        p.in_flight.insert(offset);
        p.max_seen = Some(p.max_seen.map_or(offset, |m| m.max(offset)));
    }

    /// A message is done (acked or dead-lettered). Returns the offset to store — the last message of the
    /// partition with everything before it done — when it moved forward.
    pub fn finish(&mut self, partition: i32, offset: i64) -> Option<i64> {
        let p = self.partitions.get_mut(&partition)?;
        if !p.in_flight.remove(&offset) {
            return None;
        }
        let done_through = match p.in_flight.first() {
            Some(&oldest) => oldest - 1,
            None => p.max_seen?,
        };
        if p.stored.is_none_or(|s| done_through > s) {
            p.stored = Some(done_through);
            Some(done_through)
        } else {
            None
        }
    }

    /// The partition moved to another consumer: forget it (its in-flight messages are redelivered there).
    pub fn revoke(&mut self, partition: i32) {
        self.partitions.remove(&partition);
    }

    pub fn in_flight(&self) -> usize {
        self.partitions.values().map(|p| p.in_flight.len()).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_only_contiguous_progress() {
        let mut t = OffsetTracker::default();
        for o in 10..15 {
            t.start(0, o);
        }
        assert_eq!(t.finish(0, 12), None); // 10 and 11 still running
        assert_eq!(t.finish(0, 10), Some(10));
        assert_eq!(t.finish(0, 11), Some(12));
        assert_eq!(t.finish(0, 14), None);
        assert_eq!(t.finish(0, 13), Some(14));
        assert_eq!(t.in_flight(), 0);
        assert_eq!(t.finish(0, 13), None, "finishing twice is ignored");
    }

    #[test]
    fn partitions_are_independent_and_revocable() {
        let mut t = OffsetTracker::default();
        t.start(0, 5);
        t.start(1, 7);
        assert_eq!(t.finish(1, 7), Some(7));
        t.revoke(0);
        assert_eq!(t.finish(0, 5), None);
        assert_eq!(t.in_flight(), 0);
    }
}
