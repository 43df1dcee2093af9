//! Hostile input through the whole pipeline: thousands of deterministic mutations of the
//! project's own captures, each run in-process from memory, must never panic and must give
//! bounded output; and captures built to exhaust a buffer (an endless line, a huge message, a
//! hole nobody fills, an event flood) must be reported as anomalies while the memory the run
//! holds stays far below their size. (The fuzz targets in `fuzz/` explore further; this keeps
//! a floor in CI.)

use mailsift::capture::file::FileSource;
use mailsift::capture::synth::{Conversation, Rng, SynthPacket, pcap_bytes};
use mailsift::engine::{Engine, EngineConfig, SessionSink};
use mailsift::session::{Direction, EventKind, MAX_ANOMALY_KINDS, MessageBlob, SessionRecord};
use std::io::Cursor;
use std::path::Path;

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::peak_during;

/// Mutated captures run in total (spread over all captures).
const RUNS: usize = 3000;

/// Serialises every session and checks its bounds.
struct BoundedSink {
    max_events: usize,
    sessions: u64,
    json_bytes: usize,
}

impl SessionSink for BoundedSink {
    fn session(&mut self, rec: SessionRecord) {
        assert!(rec.events.len() <= self.max_events, "event limit ignored");
        assert!(
            rec.anomalies.len() <= MAX_ANOMALY_KINDS,
            "anomaly kinds unbounded"
        );
        let json = serde_json::to_vec(&rec).expect("a session record always serialises");
        self.json_bytes += json.len();
        self.sessions += 1;
    }

    fn message_bytes(&mut self, rec: &SessionRecord, blob: MessageBlob) {
        // Extraction streamed the message to a file, byte for byte as recorded.
        let written = std::fs::metadata(&blob.files.eml).map_or(0, |m| m.len());
        let size = rec.messages.get(blob.message).map_or(0, |m| m.size);
        assert_eq!(written, size, "spooled message is the recorded one");
        let _ = std::fs::remove_file(&blob.files.eml);
        for a in &blob.files.attachments {
            let _ = std::fs::remove_file(&a.file);
        }
    }
}

/// The project's capture files, read once.
fn captures() -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("captures");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("captures folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            matches!(
                p.extension().and_then(|e| e.to_str()),
                Some("pcap" | "pcapng")
            )
        })
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).unwrap())
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 10,
        "expected the project's captures in {dir:?}"
    );
    files
}

/// Values that tend to sit on the edges of length and count checks.
const EDGES: [u32; 10] = [
    0,
    1,
    0x7f,
    0x80,
    0xff,
    0xffff,
    0x7fff_ffff,
    0x8000_0000,
    0xffff_fffe,
    0xffff_ffff,
];

/// Applies 1 to 8 random edits; the file header (first 24 bytes) is usually left alone so
/// the edits reach records, packets and payloads.
fn mutate(bytes: &mut Vec<u8>, rng: &mut Rng) {
    let edits = 1 + rng.below(8);
    for _ in 0..edits {
        if bytes.is_empty() {
            return;
        }
        let lo = if rng.below(10) == 0 {
            0
        } else {
            24.min(bytes.len() - 1)
        };
        let at = lo + rng.below(bytes.len() - lo);
        match rng.below(8) {
            0 => bytes[at] ^= 1 << rng.below(8),
            1 => bytes[at] = EDGES[rng.below(EDGES.len())] as u8,
            2 => {
                let value = EDGES[rng.below(EDGES.len())];
                let raw = if rng.below(2) == 0 {
                    value.to_le_bytes()
                } else {
                    value.to_be_bytes()
                };
                for (i, b) in raw.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + i) {
                        *slot = *b;
                    }
                }
            }
            3 => {
                let n = 1 + rng.below(64);
                let end = (at + n).min(bytes.len());
                bytes.drain(at..end);
            }
            4 => {
                let n = 1 + rng.below(64);
                let fill = rng.next_u64() as u8;
                bytes.splice(at..at, std::iter::repeat_n(fill, n));
            }
            5 => {
                // Repeat a slice elsewhere: duplicated records, segments and lines.
                let n = 1 + rng.below(256);
                let from = rng.below(bytes.len());
                let piece: Vec<u8> = bytes[from..(from + n).min(bytes.len())].to_vec();
                bytes.splice(at..at, piece);
            }
            6 => bytes.truncate(at.max(1)),
            _ => bytes[at] = rng.next_u64() as u8,
        }
    }
}

