//! Per-direction TCP stream reassembly: ordered bytes out, holes as gaps of known size.
//!
//! # Semantics
//!
//! Positions are 64-bit offsets from the stream's first byte ([`StreamOffsets`]), read
//! relative to the next expected byte, so wraparound and streams over 4 GiB are exact.
//!
//! - **Start.** After [`Reassembler::syn`]`(seq)` data starts at `seq + 1`. Without a SYN the
//!   first segment with payload, snap-length-missing bytes or a FIN fixes the start at its
//!   sequence number. A later SYN re-anchors the stream only while nothing has been
//!   delivered, held or FINed yet; otherwise it is ignored. Bytes before the start are
//!   dropped as duplicates.
//! - **Delivery.** In-order data is handed out borrowed from the caller's payload (no copy)
//!   whenever it lands exactly at the next expected byte. Out-of-order data is copied into a
//!   map keyed by offset and delivered, each piece with its own capture time, once the hole
//!   before it is filled.
//! - **Overlaps: first copy wins.** Bytes already delivered, declared missing or held are
//!   dropped and counted as duplicates. Where a new copy overlaps held bytes and differs,
//!   the differing bytes count as conflicting. The last [`DEFAULT_HISTORY`] delivered bytes
//!   are also kept (a ring grown lazily, so short streams stay small; see
//!   [`Reassembler::with_history`]) to count conflicting retransmissions of already
//!   delivered data; the fast path pays one `memcpy` of each delivered segment for it.
//! - **Snap length.** `segment(seq, payload, missing, ..)` with `missing > 0` means the bytes
//!   right after `payload` were on the wire but not captured. They are held as a missing
//!   range and delivered as a [`Chunk::Gap`] (with that segment's capture time) as soon as
//!   they are reached in order. A real copy of those bytes replaces the missing range if it
//!   arrives before they are reached.
//! - **FIN.** Its position is `seq + payload.len() + missing`. [`Chunk::Fin`] is delivered once
//!   every byte before it was delivered or declared missing, exactly once. The first FIN seen
//!   fixes the end of the stream: payload beyond it, held bytes beyond it, and a FIN at a
//!   different position are dropped and flagged [`SegmentReport::after_fin`], whether or
//!   not the FIN was delivered yet. A FIN behind already delivered data is ignored (and
//!   flagged the same way).
//! - **ACK grace.** [`Reassembler::peer_ack`] records the highest offset the peer
//!   acknowledged (never beyond a known FIN). When that lies past the next expected byte a
//!   deadline is armed: `ack_grace` further calls of `segment`/`peer_ack` later, every hole
//!   below the acknowledged offset *as recorded when the deadline was armed* becomes a gap
//!   (held data in between is delivered), including the part after the last held byte
//!   (e.g. a lost last segment). Later acknowledgements arm the next deadline once the
//!   current one is settled, so a hole waits at most about twice the grace. The grace exists
//!   because captures reorder packets: an ACK may be captured before the data it covers.
//! - **Buffer limit.** [`Reassembler::buffered`] counts held payload plus a fixed
//!   bookkeeping cost per held piece ([`HELD_PIECE_COST`]), so floods of tiny segments are
//!   bounded too. Before storing a piece that would exceed `max_buffered`, and after each
//!   call, the first hole is declared a gap (counted in `forced_gaps`) and delivery runs up
//!   to the next hole, until the limit holds. A segment larger than the limit thus forces
//!   the holes before it and is then delivered directly.
//! - **Out of window.** A segment starting more than [`WINDOW`] (1 GiB) before or after the
//!   next expected byte is dropped, flagged [`SegmentReport::out_of_window`] and counted; it
//!   most likely belongs to another instance of the connection. Acknowledgements more than
//!   1 GiB ahead are ignored. Snap-length-missing counts are clamped to that window.
//! - **Flush.** [`Reassembler::flush`] declares every hole up to the furthest of held data,
//!   the acknowledged offset and a known FIN as gaps, delivers all held data and a pending
//!   FIN. Afterwards segments continue normally from the new next expected byte.

