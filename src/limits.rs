//! Resource limits: every buffer in mailsift has one, and hitting it is reported, never fatal.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// Bounds on memory and state, shared by the engine and the dissectors.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Most TCP flows tracked at once; beyond it the least recently active are evicted.
    pub max_flows: usize,
    /// A flow with no packet for this many seconds of capture time is finished.
    pub flow_idle_timeout_secs: u64,
    /// A flow closed by FIN or RST is finished after this many seconds of capture time.
    pub closed_linger_secs: u64,
    /// Out-of-order bytes buffered per direction before the oldest hole is declared a gap.
    pub max_ooo_bytes_per_direction: usize,
    /// Out-of-order bytes buffered across all flows.
    pub max_ooo_bytes_total: usize,
    /// Packets of the same flow to wait for a hole the peer has acknowledged to be filled.
    pub ack_gap_grace_packets: u32,
    /// Fragmented datagrams being reassembled at once.
    pub max_fragment_sets: usize,
    /// Bytes held in incomplete fragmented datagrams, across all of them.
    pub max_fragment_bytes: usize,
    /// Seconds of capture time an incomplete fragmented datagram is kept.
    pub fragment_timeout_secs: u64,
    /// Longest protocol line buffered; longer lines are cut and reported.
    pub max_line_len: usize,
    /// Events kept per session; more are counted.
    pub max_events_per_session: usize,
    /// Messages recorded per session; more are counted.
    pub max_messages_per_session: usize,
    /// Commands awaiting a reply (pipelining) per session.
    pub max_pending_commands: usize,
    /// Where messages and attachments are streamed for `--extract`; None when not extracting.
    pub spool: Option<Arc<crate::mail::Spool>>,
    /// The workers messages are decoded on, in a threaded run; None: on the engine's thread.
    pub workers: Option<crate::mail::MessageWorkers>,
    /// Messages whose MIME structure is decoded while they are open, across the run: each
    /// holds a decoder (header block, excerpts, URL scan) of up to a few hundred KiB, so past
    /// this a message that starts is recorded with its size and SHA-256 only.
    pub max_open_messages: usize,
    /// The run's count of messages open with a decoder (see `max_open_messages`); the engine
    /// installs a fresh one. Counted on the engine's thread only, so it is the same for any
    /// number of decoding threads.
    pub open_messages: Arc<std::sync::atomic::AtomicUsize>,
    /// Content hashes of parts and attachments (`--hashes`).
    pub hashes: crate::mail::HashSelection,
    /// Bounds on MIME decoding of messages.
    pub mime: crate::mail::MimeLimits,
    /// Bytes retained across all open sessions (events, message records, long lines, bytes held
    /// while waiting for a reply); past it, events are counted only.
    pub max_retained_bytes: usize,
    /// Bytes of events kept per session; more are counted.
    pub max_event_bytes_per_session: usize,
    /// The run's shared count for what records keep (events, message records, recipients):
    /// three quarters of `max_retained_bytes`; the engine installs a fresh one.
    pub budget: RetentionBudget,
    /// The run's shared count for what dissectors hold while they work (queued commands and
    /// replies, bytes held for a reply, long lines): the other quarter. Kept apart so a flood
    /// of such state cannot leave another session no room to record its login or message.
    pub work_budget: RetentionBudget,
    /// Whether messages and their parts are hashed (MD5, SHA-1, SHA-256). Off, their hash
    /// fields stay empty: for outputs that show none of them, such as `analyze`'s tables.
    pub content_hashes: bool,
    /// TLS secrets (`--keylog`): sessions whose keys are here are decrypted and dissected.
    pub keys: Option<Arc<crate::proto::tls::KeyStore>>,
    /// How far a gzip-compressed capture file may expand (`--max-gunzip-ratio`).
    pub gunzip: crate::capture::gunzip::GunzipLimit,
}

impl Limits {
    /// Bytes one open flow holds at rest: its table entry, the TCP state with both
    /// reassemblers, the session record and the dissector (SMTP, POP3 or the content probe,
    /// whichever is largest); `tests/memory.rs` measures it.
    pub const FLOW_BASE_BYTES: usize = 7 << 10;
    /// Bytes a flow may hold beyond its base without drawing on a shared pool: the free part
    /// of a protocol line per side, of bytes held for a reply and of its command and reply
    /// queues, or a content probe's first bytes; `tests/memory.rs` measures the worst cases.
    pub const FLOW_FREE_BYTES: usize = 7 << 10;
    /// What a run holds whatever its input: code tables, read and write buffers, the decoder,
    /// the workers' job queues, bookkeeping of fragment sets, and the largest capture record
    /// accepted, which may be held up to three times over (read, decompressed, decoded).
    pub const FIXED_BYTES: usize = (16 << 20) + 3 * crate::capture::file::MAX_RECORD_LEN;

