//! Capture rewriting: the ways networks and capture setups mangle real sessions, applied to a
//! real capture so that the analysis of the result can be compared with the original's.
//!
//! A [`Capture`] is read whole from a file ([`Capture::read`]); each transformation returns a
//! new one, written out with [`Capture::to_pcap`] (nanosecond pcap, so times survive exactly):
//!
//! - [`vlan_tag`]: every frame carried in Ethernet with one 802.1Q tag, or two (QinQ);
//! - [`duplicate`]: every packet, or every packet with TCP payload, written twice;
//! - [`reorder`]: packets shuffled within a window, their times kept (so time runs backwards)
//!   or re-sorted;
//! - [`split_segments`]: every TCP payload cut into segments of a few bytes, sequence numbers,
//!   IP lengths and both checksums rewritten;
//! - [`drop_data_segment`]: one segment with payload lost for good;
//! - [`drop_retransmitted`]: one segment lost but for a retransmitted copy a few packets later.
//!
//! Frames that are not plain TCP over IPv4/IPv6 (fragments, packets cut by the snap length,
//! IPv6 with extension headers) are passed through untouched by the TCP rewrites.

use super::file::FileSource;
use super::synth::{PcapWriter, Rng};
use super::{CaptureError, LinkType, PacketSource};
use crate::net::link::{NetworkProtocol, strip_link};
use crate::time::Timestamp;
use std::collections::BTreeMap;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;

/// TCP header flag bits, as in the header's 14th byte.
mod tcp_flag {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
}

/// EtherTypes written by [`vlan_tag`].
mod ether_type {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const PROVIDER_BRIDGING: u16 = 0x88a8;
}

/// Ethernet destination and source addresses given to frames re-framed as Ethernet.
const SYNTH_MACS: [u8; 12] = [2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1];

/// One captured frame, owned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Capture time.
    pub ts: Timestamp,
    /// The captured bytes.
    pub data: Vec<u8>,
    /// Length on the wire (more than `data.len()` when the snap length cut the frame).
    pub orig_len: u32,
}

impl Frame {
    /// The same frame with other bytes, keeping what the snap length cut off.
    fn with_data(&self, data: Vec<u8>) -> Frame {
        let cut = self.orig_len.saturating_sub(self.data.len() as u32);
        Frame {
            ts: self.ts,
            orig_len: (data.len() as u32).saturating_add(cut),
            data,
        }
    }
}

/// A whole capture in memory, with one link type for all its frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capture {
    /// Link type of every frame.
    pub link: LinkType,
    /// The frames in file order.
    pub frames: Vec<Frame>,
    /// The error that ended reading early, if any (the frames before it are kept).
    pub read_error: Option<String>,
}

impl Capture {
    /// Reads a pcap or pcapng file. Files mixing link types are re-framed as Ethernet (frames
    /// without IP dropped), since a pcap file has one link type.
    pub fn read(path: &Path) -> Result<Capture, CaptureError> {
        let mut src = FileSource::open(path)?;
        let mut raw: Vec<(LinkType, Frame)> = Vec::new();
        let mut read_error = None;
        loop {
            match src.next_packet() {
                Ok(Some(p)) => raw.push((
                    p.link,
                    Frame {
                        ts: p.ts,
                        data: p.data.to_vec(),
                        orig_len: p.orig_len,
                    },
                )),
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(e.to_string());
                    break;
                }
            }
        }
        let first = raw.first().map_or(LinkType::ETHERNET, |(l, _)| *l);
        let uniform = raw.iter().all(|(l, _)| *l == first);
        let frames: Vec<Frame> = if uniform {
            raw.into_iter().map(|(_, f)| f).collect()
        } else {
            raw.into_iter()
                .filter_map(|(l, f)| {
                    let data = if l == LinkType::ETHERNET {
                        f.data.clone()
                    } else {
                        reframe_as_ethernet(l, &f.data, &[])?
                    };
                    Some(f.with_data(data))
                })
                .collect()
        };
        let link = if uniform { first } else { LinkType::ETHERNET };
        Ok(Capture {
            link,
            frames,
            read_error,
        })
    }

    /// A capture of the same link type with other frames.
    pub fn with_frames(&self, frames: Vec<Frame>) -> Capture {
        Capture {
            link: self.link,
            frames,
            read_error: None,
        }
    }

    /// Writes the capture as a nanosecond pcap file to `out`.
    pub fn write_pcap<W: Write>(&self, out: W) -> io::Result<W> {
        let mut w = PcapWriter::with_nanos(out, self.link.0)?;
        for f in &self.frames {
            w.packet(f.ts, &f.data, f.orig_len)?;
        }
        w.finish()
    }

    /// The capture as the bytes of a nanosecond pcap file.
    pub fn to_pcap(&self) -> Vec<u8> {
        // Writing to a Vec cannot fail.
        self.write_pcap(Vec::new()).unwrap_or_default()
    }

    /// The TCP view of frame `i`, if it is plain TCP over IP captured whole.
    pub fn tcp(&self, i: usize) -> Option<TcpView<'_>> {
        TcpView::parse(self.link, &self.frames.get(i)?.data)
    }
}

