//! Inputs of the stream fuzz targets, replayed in a plain `cargo test`: a record must not
//! depend on where the segments were cut. Each file under `fuzz/regressions/TARGET/` is in the
//! targets' byte format (fuzz/src/session.rs): an options byte, then operations. Each is run as
//! sent, with every data operation cut into one-byte pieces, and with random cuts; the
//! finished records (as `export` would print them) must be equal. `pop3_session` and
//! `smtp_session` hold inputs those targets once failed on; `tunnel` (the content probe and
//! proxy handshakes) and `tls_observer` hold a spread of their fuzzing corpora, so every
//! dissector target's equivalence check runs in CI.
//!
//! The options byte selects the same tight limits as the fuzz harness, except extraction (the
//! spool bit is ignored: the blobs are not compared here); for `tls_observer` it picks implicit
//! TLS (bit 0) and the side that starts (bit 1), as there.

use mailsift::engine::{SessionSink, complete_session};
use mailsift::limits::Limits;
use mailsift::proto::detect::ProbeDissector;
use mailsift::proto::tls::TlsObserver;
use mailsift::proto::{Dissector, Framing, new_dissector};
use mailsift::session::TlsMode;
use mailsift::session::{Direction, Endpoint, Protocol, SessionRecord};
use mailsift::time::Timestamp;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One operation of a fuzz input.
#[derive(Debug, Clone)]
enum Op {
    Data(Direction, Vec<u8>),
    Gap(Direction, u64),
    Fin(Direction),
}

/// Reads the fuzz format (see fuzz/src/session.rs `parse_ops`): each operation is stamped
/// with second `i`, as if it came in its own packet.
fn parse(data: &[u8]) -> (u8, Vec<(Timestamp, Op)>) {
    let config = data.first().copied().unwrap_or(0);
    let mut rest = data.get(1..).unwrap_or_default();
    let mut take = |n: usize| {
        let (a, b) = rest.split_at(n.min(rest.len()));
        rest = b;
        a.to_vec()
    };
    let mut ops = Vec::new();
    while ops.len() < 4096 {
        let Some(&c) = take(1).first() else { break };
        let dir = if c & 1 == 0 {
            Direction::Client
        } else {
            Direction::Server
        };
        let u16_of = |b: Vec<u8>, default: u16| match b.as_slice() {
            [lo, hi] => u16::from_le_bytes([*lo, *hi]),
            _ => default,
        };
        let op = match (c >> 1) & 3 {
            0 => {
                let len = take(1).first().copied().unwrap_or(0);
                Op::Data(dir, take(usize::from(len)))
            }
            1 => {
                let len = u16_of(take(2), 0);
                Op::Data(dir, take(usize::from(len)))
            }
            2 => {
                let len = u64::from(u16_of(take(2), 1));
                Op::Gap(dir, if c & 0x80 != 0 { len << 16 } else { len })
            }
            _ => Op::Fin(dir),
        };
        let ts = Timestamp::from_parts(1_700_000_000 + ops.len() as i64, 0);
        ops.push((ts, op));
    }
    (config, ops)
}

/// The limits the options byte selects (as the fuzz harness's `SessionConfig::limits`).
fn limits(config: u8) -> Limits {
    let mut l = Limits::default();
    if config & 0x01 != 0 {
        l.max_line_len = 40;
    }
    if config & 0x02 != 0 {
        l.max_events_per_session = 24;
    }
    if config & 0x04 != 0 {
        l.max_pending_commands = 3;
    }
    if config & 0x08 != 0 {
        let m = &mut l.mime;
        m.max_decode_bytes = 2048;
        m.max_header_block_bytes = 256;
        m.max_headers = 8;
        m.max_depth = 3;
        m.max_parts = 6;
        m.max_urls = 3;
        m.max_body_bytes = 64;
        m.max_header_tokens = 64;
        m.max_header_blocks = 8;
        m.max_scan_work = 16 << 10;
    }
    l
}