use super::seq::{SeqNum, StreamOffsets};
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::BTreeMap;

/// How far from the next expected byte a segment or acknowledgement may lie.
pub const WINDOW: u64 = 1 << 30;

/// Bookkeeping bytes charged per held piece against the buffer limit (map node, allocation).
pub const HELD_PIECE_COST: usize = 64;

/// Delivered bytes remembered per direction to detect conflicting retransmissions.
pub const DEFAULT_HISTORY: usize = 4096;

/// What the reassembler hands upward, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunk<'a> {
    /// The next bytes of the stream, with the capture time of the segment that carried them.
    Data {
        /// The bytes.
        bytes: &'a [u8],
        /// Capture time of their segment.
        ts: Timestamp,
    },
    /// The next `len` bytes of the stream were never captured.
    Gap {
        /// Missing bytes.
        len: u64,
        /// Capture time at which the gap was declared.
        ts: Timestamp,
    },
    /// The sender's FIN, reached in order: no more data follows.
    Fin {
        /// Capture time of the FIN segment.
        ts: Timestamp,
    },
}

/// Observations about one segment, for anomalies and statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SegmentReport {
    /// Payload bytes that were already delivered or buffered (retransmission or overlap).
    pub duplicate_bytes: u64,
    /// Overlapping bytes that differ from the copy already held (first copy kept).
    pub conflicting_bytes: u64,
    /// The segment arrived ahead of a hole and was buffered.
    pub out_of_order: bool,
    /// Payload beyond the sender's FIN.
    pub after_fin: bool,
    /// The segment lies more than [`WINDOW`] from the next expected byte and was dropped.
    pub out_of_window: bool,
}

/// Counters per direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReassemblyStats {
    /// Bytes delivered in order.
    pub delivered: u64,
    /// Bytes declared missing.
    pub missing: u64,
    /// Duplicate payload bytes dropped.
    pub duplicate: u64,
    /// Overlapping bytes that differed from the first copy.
    pub conflicting: u64,
    /// Segments that arrived out of order.
    pub out_of_order: u64,
    /// Gaps declared because a buffer limit was reached.
    pub forced_gaps: u64,
    /// Segments dropped for lying too far from the next expected byte.
    pub out_of_window: u64,
}

/// A piece of the stream ahead of the next expected byte.
#[derive(Debug)]
enum Held {
    /// Captured bytes waiting for the hole before them.
    Data { bytes: Box<[u8]>, ts: Timestamp },
    /// Bytes that were on the wire but cut off by the snap length.
    Missing { len: u64, ts: Timestamp },
}

impl Held {
    fn len(&self) -> u64 {
        match self {
            Held::Data { bytes, .. } => bytes.len() as u64,
            Held::Missing { len, .. } => *len,
        }
    }

    fn cost(&self) -> usize {
        match self {
            Held::Data { bytes, .. } => bytes.len() + HELD_PIECE_COST,
            Held::Missing { .. } => HELD_PIECE_COST,
        }
    }
}

/// The acknowledged offset a hole must be filled up to, and the call count it must be filled by.
#[derive(Debug, Clone, Copy)]
struct AckDeadline {
    target: u64,
    at_call: u64,
}

/// The most recently delivered bytes, in a ring that grows on demand up to its capacity.
#[derive(Debug, Default)]
struct History {
    buf: Vec<u8>,
    /// Capacity, a power of two (or zero: disabled).
    cap: usize,
    /// Offset stored at ring index 0 (modulo `cap`).
    anchor: u64,
    /// Offset just past the last recorded byte.
    end: u64,
}

impl History {
    fn new(cap: usize) -> Self {
        let cap = if cap == 0 { 0 } else { cap.next_power_of_two() };
        History {
            cap,
            ..History::default()
        }
    }

