//! Link-layer headers: Ethernet (802.1Q, QinQ), Linux SLL and SLL2, raw IP, BSD loopback.
//!
//! Each supported link type is peeled down to the network-layer bytes it carries and what they
//! are. Ethernet and VLAN tags are read with `etherparse`; the Linux cooked headers are read here
//! because `etherparse` has no SLL2 and its SLL reader refuses hardware types (loopback, tunnels)
//! whose protocol field is still a plain EtherType.

use crate::capture::LinkType;
use etherparse::{Ethernet2HeaderSlice, SingleVlanHeaderSlice};

/// Most VLAN tags (and MPLS labels) stacked on one frame before it is called malformed.
pub const MAX_TAG_DEPTH: usize = 8;

/// EtherType values the link layer acts on.
mod ether_type {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const PROVIDER_BRIDGING: u16 = 0x88a8;
    /// Pre-standard QinQ outer tags.
    pub const QINQ_LEGACY: [u16; 3] = [0x9100, 0x9200, 0x9300];
    pub const PPPOE_SESSION: u16 = 0x8864;
    pub const MPLS_UNICAST: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    /// Values up to this are 802.3 lengths, not EtherTypes.
    pub const MAX_8023_LENGTH: u16 = 1500;
}

/// BSD address families for IP, as DLT_NULL and DLT_LOOP carry them.
mod address_family {
    pub const INET: u32 = 2;
    /// AF_INET6 differs between BSDs: NetBSD/OpenBSD, FreeBSD, and Darwin.
    pub const INET6: [u32; 3] = [24, 28, 30];
}

/// ARPHRD_ values whose SLL protocol field is not an EtherType.
mod arphrd {
    pub const FRAD: u16 = 770;
    pub const IEEE80211_RADIOTAP: u16 = 803;
    pub const NETLINK: u16 = 824;
}

/// The network protocol a link header announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetworkProtocol {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// IP whose version is told by its first nibble (raw IP link types).
    AnyIp,
    /// Anything else (ARP, LLDP, non-IP loopback families, ...).
    Other,
}

/// The network-layer bytes of a frame and what they are.
#[derive(Debug, Clone, Copy)]
pub struct LinkPayload<'a> {
    /// What `bytes` hold.
    pub protocol: NetworkProtocol,
    /// The bytes after all link-layer headers (Ethernet padding included, if any).
    pub bytes: &'a [u8],
}

/// A Linux cooked capture v1 header (LINKTYPE_LINUX_SLL, 16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SllHeader {
    /// To us, broadcast, multicast, to someone else, or sent by us.
    pub packet_type: u16,
    /// The ARPHRD_ hardware type of the interface.
    pub arphrd: u16,
    /// Protocol of the payload; an EtherType for most hardware types.
    pub protocol: u16,
}

impl SllHeader {
    /// Header length in bytes.
    pub const LEN: usize = 16;

    /// Reads the header at the start of `frame`, returning it and the bytes after it.
    pub fn parse(frame: &[u8]) -> Option<(SllHeader, &[u8])> {
        let header = SllHeader {
            packet_type: be16(frame, 0)?,
            arphrd: be16(frame, 2)?,
            protocol: be16(frame, 14)?,
        };
        Some((header, frame.get(Self::LEN..)?))
    }
}

/// A Linux cooked capture v2 header (LINKTYPE_LINUX_SLL2, 20 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sll2Header {
    /// Protocol of the payload; an EtherType for most hardware types.
    pub protocol: u16,
    /// The capturing interface's index.
    pub interface_index: u32,
    /// The ARPHRD_ hardware type of the interface.
    pub arphrd: u16,
    /// To us, broadcast, multicast, to someone else, or sent by us.
    pub packet_type: u8,
    /// How many bytes of `address` are valid.
    pub address_len: u8,
    /// The link-layer source address, zero-padded.
    pub address: [u8; 8],
}

impl Sll2Header {
    /// Header length in bytes.
    pub const LEN: usize = 20;

    /// Reads the header at the start of `frame`, returning it and the bytes after it.
    pub fn parse(frame: &[u8]) -> Option<(Sll2Header, &[u8])> {
        let header = Sll2Header {
            protocol: be16(frame, 0)?,
            interface_index: u32::from_be_bytes(frame.get(4..8)?.try_into().ok()?),
            arphrd: be16(frame, 8)?,
            packet_type: *frame.get(10)?,
            address_len: *frame.get(11)?,
            address: frame.get(12..20)?.try_into().ok()?,
        };
        Some((header, frame.get(Self::LEN..)?))
    }
}