/// Wraps the IP packet of a frame of type `link` in an Ethernet header carrying `tags`
/// (outermost first); `None` when the frame holds no IP.
fn reframe_as_ethernet(link: LinkType, frame: &[u8], tags: &[u16]) -> Option<Vec<u8>> {
    let net = strip_link(link, frame).ok()?;
    let kind = match (net.protocol, net.bytes.first().map(|b| b >> 4)) {
        (NetworkProtocol::Ipv4, _) | (NetworkProtocol::AnyIp, Some(4)) => ether_type::IPV4,
        (NetworkProtocol::Ipv6, _) | (NetworkProtocol::AnyIp, Some(6)) => ether_type::IPV6,
        _ => return None,
    };
    let mut out = Vec::with_capacity(net.bytes.len() + 14 + 4 * tags.len());
    out.extend_from_slice(&SYNTH_MACS);
    push_tags(&mut out, tags);
    out.extend_from_slice(&kind.to_be_bytes());
    out.extend_from_slice(net.bytes);
    Some(out)
}

/// Appends VLAN tags: 802.1ad (0x88a8) for outer tags of a stack, 802.1Q for the innermost.
fn push_tags(out: &mut Vec<u8>, tags: &[u16]) {
    for (i, vid) in tags.iter().enumerate() {
        let tpid = if i + 1 < tags.len() {
            ether_type::PROVIDER_BRIDGING
        } else {
            ether_type::VLAN
        };
        out.extend_from_slice(&tpid.to_be_bytes());
        out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
    }
}

/// A frame's IP and TCP headers and payload, borrowed, for rewriting.
#[derive(Debug, Clone, Copy)]
pub struct TcpView<'a> {
    /// Everything before the IP header.
    link_header: &'a [u8],
    /// The IP header (IPv4 with options, or the fixed IPv6 header).
    ip_header: &'a [u8],
    /// The TCP header with options.
    tcp_header: &'a [u8],
    /// The TCP payload (IP padding excluded).
    pub payload: &'a [u8],
}

impl<'a> TcpView<'a> {
    /// Reads a frame of type `link`; `None` unless it is unfragmented TCP over IPv4 or over
    /// IPv6 without extension headers, captured to the end of its IP packet.
    pub fn parse(link: LinkType, frame: &'a [u8]) -> Option<TcpView<'a>> {
        let net = strip_link(link, frame).ok()?;
        let ip = net.bytes;
        let link_len = frame.len().checked_sub(ip.len())?;
        let link_header = frame.get(..link_len)?;
        let (ip_header, segment) = match ip.first()? >> 4 {
            4 => {
                let ihl = usize::from(ip.first()? & 0x0f) * 4;
                let total = usize::from(be16(ip, 2)?);
                let fragmented = be16(ip, 6)? & 0x3fff != 0;
                if ihl < 20 || *ip.get(9)? != 6 || fragmented || total < ihl {
                    return None;
                }
                (ip.get(..ihl)?, ip.get(ihl..total)?)
            }
            6 => {
                let len = usize::from(be16(ip, 4)?);
                if *ip.get(6)? != 6 || len == 0 {
                    return None;
                }
                (ip.get(..40)?, ip.get(40..40 + len)?)
            }
            _ => return None,
        };
        let offset = usize::from(segment.get(12)? >> 4) * 4;
        if offset < 20 {
            return None;
        }
        Some(TcpView {
            link_header,
            ip_header,
            tcp_header: segment.get(..offset)?,
            payload: segment.get(offset..)?,
        })
    }

    /// Source address and port.
    pub fn src(&self) -> (IpAddr, u16) {
        (self.address(true), be16(self.tcp_header, 0).unwrap_or(0))
    }

    /// Destination address and port.
    pub fn dst(&self) -> (IpAddr, u16) {
        (self.address(false), be16(self.tcp_header, 2).unwrap_or(0))
    }

    fn address(&self, source: bool) -> IpAddr {
        let h = self.ip_header;
        let at = |range: std::ops::Range<usize>| h.get(range).unwrap_or(&[]);
        if self.is_v4() {
            let b: [u8; 4] = at(if source { 12..16 } else { 16..20 })
                .try_into()
                .unwrap_or([0; 4]);
            IpAddr::from(b)
        } else {
            let b: [u8; 16] = at(if source { 8..24 } else { 24..40 })
                .try_into()
                .unwrap_or([0; 16]);
            IpAddr::from(b)
        }
    }

    fn is_v4(&self) -> bool {
        self.ip_header.first().is_some_and(|b| b >> 4 == 4)
    }

    /// The sequence number.
    pub fn seq(&self) -> u32 {
        self.tcp_header
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes)
    }