    fn index(&self, offset: u64) -> usize {
        (offset.wrapping_sub(self.anchor) as usize) & (self.cap.wrapping_sub(1))
    }

    /// Forgets everything; the next record starts at `offset`.
    fn restart(&mut self, offset: u64) {
        self.buf.clear();
        self.anchor = offset;
        self.end = offset;
    }

    /// Remembers `bytes`, delivered at `offset`.
    fn record(&mut self, offset: u64, bytes: &[u8]) {
        if self.cap == 0 || bytes.is_empty() {
            return;
        }
        if offset != self.end {
            self.restart(offset);
        }
        let mut at = offset;
        let mut rest = bytes;
        if rest.len() >= self.cap {
            // Everything older is overwritten: keep only the tail, ring fully valid.
            let skip = rest.len() - self.cap;
            at += skip as u64;
            rest = rest.get(skip..).unwrap_or_default();
            self.buf.resize(self.cap, 0);
        } else if self.buf.len() < self.cap {
            let take = (self.cap - self.buf.len()).min(rest.len());
            let (head, tail) = rest.split_at(take);
            self.buf.extend_from_slice(head);
            at += take as u64;
            rest = tail;
        }
        if !rest.is_empty() {
            let idx = self.index(at);
            let first = rest.len().min(self.cap - idx);
            let (a, b) = rest.split_at(first);
            if let Some(dst) = self.buf.get_mut(idx..idx + first) {
                dst.copy_from_slice(a);
            }
            if let Some(dst) = self.buf.get_mut(..b.len()) {
                dst.copy_from_slice(b);
            }
        }
        self.end = offset + bytes.len() as u64;
    }

    /// How many of `bytes` (claimed to sit at `offset`) differ from the remembered copy.
    fn count_differences(&self, offset: u64, bytes: &[u8]) -> u64 {
        if self.cap == 0 {
            return 0;
        }
        let valid_from = self.end - self.buf.len() as u64;
        let from = offset.max(valid_from);
        let to = (offset + bytes.len() as u64).min(self.end);
        let mut differing = 0u64;
        let mut at = from;
        while at < to {
            let idx = self.index(at);
            let run = ((to - at) as usize).min(self.cap - idx);
            let start = (at - offset) as usize;
            let (Some(ours), Some(theirs)) =
                (self.buf.get(idx..idx + run), bytes.get(start..start + run))
            else {
                break;
            };
            differing += count_differing(ours, theirs);
            at += run as u64;
        }
        differing
    }
}

fn count_differing(a: &[u8], b: &[u8]) -> u64 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as u64
}

/// Rebuilds one direction of a TCP connection.
pub struct Reassembler {
    stats: ReassemblyStats,
    max_buffered: usize,
    ack_grace: u32,
    /// Set once the stream start is known.
    offsets: Option<StreamOffsets>,
    /// Offset of the next byte to deliver.
    next: u64,
    /// Pieces ahead of `next`, keyed by offset; they never overlap and all start after `next`.
    held: BTreeMap<u64, Held>,
    /// Memory charged for `held`.
    held_cost: usize,
    /// Position and capture time of the first FIN seen.
    fin: Option<(u64, Timestamp)>,
    fin_delivered: bool,
    /// Highest offset the peer acknowledged (may be stale, i.e. below `next`).
    acked: u64,
    ack_deadline: Option<AckDeadline>,
    /// `segment` and `peer_ack` calls so far, the clock of the ACK grace.
    calls: u64,
    history: History,
}

impl Reassembler {
    /// A reassembler that buffers at most `max_buffered` out-of-order bytes and waits
    /// `ack_grace` further segments for a hole the peer has acknowledged.
    pub fn new(max_buffered: usize, ack_grace: u32) -> Self {
        Reassembler {
            stats: ReassemblyStats::default(),
            max_buffered,
            ack_grace,
            offsets: None,
            next: 0,
            held: BTreeMap::new(),
            held_cost: 0,
            fin: None,
            fin_delivered: false,
            acked: 0,
            ack_deadline: None,
            calls: 0,
            history: History::new(DEFAULT_HISTORY),
        }
    }