/// Whether frames of `link` are decoded.
pub fn is_supported(link: LinkType) -> bool {
    matches!(
        link,
        LinkType::NULL
            | LinkType::ETHERNET
            | LinkType::RAW
            | LinkType::RAW_BSD12
            | LinkType::RAW_BSD14
            | LinkType::LOOP
            | LinkType::LINUX_SLL
            | LinkType::LINUX_SLL2
            | LinkType::IPV4
            | LinkType::IPV6
    )
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

/// Strips the link-layer headers of a frame of type `link`.
pub fn strip_link(link: LinkType, frame: &[u8]) -> Result<LinkPayload<'_>, DecodeError> {
    match link {
        LinkType::ETHERNET => strip_ethernet(frame),
        LinkType::LINUX_SLL => {
            let (header, rest) =
                SllHeader::parse(frame).ok_or(DecodeError::Truncated("linux sll"))?;
            from_cooked(header.arphrd, header.protocol, rest)
        }
        LinkType::LINUX_SLL2 => {
            let (header, rest) =
                Sll2Header::parse(frame).ok_or(DecodeError::Truncated("linux sll2"))?;
            from_cooked(header.arphrd, header.protocol, rest)
        }
        LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 => Ok(LinkPayload {
            protocol: NetworkProtocol::AnyIp,
            bytes: frame,
        }),
        LinkType::IPV4 => Ok(LinkPayload {
            protocol: NetworkProtocol::Ipv4,
            bytes: frame,
        }),
        LinkType::IPV6 => Ok(LinkPayload {
            protocol: NetworkProtocol::Ipv6,
            bytes: frame,
        }),
        LinkType::NULL => {
            let raw: [u8; 4] = frame
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(DecodeError::Truncated("loopback"))?;
            // The family is in the capturing host's byte order; families are small numbers,
            // so a value with high bits set was written by the other byte order.
            let le = u32::from_le_bytes(raw);
            let family = if le > 0xffff { le.swap_bytes() } else { le };
            Ok(from_family(family, frame.get(4..).unwrap_or(&[])))
        }
        LinkType::LOOP => {
            let family = frame
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_be_bytes)
                .ok_or(DecodeError::Truncated("loopback"))?;
            Ok(from_family(family, frame.get(4..).unwrap_or(&[])))
        }
        other => Err(DecodeError::UnsupportedLink(other)),
    }
}

/// Reads an Ethernet II or 802.3/SNAP frame and any VLAN tags.
fn strip_ethernet(frame: &[u8]) -> Result<LinkPayload<'_>, DecodeError> {
    let header =
        Ethernet2HeaderSlice::from_slice(frame).map_err(|_| DecodeError::Truncated("ethernet"))?;
    let rest = frame.get(header.slice().len()..).unwrap_or(&[]);
    let kind = header.ether_type().0;
    if kind <= ether_type::MAX_8023_LENGTH {
        return Ok(from_llc(rest));
    }
    from_ether_type(kind, rest)
}

/// An 802.2 LLC payload: only SNAP with a zero OUI carries an EtherType.
fn from_llc(llc: &[u8]) -> LinkPayload<'_> {
    match (llc.get(..6), be16(llc, 6)) {
        (Some([0xaa, 0xaa, 0x03, 0, 0, 0]), Some(kind)) => {
            from_ether_type(kind, llc.get(8..).unwrap_or(&[])).unwrap_or(OTHER)
        }
        _ => OTHER,
    }
}

const OTHER: LinkPayload<'static> = LinkPayload {
    protocol: NetworkProtocol::Other,
    bytes: &[],
};

/// Follows an EtherType through VLAN tags, PPPoE and MPLS to the network layer.
fn from_ether_type(mut kind: u16, mut rest: &[u8]) -> Result<LinkPayload<'_>, DecodeError> {
    for _ in 0..=MAX_TAG_DEPTH {
        match kind {
            ether_type::IPV4 => {
                return Ok(LinkPayload {
                    protocol: NetworkProtocol::Ipv4,
                    bytes: rest,
                });
            }
            ether_type::IPV6 => {
                return Ok(LinkPayload {
                    protocol: NetworkProtocol::Ipv6,
                    bytes: rest,
                });
            }
            k if k == ether_type::VLAN
                || k == ether_type::PROVIDER_BRIDGING
                || ether_type::QINQ_LEGACY.contains(&k) =>
            {
                let tag = SingleVlanHeaderSlice::from_slice(rest)
                    .map_err(|_| DecodeError::Truncated("vlan"))?;
                kind = tag.ether_type().0;
                rest = rest.get(tag.slice().len()..).unwrap_or(&[]);
            }
            ether_type::PPPOE_SESSION => {
                // 6 bytes of PPPoE, then the 2-byte PPP protocol number.
                let ppp = be16(rest, 6).ok_or(DecodeError::Truncated("pppoe"))?;
                let protocol = match ppp {
                    0x0021 => NetworkProtocol::Ipv4,
                    0x0057 => NetworkProtocol::Ipv6,
                    _ => NetworkProtocol::Other,
                };
                return Ok(LinkPayload {
                    protocol,
                    bytes: rest.get(8..).unwrap_or(&[]),
                });
            }
            ether_type::MPLS_UNICAST | ether_type::MPLS_MULTICAST => return strip_mpls(rest),
            _ => return Ok(OTHER),
        }
    }
    Err(DecodeError::Malformed("vlan tag stack"))
}

