//! The engine: one pipeline for offline and live input.
//!
//! packets -> [`Decoder`] -> [`FlowTable`] -> [`Reassembler`](crate::net::reassembly::Reassembler)
//! per direction -> [`Dissector`] -> [`SessionRecord`] -> [`SessionSink`].
//! All time comes from packet timestamps, so a capture always replays the same way.

use crate::capture::{
    CaptureError, InputSummary, LinkType, Packet, PacketFilter, PacketSource, SourceItem,
};
use crate::limits::{Limits, RetentionBudget};
use crate::mail::{MessageWorkers, resolve_deferred};
use crate::net::decode::{DecodeStats, Decoded, Decoder, TcpSegment};
use crate::net::flow::{
    Flow, FlowEnd, FlowKey, FlowStats, FlowTable, REORDER_HORIZON_PACKETS, TcpConnection,
};
use crate::net::reassembly::{Chunk, ReassemblyStats};
pub use crate::proto::ports::{PortMap, PortSpecError};
use crate::proto::{Dissector, Framing, new_dissector};
use crate::session::{
    Direction, Endpoint, MessageBlob, Protocol, SessionRecord, SessionState, presentation_order,
};
use crate::time::Timestamp;
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, sync_channel};

/// Everything the engine is configured with.
#[derive(Debug, Clone, Default)]
pub struct EngineConfig {
    /// Resource limits.
    pub limits: Limits,
    /// Port to protocol mapping.
    pub ports: PortMap,
    /// Do not look for SMTP and POP3 by content on ports the mapping does not name.
    pub no_detection: bool,
    /// Analyze only this shard's flows (`--shard K/N`); the others' packets still move the
    /// clock and the reorder horizon, so each session comes out as in a single run.
    pub shard: Option<crate::net::flow::Shard>,
    /// Report sessions that carried no payload either way (a SYN, a refused or half-open
    /// connection) one by one; by default they are only counted in `empty_sessions`, so a
    /// SYN flood is a number, not a million session objects.
    pub report_empty_sessions: bool,
    /// Where to publish bytes read, packets and sessions as the run goes, for a display.
    pub progress: Option<Arc<crate::progress::Progress>>,
}

/// Receives finished sessions (and raw message bytes, when extraction is on).
pub trait SessionSink {
    /// A session is complete; it will not change again.
    fn session(&mut self, rec: SessionRecord);

    /// The content of a message of `rec`, for extraction; called before `session` for it.
    fn message_bytes(&mut self, rec: &SessionRecord, blob: MessageBlob) {
        let _ = (rec, blob);
    }
}

/// Totals of reassembly over all finished sessions.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ReassemblyTotals {
    /// Bytes delivered in order.
    pub delivered: u64,
    /// Bytes declared missing.
    pub missing: u64,
    /// Duplicate payload bytes dropped (retransmissions, overlaps).
    pub duplicate: u64,
    /// Overlapping bytes that differed from the first copy.
    pub conflicting: u64,
    /// Segments that arrived out of order.
    pub out_of_order: u64,
    /// Gaps forced by buffer limits.
    pub forced_gaps: u64,
    /// Segments dropped for lying far outside the expected window.
    pub out_of_window: u64,
}

impl ReassemblyTotals {
    fn add(&mut self, s: &ReassemblyStats) {
        self.delivered += s.delivered;
        self.missing += s.missing;
        self.duplicate += s.duplicate;
        self.conflicting += s.conflicting;
        self.out_of_order += s.out_of_order;
        self.forced_gaps += s.forced_gaps;
        self.out_of_window += s.out_of_window;
    }
}

/// Run-wide figures, the `stats` section of the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct EngineStats {
    /// Packets read from all inputs.
    pub packets: u64,
    /// Bytes of packet data read.
    pub bytes: u64,
    /// TCP packets to or from a mail port.
    pub mail_packets: u64,
    /// Sessions reported.
    pub sessions: u64,
    /// Of those, sessions found by content on a port no mapping names.
    pub detected_sessions: u64,
    /// Flows on other ports looked at and found not to carry mail.
    pub flows_not_mail: u64,
    /// Connections on mail ports that carried no payload either way (SYNs, refused or
    /// half-open connections): counted, not reported, unless asked for.
    pub empty_sessions: u64,
    /// Packets skipped because their link type is not decoded.
    pub unsupported_link_packets: u64,
    /// Decoder counters.
    pub decode: DecodeStats,
    /// Flow table counters.
    pub flows: FlowStats,
    /// Reassembly counters.
    pub reassembly: ReassemblyTotals,
    /// Use of the retention budget shared by all sessions.
    pub retention: RetentionStats,
}

/// How the run used its budget for message content and events kept across sessions.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RetentionStats {
    /// The budget in bytes.
    pub limit_bytes: u64,
    /// The most bytes held at once (the sum of the peaks of its two pools: records' three
    /// quarters and dissectors' working quarter).
    pub peak_bytes: u64,
    /// Times content or an event was not kept because the budget was spent.
    pub refusals: u64,
}

/// Application state of a flow: the record being built and the dissector building it.
struct MailSession {
    rec: SessionRecord,
    dissector: Box<dyn Dissector>,
    /// Whether to report it even if it carries no payload.
    report_empty: bool,
}

type MailFlow = Flow<MailSession>;

/// Where the engine hands finished sessions when it runs with helper threads: to the thread
/// that completes and reports them in order (messages go to their workers as they stream).
struct Offload {
    done: SyncSender<SessionRecord>,
}

