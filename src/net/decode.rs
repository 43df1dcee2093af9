//! From captured bytes to a TCP segment view: link, IP (with extension headers and fragments), TCP.

use crate::capture::{LinkType, Packet};
use crate::limits::Limits;
use serde::Serialize;
use std::net::IpAddr;

/// The TCP header flags mailsift acts on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpFlags {
    /// SYN.
    pub syn: bool,
    /// ACK (the acknowledgement number is valid).
    pub ack: bool,
    /// FIN.
    pub fin: bool,
    /// RST.
    pub rst: bool,
}

/// A decoded TCP segment, borrowing its payload from the packet or the defragmenter.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgement number (meaningful when `flags.ack`).
    pub ack: u32,
    /// Header flags.
    pub flags: TcpFlags,
    /// Captured payload bytes.
    pub payload: &'a [u8],
    /// Payload bytes the IP header promises beyond what was captured (snap length).
    pub missing: u32,
}

/// Why a packet yielded no TCP segment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The link type is not decoded.
    #[error("unsupported link type {}", .0.0)]
    UnsupportedLink(LinkType),
    /// A header was cut short.
    #[error("truncated {0} header")]
    Truncated(&'static str),
    /// A header is invalid.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// What a packet turned out to be.
#[derive(Debug, Clone, Copy)]
pub enum Decoded<'a> {
    /// A TCP segment.
    Tcp(TcpSegment<'a>),
    /// Not TCP over IP, or a fragment still waiting for the rest of its datagram.
    Other,
}

/// Counters of what the decoder met, for the report's `stats`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DecodeStats {
    /// TCP segments produced.
    pub tcp: u64,
    /// Packets that were not TCP over IPv4/IPv6.
    pub other: u64,
    /// Packets whose headers were truncated or invalid.
    pub malformed: u64,
    /// Packets of a link type that is not decoded.
    pub unsupported_link: u64,
    /// IP fragments received.
    pub fragments: u64,
    /// Datagrams rebuilt from fragments.
    pub reassembled: u64,
    /// Incomplete datagrams dropped (timeout or limits).
    pub fragments_dropped: u64,
}

/// Decodes packets of any supported link type; owns the defragmentation state.
pub struct Decoder {
    stats: DecodeStats,
}

impl Decoder {
    /// A decoder with the given fragment limits.
    pub fn new(limits: &Limits) -> Self {
        let _ = limits;
        Decoder {
            stats: DecodeStats::default(),
        }
    }

    /// Whether `link` is a link type this decoder understands.
    pub fn supports(link: LinkType) -> bool {
        let _ = link;
        unimplemented!("decoder")
    }

    /// Decodes one packet down to TCP, reassembling IP fragments on the way.
    pub fn decode<'a>(&'a mut self, pkt: &Packet<'a>) -> Result<Decoded<'a>, DecodeError> {
        let _ = pkt;
        unimplemented!("decoder")
    }

    /// Counters so far.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }
}
