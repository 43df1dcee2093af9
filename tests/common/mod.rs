//! Shared helpers for integration tests: run captures through the library and collect sessions.
#![allow(dead_code)]

use mailsift::capture::synth::{SynthPacket, pcap_bytes};
use mailsift::engine::{self, EngineConfig, RunSummary, SessionSink};
use mailsift::session::SessionRecord;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Collects finished sessions.
#[derive(Default)]
pub struct Collect {
    pub sessions: Vec<SessionRecord>,
    pub blobs: Vec<(u64, mailsift::session::MessageBlob)>,
}

impl SessionSink for Collect {
    fn session(&mut self, rec: SessionRecord) {
        self.sessions.push(rec);
    }
    fn message_bytes(&mut self, rec: &SessionRecord, blob: mailsift::session::MessageBlob) {
        self.blobs.push((rec.id, blob));
    }
}

/// A fresh path in the system temp folder for this test process.
pub fn temp_path(name: &str) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("mailsift-test-{}-{n}-{name}", std::process::id()))
}

/// Writes packets as a pcap file and returns its path.
pub fn write_pcap(name: &str, pkts: &[SynthPacket]) -> PathBuf {
    let p = temp_path(name);
    std::fs::write(&p, pcap_bytes(pkts)).unwrap();
    p
}

/// Runs files through the engine with a configuration.
pub fn run_with(paths: &[PathBuf], config: EngineConfig) -> (Vec<SessionRecord>, RunSummary) {
    let mut sink = Collect::default();
    let mut errors = Vec::new();
    let summary = engine::run_files(paths, config, &mut None, &mut sink, &mut |e| {
        errors.push(e.to_string())
    });
    (sink.sessions, summary)
}

/// Runs files with the default configuration.
pub fn run(paths: &[PathBuf]) -> (Vec<SessionRecord>, RunSummary) {
    run_with(paths, EngineConfig::default())
}

/// Runs synthetic packets with the default configuration.
pub fn run_packets(name: &str, pkts: &[SynthPacket]) -> Vec<SessionRecord> {
    let p = write_pcap(name, pkts);
    let (s, _) = run(std::slice::from_ref(&p));
    let _ = std::fs::remove_file(p);
    s
}

/// The project's own captures folder.
pub fn captures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("captures")
}

/// The shared public corpus, if present.
pub fn corpus_dir() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    p.join("MANIFEST.tsv").is_file().then_some(p)
}

/// The JSON of a session's events, for comparisons across transformations of one capture.
pub fn events_json(rec: &SessionRecord) -> serde_json::Value {
    serde_json::to_value(&rec.events).unwrap()
}

/// Every capture bundled in `captures/`, sorted by name.
pub fn bundled_captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(captures_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().to_string();
            n.ends_with(".pcap") || n.ends_with(".pcapng")
        })
        .collect();
    v.sort();
    v
}

/// The export document for `paths`, exactly as `mailsift export` writes it.
pub fn export_document(paths: &[PathBuf], config: EngineConfig) -> serde_json::Value {
    struct Doc(Option<mailsift::output::json::DocumentWriter<Vec<u8>>>);
    impl SessionSink for Doc {
        fn session(&mut self, rec: SessionRecord) {
            self.0.as_mut().unwrap().session(&rec).unwrap();
        }
    }
    let mut doc = Doc(Some(
        mailsift::output::json::DocumentWriter::new(Vec::new()).unwrap(),
    ));
    let summary = engine::run_files(paths, config, &mut None, &mut doc, &mut |_| {});
    let bytes = doc
        .0
        .take()
        .unwrap()
        .finish(&summary.inputs, &summary.stats)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}
