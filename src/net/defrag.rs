//! Bounded IPv4 and IPv6 fragment reassembly.
//!
//! Fragments are keyed by source, destination, protocol (next header) and identification.
//! Where fragments overlap the first copy wins, as in TCP reassembly, so a later fragment can
//! never rewrite bytes already accepted. Memory is bounded by the number of datagrams being
//! rebuilt and the bytes they hold; over a limit, the oldest incomplete datagram is dropped.
//! Time is capture time: a datagram whose first fragment is older than the timeout is dropped.

use crate::limits::Limits;
use crate::time::Timestamp;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::ops::Range;

/// The largest datagram payload rebuilt; fragments reaching past it are an attack or garbage.
pub const MAX_DATAGRAM_LEN: usize = 65_535;

/// Most disjoint pieces one datagram may be in before it is dropped (tiny-fragment floods).
const MAX_PIECES_PER_DATAGRAM: usize = 1024;

/// What identifies the fragments of one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FragmentKey {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// IPv4 protocol, or the next header of the IPv6 fragment header.
    pub protocol: u8,
    /// IPv4 identification (16 bits) or IPv6 fragment identification (32 bits).
    pub id: u32,
}

/// One fragment's place in its datagram.
#[derive(Debug, Clone, Copy)]
pub struct Fragment<'a> {
    /// Which datagram it belongs to.
    pub key: FragmentKey,
    /// Byte offset of `data` in the datagram's payload.
    pub offset: usize,
    /// Whether more fragments follow (false for the last one).
    pub more: bool,
    /// The fragment's payload bytes.
    pub data: &'a [u8],
}

/// The result of adding one fragment.
#[derive(Debug, Clone, Copy)]
pub struct Added<'a> {
    /// The rebuilt datagram payload, when this fragment completed it.
    pub datagram: Option<&'a [u8]>,
    /// Incomplete datagrams dropped while adding it (timeouts, limits, invalid fragments).
    pub dropped: u64,
}

/// A datagram being rebuilt.
#[derive(Debug)]
struct PartialDatagram {
    /// Matches the entry in the arrival queue that stands for this datagram.
    serial: u64,
    first_seen: Timestamp,
    bytes: Vec<u8>,
    /// Byte ranges received, sorted, disjoint and not adjacent.
    received: Vec<Range<usize>>,
    /// Payload length, once the last fragment has been seen.
    total_len: Option<usize>,
}

impl PartialDatagram {
    fn is_complete(&self) -> bool {
        match (self.total_len, self.received.as_slice()) {
            (Some(total), [only]) => only.start == 0 && only.end >= total,
            _ => false,
        }
    }

    /// Copies the parts of `data` (at `offset`) not received before, and records them.
    fn insert(&mut self, offset: usize, data: &[u8]) {
        let end = offset + data.len();
        if self.bytes.len() < end {
            self.bytes.resize(end, 0);
        }
        let mut cursor = offset;
        let copy = |from: usize, to: usize, bytes: &mut Vec<u8>| {
            if let (Some(dst), Some(src)) = (
                bytes.get_mut(from..to),
                data.get(from - offset..to - offset),
            ) {
                dst.copy_from_slice(src);
            }
        };
        for r in &self.received {
            if r.end <= cursor {
                continue;
            }
            if r.start >= end {
                break;
            }
            if r.start > cursor {
                copy(cursor, r.start, &mut self.bytes);
            }
            cursor = cursor.max(r.end);
            if cursor >= end {
                break;
            }
        }
        if cursor < end {
            copy(cursor, end, &mut self.bytes);
        }
        // Merge [offset, end) into the sorted range list.
        let first = self.received.partition_point(|r| r.end < offset);
        let last = self.received.partition_point(|r| r.start <= end);
        let mut merged = offset..end;
        if let Some(overlapping) = self.received.get(first..last)
            && let (Some(a), Some(b)) = (overlapping.first(), overlapping.last())
        {
            merged = a.start.min(offset)..b.end.max(end);
        }
        if first <= last && last <= self.received.len() {
            self.received.splice(first..last, [merged]);
        }
    }
}

