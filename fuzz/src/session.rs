//! Dissector sessions from fuzzer bytes: a configuration byte, then stream operations (data,
//! gap, FIN) tagged with the side that sent them, fed to `proto::new_dissector`.
//!
//! Format: byte 0 is a [`SessionConfig`]; then each operation is a control byte `c`:
//! bit 0 is the side (0 client, 1 server), bits 1-2 the kind: `0` data with a one-byte length,
//! `1` data with a two-byte length, `2` a gap of a two-byte length (shifted left by 16 when
//! bit 7 is set), `3` a FIN. Data bytes follow their length; a short input ends the stream.

use crate::input::Reader;
use mailsift::engine::{SessionSink, complete_session};
use mailsift::limits::Limits;
use mailsift::proto::detect::ProbeDissector;
use mailsift::proto::ports::PortMap;
use mailsift::proto::{Dissector, Framing, new_dissector};
use mailsift::session::{Direction, Endpoint, MessageBlob, Protocol, SessionRecord};
use mailsift::time::Timestamp;
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};

/// Most operations read from one input; the rest is ignored.
pub const MAX_OPS: usize = 4096;

/// One thing that happens on a TCP session, as a dissector sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamOp<'a> {
    /// In-order bytes from one side.
    Data(Direction, &'a [u8]),
    /// Bytes from one side that were never captured.
    Gap(Direction, u64),
    /// One side closed.
    Fin(Direction),
}

impl StreamOp<'_> {
    /// The side the operation belongs to.
    pub fn dir(&self) -> Direction {
        match self {
            StreamOp::Data(d, _) | StreamOp::Gap(d, _) | StreamOp::Fin(d) => *d,
        }
    }
}

/// Reads stream operations until the input (or [`MAX_OPS`]) runs out.
pub fn parse_ops<'a>(r: &mut Reader<'a>) -> Vec<StreamOp<'a>> {
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS {
        let Some(c) = r.u8() else { break };
        let dir = if c & 1 == 0 {
            Direction::Client
        } else {
            Direction::Server
        };
        let op = match (c >> 1) & 3 {
            0 => {
                let len = r.u8().unwrap_or(0);
                StreamOp::Data(dir, r.take(usize::from(len)))
            }
            1 => {
                let len = r.u16().unwrap_or(0);
                StreamOp::Data(dir, r.take(usize::from(len)))
            }
            2 => {
                let len = u64::from(r.u16().unwrap_or(1));
                StreamOp::Gap(dir, if c & 0x80 != 0 { len << 16 } else { len })
            }
            _ => StreamOp::Fin(dir),
        };
        ops.push(op);
    }
    ops
}

/// Writes stream operations in the format [`parse_ops`] reads (for seeds).
#[derive(Debug, Default, Clone)]
pub struct OpsWriter {
    /// The encoded operations so far.
    pub bytes: Vec<u8>,
}

impl OpsWriter {
    fn side(dir: Direction) -> u8 {
        match dir {
            Direction::Client => 0,
            Direction::Server => 1,
        }
    }

    /// Appends `data` from `dir`, split into pieces the format can carry.
    pub fn data(&mut self, dir: Direction, data: &[u8]) -> &mut Self {
        for piece in data.chunks(usize::from(u16::MAX)) {
            if piece.len() <= usize::from(u8::MAX) {
                self.bytes.push(Self::side(dir));
                self.bytes.push(piece.len() as u8);
            } else {
                self.bytes.push(Self::side(dir) | 2);
                self.bytes
                    .extend_from_slice(&(piece.len() as u16).to_le_bytes());
            }
            self.bytes.extend_from_slice(piece);
        }
        self
    }

    /// Appends a gap of `len` bytes from `dir` (rounded to what the format can say).
    pub fn gap(&mut self, dir: Direction, len: u64) -> &mut Self {
        let (shifted, value) = if len > u64::from(u16::MAX) {
            (0x80, (len >> 16).min(u64::from(u16::MAX)) as u16)
        } else {
            (0, len as u16)
        };
        self.bytes.push(Self::side(dir) | 4 | shifted);
        self.bytes.extend_from_slice(&value.to_le_bytes());
        self
    }