    /// The acknowledgement number (meaningful with the ACK flag).
    pub fn ack(&self) -> u32 {
        self.tcp_header
            .get(8..12)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_be_bytes)
    }

    /// The flag byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, URG 0x20).
    pub fn flags(&self) -> u8 {
        self.tcp_header.get(13).copied().unwrap_or(0)
    }

    /// The frame rebuilt with another sequence number, flag byte and payload; IP length and
    /// both checksums are recomputed.
    pub fn rebuild(&self, seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.link_header.len() + self.ip_header.len() + self.tcp_header.len() + payload.len(),
        );
        out.extend_from_slice(self.link_header);
        let ip_at = out.len();
        out.extend_from_slice(self.ip_header);
        let tcp_at = out.len();
        out.extend_from_slice(self.tcp_header);
        out.extend_from_slice(payload);
        let tcp_len = out.len() - tcp_at;
        let (ip, tcp) = out.split_at_mut(tcp_at);
        let ip = &mut ip[ip_at..];
        if self.is_v4() {
            let total = (ip.len() + tcp_len) as u16;
            ip[2..4].copy_from_slice(&total.to_be_bytes());
            ip[10..12].copy_from_slice(&[0, 0]);
            let sum = checksum(&[ip]);
            ip[10..12].copy_from_slice(&sum.to_be_bytes());
        } else {
            ip[4..6].copy_from_slice(&(tcp_len as u16).to_be_bytes());
        }
        tcp[4..8].copy_from_slice(&seq.to_be_bytes());
        tcp[13] = flags;
        tcp[16..18].copy_from_slice(&[0, 0]);
        let pseudo = if self.is_v4() {
            let mut p = Vec::with_capacity(12);
            p.extend_from_slice(&ip[12..20]);
            p.extend_from_slice(&[0, 6]);
            p.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            p
        } else {
            let mut p = Vec::with_capacity(40);
            p.extend_from_slice(&ip[8..40]);
            p.extend_from_slice(&(tcp_len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 6]);
            p
        };
        let sum = checksum(&[&pseudo, tcp]);
        tcp[16..18].copy_from_slice(&sum.to_be_bytes());
        out
    }
}

