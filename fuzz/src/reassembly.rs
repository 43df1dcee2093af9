//! One direction of TCP reassembly from fuzzer bytes: a header, then segment, SYN, ACK and flush
//! operations.
//!
//! Header: an options byte (bits 0-2 pick the buffer limit from [`BUFFER_LIMITS`], bits 3-4 the
//! history size from [`HISTORIES`], bit 7 *consistent* payloads), the ACK grace byte and the
//! initial sequence number (four bytes). In consistent mode the harness makes every payload byte
//! the low byte of its own sequence number, so overlaps never conflict and the delivered stream
//! can be checked byte by byte: each byte is one more than the last, and a gap of `n` skips `n`.
//!
//! Operations: a control byte whose low three bits are the kind (see [`Op`]); bit 3 marks a FIN
//! and bit 4 says a count of snap-length-lost bytes follows the length. Sequence numbers of the
//! relative kinds count from the end of the previous segment.

use crate::input::Reader;
use mailsift::net::reassembly::{Chunk, Reassembler};
use mailsift::time::Timestamp;

/// Buffer limits the header chooses among (64 bytes is below the cost of one held piece).
pub const BUFFER_LIMITS: [usize; 8] = [64, 200, 1024, 4096, 65_536, 1 << 20, 1 << 20, 1 << 20];
/// History sizes the header chooses among.
pub const HISTORIES: [usize; 4] = [0, 16, 4096, 4096];
/// Consistent-payload flag.
pub const CONSISTENT: u8 = 0x80;
/// FIN bit of a segment operation.
pub const FIN: u8 = 0x08;
/// Lost-bytes bit of a segment operation.
pub const LOST: u8 = 0x10;

/// Operation kinds (the low three bits of a control byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    /// SYN at the initial sequence number plus a signed byte.
    Syn = 0,
    /// Segment: signed byte offset, one-byte length.
    Short = 1,
    /// Segment: signed two-byte offset, two-byte length.
    Long = 2,
    /// Segment at an absolute sequence number (four bytes), two-byte length.
    Absolute = 3,
    /// The peer's ACK, signed two-byte offset.
    AckRelative = 4,
    /// The peer's ACK at an absolute number (four bytes).
    AckAbsolute = 5,
    /// Flush (memory pressure or end of flow).
    Flush = 6,
    /// Move the relative origin by a signed four-byte amount.
    Jump = 7,
}

/// Most operations read from one input.
pub const MAX_OPS: usize = 4096;

/// Writes operations in the format [`run`] reads (for seeds).
#[derive(Debug, Clone)]
pub struct OpsWriter {
    /// The encoded input so far.
    pub bytes: Vec<u8>,
}

impl OpsWriter {
    /// A header: buffer limit index, history index, consistent mode, ACK grace and ISN.
    pub fn new(buffer: usize, history: usize, consistent: bool, grace: u8, isn: u32) -> Self {
        let options = (buffer as u8 & 7)
            | ((history as u8 & 3) << 3)
            | if consistent { CONSISTENT } else { 0 };
        let mut bytes = vec![options, grace];
        bytes.extend_from_slice(&isn.to_le_bytes());
        OpsWriter { bytes }
    }

    /// A SYN at `isn + delta`.
    pub fn syn(&mut self, delta: i8) -> &mut Self {
        self.bytes.push(Op::Syn as u8);
        self.bytes.push(delta as u8);
        self
    }

    /// A segment at absolute `seq` carrying `payload` (ignored in consistent mode, where only
    /// its length counts) and `lost` bytes cut by the snap length.
    pub fn segment(
        &mut self,
        seq: u32,
        payload: &[u8],
        lost: u16,
        fin: bool,
        consistent: bool,
    ) -> &mut Self {
        let payload = &payload[..payload.len().min(usize::from(u16::MAX))];
        let mut c = Op::Absolute as u8;
        if fin {
            c |= FIN;
        }
        if lost > 0 {
            c |= LOST;
        }
        self.bytes.push(c);
        self.bytes.extend_from_slice(&seq.to_le_bytes());
        self.bytes
            .extend_from_slice(&(payload.len() as u16).to_le_bytes());
        if lost > 0 {
            self.bytes.extend_from_slice(&lost.to_le_bytes());
        }
        if !consistent {
            self.bytes.extend_from_slice(payload);
        }
        self
    }

    /// A relative segment `rel` bytes from the end of the previous one, of `len` bytes.
    pub fn relative(&mut self, rel: i16, len: u16, fin: bool) -> &mut Self {
        self.bytes.push(Op::Long as u8 | if fin { FIN } else { 0 });
        self.bytes.extend_from_slice(&rel.to_le_bytes());
        self.bytes.extend_from_slice(&len.to_le_bytes());
        self
    }

    /// The peer acknowledging absolute `ack`.
    pub fn ack(&mut self, ack: u32) -> &mut Self {
        self.bytes.push(Op::AckAbsolute as u8);
        self.bytes.extend_from_slice(&ack.to_le_bytes());
        self
    }

    /// A flush.
    pub fn flush(&mut self) -> &mut Self {
        self.bytes.push(Op::Flush as u8);
        self
    }
}

