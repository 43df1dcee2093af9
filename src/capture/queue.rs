//! The hand-off from the live capture thread to the engine: a bounded queue of packet batches.
//!
//! The capture thread copies each packet into the batch it is filling and hands full batches
//! over; one lock per batch, not per packet. Batches are recycled, never freed until the
//! queue is: a capture allocates only while the queue grows past its earlier high-water mark,
//! and its memory, once used, stays with it (at most the queue's bound). Freeing and
//! allocating megabyte buffers instead took most of the capture thread's time at 1 Gbit/s
//! (12% of the process's), in page faults on memory the allocator had handed back. The queue is bounded by packets and by bytes, counting every packet
//! handed over and not yet read through as well as the batch being filled. A packet that does
//! not fit is dropped and counted: the capture thread never waits, since while it waited the
//! kernel's buffer would overflow instead, where the loss is only seen at the end.

use crate::time::Timestamp;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Instant;

/// How much the queue holds before packets are dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Bytes of packet data.
    pub bytes: usize,
    /// Packets.
    pub packets: usize,
}

impl Default for QueueLimits {
    /// 256 MiB or 1,048,576 packets: about two seconds of a saturated 1 Gbit/s link, so the
    /// engine may fall behind for that long (a burst of big messages to decode, a slow output)
    /// and catch up without a loss. The packet bound keeps floods of small packets, whose
    /// per-packet work is the larger cost, to the same order of time.
    fn default() -> Self {
        QueueLimits {
            bytes: 256 << 20,
            packets: 1 << 20,
        }
    }
}

/// Packets in one hand-off, at most.
const BATCH_PACKETS: usize = 512;

/// Bytes in one hand-off: a batch is handed over before it would hold more. Its buffer is
/// allocated at this size once, and grows only for a single packet larger than this.
const BATCH_BYTES: usize = 1 << 20;

/// One packet's place in a batch.
#[derive(Debug, Clone, Copy)]
struct Header {
    ts: Timestamp,
    orig_len: u32,
    /// Where its bytes end in the batch's data.
    end: usize,
}

/// Packets copied one after another into one buffer.
#[derive(Debug)]
pub struct Batch {
    data: Vec<u8>,
    headers: Vec<Header>,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            data: Vec::with_capacity(BATCH_BYTES),
            headers: Vec::with_capacity(BATCH_PACKETS),
        }
    }

    /// Packets in the batch.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether the batch holds no packet.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Bytes of packet data in the batch.
    pub fn bytes(&self) -> usize {
        self.data.len()
    }

    /// Packet `i`: capture time, length on the wire, captured bytes.
    pub fn get(&self, i: usize) -> Option<(Timestamp, u32, &[u8])> {
        let h = self.headers.get(i)?;
        let start = match i {
            0 => 0,
            _ => self.headers.get(i - 1).map_or(0, |p| p.end),
        };
        Some((h.ts, h.orig_len, self.data.get(start..h.end)?))
    }

    fn push(&mut self, ts: Timestamp, orig_len: u32, data: &[u8]) {
        self.data.extend_from_slice(data);
        self.headers.push(Header {
            ts,
            orig_len,
            end: self.data.len(),
        });
    }

    /// Whether `len` more bytes would take the batch past its size.
    fn is_full_for(&self, len: usize) -> bool {
        !self.is_empty()
            && (self.headers.len() >= BATCH_PACKETS || self.data.len() + len > BATCH_BYTES)
    }

    fn clear(&mut self) {
        self.data.clear();
        self.headers.clear();
    }
}

struct State {
    ready: VecDeque<Batch>,
    spare: Vec<Batch>,
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    /// Signalled when a batch is handed over or the queue closes.
    filled: Condvar,
    /// Packets and bytes handed over and not yet read through.
    queued_packets: AtomicUsize,
    queued_bytes: AtomicUsize,
    dropped: AtomicU64,
    /// Set when the consumer is gone: the producer may stop.
    abandoned: AtomicBool,
    limits: QueueLimits,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // Neither side panics while holding the lock; if one did, the data is still whole.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A new queue, as its two ends.
pub fn queue(limits: QueueLimits) -> (Producer, Consumer) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            ready: VecDeque::new(),
            spare: Vec::new(),
            closed: false,
        }),
        filled: Condvar::new(),
        queued_packets: AtomicUsize::new(0),
        queued_bytes: AtomicUsize::new(0),
        dropped: AtomicU64::new(0),
        abandoned: AtomicBool::new(false),
        limits,
    });
    (
        Producer {
            shared: Arc::clone(&shared),
            batch: Batch::new(),
            closed: false,
        },
        Consumer {
            shared,
            peak: (0, 0),
        },
    )
}