/// Drives packets through the pipeline into finished sessions.
pub struct Engine {
    config: EngineConfig,
    decoder: Decoder,
    flows: FlowTable<MailSession>,
    ooo_total: usize,
    /// Where the records' pool stands with its largest holders.
    retention: RetentionRelief,
    stats: EngineStats,
    now: Timestamp,
    offload: Option<Offload>,
    early_ends: EarlyEnds,
}

/// Bare FIN and RST segments of connections not seen yet, kept for a while: in a reordered
/// capture the end of a connection can come before the rest of it, and a bare segment opens
/// no session of its own. Bounded; when full it is emptied, as a flood of them is no session.
#[derive(Default)]
struct EarlyEnds {
    held: HashMap<FlowKey, Vec<EarlyEnd>>,
    count: usize,
}

/// A bare FIN or RST held, with its capture time and packet number.
type EarlyEnd = (TcpSegment<'static>, Timestamp, u64);

/// Most bare FIN and RST segments held for connections not seen yet.
const MAX_EARLY_ENDS: usize = 4096;

/// Most held per connection: a FIN each way and a RST or two.
const MAX_EARLY_ENDS_PER_FLOW: usize = 4;

impl EarlyEnds {
    fn hold(&mut self, key: FlowKey, seg: &TcpSegment<'_>, ts: Timestamp, packet_no: u64) {
        if self.count >= MAX_EARLY_ENDS {
            self.held.clear();
            self.count = 0;
        }
        let held = self.held.entry(key).or_default();
        if held.len() < MAX_EARLY_ENDS_PER_FLOW {
            let bare = TcpSegment {
                payload: &[],
                ..*seg
            };
            held.push((bare, ts, packet_no));
            self.count += 1;
        }
    }

    /// The segments held for `key` that came within the reordering horizon of `packet_no`.
    fn take(&mut self, key: &FlowKey, packet_no: u64) -> Vec<(TcpSegment<'static>, Timestamp)> {
        let Some(held) = self.held.remove(key) else {
            return Vec::new();
        };
        self.count = self.count.saturating_sub(held.len());
        held.into_iter()
            .filter(|&(_, _, at)| packet_no.saturating_sub(at) <= REORDER_HORIZON_PACKETS)
            .map(|(seg, ts, _)| (seg, ts))
            .collect()
    }
}

impl Engine {
    /// A new engine.
    pub fn new(mut config: EngineConfig) -> Self {
        // Each run counts its own retention; engines never share a budget.
        let retained = config.limits.max_retained_bytes;
        config.limits.budget = RetentionBudget::new(retained - retained / 4);
        config.limits.work_budget = RetentionBudget::new(retained / 4);
        config.limits.open_messages = Default::default();
        let l = &config.limits;
        Engine {
            decoder: Decoder::new(l),
            flows: FlowTable::new(l.max_flows, l.flow_idle_timeout_secs, l.closed_linger_secs),
            ooo_total: 0,
            retention: RetentionRelief::default(),
            stats: EngineStats::default(),
            now: Timestamp::default(),
            offload: None,
            early_ends: EarlyEnds::default(),
            config,
        }
    }

    /// Reads a whole source through the pipeline; sessions still open stay open for the
    /// next source (several files form one capture). Returns the input's summary.
    pub fn run_source(
        &mut self,
        src: &mut dyn PacketSource,
        filter: &mut Option<Box<dyn PacketFilter>>,
        sink: &mut dyn SessionSink,
    ) -> InputSummary {
        let path = std::path::PathBuf::from(src.summary().path);
        let mut unsupported: BTreeSet<LinkType> = BTreeSet::new();
        let mut notes: Vec<String> = Vec::new();
        loop {
            if let Some(p) = &self.config.progress {
                p.publish(self.stats.packets, self.stats.sessions);
            }
            let pkt = match src.next_item() {
                Ok(Some(SourceItem::Packet(p))) => p,
                Ok(Some(SourceItem::Idle(ts))) => {
                    self.advance_clock(ts, sink);
                    continue;
                }
                Ok(None) => break,
                Err(e) => {
                    notes.push(e.to_string());
                    break;
                }
            };
            if !Decoder::supports(pkt.link) {
                self.stats.packets += 1;
                self.stats.unsupported_link_packets += 1;
                if unsupported.insert(pkt.link) {
                    notes.push(
                        CaptureError::UnsupportedLinkType {
                            path: path.clone(),
                            link: pkt.link,
                        }
                        .to_string(),
                    );
                }
                continue;
            }
            if let Some(f) = filter.as_mut()
                && !f.matches(&pkt)
            {
                self.stats.packets += 1;
                continue;
            }
            self.process(&pkt, sink);
        }
        if let Some(p) = &self.config.progress {
            p.publish(self.stats.packets, self.stats.sessions);
        }
        for note in notes {
            src.note_error(note);
        }
        src.summary()
    }

    /// Pushes one packet through the pipeline.
    pub fn process(&mut self, pkt: &Packet<'_>, sink: &mut dyn SessionSink) {
        self.stats.packets += 1;
        self.stats.bytes += pkt.data.len() as u64;
        let index = self.stats.packets;
        if pkt.ts > self.now {
            self.now = pkt.ts;
        }
        let Engine {
            config,
            decoder,
            flows,
            ooo_total,
            retention,
            stats,
            now,
            offload,
            early_ends,
        } = self;
        let offload = offload.as_ref();
        let seg = match decoder.decode(pkt) {
            Ok(Decoded::Tcp(seg)) => seg,
            Ok(Decoded::Other) | Err(_) => return,
        };
        let svc_dst = config.ports.get(seg.dst_port);
        let svc_src = config.ports.get(seg.src_port);
        let mapped = svc_dst.is_some() || svc_src.is_some();
        if !mapped && config.no_detection {
            return;
        }
        stats.mail_packets += 1;
        let key = FlowKey::new((seg.src, seg.src_port), (seg.dst, seg.dst_port));
        let is_new_syn = seg.flags.syn && !seg.flags.ack;
        let now = *now;
        // Every packet that could be mail counts for the reorder horizon and moves expiry,
        // whichever flow or shard it is for: a session then ends at the same packet in every
        // shard as in a single run.
        let packet_no = flows.note_packet();
        flows.expire(now, true, |f, end| {
            finish(f, end, now, stats, ooo_total, offload, sink)
        });
        if config.shard.is_some_and(|s| !s.owns(&key)) {
            return;
        }
        // Most of a busy link is found not to be mail: one lookup, and its bytes are skipped.
        if !mapped
            && !is_new_syn
            && let Some(flow) = flows.get_mut(&key)
            && flow.app.rec.not_mail
        {
            let dir = flow.conn.direction_of(seg.src, seg.src_port);
            flow.conn.last_seen = flow.conn.last_seen.max(pkt.ts);
            *flow.app.rec.packets.get_mut(dir) += 1;
            let was_closed = flow.conn.closed_at.is_some();
            skip_not_mail(&mut flow.conn, &seg, dir, pkt.ts, ooo_total);
            if !was_closed && let Some(at) = flow.conn.closed_at {
                flows.mark_closing(key, at);
            }
            return;
        }
        if let Some(flow) = flows.get_mut(&key) {
            // A SYN may still be this connection's own (resent, or captured after later
            // packets); one leading elsewhere in sequence space opens a new session, whether
            // or not the old one was seen to close: port reuse after a lost FIN, NAT, or a
            // connection left open on purpose to squat on the address pair.
            let reused =
                is_new_syn && flow.conn.knows_client_seq() && !flow.conn.is_own_syn(seg.seq);
            if reused && let Some(mut old) = flows.remove(&key) {
                if old.conn.closed_at.is_none() {
                    old.app.rec.anomaly(
                        pkt.ts,
                        None,
                        "flow_replaced",
                        "a new connection (a SYN with an unrelated sequence number) took this \
                         address pair before this one was seen to close",
                    );
                }
                finish(old, FlowEnd::Reused, now, stats, ooo_total, offload, sink);
            }
        }
        let mut early_ends_seen = Vec::new();
        if flows.get_mut(&key).is_none() {
            let Some(mut flow) = new_flow(config, &seg, key, index, pkt.ts, svc_src, svc_dst)
            else {
                if seg.payload.is_empty() && seg.missing == 0 && (seg.flags.fin || seg.flags.rst) {
                    early_ends.hold(key, &seg, pkt.ts, packet_no);
                }
                return;
            };
            let rec = &mut flow.app.rec;
            rec.max_event_bytes = rec.max_event_bytes.min(retention.event_share);
            flows.insert(flow, |f, end| {
                finish(f, end, now, stats, ooo_total, offload, sink)
            });
            early_ends_seen = early_ends.take(&key, packet_no);
        }
        let Some(flow) = flows.get_mut(&key) else {
            return;
        };
        let was_closed = flow.conn.closed_at.is_some();
        handle_segment(flow, &seg, pkt.ts, ooo_total, sink);
        for (end_seg, end_ts) in &early_ends_seen {
            handle_segment(flow, end_seg, *end_ts, ooo_total, sink);
        }
        if !was_closed && let Some(at) = flow.conn.closed_at {
            flows.mark_closing(key, at);
        }
        let limit = config.limits.max_ooo_bytes_total;
        if *ooo_total > limit {
            relieve_ooo_pressure(flows, pkt.ts, limit, ooo_total, sink);
        }
        retention.check(flows, &config.limits.budget, pkt.ts);
    }

    /// Moves the capture clock to `ts` with no packet (a quiet live interface), finishing the
    /// sessions that closed or went idle by then.
    pub fn advance_clock(&mut self, ts: Timestamp, sink: &mut dyn SessionSink) {
        if ts <= self.now {
            return;
        }
        self.now = ts;
        let Engine {
            flows,
            ooo_total,
            stats,
            offload,
            ..
        } = self;
        let offload = offload.as_ref();
        flows.expire(ts, false, |f, end| {
            finish(f, end, ts, stats, ooo_total, offload, sink)
        });
    }

    /// Ends the run: finishes every open session and returns the run's figures.
    pub fn finish(mut self, sink: &mut dyn SessionSink) -> EngineStats {
        let Engine {
            flows,
            ooo_total,
            stats,
            now,
            decoder,
            offload,
            config,
            ..
        } = &mut self;
        let offload = offload.as_ref();
        let now = *now;
        flows.drain(|f, end| finish(f, end, now, stats, ooo_total, offload, sink));
        stats.decode = decoder.stats().clone();
        stats.flows = flows.stats();
        // Both pools of `max_retained_bytes`: records' and dissectors' work.
        let pools = [&config.limits.budget, &config.limits.work_budget];
        stats.retention = RetentionStats {
            limit_bytes: pools.iter().map(|b| b.limit().unwrap_or(0) as u64).sum(),
            peak_bytes: pools.iter().map(|b| b.peak() as u64).sum(),
            refusals: pools.iter().map(|b| b.refusals()).sum(),
        };
        self.stats
    }

    /// Figures so far (decoder and flow counters are filled in by [`Engine::finish`]).
    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }
}