/// Rebuilds fragmented IP datagrams within fixed memory and time bounds.
#[derive(Debug)]
pub struct Defragmenter {
    pending: HashMap<FragmentKey, PartialDatagram, foldhash::fast::RandomState>,
    /// Datagrams in order of their first fragment; entries whose serial no longer matches
    /// a pending datagram are stale and skipped.
    arrival: VecDeque<(u64, FragmentKey)>,
    held_bytes: usize,
    max_datagrams: usize,
    max_bytes: usize,
    timeout_secs: u64,
    next_serial: u64,
    /// The last datagram completed, lent out by [`Defragmenter::add`].
    completed: Vec<u8>,
}

impl Defragmenter {
    /// A defragmenter bounded by `limits`' fragment settings.
    pub fn new(limits: &Limits) -> Self {
        Defragmenter {
            pending: HashMap::with_hasher(foldhash::fast::RandomState::default()),
            arrival: VecDeque::new(),
            held_bytes: 0,
            max_datagrams: limits.max_fragment_sets,
            max_bytes: limits.max_fragment_bytes,
            timeout_secs: limits.fragment_timeout_secs,
            next_serial: 0,
            completed: Vec::new(),
        }
    }

    /// Adds a fragment seen at `ts`; returns the datagram payload when it is complete.
    pub fn add(&mut self, ts: Timestamp, frag: Fragment<'_>) -> Added<'_> {
        let mut dropped = self.expire(ts);
        let key = frag.key;
        let Some(end) = frag
            .offset
            .checked_add(frag.data.len())
            .filter(|&e| e <= MAX_DATAGRAM_LEN)
        else {
            // Reaching past the largest datagram: the whole datagram is invalid.
            self.remove(&key);
            return Added {
                datagram: None,
                dropped: dropped + 1,
            };
        };
        if frag.data.is_empty() && frag.more {
            return Added {
                datagram: None,
                dropped,
            };
        }
        if !self.pending.contains_key(&key) {
            while self.pending.len() >= self.max_datagrams {
                if !self.evict_oldest(None) {
                    break;
                }
                dropped += 1;
            }
            if self.pending.len() >= self.max_datagrams {
                return Added {
                    datagram: None,
                    dropped: dropped + 1,
                };
            }
            let serial = self.next_serial;
            self.next_serial += 1;
            self.pending.insert(
                key,
                PartialDatagram {
                    serial,
                    first_seen: ts,
                    bytes: Vec::new(),
                    received: Vec::new(),
                    total_len: None,
                },
            );
            self.arrival.push_back((serial, key));
            self.compact_arrival();
        }
        // Decide what part of the fragment is usable, and how much memory it needs.
        let Some(set) = self.pending.get_mut(&key) else {
            return Added {
                datagram: None,
                dropped,
            };
        };
        let mut end = end;
        if !frag.more {
            match set.total_len {
                // Another "last" fragment with a different length: the first one stands.
                Some(total) if total != end => {
                    return Added {
                        datagram: None,
                        dropped,
                    };
                }
                _ => set.total_len = Some(end),
            }
        }
        if let Some(total) = set.total_len {
            end = end.min(total);
        }
        if end <= frag.offset && !frag.data.is_empty() {
            return self.finish_add(key, dropped);
        }
        let data = frag.data.get(..end - frag.offset).unwrap_or(&[]);
        let growth = end.saturating_sub(set.bytes.len());
        while self.held_bytes + growth > self.max_bytes {
            if !self.evict_oldest(Some(&key)) {
                // This datagram alone is over the limit.
                self.remove(&key);
                return Added {
                    datagram: None,
                    dropped: dropped + 1,
                };
            }
            dropped += 1;
        }
        let Some(set) = self.pending.get_mut(&key) else {
            return Added {
                datagram: None,
                dropped,
            };
        };
        let before = set.bytes.len();
        if !data.is_empty() {
            set.insert(frag.offset, data);
        }
        self.held_bytes += set.bytes.len() - before;
        if set.received.len() > MAX_PIECES_PER_DATAGRAM {
            self.remove(&key);
            return Added {
                datagram: None,
                dropped: dropped + 1,
            };
        }
        self.finish_add(key, dropped)
    }

    /// Hands out the datagram `key` if it is complete.
    fn finish_add(&mut self, key: FragmentKey, dropped: u64) -> Added<'_> {
        if !self
            .pending
            .get(&key)
            .is_some_and(PartialDatagram::is_complete)
        {
            return Added {
                datagram: None,
                dropped,
            };
        }
        let Some(set) = self.pending.remove(&key) else {
            return Added {
                datagram: None,
                dropped,
            };
        };
        self.held_bytes -= set.bytes.len();
        self.completed = set.bytes;
        self.completed.truncate(set.total_len.unwrap_or(0));
        Added {
            datagram: Some(&self.completed),
            dropped,
        }
    }

