//! Writes seed inputs for every fuzz target into `corpus/<target>/` (git-ignored).
//!
//! Seeds come from two places: the project's own `captures/` (read with mailsift's own capture
//! reader, decoder and reassembler, then re-encoded in each target's input format) and
//! conversations, SASL exchanges, TLS hellos and MIME messages synthesised here.
//!
//! Usage: `cargo run --example seeds -- [OUT_DIR] [--captures DIR]...`
//! (run from `fuzz/`; OUT_DIR defaults to `corpus`, and `--captures` may add folders of
//! `.pcap`/`.pcapng` files whose derived seeds stay in OUT_DIR only).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use flate2::Compression;
use flate2::write::GzEncoder;
use mailsift::capture::PacketSource;
use mailsift::capture::file::FileSource;
use mailsift::capture::synth::{
    Conversation, PcapWriter, SynthPacket, duplicate_every, pcap_bytes, reorder,
};
use mailsift::limits::Limits;
use mailsift::net::decode::{Decoded, Decoder};
use mailsift::net::reassembly::{Chunk, Reassembler};
use mailsift::session::Direction;
use mailsift_fuzz::decode::{EVERY_LINK, LINKS, push_record};
use mailsift_fuzz::mime::{ATTACHMENTS, COMPLETE, TIGHT};
use mailsift_fuzz::reassembly::OpsWriter as ReasmWriter;
use mailsift_fuzz::sasl::{ExchangeWriter, MECHANISMS, Side};
use mailsift_fuzz::session::{OpsWriter, OwnedOp, SessionConfig};
use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

const SMTP_PORTS: [u16; 3] = [25, 587, 465];
const POP3_PORTS: [u16; 2] = [110, 995];
const IMPLICIT_TLS_PORTS: [u16; 2] = [465, 995];

/// Writes numbered seed files per target.
struct Corpus {
    root: PathBuf,
    written: BTreeMap<&'static str, usize>,
}

impl Corpus {
    fn add(&mut self, target: &'static str, name: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus folder");
        let n = self.written.entry(target).or_default();
        *n += 1;
        let safe: String = name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        std::fs::write(dir.join(format!("seed-{safe}-{n}")), bytes).expect("write seed");
    }
}

fn server_port(port_a: u16, port_b: u16) -> Option<(bool, u16)> {
    let mail = |p| SMTP_PORTS.contains(&p) || POP3_PORTS.contains(&p);
    if mail(port_b) {
        Some((true, port_b))
    } else if mail(port_a) {
        Some((false, port_a))
    } else {
        None
    }
}

/// One direction of a flow being rebuilt.
struct Side2 {
    reasm: Reassembler,
    raw: Option<ReasmWriter>,
    payload_seen: bool,
}

impl Side2 {
    fn new() -> Self {
        Side2 {
            reasm: Reassembler::new(1 << 20, 32),
            raw: None,
            payload_seen: false,
        }
    }
}

/// A TCP flow to a mail port, rebuilt into the operations a dissector sees.
struct FlowSeeds {
    port: u16,
    ops: Vec<OwnedOp>,
    sides: [Side2; 2],
}

fn push_chunk(ops: &mut Vec<OwnedOp>, dir: Direction, chunk: Chunk<'_>) {
    ops.push(match chunk {
        Chunk::Data { bytes, .. } => OwnedOp::Data(dir, bytes.to_vec()),
        Chunk::Gap { len, .. } => OwnedOp::Gap(dir, len),
        Chunk::Fin { .. } => OwnedOp::Fin(dir),
    });
}

/// Reads a capture file into its mail flows and its packets (link index, frame).
/// A captured frame: its index in `LINKS` and its bytes.
type Frame = (usize, Vec<u8>);

fn read_capture(path: &Path) -> Option<(Vec<FlowSeeds>, Vec<Frame>)> {
    let mut src = FileSource::open(path).ok()?;
    let mut decoder = Decoder::new(&Limits::default());
    let mut flows: BTreeMap<(SocketAddr, SocketAddr), FlowSeeds> = BTreeMap::new();
    let mut order: Vec<(SocketAddr, SocketAddr)> = Vec::new();
    let mut packets = Vec::new();
    while let Ok(Some(pkt)) = src.next_packet() {
        if let Some(link) = LINKS.iter().position(|l| *l == pkt.link) {
            packets.push((link, pkt.data.to_vec()));
        }
        let Ok(Decoded::Tcp(seg)) = decoder.decode(&pkt) else {
            continue;
        };
        let Some((src_is_client, port)) = server_port(seg.src_port, seg.dst_port) else {
            continue;
        };
        let a = SocketAddr::new(seg.src, seg.src_port);
        let b = SocketAddr::new(seg.dst, seg.dst_port);
        let (key, dir) = if src_is_client {
            ((a, b), Direction::Client)
        } else {
            ((b, a), Direction::Server)
        };
        let flow = flows.entry(key).or_insert_with(|| {
            order.push(key);
            FlowSeeds {
                port,
                ops: Vec::new(),
                sides: [Side2::new(), Side2::new()],
            }
        });
        let FlowSeeds { ops, sides, .. } = flow;
        let me = dir.index();
        let peer = dir.opposite().index();
        let raw = sides[me].raw.get_or_insert_with(|| {
            let isn = if seg.flags.syn {
                seg.seq
            } else {
                seg.seq.wrapping_sub(1)
            };
            ReasmWriter::new(5, 2, false, 32, isn)
        });
        if seg.flags.syn {
            raw.syn(0);
            sides[me].reasm.syn(seg.seq);
        }
        if !seg.flags.rst && (!seg.payload.is_empty() || seg.missing > 0 || seg.flags.fin) {
            let data_seq = if seg.flags.syn {
                seg.seq.wrapping_add(1)
            } else {
                seg.seq
            };
            let lost = u16::try_from(seg.missing).unwrap_or(u16::MAX);
            raw.segment(data_seq, seg.payload, lost, seg.flags.fin, false);
            sides[me].payload_seen |= !seg.payload.is_empty();
            sides[me].reasm.segment(
                data_seq,
                seg.payload,
                seg.missing,
                seg.flags.fin,
                pkt.ts,
                &mut |c| push_chunk(ops, dir, c),
            );
        }
        if seg.flags.ack && !seg.flags.rst {
            if let Some(peer_raw) = sides[peer].raw.as_mut() {
                peer_raw.ack(seg.ack);
            }
            let peer_dir = dir.opposite();
            sides[peer]
                .reasm
                .peer_ack(seg.ack, pkt.ts, &mut |c| push_chunk(ops, peer_dir, c));
        }
    }
    let mut out = Vec::new();
    for key in order {
        let Some(mut flow) = flows.remove(&key) else {
            continue;
        };
        let FlowSeeds { ops, sides, .. } = &mut flow;
        for dir in [Direction::Client, Direction::Server] {
            let ts = mailsift::time::Timestamp::default();
            sides[dir.index()]
                .reasm
                .flush(ts, &mut |c| push_chunk(ops, dir, c));
            if let Some(raw) = sides[dir.index()].raw.as_mut() {
                raw.flush();
            }
        }
        out.push(flow);
    }
    Some((out, packets))
}

