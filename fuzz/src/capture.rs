//! Capture files and the whole pipeline from fuzzer bytes.
//!
//! [`read_file`] opens the bytes as a capture file (pcap, pcapng, or either gzip-compressed) and
//! reads every packet. [`pipeline`] runs them through the engine as `mailsift export` would, with
//! a sink that serialises each finished session (both JSON writers and the table) and checks it.

use mailsift::capture::PacketSource;
use mailsift::capture::file::FileSource;
use mailsift::engine::{Engine, EngineConfig, SessionSink};
use mailsift::output::json::{DocumentWriter, NdjsonWriter};
use mailsift::output::table::SessionTable;
use mailsift::session::{MessageBlob, SessionRecord};
use std::io::Cursor;

/// Most packets read from one input (far more than a fuzz input can hold without gzip).
pub const MAX_PACKETS: u64 = 1 << 20;

fn open(data: &[u8]) -> Option<FileSource> {
    FileSource::from_reader("fuzz-input", Box::new(Cursor::new(data.to_vec()))).ok()
}

fn is_gzip(data: &[u8]) -> bool {
    data.starts_with(&[0x1f, 0x8b])
}

/// Reads every packet of a capture file.
pub fn read_file(data: &[u8]) {
    let Some(mut src) = open(data) else { return };
    let mut packets = 0u64;
    let mut bytes = 0u64;
    loop {
        match src.next_packet() {
            Ok(Some(pkt)) => {
                packets += 1;
                bytes += pkt.data.len() as u64;
                if !is_gzip(data) {
                    // Each record has a header and its bytes in the file.
                    assert!(pkt.data.len() <= data.len(), "packet larger than the file");
                }
                assert!(packets <= MAX_PACKETS, "endless packets");
            }
            Ok(None) => break,
            Err(_) => {
                // After an error the source is finished.
                assert!(
                    matches!(src.next_packet(), Ok(None)),
                    "packets after an error"
                );
                break;
            }
        }
    }
    let summary = src.summary();
    assert_eq!(summary.packets, packets, "packet count in the summary");
    assert_eq!(summary.bytes, bytes, "byte count in the summary");
    if !is_gzip(data) {
        assert!(
            bytes <= data.len() as u64,
            "{bytes} packet bytes from a {}-byte file",
            data.len()
        );
        assert!(
            packets <= data.len() as u64 / 8,
            "more packets than records fit"
        );
    }
}

/// Serialises every session and message it is given, and checks them.
struct CheckingSink {
    config: EngineConfig,
    input_len: usize,
    sessions: u64,
    document: DocumentWriter<Vec<u8>>,
    ndjson: NdjsonWriter<Vec<u8>>,
    table: SessionTable,
}

impl SessionSink for CheckingSink {
    fn session(&mut self, rec: SessionRecord) {
        crate::check::record(&rec, &self.config.limits, self.input_len.max(1));
        self.document.session(&rec).expect("writes to memory");
        self.ndjson.session(&rec).expect("writes to memory");
        self.table.add(&rec);
        self.sessions += 1;
    }

    fn message_bytes(&mut self, rec: &SessionRecord, blob: MessageBlob) {
        assert!(
            blob.message < rec.messages.len() + 1,
            "blob for an unknown message"
        );
        crate::check::blob(&blob, &self.config.limits, self.input_len);
        crate::check::discard(&blob);
    }
}

/// Runs a capture file through the engine and every output; the export document, or `None`
/// when the bytes are not a capture.
fn export(data: &[u8]) -> Option<Vec<u8>> {
    let mut src = open(data)?;
    let mut config = EngineConfig::default();
    config.limits.spool = Some(crate::check::spool());
    let mut engine = Engine::new(config.clone());
    let mut sink = CheckingSink {
        config,
        input_len: data.len(),
        sessions: 0,
        document: DocumentWriter::new(Vec::new()).expect("writes to memory"),
        ndjson: NdjsonWriter::new(Vec::new()),
        table: SessionTable::new(),
    };
    let input = engine.run_source(&mut src, &mut None, &mut sink);
    let stats = engine.finish(&mut sink);
    assert_eq!(
        stats.sessions, sink.sessions,
        "sessions counted and emitted"
    );
    assert!(
        stats.sessions <= stats.mail_packets,
        "more sessions than mail packets"
    );
    assert!(
        stats.mail_packets <= stats.packets,
        "more mail packets than packets"
    );
    assert_eq!(input.packets, stats.packets, "packets read and processed");
    // Rendered at the narrowest width and at full width: no input may break the fitting.
    let _ = sink.table.render(&mailsift::output::table::Terminal::plain(Some(40)), 40);
    let _ = sink.table.render(&mailsift::output::table::Terminal::plain(None), usize::MAX);
    let doc = sink
        .document
        .finish(&[input], &stats)
        .expect("writes to memory");
    let _: serde_json::Value =
        serde_json::from_slice(&doc).expect("the export document is valid JSON");
    Some(doc)
}

/// Runs a capture file through the engine and every output, twice: a capture always replays
/// the same way (hash maps are seeded differently each time, so no output may depend on their
/// iteration order).
pub fn pipeline(data: &[u8]) {
    let first = export(data);
    let second = export(data);
    assert!(
        first == second,
        "two runs over the same capture gave different exports"
    );
}
