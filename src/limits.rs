//! Resource limits: every buffer in mailsift has one, and hitting it is reported, never fatal.

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
    /// Message bytes kept for MIME decoding and extraction; beyond this they are hashed and counted only.
    pub max_message_bytes: usize,
    /// Events kept per session; more are counted.
    pub max_events_per_session: usize,
    /// Commands awaiting a reply (pipelining) per session.
    pub max_pending_commands: usize,
    /// Whether dissectors hand raw message bytes to the output (for `--extract`).
    pub keep_message_bytes: bool,
    /// Bounds on MIME decoding of messages.
    pub mime: crate::mail::MimeLimits,
    /// Whether messages and their parts are hashed (MD5, SHA-1, SHA-256). Off, their hash
    /// fields stay empty: for outputs that show none of them, such as `analyze`'s tables.
    pub content_hashes: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_flows: 262_144,
            flow_idle_timeout_secs: 600,
            closed_linger_secs: 5,
            max_ooo_bytes_per_direction: 1 << 20,
            max_ooo_bytes_total: 512 << 20,
            ack_gap_grace_packets: 32,
            max_fragment_sets: 8192,
            max_fragment_bytes: 64 << 20,
            fragment_timeout_secs: 30,
            max_line_len: 64 << 10,
            max_message_bytes: 64 << 20,
            max_events_per_session: 100_000,
            max_pending_commands: 1000,
            keep_message_bytes: false,
            mime: crate::mail::MimeLimits::default(),
            content_hashes: true,
        }
    }
}
