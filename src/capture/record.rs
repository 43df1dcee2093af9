//! A packet source that saves every packet passing through it as pcap (`sniff -w`), so
//! what was analysed can be analysed again, or opened in another tool, later.

use super::pcap_writer::PcapWriter;
use super::{CaptureError, InputSummary, Packet, PacketSource, SourceItem};
use std::io::{self, Write};

/// Passes on the packets of `inner` unchanged, writing each to a pcap file as it goes.
pub struct Recording<'a, W: Write> {
    inner: &'a mut dyn PacketSource,
    /// `None` once a write failed: the capture goes on, the file is not written further.
    writer: Option<PcapWriter<W>>,
    /// The first write failure, reported by [`Recording::finish`].
    error: Option<io::Error>,
}

impl<'a, W: Write> Recording<'a, W> {
    /// Records what `inner` yields into `writer` (whose header is already written).
    pub fn new(inner: &'a mut dyn PacketSource, writer: PcapWriter<W>) -> Self {
        Recording {
            inner,
            writer: Some(writer),
            error: None,
        }
    }

    /// Flushes the file and returns its output, or the first error writing it.
    pub fn finish(self) -> io::Result<W> {
        if let Some(e) = self.error {
            return Err(e);
        }
        match self.writer {
            Some(w) => w.finish(),
            None => Err(io::Error::other("the capture file was not written")),
        }
    }
}

/// Writes `pkt`; after the first failure nothing more is written, and the failure is kept.
fn save<W: Write>(
    writer: &mut Option<PcapWriter<W>>,
    error: &mut Option<io::Error>,
    pkt: &Packet<'_>,
) {
    if let Some(w) = writer.as_mut()
        && let Err(e) = w.packet(pkt.ts, pkt.data, pkt.orig_len)
    {
        *writer = None;
        *error = Some(e);
    }
}

impl<W: Write> PacketSource for Recording<'_, W> {
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError> {
        let Recording {
            inner,
            writer,
            error,
        } = self;
        let pkt = inner.next_packet()?;
        if let Some(p) = &pkt {
            save(writer, error, p);
        }
        Ok(pkt)
    }

    fn next_item(&mut self) -> Result<Option<SourceItem<'_>>, CaptureError> {
        let Recording {
            inner,
            writer,
            error,
        } = self;
        let item = inner.next_item()?;
        if let Some(SourceItem::Packet(p)) = &item {
            save(writer, error, p);
        }
        Ok(item)
    }

    fn summary(&self) -> InputSummary {
        self.inner.summary()
    }

    fn note_error(&mut self, message: String) {
        self.inner.note_error(message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::FileSource;
    use crate::capture::synth::{Conversation, pcap_bytes};
    use crate::engine::{Engine, EngineConfig, SessionSink};
    use crate::session::SessionRecord;

    #[derive(Default)]
    struct Count(usize);

    impl SessionSink for Count {
        fn session(&mut self, _rec: SessionRecord) {
            self.0 += 1;
        }
    }

    fn source(bytes: Vec<u8>) -> FileSource {
        FileSource::from_reader("mem.pcap", Box::new(io::Cursor::new(bytes))).unwrap()
    }

    /// Sessions the engine finds in `src`.
    fn sessions(src: &mut dyn PacketSource) -> usize {
        let mut engine = Engine::new(EngineConfig::default());
        let mut sink = Count::default();
        engine.run_source(src, &mut None, &mut sink);
        engine.finish(&mut sink);
        sink.0
    }

    #[test]
    fn a_recorded_capture_reads_back_with_the_same_packets_and_sessions() {
        let conv = |port| {
            Conversation::new(
                "192.0.2.1:40000".parse().unwrap(),
                format!("192.0.2.2:{port}").parse().unwrap(),
            )
            .server("+OK ready\r\n")
            .client("QUIT\r\n")
            .server("+OK bye\r\n")
            .packets()
        };
        let mut pkts = conv(110);
        pkts.extend(conv(25));
        let original = pcap_bytes(&pkts);
        let mut inner = source(original.clone());
        let writer = PcapWriter::new(Vec::new(), 1).unwrap();
        let mut recording = Recording::new(&mut inner, writer);
        let seen = sessions(&mut recording);
        let saved = recording.finish().unwrap();
        assert_eq!(seen, 2);
        assert_eq!(
            saved, original,
            "the same header and records, byte for byte"
        );
        assert_eq!(sessions(&mut source(saved)), seen);
    }

    #[test]
    fn a_failed_write_is_reported_and_the_capture_goes_on() {
        /// Takes the file header, then fails as a full disk does.
        struct FullAfterHeader(usize);
        impl Write for FullAfterHeader {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                if self.0 >= 24 {
                    return Err(io::Error::other("disk full"));
                }
                self.0 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let conv = Conversation::new(
            "192.0.2.1:40000".parse().unwrap(),
            "192.0.2.2:110".parse().unwrap(),
        )
        .server("+OK ready\r\n");
        let mut inner = source(pcap_bytes(&conv.packets()));
        let writer = PcapWriter::new(FullAfterHeader(0), 1).unwrap();
        let mut recording = Recording::new(&mut inner, writer);
        assert_eq!(sessions(&mut recording), 1);
        let err = recording.finish().err().expect("the write failure");
        assert_eq!(err.to_string(), "disk full");
    }
}
