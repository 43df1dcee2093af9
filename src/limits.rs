//! Resource limits: every buffer in mailsift has one, and hitting it is reported, never fatal.

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
    /// Content hashes of parts and attachments (`--hashes`).
    pub hashes: crate::mail::HashSelection,
    /// Bounds on MIME decoding of messages.
    pub mime: crate::mail::MimeLimits,
    /// Bytes retained across all open sessions (events, message records, long lines, bytes held
    /// while waiting for a reply); past it, events are counted only.
    pub max_retained_bytes: usize,
    /// Bytes of events kept per session; more are counted.
    pub max_event_bytes_per_session: usize,
    /// The run's shared count against `max_retained_bytes`; the engine installs a fresh one.
    pub budget: RetentionBudget,
    /// Whether messages and their parts are hashed (MD5, SHA-1, SHA-256). Off, their hash
    /// fields stay empty: for outputs that show none of them, such as `analyze`'s tables.
    pub content_hashes: bool,
    /// TLS secrets (`--keylog`): sessions whose keys are here are decrypted and dissected.
    pub keys: Option<Arc<crate::proto::tls::KeyStore>>,
    /// How far a gzip-compressed capture file may expand (`--max-gunzip-ratio`).
    pub gunzip: crate::capture::gunzip::GunzipLimit,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_flows: 131_072,
            flow_idle_timeout_secs: 600,
            closed_linger_secs: 5,
            max_ooo_bytes_per_direction: 1 << 20,
            max_ooo_bytes_total: 512 << 20,
            ack_gap_grace_packets: 32,
            max_fragment_sets: 8192,
            max_fragment_bytes: 64 << 20,
            fragment_timeout_secs: 30,
            max_line_len: 64 << 10,
            max_events_per_session: 100_000,
            max_messages_per_session: 100_000,
            max_pending_commands: 1000,
            spool: None,
            workers: None,
            hashes: crate::mail::HashSelection::ALL,
            mime: crate::mail::MimeLimits::default(),
            max_retained_bytes: 256 << 20,
            max_event_bytes_per_session: 32 << 20,
            budget: RetentionBudget::unlimited(),
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
        // One engine thread reserves; relaxed ordering is enough for a count.
        let used = c.used.load(Ordering::Relaxed);
        match used.checked_add(n) {
            Some(total) if total <= c.limit => {
                c.used.store(total, Ordering::Relaxed);
                c.peak.fetch_max(total, Ordering::Relaxed);
                true
            }
            _ => {
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
            let used = c.used.load(Ordering::Relaxed);
            c.used.store(used.saturating_sub(n), Ordering::Relaxed);
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
    fn unlimited_budget_always_grants() {
        let b = RetentionBudget::unlimited();
        assert!(b.try_reserve(usize::MAX));
        assert_eq!((b.used(), b.limit()), (0, None));
    }
}
