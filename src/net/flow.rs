//! TCP connections and the table that owns every flow's state.
//!
//! The table is generic over the application state `T` a flow carries, so `net` never
//! knows about mail protocols. All per-flow state lives here (no globals), so flows can be
//! sharded across threads by [`FlowKey`] hash later.

use super::reassembly::Reassembler;
use crate::session::{Direction, Endpoint, PerDirection};
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

/// A TCP connection's 4-tuple in a direction-independent order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FlowKey {
    lo: (IpAddr, u16),
    hi: (IpAddr, u16),
}

impl FlowKey {
    /// The key of the connection between two endpoints, whichever sent the packet.
    pub fn new(a: (IpAddr, u16), b: (IpAddr, u16)) -> Self {
        if a <= b {
            FlowKey { lo: a, hi: b }
        } else {
            FlowKey { lo: b, hi: a }
        }
    }

    /// A hash of the key that is the same for both directions, on every machine and in every
    /// build (FNV-1a over the endpoints in order), so shards of one capture agree on a flow.
    pub fn stable_hash(&self) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut eat = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        for (ip, port) in [self.lo, self.hi] {
            match ip {
                IpAddr::V4(v4) => eat(&v4.octets()),
                IpAddr::V6(v6) => eat(&v6.octets()),
            }
            eat(&port.to_be_bytes());
        }
        h
    }
}

/// One of `count` shards of a run (`--shard K/N`): it analyses the flows whose
/// [`FlowKey::stable_hash`] falls to it, so N runs over the same inputs share the work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// Which shard, from 0.
    pub index: u32,
    /// How many shards.
    pub count: u32,
}

impl Shard {
    /// Whether the flow with `key` is this shard's.
    pub fn owns(&self, key: &FlowKey) -> bool {
        self.count <= 1 || key.stable_hash() % u64::from(self.count) == u64::from(self.index)
    }
}

/// TCP-level state of one connection: roles, reassembly per direction, close state.
pub struct TcpConnection {
    /// The initiator.
    pub client: Endpoint,
    /// The side on the service port.
    pub server: Endpoint,
    /// Reassembly of what each side sent.
    pub streams: PerDirection<Reassembler>,
    /// Number (1-based, across all inputs) of the connection's first packet.
    pub first_packet: u64,
    /// Time of the first packet.
    pub first_seen: Timestamp,
    /// Time of the latest packet.
    pub last_seen: Timestamp,
    /// The client's initial sequence number, when its SYN (or the server's SYN-ACK) was seen.
    pub client_isn: Option<u32>,
    /// The lowest sequence number and the furthest end (data and FIN) the client has used.
    pub client_span: Option<(u32, u32)>,
    /// FIN seen per direction.
    pub fin: PerDirection<bool>,
    /// A RST was seen.
    pub rst: bool,
    /// Sequence number of the RST each side sent, if it sent one: only data of that side
    /// beyond it contradicts the reset (data before it was sent first, whatever its
    /// capture order).
    pub rst_seq: PerDirection<Option<u32>>,
    /// When the connection was closed (both FINs, or a RST).
    pub closed_at: Option<Timestamp>,
    /// The client acknowledged the server's SYN: a handshake completed, which a SYN flood's
    /// half-open flows never do.
    pub established: bool,
}

impl TcpConnection {
    /// A new connection with the given roles and reassembly limits.
    pub fn new(
        client: Endpoint,
        server: Endpoint,
        first_packet: u64,
        ts: Timestamp,
        max_buffered: usize,
        ack_grace: u32,
    ) -> Self {
        TcpConnection {
            client,
            server,
            streams: PerDirection {
                client: Reassembler::new(max_buffered, ack_grace),
                server: Reassembler::new(max_buffered, ack_grace),
            },
            first_packet,
            first_seen: ts,
            last_seen: ts,
            client_isn: None,
            client_span: None,
            fin: PerDirection::default(),
            rst: false,
            rst_seq: PerDirection::default(),
            closed_at: None,
            established: false,
        }
    }

    /// Which side sent a packet from `src`.
    pub fn direction_of(&self, src: IpAddr, src_port: u16) -> Direction {
        if self.client.ip == src && self.client.port == src_port {
            Direction::Client
        } else {
            Direction::Server
        }
    }