    /// Drops every incomplete datagram (at the end of the input); returns how many.
    pub fn drain(&mut self) -> u64 {
        let n = self.pending.len() as u64;
        self.pending.clear();
        self.arrival.clear();
        self.held_bytes = 0;
        n
    }

    /// Datagrams waiting for more fragments.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Bytes held by incomplete datagrams.
    pub fn held_bytes(&self) -> usize {
        self.held_bytes
    }

    /// Drops datagrams whose first fragment is older than the timeout; returns how many.
    fn expire(&mut self, now: Timestamp) -> u64 {
        let timeout_nanos = self.timeout_secs.saturating_mul(1_000_000_000);
        let mut dropped = 0;
        while let Some(&(serial, key)) = self.arrival.front() {
            match self.pending.get(&key) {
                Some(set) if set.serial == serial => {
                    if now.nanos_since(set.first_seen) <= timeout_nanos {
                        break;
                    }
                    self.remove(&key);
                    dropped += 1;
                }
                _ => {}
            }
            self.arrival.pop_front();
        }
        dropped
    }

    /// Drops the oldest pending datagram other than `keep`; false if there is none.
    fn evict_oldest(&mut self, keep: Option<&FragmentKey>) -> bool {
        let mut kept = None;
        let mut evicted = false;
        while let Some((serial, key)) = self.arrival.pop_front() {
            let live = self.pending.get(&key).is_some_and(|s| s.serial == serial);
            if !live {
                continue;
            }
            if Some(&key) == keep {
                kept = Some((serial, key));
                continue;
            }
            self.remove(&key);
            evicted = true;
            break;
        }
        if let Some(entry) = kept {
            self.arrival.push_front(entry);
        }
        evicted
    }

    fn remove(&mut self, key: &FragmentKey) {
        if let Some(set) = self.pending.remove(key) {
            self.held_bytes -= set.bytes.len();
        }
    }

    /// Forgets stale arrival entries once they outnumber live datagrams, so completed
    /// datagrams cannot grow the queue without bound when capture time stands still.
    fn compact_arrival(&mut self) {
        if self.arrival.len() > 2 * self.pending.len() + 64 {
            let pending = &self.pending;
            self.arrival
                .retain(|(serial, key)| pending.get(key).is_some_and(|s| s.serial == *serial));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn key(id: u32) -> FragmentKey {
        FragmentKey {
            src: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            dst: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)),
            protocol: 6,
            id,
        }
    }

