//! Decryption of the bundled TLS captures with their key logs, end to end: the crate's own
//! capture reader, decoder and TCP reassembler give each direction's stream, the handshake
//! parser gives the session parameters, and the `Decryptor` must open every record.
//!
//! This pins the hand check that the plaintext equals tshark's `follow,tls,raw`; where tshark
//! is installed the test repeats that comparison byte for byte.

use mailsift::capture::PacketSource;
use mailsift::capture::file::FileSource;
use mailsift::direction::Direction;
use mailsift::limits::Limits;
use mailsift::net::decode::{Decoded, Decoder};
use mailsift::net::flow::FlowKey;
use mailsift::net::reassembly::{Chunk, Reassembler};
use mailsift::proto::tls::decrypt::{Decryptor, Plaintext, SessionParams};
use mailsift::proto::tls::handshake::{ClientHello, ServerHello};
use mailsift::proto::tls::keylog::KeyLog;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Ports the server side listens on in the bundled captures.
const SERVER_PORTS: [u16; 5] = [25, 110, 465, 587, 995];

/// One TCP connection's two reassembled streams, in capture order of first packet (the order
/// tshark numbers `tcp.stream`).
struct Connection {
    key: FlowKey,
    server_port: u16,
    client: Reassembler,
    server: Reassembler,
    client_bytes: Vec<u8>,
    server_bytes: Vec<u8>,
}

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("captures")
        .join(name)
}