/// The Internet checksum (RFC 1071) of the concatenation of `parts` (each of even length
/// except possibly the last).
fn checksum(parts: &[&[u8]]) -> u16 {
    let mut sum: u64 = 0;
    for part in parts {
        let mut words = part.chunks_exact(2);
        for w in &mut words {
            sum += u64::from(u16::from_be_bytes([w[0], w[1]]));
        }
        if let [last] = words.remainder() {
            sum += u64::from(u16::from_be_bytes([*last, 0]));
        }
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

/// Every frame carried in Ethernet with the VLAN tags `vids` (outermost first; two make QinQ).
/// Ethernet frames get the tags after their addresses; other frames are re-framed as Ethernet,
/// and those without IP are dropped.
pub fn vlan_tag(cap: &Capture, vids: &[u16]) -> Capture {
    let frames = cap
        .frames
        .iter()
        .filter_map(|f| {
            let data = if cap.link == LinkType::ETHERNET {
                let (addrs, rest) = f.data.split_at_checked(12)?;
                let mut d = Vec::with_capacity(f.data.len() + 4 * vids.len());
                d.extend_from_slice(addrs);
                push_tags(&mut d, vids);
                d.extend_from_slice(rest);
                d
            } else {
                reframe_as_ethernet(cap.link, &f.data, vids)?
            };
            Some(f.with_data(data))
        })
        .collect();
    Capture {
        link: LinkType::ETHERNET,
        frames,
        read_error: None,
    }
}

/// Which packets [`duplicate`] repeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Duplicates {
    /// Every packet.
    Every,
    /// Only TCP packets with payload.
    Data,
}

/// Repeats packets right after themselves, with the same time (a capture seeing each twice,
/// as on a mirror port of both directions, or a retransmission).
pub fn duplicate(cap: &Capture, which: Duplicates) -> Capture {
    let mut out = Vec::with_capacity(cap.frames.len() * 2);
    for (i, f) in cap.frames.iter().enumerate() {
        out.push(f.clone());
        let twice = match which {
            Duplicates::Every => true,
            Duplicates::Data => cap.tcp(i).is_some_and(|t| !t.payload.is_empty()),
        };
        if twice {
            out.push(f.clone());
        }
    }
    cap.with_frames(out)
}

/// Shuffles frames so that none moves more than `window` places. With `retime` the times
/// are then handed out again in increasing order (a reordering network); without it each
/// frame keeps its own time (a capture merged from several taps), so time runs backwards.
pub fn reorder(cap: &Capture, window: usize, seed: u64, retime: bool) -> Capture {
    let mut rng = Rng::new(seed);
    // Sorting by index plus a random delay of at most `window` moves nothing further than that.
    let mut order: Vec<(usize, usize)> = (0..cap.frames.len())
        .map(|i| (i + rng.below(window + 1), i))
        .collect();
    order.sort_unstable();
    let mut frames: Vec<Frame> = order
        .iter()
        .filter_map(|&(_, i)| cap.frames.get(i).cloned())
        .collect();
    if retime {
        for (f, orig) in frames.iter_mut().zip(&cap.frames) {
            f.ts = orig.ts;
        }
    }
    cap.with_frames(frames)
}

/// Cuts every TCP payload into segments of 1 to `max_piece` bytes (lengths drawn from
/// `seed`), each a frame of its own with the original time. Only the last piece keeps FIN
/// and PSH; SYN, RST and URG segments with payload are left whole.
pub fn split_segments(cap: &Capture, max_piece: usize, seed: u64) -> Capture {
    let mut rng = Rng::new(seed);
    let max_piece = max_piece.max(1);
    let mut out = Vec::with_capacity(cap.frames.len());
    for (i, f) in cap.frames.iter().enumerate() {
        let Some(t) = cap.tcp(i) else {
            out.push(f.clone());
            continue;
        };
        let flags = t.flags();
        let keep_whole = flags & (tcp_flag::SYN | tcp_flag::RST | tcp_flag::URG) != 0;
        if t.payload.len() <= 1 || keep_whole {
            out.push(f.clone());
            continue;
        }
        let mut at = 0;
        while at < t.payload.len() {
            let len = (1 + rng.below(max_piece)).min(t.payload.len() - at);
            let last = at + len == t.payload.len();
            let piece_flags = if last {
                flags
            } else {
                flags & !(tcp_flag::FIN | tcp_flag::PSH)
            };
            let seq = t.seq().wrapping_add(at as u32);
            let data = t.rebuild(seq, piece_flags, &t.payload[at..at + len]);
            out.push(f.with_data(data));
            at += len;
        }
    }
    cap.with_frames(out)
}

/// A segment a loss transformation took out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DroppedSegment {
    /// Its index among the original capture's frames.
    pub index: usize,
    /// Sender address and port.
    pub src: (IpAddr, u16),
    /// Receiver address and port.
    pub dst: (IpAddr, u16),
    /// Its sequence number.
    pub seq: u32,
    /// Its payload length.
    pub len: usize,
}

/// One direction of a connection: sender and receiver address and port.
type DirectionKey = ((IpAddr, u16), (IpAddr, u16));

/// A frame's place in its direction's sequence space, relative to a base near the first
/// sequence number seen (so comparisons are plain integer ones within +-1 GiB of it).
#[derive(Debug, Clone, Copy)]
struct Placed {
    index: usize,
    start: u32,
    end: u32,
}