/// The capture thread's end.
pub struct Producer {
    shared: Arc<Shared>,
    batch: Batch,
    closed: bool,
}

impl Producer {
    /// Copies a packet into the queue; `false` when it did not fit and was dropped (counted).
    pub fn push(&mut self, ts: Timestamp, orig_len: u32, data: &[u8]) -> bool {
        let s = &self.shared;
        let packets = s.queued_packets.load(Ordering::Relaxed) + self.batch.len();
        let bytes = s.queued_bytes.load(Ordering::Relaxed) + self.batch.bytes();
        // A packet larger than the whole queue still goes through an empty one.
        let fits = packets == 0
            || (packets < s.limits.packets && bytes.saturating_add(data.len()) <= s.limits.bytes);
        if !fits {
            s.dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        if self.batch.is_full_for(data.len()) {
            self.flush();
        }
        self.batch.push(ts, orig_len, data);
        true
    }

    /// Hands the packets copied so far to the consumer (done when the capture goes quiet).
    pub fn flush(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let s = &self.shared;
        // Counted before the batch can be read, so the consumer never subtracts first.
        s.queued_packets
            .fetch_add(self.batch.len(), Ordering::Relaxed);
        s.queued_bytes
            .fetch_add(self.batch.bytes(), Ordering::Relaxed);
        let mut state = s.lock();
        let next = state.spare.pop().unwrap_or_else(Batch::new);
        state
            .ready
            .push_back(std::mem::replace(&mut self.batch, next));
        drop(state);
        s.filled.notify_one();
    }

    /// Packets dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// Whether the consumer is gone, so nothing captured would be read.
    pub fn abandoned(&self) -> bool {
        self.shared.abandoned.load(Ordering::Relaxed)
    }

    /// Hands over what is left and ends the queue: the consumer reads the rest, then the end.
    pub fn close(mut self) {
        self.flush();
        self.end();
    }

    fn end(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.shared.lock().closed = true;
        self.shared.filled.notify_all();
    }
}

impl Drop for Producer {
    /// A capture thread that panics still ends the queue, so the consumer does not wait forever.
    fn drop(&mut self) {
        self.end();
    }
}

/// What [`Consumer::next`] found.
#[derive(Debug)]
pub enum Next {
    /// Packets, in the order they were pushed.
    Batch(Batch),
    /// The deadline passed with no packet.
    Timeout,
    /// The queue is closed and everything in it was read.
    Closed,
}

/// The engine's end.
pub struct Consumer {
    shared: Arc<Shared>,
    /// The most packets and bytes seen queued (handed over, not yet read through).
    peak: (usize, usize),
}

impl Consumer {
    /// Returns `done` (a batch read through) for reuse, then waits for the next batch until
    /// `deadline` (for ever when `None`).
    pub fn next(&mut self, done: Option<Batch>, deadline: Option<Instant>) -> Next {
        let s = &*self.shared;
        let mut state = s.lock();
        if let Some(mut b) = done {
            s.queued_packets.fetch_sub(b.len(), Ordering::Relaxed);
            s.queued_bytes.fetch_sub(b.bytes(), Ordering::Relaxed);
            b.clear();
            state.spare.push(b);
        }
        loop {
            if let Some(b) = state.ready.pop_front() {
                let (packets, bytes) = (
                    s.queued_packets.load(Ordering::Relaxed),
                    s.queued_bytes.load(Ordering::Relaxed),
                );
                self.peak = (self.peak.0.max(packets), self.peak.1.max(bytes));
                return Next::Batch(b);
            }
            if state.closed {
                return Next::Closed;
            }
            state = match deadline {
                None => s.filled.wait(state).unwrap_or_else(|p| p.into_inner()),
                Some(at) => {
                    let left = at.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Next::Timeout;
                    }
                    s.filled
                        .wait_timeout(state, left)
                        .unwrap_or_else(|p| p.into_inner())
                        .0
                }
            };
        }
    }

