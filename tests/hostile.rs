//! Hostile input through the whole pipeline: thousands of deterministic mutations of the
//! project's own captures, each run in-process from memory, must never panic and must give
//! bounded output. (The fuzz targets in `fuzz/` explore further; this keeps a floor in CI.)

use mailsift::capture::file::FileSource;
use mailsift::capture::synth::Rng;
use mailsift::engine::{Engine, EngineConfig, SessionSink};
use mailsift::session::{MAX_ANOMALY_KINDS, MessageBlob, SessionRecord};
use std::io::Cursor;
use std::path::Path;

/// Mutated captures run in total (spread over all captures).
const RUNS: usize = 3000;

/// Serialises every session and checks its bounds.
struct BoundedSink {
    max_events: usize,
    max_message_bytes: usize,
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

    fn message_bytes(&mut self, _rec: &SessionRecord, blob: MessageBlob) {
        assert!(
            blob.bytes.len() <= self.max_message_bytes,
            "message bytes unbounded"
        );
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
        max_message_bytes: config.limits.max_message_bytes,
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
    config.limits.keep_message_bytes = true;
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