    /// Appends a FIN from `dir`.
    pub fn fin(&mut self, dir: Direction) -> &mut Self {
        self.bytes.push(Self::side(dir) | 6);
        self
    }
}

/// The options byte at the start of a session input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionConfig(pub u8);

impl SessionConfig {
    /// Tight line length cap.
    pub const SHORT_LINES: u8 = 0x01;
    /// Tight event cap.
    pub const FEW_EVENTS: u8 = 0x02;
    /// Tight pipelining queue.
    pub const FEW_PENDING: u8 = 0x04;
    /// Tight message and MIME limits.
    pub const SMALL_MESSAGES: u8 = 0x08;
    /// Hand raw message bytes to the output (extraction).
    pub const KEEP_MESSAGES: u8 = 0x10;
    /// TLS from the first byte (ports 465 and 995).
    pub const IMPLICIT_TLS: u8 = 0x20;

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// The limits this byte selects: the defaults, with some made tight to reach their edges.
    pub fn limits(self) -> Limits {
        let mut l = Limits::default();
        if self.has(Self::SHORT_LINES) {
            l.max_line_len = 40;
        }
        if self.has(Self::FEW_EVENTS) {
            l.max_events_per_session = 24;
        }
        if self.has(Self::FEW_PENDING) {
            l.max_pending_commands = 3;
        }
        if self.has(Self::SMALL_MESSAGES) {
            l.mime = crate::mime::tight_limits();
        }
        if self.has(Self::KEEP_MESSAGES) {
            l.spool = Some(crate::check::spool());
        }
        l
    }

    /// How the session starts.
    pub fn framing(self) -> Framing {
        if self.has(Self::IMPLICIT_TLS) {
            Framing::ImplicitTls
        } else {
            Framing::Plain
        }
    }
}

/// The capture time of the session's first operation.
pub fn start_ts() -> Timestamp {
    Timestamp::from_parts(1_700_000_000, 0)
}

/// A stream operation with the capture time of the packet that carried it.
pub type Timed<'a> = (Timestamp, StreamOp<'a>);

/// Stamps operation `i` with second `i` after [`start_ts`], as if each came in its own packet.
pub fn stamp<'a>(ops: &[StreamOp<'a>]) -> Vec<Timed<'a>> {
    ops.iter()
        .enumerate()
        .map(|(i, op)| (start_ts().plus_secs(i as u64), op.clone()))
        .collect()
}

/// Data bytes up to which [`resplit`] cuts into single bytes; beyond, pieces of 1 to 13 bytes.
pub const BYTEWISE_UP_TO: usize = 8 << 10;

/// The same packets with every data operation cut into small pieces, each keeping its packet's
/// time: one-byte pieces for inputs up to [`BYTEWISE_UP_TO`] data bytes, else pieces cycling
/// through 1, 2, 3, 5, 8 and 13 bytes (so big inputs stay fast to check).
pub fn resplit<'a>(ops: &[Timed<'a>]) -> Vec<Timed<'a>> {
    const SIZES: [usize; 6] = [1, 2, 3, 5, 8, 13];
    let total: usize = ops
        .iter()
        .map(|(_, op)| match op {
            StreamOp::Data(_, b) => b.len(),
            _ => 0,
        })
        .sum();
    let mut turn = 0;
    let mut out = Vec::new();
    for (ts, op) in ops {
        match *op {
            StreamOp::Data(dir, mut bytes) if bytes.len() > 1 => {
                while !bytes.is_empty() {
                    let size = if total <= BYTEWISE_UP_TO {
                        1
                    } else {
                        turn += 1;
                        SIZES[turn % SIZES.len()]
                    };
                    let (piece, rest) = bytes.split_at(size.min(bytes.len()));
                    out.push((*ts, StreamOp::Data(dir, piece)));
                    bytes = rest;
                }
            }
            ref other => out.push((*ts, other.clone())),
        }
    }
    out
}

