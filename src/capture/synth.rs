//! Synthetic captures made by mailsift's own code: scripted TCP conversations written as pcap.
//!
//! Tests use these to reproduce hard situations exactly (reordering, duplication, loss, tiny
//! segments, VLAN tags); benchmarks use them to build large captures at run time.

use crate::session::Direction;
use crate::time::Timestamp;
use etherparse::{PacketBuilder, TcpHeader};
use std::io::{self, Write};
use std::net::{IpAddr, SocketAddr};

pub use super::pcap_writer::PcapWriter;

impl<W: Write> PcapWriter<W> {
    /// Appends packets in order.
    pub fn packets(&mut self, pkts: &[SynthPacket]) -> io::Result<()> {
        for p in pkts {
            self.packet(p.ts, &p.data, p.orig_len)?;
        }
        Ok(())
    }
}

/// One synthetic Ethernet frame with its capture time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthPacket {
    /// Capture time.
    pub ts: Timestamp,
    /// The frame.
    pub data: Vec<u8>,
    /// Length on the wire.
    pub orig_len: u32,
    /// Which side sent it.
    pub from: Direction,
    /// Whether it carries TCP payload.
    pub has_payload: bool,
}

/// A scripted TCP conversation between a client and a server.
#[derive(Debug, Clone)]
pub struct Conversation {
    client: SocketAddr,
    server: SocketAddr,
    isn: (u32, u32),
    mss: usize,
    vlans: Vec<u16>,
    handshake: bool,
    close: bool,
    start: Timestamp,
    step_nanos: i64,
    turns: Vec<(Direction, Vec<u8>)>,
}