fn encode_ops(config: u8, ops: &[OwnedOp]) -> Vec<u8> {
    let mut w = OpsWriter::default();
    w.bytes.push(config);
    for op in ops {
        match op {
            OwnedOp::Data(d, b) => w.data(*d, b),
            OwnedOp::Gap(d, n) => w.gap(*d, *n),
            OwnedOp::Fin(d) => w.fin(*d),
        };
    }
    w.bytes
}

fn stream_of(ops: &[OwnedOp], dir: Direction) -> Vec<u8> {
    let mut out = Vec::new();
    for op in ops {
        if let OwnedOp::Data(d, b) = op
            && *d == dir
        {
            out.extend_from_slice(b);
        }
    }
    out
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|i| i + from)
}

/// Where a side's TLS starts after STARTTLS/STLS: a handshake record at a line start.
fn tls_start(stream: &[u8]) -> Option<usize> {
    (0..stream.len().saturating_sub(2))
        .find(|&i| stream[i] == 0x16 && stream[i + 1] == 0x03 && (i == 0 || stream[i - 1] == b'\n'))
}

/// The operations of the TLS part of a flow: each side's bytes from its TLS start.
fn tls_ops(ops: &[OwnedOp]) -> Option<Vec<OwnedOp>> {
    let start = |dir| tls_start(&stream_of(ops, dir));
    let starts = [start(Direction::Client), start(Direction::Server)];
    if starts.iter().all(Option::is_none) {
        return None;
    }
    let mut seen = [0usize; 2];
    let mut out = Vec::new();
    for op in ops {
        if let OwnedOp::Data(d, b) = op {
            let i = d.index();
            let at = seen[i];
            seen[i] += b.len();
            let Some(s) = starts[i] else { continue };
            if at + b.len() <= s {
                continue;
            }
            out.push(OwnedOp::Data(*d, b[s.saturating_sub(at)..].to_vec()));
        }
    }
    Some(out)
}

/// Messages in an SMTP client stream (between `DATA` and the lone dot), dot-unstuffed.
fn smtp_messages(client: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = find(client, b"DATA\r\n", from) {
        if i > 0 && client[i - 1] != b'\n' {
            from = i + 6;
            continue;
        }
        let start = i + 6;
        let end = find(client, b"\r\n.\r\n", start).unwrap_or(client.len());
        out.push(unstuff(&client[start..(end + 2).min(client.len())]));
        from = end;
    }
    out
}

/// Messages in a POP3 server stream: `+OK` replies followed by a header block and a lone dot.
fn pop3_messages(server: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = find(server, b"+OK", from) {
        let Some(eol) = find(server, b"\r\n", i) else {
            break;
        };
        let start = eol + 2;
        let Some(end) = find(server, b"\r\n.\r\n", eol) else {
            break;
        };
        let body = &server[start..end + 2];
        let first_line = body.split(|&b| b == b'\n').next().unwrap_or_default();
        if first_line.contains(&b':') && find(body, b"\r\n\r\n", 0).is_some() {
            out.push(unstuff(body));
        }
        from = start;
    }
    out
}

/// Removes the dot that SMTP and POP3 add before a line starting with a dot.
fn unstuff(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let mut at_line_start = true;
    for (i, &b) in body.iter().enumerate() {
        let stuffed = at_line_start && b == b'.' && body.get(i + 1) == Some(&b'.');
        if !stuffed {
            out.push(b);
        }
        at_line_start = b == b'\n';
    }
    out
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(bytes).expect("gzip to memory");
    enc.finish().expect("gzip to memory")
}