/// What the capture shows of one direction's sequence space.
#[derive(Debug, Default)]
struct DirectionSpace {
    base: u32,
    /// Frames with payload.
    data: Vec<Placed>,
    /// The furthest start of a frame with payload or FIN.
    furthest_start: Option<u32>,
    /// The furthest acknowledgement from the peer.
    furthest_ack: Option<u32>,
}

/// Every direction's sequence space, in one pass over the capture.
fn sequence_spaces(cap: &Capture) -> BTreeMap<DirectionKey, DirectionSpace> {
    let mut spaces: BTreeMap<DirectionKey, DirectionSpace> = BTreeMap::new();
    let new_space = |seq: u32| DirectionSpace {
        base: seq.wrapping_sub(1 << 30),
        ..DirectionSpace::default()
    };
    for i in 0..cap.frames.len() {
        let Some(t) = cap.tcp(i) else { continue };
        let space = spaces
            .entry((t.src(), t.dst()))
            .or_insert_with(|| new_space(t.seq()));
        let start = t.seq().wrapping_sub(space.base);
        if !t.payload.is_empty() {
            let end = start.saturating_add(t.payload.len() as u32);
            space.data.push(Placed {
                index: i,
                start,
                end,
            });
        }
        if !t.payload.is_empty() || t.flags() & tcp_flag::FIN != 0 {
            space.furthest_start = space.furthest_start.max(Some(start));
        }
        if t.flags() & tcp_flag::ACK != 0 {
            let ack = t.ack();
            let peer = spaces
                .entry((t.dst(), t.src()))
                .or_insert_with(|| new_space(ack));
            let rel = ack.wrapping_sub(peer.base);
            peer.furthest_ack = peer.furthest_ack.max(Some(rel));
        }
    }
    spaces
}

/// Frames with TCP payload whose bytes no other frame of the same direction carries (so
/// losing one really loses data), with whether the rest of the capture shows the loss (later
/// data or a FIN from the same side, or the peer's acknowledgement covering them).
fn sole_copies(cap: &Capture) -> Vec<(usize, bool)> {
    let mut out = Vec::new();
    for space in sequence_spaces(cap).into_values() {
        let mut data = space.data;
        data.sort_by_key(|p| (p.start, p.index));
        let mut furthest_end_before = 0u32;
        for (k, p) in data.iter().enumerate() {
            let overlaps_before = k > 0 && furthest_end_before > p.start;
            let overlaps_after = data.get(k + 1).is_some_and(|n| n.start < p.end);
            furthest_end_before = furthest_end_before.max(p.end);
            if overlaps_before || overlaps_after {
                continue;
            }
            let visible = space.furthest_start.is_some_and(|s| s >= p.end)
                || space.furthest_ack.is_some_and(|a| a >= p.end);
            out.push((p.index, visible));
        }
    }
    out.sort_unstable();
    out
}

/// The description of frame `index`'s segment.
fn dropped(cap: &Capture, index: usize) -> Option<DroppedSegment> {
    let t = cap.tcp(index)?;
    Some(DroppedSegment {
        index,
        src: t.src(),
        dst: t.dst(),
        seq: t.seq(),
        len: t.payload.len(),
    })
}

/// Drops one segment with payload, chosen by `seed` among those whose bytes no other frame
/// carries and whose loss the rest of the capture shows (later data from the same side, or
/// the peer's acknowledgement): bytes the capture really lost, detectably.
pub fn drop_data_segment(cap: &Capture, seed: u64) -> Option<(Capture, DroppedSegment)> {
    let candidates: Vec<usize> = sole_copies(cap)
        .into_iter()
        .filter_map(|(i, visible)| visible.then_some(i))
        .collect();
    let index = *candidates.get(Rng::new(seed).below(candidates.len()))?;
    let dropped = dropped(cap, index)?;
    let mut frames = cap.frames.clone();
    frames.remove(index);
    Some((cap.with_frames(frames), dropped))
}

