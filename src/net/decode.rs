//! From captured bytes to a TCP segment view: link, IP (with extension headers and fragments), TCP.
//!
//! A packet cut short by the capture's snap length is never read as garbage: the IP length
//! decides where the datagram ends (so Ethernet padding is ignored), the captured part of the
//! TCP payload is delivered, and the bytes the capture did not record are reported as missing.

use super::defrag::{Defragmenter, Fragment, FragmentKey};
pub use super::link::DecodeError;
use super::link::{self, NetworkProtocol};
use crate::capture::{LinkType, Packet};
use crate::limits::Limits;
use crate::time::Timestamp;
use etherparse::{
    IpAuthHeaderSlice, Ipv4HeaderSlice, Ipv6FragmentHeaderSlice, Ipv6HeaderSlice,
    Ipv6RawExtHeaderSlice, TcpHeaderSlice, err,
};
use serde::Serialize;
use std::net::IpAddr;

/// Most IPv6 extension headers (plus IPv4 AH headers) followed before giving up.
pub const MAX_EXTENSION_HEADERS: usize = 16;

/// IP protocol / IPv6 next-header numbers the decoder acts on.
mod ip_number {
    pub const HOP_BY_HOP: u8 = 0;
    pub const TCP: u8 = 6;
    pub const ROUTING: u8 = 43;
    pub const FRAGMENT: u8 = 44;
    pub const AUTHENTICATION: u8 = 51;
    pub const DESTINATION_OPTIONS: u8 = 60;
    pub const MOBILITY: u8 = 135;
    pub const HIP: u8 = 139;
    pub const SHIM6: u8 = 140;
}

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
    defrag: Defragmenter,
}

/// What one packet turned out to be, before counting.
enum Step<'a> {
    Tcp(TcpSegment<'a>),
    Other,
    /// A fragment kept (or discarded) while its datagram is incomplete.
    FragmentHeld,
}

impl Decoder {
    /// A decoder with the given fragment limits.
    pub fn new(limits: &Limits) -> Self {
        Decoder {
            stats: DecodeStats::default(),
            defrag: Defragmenter::new(limits),
        }
    }

    /// Whether `link` is a link type this decoder understands.
    pub fn supports(link: LinkType) -> bool {
        link::is_supported(link)
    }

    /// Decodes one packet down to TCP, reassembling IP fragments on the way.
    pub fn decode<'a>(&'a mut self, pkt: &Packet<'a>) -> Result<Decoded<'a>, DecodeError> {
        let Decoder { stats, defrag } = self;
        let step = decode_packet(pkt, defrag, stats);
        match step {
            Ok(Step::Tcp(seg)) => {
                stats.tcp += 1;
                Ok(Decoded::Tcp(seg))
            }
            Ok(Step::Other) => {
                stats.other += 1;
                Ok(Decoded::Other)
            }
            Ok(Step::FragmentHeld) => Ok(Decoded::Other),
            Err(e @ DecodeError::UnsupportedLink(_)) => {
                stats.unsupported_link += 1;
                Err(e)
            }
            Err(e) => {
                stats.malformed += 1;
                Err(e)
            }
        }
    }

    /// Drops datagrams still waiting for fragments (at the end of the input) and counts them.
    pub fn flush_fragments(&mut self) {
        self.stats.fragments_dropped += self.defrag.drain();
    }

    /// Counters so far.
    pub fn stats(&self) -> &DecodeStats {
        &self.stats
    }
}

/// The IP datagram of a packet: its bytes up to the IP length, and how many the capture lost.
struct Clipped<'a> {
    datagram: &'a [u8],
    missing: u32,
}