/// Creates the flow a packet opens, deciding who is client and server.
#[allow(clippy::too_many_arguments)]
fn new_flow(
    config: &EngineConfig,
    seg: &TcpSegment<'_>,
    key: FlowKey,
    index: u64,
    ts: Timestamp,
    svc_src: Option<(Protocol, Framing)>,
    svc_dst: Option<(Protocol, Framing)>,
) -> Option<MailFlow> {
    let src = Endpoint {
        ip: seg.src,
        port: seg.src_port,
    };
    let dst = Endpoint {
        ip: seg.dst,
        port: seg.dst_port,
    };
    // No mapping: the protocol is found by content (SMTP until then); the side that sent the
    // SYN is the client, else the one on the higher (ephemeral) port.
    let probe = svc_dst.is_none() && svc_src.is_none();
    let guess = (Protocol::Smtp, Framing::Plain);
    let (client, server, svc) = if seg.flags.syn && !seg.flags.ack {
        (src, dst, if probe { guess } else { svc_dst? })
    } else if seg.flags.syn && seg.flags.ack {
        (dst, src, if probe { guess } else { svc_src? })
    } else if seg.payload.is_empty() && seg.missing == 0 {
        // A bare ACK, FIN or RST of a connection we never saw says nothing worth a session.
        return None;
    } else if let Some(svc) = svc_dst {
        (src, dst, svc)
    } else if let Some(svc) = svc_src {
        (dst, src, svc)
    } else if src.port > dst.port {
        (src, dst, guess)
    } else {
        (dst, src, guess)
    };
    let l = &config.limits;
    let (protocol, framing) = svc;
    let mut rec = SessionRecord::new(index, protocol, client, server, ts);
    rec.max_events = l.max_events_per_session;
    rec.content_hashes = l.content_hashes;
    rec.max_event_bytes = l.max_event_bytes_per_session;
    rec.max_messages = l.max_messages_per_session;
    rec.budget = l.budget.clone();
    let conn = TcpConnection::new(
        client,
        server,
        index,
        ts,
        l.max_ooo_bytes_per_direction,
        l.ack_gap_grace_packets,
    );
    Some(Flow {
        key,
        conn,
        app: MailSession {
            report_empty: config.report_empty_sessions,
            rec,
            dissector: if probe {
                Box::new(crate::proto::detect::ProbeDissector::new(l, &config.ports))
            } else {
                new_dissector(protocol, framing, l)
            },
        },
    })
}