/// The same packets with all of `first`'s operations delivered before the other side's.
pub fn by_direction<'a>(ops: &[Timed<'a>], first: Direction) -> Vec<Timed<'a>> {
    let mut out: Vec<Timed<'a>> = ops
        .iter()
        .filter(|(_, op)| op.dir() == first)
        .cloned()
        .collect();
    out.extend(ops.iter().filter(|(_, op)| op.dir() != first).cloned());
    out
}

/// Anomalies that say a dissector's command or reply queue hit its bound.
pub const QUEUE_BOUND_KINDS: [&str; 2] = ["pending_commands_limit", "too_many_unanswered_replies"];

/// Runs `drive` on variants the dissector contract says cannot change the record and panics on
/// the first difference from the record of the operations as sent.
///
/// Always: each side's bytes cut into small pieces (see [`resplit`]). With `MAILSIFT_FUZZ_INTERLEAVE` set, also
/// the two sides interleaved differently (all client operations first, or all server ones); on
/// garbage where a dissector must resynchronise, the choices it makes can depend on how far the
/// other side has got, so those variants are opt-in. Records that hit the event limit or a
/// command/reply queue bound are not compared, since what is kept then depends on push order.
pub fn check_equivalent<'a>(ops: &[Timed<'a>], drive: &mut dyn FnMut(&[Timed<'a>]) -> Value) {
    let as_sent = drive(ops);
    // Which events survive the event limit depends on the order they were pushed in, which
    // may legitimately vary (a dissector may hold a line until the other side answers).
    // Likewise when SMTP's command or reply queue overflowed: which entry the bound closes
    // depends on how far the other side had been parsed (a known limit, see the README).
    let dropped = |rec: &Value| {
        rec.get("events_dropped").is_some()
            || rec
                .get("anomalies")
                .and_then(Value::as_array)
                .is_some_and(|list| {
                    list.iter().any(|a| {
                        a.get("kind")
                            .and_then(Value::as_str)
                            .is_some_and(|k| QUEUE_BOUND_KINDS.contains(&k))
                    })
                })
    };
    if dropped(&as_sent) {
        return;
    }
    let mut variants = vec![("cut into small pieces", resplit(ops))];
    if std::env::var_os("MAILSIFT_FUZZ_INTERLEAVE").is_some() {
        variants.push(("client first", by_direction(ops, Direction::Client)));
        variants.push(("server first", by_direction(ops, Direction::Server)));
    }
    let interleaved_reference = without_anomaly_order(&as_sent);
    for (name, variant) in variants {
        if variant.len() == ops.len() && variant.iter().zip(ops).all(|(a, b)| a == b) {
            continue;
        }
        let mut got = drive(&variant);
        if dropped(&got) {
            continue;
        }
        let as_sent = if name == "cut into small pieces" {
            &as_sent
        } else {
            // Anomalies are listed in the order they were first met, with the time and detail
            // of that first one: across interleavings only their kinds, sides and counts count.
            got = without_anomaly_order(&got);
            &interleaved_reference
        };
        if let Some(diff) = crate::check::first_difference(as_sent, &got) {
            if let Some(dir) = std::env::var_os("MAILSIFT_FUZZ_DUMP") {
                let dir = std::path::Path::new(&dir);
                let pretty = |v: &Value| serde_json::to_string_pretty(v).unwrap_or_default();
                let _ = std::fs::write(dir.join("as-sent.json"), pretty(as_sent));
                let _ = std::fs::write(dir.join("variant.json"), pretty(&got));
            }
            panic!("record differs when fed {name}: {diff}");
        }
    }
}

/// A fresh record for a session between two fixed endpoints.
pub fn new_record(protocol: Protocol, limits: &Limits) -> SessionRecord {
    let port = match protocol {
        Protocol::Smtp => 25,
        Protocol::Pop3 => 110,
    };
    let mut rec = SessionRecord::new(
        1,
        protocol,
        Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
            port: 40000,
        },
        Endpoint {
            ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
            port,
        },
        start_ts(),
    );
    rec.max_events = limits.max_events_per_session;
    rec
}