/// Cuts `bytes` to the datagram length `ip_len` (link padding beyond it is not payload).
///
/// Bytes the IP length promises beyond the captured ones are missing, but never more than the
/// capture says it cut (`cut`): a header that claims more than was on the wire is not evidence
/// of lost payload.
fn clip_to_ip_length<'b>(
    bytes: &'b [u8],
    ip_len: usize,
    header_len: usize,
    cut: u32,
    what: &'static str,
) -> Result<Clipped<'b>, DecodeError> {
    // Zero is what segmentation offload leaves in captured outgoing packets (and what an
    // IPv6 jumbogram says): the captured bytes are the datagram.
    let ip_len = if ip_len == 0 { bytes.len() } else { ip_len };
    if ip_len < header_len {
        return Err(DecodeError::Malformed(what));
    }
    let end = ip_len.min(bytes.len());
    let promised = u32::try_from(ip_len - end).unwrap_or(u32::MAX);
    Ok(Clipped {
        datagram: bytes.get(..end).unwrap_or(&[]),
        missing: promised.min(cut),
    })
}

fn decode_packet<'a>(
    pkt: &Packet<'a>,
    defrag: &'a mut Defragmenter,
    stats: &mut DecodeStats,
) -> Result<Step<'a>, DecodeError> {
    let payload = link::strip_link(pkt.link, pkt.data)?;
    let cut = pkt
        .orig_len
        .saturating_sub(u32::try_from(pkt.data.len()).unwrap_or(u32::MAX));
    let protocol = match payload.protocol {
        NetworkProtocol::AnyIp => match payload.bytes.first().map(|b| b >> 4) {
            Some(4) => NetworkProtocol::Ipv4,
            Some(6) => NetworkProtocol::Ipv6,
            Some(_) => return Err(DecodeError::Malformed("ip version")),
            None => return Err(DecodeError::Truncated("ip")),
        },
        p => p,
    };
    let ip = IpContext {
        ts: pkt.ts,
        defrag,
        stats,
    };
    match protocol {
        NetworkProtocol::Ipv4 => ip.ipv4(payload.bytes, cut),
        NetworkProtocol::Ipv6 => ip.ipv6(payload.bytes, cut),
        NetworkProtocol::AnyIp | NetworkProtocol::Other => Ok(Step::Other),
    }
}

/// What IP decoding needs besides the bytes: the time, the defragmenter and the counters.
struct IpContext<'a, 's> {
    ts: Timestamp,
    defrag: &'a mut Defragmenter,
    stats: &'s mut DecodeStats,
}