/// The control session of the attack tests and hostile captures: from 192.0.2.10:40001 to
/// 192.0.2.25:25, a login as `control` (password `Control-1`) and one message answered 250,
/// starting at `start`. Whatever an attacker sends beside it, it must come out whole.
pub fn control_session(start: Timestamp) -> Conversation {
    Conversation::new(
        "192.0.2.10:40001".parse().expect("address"),
        "192.0.2.25:25".parse().expect("address"),
    )
    .start(start)
    .server("220 mx.example.test ESMTP\r\n")
    .client("EHLO control.example.test\r\n")
    .server("250-mx.example.test\r\n250 AUTH PLAIN\r\n")
    .client("AUTH PLAIN AGNvbnRyb2wAQ29udHJvbC0x\r\n")
    .server("235 2.7.0 Authentication successful\r\n")
    .client("MAIL FROM:<control@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
    .server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
    .client("Subject: control\r\n\r\nThe control message.\r\n.\r\n")
    .server("250 2.0.0 Ok: queued\r\n")
    .client("QUIT\r\n")
    .server("221 2.0.0 Bye\r\n")
}

impl Conversation {
    /// A conversation with a handshake, 1460-byte segments and a FIN exchange.
    pub fn new(client: SocketAddr, server: SocketAddr) -> Self {
        Conversation {
            client,
            server,
            isn: (1_000, 50_000),
            mss: 1460,
            vlans: Vec::new(),
            handshake: true,
            close: true,
            start: Timestamp::from_parts(1_700_000_000, 0),
            step_nanos: 1_000_000,
            turns: Vec::new(),
        }
    }

    /// Initial sequence numbers of client and server (try values near 2^32).
    pub fn isn(mut self, client: u32, server: u32) -> Self {
        self.isn = (client, server);
        self
    }

    /// Largest payload per segment.
    pub fn mss(mut self, mss: usize) -> Self {
        self.mss = mss.max(1);
        self
    }

    /// 802.1Q tags, outermost first (two for QinQ).
    pub fn vlans(mut self, ids: &[u16]) -> Self {
        self.vlans = ids.to_vec();
        self
    }

    /// Leaves out the three-way handshake (a capture started mid-stream).
    pub fn without_handshake(mut self) -> Self {
        self.handshake = false;
        self
    }

    /// Leaves out the FIN exchange (a capture that ends while the session is open).
    pub fn without_close(mut self) -> Self {
        self.close = false;
        self
    }

    /// Time of the first packet.
    pub fn start(mut self, ts: Timestamp) -> Self {
        self.start = ts;
        self
    }

    /// Client sends `bytes`.
    pub fn client(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.turns
            .push((Direction::Client, bytes.as_ref().to_vec()));
        self
    }

    /// Server sends `bytes`.
    pub fn server(mut self, bytes: impl AsRef<[u8]>) -> Self {
        self.turns
            .push((Direction::Server, bytes.as_ref().to_vec()));
        self
    }

    fn frame(&self, from: Direction, tcp: TcpHeader, payload: &[u8]) -> Vec<u8> {
        frame(self.client, self.server, &self.vlans, from, tcp, payload)
    }

    /// Builds the packets: handshake, each turn in MSS-sized segments followed by the
    /// receiver's ACK, and the FIN exchange.
    pub fn packets(&self) -> Vec<SynthPacket> {
        let mut out = Vec::new();
        let mut seq = [self.isn.0, self.isn.1];
        let mut t = self.start;
        let step = self.step_nanos;
        let cport = self.client.port();
        let sport = self.server.port();
        let mut push = |conv: &Conversation,
                        from: Direction,
                        seqn: u32,
                        ack: Option<u32>,
                        flags: &[&str],
                        payload: &[u8]| {
            let (sp, dp) = match from {
                Direction::Client => (cport, sport),
                Direction::Server => (sport, cport),
            };
            let mut h = TcpHeader::new(sp, dp, seqn, 65_535);
            if let Some(a) = ack {
                h.ack = true;
                h.acknowledgment_number = a;
            }
            for f in flags {
                match *f {
                    "syn" => h.syn = true,
                    "fin" => h.fin = true,
                    "psh" => h.psh = true,
                    "rst" => h.rst = true,
                    _ => {}
                }
            }
            let data = conv.frame(from, h, payload);
            let len = data.len() as u32;
            out.push(SynthPacket {
                ts: t,
                data,
                orig_len: len,
                from,
                has_payload: !payload.is_empty(),
            });
            t = Timestamp(t.0 + step);
        };
        let c = Direction::Client.index();
        let s = Direction::Server.index();
        if self.handshake {
            push(self, Direction::Client, seq[c], None, &["syn"], &[]);
            seq[c] = seq[c].wrapping_add(1);
            push(self, Direction::Server, seq[s], Some(seq[c]), &["syn"], &[]);
            seq[s] = seq[s].wrapping_add(1);
            push(self, Direction::Client, seq[c], Some(seq[s]), &[], &[]);
        }
        for (from, bytes) in &self.turns {
            let me = from.index();
            let peer = from.opposite().index();
            for chunk in bytes.chunks(self.mss) {
                push(self, *from, seq[me], Some(seq[peer]), &["psh"], chunk);
                seq[me] = seq[me].wrapping_add(chunk.len() as u32);
            }
            push(self, from.opposite(), seq[peer], Some(seq[me]), &[], &[]);
        }
        if self.close {
            push(self, Direction::Client, seq[c], Some(seq[s]), &["fin"], &[]);
            seq[c] = seq[c].wrapping_add(1);
            push(self, Direction::Server, seq[s], Some(seq[c]), &["fin"], &[]);
            seq[s] = seq[s].wrapping_add(1);
            push(self, Direction::Client, seq[c], Some(seq[s]), &[], &[]);
        }
        out
    }
}

/// An Ethernet frame (with `vlans` tags, outermost first) carrying one TCP segment between
/// `client` and `server`, sent by `from`.
fn frame(
    client: SocketAddr,
    server: SocketAddr,
    vlans: &[u16],
    from: Direction,
    tcp: TcpHeader,
    payload: &[u8],
) -> Vec<u8> {
    let (src, dst) = match from {
        Direction::Client => (client, server),
        Direction::Server => (server, client),
    };
    let (smac, dmac) = match from {
        Direction::Client => ([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]),
        Direction::Server => ([2, 0, 0, 0, 0, 2], [2, 0, 0, 0, 0, 1]),
    };
    let eth = PacketBuilder::ethernet2(smac, dmac);
    let mut out = Vec::with_capacity(64 + payload.len());
    // The builder's type changes with each layer, hence one arm per shape.
    let res = match (vlans, src.ip(), dst.ip()) {
        ([], IpAddr::V4(s), IpAddr::V4(d)) => eth
            .ipv4(s.octets(), d.octets(), 64)
            .tcp_header(tcp)
            .write(&mut out, payload),
        ([], IpAddr::V6(s), IpAddr::V6(d)) => eth
            .ipv6(s.octets(), d.octets(), 64)
            .tcp_header(tcp)
            .write(&mut out, payload),
        ([v], IpAddr::V4(s), IpAddr::V4(d)) => eth
            .single_vlan(vlan_id(*v))
            .ipv4(s.octets(), d.octets(), 64)
            .tcp_header(tcp)
            .write(&mut out, payload),
        ([v], IpAddr::V6(s), IpAddr::V6(d)) => eth
            .single_vlan(vlan_id(*v))
            .ipv6(s.octets(), d.octets(), 64)
            .tcp_header(tcp)
            .write(&mut out, payload),
        ([o, i, ..], IpAddr::V4(s), IpAddr::V4(d)) => eth
            .double_vlan(vlan_id(*o), vlan_id(*i))
            .ipv4(s.octets(), d.octets(), 64)
            .tcp_header(tcp)
            .write(&mut out, payload),
        ([o, i, ..], IpAddr::V6(s), IpAddr::V6(d)) => eth
            .double_vlan(vlan_id(*o), vlan_id(*i))
            .ipv6(s.octets(), d.octets(), 64)
            .tcp_header(tcp)
            .write(&mut out, payload),
        _ => panic!("client and server must use the same IP version"),
    };
    res.expect("writing to a Vec cannot fail");
    out
}

/// One TCP connection whose frames are made a segment at a time, for generators that
/// interleave many connections without building each one whole first (see
/// [`Conversation`] for a scripted connection built at once).
#[derive(Debug, Clone)]
pub struct TcpFlow {
    client: SocketAddr,
    server: SocketAddr,
    /// Next sequence number of client and server.
    seq: [u32; 2],
}

impl TcpFlow {
    /// A connection from `client` to `server` with initial sequence numbers `isn`.
    pub fn new(client: SocketAddr, server: SocketAddr, isn: (u32, u32)) -> Self {
        TcpFlow {
            client,
            server,
            seq: [isn.0, isn.1],
        }
    }

    /// The client's address.
    pub fn client(&self) -> SocketAddr {
        self.client
    }

    /// The server's address.
    pub fn server(&self) -> SocketAddr {
        self.server
    }

    fn header(&self, from: Direction, ack: bool) -> TcpHeader {
        let (sp, dp) = match from {
            Direction::Client => (self.client.port(), self.server.port()),
            Direction::Server => (self.server.port(), self.client.port()),
        };
        let mut h = TcpHeader::new(sp, dp, self.seq[from.index()], 65_535);
        if ack {
            h.ack = true;
            h.acknowledgment_number = self.seq[from.opposite().index()];
        }
        h
    }

    /// The three frames of the handshake: SYN, SYN-ACK, ACK.
    pub fn handshake(&mut self) -> [Vec<u8>; 3] {
        let c = Direction::Client;
        let s = Direction::Server;
        let mut h = self.header(c, false);
        h.syn = true;
        let syn = frame(self.client, self.server, &[], c, h, &[]);
        self.seq[c.index()] = self.seq[c.index()].wrapping_add(1);
        let mut h = self.header(s, true);
        h.syn = true;
        let syn_ack = frame(self.client, self.server, &[], s, h, &[]);
        self.seq[s.index()] = self.seq[s.index()].wrapping_add(1);
        let ack = self.ack(c);
        [syn, syn_ack, ack]
    }

    /// A data segment (PSH, ACK) from `from` carrying `payload`.
    pub fn data(&mut self, from: Direction, payload: &[u8]) -> Vec<u8> {
        let mut h = self.header(from, true);
        h.psh = true;
        let f = frame(self.client, self.server, &[], from, h, payload);
        let me = from.index();
        self.seq[me] = self.seq[me].wrapping_add(payload.len() as u32);
        f
    }

    /// A bare ACK from `from` of everything the peer sent so far.
    pub fn ack(&self, from: Direction) -> Vec<u8> {
        frame(
            self.client,
            self.server,
            &[],
            from,
            self.header(from, true),
            &[],
        )
    }

    /// The three frames of the close: the client's FIN, the server's FIN, the last ACK.
    pub fn close(&mut self) -> [Vec<u8>; 3] {
        let c = Direction::Client;
        let s = Direction::Server;
        let mut h = self.header(c, true);
        h.fin = true;
        let fin = frame(self.client, self.server, &[], c, h, &[]);
        self.seq[c.index()] = self.seq[c.index()].wrapping_add(1);
        let mut h = self.header(s, true);
        h.fin = true;
        let fin_ack = frame(self.client, self.server, &[], s, h, &[]);
        self.seq[s.index()] = self.seq[s.index()].wrapping_add(1);
        [fin, fin_ack, self.ack(c)]
    }
}

fn vlan_id(v: u16) -> etherparse::VlanId {
    etherparse::VlanId::try_new(v & 0x0fff).unwrap_or(etherparse::VlanId::ZERO)
}

/// A small deterministic PRNG (xorshift64*), so synthetic captures are reproducible.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (0 when n is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }
}