/// What has come out of the reassembler so far.
#[derive(Debug, Default)]
struct Delivered {
    offset: u64,
    data: u64,
    gaps: u64,
    fin: bool,
    consistent: bool,
    next_byte: Option<u8>,
}

impl Delivered {
    fn take(&mut self, chunk: Chunk<'_>) {
        assert!(!self.fin, "{chunk:?} delivered after the FIN");
        match chunk {
            Chunk::Data { bytes, .. } => {
                assert!(!bytes.is_empty(), "empty data chunk");
                if self.consistent {
                    for (i, &b) in bytes.iter().enumerate() {
                        if let Some(want) = self.next_byte {
                            assert_eq!(
                                b,
                                want,
                                "stream byte at offset {} is out of place",
                                self.offset + i as u64
                            );
                        }
                        self.next_byte = Some(b.wrapping_add(1));
                    }
                }
                self.offset += bytes.len() as u64;
                self.data += bytes.len() as u64;
            }
            Chunk::Gap { len, .. } => {
                assert!(len > 0, "empty gap");
                self.offset += len;
                self.gaps += len;
                self.next_byte = self.next_byte.map(|b| b.wrapping_add(len as u8));
            }
            Chunk::Fin { .. } => self.fin = true,
        }
    }
}

fn payload_for(seq: u32, len: usize, consistent: bool, r: &mut Reader<'_>) -> Vec<u8> {
    if consistent {
        (0..len).map(|i| seq.wrapping_add(i as u32) as u8).collect()
    } else {
        r.take(len).to_vec()
    }
}

/// Runs one input and checks the delivered stream after every operation.
pub fn run(data: &[u8]) {
    let mut r = Reader::new(data);
    let options = r.u8().unwrap_or(0);
    let grace = u32::from(r.u8().unwrap_or(0));
    let isn = r.u32().unwrap_or(0);
    let max_buffered = BUFFER_LIMITS[usize::from(options & 7)];
    let history = HISTORIES[usize::from((options >> 3) & 3)];
    let consistent = options & CONSISTENT != 0;
    let mut reasm = Reassembler::new(max_buffered, grace).with_history(history);
    let mut out = Delivered {
        consistent,
        ..Delivered::default()
    };
    let mut cursor = isn.wrapping_add(1);
    let mut ts = Timestamp::from_parts(1_700_000_000, 0);
    for _ in 0..MAX_OPS {
        let Some(c) = r.u8() else { break };
        ts = Timestamp(ts.0 + 1_000_000);
        let fin = c & FIN != 0;
        let segment = match c & 7 {
            0 => {
                let delta = r.u8().unwrap_or(0) as i8;
                reasm.syn(isn.wrapping_add(delta as u32));
                None
            }
            1 => {
                let rel = r.u8().unwrap_or(0) as i8;
                let len = usize::from(r.u8().unwrap_or(0));
                Some((cursor.wrapping_add(rel as u32), len))
            }
            2 => {
                let rel = r.u16().unwrap_or(0) as i16;
                let len = usize::from(r.u16().unwrap_or(0));
                Some((cursor.wrapping_add(rel as u32), len))
            }
            3 => {
                let seq = r.u32().unwrap_or(0);
                let len = usize::from(r.u16().unwrap_or(0));
                Some((seq, len))
            }
            4 => {
                let rel = r.u16().unwrap_or(0) as i16;
                reasm.peer_ack(cursor.wrapping_add(rel as u32), ts, &mut |ch| out.take(ch));
                None
            }
            5 => {
                let ack = r.u32().unwrap_or(0);
                reasm.peer_ack(ack, ts, &mut |ch| out.take(ch));
                None
            }
            6 => {
                reasm.flush(ts, &mut |ch| out.take(ch));
                assert_eq!(reasm.buffered(), 0, "bytes still held after a flush");
                None
            }
            _ => {
                cursor = cursor.wrapping_add(r.u32().unwrap_or(0));
                None
            }
        };
        if let Some((seq, len)) = segment {
            let lost = if c & LOST != 0 {
                u32::from(r.u16().unwrap_or(0))
            } else {
                0
            };
            let payload = payload_for(seq, len, consistent, &mut r);
            let report = reasm.segment(seq, &payload, lost, fin, ts, &mut |ch| out.take(ch));
            if consistent {
                assert_eq!(
                    report.conflicting_bytes, 0,
                    "consistent payloads reported as conflicting"
                );
            }
            cursor = seq.wrapping_add(payload.len() as u32);
            if reasm.started() {
                assert!(
                    reasm.buffered() <= max_buffered,
                    "{} bytes held, limit {max_buffered}",
                    reasm.buffered()
                );
            }
        }
        assert_eq!(
            out.offset,
            reasm.next_offset(),
            "delivered bytes and offset disagree"
        );
        let stats = reasm.stats();
        assert_eq!(stats.delivered, out.data, "delivered count");
        assert_eq!(stats.missing, out.gaps, "missing count");
        if consistent {
            assert_eq!(stats.conflicting, 0, "conflicts counted");
        }
        assert_eq!(out.fin, reasm.finished(), "FIN delivery and state disagree");
    }
    reasm.flush(ts, &mut |ch| out.take(ch));
    assert_eq!(
        reasm.buffered(),
        0,
        "bytes still held after the final flush"
    );
    assert_eq!(out.offset, reasm.next_offset());
}