    /// Widens the client's span by a segment from `seq` to `end`. A segment that would stretch
    /// it beyond [`MAX_CLIENT_SPAN`] (out of window, or hostile) is ignored, so that the span
    /// cannot grow to swallow every sequence number.
    pub fn note_client_seq(&mut self, seq: u32, end: u32) {
        let (low, high) = match self.client_span {
            None => (seq, end),
            Some((low, high)) => {
                let inside = |x: u32| x.wrapping_sub(low) <= high.wrapping_sub(low);
                let near = |distance: u32| distance <= MAX_CLIENT_SPAN;
                let low = if !inside(seq) && near(low.wrapping_sub(seq)) {
                    seq
                } else {
                    low
                };
                let high = if !inside(end) && near(end.wrapping_sub(high)) {
                    end
                } else {
                    high
                };
                (low, high)
            }
        };
        if high.wrapping_sub(low) <= MAX_CLIENT_SPAN {
            self.client_span = Some((low, high));
        }
    }

    /// Whether a client SYN with sequence number `seq` is this connection's own (a copy
    /// captured late or resent) rather than a new connection on the same ports: its first
    /// data byte falls in, or just before, the sequence numbers the client already used.
    ///
    /// A new connection picks an unrelated ISN (RFC 6528), so it lands in that range only by
    /// a chance of about (span + window) / 2^32.
    pub fn is_own_syn(&self, seq: u32) -> bool {
        if self.client_isn == Some(seq) {
            return true;
        }
        let Some((low, high)) = self.client_span else {
            return false;
        };
        let first = seq.wrapping_add(1);
        let from = low.wrapping_sub(OWN_SYN_SLACK);
        first.wrapping_sub(from) <= high.wrapping_sub(from)
    }

    /// Whether anything of the client's sequence space is known (its SYN, its data, or the
    /// ISN a SYN-ACK acknowledged); without it no SYN can be told to be unrelated.
    pub fn knows_client_seq(&self) -> bool {
        self.client_isn.is_some() || self.client_span.is_some()
    }

    /// How much of a conversation the flow carried: 0 for a SYN or a half-open probe, 1 for a
    /// completed handshake without payload yet, 2 with payload one way, 3 both ways. The table
    /// evicts the lowest first, so a connection that has only just been set up when a SYN
    /// flood arrives is not the one to go.
    pub fn substance(&self) -> u8 {
        let ways = u8::from(self.streams.client.next_offset() > 0)
            + u8::from(self.streams.server.next_offset() > 0);
        if ways > 0 {
            ways + 1
        } else {
            u8::from(self.established)
        }
    }

    /// Out-of-order bytes both streams hold now.
    pub fn buffered(&self) -> usize {
        self.streams.client.buffered() + self.streams.server.buffered()
    }

    /// Whether both sides finished or one reset.
    pub fn is_closed(&self) -> bool {
        self.rst || (self.fin.client && self.fin.server)
    }

    /// Marks the connection closed if it just became so.
    pub fn note_close(&mut self, ts: Timestamp) {
        if self.closed_at.is_none() && self.is_closed() {
            self.closed_at = Some(ts);
        }
    }
}

/// How far before the lowest client sequence number seen a SYN still counts as the
/// connection's own: a receive window's worth, for first segments captured after later ones.
const OWN_SYN_SLACK: u32 = 64 << 10;

/// Widest client span kept (see [`TcpConnection::note_client_seq`]).
pub const MAX_CLIENT_SPAN: u32 = 1 << 30;

/// One tracked flow: its TCP state and whatever the application layer keeps for it.
pub struct Flow<T> {
    /// The flow's key.
    pub key: FlowKey,
    /// TCP state.
    pub conn: TcpConnection,
    /// Application state.
    pub app: T,
}

/// Why a flow left the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowEnd {
    /// Closed by FIN/RST and lingered long enough.
    Closed,
    /// Idle past the timeout.
    Idle,
    /// Evicted because the table was full.
    Evicted,
    /// A new SYN reused the 4-tuple after a close.
    Reused,
    /// The capture ended.
    EndOfCapture,
}

/// Counters of the flow table, for the report.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct FlowStats {
    /// Flows created.
    pub created: u64,
    /// Flows finished after a close.
    pub closed: u64,
    /// Flows finished for idleness.
    pub timed_out: u64,
    /// Flows evicted because the table was full.
    pub evicted: u64,
    /// Connections that reused the 4-tuple of an earlier one.
    pub port_reuse: u64,
    /// Largest number of flows held at once.
    pub peak: u64,
}

/// Packets a closed flow waits for before it is finished, besides the linger time: how far
/// out of order a capture may hold a segment behind the FIN and still be read whole.
pub const REORDER_HORIZON_PACKETS: u64 = 128;