fn run_one(name: &str, bytes: Vec<u8>, config: &EngineConfig) -> (u64, usize) {
    let input_len = bytes.len();
    let Ok(mut src) = FileSource::from_reader(name, Box::new(Cursor::new(bytes))) else {
        return (0, 0);
    };
    let mut engine = Engine::new(config.clone());
    let mut sink = BoundedSink {
        max_events: config.limits.max_events_per_session,
        sessions: 0,
        json_bytes: 0,
    };
    let summary = engine.run_source(&mut src, &mut None, &mut sink);
    let stats = engine.finish(&mut sink);
    assert_eq!(
        stats.sessions, sink.sessions,
        "{name}: sessions counted and emitted"
    );
    assert!(
        sink.sessions <= summary.packets,
        "{name}: more sessions than packets"
    );
    // Each input byte can show up a bounded number of times in the JSON (as text, escaped,
    // and in an event); more would mean output growing out of proportion to the input.
    assert!(
        sink.json_bytes <= 64 * input_len + 64 * 1024,
        "{name}: {} JSON bytes from a {input_len}-byte capture",
        sink.json_bytes
    );
    (sink.sessions, sink.json_bytes)
}

#[test]
fn mutated_captures_never_panic_and_stay_bounded() {
    let files = captures();
    let mut config = EngineConfig::default();
    let spool = std::env::temp_dir().join(format!("mailsift-hostile-spool-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&spool);
    std::fs::create_dir_all(&spool).expect("spool folder");
    config.limits.spool = Some(std::sync::Arc::new(mailsift::mail::Spool::new(&spool)));
    config.limits.max_events_per_session = 2000;
    let mut rng = Rng::new(0x6d61_696c_7369_6674);
    let mut sessions = 0;
    for run in 0..RUNS {
        let (name, original) = &files[run % files.len()];
        let mut bytes = original.clone();
        mutate(&mut bytes, &mut rng);
        let label = format!("{name} mutation {run}");
        sessions += run_one(&label, bytes, &config).0;
    }
    eprintln!("{sessions} sessions from {RUNS} mutated captures");
    let _ = std::fs::remove_dir_all(&spool);
    // Most mutations leave most sessions readable: the run really exercised the dissectors.
    assert!(
        sessions > RUNS as u64,
        "only {sessions} sessions from {RUNS} runs"
    );
}

#[test]
fn unmutated_captures_give_sessions() {
    let config = EngineConfig::default();
    for (name, bytes) in captures() {
        let (sessions, json) = run_one(&name, bytes, &config);
        assert!(sessions >= 1 && json > 0, "{name}: no session");
    }
}

/// Keeps every finished session.
#[derive(Default)]
struct Keep(Vec<SessionRecord>);

impl SessionSink for Keep {
    fn session(&mut self, rec: SessionRecord) {
        self.0.push(rec);
    }
}

/// Runs synthesised packets through the engine from an in-memory pcap; returns the sessions
/// and the most memory the run held beyond the capture bytes themselves.
fn run_packets(pkts: &[SynthPacket], config: &EngineConfig) -> (Vec<SessionRecord>, usize) {
    let bytes = pcap_bytes(pkts);
    let (sessions, peak) = peak_during(|| {
        let mut src = FileSource::from_reader("hostile", Box::new(Cursor::new(bytes)))
            .expect("a pcap written by the synthesiser");
        let mut engine = Engine::new(config.clone());
        let mut sink = Keep::default();
        engine.run_source(&mut src, &mut None, &mut sink);
        engine.finish(&mut sink);
        sink.0
    });
    // The capture bytes were allocated before the run started, so they are not counted.
    (sessions, peak)
}

fn smtp_conversation() -> Conversation {
    Conversation::new(
        "192.0.2.10:40000".parse().expect("address"),
        "192.0.2.25:25".parse().expect("address"),
    )
}

/// Sixteen MiB of hostile bytes: far more than any bound below allows to be held.
const FLOOD: usize = 16 << 20;

/// What a run may hold beyond the capture: the configured bounds plus working room, well
/// under [`FLOOD`].
const HELD_AT_MOST: usize = 4 << 20;

#[test]
fn an_endless_line_is_cut_reported_and_not_held() {
    let mut config = EngineConfig::default();
    config.limits.max_line_len = 4 << 10;
    let mut line = b"EHLO ".to_vec();
    line.resize(FLOOD, b'a');
    let pkts = smtp_conversation()
        .server("220 mx ESMTP\r\n")
        .client(&line)
        .client("\r\nQUIT\r\n")
        .server("221 bye\r\n")
        .packets();
    let (sessions, held) = run_packets(&pkts, &config);
    assert_eq!(sessions.len(), 1);
    let rec = &sessions[0];
    assert!(rec.has_anomaly("line_truncated"), "{:?}", rec.anomalies);
    assert!(rec.has_anomaly("line_too_long"), "{:?}", rec.anomalies);
    assert_eq!(rec.bytes.client, (FLOOD + 8) as u64);
    // The session still reads on past the cut line.
    assert!(
        rec.events
            .iter()
            .any(|e| matches!(&e.kind, EventKind::Command { verb, .. } if verb == "QUIT"))
    );
    assert!(
        held < HELD_AT_MOST,
        "held {held} bytes for a {FLOOD}-byte line"
    );
}

#[test]
fn a_huge_message_is_decoded_whole_as_it_streams_without_being_kept() {
    let config = EngineConfig::default();
    let mut body = b"Subject: big\r\n\r\n".to_vec();
    while body.len() < FLOOD {
        body.extend_from_slice(
            b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n",
        );
    }
    let size = body.len() as u64;
    body.extend_from_slice(b".\r\n");
    let pkts = smtp_conversation()
        .server("220 mx ESMTP\r\n")
        .client("EHLO c\r\n")
        .server("250 mx\r\n")
        .client("MAIL FROM:<a@example.org>\r\n")
        .server("250 ok\r\n")
        .client("RCPT TO:<b@example.org>\r\n")
        .server("250 ok\r\n")
        .client("DATA\r\n")
        .server("354 go\r\n")
        .client(&body)
        .server("250 queued\r\n")
        .client("QUIT\r\n")
        .server("221 bye\r\n")
        .packets();
    let (sessions, held) = run_packets(&pkts, &config);
    let rec = &sessions[0];
    assert_eq!(rec.messages.len(), 1);
    assert_eq!(rec.messages[0].size, size, "size counts every byte");
    assert_eq!(rec.messages[0].sha256.len(), 64, "hashed as it streamed by");
    assert!(rec.anomalies.is_empty(), "{:?}", rec.anomalies);
    let mime = rec.messages[0].mime.as_ref().expect("decoded");
    let body = size - b"Subject: big\r\n\r\n".len() as u64;
    assert_eq!(
        mime.parts[0].size,
        Some(body),
        "the body is decoded to its end"
    );
    assert!(
        held < HELD_AT_MOST,
        "held {held} bytes for a {size}-byte message"
    );
}

#[test]
fn a_hole_nobody_fills_becomes_a_gap_without_holding_the_stream() {
    let mut config = EngineConfig::default();
    config.limits.max_ooo_bytes_per_direction = 256 << 10;
    // Millions of NOOPs would otherwise fill the (default 100 000) event list, which is
    // bounded on its own; here only the reassembly buffer is on trial.
    config.limits.max_events_per_session = 1000;
    let mut noops = Vec::new();
    while noops.len() < FLOOD {
        noops.extend_from_slice(b"NOOP\r\n");
    }
    let mut pkts = smtp_conversation()
        .server("220 mx ESMTP\r\n")
        .client(&noops)
        .server("250 ok\r\n")
        .packets();
    // Drop the first client segment with data: everything after it waits behind a hole.
    let first = pkts
        .iter()
        .position(|p| p.from == Direction::Client && p.has_payload)
        .expect("client data");
    let lost = pkts.remove(first);
    let (sessions, held) = run_packets(&pkts, &config);
    let rec = &sessions[0];
    assert!(
        rec.missing_bytes.client > 0,
        "the hole is counted as missing"
    );
    assert!(
        rec.events
            .iter()
            .any(|e| e.from == Direction::Client && matches!(e.kind, EventKind::Gap { .. })),
        "the hole is reported as a gap"
    );
    assert!(
        rec.bytes.client + rec.missing_bytes.client >= (noops.len() - lost.data.len()) as u64,
        "the bytes after the hole are still delivered"
    );
    assert!(held < HELD_AT_MOST, "held {held} bytes behind a hole");
}

#[test]
fn an_event_flood_is_counted_not_kept() {
    let mut config = EngineConfig::default();
    config.limits.max_events_per_session = 1000;
    let mut noops = Vec::new();
    let mut replies = Vec::new();
    for _ in 0..200_000 {
        noops.extend_from_slice(b"NOOP\r\n");
        replies.extend_from_slice(b"250 ok\r\n");
    }
    let pkts = smtp_conversation()
        .server("220 mx ESMTP\r\n")
        .client(&noops)
        .server(&replies)
        .packets();
    let (sessions, held) = run_packets(&pkts, &config);
    let rec = &sessions[0];
    assert_eq!(rec.events.len(), 1000);
    assert!(
        rec.events_dropped > 190_000,
        "{} dropped",
        rec.events_dropped
    );
    assert!(rec.has_anomaly("event_limit"), "{:?}", rec.anomalies);
    assert!(held < HELD_AT_MOST, "held {held} bytes for an event flood");
}

/// Counts sessions and anomalies of a kind, keeping nothing.
#[derive(Default)]
struct CountOnly {
    sessions: usize,
    with_anomaly: std::collections::BTreeMap<String, usize>,
}

impl SessionSink for CountOnly {
    fn session(&mut self, rec: SessionRecord) {
        self.sessions += 1;
        for a in &rec.anomalies {
            *self.with_anomaly.entry(a.kind.clone()).or_default() += 1;
        }
    }
}

#[test]
fn many_flows_with_unfinished_lines_stay_within_the_flow_and_budget_bounds() {
    const FLOWS: usize = 3000;
    const MAX_FLOWS: usize = 1000;
    const BUDGET: usize = 2 << 20;
    let mut config = EngineConfig::default();
    config.limits.max_flows = MAX_FLOWS;
    config.limits.max_retained_bytes = BUDGET;
    let partial = vec![b'a'; 11_000];
    let mut pkts = Vec::new();
    for i in 0..FLOWS {
        let conv = Conversation::new(
            format!(
                "10.{}.{}.{}:{}",
                i >> 16,
                (i >> 8) & 255,
                i & 255,
                1024 + i % 60_000
            )
            .parse()
            .expect("address"),
            "192.0.2.25:25".parse().expect("address"),
        )
        .start(mailsift::time::Timestamp::from_parts(1_700_000_000, 0))
        .mss(1400)
        .without_close()
        .server("220 mx ESMTP\r\n")
        .client(&partial);
        pkts.extend(conv.packets());
    }
    // All flows start together, so every one holds its unfinished line at once.
    pkts.sort_by_key(|p| p.ts);
    let data = FLOWS * partial.len();
    let bytes = pcap_bytes(&pkts);
    drop(pkts);
    let (sink, held) = peak_during(|| {
        let mut src = FileSource::from_reader("flows", Box::new(Cursor::new(bytes)))
            .expect("a pcap written by the synthesiser");
        let mut engine = Engine::new(config.clone());
        let mut sink = CountOnly::default();
        engine.run_source(&mut src, &mut None, &mut sink);
        engine.finish(&mut sink);
        sink
    });
    // Evicted flows come back as mid-stream sessions when their next segment arrives, and
    // are evicted again: round-robin traffic over a full table is the worst case for LRU.
    assert!(sink.sessions >= FLOWS);
    assert!(sink.with_anomaly.get("flow_evicted").copied().unwrap_or(0) >= FLOWS - MAX_FLOWS);
    // Each tracked flow at its stated base and free allowance (its first KiB of line), and
    // the shared budget. A completed handshake outranks a half-open flow in the table, so
    // more of the tracked flows are ones holding a line than when both were evicted alike.
    let per_flow =
        mailsift::limits::Limits::FLOW_BASE_BYTES + mailsift::limits::Limits::FLOW_FREE_BYTES;
    let bound = MAX_FLOWS * per_flow + BUDGET + (2 << 20);
    assert!(
        held < bound,
        "held {held} bytes for {FLOWS} flows holding {data} bytes of unfinished lines (bound {bound})"
    );
    assert!(held < data / 2, "held {held} of {data} bytes");
    eprintln!("{FLOWS} flows, {data} bytes of unfinished lines: held at most {held} bytes");
}
