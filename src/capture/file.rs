//! Capture files: pcap (both byte orders, micro- and nanosecond) and pcapng, read in pure Rust.

use super::{CaptureError, InputSummary, Packet, PacketSource};
use std::path::Path;

/// A pcap or pcapng file read record by record.
pub struct FileSource {
    summary: InputSummary,
}

impl FileSource {
    /// Opens a capture file and reads its header.
    pub fn open(path: &Path) -> Result<FileSource, CaptureError> {
        let _ = path;
        unimplemented!("capture file reader")
    }
}

impl PacketSource for FileSource {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        unimplemented!("capture file reader")
    }

    fn summary(&self) -> InputSummary {
        self.summary.clone()
    }

    fn note_error(&mut self, message: String) {
        self.summary.errors.push(message);
    }
}