/// Moves each packet by up to `window` places, keeping each packet's own timestamp
/// unless `retime` is set (then timestamps stay increasing in file order).
pub fn reorder(pkts: &mut [SynthPacket], window: usize, seed: u64, retime: bool) {
    let times: Vec<Timestamp> = pkts.iter().map(|p| p.ts).collect();
    let mut rng = Rng::new(seed);
    for i in 0..pkts.len() {
        let j = (i + rng.below(window + 1)).min(pkts.len() - 1);
        pkts.swap(i, j);
    }
    if retime {
        for (p, t) in pkts.iter_mut().zip(times) {
            p.ts = t;
        }
    }
}

/// Repeats every `n`th packet right after itself (a retransmission or a capture duplicate).
pub fn duplicate_every(pkts: &[SynthPacket], n: usize) -> Vec<SynthPacket> {
    let mut out = Vec::with_capacity(pkts.len() + pkts.len() / n.max(1));
    for (i, p) in pkts.iter().enumerate() {
        out.push(p.clone());
        if n > 0 && i % n == n - 1 {
            out.push(p.clone());
        }
    }
    out
}

/// Builds pcap bytes from packets (Ethernet link type).
pub fn pcap_bytes(pkts: &[SynthPacket]) -> Vec<u8> {
    let mut w = PcapWriter::new(Vec::new(), 1).expect("Vec write");
    w.packets(pkts).expect("Vec write");
    w.finish().expect("Vec write")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversation_has_handshake_data_and_close() {
        let conv = Conversation::new(
            "192.0.2.1:40000".parse().unwrap(),
            "192.0.2.2:25".parse().unwrap(),
        )
        .mss(4)
        .server("220 hi\r\n")
        .client("QUIT\r\n");
        let pkts = conv.packets();
        // 3 handshake + (2 data + ack) + (2 data + ack) + 3 close
        assert_eq!(pkts.len(), 3 + 3 + 3 + 3);
        assert_eq!(pkts.iter().filter(|p| p.has_payload).count(), 4);
        let bytes = pcap_bytes(&pkts);
        assert_eq!(&bytes[..4], &0xa1b2_c3d4u32.to_le_bytes());
    }

    #[test]
    fn nanosecond_writer_keeps_times_exactly() {
        let mut w = PcapWriter::with_nanos(Vec::new(), 1).unwrap();
        let ts = Timestamp::from_parts(1_700_000_000, 123_456_789);
        w.packet(ts, &[0u8; 60], 60).unwrap();
        let bytes = w.finish().unwrap();
        let mut src = crate::capture::file::FileSource::from_reader(
            "mem.pcap",
            Box::new(std::io::Cursor::new(bytes)),
        )
        .unwrap();
        use crate::capture::PacketSource;
        let p = src.next_packet().unwrap().expect("one packet");
        assert_eq!(p.ts, ts);
    }

    #[test]
    fn reorder_is_deterministic_and_keeps_all_packets() {
        let conv = Conversation::new(
            "192.0.2.1:40000".parse().unwrap(),
            "192.0.2.2:110".parse().unwrap(),
        )
        .mss(3)
        .server("+OK hello there\r\n");
        let mut a = conv.packets();
        let mut b = conv.packets();
        reorder(&mut a, 3, 7, false);
        reorder(&mut b, 3, 7, false);
        assert_eq!(a, b);
        let mut sorted = a.clone();
        sorted.sort_by_key(|p| p.ts);
        assert_eq!(sorted, conv.packets());
    }
}