impl<'a> IpContext<'a, '_> {
    fn ipv4(self, bytes: &'a [u8], cut: u32) -> Result<Step<'a>, DecodeError> {
        let header = Ipv4HeaderSlice::from_slice(bytes).map_err(|e| match e {
            err::ipv4::HeaderSliceError::Len(_) => DecodeError::Truncated("ipv4"),
            err::ipv4::HeaderSliceError::Content(_) => DecodeError::Malformed("ipv4 header"),
        })?;
        let header_len = header.slice().len();
        let clipped = clip_to_ip_length(
            bytes,
            usize::from(header.total_len()),
            header_len,
            cut,
            "ipv4 total length",
        )?;
        let src = IpAddr::V4(header.source_addr());
        let dst = IpAddr::V4(header.destination_addr());
        let protocol = header.protocol().0;
        let payload = clipped.datagram.get(header_len..).unwrap_or(&[]);
        let offset = usize::from(header.fragments_offset().value()) * 8;
        if !header.more_fragments() && offset == 0 {
            return upper_layer(src, dst, protocol, payload, clipped.missing);
        }
        let fragment = Fragment {
            key: FragmentKey {
                src,
                dst,
                protocol,
                id: u32::from(header.identification()),
            },
            offset,
            more: header.more_fragments(),
            data: payload,
        };
        match self.reassemble(fragment, clipped.missing) {
            Some(datagram) => upper_layer(src, dst, protocol, datagram, 0),
            None => Ok(Step::FragmentHeld),
        }
    }

    fn ipv6(self, bytes: &'a [u8], cut: u32) -> Result<Step<'a>, DecodeError> {
        let header = Ipv6HeaderSlice::from_slice(bytes).map_err(|e| match e {
            err::ipv6::HeaderSliceError::Len(_) => DecodeError::Truncated("ipv6"),
            err::ipv6::HeaderSliceError::Content(_) => DecodeError::Malformed("ipv6 header"),
        })?;
        let header_len = header.slice().len();
        let payload_len = usize::from(header.payload_length());
        let ip_len = if payload_len == 0 {
            0
        } else {
            header_len + payload_len
        };
        let clipped = clip_to_ip_length(bytes, ip_len, header_len, cut, "ipv6 payload length")?;
        let src = IpAddr::V6(header.source_addr());
        let dst = IpAddr::V6(header.destination_addr());
        let mut next = header.next_header().0;
        let mut rest = clipped.datagram.get(header_len..).unwrap_or(&[]);
        let mut missing = clipped.missing;
        let mut context = Some(self);
        for _ in 0..MAX_EXTENSION_HEADERS {
            match next {
                ip_number::FRAGMENT => {
                    let frag = Ipv6FragmentHeaderSlice::from_slice(rest)
                        .map_err(|_| DecodeError::Truncated("ipv6 fragment header"))?;
                    let inner = frag.next_header().0;
                    let data = rest.get(frag.slice().len()..).unwrap_or(&[]);
                    let offset = usize::from(frag.fragment_offset().value()) * 8;
                    if offset == 0 && !frag.more_fragments() {
                        // An atomic fragment (RFC 6946) is a whole datagram.
                        next = inner;
                        rest = data;
                        continue;
                    }
                    let Some(ctx) = context.take() else {
                        return Err(DecodeError::Malformed("nested ipv6 fragment header"));
                    };
                    let fragment = Fragment {
                        key: FragmentKey {
                            src,
                            dst,
                            protocol: inner,
                            id: frag.identification(),
                        },
                        offset,
                        more: frag.more_fragments(),
                        data,
                    };
                    match ctx.reassemble(fragment, missing) {
                        Some(datagram) => {
                            next = inner;
                            rest = datagram;
                            missing = 0;
                        }
                        None => return Ok(Step::FragmentHeld),
                    }
                }
                ip_number::HOP_BY_HOP
                | ip_number::ROUTING
                | ip_number::DESTINATION_OPTIONS
                | ip_number::MOBILITY
                | ip_number::HIP
                | ip_number::SHIM6 => {
                    let ext = Ipv6RawExtHeaderSlice::from_slice(rest)
                        .map_err(|_| DecodeError::Truncated("ipv6 extension header"))?;
                    next = ext.next_header().0;
                    rest = rest.get(ext.slice().len()..).unwrap_or(&[]);
                }
                ip_number::AUTHENTICATION => {
                    let auth = auth_header(rest)?;
                    next = auth.next_header().0;
                    rest = rest.get(auth.slice().len()..).unwrap_or(&[]);
                }
                _ => return upper_layer(src, dst, next, rest, missing),
            }
        }
        Err(DecodeError::Malformed("ipv6 extension header chain"))
    }

    /// Hands a fragment to the defragmenter; the rebuilt payload once it is complete.
    fn reassemble(self, fragment: Fragment<'_>, missing: u32) -> Option<&'a [u8]> {
        self.stats.fragments += 1;
        if missing > 0 {
            // A fragment cut by the snap length cannot fill its place; the datagram will
            // time out and be counted as dropped.
            return None;
        }
        let added = self.defrag.add(self.ts, fragment);
        self.stats.fragments_dropped += added.dropped;
        if added.datagram.is_some() {
            self.stats.reassembled += 1;
        }
        added.datagram
    }
}

/// Decodes what follows the IP header(s): IPv4 AH headers, then TCP; anything else is `Other`.
fn upper_layer<'a>(
    src: IpAddr,
    dst: IpAddr,
    mut protocol: u8,
    mut bytes: &'a [u8],
    missing: u32,
) -> Result<Step<'a>, DecodeError> {
    for _ in 0..MAX_EXTENSION_HEADERS {
        match protocol {
            ip_number::TCP => return tcp_segment(src, dst, bytes, missing).map(Step::Tcp),
            ip_number::AUTHENTICATION => {
                let auth = auth_header(bytes)?;
                protocol = auth.next_header().0;
                bytes = bytes.get(auth.slice().len()..).unwrap_or(&[]);
            }
            // ESP, No Next Header, UDP, ICMP and the rest.
            _ => return Ok(Step::Other),
        }
    }
    Err(DecodeError::Malformed("authentication header chain"))
}