    /// Packets dropped so far because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped.load(Ordering::Relaxed)
    }

    /// The most packets and bytes that were queued at once, as the consumer saw it.
    pub fn peak(&self) -> (usize, usize) {
        self.peak
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shared.abandoned.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn packet(n: u32) -> Vec<u8> {
        n.to_be_bytes().repeat(1 + n as usize % 5)
    }

    /// Reads everything up to the close, returning (timestamp, orig_len, bytes) per packet.
    fn drain(c: &mut Consumer) -> Vec<(i64, u32, Vec<u8>)> {
        let mut out = Vec::new();
        let mut done = None;
        loop {
            match c.next(done.take(), Some(Instant::now() + Duration::from_secs(5))) {
                Next::Batch(b) => {
                    for i in 0..b.len() {
                        let (ts, orig_len, data) = b.get(i).expect("packet in batch");
                        out.push((ts.0, orig_len, data.to_vec()));
                    }
                    done = Some(b);
                }
                Next::Timeout => panic!("queue not closed"),
                Next::Closed => return out,
            }
        }
    }

    #[test]
    fn keeps_order_across_batches_and_drops_what_does_not_fit() {
        let limits = QueueLimits {
            bytes: usize::MAX,
            packets: 1000,
        };
        let (mut p, mut c) = queue(limits);
        // Nothing is read while 1500 packets arrive: the first 1000 fit, the rest are dropped.
        let mut kept = Vec::new();
        for n in 0..1500u32 {
            let data = packet(n);
            if p.push(Timestamp(i64::from(n)), n + 1000, &data) {
                kept.push((i64::from(n), n + 1000, data));
            }
        }
        assert_eq!(kept.len(), 1000);
        assert_eq!(p.dropped(), 500);
        p.close();
        let read = drain(&mut c);
        assert_eq!(read, kept, "every kept packet, in order, byte for byte");
        assert_eq!(c.dropped(), 500);
        assert_eq!(c.peak().0, 1000, "all of it was queued at once");
    }

    #[test]
    fn the_byte_bound_counts_the_batch_being_filled_and_reading_makes_room() {
        let (mut p, mut c) = queue(QueueLimits {
            bytes: 100,
            packets: usize::MAX,
        });
        assert!(p.push(Timestamp(1), 60, &[1; 60]));
        assert!(!p.push(Timestamp(2), 60, &[2; 60]), "160 bytes exceed 100");
        assert!(p.push(Timestamp(3), 40, &[3; 40]));
        p.flush();
        assert!(
            !p.push(Timestamp(4), 1, &[4]),
            "handed over is still queued"
        );
        let Next::Batch(b) = c.next(None, None) else {
            panic!("a batch");
        };
        assert_eq!(b.len(), 2);
        assert!(
            !p.push(Timestamp(5), 1, &[5]),
            "a batch being read still counts"
        );
        // Reading it through (returning it) makes room again.
        let next = c.next(Some(b), Some(Instant::now()));
        assert!(matches!(next, Next::Timeout));
        assert!(p.push(Timestamp(6), 100, &[6; 100]));
        assert_eq!(p.dropped(), 3);
        p.close();
        let read = drain(&mut c);
        assert_eq!(read, vec![(6, 100, vec![6; 100])]);
    }

    #[test]
    fn a_packet_larger_than_the_queue_passes_an_empty_one() {
        let (mut p, mut c) = queue(QueueLimits {
            bytes: 10,
            packets: 10,
        });
        assert!(p.push(Timestamp(1), 20, &[0; 20]));
        assert!(!p.push(Timestamp(2), 1, &[0]));
        p.close();
        assert_eq!(drain(&mut c).len(), 1);
    }

    #[test]
    fn a_consumer_waits_for_batches_from_another_thread() {
        let (mut p, mut c) = queue(QueueLimits::default());
        let producer = std::thread::spawn(move || {
            for n in 0..5000u32 {
                assert!(p.push(Timestamp(i64::from(n)), n, &n.to_le_bytes()));
                if n % 700 == 0 {
                    p.flush();
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            p.close();
        });
        let read = drain(&mut c);
        producer.join().expect("producer");
        let expected: Vec<_> = (0..5000u32)
            .map(|n| (i64::from(n), n, n.to_le_bytes().to_vec()))
            .collect();
        assert_eq!(read, expected);
        assert_eq!(c.dropped(), 0);
    }

    #[test]
    fn a_dropped_producer_ends_the_queue_and_a_dropped_consumer_is_noticed() {
        let (mut p, mut c) = queue(QueueLimits::default());
        assert!(p.push(Timestamp(1), 1, &[1]));
        p.flush();
        drop(p);
        assert_eq!(drain(&mut c).len(), 1);

        let (p, c) = queue(QueueLimits::default());
        assert!(!p.abandoned());
        drop(c);
        assert!(p.abandoned());
    }
}