/// All live flows, with bounded size and capture-time expiry.
pub struct FlowTable<T> {
    /// Boxed: a flow is a few kilobytes, and the map keeps spare slots; unboxed, each spare
    /// slot would cost a whole flow.
    flows: HashMap<FlowKey, Box<Flow<T>>, foldhash::fast::RandomState>,
    /// Flows in the order they closed, to finish them after the linger time.
    closing: VecDeque<(Timestamp, u64, FlowKey)>,
    /// Packets handed to the table so far ([`FlowTable::note_packet`]).
    packets: u64,
    max_flows: usize,
    idle_timeout_secs: u64,
    linger_secs: u64,
    last_idle_sweep: Option<Timestamp>,
    stats: FlowStats,
}

impl<T> FlowTable<T> {
    /// An empty table.
    pub fn new(max_flows: usize, idle_timeout_secs: u64, linger_secs: u64) -> Self {
        FlowTable {
            flows: HashMap::with_hasher(foldhash::fast::RandomState::default()),
            closing: VecDeque::new(),
            packets: 0,
            max_flows: max_flows.max(1),
            idle_timeout_secs,
            linger_secs,
            last_idle_sweep: None,
            stats: FlowStats::default(),
        }
    }

    /// Number of flows held.
    pub fn len(&self) -> usize {
        self.flows.len()
    }

    /// Whether no flow is held.
    pub fn is_empty(&self) -> bool {
        self.flows.is_empty()
    }

    /// The flow with this key.
    pub fn get_mut(&mut self, key: &FlowKey) -> Option<&mut Flow<T>> {
        self.flows.get_mut(key).map(|f| &mut **f)
    }

    /// Removes a flow (for port reuse); the caller finishes it.
    pub fn remove(&mut self, key: &FlowKey) -> Option<Flow<T>> {
        let f = self.flows.remove(key);
        if f.is_some() {
            self.stats.port_reuse += 1;
        }
        f.map(|f| *f)
    }

    /// Adds a flow; when the table is full, the least recently active flows are evicted first
    /// and handed to `evicted`.
    pub fn insert(&mut self, flow: Flow<T>, mut evicted: impl FnMut(Flow<T>, FlowEnd)) {
        if self.flows.len() >= self.max_flows {
            // Evict an eighth at once so a flood costs amortised O(1) per new flow. Flows
            // without payload (a SYN flood, half-open probes) go first, then those with
            // payload one way; within each, the longest idle. So a real conversation that
            // pauses is not pushed out by a flood of new flows.
            let n = (self.max_flows / 8).max(1);
            let mut ages: Vec<(u8, Timestamp, u64, FlowKey)> = self
                .flows
                .values()
                .map(|f| {
                    (
                        f.conn.substance(),
                        f.conn.last_seen,
                        f.conn.first_packet,
                        f.key,
                    )
                })
                .collect();
            if n < ages.len() {
                ages.select_nth_unstable(n - 1);
                ages.truncate(n);
            }
            ages.sort();
            for (_, _, _, key) in ages {
                if let Some(f) = self.flows.remove(&key) {
                    self.stats.evicted += 1;
                    evicted(*f, FlowEnd::Evicted);
                }
            }
        }
        self.stats.created += 1;
        self.flows.insert(flow.key, Box::new(flow));
        self.stats.peak = self.stats.peak.max(self.flows.len() as u64);
    }

    /// Every flow held, in no particular order.
    pub fn flows_mut(&mut self) -> impl Iterator<Item = &mut Flow<T>> {
        self.flows.values_mut().map(|f| &mut **f)
    }

    /// The key of the flow holding the most out-of-order bytes, if any holds some: under
    /// run-wide memory pressure it is the one made to give up waiting, not the flow whose
    /// segment happened to cross the limit.
    pub fn largest_holder(&self) -> Option<FlowKey> {
        self.flows
            .values()
            .filter(|f| f.conn.buffered() > 0)
            .max_by_key(|f| (f.conn.buffered(), std::cmp::Reverse(f.conn.first_packet)))
            .map(|f| f.key)
    }

    /// Counts a packet for a flow of the table and returns its number (from 1): expiry
    /// measures its reordering horizon in these.
    pub fn note_packet(&mut self) -> u64 {
        self.packets += 1;
        self.packets
    }

    /// Remembers that a flow closed at `ts`, to finish it after the linger time.
    pub fn mark_closing(&mut self, key: FlowKey, ts: Timestamp) {
        self.closing.push_back((ts, self.packets, key));
    }