/// Seeds derived from one capture file.
fn capture_seeds(corpus: &mut Corpus, path: &Path, with_raw_file: bool) {
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    if with_raw_file && bytes.len() <= 1 << 20 {
        corpus.add("capture_file", &name, &bytes);
        corpus.add("capture_file", &format!("{name}-gz"), &gzip(&bytes));
        corpus.add("pipeline", &name, &bytes);
    }
    let Some((flows, packets)) = read_capture(path) else {
        return;
    };

    let mut all = vec![0u8];
    for (i, (link, frame)) in packets.iter().enumerate() {
        if i < 24 {
            let mut one = vec![0u8];
            push_record(&mut one, *link, 0, 0, frame);
            corpus.add("decode", &name, &one);
        }
        if i < 4 {
            let mut every = vec![EVERY_LINK];
            every.extend_from_slice(frame);
            corpus.add("decode", &format!("{name}-every"), &every);
        }
        if i < 256 {
            push_record(&mut all, *link, 0, 0, frame);
        }
    }
    corpus.add("decode", &format!("{name}-all"), &all);

    for flow in flows {
        let tls_port = IMPLICIT_TLS_PORTS.contains(&flow.port);
        let target = if SMTP_PORTS.contains(&flow.port) {
            "smtp_session"
        } else {
            "pop3_session"
        };
        let base = if tls_port {
            SessionConfig::IMPLICIT_TLS
        } else {
            0
        };
        corpus.add(
            target,
            &name,
            &encode_ops(base | SessionConfig::KEEP_MESSAGES, &flow.ops),
        );
        corpus.add(
            target,
            &format!("{name}-tight"),
            &encode_ops(base | 0x1f, &flow.ops),
        );
        let tls = if tls_port {
            Some(
                flow.ops
                    .iter()
                    .filter(|op| matches!(op, OwnedOp::Data(..) | OwnedOp::Gap(..)))
                    .cloned()
                    .collect(),
            )
        } else {
            tls_ops(&flow.ops)
        };
        if let Some(tls) = tls {
            corpus.add("tls_observer", &name, &encode_ops(u8::from(tls_port), &tls));
        }
        for side in &flow.sides {
            if let (true, Some(raw)) = (side.payload_seen, &side.raw) {
                corpus.add("reassembly", &name, &raw.bytes);
            }
        }
        let messages = if target == "smtp_session" {
            smtp_messages(&stream_of(&flow.ops, Direction::Client))
        } else {
            pop3_messages(&stream_of(&flow.ops, Direction::Server))
        };
        for m in messages {
            let mut seed = vec![COMPLETE | ATTACHMENTS, 7];
            seed.extend_from_slice(&m);
            corpus.add("mime", &name, &seed);
        }
    }
}

// ---- Synthesised material -------------------------------------------------------------------

const MIME_MULTIPART: &str = "From: \"Alice Example\" <alice@example.test>\r\n\
To: bob@example.test, =?UTF-8?B?QsO2Yg==?= <bob2@example.test>\r\n\
Subject: =?UTF-8?Q?Quarterly_r=C3=A9sum=C3=A9?=\r\n\
Date: Tue, 14 Nov 2023 22:13:20 +0000\r\n\
Message-ID: <m1@example.test>\r\n\
Received: from client.example.test (client [192.0.2.10]) by mail.example.test with ESMTP id 1;\r\n Tue, 14 Nov 2023 22:13:20 +0000\r\n\
MIME-Version: 1.0\r\n\
Content-Type: multipart/mixed; boundary=\"outer\"\r\n\
\r\n\
preamble\r\n\
--outer\r\n\
Content-Type: multipart/alternative; boundary=inner\r\n\
\r\n\
--inner\r\n\
Content-Type: text/plain; charset=utf-8\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\
\r\n\
Caf=C3=A9 see https://example.test/a?b=3D1 and www.example.test/x=\r\n\
 soft break\r\n\
--inner\r\n\
Content-Type: text/html; charset=iso-8859-1\r\n\
\r\n\
<p>Caf\u{e9} <a href=\"http://example.test/h\">link</a></p>\r\n\
--inner--\r\n\
--outer\r\n\
Content-Type: application/pdf; name=\"report.pdf\"\r\n\
Content-Disposition: attachment; filename*=UTF-8''r%C3%A9port.pdf\r\n\
Content-Transfer-Encoding: base64\r\n\
\r\n\
JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K\r\n\
--outer\r\n\
Content-Type: message/rfc822\r\n\
\r\n\
From: carol@example.test\r\n\
Subject: inner\r\n\
Content-Type: text/plain\r\n\
\r\n\
Forwarded body.\r\n\
--outer--\r\n\
epilogue\r\n";

fn mime_seeds(corpus: &mut Corpus) {
    let messages: [&[u8]; 6] = [
        MIME_MULTIPART.as_bytes(),
        b"Subject: plain\r\n\r\nJust text.\r\n",
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: multipart/mixed; boundary=c\r\n\r\n--c\r\n\r\nx\r\n--c--\r\n--b--\r\n",
        b"Content-Type: text/plain; charset=utf-7\r\nContent-Transfer-Encoding: 7bit\r\n\r\n+AGEAYgBj-\r\n",
        b"Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"a.bin\"\r\nContent-Transfer-Encoding: uuencode\r\n\r\nbegin 644 a.bin\r\n#86)C\r\n`\r\nend\r\n",
        b"From: a\r\nTo: b\r\nContent-Type: multipart/related; boundary=\"=_x\"; type=\"text/html\"\r\n\r\n--=_x\r\nContent-Type: text/html\r\n\r\n<img src=\"cid:1\">\r\n--=_x\r\nContent-ID: <1>\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n\r\niVBORw0KGgo=\r\n--=_x--\r\n",
    ];
    for (i, m) in messages.iter().enumerate() {
        for options in [COMPLETE | ATTACHMENTS, TIGHT | COMPLETE, 0] {
            let mut seed = vec![options, 13];
            seed.extend_from_slice(m);
            corpus.add("mime", &format!("synth{i}"), &seed);
        }
    }
}

