//! Packet sources: capture files (pcap, pcapng) and live interfaces, behind one trait.

#[cfg(feature = "live")]
pub mod bpf;
pub mod file;
pub mod gunzip;
#[cfg(feature = "live")]
pub mod live;
pub mod pcap_writer;
#[cfg(feature = "live")]
pub mod queue;
pub mod record;
// Test fixtures (synthetic conversations, capture transforms, benchmark workloads): built for
// the crate's own tests and, with the `fixtures` feature, for its integration tests, benches
// and examples; not part of the library otherwise.
#[cfg(any(test, feature = "fixtures"))]
pub mod synth;
#[cfg(any(test, feature = "fixtures"))]
pub mod transform;
#[cfg(any(test, feature = "fixtures"))]
pub mod workload;

use crate::time::Timestamp;
use serde::Serialize;
use std::path::PathBuf;

/// A link-layer header type, by its LINKTYPE_ number (tcpdump.org/linktypes.html).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LinkType(pub u32);

impl LinkType {
    /// BSD loopback: 4-byte address family in host byte order.
    pub const NULL: LinkType = LinkType(0);
    /// Ethernet II / 802.3.
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP (v4 or v6, from the version nibble).
    pub const RAW: LinkType = LinkType(101);
    /// OpenBSD loopback: 4-byte address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    /// Linux cooked capture v1.
    pub const LINUX_SLL: LinkType = LinkType(113);
    /// Raw IPv4.
    pub const IPV4: LinkType = LinkType(228);
    /// Raw IPv6.
    pub const IPV6: LinkType = LinkType(229);
    /// Linux cooked capture v2.
    pub const LINUX_SLL2: LinkType = LinkType(276);
    /// DLT_RAW as some BSDs number it in old files.
    pub const RAW_BSD12: LinkType = LinkType(12);
    /// DLT_RAW as OpenBSD numbers it in old files.
    pub const RAW_BSD14: LinkType = LinkType(14);

    /// A short name for reports, e.g. `ethernet` or `linktype-147`.
    pub fn name(self) -> String {
        match self {
            LinkType::NULL => "null".into(),
            LinkType::ETHERNET => "ethernet".into(),
            LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 => "raw".into(),
            LinkType::LOOP => "loop".into(),
            LinkType::LINUX_SLL => "linux_sll".into(),
            LinkType::IPV4 => "ipv4".into(),
            LinkType::IPV6 => "ipv6".into(),
            LinkType::LINUX_SLL2 => "linux_sll2".into(),
            LinkType(n) => format!("linktype-{n}"),
        }
    }
}

/// One captured packet, borrowed from the source until the next call.
#[derive(Debug, Clone, Copy)]
pub struct Packet<'a> {
    /// Capture time.
    pub ts: Timestamp,
    /// Link-layer type of `data`.
    pub link: LinkType,
    /// The captured bytes (possibly cut short by the snap length).
    pub data: &'a [u8],
    /// The packet's length on the wire.
    pub orig_len: u32,
}

/// What went wrong reading an input. Each names the input; most also the byte offset.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The file could not be opened or read.
    #[error("{path}: cannot read it: {}", io_reason(source))]
    Io {
        /// The input.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not start like a pcap or pcapng file.
    #[error("{path}: not a pcap or pcapng capture file")]
    NotACapture {
        /// The input.
        path: PathBuf,
    },
    /// The file ends in the middle of a record.
    #[error("{path}: truncated record at offset {offset}; the rest of the file is lost")]
    Truncated {
        /// The input.
        path: PathBuf,
        /// Where the incomplete record starts.
        offset: u64,
    },
    /// A gzip-compressed input expanded past its [`gunzip::GunzipLimit`].
    #[error("{path}: stopped at offset {offset}: {hit}")]
    GunzipLimit {
        /// The input.
        path: PathBuf,
        /// Decompressed bytes read when it stopped.
        offset: u64,
        /// How far it had expanded.
        hit: gunzip::GunzipLimitHit,
    },
    /// A record or block is malformed.
    #[error("{path}: corrupt data at offset {offset}: {reason}")]
    Corrupt {
        /// The input.
        path: PathBuf,
        /// Where the bad record or block starts.
        offset: u64,
        /// What is wrong with it.
        reason: String,
    },
    /// The capture's link type is not one mailsift decodes.
    #[error("{path}: unsupported link type {link} ({name})", name = link.name(), link = link.0)]
    UnsupportedLinkType {
        /// The input.
        path: PathBuf,
        /// The link type.
        link: LinkType,
    },
    /// The BPF filter could not be compiled.
    #[error("invalid capture filter {filter:?}: {reason}")]
    Filter {
        /// The filter text.
        filter: String,
        /// libpcap's message.
        reason: String,
    },
    /// The operating system refused to let this process capture.
    #[error("{device}: not permitted to capture ({reason})")]
    LivePermission {
        /// The interface.
        device: String,
        /// libpcap's message.
        reason: String,
    },
    /// No interface of that name exists.
    #[error("{device}: no such interface ({reason})")]
    NoSuchDevice {
        /// The interface.
        device: String,
        /// libpcap's message.
        reason: String,
    },
    /// A live capture could not be started or failed.
    #[error("{device}: {reason}")]
    Live {
        /// The interface.
        device: String,
        /// libpcap's message.
        reason: String,
    },
}

