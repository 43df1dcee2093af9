//! Writing classic pcap files: the format every capture tool reads, for captures mailsift
//! saves (`sniff -w`) and the synthetic ones tests and benchmarks build.

use crate::time::Timestamp;
use std::io::{self, Write};

/// Snap length written in the header when the caller has none of its own: libpcap's default.
const DEFAULT_SNAPLEN: u32 = 262_144;

/// Writes a classic pcap file (little-endian, microsecond or nanosecond timestamps).
pub struct PcapWriter<W: Write> {
    out: W,
    /// Whether record times are written in nanoseconds (else microseconds).
    nanos: bool,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the file header for link type `link` (e.g. 1 for Ethernet).
    pub fn new(out: W, link: u32) -> io::Result<Self> {
        PcapWriter::with_header(out, link, DEFAULT_SNAPLEN, false)
    }

    /// Writes the file header of a nanosecond-resolution pcap for link type `link`, so
    /// rewritten captures keep their packets' times exactly.
    pub fn with_nanos(out: W, link: u32) -> io::Result<Self> {
        PcapWriter::with_header(out, link, DEFAULT_SNAPLEN, true)
    }

    /// Writes the file header for link type `link`, naming `snaplen` as the capture's snap
    /// length, with microsecond or (`nanos`) nanosecond times.
    pub fn with_header(mut out: W, link: u32, snaplen: u32, nanos: bool) -> io::Result<Self> {
        let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
        out.write_all(&magic.to_le_bytes())?;
        // Version 2.4, no time zone correction, no accuracy figure.
        out.write_all(&2u16.to_le_bytes())?;
        out.write_all(&4u16.to_le_bytes())?;
        out.write_all(&0i32.to_le_bytes())?;
        out.write_all(&0u32.to_le_bytes())?;
        out.write_all(&snaplen.to_le_bytes())?;
        out.write_all(&link.to_le_bytes())?;
        Ok(PcapWriter { out, nanos })
    }

    /// Appends one record; `orig_len` may exceed `data.len()` to mimic a snap length.
    pub fn packet(&mut self, ts: Timestamp, data: &[u8], orig_len: u32) -> io::Result<()> {
        let (per_sec, units) = if self.nanos {
            (1_000_000_000, ts.0)
        } else {
            (1_000_000, ts.micros())
        };
        self.out
            .write_all(&(units.div_euclid(per_sec) as u32).to_le_bytes())?;
        self.out
            .write_all(&(units.rem_euclid(per_sec) as u32).to_le_bytes())?;
        self.out.write_all(&(data.len() as u32).to_le_bytes())?;
        self.out.write_all(&orig_len.to_le_bytes())?;
        self.out.write_all(data)
    }

    /// Flushes and returns the output.
    pub fn finish(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::file::FileSource;
    use crate::capture::{LinkType, PacketSource};

    fn read_back(bytes: Vec<u8>) -> FileSource {
        FileSource::from_reader("mem.pcap", Box::new(io::Cursor::new(bytes))).unwrap()
    }

    #[test]
    fn what_is_written_reads_back_with_its_times_lengths_and_link_type() {
        let mut w = PcapWriter::with_header(Vec::new(), 101, 96, false).unwrap();
        let first = Timestamp::from_parts(1_700_000_000, 123_456_000);
        let second = Timestamp::from_parts(1_700_000_001, 5_000);
        w.packet(first, &[0x45; 40], 40).unwrap();
        w.packet(second, &[0x45; 96], 1500).unwrap();
        let mut src = read_back(w.finish().unwrap());
        let p = src.next_packet().unwrap().expect("first packet");
        assert_eq!((p.ts, p.data.len(), p.orig_len), (first, 40, 40));
        assert_eq!(p.link, LinkType(101));
        let p = src.next_packet().unwrap().expect("second packet");
        assert_eq!((p.ts, p.data.len(), p.orig_len), (second, 96, 1500));
        assert!(src.next_packet().unwrap().is_none());
    }

    #[test]
    fn a_file_with_no_packet_is_still_a_capture() {
        let w = PcapWriter::new(Vec::new(), 1).unwrap();
        let mut src = read_back(w.finish().unwrap());
        assert!(src.next_packet().unwrap().is_none());
        assert_eq!(src.summary().format.as_deref(), Some("pcap"));
    }
}