/// A minimal TLS 1.2/1.3 ClientHello record naming `sni`.
fn client_hello(sni: &str) -> Vec<u8> {
    let mut ext = Vec::new();
    let name = sni.as_bytes();
    // server_name
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&((name.len() + 5) as u16).to_be_bytes());
    ext.extend_from_slice(&((name.len() + 3) as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(name.len() as u16).to_be_bytes());
    ext.extend_from_slice(name);
    // supported_groups x25519, secp256r1; ec_point_formats; signature_algorithms; ALPN; versions
    ext.extend_from_slice(&[0, 10, 0, 6, 0, 4, 0, 0x1d, 0, 0x17]);
    ext.extend_from_slice(&[0, 11, 0, 2, 1, 0]);
    ext.extend_from_slice(&[0, 13, 0, 6, 0, 4, 4, 3, 8, 4]);
    ext.extend_from_slice(&[0, 16, 0, 7, 0, 5, 4, b's', b'm', b't', b'p']);
    ext.extend_from_slice(&[0, 43, 0, 5, 4, 3, 4, 3, 3]);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 6, 0x13, 0x01, 0xc0, 0x2f, 0x0a, 0x0a]);
    body.extend_from_slice(&[1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    handshake_record(1, &body)
}

/// A TLS 1.2 ServerHello record choosing ECDHE-RSA-AES128-GCM-SHA256.
fn server_hello() -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend_from_slice(&[9; 32]);
    body.push(0);
    body.extend_from_slice(&[0xc0, 0x2f, 0]);
    let ext = [
        0xff, 0x01, 0, 1, 0, 0, 16, 0, 7, 0, 5, 4, b's', b'm', b't', b'p',
    ];
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    handshake_record(2, &body)
}

fn handshake_record(msg_type: u8, body: &[u8]) -> Vec<u8> {
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
    rec.push(msg_type);
    rec.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    rec.extend_from_slice(body);
    rec
}

fn tls_after_hello() -> (Vec<u8>, Vec<u8>) {
    let mut client = client_hello("mail.example.test");
    client.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
    client.extend_from_slice(&[0x17, 3, 3, 0, 4, 1, 2, 3, 4]);
    let mut server = server_hello();
    server.extend_from_slice(&[0x15, 3, 3, 0, 2, 1, 0]);
    server.extend_from_slice(&[0x14, 3, 3, 0, 1, 1]);
    server.extend_from_slice(&[0x17, 3, 3, 0, 3, 9, 9, 9]);
    (client, server)
}

fn b64(s: &[u8]) -> String {
    STANDARD.encode(s)
}

/// Scripted dialogues.
/// One side's turn: whether the client sends it, and the bytes.
type Turn = (bool, Vec<u8>);