/// Hands one reassembled chunk to the dissector and counts it.
fn deliver(dir: Direction, chunk: Chunk<'_>, app: &mut MailSession) {
    let MailSession { rec, dissector, .. } = app;
    match chunk {
        Chunk::Data { bytes, ts } => {
            *rec.bytes.get_mut(dir) += bytes.len() as u64;
            dissector.on_data(dir, bytes, ts, rec);
        }
        Chunk::Gap { len, ts } => {
            *rec.missing_bytes.get_mut(dir) += len;
            dissector.on_gap(dir, len, ts, rec);
        }
        Chunk::Fin { ts } => dissector.on_fin(dir, ts, rec),
    }
}

/// Applies one segment to its flow.
fn handle_segment(
    flow: &mut MailFlow,
    seg: &TcpSegment<'_>,
    ts: Timestamp,
    ooo_total: &mut usize,
    sink: &mut dyn SessionSink,
) {
    let Flow { conn, app, .. } = flow;
    let dir = conn.direction_of(seg.src, seg.src_port);
    // Captures merged from several taps run backwards in time now and then: the session
    // spans its earliest to its latest packet, whatever order they were read in.
    conn.last_seen = conn.last_seen.max(ts);
    app.rec.first_seen = app.rec.first_seen.min(ts);
    app.rec.last_seen = app.rec.last_seen.max(ts);
    *app.rec.packets.get_mut(dir) += 1;
    if app.rec.not_mail {
        skip_not_mail(conn, seg, dir, ts, ooo_total);
        return;
    }
    if seg.flags.syn {
        conn.streams.get_mut(dir).syn(seg.seq);
        if dir == Direction::Client && !seg.flags.ack {
            conn.client_isn = Some(seg.seq);
            app.rec.handshake_seen = true;
        } else if dir == Direction::Server && seg.flags.ack && conn.client_isn.is_none() {
            // The SYN-ACK acknowledges the client's ISN: both streams are seen from their
            // start even when the client's SYN was lost or is captured later. Without this a
            // late SYN would look like a new connection and the server's first reply (data
            // that may be delivered before that SYN) like a mid-stream pickup.
            let isn = seg.ack.wrapping_sub(1);
            conn.client_isn = Some(isn);
            conn.streams.client.syn(isn);
            app.rec.handshake_seen = true;
        }
    }
    if dir == Direction::Client
        && seg.flags.ack
        && !seg.flags.syn
        && !seg.flags.rst
        && conn.streams.server.started()
    {
        conn.established = true;
    }
    if dir == Direction::Client && !seg.flags.syn && !seg.flags.rst {
        let end = seg
            .seq
            .wrapping_add(seg.payload.len() as u32)
            .wrapping_add(seg.missing)
            .wrapping_add(u32::from(seg.flags.fin));
        conn.note_client_seq(seg.seq, end);
    }
    let before = conn.streams.client.buffered() + conn.streams.server.buffered();
    if seg.flags.rst && !conn.streams.get(dir).plausible_reset(seg.seq) {
        // Far from anything its sender sent: forged blind (RFC 5961's concern) or stray.
        app.rec.anomaly(
            ts,
            Some(dir),
            "rst_out_of_window",
            "reset with a sequence number far outside its sender's stream; ignored",
        );
    } else if seg.flags.rst {
        conn.rst = true;
        *conn.rst_seq.get_mut(dir) = Some(seg.seq);
    } else if !seg.payload.is_empty() || seg.missing > 0 || seg.flags.fin {
        if seg.missing > 0 {
            app.rec.anomaly(
                ts,
                Some(dir),
                "packet_truncated",
                "packet cut short by the capture's snap length; its missing bytes count as a gap",
            );
        }
        // A SYN's own sequence number carries no data (TCP Fast Open payload starts after it).
        let data_seq = if seg.flags.syn {
            seg.seq.wrapping_add(1)
        } else {
            seg.seq
        };
        let report = conn.streams.get_mut(dir).segment(
            data_seq,
            seg.payload,
            seg.missing,
            seg.flags.fin,
            ts,
            &mut |c| deliver(dir, c, app),
        );
        let end = seg.seq.wrapping_add(seg.payload.len() as u32);
        let beyond_own_rst = conn
            .rst_seq
            .get(dir)
            .is_some_and(|r| end.wrapping_sub(r) as i32 > 0);
        if conn.rst && beyond_own_rst && (report.duplicate_bytes as usize) < seg.payload.len() {
            // New bytes past the sender's own reset: the connection was not reset by it (a
            // forged RST, or one for another use of the ports). It goes on.
            *conn.rst_seq.get_mut(dir) = None;
            conn.rst = false;
            conn.closed_at = None;
            app.rec.anomaly(
                ts,
                Some(dir),
                "rst_contradicted",
                "new data after a reset; the reset was set aside (forged or stray)",
            );
        }
        if report.conflicting_bytes > 0 {
            app.rec.anomaly(
                ts,
                Some(dir),
                "overlap_conflict",
                format!(
                    "{} retransmitted bytes differ from the first copy (first copy kept)",
                    report.conflicting_bytes
                ),
            );
        }
        if report.out_of_window {
            app.rec.anomaly(
                ts,
                Some(dir),
                "out_of_window",
                "segment far outside the expected sequence window dropped",
            );
        }
        if report.after_fin {
            app.rec.anomaly(
                ts,
                Some(dir),
                "data_after_fin",
                "payload beyond the sender's FIN",
            );
        }
        if report.acked_past_end > 0 {
            app.rec.anomaly(
                ts,
                Some(dir.opposite()),
                "ack_past_end",
                format!(
                    "the peer acknowledged {} bytes past the end of this stream (an ACK for \
                     bytes never sent, forged or stray); it declared no gap",
                    report.acked_past_end
                ),
            );
        }
        if report.fin_contradicted {
            app.rec.anomaly(
                ts,
                Some(dir),
                "fin_contradicted",
                "data ran through a FIN not yet reached; the FIN was set aside (forged or stray)",
            );
            *conn.fin.get_mut(dir) = false;
            conn.closed_at = None;
        }
        if seg.flags.fin && !report.fin_contradicted {
            *conn.fin.get_mut(dir) = true;
        }
    }
    if seg.flags.ack && !seg.flags.rst {
        let peer = dir.opposite();
        conn.streams
            .get_mut(peer)
            .peer_ack(seg.ack, ts, &mut |c| deliver(peer, c, app));
    }
    conn.note_close(ts);
    let after = conn.streams.client.buffered() + conn.streams.server.buffered();
    *ooo_total = (*ooo_total + after).saturating_sub(before);
    pass_blobs(&mut app.rec, sink);
}