/// Skips an MPLS label stack; what follows has no type field, so IP is told by its version.
fn strip_mpls(mut rest: &[u8]) -> Result<LinkPayload<'_>, DecodeError> {
    for _ in 0..MAX_TAG_DEPTH {
        let label = rest.get(..4).ok_or(DecodeError::Truncated("mpls"))?;
        let bottom = label.get(2).is_some_and(|b| b & 1 == 1);
        rest = rest.get(4..).unwrap_or(&[]);
        if bottom {
            let protocol = match rest.first().map(|b| b >> 4) {
                Some(4) => NetworkProtocol::Ipv4,
                Some(6) => NetworkProtocol::Ipv6,
                _ => NetworkProtocol::Other,
            };
            return Ok(LinkPayload {
                protocol,
                bytes: rest,
            });
        }
    }
    Err(DecodeError::Malformed("mpls label stack"))
}

/// The payload of a Linux cooked header.
fn from_cooked(hardware: u16, protocol: u16, rest: &[u8]) -> Result<LinkPayload<'_>, DecodeError> {
    match hardware {
        arphrd::NETLINK | arphrd::IEEE80211_RADIOTAP | arphrd::FRAD => Ok(OTHER),
        _ if protocol <= ether_type::MAX_8023_LENGTH => Ok(OTHER),
        _ => from_ether_type(protocol, rest),
    }
}

/// The payload of a BSD loopback header with address family `family`.
fn from_family(family: u32, rest: &[u8]) -> LinkPayload<'_> {
    let protocol = if family == address_family::INET {
        NetworkProtocol::Ipv4
    } else if address_family::INET6.contains(&family) {
        NetworkProtocol::Ipv6
    } else {
        NetworkProtocol::Other
    };
    LinkPayload {
        protocol,
        bytes: rest,
    }
}