#[derive(Default)]
struct Finished(Option<SessionRecord>);

impl SessionSink for Finished {
    fn session(&mut self, rec: SessionRecord) {
        self.0 = Some(rec);
    }
}

/// What a regression input is fed to.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// The SMTP or POP3 dissector (implicit TLS when the options say so).
    Session(Protocol),
    /// The content probe of an unmapped port, with proxy tunnels.
    Probe,
    /// The TLS observer alone.
    Tls,
}

/// The finished record of `ops` through a new dissector for `target`, as JSON.
fn drive(target: Target, config: u8, ops: &[(Timestamp, Op)]) -> Value {
    let limits = limits(config);
    let (protocol, d): (Protocol, Box<dyn Dissector>) = match target {
        Target::Tls => return drive_tls(config, ops),
        Target::Probe => (
            Protocol::Smtp,
            Box::new(ProbeDissector::new(&limits, &Default::default())),
        ),
        Target::Session(protocol) => {
            let framing = if config & 0x20 != 0 {
                Framing::ImplicitTls
            } else {
                Framing::Plain
            };
            (protocol, new_dissector(protocol, framing, &limits))
        }
    };
    drive_dissector(protocol, d, &limits, ops)
}

fn new_record(protocol: Protocol, limits: &Limits) -> SessionRecord {
    let port = if protocol == Protocol::Smtp { 25 } else { 110 };
    let endpoint = |ip: [u8; 4], port| Endpoint {
        ip: ip.into(),
        port,
    };
    let mut rec = SessionRecord::new(
        1,
        protocol,
        endpoint([192, 0, 2, 1], 40000),
        endpoint([192, 0, 2, 2], port),
        start(),
    );
    rec.max_events = limits.max_events_per_session;
    rec
}

/// When every input's first operation happens.
fn start() -> Timestamp {
    Timestamp::from_parts(1_700_000_000, 0)
}

/// The TLS observer fed `ops`: bit 0 of `config` is implicit TLS, bit 1 the server first.
fn drive_tls(config: u8, ops: &[(Timestamp, Op)]) -> Value {
    let mode = if config & 1 != 0 {
        TlsMode::Implicit
    } else {
        TlsMode::Starttls
    };
    let first = if config & 2 != 0 {
        Direction::Server
    } else {
        Direction::Client
    };
    let limits = Limits::default();
    let mut rec = new_record(Protocol::Smtp, &limits);
    let mut last = start();
    let mut observer = TlsObserver::start(mode, first, last, &mut rec);
    for (ts, op) in ops {
        last = last.max(*ts);
        match op {
            Op::Data(dir, bytes) => observer.on_data(*dir, bytes, *ts, &mut rec),
            Op::Gap(dir, len) => observer.on_gap(*dir, *len, *ts, &mut rec),
            Op::Fin(_) => {}
        }
    }
    observer.finish(last.plus_secs(1), &mut rec);
    let mut finished = Finished::default();
    complete_session(rec, &mut finished);
    serde_json::to_value(finished.0.expect("the session is reported")).unwrap()
}

/// `ops` through `d`, finished as the engine finishes a session.
fn drive_dissector(
    protocol: Protocol,
    mut d: Box<dyn Dissector>,
    limits: &Limits,
    ops: &[(Timestamp, Op)],
) -> Value {
    let mut rec = new_record(protocol, limits);
    let mut last = start();
    for (ts, op) in ops {
        last = last.max(*ts);
        match op {
            Op::Data(dir, bytes) => {
                *rec.bytes.get_mut(*dir) += bytes.len() as u64;
                d.on_data(*dir, bytes, *ts, &mut rec);
            }
            Op::Gap(dir, len) => {
                *rec.missing_bytes.get_mut(*dir) += len;
                d.on_gap(*dir, *len, *ts, &mut rec);
            }
            Op::Fin(dir) => d.on_fin(*dir, *ts, &mut rec),
        }
    }
    d.on_end(last.plus_secs(1), &mut rec);
    let mut finished = Finished::default();
    complete_session(rec, &mut finished);
    serde_json::to_value(finished.0.expect("the session is reported")).unwrap()
}