/// A stream operation that owns its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnedOp {
    /// In-order bytes from one side.
    Data(Direction, Vec<u8>),
    /// Bytes from one side that were never captured.
    Gap(Direction, u64),
    /// One side closed.
    Fin(Direction),
}

impl OwnedOp {
    /// The borrowed form.
    pub fn as_op(&self) -> StreamOp<'_> {
        match self {
            OwnedOp::Data(d, b) => StreamOp::Data(*d, b),
            OwnedOp::Gap(d, n) => StreamOp::Gap(*d, *n),
            OwnedOp::Fin(d) => StreamOp::Fin(*d),
        }
    }
}

/// The record with its anomalies sorted by kind and side, their times and details left out.
fn without_anomaly_order(rec: &Value) -> Value {
    let mut rec = rec.clone();
    if let Some(Value::Array(list)) = rec.get_mut("anomalies") {
        for a in list.iter_mut() {
            if let Value::Object(fields) = a {
                fields.remove("ts");
                fields.remove("detail");
            }
        }
        list.sort_by_key(|a| a.to_string());
    }
    rec
}

/// Collects what [`complete_session`] reports: the record and its message blobs.
#[derive(Default)]
struct Finished {
    rec: Option<SessionRecord>,
    blobs: Vec<MessageBlob>,
}

impl SessionSink for Finished {
    fn session(&mut self, rec: SessionRecord) {
        self.rec = Some(rec);
    }

    fn message_bytes(&mut self, _rec: &SessionRecord, blob: MessageBlob) {
        self.blobs.push(blob);
    }
}