/// When the records' pool was last relieved, and what a session may keep of events while the
/// pressure lasts (the level the largest holders were cut to), so sessions that start
/// meanwhile share what is left instead of spending it.
#[derive(Debug, Clone, Copy)]
struct RetentionRelief {
    /// Budget use after the last relief: the next waits until use has grown by a sixteenth
    /// of the budget, so what events cannot free is not rescanned per packet.
    relieved_at: usize,
    /// Bytes of events a new session may keep; `usize::MAX` without pressure.
    event_share: usize,
}

impl Default for RetentionRelief {
    fn default() -> Self {
        RetentionRelief {
            relieved_at: 0,
            event_share: usize::MAX,
        }
    }
}

impl RetentionRelief {
    /// After a packet: relieves the pool when it nears its limit, ends the pressure when
    /// use has fallen below half.
    fn check(
        &mut self,
        flows: &mut FlowTable<MailSession>,
        budget: &RetentionBudget,
        ts: Timestamp,
    ) {
        let Some(limit) = budget.limit() else {
            return;
        };
        let used = budget.used();
        if used > (limit / 8 * 7).max(self.relieved_at + limit / 16) {
            self.event_share = relieve_retention_pressure(flows, budget, ts, limit);
            self.relieved_at = budget.used();
        } else if used < self.relieved_at {
            self.relieved_at = used;
        }
        if used < limit / 2 {
            self.event_share = usize::MAX;
        }
    }
}

/// Events a session keeps when the retention budget runs short, if the budget can give every
/// open session as much (else an equal share of it, but never less than
/// [`EVENT_FLOOR_MIN_BYTES`]): the first commands and replies are what an analyst reads first.
const EVENT_FLOOR_BYTES: usize = 16 << 10;
/// The least a session's events are cut to, however many sessions share the budget.
const EVENT_FLOOR_MIN_BYTES: usize = 2 << 10;