/// Reads an IPsec Authentication Header.
fn auth_header(bytes: &[u8]) -> Result<IpAuthHeaderSlice<'_>, DecodeError> {
    IpAuthHeaderSlice::from_slice(bytes).map_err(|e| match e {
        err::ip_auth::HeaderSliceError::Len(_) => DecodeError::Truncated("authentication header"),
        err::ip_auth::HeaderSliceError::Content(_) => {
            DecodeError::Malformed("authentication header")
        }
    })
}

/// Reads the TCP header; the payload is what follows it up to the end of the datagram.
fn tcp_segment(
    src: IpAddr,
    dst: IpAddr,
    bytes: &[u8],
    missing: u32,
) -> Result<TcpSegment<'_>, DecodeError> {
    let header = TcpHeaderSlice::from_slice(bytes).map_err(|e| match e {
        err::tcp::HeaderSliceError::Len(_) => DecodeError::Truncated("tcp"),
        err::tcp::HeaderSliceError::Content(_) => DecodeError::Malformed("tcp data offset"),
    })?;
    Ok(TcpSegment {
        src,
        dst,
        src_port: header.source_port(),
        dst_port: header.destination_port(),
        seq: header.sequence_number(),
        ack: header.acknowledgment_number(),
        flags: TcpFlags {
            syn: header.syn(),
            ack: header.ack(),
            fin: header.fin(),
            rst: header.rst(),
        },
        payload: bytes.get(header.slice().len()..).unwrap_or(&[]),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    const V4_SRC: [u8; 4] = [192, 0, 2, 1];
    const V4_DST: [u8; 4] = [192, 0, 2, 25];
    const V6_SRC: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    const V6_DST: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

    /// A TCP segment from port 40000 to 25 with PSH|ACK.
    fn tcp(payload: &[u8]) -> Vec<u8> {
        let mut t = Vec::new();
        t.extend_from_slice(&40000u16.to_be_bytes());
        t.extend_from_slice(&25u16.to_be_bytes());
        t.extend_from_slice(&1000u32.to_be_bytes());
        t.extend_from_slice(&2000u32.to_be_bytes());
        t.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
        t.extend_from_slice(payload);
        t
    }

    /// An IPv4 header for `payload` with the given fragment fields.
    fn ipv4_frag(protocol: u8, id: u16, offset: usize, more: bool, payload: &[u8]) -> Vec<u8> {
        let total = (20 + payload.len()) as u16;
        let frag = ((offset / 8) as u16) | if more { 0x2000 } else { 0 };
        let mut h = vec![0x45, 0];
        h.extend_from_slice(&total.to_be_bytes());
        h.extend_from_slice(&id.to_be_bytes());
        h.extend_from_slice(&frag.to_be_bytes());
        h.extend_from_slice(&[64, protocol, 0, 0]);
        h.extend_from_slice(&V4_SRC);
        h.extend_from_slice(&V4_DST);
        h.extend_from_slice(payload);
        h
    }

    fn ipv4(protocol: u8, payload: &[u8]) -> Vec<u8> {
        ipv4_frag(protocol, 7, 0, false, payload)
    }

    fn ipv6(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut h = vec![0x60, 0, 0, 0];
        h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        h.extend_from_slice(&[next, 64]);
        h.extend_from_slice(&V6_SRC);
        h.extend_from_slice(&V6_DST);
        h.extend_from_slice(payload);
        h
    }

    /// A generic IPv6 extension header of `len8` 8-byte units carrying `inner`.
    fn ext(next: u8, len8: usize, inner: &[u8]) -> Vec<u8> {
        let mut e = vec![next, (len8 - 1) as u8];
        e.resize(len8 * 8, 0);
        e.extend_from_slice(inner);
        e
    }

    fn ethernet(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        f.extend_from_slice(&kind.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    fn packet(link: LinkType, data: &[u8]) -> Packet<'_> {
        Packet {
            ts: Timestamp::from_parts(1_700_000_000, 0),
            link,
            data,
            orig_len: data.len() as u32,
        }
    }

    /// Decodes one packet into (src, dst, payload, missing), panicking unless it is TCP.
    fn decode_tcp(decoder: &mut Decoder, pkt: &Packet<'_>) -> (IpAddr, IpAddr, Vec<u8>, u32) {
        match decoder.decode(pkt) {
            Ok(Decoded::Tcp(seg)) => {
                assert_eq!((seg.src_port, seg.dst_port), (40000, 25));
                assert_eq!((seg.seq, seg.ack), (1000, 2000));
                assert_eq!(
                    seg.flags,
                    TcpFlags {
                        ack: true,
                        ..TcpFlags::default()
                    }
                );
                (seg.src, seg.dst, seg.payload.to_vec(), seg.missing)
            }
            other => panic!("expected TCP, got {other:?}"),
        }
    }

    fn v4() -> (IpAddr, IpAddr) {
        (
            IpAddr::V4(Ipv4Addr::from(V4_SRC)),
            IpAddr::V4(Ipv4Addr::from(V4_DST)),
        )
    }

    fn v6() -> (IpAddr, IpAddr) {
        (
            IpAddr::V6(Ipv6Addr::from(V6_SRC)),
            IpAddr::V6(Ipv6Addr::from(V6_DST)),
        )
    }

    #[test]
    fn every_link_type_reaches_tcp() {
        let v4_packet = ipv4(6, &tcp(b"EHLO x\r\n"));
        let v6_packet = ipv6(6, &tcp(b"EHLO x\r\n"));
        let mut vlan = vec![0, 5, 0x08, 0x00];
        vlan.extend_from_slice(&v4_packet);
        let mut qinq = vec![0, 9, 0x81, 0x00, 0, 5, 0x86, 0xdd];
        qinq.extend_from_slice(&v6_packet);
        let mut sll = vec![0, 4, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(&v4_packet);
        let mut sll2 = vec![
            0x86, 0xdd, 0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 1, 2, 3, 4, 5, 6, 0, 0,
        ];
        sll2.extend_from_slice(&v6_packet);
        let with_family = |family: [u8; 4], ip: &[u8]| {
            let mut f = family.to_vec();
            f.extend_from_slice(ip);
            f
        };
        let cases: Vec<(LinkType, Vec<u8>, bool)> = vec![
            (LinkType::ETHERNET, ethernet(0x0800, &v4_packet), false),
            (LinkType::ETHERNET, ethernet(0x86dd, &v6_packet), true),
            (LinkType::ETHERNET, ethernet(0x8100, &vlan), false),
            (LinkType::ETHERNET, ethernet(0x88a8, &qinq), true),
            (LinkType::LINUX_SLL, sll, false),
            (LinkType::LINUX_SLL2, sll2, true),
            (LinkType::RAW, v4_packet.clone(), false),
            (LinkType::RAW, v6_packet.clone(), true),
            (LinkType::RAW_BSD12, v4_packet.clone(), false),
            (LinkType::RAW_BSD14, v6_packet.clone(), true),
            (LinkType::IPV4, v4_packet.clone(), false),
            (LinkType::IPV6, v6_packet.clone(), true),
            (
                LinkType::NULL,
                with_family(2u32.to_le_bytes(), &v4_packet),
                false,
            ),
            (
                LinkType::NULL,
                with_family(2u32.to_be_bytes(), &v4_packet),
                false,
            ),
            (
                LinkType::NULL,
                with_family(30u32.to_le_bytes(), &v6_packet),
                true,
            ),
            (
                LinkType::NULL,
                with_family(24u32.to_be_bytes(), &v6_packet),
                true,
            ),
            (
                LinkType::LOOP,
                with_family(2u32.to_be_bytes(), &v4_packet),
                false,
            ),
            (
                LinkType::LOOP,
                with_family(28u32.to_be_bytes(), &v6_packet),
                true,
            ),
        ];
        let mut decoder = Decoder::new(&Limits::default());
        for (link, frame, is_v6) in &cases {
            assert!(Decoder::supports(*link));
            let (src, dst, payload, missing) = decode_tcp(&mut decoder, &packet(*link, frame));
            assert_eq!((src, dst), if *is_v6 { v6() } else { v4() }, "{link:?}");
            assert_eq!(payload, b"EHLO x\r\n", "{link:?}");
            assert_eq!(missing, 0);
        }
        assert_eq!(decoder.stats().tcp, cases.len() as u64);
    }

    #[test]
    fn ethernet_padding_is_not_payload() {
        let mut frame = ethernet(0x0800, &ipv4(6, &tcp(b"")));
        frame.resize(60, 0xee);
        let mut decoder = Decoder::new(&Limits::default());
        let (_, _, payload, missing) =
            decode_tcp(&mut decoder, &packet(LinkType::ETHERNET, &frame));
        assert!(payload.is_empty());
        assert_eq!(missing, 0);
    }

    #[test]
    fn snaplen_cut_payload_is_clipped_and_counted_missing() {
        let body = vec![b'x'; 100];
        let frame = ethernet(0x0800, &ipv4(6, &tcp(&body)));
        let captured = &frame[..14 + 20 + 20 + 30];
        let pkt = Packet {
            orig_len: frame.len() as u32,
            ..packet(LinkType::ETHERNET, captured)
        };
        let mut decoder = Decoder::new(&Limits::default());
        let (_, _, payload, missing) = decode_tcp(&mut decoder, &pkt);
        assert_eq!(payload, vec![b'x'; 30]);
        assert_eq!(missing, 70);

        // IPv6 likewise.
        let frame = ipv6(6, &tcp(&body));
        let pkt = Packet {
            orig_len: frame.len() as u32,
            ..packet(LinkType::IPV6, &frame[..40 + 20 + 1])
        };
        let (_, _, payload, missing) = decode_tcp(&mut decoder, &pkt);
        assert_eq!((payload.len(), missing), (1, 99));
    }

    #[test]
    fn length_beyond_the_wire_is_not_missing() {
        // The IP header claims 100 more bytes than the frame had; nothing was cut by the capture.
        let mut datagram = ipv4(6, &tcp(b"hi"));
        let claimed = (datagram.len() + 100) as u16;
        datagram[2..4].copy_from_slice(&claimed.to_be_bytes());
        let mut decoder = Decoder::new(&Limits::default());
        let (_, _, payload, missing) = decode_tcp(&mut decoder, &packet(LinkType::RAW, &datagram));
        assert_eq!((payload.as_slice(), missing), (&b"hi"[..], 0));
    }

    #[test]
    fn tso_zero_length_uses_captured_bytes() {
        let mut datagram = ipv4(6, &tcp(b"offloaded"));
        datagram[2..4].copy_from_slice(&[0, 0]);
        let mut decoder = Decoder::new(&Limits::default());
        let (_, _, payload, _) = decode_tcp(&mut decoder, &packet(LinkType::RAW, &datagram));
        assert_eq!(payload, b"offloaded");
    }

    #[test]
    fn cut_tcp_header_is_truncated() {
        let frame = ethernet(0x0800, &ipv4(6, &tcp(b"data")));
        let pkt = Packet {
            orig_len: frame.len() as u32,
            ..packet(LinkType::ETHERNET, &frame[..14 + 20 + 12])
        };
        let mut decoder = Decoder::new(&Limits::default());
        assert_eq!(
            decoder.decode(&pkt).err(),
            Some(DecodeError::Truncated("tcp"))
        );
        let mut bad_offset = ipv4(6, &tcp(b""));
        bad_offset[20 + 12] = 0x20;
        assert_eq!(
            decoder.decode(&packet(LinkType::RAW, &bad_offset)).err(),
            Some(DecodeError::Malformed("tcp data offset"))
        );
        let mut short_total = ipv4(6, &tcp(b""));
        short_total[2..4].copy_from_slice(&10u16.to_be_bytes());
        assert_eq!(
            decoder.decode(&packet(LinkType::RAW, &short_total)).err(),
            Some(DecodeError::Malformed("ipv4 total length"))
        );
        assert_eq!(decoder.stats().malformed, 3);
    }

    #[test]
    fn ipv6_extension_headers_are_followed() {
        // Hop-by-hop, routing, destination options, AH, then TCP.
        let mut ah = vec![6, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
        ah.resize(24, 0);
        ah.extend_from_slice(&tcp(b"MAIL FROM:<a@b>\r\n"));
        let chain = ext(43, 1, &ext(60, 2, &ext(51, 1, &ah)));
        let datagram = ipv6(0, &chain);
        let mut decoder = Decoder::new(&Limits::default());
        let (src, _, payload, _) = decode_tcp(&mut decoder, &packet(LinkType::IPV6, &datagram));
        assert_eq!(src, v6().0);
        assert_eq!(payload, b"MAIL FROM:<a@b>\r\n");

        // ESP and No Next Header end the walk; UDP is not TCP.
        for next in [50u8, 59, 17] {
            let datagram = ipv6(0, &ext(next, 1, &[0; 16]));
            assert!(matches!(
                decoder.decode(&packet(LinkType::IPV6, &datagram)),
                Ok(Decoded::Other)
            ));
        }
        // An extension header that runs past the datagram.
        let datagram = ipv6(60, &[6, 3, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            decoder.decode(&packet(LinkType::IPV6, &datagram)).err(),
            Some(DecodeError::Truncated("ipv6 extension header"))
        );
        // IPv4 with AH.
        let mut ah4 = vec![6, 4, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1];
        ah4.resize(24, 0);
        ah4.extend_from_slice(&tcp(b"v4 ah"));
        let (_, _, payload, _) = decode_tcp(&mut decoder, &packet(LinkType::RAW, &ipv4(51, &ah4)));
        assert_eq!(payload, b"v4 ah");
        assert_eq!(decoder.stats().other, 3);
    }

    #[test]
    fn ipv4_fragments_out_of_order_and_overlapping() {
        let segment = tcp(b"0123456789abcdefghijklmnopqrstuvwxyz");
        assert_eq!(segment.len(), 56);
        let first = ipv4_frag(6, 99, 0, true, &segment[..24]);
        // Overlaps the first fragment with different bytes: the first copy must win.
        let mut overlap_data = segment[16..48].to_vec();
        overlap_data[..8].copy_from_slice(b"XXXXXXXX");
        let second = ipv4_frag(6, 99, 16, true, &overlap_data);
        let last = ipv4_frag(6, 99, 48, false, &segment[48..]);
        let mut decoder = Decoder::new(&Limits::default());
        // Last first, then the head; the overlapping middle arrives last and completes it.
        for f in [&last, &first] {
            assert!(matches!(
                decoder.decode(&packet(LinkType::RAW, f)),
                Ok(Decoded::Other)
            ));
        }
        let (_, _, payload, missing) = decode_tcp(&mut decoder, &packet(LinkType::RAW, &second));
        assert_eq!(payload, b"0123456789abcdefghijklmnopqrstuvwxyz");
        assert_eq!(missing, 0);
        let s = decoder.stats();
        assert_eq!((s.fragments, s.reassembled, s.tcp, s.other), (3, 1, 1, 0));
    }

    #[test]
    fn ipv6_fragments_are_reassembled() {
        let segment = tcp(b"RCPT TO:<someone@example.org>\r\n");
        let fragment = |offset: usize, more: bool, data: &[u8]| {
            let field = (offset as u16) | u16::from(more);
            let mut f = vec![6, 0];
            f.extend_from_slice(&field.to_be_bytes());
            f.extend_from_slice(&0xdead_beefu32.to_be_bytes());
            f.extend_from_slice(data);
            // A destination options header before the fragment header is unfragmentable.
            ipv6(60, &ext(44, 1, &f))
        };
        let mut decoder = Decoder::new(&Limits::default());
        let tail = fragment(24, false, &segment[24..]);
        assert!(matches!(
            decoder.decode(&packet(LinkType::IPV6, &tail)),
            Ok(Decoded::Other)
        ));
        let head = fragment(0, true, &segment[..24]);
        let (src, dst, payload, _) = decode_tcp(&mut decoder, &packet(LinkType::IPV6, &head));
        assert_eq!((src, dst), v6());
        assert_eq!(payload, b"RCPT TO:<someone@example.org>\r\n");
        assert_eq!(decoder.stats().reassembled, 1);

        // An atomic fragment is decoded directly.
        let atomic = fragment(0, false, &segment);
        let (_, _, payload, _) = decode_tcp(&mut decoder, &packet(LinkType::IPV6, &atomic));
        assert_eq!(payload, b"RCPT TO:<someone@example.org>\r\n");
        assert_eq!(decoder.stats().fragments, 2);
    }

    #[test]
    fn pending_fragments_are_dropped_at_flush() {
        let mut decoder = Decoder::new(&Limits::default());
        let lone = ipv4_frag(6, 5, 0, true, &[0; 16]);
        assert!(matches!(
            decoder.decode(&packet(LinkType::RAW, &lone)),
            Ok(Decoded::Other)
        ));
        decoder.flush_fragments();
        assert_eq!(decoder.stats().fragments_dropped, 1);
    }

    #[test]
    fn unknown_link_and_non_ip() {
        let mut decoder = Decoder::new(&Limits::default());
        let data = ipv4(6, &tcp(b""));
        assert_eq!(
            decoder.decode(&packet(LinkType(147), &data)).err(),
            Some(DecodeError::UnsupportedLink(LinkType(147)))
        );
        assert!(matches!(
            decoder.decode(&packet(LinkType::ETHERNET, &ethernet(0x0806, &[0; 28]))),
            Ok(Decoded::Other)
        ));
        assert_eq!(
            decoder.decode(&packet(LinkType::RAW, &[0x55; 30])).err(),
            Some(DecodeError::Malformed("ip version"))
        );
        let s = decoder.stats();
        assert_eq!((s.unsupported_link, s.other, s.malformed), (1, 1, 1));
    }

    /// Every packet of every corpus capture decodes without a malformed header, and the
    /// captures that carry mail yield TCP segments.
    #[test]
    fn corpus_captures_decode() {
        use crate::capture::PacketSource;
        use crate::capture::file::FileSource;
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
        let Ok(manifest) = std::fs::read_to_string(root.join("MANIFEST.tsv")) else {
            eprintln!("corpus absent; skipped");
            return;
        };
        for line in manifest.lines().skip(1) {
            let Some(path) = line.split('\t').next() else {
                continue;
            };
            let mut src = FileSource::open(&root.join(path)).unwrap();
            let mut decoder = Decoder::new(&Limits::default());
            while let Ok(Some(pkt)) = src.next_packet() {
                let _ = decoder.decode(&pkt);
            }
            let s = decoder.stats();
            assert!(s.tcp > 0, "{path}: {s:?}");
            assert_eq!(s.malformed + s.unsupported_link, 0, "{path}: {s:?}");
        }
    }

    proptest::proptest! {
        /// Arbitrary bytes of any link type never panic, and TCP payloads stay within the packet.
        #[test]
        fn arbitrary_frames_never_panic(
            link in proptest::sample::select(vec![0u32, 1, 12, 14, 101, 108, 113, 228, 229, 276, 147]),
            data in proptest::collection::vec(proptest::num::u8::ANY, 0..200),
            extra in 0u32..2000,
        ) {
            let mut decoder = Decoder::new(&Limits::default());
            let pkt = Packet {
                ts: Timestamp(0),
                link: LinkType(link),
                data: &data,
                orig_len: data.len() as u32 + extra,
            };
            if let Ok(Decoded::Tcp(seg)) = decoder.decode(&pkt) {
                proptest::prop_assert!(seg.payload.len() <= data.len());
                proptest::prop_assert!(seg.missing <= extra);
            }
        }

        /// Valid headers with random fragment fields and mutated bytes never panic.
        #[test]
        fn mutated_fragments_never_panic(
            frags in proptest::collection::vec(
                (0usize..9000, proptest::bool::ANY, 0usize..64, 0usize..60, proptest::num::u8::ANY),
                1..40,
            ),
        ) {
            let mut decoder = Decoder::new(&Limits {
                max_fragment_sets: 4,
                max_fragment_bytes: 4096,
                ..Limits::default()
            });
            for (offset, more, len, flip_at, flip) in frags {
                let mut datagram = ipv4_frag(6, (len % 3) as u16, offset, more, &vec![0xab; len]);
                if let Some(b) = datagram.get_mut(flip_at) {
                    *b ^= flip;
                }
                let _ = decoder.decode(&packet(LinkType::RAW, &datagram));
            }
        }
    }
}