/// Drops one segment with payload (chosen by `seed`) but keeps a copy `delay` frames later,
/// as a retransmission, with the time of the frame before it: nothing is really lost.
pub fn drop_retransmitted(
    cap: &Capture,
    seed: u64,
    delay: usize,
) -> Option<(Capture, DroppedSegment)> {
    let candidates = sole_copies(cap);
    let (index, _) = *candidates.get(Rng::new(seed).below(candidates.len()))?;
    let dropped = dropped(cap, index)?;
    let mut frames = cap.frames.clone();
    let mut copy = frames.remove(index);
    let at = (index + delay).min(frames.len());
    if let Some(before) = at.checked_sub(1).and_then(|b| frames.get(b)) {
        copy.ts = copy.ts.max(before.ts);
    }
    frames.insert(at, copy);
    Some((cap.with_frames(frames), dropped))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::synth::Conversation;
    use crate::net::decode::{Decoded, Decoder};

    fn conversation() -> Capture {
        let pkts = Conversation::new(
            "192.0.2.1:40000".parse().unwrap(),
            "192.0.2.2:25".parse().unwrap(),
        )
        .server("220 mail.example ESMTP\r\n")
        .client("EHLO client.example\r\n")
        .server("250 ok\r\n")
        .packets();
        Capture {
            link: LinkType::ETHERNET,
            frames: pkts
                .into_iter()
                .map(|p| Frame {
                    ts: p.ts,
                    orig_len: p.orig_len,
                    data: p.data,
                })
                .collect(),
            read_error: None,
        }
    }

    #[test]
    fn reading_a_truncated_or_foreign_file_keeps_what_was_read_or_says_why() {
        let dir = std::env::temp_dir().join(format!("mailsift-transform-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let whole = conversation().to_pcap();
        let cut = dir.join("cut.pcap");
        std::fs::write(&cut, &whole[..whole.len() - 5]).unwrap();
        let cap = Capture::read(&cut).expect("a truncated capture is read as far as it goes");
        assert_eq!(cap.frames.len(), conversation().frames.len() - 1);
        assert!(
            cap.read_error
                .as_deref()
                .is_some_and(|e| e.contains("truncated"))
        );
        let text = dir.join("notes.txt");
        std::fs::write(&text, b"not a capture at all").unwrap();
        assert!(matches!(
            Capture::read(&text),
            Err(CaptureError::NotACapture { .. })
        ));
        assert!(Capture::read(&dir.join("missing.pcap")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Every TCP payload byte of the capture per direction, in sequence order, with the
    /// flags that carried them, as the decoder reads them.
    fn decode_all(cap: &Capture) -> Vec<(u16, u32, Vec<u8>, bool)> {
        let mut d = Decoder::new(&crate::limits::Limits::default());
        let mut out = Vec::new();
        for f in &cap.frames {
            let pkt = crate::capture::Packet {
                ts: f.ts,
                link: cap.link,
                data: &f.data,
                orig_len: f.orig_len,
            };
            if let Ok(Decoded::Tcp(s)) = d.decode(&pkt) {
                out.push((s.src_port, s.seq, s.payload.to_vec(), s.flags.fin));
            }
        }
        out
    }

    fn stream(segments: &[(u16, u32, Vec<u8>, bool)], port: u16) -> Vec<u8> {
        let mut by_seq: Vec<_> = segments.iter().filter(|s| s.0 == port).collect();
        by_seq.sort_by_key(|s| s.1);
        by_seq.iter().flat_map(|s| s.2.clone()).collect()
    }

    #[test]
    fn checksum_matches_the_rfc_1071_example() {
        // RFC 1071 section 3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (complement 220d).
        assert_eq!(
            checksum(&[&[0x00, 0x01, 0xf2, 0x03], &[0xf4, 0xf5, 0xf6, 0xf7]]),
            0x220d
        );
    }

    #[test]
    fn split_segments_keeps_the_stream_and_valid_checksums() {
        let cap = conversation();
        let split = split_segments(&cap, 3, 9);
        assert!(split.frames.len() > cap.frames.len() + 10);
        let before = decode_all(&cap);
        let after = decode_all(&split);
        for port in [25, 40000] {
            assert_eq!(stream(&before, port), stream(&after, port));
        }
        assert!(after.iter().all(|s| s.2.len() <= 3));
        for i in 0..split.frames.len() {
            let t = split.tcp(i).expect("every frame is TCP");
            // A correct checksum makes the sum over pseudo header and segment come out zero.
            let v4 = &t.ip_header;
            assert_eq!(checksum(&[v4]), 0, "IPv4 header checksum");
            let tcp_len = (t.tcp_header.len() + t.payload.len()) as u16;
            let mut pseudo = v4[12..20].to_vec();
            pseudo.extend_from_slice(&[0, 6]);
            pseudo.extend_from_slice(&tcp_len.to_be_bytes());
            assert_eq!(checksum(&[&pseudo, t.tcp_header, t.payload]), 0);
        }
        // FIN stays on the final piece only.
        let fins = after.iter().filter(|s| s.3).count();
        assert_eq!(fins, before.iter().filter(|s| s.3).count());
    }

    #[test]
    fn vlan_tag_adds_one_or_two_tags_the_decoder_reads_through() {
        let cap = conversation();
        for tags in [&[7][..], &[100, 200][..]] {
            let tagged = vlan_tag(&cap, tags);
            assert_eq!(tagged.frames.len(), cap.frames.len());
            assert_eq!(
                tagged.frames[0].data.len(),
                cap.frames[0].data.len() + 4 * tags.len()
            );
            assert_eq!(decode_all(&tagged), decode_all(&cap));
        }
        let qinq = vlan_tag(&cap, &[100, 200]);
        assert_eq!(&qinq.frames[0].data[12..14], &[0x88, 0xa8]);
        assert_eq!(&qinq.frames[0].data[16..18], &[0x81, 0x00]);
    }

    #[test]
    fn reorder_moves_no_frame_beyond_its_window_and_retime_keeps_times_sorted() {
        let cap = conversation();
        let shuffled = reorder(&cap, 3, 5, false);
        assert_ne!(shuffled.frames, cap.frames);
        for (at, f) in shuffled.frames.iter().enumerate() {
            let from = cap.frames.iter().position(|g| g == f).expect("same frame");
            assert!(from.abs_diff(at) <= 3, "{from} -> {at}");
        }
        let retimed = reorder(&cap, 3, 5, true);
        assert!(retimed.frames.windows(2).all(|w| w[0].ts <= w[1].ts));
    }

    #[test]
    fn duplicate_data_repeats_only_payload_frames() {
        let cap = conversation();
        let data_frames = (0..cap.frames.len())
            .filter(|&i| cap.tcp(i).is_some_and(|t| !t.payload.is_empty()))
            .count();
        assert_eq!(
            duplicate(&cap, Duplicates::Data).frames.len(),
            cap.frames.len() + data_frames
        );
        assert_eq!(
            duplicate(&cap, Duplicates::Every).frames.len(),
            2 * cap.frames.len()
        );
    }

    #[test]
    fn drops_remove_one_data_segment_and_the_retransmitted_variant_keeps_a_copy() {
        let cap = conversation();
        let (lost, d) = drop_data_segment(&cap, 3).expect("a data segment");
        assert_eq!(lost.frames.len(), cap.frames.len() - 1);
        assert!(!lost.frames.contains(&cap.frames[d.index]));
        let (late, d2) = drop_retransmitted(&cap, 3, 2).expect("a data segment");
        assert_eq!(late.frames.len(), cap.frames.len());
        let at = late
            .frames
            .iter()
            .position(|f| f.data == cap.frames[d2.index].data)
            .expect("copy kept");
        assert_eq!(at, d2.index + 2);
        assert!(late.frames.windows(2).all(|w| w[0].ts <= w[1].ts));
    }

    #[test]
    fn only_losses_the_rest_of_the_capture_reveals_are_chosen() {
        let cap = conversation();
        // Cut the capture right after the last data segment: nothing acknowledges it or
        // follows it, so losing it would leave no trace.
        let last_data = (0..cap.frames.len())
            .rev()
            .find(|&i| cap.tcp(i).is_some_and(|t| !t.payload.is_empty()))
            .expect("data");
        let cut = cap.with_frames(cap.frames[..=last_data].to_vec());
        for seed in 0..50 {
            let (_, d) = drop_data_segment(&cut, seed).expect("earlier segments qualify");
            assert_ne!(d.index, last_data, "seed {seed}");
        }
        // A segment with a retransmitted copy is no loss either.
        let resent = duplicate(&cut, Duplicates::Data);
        assert!(drop_data_segment(&resent, 1).is_none());
    }

    #[test]
    fn fragments_and_truncated_frames_are_not_parsed_for_rewriting() {
        let cap = conversation();
        let mut frame = cap.frames[3].data.clone();
        // More fragments flag on the IPv4 header (Ethernet header is 14 bytes).
        frame[14 + 6] |= 0x20;
        assert!(TcpView::parse(LinkType::ETHERNET, &frame).is_none());
        let whole = &cap.frames[3].data;
        assert!(TcpView::parse(LinkType::ETHERNET, &whole[..whole.len() - 1]).is_none());
    }
}