/// When what open sessions keep nears the retention budget, the sessions holding the most
/// events give way, cut to one common level, until three quarters of the budget are used: a
/// flood of chatty sessions pays for itself, and a session with little state keeps room to
/// record its login and its message.
/// Returns the level the holders were cut to: what a session may keep while the pressure
/// lasts.
fn relieve_retention_pressure(
    flows: &mut FlowTable<MailSession>,
    budget: &RetentionBudget,
    ts: Timestamp,
    limit: usize,
) -> usize {
    let target = limit / 4 * 3;
    let mut need = budget.used().saturating_sub(target);
    let floor = (target / flows.len().max(1)).clamp(EVENT_FLOOR_MIN_BYTES, EVENT_FLOOR_BYTES);
    let mut holders: Vec<usize> = flows
        .flows_mut()
        .map(|f| f.app.rec.event_bytes)
        .filter(|&b| b > floor)
        .collect();
    holders.sort_unstable_by(|a, b| b.cmp(a));
    // The level: the highest at which cutting every holder above it frees `need`.
    let mut level = floor;
    let mut above = 0usize;
    for (i, &held) in holders.iter().enumerate() {
        above += held;
        let next = holders.get(i + 1).copied().unwrap_or(floor).max(floor);
        // Cutting the first i + 1 holders to `next` frees this much.
        if above - (i + 1) * next >= need {
            level = (above - need) / (i + 1);
            break;
        }
    }
    for f in flows.flows_mut() {
        if need == 0 {
            break;
        }
        if f.app.rec.event_bytes > level {
            need = need.saturating_sub(f.app.rec.yield_events(level, ts));
        }
    }
    level
}

/// Under run-wide memory pressure (out-of-order bytes over their limit) the flows holding the
/// most give up waiting on their holes, largest first, until the total is back under the
/// limit: a flow with one reordered segment is not the one to pay for a flood of holes.
fn relieve_ooo_pressure(
    flows: &mut FlowTable<MailSession>,
    ts: Timestamp,
    limit: usize,
    ooo_total: &mut usize,
    sink: &mut dyn SessionSink,
) {
    while *ooo_total > limit {
        let Some(key) = flows.largest_holder() else {
            break;
        };
        let Some(flow) = flows.get_mut(&key) else {
            break;
        };
        let Flow { conn, app, .. } = flow;
        let freed = conn.buffered();
        for d in [Direction::Client, Direction::Server] {
            conn.streams
                .get_mut(d)
                .flush(ts, &mut |c| deliver(d, c, app));
        }
        *ooo_total = ooo_total.saturating_sub(freed);
        app.rec.anomaly(
            ts,
            None,
            "reassembly_memory_limit",
            "out-of-order data across all flows exceeded its limit; this flow held the most, \
             so its holes were declared gaps",
        );
        pass_blobs(&mut app.rec, sink);
    }
}

/// A segment of a flow content detection found is not mail: its bytes are never looked at
/// again and what its streams held is let go; only how it ends is followed, so it leaves the
/// flow table when it closes. This keeps most of a busy link's traffic cheap.
fn skip_not_mail(
    conn: &mut TcpConnection,
    seg: &TcpSegment<'_>,
    dir: Direction,
    ts: Timestamp,
    ooo_total: &mut usize,
) {
    let held = conn.streams.client.buffered() + conn.streams.server.buffered();
    if held > 0 {
        for d in [Direction::Client, Direction::Server] {
            conn.streams.get_mut(d).flush(ts, &mut |_| {});
        }
        *ooo_total = ooo_total.saturating_sub(held);
    }
    if seg.flags.rst {
        conn.rst = true;
    } else if seg.flags.fin {
        *conn.fin.get_mut(dir) = true;
    }
    conn.note_close(ts);
}

fn pass_blobs(rec: &mut SessionRecord, sink: &mut dyn SessionSink) {
    if rec.blobs.is_empty() {
        return;
    }
    let blobs = std::mem::take(&mut rec.blobs);
    for b in blobs {
        sink.message_bytes(rec, b);
    }
}

/// Finishes a flow: flushes its streams, closes its dissector and emits its session.
fn finish(
    flow: MailFlow,
    end: FlowEnd,
    now: Timestamp,
    stats: &mut EngineStats,
    ooo_total: &mut usize,
    offload: Option<&Offload>,
    sink: &mut dyn SessionSink,
) {
    let Flow {
        mut conn, mut app, ..
    } = flow;
    let _ = now;
    let ts = conn.last_seen;
    let held = conn.streams.client.buffered() + conn.streams.server.buffered();
    *ooo_total = ooo_total.saturating_sub(held);
    for d in [Direction::Client, Direction::Server] {
        conn.streams
            .get_mut(d)
            .flush(ts, &mut |c| deliver(d, c, &mut app));
    }
    app.dissector.on_end(ts, &mut app.rec);
    let rec = &mut app.rec;
    rec.state = if end == FlowEnd::Evicted {
        SessionState::Evicted
    } else if conn.rst {
        SessionState::Reset
    } else if conn.fin.client && conn.fin.server {
        SessionState::Closed
    } else if conn.fin.client || conn.fin.server {
        SessionState::HalfClosed
    } else if end == FlowEnd::Idle {
        SessionState::TimedOut
    } else {
        SessionState::Open
    };
    if end == FlowEnd::Evicted {
        rec.anomaly(
            ts,
            None,
            "flow_evicted",
            "flow table full: session ended early",
        );
    }
    if rec.not_mail {
        // Other traffic: its packets were no mail packets, and it is no session.
        stats.flows_not_mail += 1;
        stats.mail_packets = stats
            .mail_packets
            .saturating_sub(rec.packets.client + rec.packets.server);
        app.rec.release_retained();
        return;
    }
    let empty = rec.bytes.client + rec.bytes.server == 0
        && rec.missing_bytes.client + rec.missing_bytes.server == 0
        && rec.tls.is_none();
    if empty && !app.report_empty {
        stats.empty_sessions += 1;
        app.rec.release_retained();
        return;
    }
    stats.reassembly.add(conn.streams.client.stats());
    stats.reassembly.add(conn.streams.server.stats());
    stats.sessions += 1;
    stats.detected_sessions += u64::from(rec.detected_by_content);
    let mut rec = app.rec;
    rec.release_retained();
    if let Some(o) = offload {
        match o.done.send(rec) {
            Ok(()) => return,
            // The reporting thread is gone (it panicked): report here instead.
            Err(std::sync::mpsc::SendError(back)) => rec = back,
        }
    }
    complete_session(rec, sink);
}