    /// The most bytes the engine thread holds with these limits, on any input: every flow
    /// the table may track at its base and free allowance, and the shared pools every growth
    /// past that is charged to (out-of-order segments, IP fragments, the retention budget).
    pub fn engine_bound(&self) -> usize {
        let per_flow = Self::FLOW_BASE_BYTES + Self::FLOW_FREE_BYTES;
        self.max_flows.saturating_mul(per_flow)
            + self.max_ooo_bytes_total
            + self.max_fragment_bytes
            + self.max_retained_bytes
    }

    /// What one message open with a decoder may hold at worst: a header block of up to
    /// 64 KiB, up to 64 KiB of the fields that shape a message past it, two 16 KiB body
    /// excerpts, text waiting for the URL scan (under 48 KiB) and a 20 KiB batch for its worker.
    pub const OPEN_MESSAGE_BYTES: usize = 230 << 10;

    /// The most bytes a run holds with these limits, on any input (README, "Memory"): the
    /// fixed part, [`Limits::engine_bound`], the messages open with a decoder, the message
    /// bytes queued for the decoding workers, and the finished records waiting for the
    /// reporter (each at most `max_event_bytes_per_session` of events) and the one being written.
    pub fn memory_bound(&self) -> usize {
        let records = (crate::engine::REPORT_QUEUE + 1) * self.max_event_bytes_per_session;
        let decoders = self
            .max_open_messages
            .saturating_mul(Self::OPEN_MESSAGE_BYTES);
        Self::FIXED_BYTES
            + self.engine_bound()
            + decoders
            + crate::engine::QUEUED_MESSAGE_BYTES
            + records
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_flows: 16_384,
            max_open_messages: 1024,
            open_messages: Arc::default(),
            flow_idle_timeout_secs: 600,
            closed_linger_secs: 5,
            max_ooo_bytes_per_direction: 1 << 20,
            max_ooo_bytes_total: 32 << 20,
            ack_gap_grace_packets: 32,
            max_fragment_sets: 8192,
            max_fragment_bytes: 16 << 20,
            fragment_timeout_secs: 30,
            max_line_len: 64 << 10,
            max_events_per_session: 100_000,
            max_messages_per_session: 100_000,
            max_pending_commands: 1000,
            spool: None,
            workers: None,
            hashes: crate::mail::HashSelection::ALL,
            mime: crate::mail::MimeLimits::default(),
            max_retained_bytes: 128 << 20,
            max_event_bytes_per_session: 4 << 20,
            budget: RetentionBudget::unlimited(),
            work_budget: RetentionBudget::unlimited(),
            content_hashes: true,
            keys: None,
            gunzip: crate::capture::gunzip::GunzipLimit::default(),
        }
    }
}

/// A count of bytes retained across all sessions of a run, against one limit. Clones share
/// the count, so each dissector and record holds a handle; each releases what it reserved.
#[derive(Debug, Clone, Default)]
pub struct RetentionBudget(Option<Arc<BudgetCount>>);

#[derive(Debug)]
struct BudgetCount {
    limit: usize,
    used: AtomicUsize,
    peak: AtomicUsize,
    refusals: AtomicU64,
}

