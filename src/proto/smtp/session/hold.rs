//! Bytes of one direction held while the other side decides how to read them (a reply to a
//! pausing command), with the gaps among them, in stream order.

use crate::time::Timestamp;
use std::collections::VecDeque;

/// One piece of a held stream: bytes with their capture time, or a gap.
#[derive(Debug)]
pub(super) enum HeldChunk {
    Data {
        ts: Timestamp,
        bytes: Vec<u8>,
        /// Bytes before this offset were already consumed.
        start: usize,
    },
    Gap {
        ts: Timestamp,
        len: u64,
    },
}

/// Bytes of one direction waiting for the other side to say how to read them.
#[derive(Debug, Default)]
pub(super) struct Hold {
    chunks: VecDeque<HeldChunk>,
    /// Bytes held, not yet consumed.
    pub(super) bytes: usize,
}

impl Hold {
    pub(super) fn push_data(&mut self, ts: Timestamp, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        self.bytes += data.len();
        self.chunks.push_back(HeldChunk::Data {
            ts,
            bytes: data.to_vec(),
            start: 0,
        });
    }

    pub(super) fn push_gap(&mut self, ts: Timestamp, len: u64) {
        self.chunks.push_back(HeldChunk::Gap { ts, len });
    }

    pub(super) fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    pub(super) fn pop_front(&mut self) -> Option<HeldChunk> {
        let chunk = self.chunks.pop_front();
        if let Some(HeldChunk::Data { bytes, start, .. }) = &chunk {
            self.bytes = self
                .bytes
                .saturating_sub(bytes.len().saturating_sub(*start));
        }
        chunk
    }

    /// Puts back the unconsumed rest of a chunk taken with `pop_front`.
    pub(super) fn push_front_rest(&mut self, ts: Timestamp, bytes: Vec<u8>, start: usize) {
        if start >= bytes.len() {
            return;
        }
        self.bytes += bytes.len() - start;
        self.chunks.push_front(HeldChunk::Data { ts, bytes, start });
    }

    pub(super) fn first_byte(&self) -> Option<u8> {
        match self.chunks.front()? {
            HeldChunk::Data { bytes, start, .. } => bytes.get(*start).copied(),
            HeldChunk::Gap { .. } => None,
        }
    }

    /// The first held line without its terminator (at most `max` bytes, stopping at a gap).
    pub(super) fn first_line(&self, max: usize) -> Vec<u8> {
        let mut line = Vec::new();
        for chunk in &self.chunks {
            let HeldChunk::Data { bytes, start, .. } = chunk else {
                break;
            };
            let data = bytes.get(*start..).unwrap_or_default();
            let (part, done) = match memchr::memchr(b'\n', data) {
                Some(i) => (&data[..i], true),
                None => (data, false),
            };
            let room = max.saturating_sub(line.len());
            line.extend_from_slice(&part[..part.len().min(room)]);
            if done || line.len() >= max {
                break;
            }
        }
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        line
    }
}