/// Runs a dissector over `ops`, ends it, finishes the record as the engine does (deferred
/// messages decoded, findings judged, events and anomalies ordered), checks the record and
/// returns its JSON.
pub fn drive(
    protocol: Protocol,
    framing: Framing,
    limits: &Limits,
    ops: &[Timed<'_>],
    input_len: usize,
) -> Value {
    let dissector = new_dissector(protocol, framing, limits);
    drive_with(protocol, dissector, limits, ops, input_len)
}

/// [`drive`] with a given dissector, on a record first marked `protocol`.
pub fn drive_with(
    protocol: Protocol,
    mut dissector: Box<dyn Dissector>,
    limits: &Limits,
    ops: &[Timed<'_>],
    input_len: usize,
) -> Value {
    let mut rec = new_record(protocol, limits);
    let mut last = start_ts();
    for (ts, op) in ops {
        let ts = *ts;
        last = last.max(ts);
        match *op {
            StreamOp::Data(dir, bytes) => {
                *rec.bytes.get_mut(dir) += bytes.len() as u64;
                dissector.on_data(dir, bytes, ts, &mut rec);
            }
            StreamOp::Gap(dir, len) => {
                *rec.missing_bytes.get_mut(dir) += len;
                dissector.on_gap(dir, len, ts, &mut rec);
            }
            StreamOp::Fin(dir) => dissector.on_fin(dir, ts, &mut rec),
        }
    }
    dissector.on_end(last.plus_secs(1), &mut rec);
    let mut finished = Finished::default();
    complete_session(rec, &mut finished);
    let rec = finished.rec.expect("complete_session reports the session");
    let mut json = crate::check::record(&rec, limits, input_len);
    // Extraction output is part of what must not change either.
    let blobs: Vec<(usize, usize)> = finished
        .blobs
        .iter()
        .map(|b| {
            let len = crate::check::blob(b, limits, input_len);
            crate::check::discard(b);
            (b.message, len as usize)
        })
        .collect();
    if let Value::Object(map) = &mut json {
        map.insert("blobs".into(), serde_json::json!(blobs));
    }
    json
}

/// The whole check of one input: the record must respect its bounds, and cutting each side's
/// bytes differently or interleaving the sides differently must not change it.
pub fn run(protocol: Protocol, data: &[u8]) {
    let mut r = Reader::new(data);
    let config = SessionConfig(r.u8().unwrap_or(0));
    let limits = config.limits();
    let framing = config.framing();
    let ops = stamp(&parse_ops(&mut r));
    check_equivalent(&ops, &mut |variant| {
        drive(protocol, framing, &limits, variant, data.len())
    });
}

/// The whole check of one input on a port no mapping names: the content probe decides, and a
/// proxy handshake (HTTP CONNECT, SOCKS4/4a/5) goes to the tunnel parsers, whose dialogue
/// inside is dissected. The option byte chooses limits as for [`run`] (its TLS bit is unused).
pub fn run_probe(data: &[u8]) {
    let mut r = Reader::new(data);
    let config = SessionConfig(r.u8().unwrap_or(0));
    let limits = config.limits();
    let ports = PortMap::default();
    let ops = stamp(&parse_ops(&mut r));
    check_equivalent(&ops, &mut |variant| {
        let probe = Box::new(ProbeDissector::new(&limits, &ports));
        drive_with(Protocol::Smtp, probe, &limits, variant, data.len())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip_through_the_writer() {
        let long = vec![b'x'; 300];
        let mut w = OpsWriter::default();
        w.data(Direction::Server, b"+OK hi\r\n")
            .data(Direction::Client, &long)
            .gap(Direction::Client, 5)
            .gap(Direction::Server, 3 << 16)
            .fin(Direction::Client);
        let mut r = Reader::new(&w.bytes);
        let ops = parse_ops(&mut r);
        assert_eq!(
            ops,
            vec![
                StreamOp::Data(Direction::Server, b"+OK hi\r\n"),
                StreamOp::Data(Direction::Client, &long),
                StreamOp::Gap(Direction::Client, 5),
                StreamOp::Gap(Direction::Server, 3 << 16),
                StreamOp::Fin(Direction::Client),
            ]
        );
    }

    #[test]
    fn variants_keep_each_side_in_order() {
        let ops = stamp(&[
            StreamOp::Data(Direction::Client, b"US"),
            StreamOp::Data(Direction::Server, b"+OK\r\n"),
            StreamOp::Gap(Direction::Client, 2),
        ]);
        let split = resplit(&ops);
        assert_eq!(split.len(), 2 + 5 + 1);
        assert!(split[..2].iter().all(|(ts, _)| *ts == ops[0].0));
        let client_first = by_direction(&ops, Direction::Client);
        assert_eq!(client_first[1].1, StreamOp::Gap(Direction::Client, 2));
    }

    #[test]
    fn a_plain_pop3_login_runs_clean() {
        let mut w = OpsWriter::default();
        w.data(Direction::Server, b"+OK ready\r\n")
            .data(Direction::Client, b"USER a")
            .data(Direction::Client, b"lice\r\n")
            .data(Direction::Server, b"+OK\r\n")
            .data(Direction::Client, b"PASS secret\r\n")
            .data(Direction::Server, b"+OK logged in\r\n");
        let mut input = vec![0];
        input.extend_from_slice(&w.bytes);
        run(Protocol::Pop3, &input);
        run(Protocol::Smtp, &input);
    }

    #[test]
    fn a_socks5_tunnel_with_a_login_runs_clean() {
        let mut w = OpsWriter::default();
        w.data(Direction::Client, b"\x05\x02\x00\x02")
            .data(Direction::Server, b"\x05\x02")
            .data(Direction::Client, b"\x01\x03bob\x02pw")
            .data(Direction::Server, b"\x01\x00")
            .data(
                Direction::Client,
                b"\x05\x01\x00\x01\xc0\x00\x02\x01\x00\x6e",
            )
            .data(
                Direction::Server,
                b"\x05\x00\x00\x01\xc0\x00\x02\x01\xd0\xe6",
            )
            .data(Direction::Server, b"+OK ready\r\n")
            .data(Direction::Client, b"USER alice\r\n")
            .data(Direction::Server, b"+OK\r\n")
            .gap(Direction::Client, 5)
            .fin(Direction::Client);
        let mut input = vec![0];
        input.extend_from_slice(&w.bytes);
        run_probe(&input);
    }
}