/// Completes a finished session and reports it: fills in the messages whose decoding was
/// deferred, judges findings, orders events and anomalies, then hands it to `sink`.
pub fn complete_session(mut rec: SessionRecord, sink: &mut dyn SessionSink) {
    resolve_deferred(&mut rec);
    crate::findings::assess(&mut rec);
    rec.events = interleave_by_time(std::mem::take(&mut rec.events));
    rec.anomalies
        .sort_by(|a, b| (a.ts, a.from, &a.kind).cmp(&(b.ts, b.from, &b.kind)));
    pass_blobs(&mut rec, sink);
    sink.session(rec);
}

/// Puts a session's events in [`presentation_order`].
fn interleave_by_time(events: Vec<crate::session::Event>) -> Vec<crate::session::Event> {
    let order = presentation_order(&events);
    let mut slots: Vec<Option<crate::session::Event>> = events.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|i| slots.get_mut(i).and_then(Option::take))
        .collect()
}

/// What a run over several inputs produced besides its sessions.
#[derive(Debug, Clone, Default)]
pub struct RunSummary {
    /// One summary per input, in the order given.
    pub inputs: Vec<InputSummary>,
    /// Run-wide figures.
    pub stats: EngineStats,
}

impl RunSummary {
    /// Whether at least one input could be opened and recognised as a capture.
    pub fn any_input_read(&self) -> bool {
        self.inputs.iter().any(|i| i.format.is_some())
    }
}

/// Builds the packet filter for `--bpf`, if one was given.
pub fn build_filter(expr: Option<&str>) -> Result<Option<Box<dyn PacketFilter>>, CaptureError> {
    let Some(expr) = expr else {
        return Ok(None);
    };
    #[cfg(feature = "live")]
    {
        Ok(Some(Box::new(crate::capture::bpf::BpfFilter::new(expr)?)))
    }
    #[cfg(not(feature = "live"))]
    {
        Err(CaptureError::Filter {
            filter: expr.to_string(),
            reason: "this build has no libpcap, which compiles filters: build with \
                     `--features live` (it needs libpcap-dev)"
                .into(),
        })
    }
}

/// Analyses capture files as one capture, in the order given, feeding `sink`.
///
/// A file that cannot be read is reported through `on_error` (one line naming it) and in
/// its input summary; the other files are still analysed.
pub fn run_files(
    paths: &[std::path::PathBuf],
    config: EngineConfig,
    filter: &mut Option<Box<dyn PacketFilter>>,
    sink: &mut dyn SessionSink,
    on_error: &mut dyn FnMut(&str),
) -> RunSummary {
    let mut engine = Engine::new(config);
    let mut inputs = Vec::with_capacity(paths.len());
    for path in paths {
        inputs.push(run_one_file(&mut engine, path, filter, sink, on_error));
    }
    let stats = engine.finish(sink);
    RunSummary { inputs, stats }
}

/// Opens one capture file and runs it through `engine`; a file that cannot be opened is
/// reported and summarised with its error.
fn run_one_file(
    engine: &mut Engine,
    path: &std::path::Path,
    filter: &mut Option<Box<dyn PacketFilter>>,
    sink: &mut dyn SessionSink,
    on_error: &mut dyn FnMut(&str),
) -> InputSummary {
    let gunzip = engine.config.limits.gunzip;
    let opened = match &engine.config.progress {
        Some(p) => crate::capture::file::FileSource::open_counted(path, gunzip, Arc::clone(p)),
        None => crate::capture::file::FileSource::open_with(path, gunzip),
    };
    match opened {
        Ok(mut src) => {
            let summary = engine.run_source(&mut src, filter, sink);
            for e in &summary.errors {
                on_error(e);
            }
            summary
        }
        Err(e) => {
            let msg = e.to_string();
            on_error(&msg);
            InputSummary {
                path: path.display().to_string(),
                errors: vec![msg],
                ..Default::default()
            }
        }
    }
}

/// Message bytes that may wait for the decoding workers at once: enough to ride out a burst,
/// small beside the rest of the run's memory.
pub const QUEUED_MESSAGE_BYTES: usize = 32 << 20;
/// Jobs (chunks of a message, or its start or end) that may wait per worker.
const QUEUED_JOBS_PER_WORKER: usize = 4096;

/// Finished records that may wait for the reporting thread: they no longer count against the
/// retention budget, so few, to keep them inside [`Limits::memory_bound`].
pub const REPORT_QUEUE: usize = 4;

/// A sink for the engine side of a threaded run, which reports sessions through its reporter.
struct NoSink;

impl SessionSink for NoSink {
    fn session(&mut self, _rec: SessionRecord) {}
}