    /// Remembers the last `bytes` delivered bytes (rounded up to a power of two; 0 disables)
    /// to detect conflicting retransmissions of delivered data.
    pub fn with_history(mut self, bytes: usize) -> Self {
        self.history = History::new(bytes);
        self
    }

    /// This side's SYN: its data starts at `seq + 1`.
    pub fn syn(&mut self, seq: u32) {
        let offsets = StreamOffsets::new(SeqNum(seq) + 1);
        let untouched = self.next == 0 && self.held.is_empty() && self.fin.is_none();
        if self.offsets.is_none() || (untouched && self.offsets != Some(offsets)) {
            self.offsets = Some(offsets);
            self.acked = 0;
            self.ack_deadline = None;
        }
    }

    /// One segment from this side; in-order data, gaps and the FIN go to `out`.
    pub fn segment<F: FnMut(Chunk<'_>)>(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        fin: bool,
        ts: Timestamp,
        out: &mut F,
    ) -> SegmentReport {
        self.calls += 1;
        let mut report = SegmentReport::default();
        let offsets = match self.offsets {
            Some(o) => o,
            None if payload.is_empty() && missing == 0 && !fin => return report,
            None => *self.offsets.insert(StreamOffsets::new(SeqNum(seq))),
        };
        let start = offsets.offset_near(SeqNum(seq), self.next);

        // The hot path: the next bytes, nothing waiting, nothing special.
        if start == self.next as i64
            && missing == 0
            && !fin
            && self.held.is_empty()
            && self.fin.is_none()
        {
            self.deliver_borrowed(payload, ts, out);
            if self.acked > self.next || self.ack_deadline.is_some() {
                self.settle_acks(ts, out);
            }
            return report;
        }

        if start.abs_diff(self.next as i64) > WINDOW {
            report.out_of_window = true;
            self.stats.out_of_window += 1;
            self.settle_acks(ts, out);
            return report;
        }
        let data_end = start + payload.len() as i64;
        let extent = (payload.len() as u64 + u64::from(missing)).min(WINDOW);
        let wire_end = start + extent as i64;
        if fin {
            self.note_fin(wire_end, ts, &mut report, out);
        }
        let limit = self.fin.map_or(i64::MAX, |(at, _)| at as i64);
        if wire_end > limit {
            report.after_fin = true;
        }

        // Bytes before the stream start were sent before whatever we first saw.
        let before_start = data_end.min(0) - start.min(0);
        if before_start > 0 {
            report.duplicate_bytes += before_start as u64;
        }
        let lo = start.max(0);
        let hi = data_end.min(limit);
        if lo < hi {
            self.place_data(lo as u64, hi as u64, start, payload, ts, out, &mut report);
        }
        let lo = data_end.max(0);
        let hi = wire_end.min(limit);
        if lo < hi {
            self.place_missing(lo as u64, hi as u64, ts, out, &mut report);
        }
        self.deliver_fin_if_due(out);
        self.enforce_limit(ts, out);
        self.settle_acks(ts, out);

        self.stats.duplicate += report.duplicate_bytes;
        self.stats.conflicting += report.conflicting_bytes;
        if report.out_of_order {
            self.stats.out_of_order += 1;
        }
        report
    }

    /// The peer acknowledged everything before `ack`.
    pub fn peer_ack<F: FnMut(Chunk<'_>)>(&mut self, ack: u32, ts: Timestamp, out: &mut F) {
        self.calls += 1;
        let Some(offsets) = self.offsets else {
            return;
        };
        let at = offsets.offset_near(SeqNum(ack), self.next);
        if at > self.acked as i64 && at <= (self.next + WINDOW) as i64 {
            self.acked = self.clamp_to_fin(at as u64);
        }
        if self.acked > self.next || self.ack_deadline.is_some() {
            self.settle_acks(ts, out);
        }
    }