impl RetentionBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> Self {
        RetentionBudget(Some(Arc::new(BudgetCount {
            limit,
            used: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            refusals: AtomicU64::new(0),
        })))
    }

    /// No limit and no count (unit tests, single dissectors).
    pub fn unlimited() -> Self {
        RetentionBudget(None)
    }

    /// Reserves `n` bytes; false (and nothing reserved) when that would pass the limit.
    pub fn try_reserve(&self, n: usize) -> bool {
        let Some(c) = &self.0 else {
            return true;
        };
        // The engine thread reserves; the reporting thread may release at the same time, so
        // the count changes atomically. Relaxed: it orders nothing else.
        let granted = c
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|total| *total <= c.limit)
            });
        match granted {
            Ok(used) => {
                c.peak.fetch_max(used + n, Ordering::Relaxed);
                true
            }
            Err(_) => {
                c.refusals.fetch_add(1, Ordering::Relaxed);
                false
            }
        }
    }

    /// Makes `buf` able to hold `need` bytes, with its allocation beyond the first `free` bytes
    /// reserved against the budget (`reserved` counts what is): doubling when the budget allows,
    /// else exactly `need`, and not past `max` unless `need` is. Returns false, with nothing
    /// changed, when even `need` is refused.
    pub fn grow(
        &self,
        buf: &mut Vec<u8>,
        reserved: &mut usize,
        need: usize,
        max: usize,
        free: usize,
    ) -> bool {
        if need <= free {
            return true;
        }
        let covered = free + *reserved;
        if need <= covered {
            if buf.capacity() < need {
                buf.reserve_exact(covered - buf.len());
            }
            return true;
        }
        let roomy = need.max(covered * 2).min(max.max(need));
        let cap = if self.available() >= roomy - covered {
            roomy
        } else {
            need
        };
        if !self.try_reserve(cap - covered) {
            return false;
        }
        *reserved = cap - free;
        buf.reserve_exact(cap - buf.len());
        true
    }

    /// Returns `n` reserved bytes.
    pub fn release(&self, n: usize) {
        if let Some(c) = &self.0 {
            let _ = c
                .used
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                    Some(used.saturating_sub(n))
                });
        }
    }

    /// The limit, or `None` when unlimited.
    pub fn limit(&self) -> Option<usize> {
        self.0.as_ref().map(|c| c.limit)
    }

    /// Bytes reserved now.
    pub fn used(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |c| c.used.load(Ordering::Relaxed))
    }

    /// Bytes that can still be reserved.
    pub fn available(&self) -> usize {
        self.0.as_ref().map_or(usize::MAX, |c| {
            c.limit.saturating_sub(c.used.load(Ordering::Relaxed))
        })
    }

    /// The most bytes reserved at once.
    pub fn peak(&self) -> usize {
        self.0
            .as_ref()
            .map_or(0, |c| c.peak.load(Ordering::Relaxed))
    }

    /// Reservations refused because the limit was reached.
    pub fn refusals(&self) -> u64 {
        self.0
            .as_ref()
            .map_or(0, |c| c.refusals.load(Ordering::Relaxed))
    }
}

/// Entries a session's queue (pending commands, replies ahead of their commands) holds
/// without asking the run's budget; past them each entry is reserved against it.
pub const QUEUE_FREE_ENTRIES: usize = 8;

/// Heap bytes (a mailbox path, a reply's text) the free entries of a queue carry between
/// them without asking the run's budget.
const QUEUE_FREE_TEXT: usize = QUEUE_FREE_ENTRIES * 64;

/// What a queue of `len` entries of `T` carrying `text` heap bytes is charged: twice each
/// entry past the free ones, as a deque's capacity can be up to twice its length, and the
/// text past the free part.
fn queue_cost<T>(len: usize, text: usize) -> usize {
    len.saturating_sub(QUEUE_FREE_ENTRIES) * 2 * std::mem::size_of::<T>()
        + text.saturating_sub(QUEUE_FREE_TEXT)
}

/// Bytes one holder keeps reserved against the run's budget, given back when it is dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    budget: RetentionBudget,
    reserved: usize,
    /// Heap bytes of the queue's entries, as last counted (an over-estimate between counts).
    text: usize,
}

impl Reservation {
    /// Against `budget`, nothing reserved yet.
    pub fn new(budget: RetentionBudget) -> Self {
        Reservation {
            budget,
            reserved: 0,
            text: 0,
        }
    }

    /// Bytes reserved now.
    pub fn reserved(&self) -> usize {
        self.reserved
    }

    /// Makes the reservation `need` bytes; false, keeping what was reserved, when the budget
    /// refuses the more.
    pub fn set(&mut self, need: usize) -> bool {
        if need > self.reserved {
            if !self.budget.try_reserve(need - self.reserved) {
                return false;
            }
        } else {
            self.budget.release(self.reserved - need);
        }
        self.reserved = need;
        true
    }

    /// Whether `q` may take one more entry carrying `text` heap bytes: past the free entries
    /// and text it is reserved first.
    pub fn admit<T>(&mut self, q: &VecDeque<T>, text: usize) -> bool {
        let need = queue_cost::<T>(q.len() + 1, self.text + text);
        let ok = need <= self.reserved || self.set(need);
        if ok {
            self.text += text;
        }
        ok
    }