/// Like [`run_files`], with `threads` threads decoding messages beside the one that reads
/// packets, and finished sessions completed and reported (to `sink`) on another thread.
///
/// Flows, reassembly and dissection stay on the calling thread, and sessions reach `sink` in
/// the same order with the same content for any thread count. With `threads` at most 1, or
/// when message bytes are kept for extraction, this is [`run_files`].
pub fn run_files_threaded(
    paths: &[std::path::PathBuf],
    config: EngineConfig,
    threads: usize,
    filter: &mut Option<Box<dyn PacketFilter>>,
    sink: &mut (dyn SessionSink + Send),
    on_error: &mut dyn FnMut(&str),
) -> RunSummary {
    if threads <= 1 {
        return run_files(paths, config, filter, sink, on_error);
    }
    let mut config = config;
    std::thread::scope(|scope| {
        // Bounded queues keep memory flat: the reader waits when decoding falls behind.
        let mut senders = Vec::with_capacity(threads);
        let mut queues = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (tx, rx) = sync_channel(QUEUED_JOBS_PER_WORKER);
            senders.push(tx);
            queues.push(rx);
        }
        let workers = MessageWorkers::new(senders, QUEUED_MESSAGE_BYTES);
        for rx in queues {
            let queue = workers.queue();
            scope.spawn(move || queue.work(rx));
        }
        config.limits.workers = Some(workers);
        let (done, finished) = sync_channel::<SessionRecord>(REPORT_QUEUE);
        let reporter = scope.spawn(move || {
            for rec in finished {
                complete_session(rec, sink);
            }
        });
        let mut engine = Engine::new(config);
        engine.offload = Some(Offload { done });
        let mut inputs = Vec::with_capacity(paths.len());
        for path in paths {
            inputs.push(run_one_file(
                &mut engine,
                path,
                filter,
                &mut NoSink,
                on_error,
            ));
        }
        // Finishing drops the queues' senders, so the reporter and the workers end.
        let stats = engine.finish(&mut NoSink);
        if let Err(panic) = reporter.join() {
            std::panic::resume_unwind(panic);
        }
        RunSummary { inputs, stats }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::capture::synth::{Conversation, SynthPacket};

    #[derive(Default)]
    struct Sessions(Vec<SessionRecord>);

    impl SessionSink for Sessions {
        fn session(&mut self, rec: SessionRecord) {
            self.0.push(rec);
        }
    }

    fn run_packets(pkts: &[SynthPacket]) -> Vec<SessionRecord> {
        let mut engine = Engine::new(EngineConfig::default());
        let mut sink = Sessions::default();
        for p in pkts {
            let pkt = Packet {
                ts: p.ts,
                link: LinkType::ETHERNET,
                data: &p.data,
                orig_len: p.orig_len,
            };
            engine.process(&pkt, &mut sink);
        }
        engine.finish(&mut sink);
        sink.0
    }

    fn pop3_login() -> Vec<SynthPacket> {
        Conversation::new(
            "192.0.2.1:40000".parse().expect("addr"),
            "192.0.2.2:110".parse().expect("addr"),
        )
        .server("+OK ready <1.2@example.org>\r\n")
        .client("USER alice\r\n")
        .server("+OK\r\n")
        .client("QUIT\r\n")
        .server("+OK bye\r\n")
        .packets()
    }

    #[test]
    fn a_syn_captured_after_the_syn_ack_and_the_fin_belongs_to_the_same_session() {
        let mut pkts = pop3_login();
        // The client's SYN (first packet) is captured last, after both FINs.
        let syn = pkts.remove(0);
        pkts.push(syn);
        let sessions = run_packets(&pkts);
        assert_eq!(sessions.len(), 1, "one connection, one session");
        let rec = &sessions[0];
        assert!(
            rec.handshake_seen,
            "the SYN-ACK shows the start of both streams"
        );
        let pop3 = rec.pop3.as_ref().expect("pop3 summary");
        assert_eq!(pop3.greeting.as_deref(), Some("ready <1.2@example.org>"));
        assert_eq!(pop3.apop_timestamp.as_deref(), Some("<1.2@example.org>"));
        assert!(!rec.has_anomaly("midstream_pickup"));
    }

    #[test]
    fn a_handshake_captured_after_the_whole_session_does_not_open_a_second_one() {
        let mut pkts = pop3_login();
        // SYN and SYN-ACK read last: nothing tells the client's ISN before the SYN comes, but
        // it leads into the sequence numbers the client already used.
        let handshake: Vec<SynthPacket> = pkts.drain(..2).collect();
        pkts.extend(handshake);
        let sessions = run_packets(&pkts);
        assert_eq!(sessions.len(), 1, "one connection, one session");
        assert_eq!(sessions[0].state, SessionState::Closed);
    }

    #[test]
    fn a_syn_with_an_unrelated_isn_after_the_close_is_a_new_session() {
        let first = pop3_login();
        let again = Conversation::new(
            "192.0.2.1:40000".parse().expect("addr"),
            "192.0.2.2:110".parse().expect("addr"),
        )
        .isn(3_000_000_000, 7)
        .start(Timestamp::from_parts(1_700_000_060, 0))
        .server("+OK again\r\n")
        .client("QUIT\r\n")
        .packets();
        let pkts: Vec<SynthPacket> = first.into_iter().chain(again).collect();
        assert_eq!(run_packets(&pkts).len(), 2);
    }

    #[test]
    fn a_session_spans_its_earliest_to_its_latest_packet_in_any_read_order() {
        let mut pkts = pop3_login();
        let (first, last) = (pkts[0].ts, pkts[pkts.len() - 1].ts);
        // Read the SYN-ACK first and the SYN third; the last two packets swapped.
        pkts.swap(0, 1);
        pkts.swap(1, 2);
        let n = pkts.len();
        pkts.swap(n - 1, n - 2);
        let sessions = run_packets(&pkts);
        assert_eq!(sessions.len(), 1);
        assert_eq!(sessions[0].first_seen, first);
        assert_eq!(sessions[0].last_seen, last);
    }
}
