//! Packet decoding from fuzzer bytes.
//!
//! Byte 0 holds options: with bit 7 set, the rest is one packet decoded as every link type in
//! turn (a fresh decoder each); otherwise the rest is a sequence of packet records for one
//! decoder, so IP fragments of different records meet in the defragmenter. Bit 0 selects tight
//! fragment limits. A record is: link byte (low nibble indexes [`LINKS`], high nibble advances
//! the clock in seconds), a byte of wire bytes lost to the snap length, a two-byte length and the
//! captured bytes.

use crate::input::Reader;
use mailsift::capture::{LinkType, Packet};
use mailsift::limits::Limits;
use mailsift::net::decode::{Decoded, Decoder};
use mailsift::time::Timestamp;

/// Link types a record can name (the last one is unsupported on purpose).
pub const LINKS: [LinkType; 11] = [
    LinkType::ETHERNET,
    LinkType::RAW,
    LinkType::NULL,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::LINUX_SLL2,
    LinkType::IPV4,
    LinkType::IPV6,
    LinkType::RAW_BSD12,
    LinkType::RAW_BSD14,
    LinkType(147),
];

/// Single-packet mode flag.
pub const EVERY_LINK: u8 = 0x80;
/// Tight fragment limits flag.
pub const TIGHT: u8 = 0x01;

/// Most records read from one input.
pub const MAX_RECORDS: usize = 1024;

/// Largest IP datagram: a TCP payload plus the bytes the snap length cut can never exceed it.
const MAX_DATAGRAM: usize = 65_535;

/// Appends one packet record (for seeds); `link` indexes [`LINKS`].
pub fn push_record(out: &mut Vec<u8>, link: usize, secs: u8, lost: u8, frame: &[u8]) {
    let frame = &frame[..frame.len().min(usize::from(u16::MAX))];
    out.push((link as u8 & 0x0f) | (secs.min(15) << 4));
    out.push(lost);
    out.extend_from_slice(&(frame.len() as u16).to_le_bytes());
    out.extend_from_slice(frame);
}

fn limits(options: u8) -> Limits {
    let mut l = Limits::default();
    if options & TIGHT != 0 {
        l.max_fragment_sets = 3;
        l.max_fragment_bytes = 3000;
        l.fragment_timeout_secs = 2;
    }
    l
}

/// Decodes one packet and checks what came out.
fn decode_one(decoder: &mut Decoder, pkt: &Packet<'_>) {
    if let Ok(Decoded::Tcp(seg)) = decoder.decode(pkt) {
        assert!(
            seg.payload.len() + seg.missing as usize <= MAX_DATAGRAM,
            "segment of {} captured and {} missing bytes",
            seg.payload.len(),
            seg.missing
        );
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut r = Reader::new(data);
    let options = r.u8().unwrap_or(0);
    let l = limits(options);
    if options & EVERY_LINK != 0 {
        let frame = r.rest();
        for link in LINKS {
            let mut decoder = Decoder::new(&l);
            let pkt = Packet {
                ts: Timestamp::from_parts(1, 0),
                link,
                data: frame,
                orig_len: frame.len() as u32,
            };
            decode_one(&mut decoder, &pkt);
        }
        return;
    }
    let mut decoder = Decoder::new(&l);
    let mut secs = 1_700_000_000i64;
    let mut records = 0u64;
    while (records as usize) < MAX_RECORDS && !r.is_empty() {
        let head = r.u8().unwrap_or(0);
        let lost = r.u8().unwrap_or(0);
        let len = usize::from(r.u16().unwrap_or(0));
        let frame = r.take(len);
        secs += i64::from(head >> 4);
        let link = LINKS[usize::from(head & 0x0f) % LINKS.len()];
        let pkt = Packet {
            ts: Timestamp::from_parts(secs, 0),
            link,
            data: frame,
            orig_len: frame.len() as u32 + u32::from(lost),
        };
        decode_one(&mut decoder, &pkt);
        records += 1;
    }
    decoder.flush_fragments();
    let s = decoder.stats();
    assert!(
        s.tcp + s.other + s.malformed + s.unsupported_link <= records,
        "more outcomes than packets: {s:?} for {records}"
    );
    assert!(
        s.reassembled <= s.fragments,
        "more datagrams rebuilt than fragments seen"
    );
    assert!(s.tcp <= records, "more segments than packets");
}
