//! Per-direction TCP stream reassembly: ordered bytes out, holes as gaps of known size.
//!
//! # Semantics
//!
//! Positions are 64-bit offsets from the stream's first byte ([`StreamOffsets`]), read
//! relative to the next expected byte, so wraparound and streams over 4 GiB are exact.
//!
//! - **Start.** After [`Reassembler::syn`]`(seq)` data starts at `seq + 1`. Without a SYN the
//!   start is only a guess, since captures reorder packets (the SYN, or the first data
//!   segment, may come later): the first segments are held as they arrive until a SYN fixes
//!   the start, or [`TENTATIVE_SEGMENTS`] segments or [`TENTATIVE_BYTES`] bytes have come, or
//!   a flush; then the start is the SYN's, or else the lowest sequence number held, and the
//!   held segments are replayed in arrival order. A later SYN re-anchors the stream only while
//!   nothing has been delivered, held or FINed yet; otherwise it is ignored. Bytes before the
//!   start are dropped as duplicates.
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
//!   not the FIN was delivered yet. A FIN behind already delivered *data* is ignored (and
//!   flagged the same way); a FIN that lands inside a trailing gap (declared from an ACK
//!   that covered the FIN before the FIN itself was captured, or by a flush) is delivered
//!   right away, since the stream really ended there.
//! - **ACK grace.** [`Reassembler::peer_ack`] records the highest offset the peer
//!   acknowledged (never beyond a known FIN). When that lies past the next expected byte a
//!   deadline is armed: `ack_grace` further calls of `segment`/`peer_ack` later, every hole
//!   below the acknowledged offset *as recorded when the deadline was armed* becomes a gap
//!   (held data in between is delivered), including the part after the last held byte
//!   (e.g. a lost last segment). Later acknowledgements arm the next deadline once the
//!   current one is settled, so a hole waits at most about twice the grace. The grace exists
//!   because captures reorder packets: an ACK may be captured before the data it covers.
//!   The gap stops at a known FIN (its ACK is one past the last byte); when the FIN itself
//!   is missing from the capture, its sequence number cannot be told from a lost data byte
//!   and counts as one missing byte.
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
/// How far from the bytes seen a reset's sequence number may lie and still be believed (the
/// largest receive window real stacks advertise in practice, well under 2^32: a reset forged
/// blind, with a random sequence number, is almost always outside it).
pub const RESET_WINDOW: u64 = 16 << 20;

/// Bookkeeping bytes charged per held piece against the buffer limit (map node, allocation).
pub const HELD_PIECE_COST: usize = 64;

/// Delivered bytes remembered per direction to detect conflicting retransmissions.
pub const DEFAULT_HISTORY: usize = 4096;

/// Segments held while the stream start is unknown (no SYN seen) before it is guessed.
pub const TENTATIVE_SEGMENTS: usize = 16;

/// Bytes held while the stream start is unknown before it is guessed.
pub const TENTATIVE_BYTES: usize = 64 << 10;

