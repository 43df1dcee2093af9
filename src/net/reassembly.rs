//! Per-direction TCP stream reassembly: ordered bytes out, holes as gaps of known size.

use crate::time::Timestamp;
use serde::Serialize;

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
}

/// Rebuilds one direction of a TCP connection.
pub struct Reassembler {
    stats: ReassemblyStats,
}

impl Reassembler {
    /// A reassembler that buffers at most `max_buffered` out-of-order bytes and waits
    /// `ack_grace` further segments for a hole the peer has acknowledged.
    pub fn new(max_buffered: usize, ack_grace: u32) -> Self {
        let _ = (max_buffered, ack_grace);
        unimplemented!("reassembler")
    }

    /// This side's SYN: its data starts at `seq + 1`.
    pub fn syn(&mut self, seq: u32) {
        let _ = seq;
        unimplemented!("reassembler")
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
        let _ = (seq, payload, missing, fin, ts, out);
        unimplemented!("reassembler")
    }

    /// The peer acknowledged everything before `ack`.
    pub fn peer_ack<F: FnMut(Chunk<'_>)>(&mut self, ack: u32, ts: Timestamp, out: &mut F) {
        let _ = (ack, ts, out);
        unimplemented!("reassembler")
    }

    /// Delivers everything buffered, holes as gaps (flow end, or memory pressure).
    pub fn flush<F: FnMut(Chunk<'_>)>(&mut self, ts: Timestamp, out: &mut F) {
        let _ = (ts, out);
        unimplemented!("reassembler")
    }

    /// Out-of-order bytes held now.
    pub fn buffered(&self) -> usize {
        unimplemented!("reassembler")
    }

    /// Whether the stream start is known (a SYN or a first segment was seen).
    pub fn started(&self) -> bool {
        unimplemented!("reassembler")
    }

    /// Whether the FIN was delivered.
    pub fn finished(&self) -> bool {
        unimplemented!("reassembler")
    }

    /// Counters so far.
    pub fn stats(&self) -> &ReassemblyStats {
        &self.stats
    }
}