/// A named dialogue, SMTP or not (POP3), as its turns.
type Dialogue = (&'static str, bool, Vec<Turn>);

fn dialogues() -> Vec<Dialogue> {
    let (tls_c, tls_s) = tls_after_hello();
    let c = |s: &str| (true, s.as_bytes().to_vec());
    let s = |s: &str| (false, s.as_bytes().to_vec());
    let message = format!("{MIME_MULTIPART}..stuffed line\r\n.\r\n");
    vec![
        (
            "smtp-auth-plain-mime",
            true,
            vec![
                s("220 mail.example.test ESMTP\r\n"),
                c("EHLO client.example.test\r\n"),
                s(
                    "250-mail.example.test\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250-AUTH PLAIN LOGIN CRAM-MD5\r\n250-STARTTLS\r\n250-CHUNKING\r\n250 8BITMIME\r\n",
                ),
                c(&format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0s3cret"))),
                s("235 2.7.0 Authentication successful\r\n"),
                c("MAIL FROM:<alice@example.test> SIZE=1000 BODY=8BITMIME\r\n"),
                s("250 2.1.0 Ok\r\n"),
                c("RCPT TO:<bob@example.test>\r\n"),
                s("250 2.1.5 Ok\r\n"),
                c("DATA\r\n"),
                s("354 End data with <CR><LF>.<CR><LF>\r\n"),
                c(&message),
                s("250 2.0.0 Ok: queued as ABC123\r\n"),
                c("QUIT\r\n"),
                s("221 2.0.0 Bye\r\n"),
            ],
        ),
        (
            "smtp-login-pipelining-bdat",
            true,
            vec![
                s("220 mail.example.test ESMTP\r\n"),
                c("EHLO c\r\n"),
                s("250-mail.example.test\r\n250-PIPELINING\r\n250-CHUNKING\r\n250 AUTH LOGIN\r\n"),
                c("AUTH LOGIN\r\n"),
                s(&format!("334 {}\r\n", b64(b"Username:"))),
                c(&format!("{}\r\n", b64(b"alice"))),
                s(&format!("334 {}\r\n", b64(b"Password:"))),
                c(&format!("{}\r\n", b64(b"pw"))),
                s("535 5.7.8 Error: authentication failed\r\n"),
                c(
                    "MAIL FROM:<>\r\nRCPT TO:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nBDAT 20\r\nSubject: x\r\n\r\nhello\r\nBDAT 0 LAST\r\n",
                ),
                s(
                    "250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n550 5.1.1 No such user\r\n250 2.0.0 20 octets\r\n250 2.0.0 queued\r\n",
                ),
                c("RSET\r\nNOOP\r\nVRFY bob\r\nHELP\r\nQUIT\r\n"),
                s("250 Ok\r\n250 Ok\r\n252 2.0.0 bob\r\n214 see rfc\r\n221 Bye\r\n"),
            ],
        ),
        (
            "smtp-cram-ntlm-starttls",
            true,
            vec![
                s("220-mail.example.test ESMTP\r\n220 second line\r\n"),
                c("HELO c\r\n"),
                s("250 mail.example.test\r\n"),
                c("AUTH CRAM-MD5\r\n"),
                s(&format!(
                    "334 {}\r\n",
                    b64(b"<1896.697170952@example.test>")
                )),
                c(&format!(
                    "{}\r\n",
                    b64(b"alice b913a602c7eda7a495b4e6e7334d3890")
                )),
                s("235 Ok\r\n"),
                c(&format!("AUTH NTLM {}\r\n", b64(&ntlm_type1()))),
                s(&format!("334 {}\r\n", b64(&ntlm_type2()))),
                c(&format!("{}\r\n", b64(&ntlm_type3()))),
                s("535 5.7.8 no\r\n"),
                c("AUTH XOAUTH2\r\n"),
                s("334 \r\n"),
                c(&format!(
                    "{}\r\n",
                    b64(b"user=alice@example.test\x01auth=Bearer ya29.tok\x01\x01")
                )),
                s("235 Ok\r\n"),
                c("STARTTLS\r\n"),
                s("220 2.0.0 Ready to start TLS\r\n"),
                (true, tls_c.clone()),
                (false, tls_s.clone()),
            ],
        ),
        (
            "pop3-user-retr",
            false,
            vec![
                s("+OK POP3 server ready <1896.697170952@example.test>\r\n"),
                c("CAPA\r\n"),
                s(
                    "+OK Capability list follows\r\nTOP\r\nUSER\r\nUIDL\r\nSASL PLAIN LOGIN CRAM-MD5\r\nSTLS\r\nPIPELINING\r\n.\r\n",
                ),
                c("USER alice\r\n"),
                s("+OK\r\n"),
                c("PASS s3cret\r\n"),
                s("+OK [AUTH] logged in\r\n"),
                c("STAT\r\nLIST\r\nUIDL\r\n"),
                s(
                    "+OK 2 320\r\n+OK 2 messages\r\n1 120\r\n2 200\r\n.\r\n+OK\r\n1 uid-one\r\n2 uid-two\r\n.\r\n",
                ),
                c("RETR 1\r\n"),
                s(
                    "+OK 120 octets\r\nSubject: one\r\nFrom: a@example.test\r\n\r\nBody line\r\n..dotted\r\n.\r\n",
                ),
                c("TOP 2 1\r\n"),
                s("+OK\r\nSubject: two\r\n\r\nfirst\r\n.\r\n"),
                c("DELE 1\r\nLIST 9\r\nQUIT\r\n"),
                s("+OK deleted\r\n-ERR [SYS/PERM] no such message\r\n+OK bye\r\n"),
            ],
        ),
        (
            "pop3-apop-auth-stls",
            false,
            vec![
                s("+OK ready <1896.697170952@example.test>\r\n"),
                c("APOP alice c4c9334bac560ecc979e58001b3e22fb\r\n"),
                s("-ERR [AUTH] bad\r\n"),
                c(&format!("AUTH PLAIN {}\r\n", b64(b"\0alice\0pw"))),
                s("-ERR no\r\n"),
                c("AUTH CRAM-MD5\r\n"),
                s(&format!("+ {}\r\n", b64(b"<12@example.test>"))),
                c(&format!(
                    "{}\r\n",
                    b64(b"alice 0123456789abcdef0123456789abcdef")
                )),
                s("+OK\r\n"),
                c("AUTH LOGIN\r\n"),
                s("+ VXNlcm5hbWU6\r\n"),
                c("*\r\n"),
                s("-ERR cancelled\r\n"),
                c("STLS\r\n"),
                s("+OK Begin TLS negotiation\r\n"),
                (true, tls_c),
                (false, tls_s),
            ],
        ),
    ]
}

fn ntlm_header(kind: u32) -> Vec<u8> {
    let mut m = b"NTLMSSP\0".to_vec();
    m.extend_from_slice(&kind.to_le_bytes());
    m
}

/// Appends a security buffer pointing at `data`, placed at `*offset` in the payload.
fn secbuf(head: &mut Vec<u8>, payload: &mut Vec<u8>, offset: &mut u32, data: &[u8]) {
    let len = data.len() as u16;
    head.extend_from_slice(&len.to_le_bytes());
    head.extend_from_slice(&len.to_le_bytes());
    head.extend_from_slice(&offset.to_le_bytes());
    payload.extend_from_slice(data);
    *offset += u32::from(len);
}

fn ntlm_type1() -> Vec<u8> {
    let mut m = ntlm_header(1);
    m.extend_from_slice(&0x0008_8207u32.to_le_bytes());
    let mut payload = Vec::new();
    let mut offset = 32;
    secbuf(&mut m, &mut payload, &mut offset, b"DOMAIN");
    secbuf(&mut m, &mut payload, &mut offset, b"WS");
    m.extend_from_slice(&payload);
    m
}

fn ntlm_type2() -> Vec<u8> {
    let mut m = ntlm_header(2);
    let mut payload = Vec::new();
    let mut offset = 48;
    let target: Vec<u8> = "DOMAIN".encode_utf16().flat_map(u16::to_le_bytes).collect();
    secbuf(&mut m, &mut payload, &mut offset, &target);
    m.extend_from_slice(&0x0089_8205u32.to_le_bytes());
    m.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
    m.extend_from_slice(&[0; 8]);
    let mut info = vec![2, 0];
    info.extend_from_slice(&(target.len() as u16).to_le_bytes());
    info.extend_from_slice(&target);
    info.extend_from_slice(&[0, 0, 0, 0]);
    secbuf(&mut m, &mut payload, &mut offset, &info);
    m.extend_from_slice(&payload);
    m
}

fn ntlm_type3() -> Vec<u8> {
    let utf16 = |s: &str| -> Vec<u8> { s.encode_utf16().flat_map(u16::to_le_bytes).collect() };
    let mut m = ntlm_header(3);
    let mut payload = Vec::new();
    let mut offset = 64;
    let mut nt = vec![0x11; 16];
    nt.extend_from_slice(&[1, 1, 0, 0, 0, 0, 0, 0]);
    nt.extend_from_slice(&[0; 8]);
    nt.extend_from_slice(&[0x22; 8]);
    nt.extend_from_slice(&[0; 4]);
    secbuf(&mut m, &mut payload, &mut offset, &[0x33; 24]);
    secbuf(&mut m, &mut payload, &mut offset, &nt);
    secbuf(&mut m, &mut payload, &mut offset, &utf16("DOMAIN"));
    secbuf(&mut m, &mut payload, &mut offset, &utf16("alice"));
    secbuf(&mut m, &mut payload, &mut offset, &utf16("WS"));
    secbuf(&mut m, &mut payload, &mut offset, &[]);
    m.extend_from_slice(&0x0088_8205u32.to_le_bytes());
    m.extend_from_slice(&payload);
    m
}

fn sasl_seeds(corpus: &mut Corpus) {
    let idx = |name: &str| MECHANISMS.iter().position(|m| *m == name).unwrap_or(0);
    let success = 1 << 2;
    let failure = 2 << 2;
    let mut add = |name: &str, w: &ExchangeWriter| corpus.add("sasl", name, &w.bytes);

    let mut w = ExchangeWriter::new(idx("PLAIN"), 2 | success);
    w.encoded(Side::Client, b"admin\0alice\0s3cret");
    add("plain", &w);
    let mut w = ExchangeWriter::new(idx("PLAIN"), failure);
    w.raw(Side::Server, b"")
        .encoded(Side::Client, b"\0al\xffice\0pw\\d");
    add("plain-escaped", &w);

    let mut w = ExchangeWriter::new(idx("LOGIN"), success);
    w.encoded(Side::Server, b"Username:")
        .encoded(Side::Client, b"alice")
        .encoded(Side::Server, b"Password:")
        .encoded(Side::Client, b"s3cret");
    add("login", &w);
    let mut w = ExchangeWriter::new(idx("LOGIN"), 0);
    w.encoded(Side::Server, b"Username:")
        .raw(Side::Client, b"*");
    add("login-cancel", &w);

    let mut w = ExchangeWriter::new(idx("CRAM-MD5"), success);
    w.encoded(Side::Server, b"<1896.697170952@example.test>")
        .encoded(Side::Client, b"alice b913a602c7eda7a495b4e6e7334d3890");
    add("cram", &w);

    let mut w = ExchangeWriter::new(idx("DIGEST-MD5"), success);
    w.encoded(Side::Server, b"realm=\"example.test\",nonce=\"OA6MG9tEQGm2hh\",qop=\"auth,auth-int\",algorithm=md5-sess,charset=utf-8")
        .encoded(Side::Client, b"charset=utf-8,username=\"chris\",realm=\"example.test\",nonce=\"OA6MG9tEQGm2hh\",nc=00000001,cnonce=\"OA6MHXh6VqTrRk\",digest-uri=\"smtp/example.test\",response=d388dad90d4bbd760a152321f2143af7,qop=auth")
        .encoded(Side::Server, b"rspauth=ea40f60335c427b5527b84dbabcdfffd")
        .raw(Side::Client, b"");
    add("digest", &w);

    let mut w = ExchangeWriter::new(idx("NTLM"), 2 | failure);
    w.encoded(Side::Client, &ntlm_type1())
        .encoded(Side::Server, &ntlm_type2())
        .encoded(Side::Client, &ntlm_type3());
    add("ntlm", &w);

    let mut w = ExchangeWriter::new(idx("XOAUTH2"), 2 | success);
    w.encoded(
        Side::Client,
        b"user=alice@example.test\x01auth=Bearer ya29.tok\x01\x01",
    );
    add("xoauth2", &w);
    let mut w = ExchangeWriter::new(idx("OAUTHBEARER"), 2 | failure);
    w.encoded(
        Side::Client,
        b"n,a=alice@example.test,\x01host=mail.example.test\x01port=587\x01auth=Bearer tok\x01\x01",
    )
    .encoded(Side::Server, b"{\"status\":\"invalid_token\"}")
    .encoded(Side::Client, b"\x01");
    add("oauthbearer", &w);

    let mut w = ExchangeWriter::new(idx("SCRAM-SHA-256"), success);
    w.raw(Side::Server, b"")
        .encoded(Side::Client, b"n,,n=alice,r=rOprNGfwEbeRWgbNEkqO")
        .encoded(Side::Server, b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096")
        .encoded(Side::Client, b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
        .encoded(Side::Server, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    add("scram", &w);

    let mut w = ExchangeWriter::new(idx("GSSAPI"), 0);
    w.encoded(
        Side::Client,
        &[0x60, 0x82, 0x01, 0x00, 0x06, 0x09, 0x2a, 0x86, 0x48],
    )
    .encoded(Side::Server, &[0x60, 0x10]);
    add("gssapi", &w);
    let mut w = ExchangeWriter::new(idx("EXTERNAL"), 2 | success);
    w.raw(Side::Client, b"=");
    add("external", &w);
    let mut w = ExchangeWriter::new(MECHANISMS.len(), 0);
    w.bytes.insert(1, 5);
    w.bytes.splice(2..2, b"X-ODD".iter().copied());
    w.raw(Side::Client, b"not base64 !!")
        .raw(Side::Server, b"===");
    add("custom", &w);
}

fn line_seeds(corpus: &mut Corpus) {
    let streams: [&[u8]; 4] = [
        b"EHLO a\r\nMAIL FROM:<x>\r\n\r\nbare\nlf\r\r\ncr-only\rend",
        b"a very long line that goes on and on beyond any small cap\r\nshort\r\n",
        b"\r\n\n\r\r\n\r",
        b"+OK\r\n1 2\r\n.\r\n",
    ];
    for (i, s) in streams.iter().enumerate() {
        for (cap, sizes) in [(0u8, &[][..]), (8, &[1u8][..]), (16, &[3, 1, 7][..])] {
            let mut seed = vec![cap, sizes.len() as u8];
            seed.extend_from_slice(sizes);
            seed.extend_from_slice(s);
            corpus.add("line", &format!("synth{i}"), &seed);
        }
    }
}

/// Splits the IPv4 packet in an Ethernet frame into two fragments at `at` payload bytes.
fn fragment(frame: &[u8], at: usize) -> Option<[Vec<u8>; 2]> {
    let (eth, rest) = frame.split_at(14);
    let ihl = usize::from(rest.first()? & 0x0f) * 4;
    let (ip, payload) = rest.split_at(ihl);
    if payload.len() <= at || !at.is_multiple_of(8) {
        return None;
    }
    let piece = |data: &[u8], offset: usize, more: bool| {
        let mut h = ip.to_vec();
        h[2..4].copy_from_slice(&((ihl + data.len()) as u16).to_be_bytes());
        let field = ((offset / 8) as u16) | if more { 0x2000 } else { 0 };
        h[6..8].copy_from_slice(&field.to_be_bytes());
        h[10..12].copy_from_slice(&[0, 0]);
        let sum = h
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum::<u32>();
        let folded = (sum & 0xffff) + (sum >> 16);
        let folded = (folded & 0xffff) + (folded >> 16);
        h[10..12].copy_from_slice(&(!(folded as u16)).to_be_bytes());
        let mut out = eth.to_vec();
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out
    };
    Some([
        piece(&payload[..at], 0, true),
        piece(&payload[at..], at, false),
    ])
}

/// A client's and a server's bytes.
type Exchange<'a> = (&'a [u8], &'a [u8]);

/// Proxy handshakes, each followed by a short SMTP or POP3 dialogue, for the `tunnel` target.
fn tunnel_seeds(corpus: &mut Corpus) {
    let smtp: Exchange = (
        b"EHLO client.example\r\nQUIT\r\n",
        b"220 mx.example ESMTP\r\n250 mx.example\r\n221 bye\r\n",
    );
    let pop3: Exchange = (
        b"USER bob\r\nPASS Builder-7\r\nQUIT\r\n",
        b"+OK ready\r\n+OK\r\n+OK logged in\r\n+OK bye\r\n",
    );
    let handshakes: [(&str, &[u8], &[u8], Exchange); 6] = [
        (
            "http-connect-basic",
            b"CONNECT mail.example:587 HTTP/1.1\r\nProxy-Authorization: Basic cHJveHl1c2VyOnB3\r\n\r\n",
            b"HTTP/1.1 200 Connection established\r\n\r\n",
            smtp,
        ),
        (
            "http-connect-407",
            b"CONNECT 192.0.2.25:110 HTTP/1.1\r\n\r\n",
            b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
            (b"", b""),
        ),
        (
            "socks4",
            b"\x04\x01\x00\x6e\xc0\x00\x02\x19alice\x00",
            b"\x00\x5a\0\0\0\0\0\0",
            pop3,
        ),
        (
            "socks4a",
            b"\x04\x01\x09\xdd\0\0\0\x01\x00mail.example\x00",
            b"\x00\x5a\0\0\0\0\0\0",
            smtp,
        ),
        (
            "socks5-login",
            b"\x05\x02\x00\x02\x01\x09proxyuser\x02pw\x05\x01\x00\x03\x0cmail.example\x00\x6e",
            b"\x05\x02\x01\x00\x05\x00\x00\x01\xc0\x00\x02\x01\xd0\xe6",
            pop3,
        ),
        (
            "socks5-refused",
            b"\x05\x01\x00\x05\x01\x00\x01\xc0\x00\x02\x19\x00\x19",
            b"\x05\x00\x05\x02\x00\x01\0\0\0\0\0\0",
            (b"", b""),
        ),
    ];
    for (name, client, server, (inner_c, inner_s)) in handshakes {
        let ops = [
            OwnedOp::Data(Direction::Client, [client, inner_c].concat()),
            OwnedOp::Data(Direction::Server, [server, inner_s].concat()),
            OwnedOp::Fin(Direction::Client),
            OwnedOp::Fin(Direction::Server),
        ];
        corpus.add("tunnel", name, &encode_ops(0, &ops));
    }
}

fn conversation_seeds(corpus: &mut Corpus) {
    for (name, smtp, turns) in dialogues() {
        let port = if smtp { 25 } else { 110 };
        let target = if smtp { "smtp_session" } else { "pop3_session" };
        let ops: Vec<OwnedOp> = turns
            .iter()
            .map(|(client, text)| {
                let dir = if *client {
                    Direction::Client
                } else {
                    Direction::Server
                };
                OwnedOp::Data(dir, text.clone())
            })
            .collect();
        corpus.add(
            target,
            name,
            &encode_ops(SessionConfig::KEEP_MESSAGES, &ops),
        );
        corpus.add(target, &format!("{name}-tight"), &encode_ops(0x1f, &ops));
        let mut gapped = ops.clone();
        gapped.insert(gapped.len() / 2, OwnedOp::Gap(Direction::Client, 7));
        gapped.push(OwnedOp::Fin(Direction::Client));
        corpus.add(target, &format!("{name}-gap"), &encode_ops(0, &gapped));
        if let Some(tls) = tls_ops(&ops) {
            corpus.add("tls_observer", name, &encode_ops(0, &tls));
        }

        let mut conv = Conversation::new(
            "192.0.2.10:40000".parse().expect("address"),
            SocketAddr::new("192.0.2.20".parse().expect("address"), port),
        );
        let mut conv6 = Conversation::new(
            "[2001:db8::10]:40001".parse().expect("address"),
            SocketAddr::new("2001:db8::20".parse().expect("address"), port),
        )
        .vlans(&[7])
        .isn(u32::MAX - 40, 7);
        for (client, text) in &turns {
            conv = if *client {
                conv.client(text)
            } else {
                conv.server(text)
            };
            conv6 = if *client {
                conv6.client(text)
            } else {
                conv6.server(text)
            };
        }
        let packets = conv.clone().mss(96).packets();
        corpus.add("pipeline", name, &pcap_bytes(&packets));
        corpus.add("capture_file", name, &pcap_bytes(&packets));
        let mut shuffled = duplicate_every(&packets, 5);
        reorder(&mut shuffled, 4, 11, false);
        corpus.add(
            "pipeline",
            &format!("{name}-reordered"),
            &pcap_bytes(&shuffled),
        );
        corpus.add(
            "pipeline",
            &format!("{name}-v6"),
            &pcap_bytes(&conv6.without_handshake().mss(300).packets()),
        );

        let mut fragmented: Vec<SynthPacket> = Vec::new();
        let mut decode_seed = vec![0u8];
        for p in conv.packets() {
            match p.has_payload.then(|| fragment(&p.data, 24)).flatten() {
                Some([a, b]) => {
                    for (i, data) in [b, a].into_iter().enumerate() {
                        push_record(&mut decode_seed, 0, 0, 0, &data);
                        fragmented.push(SynthPacket {
                            ts: mailsift::time::Timestamp(p.ts.0 + i as i64),
                            orig_len: data.len() as u32,
                            data,
                            ..p.clone()
                        });
                    }
                }
                None => fragmented.push(p),
            }
        }
        corpus.add("decode", &format!("{name}-fragments"), &decode_seed);
        let mut w = PcapWriter::new(Vec::new(), 1).expect("pcap to memory");
        w.packets(&fragmented).expect("pcap to memory");
        corpus.add(
            "pipeline",
            &format!("{name}-fragments"),
            &w.finish().expect("pcap to memory"),
        );
    }
}

fn reassembly_seeds(corpus: &mut Corpus) {
    for (buffer, history) in [(0, 0), (2, 1), (5, 2)] {
        let mut w = ReasmWriter::new(buffer, history, true, 2, u32::MAX - 100);
        w.syn(0)
            .relative(0, 50, false)
            .relative(100, 30, false)
            .relative(-80, 60, false)
            .relative(-10, 40, true)
            .ack(u32::MAX.wrapping_add(300))
            .flush();
        corpus.add("reassembly", "consistent", &w.bytes);
    }
    let mut w = ReasmWriter::new(3, 2, false, 0, 1000);
    w.segment(1010, b"later", 0, false, false)
        .segment(1001, b"first....", 4, false, false)
        .segment(1001, b"FIRST", 0, false, false)
        .ack(1020)
        .segment(1015, b"", 0, true, false);
    corpus.add("reassembly", "no-syn", &w.bytes);
}

/// Capture files under `dir`, at any depth.
fn capture_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for path in entries.filter_map(|e| e.ok().map(|e| e.path())) {
        if path.is_dir() {
            capture_files(&path, out);
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("pcap" | "pcapng" | "cap" | "gz")
        ) {
            out.push(path);
        }
    }
}

fn main() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = manifest.join("corpus");
    let mut capture_dirs = vec![manifest.join("../captures")];
    let mut extra = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--captures" {
            if let Some(dir) = args.next() {
                extra.push(PathBuf::from(dir));
            }
        } else {
            out = PathBuf::from(arg);
        }
    }
    capture_dirs.extend(extra);
    let mut corpus = Corpus {
        root: out,
        written: BTreeMap::new(),
    };
    for dir in &capture_dirs {
        let mut paths = Vec::new();
        capture_files(dir, &mut paths);
        if paths.is_empty() {
            eprintln!("seeds: no capture files under {}", dir.display());
        }
        paths.sort();
        for path in paths {
            capture_seeds(&mut corpus, &path, true);
        }
    }
    conversation_seeds(&mut corpus);
    tunnel_seeds(&mut corpus);
    mime_seeds(&mut corpus);
    sasl_seeds(&mut corpus);
    line_seeds(&mut corpus);
    reassembly_seeds(&mut corpus);
    for (target, n) in &corpus.written {
        println!(
            "{target}: {n} seeds in {}",
            corpus.root.join(target).display()
        );
    }
}