/// A segment held, as it came, until the stream start is known.
#[derive(Debug, Clone)]
struct EarlySegment {
    seq: u32,
    payload: Vec<u8>,
    missing: u32,
    fin: bool,
    ts: Timestamp,
}

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
    /// A FIN not yet reached was contradicted by data beyond it (this segment's, or held
    /// already) and set aside: the stream goes on.
    pub fin_contradicted: bool,
    /// The FIN showed the peer had acknowledged this many bytes past the end of the stream:
    /// an ACK for bytes never sent (forged or stray), which declared no gap.
    pub acked_past_end: u64,
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

    /// Makes room for `len` bytes, doubling as usual but never allocating beyond `cap`.
    fn grow_to(&mut self, len: usize) {
        if len > self.buf.capacity() {
            let want = len.max(self.buf.capacity() * 2).min(self.cap);
            self.buf.reserve_exact(want.saturating_sub(self.buf.len()));
        }
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
            self.grow_to(self.cap);
            self.buf.resize(self.cap, 0);
        } else if self.buf.len() < self.cap {
            let take = (self.cap - self.buf.len()).min(rest.len());
            let (head, tail) = rest.split_at(take);
            self.grow_to(self.buf.len() + take);
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
    /// Offset just past the last byte delivered as data (not as a gap).
    delivered_end: u64,
    /// Capture time of the last byte delivered, to place a trailing gap after it.
    last_delivered_ts: Option<Timestamp>,
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
    /// Segments waiting for the stream start to be known (no SYN seen yet).
    early: Vec<EarlySegment>,
    /// Payload bytes in `early`.
    early_bytes: usize,
    /// The furthest acknowledgement from the peer while the start was unknown.
    early_ack: Option<u32>,
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
            delivered_end: 0,
            last_delivered_ts: None,
            held: BTreeMap::new(),
            held_cost: 0,
            fin: None,
            fin_delivered: false,
            acked: 0,
            ack_deadline: None,
            calls: 0,
            history: History::new(DEFAULT_HISTORY),
            early: Vec::new(),
            early_bytes: 0,
            early_ack: None,
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
        if self.offsets.is_none() {
            if payload.is_empty() && missing == 0 && !fin {
                return report;
            }
            self.early_bytes += payload.len();
            self.early.push(EarlySegment {
                seq,
                payload: payload.to_vec(),
                missing,
                fin,
                ts,
            });
            let cap = TENTATIVE_BYTES.min(self.max_buffered);
            if self.early.len() >= TENTATIVE_SEGMENTS || self.buffered() >= cap {
                self.settle_start(out, &mut report);
            }
            return report;
        }
        if !self.early.is_empty() {
            self.replay_early(out, &mut report);
        }
        self.place_segment(seq, payload, missing, fin, ts, out, report)
    }

    /// Fixes a guessed start (the lowest sequence number held) and replays held segments.
    fn settle_start<F: FnMut(Chunk<'_>)>(&mut self, out: &mut F, report: &mut SegmentReport) {
        let Some(first) = self.early.first().map(|e| SeqNum(e.seq)) else {
            return;
        };
        let lowest = self
            .early
            .iter()
            .map(|e| SeqNum(e.seq))
            .fold(first, |lo, s| if s.precedes(lo) { s } else { lo });
        self.offsets = Some(StreamOffsets::new(lowest));
        self.replay_early(out, report);
    }

    /// Feeds the held early segments through, in arrival order, once the start is known.
    fn replay_early<F: FnMut(Chunk<'_>)>(&mut self, out: &mut F, report: &mut SegmentReport) {
        let early = std::mem::take(&mut self.early);
        self.early_bytes = 0;
        let last_ts = early.last().map(|e| e.ts);
        for e in early {
            let r = self.place_segment(
                e.seq,
                &e.payload,
                e.missing,
                e.fin,
                e.ts,
                out,
                SegmentReport::default(),
            );
            report.duplicate_bytes += r.duplicate_bytes;
            report.conflicting_bytes += r.conflicting_bytes;
            report.out_of_order |= r.out_of_order;
            report.after_fin |= r.after_fin;
            report.out_of_window |= r.out_of_window;
        }
        if let (Some(ack), Some(ts)) = (self.early_ack.take(), last_ts) {
            self.note_ack(ack, ts, out);
        }
    }

    /// Places one segment once the stream start is known.
    #[allow(clippy::too_many_arguments)]
    fn place_segment<F: FnMut(Chunk<'_>)>(
        &mut self,
        seq: u32,
        payload: &[u8],
        missing: u32,
        fin: bool,
        ts: Timestamp,
        out: &mut F,
        mut report: SegmentReport,
    ) -> SegmentReport {
        let Some(offsets) = self.offsets else {
            return report;
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
        if let Some((at, _)) = self.fin
            && !self.fin_delivered
            && start <= at as i64
            && data_end > at as i64
        {
            // A segment of data runs through a FIN nobody reached yet: no real stream ends
            // inside a segment, so the FIN was not the end (forged, or stray). The data wins;
            // data wholly beyond a FIN is still dropped (it may be what was forged).
            self.fin = None;
            report.fin_contradicted = true;
        }
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
        if self.offsets.is_none() {
            // The start is still a guess: keep the furthest acknowledgement for later.
            if !self.early.is_empty() {
                self.early_ack = Some(match self.early_ack {
                    Some(a) if SeqNum(ack).precedes(SeqNum(a)) => a,
                    _ => ack,
                });
            }
            return;
        }
        if !self.early.is_empty() {
            self.replay_early(out, &mut SegmentReport::default());
        }
        self.note_ack(ack, ts, out);
    }

    fn note_ack<F: FnMut(Chunk<'_>)>(&mut self, ack: u32, ts: Timestamp, out: &mut F) {
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
        if !self.early.is_empty() {
            let mut report = SegmentReport::default();
            if self.offsets.is_some() {
                self.replay_early(out, &mut report);
            } else {
                self.settle_start(out, &mut report);
            }
        }
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
        self.held_cost + self.early_bytes + self.early.len() * HELD_PIECE_COST
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

    /// Whether a reset carrying sequence number `seq` can be this stream's sender's: a real
    /// reset carries the sender's next sequence number, so it lies within [`RESET_WINDOW`]
    /// of the bytes seen so far (delivered, held or acknowledged). Unknown start: it can.
    pub fn plausible_reset(&self, seq: u32) -> bool {
        let Some(offsets) = self.offsets else {
            return true;
        };
        let at = offsets.offset_near(SeqNum(seq), self.next);
        let held_end = self
            .held
            .last_key_value()
            .map_or(self.next, |(&start, h)| start + h.len());
        let front = self.next.max(held_end).max(self.acked);
        let low = self.next as i64 - RESET_WINDOW as i64;
        at >= low && at <= (front + RESET_WINDOW) as i64
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
        self.last_delivered_ts = Some(ts);
        self.history.record(self.next, bytes);
        self.next += bytes.len() as u64;
        self.delivered_end = self.next;
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
        if let Some((at, ts)) = self.fin
            && !self.fin_delivered
            && at <= self.next
        {
            self.fin_delivered = true;
            out(Chunk::Fin { ts });
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
        let at = if at >= self.next as i64 {
            at as u64
        } else if at >= self.delivered_end as i64 {
            // Only gaps lie beyond this FIN: an ACK of the FIN (or a flush) ran ahead of
            // it. The stream really ends here, so the FIN is delivered now.
            self.next
        } else {
            // Data beyond this FIN was already delivered: the FIN is the odd one out.
            report.after_fin = true;
            return;
        };
        self.fin = Some((at, ts));
        // An ACK of the FIN itself is one past its position.
        report.acked_past_end = self.acked.saturating_sub(at + 1);
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
        if let Some(at) = straddling
            && let Some(piece) = self.remove_held(at)
        {
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
                let at = self.gap_time(hole_end, ts);
                self.deliver_gap(hole_end - self.next, at, out);
            }
            let before = self.next;
            self.drain(out);
            if self.next == before && hole_end == before {
                break; // Cannot happen (a piece at `next` always drains); never spin.
            }
        }
        self.deliver_fin_if_due(out);
    }

    /// Where in time a hole ending at `hole_end` belongs: just after the last bytes delivered
    /// before it (the lost bytes were sent after those; anything the peer sent in answer to
    /// them is later still), else just before the captured bytes that follow it; never later
    /// than `declared`, when it was found. So a transcript shows a lost command before the
    /// reply it got, not at the time an acknowledgement or the end of the capture revealed it.
    fn gap_time(&self, hole_end: u64, declared: Timestamp) -> Timestamp {
        let around = self
            .last_delivered_ts
            .or_else(|| match self.held.get(&hole_end) {
                Some(Held::Data { ts, .. } | Held::Missing { ts, .. }) => Some(*ts),
                None => None,
            });
        around.map_or(declared, |t| t.min(declared))
    }

    /// How far an acknowledgement may declare holes: up to the last captured byte, or up to
    /// an acknowledged FIN. Beyond captured data an ACK proves nothing the capture can check
    /// (one forged ACK far ahead must not turn the real bytes that follow into a gap), so a
    /// trailing hole waits for later bytes, the FIN, or the end of the flow.
    fn ack_gap_target(&self, acked: u64) -> u64 {
        let held_end = self
            .held
            .last_key_value()
            .map_or(self.next, |(&k, piece)| k + piece.len());
        match self.fin {
            Some((at, _)) if acked >= at => acked,
            _ => acked.min(held_end),
        }
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
        let target = self.ack_gap_target(self.acked);
        if self.ack_deadline.is_none() && target > self.next {
            let deadline = AckDeadline {
                target,
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

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An owned copy of a delivered chunk.
    #[derive(Debug, Clone, PartialEq, Eq)]
    enum Ev {
        Data(Vec<u8>, i64),
        Gap(u64),
        Fin,
    }

    fn ts(n: i64) -> Timestamp {
        Timestamp(n)
    }

    /// A reassembler plus everything it delivered.
    struct Rig {
        r: Reassembler,
        events: Vec<Ev>,
        max_buffered: usize,
    }

    impl Rig {
        fn new(max_buffered: usize, ack_grace: u32) -> Self {
            Rig {
                r: Reassembler::new(max_buffered, ack_grace),
                events: Vec::new(),
                max_buffered,
            }
        }

        fn sink(events: &mut Vec<Ev>) -> impl FnMut(Chunk<'_>) + '_ {
            |c| {
                events.push(match c {
                    Chunk::Data { bytes, ts } => Ev::Data(bytes.to_vec(), ts.0),
                    Chunk::Gap { len, .. } => Ev::Gap(len),
                    Chunk::Fin { .. } => Ev::Fin,
                })
            }
        }

        fn seg_full(
            &mut self,
            seq: u32,
            data: &[u8],
            missing: u32,
            fin: bool,
            t: i64,
        ) -> SegmentReport {
            let mut sink = Self::sink(&mut self.events);
            let rep = self.r.segment(seq, data, missing, fin, ts(t), &mut sink);
            assert!(self.r.buffered() <= self.max_buffered);
            rep
        }

        fn seg(&mut self, seq: u32, data: &[u8]) -> SegmentReport {
            self.seg_full(seq, data, 0, false, 0)
        }

        fn ack(&mut self, ack: u32) {
            let mut sink = Self::sink(&mut self.events);
            self.r.peer_ack(ack, ts(0), &mut sink);
            assert!(self.r.buffered() <= self.max_buffered);
        }

        fn flush(&mut self) {
            let mut sink = Self::sink(&mut self.events);
            self.r.flush(ts(0), &mut sink);
            assert!(self.r.buffered() <= self.max_buffered);
        }

        fn data(&self) -> Vec<u8> {
            let mut all = Vec::new();
            for e in &self.events {
                if let Ev::Data(d, _) = e {
                    all.extend_from_slice(d);
                }
            }
            all
        }

        fn gaps(&self) -> Vec<u64> {
            self.events
                .iter()
                .filter_map(|e| match e {
                    Ev::Gap(n) => Some(*n),
                    _ => None,
                })
                .collect()
        }

        fn fins(&self) -> usize {
            self.events.iter().filter(|e| **e == Ev::Fin).count()
        }

        /// The stream as delivered: `None` where a gap was declared.
        fn layout(&self) -> Vec<Option<u8>> {
            let mut all = Vec::new();
            for e in &self.events {
                match e {
                    Ev::Data(d, _) => all.extend(d.iter().map(|b| Some(*b))),
                    Ev::Gap(n) => all.extend(std::iter::repeat_n(None, *n as usize)),
                    Ev::Fin => {}
                }
            }
            all
        }
    }

    #[test]
    fn in_order_data_is_handed_out_without_copying() {
        let mut r = Reassembler::new(1 << 20, 4);
        r.syn(100);
        let payload = b"EHLO example.org\r\n".to_vec();
        let mut seen = None;
        r.segment(101, &payload, 0, false, ts(1), &mut |c| {
            if let Chunk::Data { bytes, .. } = c {
                seen = Some(bytes.as_ptr());
            }
        });
        assert_eq!(seen, Some(payload.as_ptr()));
        assert_eq!(r.stats().delivered, payload.len() as u64);
        assert!(r.started() && !r.finished());
    }

    #[test]
    fn wraparound_of_sequence_numbers_is_seamless() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(u32::MAX - 2); // data starts at u32::MAX - 1
        rig.seg(2, b"EF"); // offsets 4..6, after the wrap: out of order
        rig.seg(u32::MAX - 1, b"AB"); // offsets 0..2
        rig.seg(0, b"CD"); // offsets 2..4
        assert_eq!(rig.data(), b"ABCDEF");
        assert_eq!(rig.r.stats().out_of_order, 1);
        assert_eq!(rig.r.buffered(), 0);
    }

    #[test]
    fn a_reset_is_believed_only_near_the_bytes_its_sender_sent() {
        let mut rig = Rig::new(1 << 20, 4);
        assert!(
            rig.r.plausible_reset(12345),
            "start unknown: nothing to judge by"
        );
        rig.r.syn(u32::MAX - 10);
        rig.seg(u32::MAX - 9, b"hello");
        // Held data 1 MB ahead stretches the window forward, across the wrap of 2^32.
        rig.seg((u32::MAX - 9).wrapping_add(1 << 20), b"later");
        let next = (u32::MAX - 9).wrapping_add(5);
        assert!(rig.r.plausible_reset(next));
        assert!(rig.r.plausible_reset(next.wrapping_sub(1000)));
        assert!(
            rig.r
                .plausible_reset(next.wrapping_add((1 << 20) + RESET_WINDOW as u32))
        );
        assert!(
            !rig.r
                .plausible_reset(next.wrapping_add((1 << 20) + 2 * RESET_WINDOW as u32))
        );
        assert!(
            !rig.r
                .plausible_reset(next.wrapping_sub(2 * RESET_WINDOW as u32))
        );
        assert!(!rig.r.plausible_reset(next.wrapping_add(1 << 31)));
    }

    #[test]
    fn out_of_order_pieces_keep_their_own_timestamps() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(0);
        rig.seg_full(4, b"world", 0, false, 20);
        rig.seg_full(1, b"hel", 0, false, 30);
        assert_eq!(
            rig.events,
            vec![
                Ev::Data(b"hel".to_vec(), 30),
                Ev::Data(b"world".to_vec(), 20)
            ]
        );
    }

    #[test]
    fn mid_stream_pickup_guesses_the_start_from_the_lowest_early_segment() {
        let mut rig = Rig::new(1 << 20, 4);
        assert!(!rig.r.started());
        // Captured out of order before any SYN: the earlier bytes still count.
        let rep = rig.seg(5000, b"250 OK\r\n");
        assert_eq!(rep, SegmentReport::default());
        rig.seg(4990, b"0123456789");
        rig.seg(4995, b"XXXXX250 OK\r\nQUIT\r\n"); // overlaps both; first copies win
        rig.flush();
        assert_eq!(rig.data(), b"0123456789250 OK\r\nQUIT\r\n");
        assert!(rig.gaps().is_empty());
        assert_eq!(rig.r.stats().conflicting, 5);
    }

    #[test]
    fn once_the_start_is_settled_older_bytes_are_duplicates() {
        let mut rig = Rig::new(1 << 20, 4);
        let mut seq = 5000u32;
        for _ in 0..TENTATIVE_SEGMENTS {
            rig.seg(seq, b"ab");
            seq += 2;
        }
        assert!(rig.r.started());
        assert_eq!(rig.data().len(), 2 * TENTATIVE_SEGMENTS);
        let rep = rig.seg(4990, b"0123456789");
        assert_eq!(rep.duplicate_bytes, 10);
        assert!(rig.gaps().is_empty());
    }

    #[test]
    fn a_late_syn_fixes_the_start_of_held_segments() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.seg(1006, b"world");
        rig.seg(1001, b"hello");
        rig.r.syn(1000);
        rig.seg(1011, b"!");
        assert_eq!(rig.data(), b"helloworld!");
    }

    #[test]
    fn retransmission_of_delivered_data_is_a_duplicate_and_differences_are_counted() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(0);
        rig.seg(1, b"MAIL FROM:<a@b>\r\n");
        let rep = rig.seg(1, b"MAIL FROM:<a@b>\r\n");
        assert_eq!((rep.duplicate_bytes, rep.conflicting_bytes), (17, 0));
        let rep = rig.seg(6, b"FROM:<x@y>\r\n");
        assert_eq!(rep.duplicate_bytes, 12);
        assert_eq!(rep.conflicting_bytes, 2);
        assert_eq!(rig.data(), b"MAIL FROM:<a@b>\r\n");
        assert_eq!(rig.r.stats().duplicate, 29);
        assert_eq!(rig.r.stats().conflicting, 2);
    }

    #[test]
    fn history_can_be_disabled_and_then_counts_no_conflicts_on_delivered_data() {
        let mut r = Reassembler::new(1 << 20, 4).with_history(0);
        r.syn(0);
        r.segment(1, b"abc", 0, false, ts(0), &mut |_| {});
        let rep = r.segment(1, b"xyz", 0, false, ts(0), &mut |_| {});
        assert_eq!((rep.duplicate_bytes, rep.conflicting_bytes), (3, 0));
    }

    #[test]
    fn history_only_remembers_its_window() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r = Reassembler::new(1 << 20, 4).with_history(8);
        rig.r.syn(0);
        rig.seg(1, b"0123456789abcdef"); // only "89abcdef" is remembered
        let rep = rig.seg(1, b"XXXXXXXXXXXXXXXX");
        assert_eq!((rep.duplicate_bytes, rep.conflicting_bytes), (16, 8));
        rig.seg(17, b"ghij"); // offsets 16..20; the ring wraps and holds 12..20
        let rep = rig.seg(12, b"bcdefGHI"); // offsets 11..19
        assert_eq!((rep.duplicate_bytes, rep.conflicting_bytes), (8, 3));
    }

    #[test]
    fn conflicting_overlap_with_buffered_bytes_keeps_the_first_copy() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(0);
        let rep = rig.seg(11, b"KLMNOPQRST"); // offsets 10..20, buffered
        assert!(rep.out_of_order);
        let rep = rig.seg(6, b"fghijKLMNxPQRSTuvwxy"); // offsets 5..25
        assert_eq!(rep.duplicate_bytes, 10);
        assert_eq!(rep.conflicting_bytes, 1);
        assert!(rep.out_of_order);
        rig.seg(1, b"abcde");
        assert_eq!(rig.data(), b"abcdefghijKLMNOPQRSTuvwxy");
        assert_eq!(rig.r.stats().conflicting, 1);
        assert_eq!(rig.r.buffered(), 0);
    }

    #[test]
    fn snaplen_truncated_segment_in_order_becomes_an_immediate_gap() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(0);
        rig.seg_full(1, b"DATA", 1400, false, 0);
        assert_eq!(
            rig.events,
            vec![Ev::Data(b"DATA".to_vec(), 0), Ev::Gap(1400)]
        );
        rig.seg(1405, b"next");
        assert_eq!(rig.data(), b"DATAnext");
        assert_eq!(rig.r.stats().missing, 1400);
    }

    #[test]
    fn snaplen_truncated_segment_out_of_order_gaps_when_reached_unless_a_real_copy_arrives() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(0);
        rig.seg_full(11, b"ab", 8, false, 7); // data 10..12, missing 12..20
        rig.seg(15, b"XYZ"); // a real copy of 14..17 replaces part of the missing range
        assert!(rig.events.is_empty());
        rig.seg(1, b"0123456789");
        assert_eq!(
            rig.events,
            vec![
                Ev::Data(b"0123456789".to_vec(), 0),
                Ev::Data(b"ab".to_vec(), 7),
                Ev::Gap(2),
                Ev::Data(b"XYZ".to_vec(), 0),
                Ev::Gap(3),
            ]
        );
        assert_eq!(rig.r.buffered(), 0);
    }

    #[test]
    fn acked_hole_becomes_a_gap_after_the_grace() {
        let mut rig = Rig::new(1 << 20, 3);
        rig.r.syn(0);
        rig.seg(1, b"aaaa");
        rig.seg(11, b"cccc"); // hole 4..10
        rig.ack(15); // peer has everything up to 14
        rig.ack(15);
        rig.seg(11, b"cccc");
        assert!(rig.gaps().is_empty());
        rig.ack(15); // third further call: grace over
        assert_eq!(rig.gaps(), vec![6]);
        assert_eq!(rig.data(), b"aaaacccc");
        // A late copy of the hole is a duplicate now.
        assert_eq!(rig.seg(5, b"bbbbbb").duplicate_bytes, 6);
    }

    #[test]
    fn a_gap_takes_the_time_of_the_bytes_around_it_not_of_its_discovery() {
        let gap_times =
            |rig: &mut Rig, declare: &mut dyn FnMut(&mut Reassembler, &mut Vec<i64>)| {
                let mut times = Vec::new();
                declare(&mut rig.r, &mut times);
                times
            };
        // A hole between delivered and held bytes: just after the delivered ones.
        let mut rig = Rig::new(1 << 20, 0);
        rig.r.syn(0);
        rig.seg_full(1, b"aaaa", 0, false, 10);
        rig.seg_full(11, b"cccc", 0, false, 30);
        let times = gap_times(&mut rig, &mut |r, times| {
            r.peer_ack(15, ts(90), &mut |c| {
                if let Chunk::Gap { ts, .. } = c {
                    times.push(ts.0);
                }
            })
        });
        assert_eq!(times, [10]);
        // Nothing delivered before the hole: the time of the bytes after it.
        let mut rig = Rig::new(1 << 20, 0);
        rig.r.syn(0);
        rig.seg_full(5, b"cccc", 0, false, 30);
        let times = gap_times(&mut rig, &mut |r, times| {
            r.peer_ack(9, ts(90), &mut |c| {
                if let Chunk::Gap { ts, .. } = c {
                    times.push(ts.0);
                }
            })
        });
        assert_eq!(times, [30]);
        // A trailing hole (declared at the end): just after the last delivered bytes.
        let mut rig = Rig::new(1 << 20, 0);
        rig.r.syn(0);
        rig.seg_full(1, b"aaaa", 0, false, 10);
        let times = gap_times(&mut rig, &mut |r, times| {
            r.peer_ack(9, ts(95), &mut |_| {});
            r.flush(ts(99), &mut |c| {
                if let Chunk::Gap { ts, .. } = c {
                    times.push(ts.0);
                }
            })
        });
        assert_eq!(times, [10]);
        // Nothing delivered yet: the time it was found.
        let mut rig = Rig::new(1 << 20, 0);
        rig.r.syn(0);
        let times = gap_times(&mut rig, &mut |r, times| {
            r.peer_ack(9, ts(5), &mut |_| {});
            r.flush(ts(7), &mut |c| {
                if let Chunk::Gap { ts, .. } = c {
                    times.push(ts.0);
                }
            })
        });
        assert_eq!(times, [7]);
    }

    #[test]
    fn a_forged_ack_far_ahead_does_not_swallow_the_bytes_that_follow() {
        let mut rig = Rig::new(1 << 20, 0);
        rig.r.syn(0);
        rig.seg(1, b"EHLO x\r\n");
        rig.ack(10_000_001); // forged: 10 MB beyond anything sent
        rig.seg(9, b"MAIL FROM:<a@b>\r\n");
        rig.seg(26, b"QUIT\r\n");
        assert!(rig.gaps().is_empty());
        assert_eq!(rig.data(), b"EHLO x\r\nMAIL FROM:<a@b>\r\nQUIT\r\n");
        // The real FIN then closes the stream where it really ends.
        rig.seg_full(32, b"", 0, true, 0);
        rig.flush();
        assert!(rig.gaps().is_empty());
        assert_eq!(rig.fins(), 1);
    }

    #[test]
    fn a_forged_fin_ahead_is_set_aside_when_data_runs_through_it() {
        let mut rig = Rig::new(1 << 20, 0);
        rig.r.syn(0);
        rig.seg(1, b"EHLO x\r\n");
        let forged = rig.seg_full(109, b"", 0, true, 0); // FIN 100 bytes ahead
        assert!(!forged.fin_contradicted);
        let body = vec![b'a'; 300];
        let rep = rig.seg(9, &body);
        assert!(rep.fin_contradicted && !rep.after_fin);
        assert_eq!(rig.data().len(), 8 + 300);
        assert_eq!(rig.fins(), 0);
        rig.seg_full(309, b"QUIT\r\n", 0, true, 0);
        assert_eq!(rig.fins(), 1);
        assert!(rig.data().ends_with(b"QUIT\r\n"));
    }

    #[test]
    fn acked_hole_with_nothing_after_it_is_a_gap_and_excludes_the_fin() {
        let mut rig = Rig::new(1 << 20, 0);
        rig.r.syn(0);
        rig.seg(1, b"aaaa");
        rig.ack(9); // the last 4 bytes were lost from the capture
        // Nothing captured beyond the hole: the ACK alone cannot be checked, so it waits.
        assert!(rig.gaps().is_empty());
        rig.seg_full(9, b"", 0, true, 0); // the FIN shows where the stream ends
        rig.ack(10); // acknowledges the FIN: the hole before it is a gap
        assert_eq!(rig.events.last(), Some(&Ev::Fin));
        assert_eq!(rig.gaps(), vec![4]);
        // Without a FIN the end of the flow declares it.
        let mut rig = Rig::new(1 << 20, 0);
        rig.r.syn(0);
        rig.seg(1, b"aaaa");
        rig.ack(9);
        rig.flush();
        assert_eq!(rig.gaps(), vec![4]);

        let mut rig = Rig::new(1 << 20, 0);
        rig.r.syn(0);
        rig.seg(1, b"aaaa");
        rig.seg_full(11, b"", 0, true, 0); // FIN at offset 10, bytes 4..10 lost
        rig.ack(12);
        assert_eq!(rig.gaps(), vec![6]);
        assert_eq!(rig.fins(), 1);
        assert!(rig.r.finished());
    }

    #[test]
    fn fin_captured_after_its_ack_ran_ahead_is_still_delivered() {
        let mut rig = Rig::new(1 << 20, 0);
        rig.r.syn(0);
        rig.seg(1, b"abcd");
        rig.ack(6); // acknowledges the FIN at offset 4, not captured yet: nothing to declare
        assert!(rig.gaps().is_empty());
        let rep = rig.seg_full(5, b"", 0, true, 3);
        assert!(!rep.after_fin);
        assert_eq!(rig.events.last(), Some(&Ev::Fin));
        assert!(rig.r.finished());
        assert!(rig.gaps().is_empty(), "no byte was lost");
        // A FIN behind delivered data is not believed.
        let mut rig = Rig::new(1 << 20, 0);
        rig.r.syn(0);
        rig.seg(1, b"abcd");
        assert!(rig.seg_full(3, b"", 0, true, 0).after_fin);
        assert_eq!(rig.fins(), 0);
    }

    #[test]
    fn ack_captured_before_its_data_waits_and_recovers_the_data() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(0);
        rig.seg(1, b"aaaa");
        rig.ack(13); // captured before the data it acknowledges
        rig.ack(13);
        rig.seg(9, b"cccc");
        rig.seg(5, b"bbbb");
        rig.ack(13);
        rig.ack(13);
        rig.ack(13);
        assert!(rig.gaps().is_empty());
        assert_eq!(rig.data(), b"aaaabbbbcccc");
    }

    #[test]
    fn buffer_limit_forces_the_first_hole_to_become_a_gap() {
        let limit = 2 * (100 + HELD_PIECE_COST);
        let mut rig = Rig::new(limit, 4);
        rig.r.syn(0);
        rig.seg(11, &[b'a'; 100]); // 10..110
        rig.seg(211, &[b'b'; 100]); // 210..310
        assert!(rig.events.is_empty());
        assert_eq!(rig.r.buffered(), limit);
        rig.seg(411, &[b'c'; 100]); // 410..510: no room, the hole 0..10 gives way
        assert_eq!(rig.gaps(), vec![10]);
        assert_eq!(rig.r.stats().forced_gaps, 1);
        assert_eq!(rig.data(), vec![b'a'; 100]);
        assert_eq!(rig.r.buffered(), limit);
        rig.seg(611, &[b'd'; 100]); // again: the hole 110..210 gives way
        assert_eq!(rig.gaps(), vec![10, 100]);
        assert_eq!(rig.r.stats().forced_gaps, 2);
        assert_eq!(rig.data().len(), 200);
        rig.flush();
        assert_eq!(rig.gaps(), vec![10, 100, 100, 100]);
        assert_eq!(rig.data().len(), 400);
        assert_eq!(rig.r.buffered(), 0);
    }

    #[test]
    fn segment_larger_than_the_limit_is_delivered_after_declaring_the_holes_before_it() {
        let mut rig = Rig::new(1000, 4);
        rig.r.syn(0);
        rig.seg(101, &[b'x'; 5000]);
        assert_eq!(rig.gaps(), vec![100]);
        assert_eq!(rig.data().len(), 5000);
        assert_eq!(rig.r.buffered(), 0);
    }

    #[test]
    fn payload_after_the_fin_is_dropped_and_flagged() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(0);
        rig.seg(11, b"late"); // buffered beyond where the FIN will be
        let rep = rig.seg_full(1, b"QUIT\r\n", 0, true, 0); // FIN at offset 6
        assert!(rep.after_fin);
        assert_eq!(rig.events, vec![Ev::Data(b"QUIT\r\n".to_vec(), 0), Ev::Fin]);
        assert_eq!(rig.r.buffered(), 0);
        let rep = rig.seg(7, b"more");
        assert!(rep.after_fin);
        let rep = rig.seg_full(1, b"QUIT\r\nX", 0, true, 0);
        assert!(rep.after_fin);
        let rep = rig.seg_full(1, b"QUIT\r\n", 0, true, 0); // plain FIN retransmission
        assert!(!rep.after_fin);
        assert_eq!(rep.duplicate_bytes, 6);
        rig.flush();
        assert_eq!(rig.fins(), 1);
        assert_eq!(rig.events.last(), Some(&Ev::Fin));
    }

    #[test]
    fn fin_waits_for_the_hole_before_it() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(0);
        rig.seg_full(5, b"efg", 0, true, 9);
        assert!(rig.events.is_empty() && !rig.r.finished());
        rig.seg(1, b"abcd");
        assert_eq!(
            rig.events,
            vec![
                Ev::Data(b"abcd".to_vec(), 0),
                Ev::Data(b"efg".to_vec(), 9),
                Ev::Fin
            ]
        );
        assert!(rig.r.finished());
    }

    #[test]
    fn flush_declares_holes_and_delivery_continues_afterwards() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(0);
        rig.seg(1, b"ab");
        rig.seg(6, b"fg");
        rig.flush();
        assert_eq!(
            rig.events,
            vec![
                Ev::Data(b"ab".to_vec(), 0),
                Ev::Gap(3),
                Ev::Data(b"fg".to_vec(), 0)
            ]
        );
        assert_eq!(rig.r.buffered(), 0);
        rig.seg(10, b"jk"); // hole 7..9 again
        rig.seg(8, b"hi");
        rig.seg_full(12, b"", 0, true, 0);
        assert_eq!(rig.data(), b"abfghijk");
        assert_eq!(rig.fins(), 1);
        rig.flush();
        assert_eq!(rig.fins(), 1);
    }

    #[test]
    fn flush_delivers_a_pending_fin_after_a_gap() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(0);
        rig.seg(1, b"ab");
        rig.seg_full(10, b"", 0, true, 0);
        rig.flush();
        assert_eq!(rig.events[1..], [Ev::Gap(7), Ev::Fin]);
    }

    #[test]
    fn segment_far_outside_the_window_is_dropped() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(0);
        rig.seg(1, b"ab");
        let rep = rig.seg(0x6000_0000, b"zz");
        assert!(rep.out_of_window);
        let rep = rig.seg(1u32.wrapping_sub(0x6000_0000), b"zz");
        assert!(rep.out_of_window);
        rig.ack(0x6000_0000); // ignored as well
        rig.flush();
        assert_eq!(rig.data(), b"ab");
        assert!(rig.gaps().is_empty());
        assert_eq!(rig.r.stats().out_of_window, 2);
    }

    #[test]
    fn absurd_missing_count_is_clamped_to_the_window() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(0);
        rig.seg_full(1, b"ab", u32::MAX, false, 0);
        assert_eq!(rig.gaps(), vec![WINDOW - 2]);
    }

    #[test]
    fn syn_reanchors_only_an_untouched_stream() {
        let mut rig = Rig::new(1 << 20, 4);
        rig.r.syn(1000);
        rig.r.syn(5000); // a new attempt before any data
        rig.seg(5001, b"x");
        rig.r.syn(9000); // ignored: data already flowed
        rig.seg(5002, b"y");
        assert_eq!(rig.data(), b"xy");
    }

    #[test]
    fn many_tiny_segments_are_bounded_by_their_bookkeeping_cost() {
        let limit = 10 * (1 + HELD_PIECE_COST);
        let mut rig = Rig::new(limit, 4);
        rig.r.syn(0);
        for i in 0..100u32 {
            rig.seg(10 + 2 * i, b"x");
        }
        assert!(rig.r.stats().forced_gaps > 0);
        rig.flush();
        assert_eq!(rig.data().len(), 100);
        assert_eq!(rig.gaps().iter().sum::<u64>(), 9 + 99);
    }

    /// Splits a stream into segments, adds retransmissions, shuffles them.
    #[derive(Debug, Clone)]
    struct Scenario {
        stream: Vec<u8>,
        isn: u32,
        syn: bool,
        fin: bool,
        /// (offset, len, carries the FIN)
        segments: Vec<(usize, usize, bool)>,
    }

    fn shuffle<T>(items: &mut [T], mut seed: u64) {
        for i in (1..items.len()).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            items.swap(i, (seed % (i as u64 + 1)) as usize);
        }
    }

    fn scenario() -> impl Strategy<Value = Scenario> {
        (
            prop::collection::vec(any::<u8>(), 0..20_000),
            prop_oneof![any::<u32>(), (u32::MAX - 30_000)..=u32::MAX],
            any::<bool>(),
            any::<bool>(),
            prop::collection::vec(1usize..3000, 1..32),
            prop::collection::vec((any::<prop::sample::Index>(), 1usize..4000), 0..12),
            any::<u64>(),
        )
            .prop_map(|(stream, isn, syn, fin, cuts, extra, seed)| {
                let n = stream.len();
                let mut segments = Vec::new();
                let mut at = 0;
                for cut in cuts.iter().cycle() {
                    if at >= n {
                        break;
                    }
                    let len = (*cut).min(n - at);
                    segments.push((at, len, fin && at + len == n));
                    at += len;
                }
                if fin && n == 0 {
                    segments.push((0, 0, true));
                }
                if n > 0 {
                    for (start, len) in extra {
                        let s = start.index(n);
                        let len = len.min(n - s);
                        segments.push((s, len, fin && s + len == n));
                    }
                }
                shuffle(&mut segments, seed | 1);
                // Without a SYN the first segment fixes the start, so it must begin at 0.
                if let Some(i) = segments.iter().position(|s| s.0 == 0) {
                    let first = segments.remove(i);
                    segments.insert(0, first);
                }
                Scenario {
                    stream,
                    isn,
                    syn,
                    fin,
                    segments,
                }
            })
    }

    impl Scenario {
        fn seq_of(&self, offset: usize) -> u32 {
            let first = if self.syn {
                self.isn.wrapping_add(1)
            } else {
                self.isn
            };
            first.wrapping_add(offset as u32)
        }

        fn feed(&self, rig: &mut Rig, seg: (usize, usize, bool), t: i64) -> SegmentReport {
            let (off, len, fin) = seg;
            let bytes = self.stream.get(off..off + len).unwrap_or_default();
            rig.seg_full(self.seq_of(off), bytes, 0, fin, t)
        }
    }

    /// Checks the events end with at most one FIN, and exactly one when `fin`.
    fn assert_fin_once_last(rig: &Rig, fin: bool) {
        assert_eq!(rig.fins(), usize::from(fin));
        if fin {
            assert_eq!(rig.events.last(), Some(&Ev::Fin));
        }
        assert_eq!(rig.r.finished(), fin);
    }

    proptest! {
        #[test]
        fn reordered_duplicated_segments_reassemble_exactly(
            sc in scenario(),
            with_acks in any::<bool>(),
            grace in 0u32..5,
        ) {
            let mut rig = Rig::new(8 << 20, grace);
            if sc.syn {
                rig.r.syn(sc.isn);
            }
            // What a receiver would acknowledge: the contiguous prefix fed so far.
            let n = sc.stream.len();
            let mut have = vec![false; n];
            let mut prefix = 0;
            let mut fin_fed = false;
            for (i, seg) in sc.segments.iter().enumerate() {
                let rep = sc.feed(&mut rig, *seg, i as i64);
                prop_assert_eq!(rep.conflicting_bytes, 0);
                prop_assert!(!rep.after_fin && !rep.out_of_window);
                have[seg.0..seg.0 + seg.1].iter_mut().for_each(|h| *h = true);
                fin_fed |= seg.2;
                while prefix < n && have[prefix] {
                    prefix += 1;
                }
                if with_acks {
                    let extra = usize::from(fin_fed && prefix == n);
                    rig.ack(sc.seq_of(prefix + extra));
                }
            }
            rig.flush();
            prop_assert_eq!(rig.data(), sc.stream.clone());
            prop_assert!(rig.gaps().is_empty());
            assert_fin_once_last(&rig, sc.fin);
            let st = *rig.r.stats();
            prop_assert_eq!(st.delivered, n as u64);
            prop_assert_eq!((st.missing, st.conflicting, st.forced_gaps), (0, 0, 0));
            prop_assert_eq!(rig.r.buffered(), 0);
        }

        #[test]
        fn dropped_segments_become_gaps_of_exactly_the_uncovered_bytes(
            sc in scenario(),
            drop_mask in prop::collection::vec(any::<bool>(), 64),
            final_ack in any::<bool>(),
        ) {
            let mut rig = Rig::new(8 << 20, 2);
            if sc.syn {
                rig.r.syn(sc.isn);
            }
            let n = sc.stream.len();
            let mut covered = vec![false; n];
            let mut fin_kept = false;
            for (i, seg) in sc.segments.iter().enumerate() {
                let keep_start = i == 0 && !sc.syn;
                if !keep_start && drop_mask[i % drop_mask.len()] {
                    continue;
                }
                sc.feed(&mut rig, *seg, i as i64);
                covered[seg.0..seg.0 + seg.1].iter_mut().for_each(|c| *c = true);
                fin_kept |= seg.2;
            }
            if final_ack {
                rig.ack(sc.seq_of(n + usize::from(fin_kept)));
            }
            rig.flush();
            let known = if fin_kept || final_ack {
                n
            } else {
                covered.iter().rposition(|c| *c).map_or(0, |i| i + 1)
            };
            let expected: Vec<Option<u8>> = (0..known)
                .map(|i| covered[i].then_some(sc.stream[i]))
                .collect();
            prop_assert_eq!(rig.layout(), expected);
            let uncovered = covered[..known].iter().filter(|c| !**c).count() as u64;
            prop_assert_eq!(rig.gaps().iter().sum::<u64>(), uncovered);
            prop_assert_eq!(rig.r.stats().missing, uncovered);
            assert_fin_once_last(&rig, fin_kept);
            prop_assert_eq!(rig.r.buffered(), 0);
        }

        #[test]
        fn under_memory_and_ack_pressure_bytes_stay_at_their_offsets(
            sc in scenario(),
            drop_mask in prop::collection::vec(any::<bool>(), 64),
            limit in 0usize..8000,
            grace in 0u32..4,
        ) {
            let mut rig = Rig::new(limit, grace);
            if sc.syn {
                rig.r.syn(sc.isn);
            }
            let n = sc.stream.len();
            let mut covered = vec![false; n];
            let mut received = vec![false; n];
            let mut prefix = 0;
            let mut acked_to = 0;
            let mut fin_kept = false;
            let mut fin_received = false;
            for (i, seg) in sc.segments.iter().enumerate() {
                // The receiver always gets the segment; the capture may miss it.
                received[seg.0..seg.0 + seg.1].iter_mut().for_each(|c| *c = true);
                fin_received |= seg.2;
                if i == 0 || !drop_mask[i % drop_mask.len()] {
                    sc.feed(&mut rig, *seg, i as i64);
                    covered[seg.0..seg.0 + seg.1].iter_mut().for_each(|c| *c = true);
                    fin_kept |= seg.2;
                }
                while prefix < n && received[prefix] {
                    prefix += 1;
                }
                // Acknowledging a FIN missing from the capture reads as one more missing byte.
                acked_to = prefix + usize::from(fin_received && prefix == n);
                rig.ack(sc.seq_of(acked_to));
            }
            rig.flush();
            let covered_end = covered.iter().rposition(|c| *c).map_or(0, |i| i + 1);
            let fin_end = if fin_kept { n } else { 0 };
            let known = covered_end.max(acked_to).max(fin_end);
            let layout = rig.layout();
            // A FIN known before its ACK clamps the ACK; one captured after it does not.
            prop_assert!(layout.len() == known || (fin_kept && layout.len() == n));
            for (i, b) in layout.iter().enumerate() {
                if let Some(b) = b {
                    prop_assert_eq!(Some(b), sc.stream.get(i));
                }
            }
            for i in 0..known.min(n) {
                if !covered[i] {
                    prop_assert_eq!(layout[i], None);
                }
            }
            assert_fin_once_last(&rig, fin_kept);
            prop_assert_eq!(rig.r.stats().conflicting, 0);
            prop_assert_eq!(rig.r.buffered(), 0);
        }

        #[test]
        fn hostile_input_never_panics_and_stays_bounded(
            base in any::<u32>(),
            ops in prop::collection::vec(
                (0u8..10, any::<i32>(), 0usize..3000, prop_oneof![Just(0u32), 0u32..70_000, any::<u32>()], any::<bool>()),
                0..200,
            ),
            limit in 0usize..20_000,
            grace in 0u32..4,
        ) {
            let mut rig = Rig::new(limit, grace);
            let payload = vec![b'p'; 3000];
            for (kind, delta, len, missing, fin) in ops {
                // Mostly near the base, sometimes anywhere on the circle.
                let near = base.wrapping_add((delta % 20_000) as u32);
                let seq = if kind == 9 { delta as u32 } else { near };
                match kind {
                    0 => rig.r.syn(seq),
                    1 | 2 => rig.ack(seq),
                    3 => rig.flush(),
                    _ => {
                        rig.seg_full(seq, &payload[..len], missing, fin, 0);
                    }
                }
                let fin_at = rig.events.iter().position(|e| *e == Ev::Fin);
                if let Some(at) = fin_at {
                    prop_assert_eq!(at, rig.events.len() - 1, "nothing after the FIN");
                }
            }
            rig.flush();
            prop_assert!(rig.fins() <= 1);
            let total: u64 = rig.events.iter().map(|e| match e {
                Ev::Data(d, _) => d.len() as u64,
                Ev::Gap(n) => *n,
                Ev::Fin => 0,
            }).sum();
            prop_assert_eq!(total, rig.r.next_offset());
            let st = rig.r.stats();
            prop_assert_eq!(st.delivered + st.missing, total);
            prop_assert_eq!(rig.r.buffered(), 0);
        }
    }
}