/// An I/O error in words, with what to check: the OS's own text reads `(os error 2)`, which
/// tells a new user nothing about what to do.
pub fn io_reason(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => "no such file or directory (check the path)".into(),
        ErrorKind::PermissionDenied => {
            "permission denied (check the file's permissions, or run as a user who may read it)"
                .into()
        }
        ErrorKind::IsADirectory => "it is a directory (name the capture files in it)".into(),
        _ => {
            let text = e.to_string();
            // Keep the OS's words, drop the errno that follows them.
            match (e.raw_os_error(), text.rfind(" (os error ")) {
                (Some(_), Some(at)) => text[..at].to_string(),
                _ => text,
            }
        }
    }
}

/// Per-input figures for the `inputs` section of the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct InputSummary {
    /// The file path, or the interface name for live capture.
    pub path: String,
    /// `pcap`, `pcapng` or `live`; null when the file could not be recognised.
    pub format: Option<String>,
    /// Link types seen (names as in [`LinkType::name`]).
    pub link_types: Vec<String>,
    /// Packets read.
    pub packets: u64,
    /// Bytes of packet data read.
    pub bytes: u64,
    /// One-line errors met while reading (with offsets where useful).
    pub errors: Vec<String>,
}

/// What a source yields: a packet, or word that time passed with none (live capture only).
#[derive(Debug, Clone, Copy)]
pub enum SourceItem<'a> {
    /// A captured packet.
    Packet(Packet<'a>),
    /// No packet arrived for a while; the capture clock now reads this time. It lets sessions
    /// that ended on a quiet interface be finished and reported without waiting for traffic.
    Idle(Timestamp),
}

/// Anything that yields packets: a capture file or a live interface.
pub trait PacketSource {
    /// The next packet; `Ok(None)` at the end.
    ///
    /// After an `Err` the source is finished: the error is reported and the engine moves on
    /// to the next input, keeping everything read so far.
    fn next_packet(&mut self) -> Result<Option<Packet<'_>>, CaptureError>;

    /// The next packet or idle tick; `Ok(None)` at the end. Files never go idle, so by
    /// default this is [`PacketSource::next_packet`].
    fn next_item(&mut self) -> Result<Option<SourceItem<'_>>, CaptureError> {
        Ok(self.next_packet()?.map(SourceItem::Packet))
    }

    /// Figures so far, for the report.
    fn summary(&self) -> InputSummary;

    /// Records a non-fatal problem (such as an unsupported interface) against this input.
    fn note_error(&mut self, message: String);
}

/// Decides which packets are analysed (a BPF capture filter, applied to files too).
pub trait PacketFilter {
    /// Whether `pkt` passes the filter.
    fn matches(&mut self, pkt: &Packet<'_>) -> bool;
}

#[cfg(test)]
mod tests {
    use super::io_reason;
    use std::io;

    #[test]
    fn io_reasons_are_words_with_what_to_check_and_no_errno() {
        let denied = io_reason(&io::Error::from_raw_os_error(13));
        assert!(denied.starts_with("permission denied (check"), "{denied}");
        let missing = io_reason(&io::Error::from(io::ErrorKind::NotFound));
        assert_eq!(missing, "no such file or directory (check the path)");
        // ENOSPC, say: the OS's words are kept, its number is not.
        let other = io_reason(&io::Error::from_raw_os_error(28));
        assert!(!other.contains("os error") && !other.is_empty(), "{other}");
    }
}