    fn frag(id: u32, offset: usize, more: bool, data: &[u8]) -> Fragment<'_> {
        Fragment {
            key: key(id),
            offset,
            more,
            data,
        }
    }

    fn limits(sets: usize, bytes: usize, timeout: u64) -> Limits {
        Limits {
            max_fragment_sets: sets,
            max_fragment_bytes: bytes,
            fragment_timeout_secs: timeout,
            ..Limits::default()
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_parts(secs, 0)
    }

    #[test]
    fn out_of_order_fragments_rebuild_the_datagram() {
        let mut d = Defragmenter::new(&Limits::default());
        assert!(d.add(at(0), frag(1, 16, false, b"CCCC")).datagram.is_none());
        assert!(
            d.add(at(0), frag(1, 0, true, b"AAAAAAAA"))
                .datagram
                .is_none()
        );
        assert_eq!(d.pending(), 1);
        let added = d.add(at(0), frag(1, 8, true, b"BBBBBBBB"));
        assert_eq!(added.datagram, Some(&b"AAAAAAAABBBBBBBBCCCC"[..]));
        assert_eq!(added.dropped, 0);
        assert_eq!((d.pending(), d.held_bytes()), (0, 0));
    }

    #[test]
    fn overlapping_fragments_first_copy_wins() {
        let mut d = Defragmenter::new(&Limits::default());
        d.add(at(0), frag(2, 8, true, b"11111111"));
        // Overlaps the first fragment's bytes on both sides.
        d.add(at(0), frag(2, 4, true, b"xxxxxxxxxxxxxxxx"));
        d.add(at(0), frag(2, 0, true, b"yyyy2222"));
        let added = d.add(at(0), frag(2, 16, false, b"zzzz3333"));
        assert_eq!(added.datagram, Some(&b"yyyyxxxx11111111xxxx3333"[..]));
    }

    #[test]
    fn duplicate_last_fragment_with_other_length_is_ignored() {
        let mut d = Defragmenter::new(&Limits::default());
        d.add(at(0), frag(3, 8, false, b"end!"));
        d.add(at(0), frag(3, 8, false, b"longer end"));
        let added = d.add(at(0), frag(3, 0, true, b"01234567"));
        assert_eq!(added.datagram, Some(&b"01234567end!"[..]));
    }

    #[test]
    fn timeout_is_measured_in_capture_time() {
        let mut d = Defragmenter::new(&limits(16, 1 << 20, 30));
        d.add(at(100), frag(4, 0, true, b"aaaaaaaa"));
        // Within the timeout: still pending.
        assert_eq!(d.add(at(125), frag(5, 0, true, b"bbbbbbbb")).dropped, 0);
        let added = d.add(at(131), frag(4, 8, false, b"late"));
        assert_eq!(added.dropped, 1);
        assert!(added.datagram.is_none());
        assert_eq!(d.pending(), 2);
    }

    #[test]
    fn datagram_limit_drops_the_oldest() {
        let mut d = Defragmenter::new(&limits(2, 1 << 20, 30));
        d.add(at(0), frag(1, 0, true, b"11111111"));
        d.add(at(0), frag(2, 0, true, b"22222222"));
        assert_eq!(d.add(at(0), frag(3, 0, true, b"33333333")).dropped, 1);
        // Datagram 1 is gone: its last fragment does not complete it.
        assert!(d.add(at(0), frag(1, 8, false, b"x")).datagram.is_none());
        // Datagram 3 survived.
        assert_eq!(
            d.add(at(0), frag(3, 8, false, b"y")).datagram,
            Some(&b"33333333y"[..])
        );
    }

    #[test]
    fn byte_limit_drops_the_oldest_then_the_oversized() {
        let mut d = Defragmenter::new(&limits(16, 20, 30));
        d.add(at(0), frag(1, 0, true, b"1111111111111111"));
        let added = d.add(at(0), frag(2, 0, true, b"2222222222222222"));
        assert_eq!(added.dropped, 1);
        assert_eq!(d.held_bytes(), 16);
        // A datagram that alone exceeds the limit is dropped too.
        let added = d.add(at(0), frag(2, 16, true, b"22222222"));
        assert_eq!(added.dropped, 1);
        assert_eq!((d.pending(), d.held_bytes()), (0, 0));
    }

    #[test]
    fn absurd_offsets_are_dropped_and_counted() {
        let mut d = Defragmenter::new(&Limits::default());
        d.add(at(0), frag(9, 0, true, b"aaaaaaaa"));
        let added = d.add(at(0), frag(9, 65_528, false, b"0123456789"));
        assert_eq!(added.dropped, 1);
        assert_eq!(d.pending(), 0);
    }

    #[test]
    fn many_completed_datagrams_at_one_instant_stay_bounded() {
        let mut d = Defragmenter::new(&limits(4, 1 << 20, 30));
        for id in 0..10_000 {
            d.add(at(0), frag(id, 0, true, b"aaaaaaaa"));
            assert!(d.add(at(0), frag(id, 8, false, b"b")).datagram.is_some());
        }
        assert!(d.arrival.len() <= 64 + 2);
        assert_eq!(d.drain(), 0);
    }

    #[test]
    fn tiny_fragment_flood_is_bounded() {
        let mut d = Defragmenter::new(&Limits::default());
        let mut dropped = 0;
        for i in 0..2_000 {
            dropped += d.add(at(0), frag(7, i * 16, true, b"x")).dropped;
        }
        assert_eq!(dropped, 1);
        assert!(d.pending() <= 1);
    }
}