/// The big-endian `u16` at `at`.
fn be16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(
        bytes.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: &[u8] = &[0x45, 0, 0, 20];

    fn ethernet(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        f.extend_from_slice(&kind.to_be_bytes());
        f.extend_from_slice(payload);
        f
    }

    /// A VLAN tag (VID 42) followed by `inner` and the payload.
    fn vlan(inner: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x00, 0x2a];
        v.extend_from_slice(&inner.to_be_bytes());
        v.extend_from_slice(payload);
        v
    }

    fn strip(link: LinkType, frame: &[u8]) -> (NetworkProtocol, Vec<u8>) {
        let p = strip_link(link, frame).unwrap();
        (p.protocol, p.bytes.to_vec())
    }

    #[test]
    fn ethernet_and_vlan_stacks() {
        assert_eq!(
            strip(LinkType::ETHERNET, &ethernet(0x0800, IP)),
            (NetworkProtocol::Ipv4, IP.to_vec())
        );
        let single = ethernet(0x8100, &vlan(0x86dd, IP));
        assert_eq!(
            strip(LinkType::ETHERNET, &single),
            (NetworkProtocol::Ipv6, IP.to_vec())
        );
        let qinq = ethernet(0x88a8, &vlan(0x8100, &vlan(0x0800, IP)));
        assert_eq!(
            strip(LinkType::ETHERNET, &qinq),
            (NetworkProtocol::Ipv4, IP.to_vec())
        );
        let mut deep = vlan(0x0800, IP);
        for _ in 0..MAX_TAG_DEPTH + 1 {
            deep = vlan(0x8100, &deep);
        }
        assert_eq!(
            strip_link(LinkType::ETHERNET, &ethernet(0x8100, &deep)).err(),
            Some(DecodeError::Malformed("vlan tag stack"))
        );
        assert_eq!(
            strip_link(LinkType::ETHERNET, &ethernet(0x8100, &[0, 1])).err(),
            Some(DecodeError::Truncated("vlan"))
        );
        assert_eq!(
            strip_link(LinkType::ETHERNET, &[0; 13]).err(),
            Some(DecodeError::Truncated("ethernet"))
        );
        assert_eq!(
            strip(LinkType::ETHERNET, &ethernet(0x0806, &[1, 2])).0,
            NetworkProtocol::Other
        );
    }

    #[test]
    fn snap_pppoe_and_mpls() {
        let mut snap = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
        snap.extend_from_slice(IP);
        assert_eq!(
            strip(LinkType::ETHERNET, &ethernet(snap.len() as u16, &snap)),
            (NetworkProtocol::Ipv4, IP.to_vec())
        );
        let mut pppoe = vec![0x11, 0, 0, 1, 0, 6, 0x00, 0x57];
        pppoe.extend_from_slice(IP);
        assert_eq!(
            strip(LinkType::ETHERNET, &ethernet(0x8864, &pppoe)),
            (NetworkProtocol::Ipv6, IP.to_vec())
        );
        let mut mpls = vec![0, 0x01, 0x00, 0x40, 0, 0x02, 0x01, 0x40];
        mpls.extend_from_slice(IP);
        assert_eq!(
            strip(LinkType::ETHERNET, &ethernet(0x8847, &mpls)),
            (NetworkProtocol::Ipv4, IP.to_vec())
        );
    }

    #[test]
    fn linux_cooked_v1_and_v2() {
        // SLL from the loopback device (ARPHRD_LOOPBACK), which etherparse's reader refuses.
        let mut sll = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
        sll.extend_from_slice(IP);
        assert_eq!(
            strip(LinkType::LINUX_SLL, &sll),
            (NetworkProtocol::Ipv4, IP.to_vec())
        );
        let (h, _) = SllHeader::parse(&sll).unwrap();
        assert_eq!((h.packet_type, h.arphrd, h.protocol), (0, 772, 0x0800));

        let mut sll2 = vec![0x86, 0xdd, 0, 0, 0, 0, 0, 7, 0, 1, 4, 6];
        sll2.extend_from_slice(&[1, 2, 3, 4, 5, 6, 0, 0]);
        sll2.extend_from_slice(IP);
        assert_eq!(
            strip(LinkType::LINUX_SLL2, &sll2),
            (NetworkProtocol::Ipv6, IP.to_vec())
        );
        let (h, _) = Sll2Header::parse(&sll2).unwrap();
        assert_eq!(h.interface_index, 7);
        assert_eq!((h.arphrd, h.packet_type, h.address_len), (1, 4, 6));
        assert_eq!(h.address, [1, 2, 3, 4, 5, 6, 0, 0]);
        assert_eq!(
            strip_link(LinkType::LINUX_SLL2, &sll2[..19]).err(),
            Some(DecodeError::Truncated("linux sll2"))
        );
        // Netlink frames are not network traffic.
        let mut nl = sll.clone();
        nl[2..4].copy_from_slice(&824u16.to_be_bytes());
        assert_eq!(strip(LinkType::LINUX_SLL, &nl).0, NetworkProtocol::Other);
    }

    #[test]
    fn loopback_families_in_either_byte_order() {
        for (raw, want) in [
            (2u32.to_le_bytes(), NetworkProtocol::Ipv4),
            (2u32.to_be_bytes(), NetworkProtocol::Ipv4),
            (30u32.to_le_bytes(), NetworkProtocol::Ipv6),
            (24u32.to_be_bytes(), NetworkProtocol::Ipv6),
            (28u32.to_le_bytes(), NetworkProtocol::Ipv6),
            (7u32.to_le_bytes(), NetworkProtocol::Other),
        ] {
            let mut frame = raw.to_vec();
            frame.extend_from_slice(IP);
            assert_eq!(strip(LinkType::NULL, &frame).0, want, "{raw:?}");
        }
        let mut looped = 2u32.to_be_bytes().to_vec();
        looped.extend_from_slice(IP);
        assert_eq!(
            strip(LinkType::LOOP, &looped),
            (NetworkProtocol::Ipv4, IP.to_vec())
        );
        // LOOP is always network byte order: a little-endian 2 is not AF_INET.
        let mut wrong = 2u32.to_le_bytes().to_vec();
        wrong.extend_from_slice(IP);
        assert_eq!(strip(LinkType::LOOP, &wrong).0, NetworkProtocol::Other);
    }

    #[test]
    fn raw_ip_types_and_unknown_link() {
        for link in [LinkType::RAW, LinkType::RAW_BSD12, LinkType::RAW_BSD14] {
            assert!(is_supported(link));
            assert_eq!(strip(link, IP), (NetworkProtocol::AnyIp, IP.to_vec()));
        }
        assert_eq!(strip(LinkType::IPV4, IP).0, NetworkProtocol::Ipv4);
        assert_eq!(strip(LinkType::IPV6, IP).0, NetworkProtocol::Ipv6);
        assert!(!is_supported(LinkType(147)));
        assert_eq!(
            strip_link(LinkType(147), IP).err(),
            Some(DecodeError::UnsupportedLink(LinkType(147)))
        );
    }
}