    /// Delivers everything buffered, holes as gaps (flow end, or memory pressure).
    pub fn flush<F: FnMut(Chunk<'_>)>(&mut self, ts: Timestamp, out: &mut F) {
        let held_end = self
            .held
            .last_key_value()
            .map_or(0, |(&k, piece)| k + piece.len());
        let fin_at = self.fin.map_or(0, |(at, _)| at);
        let target = held_end.max(fin_at).max(self.acked);
        self.gap_until(target, ts, out);
        self.ack_deadline = None;
        self.deliver_fin_if_due(out);
    }

    /// Memory held for out-of-order data now: payload plus [`HELD_PIECE_COST`] per piece.
    pub fn buffered(&self) -> usize {
        self.held_cost
    }

    /// Whether the stream start is known (a SYN or a first segment was seen).
    pub fn started(&self) -> bool {
        self.offsets.is_some()
    }

    /// Whether the FIN was delivered.
    pub fn finished(&self) -> bool {
        self.fin_delivered
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }

    /// Offset (from the stream start) of the next byte to be delivered.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    fn clamp_to_fin(&self, offset: u64) -> u64 {
        self.fin.map_or(offset, |(at, _)| offset.min(at))
    }

    fn deliver_borrowed<F: FnMut(Chunk<'_>)>(&mut self, bytes: &[u8], ts: Timestamp, out: &mut F) {
        if bytes.is_empty() {
            return;
        }
        out(Chunk::Data { bytes, ts });
        self.history.record(self.next, bytes);
        self.next += bytes.len() as u64;
        self.stats.delivered += bytes.len() as u64;
    }

    fn deliver_gap<F: FnMut(Chunk<'_>)>(&mut self, len: u64, ts: Timestamp, out: &mut F) {
        if len == 0 {
            return;
        }
        out(Chunk::Gap { len, ts });
        self.next += len;
        self.stats.missing += len;
        self.history.restart(self.next);
    }

    fn insert_held(&mut self, at: u64, piece: Held) {
        self.held_cost += piece.cost();
        if let Some(old) = self.held.insert(at, piece) {
            self.held_cost -= old.cost();
        }
    }

    fn remove_held(&mut self, at: u64) -> Option<Held> {
        let piece = self.held.remove(&at)?;
        self.held_cost -= piece.cost();
        Some(piece)
    }

    /// Delivers held pieces that now start at the next expected byte, then a due FIN.
    fn drain<F: FnMut(Chunk<'_>)>(&mut self, out: &mut F) {
        while let Some(entry) = self.held.first_entry() {
            let at = *entry.key();
            if at > self.next {
                break;
            }
            let piece = entry.remove();
            self.held_cost -= piece.cost();
            // Held pieces never start behind `next`; should one, its overlap is dropped.
            let skip = self.next - at;
            match piece {
                Held::Data { bytes, ts } => {
                    let fresh = bytes.get(skip as usize..).unwrap_or_default();
                    self.deliver_borrowed(fresh, ts, out);
                }
                Held::Missing { len, ts } => self.deliver_gap(len.saturating_sub(skip), ts, out),
            }
        }
        self.deliver_fin_if_due(out);
    }

    fn deliver_fin_if_due<F: FnMut(Chunk<'_>)>(&mut self, out: &mut F) {
        if let Some((at, ts)) = self.fin {
            if !self.fin_delivered && at <= self.next {
                self.fin_delivered = true;
                out(Chunk::Fin { ts });
            }
        }
    }

    /// Records a FIN at `at`; the first one fixes the end of the stream.
    fn note_fin<F: FnMut(Chunk<'_>)>(
        &mut self,
        at: i64,
        ts: Timestamp,
        report: &mut SegmentReport,
        out: &mut F,
    ) {
        if let Some((known, _)) = self.fin {
            if known as i64 != at {
                report.after_fin = true;
            }
            return;
        }
        if at < self.next as i64 {
            // Data beyond this FIN was already delivered: the FIN is the odd one out.
            report.after_fin = true;
            return;
        }
        let at = at as u64;
        self.fin = Some((at, ts));
        self.acked = self.acked.min(at.max(self.next));
        if self.trim_held_from(at) {
            report.after_fin = true;
        }
        self.deliver_fin_if_due(out);
    }

    /// Drops held bytes at or beyond `end`; whether anything was dropped.
    fn trim_held_from(&mut self, end: u64) -> bool {
        let mut dropped = false;
        let beyond = self.held.split_off(&end);
        for piece in beyond.values() {
            self.held_cost -= piece.cost();
            dropped = true;
        }
        let straddling = self
            .held
            .last_key_value()
            .filter(|(k, piece)| **k + piece.len() > end)
            .map(|(k, _)| *k);
        if let Some(at) = straddling {
            if let Some(piece) = self.remove_held(at) {
                let keep = end - at;
                let shortened = match piece {
                    Held::Data { bytes, ts } => {
                        let mut bytes = bytes.into_vec();
                        bytes.truncate(keep as usize);
                        Held::Data {
                            bytes: bytes.into_boxed_slice(),
                            ts,
                        }
                    }
                    Held::Missing { ts, .. } => Held::Missing { len: keep, ts },
                };
                self.insert_held(at, shortened);
                dropped = true;
            }
        }
        dropped
    }

    /// The held piece covering `at`, as (start, end, is data).
    fn held_covering(&self, at: u64) -> Option<(u64, u64, bool)> {
        let (&k, piece) = self.held.range(..=at).next_back()?;
        let end = k + piece.len();
        (end > at).then_some((k, end, matches!(piece, Held::Data { .. })))
    }

    /// Start of the first held piece after `at`, or `limit`.
    fn held_start_after(&self, at: u64, limit: u64) -> u64 {
        if at >= limit {
            return limit;
        }
        self.held.range(at..limit).next().map_or(limit, |(&k, _)| k)
    }

    /// Places payload bytes `[lo, hi)`; `payload` starts at offset `start`.
    #[allow(clippy::too_many_arguments)]
    fn place_data<F: FnMut(Chunk<'_>)>(
        &mut self,
        lo: u64,
        hi: u64,
        start: i64,
        payload: &[u8],
        ts: Timestamp,
        out: &mut F,
        report: &mut SegmentReport,
    ) {
        let slice = |from: u64, to: u64| {
            let a = (from as i64 - start) as usize;
            let b = (to as i64 - start) as usize;
            payload.get(a..b).unwrap_or_default()
        };
        let mut at = lo;
        while at < hi {
            if at < self.next {
                // Delivered or declared missing already (possibly a moment ago, from the map).
                let to = self.next.min(hi);
                let ours = slice(at, to);
                report.duplicate_bytes += to - at;
                report.conflicting_bytes += self.history.count_differences(at, ours);
                at = to;
                continue;
            }
            if let Some((k, end, is_data)) = self.held_covering(at) {
                let to = end.min(hi);
                if is_data {
                    if let Some(Held::Data { bytes, .. }) = self.held.get(&k) {
                        let theirs = bytes
                            .get((at - k) as usize..(to - k) as usize)
                            .unwrap_or_default();
                        report.conflicting_bytes += count_differing(theirs, slice(at, to));
                    }
                    report.duplicate_bytes += to - at;
                    at = to;
                } else if let Some(Held::Missing { ts: cut_ts, .. }) = self.remove_held(k) {
                    // A real copy of bytes the snap length cut off: it replaces the mark.
                    if k < at {
                        self.insert_held(
                            k,
                            Held::Missing {
                                len: at - k,
                                ts: cut_ts,
                            },
                        );
                    }
                    if end > to {
                        self.insert_held(
                            to,
                            Held::Missing {
                                len: end - to,
                                ts: cut_ts,
                            },
                        );
                    }
                }
                continue;
            }
            let to = self.held_start_after(at, hi);
            let bytes = slice(at, to);
            self.make_room(bytes.len() + HELD_PIECE_COST, at, ts, out);
            if self.next == at {
                self.deliver_borrowed(bytes, ts, out);
                self.drain(out);
            } else {
                self.insert_held(
                    at,
                    Held::Data {
                        bytes: bytes.into(),
                        ts,
                    },
                );
                report.out_of_order = true;
            }
            at = to;
        }
    }

    /// Places snap-length-missing bytes `[lo, hi)`: they only fill what nothing else covers.
    fn place_missing<F: FnMut(Chunk<'_>)>(
        &mut self,
        lo: u64,
        hi: u64,
        ts: Timestamp,
        out: &mut F,
        report: &mut SegmentReport,
    ) {
        let mut at = lo.max(self.next);
        while at < hi {
            if at < self.next {
                at = self.next;
                continue;
            }
            if let Some((_, end, _)) = self.held_covering(at) {
                at = end.min(hi);
                continue;
            }
            let to = self.held_start_after(at, hi);
            self.make_room(HELD_PIECE_COST, at, ts, out);
            if self.next == at {
                self.deliver_gap(to - at, ts, out);
                self.drain(out);
            } else {
                self.insert_held(at, Held::Missing { len: to - at, ts });
                report.out_of_order = true;
            }
            at = to;
        }
    }

    /// Declares holes before `upto` as gaps until `need` more bytes fit under the limit.
    fn make_room<F: FnMut(Chunk<'_>)>(
        &mut self,
        need: usize,
        upto: u64,
        ts: Timestamp,
        out: &mut F,
    ) {
        while self.held_cost.saturating_add(need) > self.max_buffered && self.next < upto {
            let hole_end = self.held_start_after(self.next, upto);
            self.deliver_gap(hole_end - self.next, ts, out);
            self.stats.forced_gaps += 1;
            self.drain(out);
        }
    }

    /// Declares the first holes as gaps until the held pieces fit under the limit.
    fn enforce_limit<F: FnMut(Chunk<'_>)>(&mut self, ts: Timestamp, out: &mut F) {
        while self.held_cost > self.max_buffered {
            let Some(&first) = self.held.keys().next() else {
                break;
            };
            self.deliver_gap(first.saturating_sub(self.next), ts, out);
            self.stats.forced_gaps += 1;
            self.drain(out);
        }
    }

    /// Declares every hole before `target` (clamped to a known FIN) a gap, delivering held
    /// pieces in between.
    fn gap_until<F: FnMut(Chunk<'_>)>(&mut self, target: u64, ts: Timestamp, out: &mut F) {
        let target = self.clamp_to_fin(target);
        while self.next < target {
            let hole_end = self.held_start_after(self.next, target);
            if hole_end > self.next {
                self.deliver_gap(hole_end - self.next, ts, out);
            }
            let before = self.next;
            self.drain(out);
            if self.next == before && hole_end == before {
                break; // Cannot happen (a piece at `next` always drains); never spin.
            }
        }
        self.deliver_fin_if_due(out);
    }

    /// Turns acknowledged holes into gaps once their grace has run out.
    fn settle_acks<F: FnMut(Chunk<'_>)>(&mut self, ts: Timestamp, out: &mut F) {
        if let Some(deadline) = self.ack_deadline {
            if self.next >= deadline.target {
                self.ack_deadline = None;
            } else if self.calls >= deadline.at_call {
                self.ack_deadline = None;
                self.gap_until(deadline.target, ts, out);
            }
        }
        if self.ack_deadline.is_none() && self.acked > self.next {
            let deadline = AckDeadline {
                target: self.acked,
                at_call: self.calls + u64::from(self.ack_grace),
            };
            if self.ack_grace == 0 {
                self.gap_until(deadline.target, ts, out);
            } else {
                self.ack_deadline = Some(deadline);
            }
        }
    }
}