    /// Counts `cost` more bytes kept until the holder is dropped (records that only grow);
    /// past the first `free` of them they are reserved first. False, with nothing counted,
    /// when the budget refuses. Not for a queue that also uses [`Reservation::admit`].
    pub fn keep(&mut self, cost: usize, free: usize) -> bool {
        let need = (self.text + cost).saturating_sub(free);
        let ok = need <= self.reserved || self.set(need);
        if ok {
            self.text += cost;
        }
        ok
    }

    /// Whether [`Reservation::admit`] would take one more entry into `q`, reserving nothing.
    pub fn fits<T>(&self, q: &VecDeque<T>, text: usize) -> bool {
        let need = queue_cost::<T>(q.len() + 1, self.text + text);
        need <= self.reserved || self.budget.available() >= need - self.reserved
    }

    /// Settles to what `q` holds now (`text` tells an entry's heap bytes): gives back what it
    /// no longer needs, and the spare capacity of a queue that has drained (it would
    /// otherwise outlive the burst, uncounted).
    pub fn settle<T>(&mut self, q: &mut VecDeque<T>, text: impl Fn(&T) -> usize) {
        if q.capacity() > 2 * QUEUE_FREE_ENTRIES && q.len() < q.capacity() / 4 {
            q.shrink_to((2 * q.len()).max(QUEUE_FREE_ENTRIES));
        }
        self.text = q.iter().map(text).sum();
        let need = queue_cost::<T>(q.len(), self.text);
        if need < self.reserved {
            self.set(need);
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.reserved);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_refuses_past_its_limit_and_recovers_on_release() {
        let b = RetentionBudget::new(100);
        let shared = b.clone();
        assert!(b.try_reserve(60));
        assert!(!shared.try_reserve(41));
        assert!(shared.try_reserve(40));
        assert_eq!(b.used(), 100);
        b.release(60);
        assert!(shared.try_reserve(50));
        assert_eq!((b.used(), b.peak(), b.refusals()), (90, 100, 1));
        assert!(!b.try_reserve(usize::MAX));
    }

    #[test]
    fn grow_counts_the_allocation_past_the_free_part_and_falls_back_to_exact() {
        let b = RetentionBudget::new(1000);
        let (mut buf, mut reserved) = (Vec::new(), 0);
        assert!(b.grow(&mut buf, &mut reserved, 100, 10_000, 100));
        assert_eq!(b.used(), 0, "within the free part");
        assert!(b.grow(&mut buf, &mut reserved, 300, 10_000, 100));
        assert_eq!(
            (reserved, b.used()),
            (200, 200),
            "the part past the free 100"
        );
        assert!(b.grow(&mut buf, &mut reserved, 400, 10_000, 100));
        assert_eq!(reserved, 500, "doubled: 600 in all");
        assert!(buf.capacity() >= 600);
        // Doubling again (1200) would pass the budget; exactly what is needed still fits.
        assert!(b.grow(&mut buf, &mut reserved, 900, 10_000, 100));
        assert_eq!((reserved, b.used()), (800, 800));
        assert!(!b.grow(&mut buf, &mut reserved, 1200, 10_000, 100));
        assert_eq!(
            (reserved, b.used()),
            (800, 800),
            "nothing changed on refusal"
        );
    }

    #[test]
    fn a_queue_past_its_free_entries_is_charged_and_refused_when_the_budget_is_spent() {
        // Each entry (a u64) carries 64 bytes of text: the free text covers the free entries.
        let entry = 2 * 8 + 64;
        let b = RetentionBudget::new(4 * entry);
        let mut charge = Reservation::new(b.clone());
        let mut q: VecDeque<u64> = VecDeque::new();
        while charge.admit(&q, 64) {
            q.push_back(64);
        }
        assert_eq!(
            q.len(),
            QUEUE_FREE_ENTRIES + 4,
            "the free entries, then the budget's"
        );
        assert_eq!(b.used(), b.limit().unwrap());
        assert!(!charge.fits(&q, 0), "not even an entry without text");
        q.truncate(QUEUE_FREE_ENTRIES + 1);
        charge.settle(&mut q, |t| *t as usize);
        assert_eq!(b.used(), entry, "one entry still charged");
        assert!(charge.fits(&q, 64));
        drop(charge);
        assert_eq!(b.used(), 0, "given back when dropped");
    }

    #[test]
    fn unlimited_budget_always_grants() {
        let b = RetentionBudget::unlimited();
        assert!(b.try_reserve(usize::MAX));
        assert_eq!((b.used(), b.limit()), (0, None));
    }
}
