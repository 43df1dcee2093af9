//! BPF capture filters for packets read from files, compiled by libpcap (feature `live`).
//!
//! A filter's meaning depends on the link type, and one file (pcapng) may hold several, so the
//! expression is compiled once per link type met and the programs are cached.

use super::{CaptureError, LinkType, Packet, PacketFilter};
use std::collections::HashMap;

/// A tcpdump-style filter expression applied to each packet.
pub struct BpfFilter {
    expr: String,
    /// One program per link type; `None` where the expression makes no sense for it.
    programs: HashMap<LinkType, Option<pcap::BpfProgram>>,
    problems: Vec<String>,
}

impl BpfFilter {
    /// Compiles `expr`, checking it against Ethernet so a typo fails before any file is read.
    pub fn new(expr: &str) -> Result<BpfFilter, CaptureError> {
        let program = compile(expr, LinkType::ETHERNET).map_err(|reason| CaptureError::Filter {
            filter: expr.to_string(),
            reason,
        })?;
        let mut programs = HashMap::new();
        programs.insert(LinkType::ETHERNET, Some(program));
        Ok(BpfFilter {
            expr: expr.to_string(),
            programs,
            problems: Vec::new(),
        })
    }

    /// The filter text.
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// Link types the expression could not be compiled for, one line each (their packets never match).
    pub fn problems(&self) -> &[String] {
        &self.problems
    }
}

impl PacketFilter for BpfFilter {
    fn matches(&mut self, pkt: &Packet<'_>) -> bool {
        let BpfFilter {
            expr,
            programs,
            problems,
        } = self;
        let program = programs.entry(pkt.link).or_insert_with(|| {
            compile(expr, pkt.link)
                .map_err(|reason| {
                    problems.push(
                        CaptureError::Filter {
                            filter: format!("{expr} (for link type {})", pkt.link.name()),
                            reason,
                        }
                        .to_string(),
                    );
                })
                .ok()
        });
        program.as_ref().is_some_and(|p| p.filter(pkt.data))
    }
}

/// Compiles `expr` for link type `link`.
fn compile(expr: &str, link: LinkType) -> Result<pcap::BpfProgram, String> {
    let dead = pcap::Capture::dead(pcap::Linktype(dlt_for(link))).map_err(|e| e.to_string())?;
    dead.compile(expr, true).map_err(|e| e.to_string())
}

/// libpcap compiles for a DLT_ value; the few LINKTYPE_ numbers that differ are mapped back.
fn dlt_for(link: LinkType) -> i32 {
    const DLT_RAW: i32 = if cfg!(target_os = "openbsd") { 14 } else { 12 };
    const DLT_LOOP: i32 = if cfg!(target_os = "openbsd") { 12 } else { 108 };
    match link {
        LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 => DLT_RAW,
        LinkType::LOOP => DLT_LOOP,
        LinkType(n) => i32::try_from(n).unwrap_or(i32::MAX),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::Timestamp;

    /// An IPv4/TCP datagram from port 40000 to `dport`.
    fn ipv4_tcp(dport: u16) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 40, 0, 1, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
        ];
        p.extend_from_slice(&40000u16.to_be_bytes());
        p.extend_from_slice(&dport.to_be_bytes());
        p.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        p
    }

    fn packet(link: LinkType, data: &[u8]) -> Packet<'_> {
        Packet {
            ts: Timestamp(0),
            link,
            data,
            orig_len: data.len() as u32,
        }
    }

    #[test]
    fn filters_each_link_type_with_its_own_program() {
        let mut filter = BpfFilter::new("tcp dst port 25").unwrap();
        let smtp = ipv4_tcp(25);
        let web = ipv4_tcp(80);
        let mut eth = vec![0; 12];
        eth.extend_from_slice(&[0x08, 0x00]);
        let mut eth_smtp = eth.clone();
        eth_smtp.extend_from_slice(&smtp);
        let mut eth_web = eth;
        eth_web.extend_from_slice(&web);
        assert!(filter.matches(&packet(LinkType::ETHERNET, &eth_smtp)));
        assert!(!filter.matches(&packet(LinkType::ETHERNET, &eth_web)));
        assert!(filter.matches(&packet(LinkType::RAW, &smtp)));
        assert!(!filter.matches(&packet(LinkType::RAW, &web)));
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&smtp);
        assert!(filter.matches(&packet(LinkType::NULL, &null)));
        assert!(filter.problems().is_empty());
    }

    #[test]
    fn invalid_expression_is_a_filter_error() {
        let err = BpfFilter::new("tcp port banana split")
            .err()
            .expect("rejected");
        assert!(
            matches!(err, CaptureError::Filter { ref filter, .. } if filter == "tcp port banana split")
        );
    }

    #[test]
    fn expression_meaningless_for_a_link_type_never_matches() {
        let mut filter = BpfFilter::new("ether host 02:00:00:00:00:01").unwrap();
        assert!(!filter.matches(&packet(LinkType::RAW, &ipv4_tcp(25))));
        assert_eq!(filter.problems().len(), 1);
        // The failure is remembered, not recompiled for every packet.
        assert!(!filter.matches(&packet(LinkType::RAW, &ipv4_tcp(25))));
        assert_eq!(filter.problems().len(), 1);
    }
}