    /// Removes flows whose time is up at capture time `now`, handing each to `done`.
    ///
    /// With `horizon`, a closed flow must also have closed before the last
    /// [`REORDER_HORIZON_PACKETS`] packets the table saw: a capture whose packets are out of
    /// order may still hold one of its segments that long after its FIN, whatever the clock
    /// says (with times re-stamped in capture order, a straggler looks seconds late). Idle
    /// ticks of a quiet live interface go by time alone, and so do idle flows, whose timeout
    /// is long.
    pub fn expire(
        &mut self,
        now: Timestamp,
        horizon: bool,
        mut done: impl FnMut(Flow<T>, FlowEnd),
    ) {
        let packets = self.packets;
        let beyond_horizon =
            |last: u64| !horizon || packets.saturating_sub(last) >= REORDER_HORIZON_PACKETS;
        while let Some(&(closed, closed_packet, key)) = self.closing.front() {
            if now.nanos_since(closed) < self.linger_secs * 1_000_000_000
                || !beyond_horizon(closed_packet)
            {
                break;
            }
            self.closing.pop_front();
            // The flow may be gone (reused, evicted) or be a newer flow on the same key.
            let ready = self
                .flows
                .get(&key)
                .is_some_and(|f| f.conn.closed_at.is_some_and(|c| c <= closed));
            if ready && let Some(f) = self.flows.remove(&key) {
                self.stats.closed += 1;
                done(*f, FlowEnd::Closed);
            }
        }
        // Idle flows are rare enough that a sweep every tenth of the timeout is plenty.
        let period = (self.idle_timeout_secs / 10).max(1);
        match self.last_idle_sweep {
            None => {
                self.last_idle_sweep = Some(now);
                return;
            }
            Some(last) if now.nanos_since(last) < period * 1_000_000_000 => return,
            Some(_) => self.last_idle_sweep = Some(now),
        }
        let timeout = self.idle_timeout_secs * 1_000_000_000;
        let mut idle: Vec<(u64, FlowKey)> = self
            .flows
            .values()
            .filter(|f| now.nanos_since(f.conn.last_seen) >= timeout)
            .map(|f| (f.conn.first_packet, f.key))
            .collect();
        idle.sort();
        for (_, key) in idle {
            if let Some(f) = self.flows.remove(&key) {
                self.stats.timed_out += 1;
                done(*f, FlowEnd::Idle);
            }
        }
    }

    /// Removes every flow, oldest first (end of capture).
    pub fn drain(&mut self, mut done: impl FnMut(Flow<T>, FlowEnd)) {
        let mut all: Vec<Box<Flow<T>>> = self.flows.drain().map(|(_, f)| f).collect();
        all.sort_by_key(|f| f.conn.first_packet);
        self.closing.clear();
        for f in all {
            done(*f, FlowEnd::EndOfCapture);
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> FlowStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn connection() -> TcpConnection {
        let ep = |port| Endpoint {
            ip: "192.0.2.1".parse().expect("ip"),
            port,
        };
        TcpConnection::new(ep(40000), ep(25), 1, Timestamp(0), 1 << 20, 32)
    }

    #[test]
    fn a_syn_is_the_connections_own_when_it_leads_into_the_clients_sequence_numbers() {
        let mut c = connection();
        assert!(!c.is_own_syn(999), "nothing known yet");
        // The client used 1000..1500 (its ISN was 999), seen out of order, across 2^32.
        c.note_client_seq(1200, 1500);
        c.note_client_seq(1000, 1200);
        assert_eq!(c.client_span, Some((1000, 1500)));
        assert!(c.is_own_syn(999));
        assert!(c.is_own_syn(1200), "a SYN inside the span");
        assert!(
            !c.is_own_syn(3_000_000_000),
            "an unrelated ISN is a new connection"
        );
        assert!(
            !c.is_own_syn(1500 + 10),
            "beyond the span: a new connection"
        );

        let mut wrap = connection();
        wrap.note_client_seq(u32::MAX - 10, 20);
        assert!(wrap.is_own_syn(u32::MAX - 11));
        assert!(wrap.is_own_syn(5));
        assert!(!wrap.is_own_syn(1 << 31));

        // A segment far away does not stretch the span.
        wrap.note_client_seq(1 << 31, (1 << 31) + 10);
        assert_eq!(wrap.client_span, Some((u32::MAX - 10, 20)));

        // Known ISN: that SYN is always the connection's own.
        let mut known = connection();
        known.client_isn = Some(77);
        assert!(known.is_own_syn(77));
    }
}