/// Each data operation cut at the points `cut` picks (each piece keeps its packet's time).
fn cut(ops: &[(Timestamp, Op)], mut cut: impl FnMut(usize) -> Vec<usize>) -> Vec<(Timestamp, Op)> {
    let mut out = Vec::new();
    for (ts, op) in ops {
        match op {
            Op::Data(dir, bytes) if bytes.len() > 1 => {
                let mut points = cut(bytes.len());
                points.extend([0, bytes.len()]);
                points.sort_unstable();
                points.dedup();
                for w in points.windows(2) {
                    out.push((*ts, Op::Data(*dir, bytes[w[0]..w[1]].to_vec())));
                }
            }
            _ => out.push((*ts, op.clone())),
        }
    }
    out
}

/// Whether a record hit a bound whose outcome depends on push order (as the harness skips).
fn hit_order_bound(rec: &Value) -> bool {
    rec.get("events_dropped").is_some()
        || rec["anomalies"].as_array().is_some_and(|list| {
            list.iter().any(|a| {
                matches!(
                    a["kind"].as_str(),
                    Some("pending_commands_limit" | "too_many_unanswered_replies")
                )
            })
        })
}

/// Checks one input; returns false when the record hit an order-dependent bound.
fn check_file(target: Target, path: &Path) -> bool {
    let data = std::fs::read(path).unwrap();
    let (config, ops) = parse(&data);
    let reference = drive(target, config, &ops);
    if hit_order_bound(&reference) {
        return false;
    }
    let mut variants = vec![(
        "one-byte pieces".to_string(),
        cut(&ops, |n| (1..n).collect()),
    )];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..16 {
        let pieces = cut(&ops, |n| {
            (0..(seed % 5))
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    (seed % n as u64) as usize
                })
                .collect()
        });
        variants.push((format!("random cuts {round}"), pieces));
    }
    for (name, pieces) in variants {
        let got = drive(target, config, &pieces);
        if let Some(d) = first_difference(&reference, &got, "") {
            panic!("{}: record differs when fed {name}: {d}", path.display());
        }
    }
    true
}

/// Where two JSON values first differ (as sent, then cut), for readable failures.
fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x
            .iter()
            .find_map(|(k, va)| {
                first_difference(va, y.get(k).unwrap_or(&Value::Null), &format!("{path}.{k}"))
            })
            .or_else(|| {
                y.keys()
                    .find(|k| !x.contains_key(*k))
                    .map(|k| format!("{path}.{k}: only when cut"))
            }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (va, vb))| first_difference(va, vb, &format!("{path}[{i}]"))),
        _ => (a != b).then(|| format!("{path}: {a} vs {b}")),
    }
}

fn inputs(target: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/regressions")
        .join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default();
    files.sort();
    files
}

fn check_target(name: &str, target: Target) {
    let files = inputs(name);
    assert!(!files.is_empty(), "no regression inputs for {name}");
    let compared = files.iter().filter(|f| check_file(target, f)).count();
    assert!(compared > 0, "every {name} input hit an order bound");
}

#[test]
fn pop3_regressions_do_not_depend_on_segment_boundaries() {
    check_target("pop3_session", Target::Session(Protocol::Pop3));
}

#[test]
fn smtp_regressions_do_not_depend_on_segment_boundaries() {
    check_target("smtp_session", Target::Session(Protocol::Smtp));
}

#[test]
fn probe_and_tunnel_inputs_do_not_depend_on_segment_boundaries() {
    check_target("tunnel", Target::Probe);
}

#[test]
fn tls_observer_inputs_do_not_depend_on_segment_boundaries() {
    check_target("tls_observer", Target::Tls);
}