/// Collects the chunks the reassembler delivers; a gap would make the plaintext meaningless.
fn sink(bytes: &mut Vec<u8>) -> impl FnMut(Chunk<'_>) + '_ {
    move |c| match c {
        Chunk::Data { bytes: b, .. } => bytes.extend_from_slice(b),
        Chunk::Gap { len, .. } => panic!("{len}-byte gap in a loopback capture"),
        Chunk::Fin { .. } => {}
    }
}

/// Every TCP connection of `pcap`, reassembled by the crate's `Reassembler`.
fn connections(pcap: &Path) -> Vec<Connection> {
    let mut source = FileSource::open(pcap).expect("open capture");
    let mut decoder = Decoder::new(&Limits::default());
    let mut conns: Vec<Connection> = Vec::new();
    while let Some(pkt) = source.next_packet().expect("read packet") {
        let Decoded::Tcp(seg) = decoder.decode(&pkt).expect("decode") else {
            continue;
        };
        let key = FlowKey::new((seg.src, seg.src_port), (seg.dst, seg.dst_port));
        let idx = match conns.iter().position(|c| c.key == key) {
            Some(i) => i,
            None => {
                let server_port = if SERVER_PORTS.contains(&seg.dst_port) {
                    seg.dst_port
                } else {
                    seg.src_port
                };
                conns.push(Connection {
                    key,
                    server_port,
                    client: Reassembler::new(1 << 22, 8),
                    server: Reassembler::new(1 << 22, 8),
                    client_bytes: Vec::new(),
                    server_bytes: Vec::new(),
                });
                conns.len() - 1
            }
        };
        let c = &mut conns[idx];
        let (stream, bytes) = if seg.src_port == c.server_port {
            (&mut c.server, &mut c.server_bytes)
        } else {
            (&mut c.client, &mut c.client_bytes)
        };
        if seg.flags.syn {
            stream.syn(seg.seq);
        }
        stream.segment(
            seg.seq,
            seg.payload,
            seg.missing,
            seg.flags.fin,
            pkt.ts,
            &mut sink(bytes),
        );
    }
    for c in &mut conns {
        let ts = mailsift::time::Timestamp(i64::MAX);
        c.client.flush(ts, &mut sink(&mut c.client_bytes));
        c.server.flush(ts, &mut sink(&mut c.server_bytes));
    }
    conns
}

/// Where TLS starts in the client stream: byte 0, or just past the STARTTLS/STLS line.
fn client_tls_start(stream: &[u8], implicit: bool) -> usize {
    if implicit {
        return 0;
    }
    let mut at = 0;
    for line in stream.split_inclusive(|&b| b == b'\n') {
        at += line.len();
        let cmd = line.trim_ascii_end().to_ascii_uppercase();
        if cmd == b"STARTTLS" || cmd == b"STLS" {
            assert_eq!(stream.get(at), Some(&0x16), "handshake follows the command");
            return at;
        }
    }
    panic!("no STARTTLS/STLS command in the client stream");
}

/// Where TLS starts in the server stream: byte 0, or the first 0x16 that begins a line right
/// after a `220 `/`+OK` reply (clear-text replies never start with 0x16).
fn server_tls_start(stream: &[u8], implicit: bool) -> usize {
    if implicit {
        return 0;
    }
    let mut at = 0;
    let mut previous: &[u8] = b"";
    while at < stream.len() {
        if stream[at] == 0x16 && (previous.starts_with(b"220 ") || previous.starts_with(b"+OK")) {
            return at;
        }
        let end = stream[at..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(stream.len(), |p| at + p + 1);
        previous = &stream[at..end];
        at = end;
    }
    panic!("no TLS after a 220/+OK reply in the server stream");
}

/// The body of the first handshake message in `stream`, joined across records if it spans them.
fn first_handshake(stream: &[u8], msg_type: u8) -> Vec<u8> {
    let mut joined = Vec::new();
    let mut at = 0;
    loop {
        let header = &stream[at..at + 5];
        assert_eq!(header[0], 0x16, "handshake record expected");
        let len = u16::from_be_bytes([header[3], header[4]]) as usize;
        joined.extend_from_slice(&stream[at + 5..at + 5 + len]);
        at += 5 + len;
        if joined.len() >= 4 {
            assert_eq!(joined[0], msg_type, "unexpected handshake message");
            let body_len = u32::from_be_bytes([0, joined[1], joined[2], joined[3]]) as usize;
            if joined.len() >= 4 + body_len {
                return joined[4..4 + body_len].to_vec();
            }
        }
    }
}

/// What one connection decrypted to.
struct Outcome {
    client_plain: Vec<u8>,
    server_plain: Vec<u8>,
    failed: u64,
    decrypted: u64,
}

/// Decrypts the TLS part of `conn` with `keylog`.
fn decrypt(conn: &Connection, keylog: &KeyLog, implicit: bool) -> Outcome {
    let client = &conn.client_bytes[client_tls_start(&conn.client_bytes, implicit)..];
    let server = &conn.server_bytes[server_tls_start(&conn.server_bytes, implicit)..];
    let ch_body = first_handshake(client, 1);
    let sh_body = first_handshake(server, 2);
    let ch = ClientHello::parse(&ch_body).expect("ClientHello");
    let sh = ServerHello::parse(&sh_body).expect("ServerHello");
    let params = SessionParams::from_hellos(&ch, &sh);
    let mut dec = Decryptor::new(&params, keylog).expect("key log holds this session");
    let mut out = Outcome {
        client_plain: Vec::new(),
        server_plain: Vec::new(),
        failed: 0,
        decrypted: 0,
    };
    // Fed in 1000-byte pieces, which cut records apart, so framing across chunks is exercised.
    for (dir, bytes) in [(Direction::Client, client), (Direction::Server, server)] {
        for piece in bytes.chunks(1000) {
            for p in dec.feed(dir, piece) {
                if let Plaintext::ApplicationData(d) = p {
                    match dir {
                        Direction::Client => out.client_plain.extend(d),
                        Direction::Server => out.server_plain.extend(d),
                    }
                }
            }
        }
        let stats = dec.stats(dir);
        assert!(!stats.desync, "{dir:?} stream lost record framing");
        out.failed += stats.failed;
        out.decrypted += stats.decrypted;
    }
    out
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// tshark's `follow,tls,raw` plaintext of stream `index` as (client, server), or `None` without
/// tshark. Unindented lines come from node 0, tab-indented ones from node 1.
fn tshark_plaintext(pcap: &Path, keys: &Path, index: usize) -> Option<(Vec<u8>, Vec<u8>)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(pcap)
        .arg("-o")
        .arg(format!("tls.keylog_file:{}", keys.display()))
        .args(["-q", "-z", &format!("follow,tls,raw,{index}")])
        .output()
        .ok()?;
    assert!(out.status.success(), "tshark failed on {}", pcap.display());
    let text = String::from_utf8(out.stdout).expect("tshark output is text");
    let mut node0_is_server = None;
    let (mut node0, mut node1) = (Vec::new(), Vec::new());
    for line in text.lines() {
        if let Some(addr) = line.strip_prefix("Node 0: ") {
            let port: u16 = addr.rsplit(':').next()?.parse().ok()?;
            node0_is_server = Some(SERVER_PORTS.contains(&port));
        } else if let Some(h) = line.strip_prefix('\t') {
            node1.extend(hex(h.trim()));
        } else if !line.is_empty() && line.bytes().all(|b| b.is_ascii_hexdigit()) {
            node0.extend(hex(line));
        }
    }
    // The port decides which node is the server: tshark names node 0 after the first sender.
    match node0_is_server.expect("tshark names node 0") {
        true => Some((node1, node0)),
        false => Some((node0, node1)),
    }
}

fn have_tshark() -> bool {
    Command::new("tshark").arg("-v").output().is_ok()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    let hay = hay.to_ascii_uppercase();
    let needle = needle.to_ascii_uppercase();
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Decrypts every connection of `name` and checks commands, replies and tshark's plaintext.
fn check(name: &str, implicit: bool, client_cmds: &[&str], server_replies: &[&str]) {
    let pcap = capture(&format!("{name}.pcap"));
    let keys = capture(&format!("{name}.keys"));
    let mut keylog = KeyLog::new();
    let warnings = keylog.load_file(&keys).expect("load key log");
    assert!(warnings.is_empty(), "key log warnings: {warnings:?}");
    let conns = connections(&pcap);
    assert!(!conns.is_empty(), "{name}: no connections");
    let tshark = have_tshark();
    if !tshark {
        println!("note: tshark not installed; skipping the byte comparison for {name}");
    }
    for (index, conn) in conns.iter().enumerate() {
        let out = decrypt(conn, &keylog, implicit);
        assert_eq!(out.failed, 0, "{name}#{index}: records failed");
        assert!(out.decrypted > 0, "{name}#{index}: nothing decrypted");
        assert!(
            !out.client_plain.is_empty(),
            "{name}#{index}: no client data"
        );
        assert!(
            !out.server_plain.is_empty(),
            "{name}#{index}: no server data"
        );
        for cmd in client_cmds {
            assert!(contains(&out.client_plain, cmd), "{name}#{index}: no {cmd}");
        }
        for reply in server_replies {
            assert!(
                contains(&out.server_plain, reply),
                "{name}#{index}: no {reply}"
            );
        }
        if tshark {
            let (c, s) = tshark_plaintext(&pcap, &keys, index).expect("tshark output");
            assert!(
                out.client_plain == c,
                "{name}#{index}: client plaintext differs"
            );
            assert!(
                out.server_plain == s,
                "{name}#{index}: server plaintext differs"
            );
        }
    }
}

#[test]
fn smtps_465_decrypts() {
    check(
        "smtps-465",
        true,
        &["EHLO", "AUTH PLAIN", "MAIL FROM", "RCPT TO", "DATA", "QUIT"],
        &["220 ", "250", "235 ", "354 "],
    );
}

#[test]
fn smtp_starttls_decrypts() {
    // Port 25 uses AUTH PLAIN, port 587 AUTH LOGIN; "AUTH" covers both connections.
    check(
        "smtp-starttls",
        false,
        &["EHLO", "AUTH", "MAIL FROM", "RCPT TO", "DATA", "QUIT"],
        &["250", "235 ", "354 "],
    );
}

#[test]
fn pop3_stls_decrypts() {
    check(
        "pop3-stls",
        false,
        &["CAPA", "USER", "PASS", "STAT", "QUIT"],
        &["+OK"],
    );
}

#[test]
fn pop3s_995_decrypts() {
    check(
        "pop3s-995",
        true,
        &["USER", "PASS", "STAT", "LIST", "QUIT"],
        &["+OK"],
    );
}

/// Flips one bit of the first hex digit of every secret, keeping the client randoms intact so
/// the sessions are still found but no key is right.
fn corrupt(keys: &str) -> String {
    let mut out = String::new();
    for line in keys.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        if fields.len() == 3 && !line.starts_with('#') {
            let mut secret: Vec<char> = fields[2].chars().collect();
            let d = secret[0].to_digit(16).expect("hex secret") ^ 1;
            secret[0] = char::from_digit(d, 16).expect("hex digit");
            let secret: String = secret.into_iter().collect();
            out.push_str(&format!("{} {} {secret}\n", fields[0], fields[1]));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn altered_secrets_fail_authentication() {
    for (name, implicit) in [
        ("smtps-465", true),
        ("smtp-starttls", false),
        ("pop3-stls", false),
        ("pop3s-995", true),
    ] {
        let text = std::fs::read_to_string(capture(&format!("{name}.keys"))).expect("keys");
        let mut keylog = KeyLog::new();
        let warnings = keylog.load_str(name, &corrupt(&text));
        assert!(
            warnings.is_empty(),
            "{name}: corrupted key log still parses"
        );
        for (index, conn) in connections(&capture(&format!("{name}.pcap")))
            .iter()
            .enumerate()
        {
            let out = decrypt(conn, &keylog, implicit);
            assert!(
                out.failed > 0,
                "{name}#{index}: wrong keys opened every record"
            );
            assert!(
                out.client_plain.is_empty(),
                "{name}#{index}: client plaintext"
            );
            assert!(
                out.server_plain.is_empty(),
                "{name}#{index}: server plaintext"
            );
        }
    }
}
