//! Writes the crafted captures of `captures/crafted-*.pcap`: sessions real clients and servers
//! cannot be made to produce, scripted with mailsift's own capture synthesiser.
//!
//! Usage: `cargo run --example crafted_captures -- DIR` (the bundled ones: `captures`). The same
//! code always writes the same bytes; `tests/crafted.rs` checks the bundled files against it.
//!
//! - `crafted-tls-cleartext.pcap`: STARTTLS accepted, then both sides go on in clear text; commands
//!   injected before a TLS handshake; STLS accepted, then clear text; clear-text SMTP on 465 and
//!   POP3 on 995.
//! - `crafted-missing-greeting.pcap`: SMTP and POP3 picked up mid-session (no handshake, no
//!   greeting; POP3's first reply is a CAPA list), and a POP3 session whose greeting segment
//!   was lost.
//! - `crafted-broken-listing.pcap`: POP3 LIST and UIDL listings that never end with `.`, with a
//!   junk line, followed by RETR, DELE and QUIT.
//! - `crafted-data-gaps.pcap`: SMTP sessions with lost segments: the CRLF before the final
//!   `.`, the CRLF and the `.`, the whole end-of-data line, and a client command whose reply
//!   was captured.

use mailsift::capture::synth::{Conversation, PcapWriter, SynthPacket};
use mailsift::time::Timestamp;
use std::net::SocketAddr;
use std::path::Path;

/// Every crafted capture: its file name and its packets.
pub fn crafted_captures() -> Vec<(&'static str, Vec<SynthPacket>)> {
    vec![
        ("crafted-tls-cleartext.pcap", tls_cleartext()),
        ("crafted-missing-greeting.pcap", missing_greeting()),
        ("crafted-broken-listing.pcap", broken_listing()),
        ("crafted-data-gaps.pcap", data_gaps()),
    ]
}

/// A conversation between client port `client_port` and `server`, starting `minute` minutes
/// into the capture (so sessions follow each other in time).
fn conversation(client_port: u16, server: &str, minute: i64) -> Conversation {
    let client: SocketAddr = format!("192.0.2.10:{client_port}")
        .parse()
        .expect("address");
    let server: SocketAddr = server.parse().expect("address");
    Conversation::new(client, server).start(Timestamp::from_parts(1_767_225_600 + minute * 60, 0))
}

/// The packets of `conv` without the first segment that carries exactly `lost`: a segment the
/// capture missed (the receiver's acknowledgement after it still shows it was sent).
fn without_segment(conv: &Conversation, lost: &[u8]) -> Vec<SynthPacket> {
    let mut packets = conv.packets();
    if let Some(i) = packets.iter().position(|p| tcp_payload(p) == Some(lost)) {
        packets.remove(i);
    }
    packets
}

/// The TCP payload a synthetic frame carries.
fn tcp_payload(p: &SynthPacket) -> Option<&[u8]> {
    let sliced = etherparse::SlicedPacket::from_ethernet(&p.data).ok()?;
    match sliced.transport? {
        etherparse::TransportSlice::Tcp(tcp) => Some(tcp.payload()),
        _ => None,
    }
}

const MESSAGE: &str = "From: Alice <alice@example.test>\r\nTo: Bob <bob@example.test>\r\n\
Subject: crafted\r\nMessage-ID: <crafted-1@example.test>\r\n\r\nHello Bob.\r\n";

/// The bytes of a minimal TLS ClientHello record (TLS 1.2, one suite, no extensions).
pub fn client_hello_record() -> Vec<u8> {
    let mut body = vec![0x03, 0x03];
    body.extend_from_slice(&[0x42; 32]); // random
    body.push(0); // session id
    body.extend_from_slice(&[0x00, 0x02, 0xc0, 0x2f]); // one cipher suite
    body.extend_from_slice(&[0x01, 0x00]); // null compression
    let mut hs = vec![0x01, 0x00, 0x00, body.len() as u8];
    hs.extend_from_slice(&body);
    let mut record = vec![0x16, 0x03, 0x01, 0x00, hs.len() as u8];
    record.extend_from_slice(&hs);
    record
}

fn tls_cleartext() -> Vec<SynthPacket> {
    let stripped = conversation(40001, "192.0.2.25:25", 0)
        .server("220 mx.example.test ESMTP\r\n")
        .client("EHLO client.example.test\r\n")
        .server("250-mx.example.test\r\n250-STARTTLS\r\n250 AUTH PLAIN LOGIN\r\n")
        .client("STARTTLS\r\n")
        .server("220 2.0.0 Ready to start TLS\r\n")
        .client("EHLO client.example.test\r\n")
        .server("250-mx.example.test\r\n250 AUTH PLAIN LOGIN\r\n")
        .client("AUTH PLAIN AGFsaWNlAFdvbmRlcmxhbmQtNDI=\r\n")
        .server("235 2.7.0 Authentication successful\r\n")
        .client("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        .server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
        .client(format!("{MESSAGE}.\r\n"))
        .server("250 2.0.0 Ok: queued\r\n")
        .client("QUIT\r\n")
        .server("221 2.0.0 Bye\r\n");
    let injected = conversation(40002, "192.0.2.25:25", 1)
        .server("220 mx.example.test ESMTP\r\n")
        .client("EHLO client.example.test\r\n")
        .server("250-mx.example.test\r\n250 STARTTLS\r\n")
        .client("STARTTLS\r\nRSET\r\nMAIL FROM:<mallory@example.test>\r\n")
        .server("220 2.0.0 Ready to start TLS\r\n")
        .client(client_hello_record());
    let stls = conversation(40003, "192.0.2.110:110", 2)
        .server("+OK POP3 ready\r\n")
        .client("CAPA\r\n")
        .server("+OK\r\nSTLS\r\nUSER\r\n.\r\n")
        .client("STLS\r\n")
        .server("+OK Begin TLS negotiation now\r\n")
        .client("USER bob\r\n")
        .server("+OK\r\n")
        .client("PASS Builder-7\r\n")
        .server("+OK Logged in\r\n")
        .client("RETR 1\r\n")
        .server(format!("+OK {} octets\r\n{MESSAGE}.\r\n", MESSAGE.len()))
        .client("QUIT\r\n")
        .server("+OK Bye\r\n");
    let smtp_465 = conversation(40004, "192.0.2.25:465", 3)
        .server("220 mx.example.test ESMTP\r\n")
        .client("EHLO client.example.test\r\n")
        .server("250-mx.example.test\r\n250 AUTH LOGIN\r\n")
        .client("AUTH LOGIN\r\n")
        .server("334 VXNlcm5hbWU6\r\n")
        .client("YWxpY2U=\r\n")
        .server("334 UGFzc3dvcmQ6\r\n")
        .client("V29uZGVybGFuZC00Mg==\r\n")
        .server("235 2.7.0 Authentication successful\r\n")
        .client("QUIT\r\n")
        .server("221 2.0.0 Bye\r\n");
    let pop3_995 = conversation(40005, "192.0.2.110:995", 4)
        .server("+OK POP3 ready\r\n")
        .client("USER bob\r\n")
        .server("+OK\r\n")
        .client("PASS Builder-7\r\n")
        .server("+OK Logged in\r\n")
        .client("QUIT\r\n")
        .server("+OK Bye\r\n");
    [stripped, injected, stls, smtp_465, pop3_995]
        .iter()
        .flat_map(Conversation::packets)
        .collect()
}

fn missing_greeting() -> Vec<SynthPacket> {
    let smtp = conversation(40011, "192.0.2.25:587", 0)
        .without_handshake()
        .client("EHLO client.example.test\r\n")
        .server("250-mx.example.test\r\n250-PIPELINING\r\n250 AUTH PLAIN\r\n")
        .client("AUTH PLAIN AGFsaWNlAFdvbmRlcmxhbmQtNDI=\r\n")
        .server("235 2.7.0 Authentication successful\r\n")
        .client("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        .server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
        .client(format!("{MESSAGE}.\r\nQUIT\r\n"))
        .server("250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n");
    let pop3_midstream = conversation(40012, "192.0.2.110:110", 1)
        .without_handshake()
        .client("CAPA\r\n")
        .server("+OK Capability list follows\r\nUSER\r\nUIDL\r\nSTLS\r\n.\r\n")
        .client("USER bob\r\n")
        .server("+OK\r\n")
        .client("PASS Builder-7\r\n")
        .server("+OK Logged in\r\n")
        .client("STAT\r\n")
        .server("+OK 1 120\r\n")
        .client("QUIT\r\n")
        .server("+OK Bye\r\n");
    let greeting = "+OK POP3 greeting lost from the capture\r\n";
    let pop3_lost = conversation(40013, "192.0.2.110:110", 2)
        .server(greeting)
        .client("CAPA\r\n")
        .server("+OK\r\nUSER\r\n.\r\n")
        .client("USER alice\r\n")
        .server("+OK\r\n")
        .client("PASS Wonderland-42\r\n")
        .server("+OK Logged in\r\n")
        .client("QUIT\r\n")
        .server("+OK Bye\r\n");
    let mut out = smtp.packets();
    out.extend(pop3_midstream.packets());
    out.extend(without_segment(&pop3_lost, greeting.as_bytes()));
    out
}

fn broken_listing() -> Vec<SynthPacket> {
    conversation(40021, "192.0.2.110:110", 0)
        .server("+OK POP3 ready\r\n")
        .client("USER bob\r\n")
        .server("+OK\r\n")
        .client("PASS Builder-7\r\n")
        .server("+OK Logged in\r\n")
        .client("LIST\r\n")
        .server(format!(
            "+OK 2 messages\r\n1 {}\r\nnot a listing line\r\n2 4096\r\n",
            MESSAGE.len()
        ))
        .client("UIDL\r\n")
        .server("+OK\r\n1 uid-0001\r\n2 uid-0002\r\n")
        .client("RETR 1\r\n")
        .server(format!("+OK {} octets\r\n{MESSAGE}.\r\n", MESSAGE.len()))
        .client("DELE 1\r\n")
        .server("+OK Deleted\r\n")
        .client("QUIT\r\n")
        .server("+OK Bye\r\n")
        .packets()
}

/// An SMTP session whose message ends with `last`, `lost` (a segment the capture missed) and
/// `after`, then QUIT.
fn data_gap_session(
    port: u16,
    minute: i64,
    last: &str,
    lost: &str,
    after: &str,
) -> Vec<SynthPacket> {
    let conv = conversation(port, "192.0.2.25:25", minute)
        .server("220 mx.example.test ESMTP\r\n")
        .client("HELO client.example.test\r\n")
        .server("250 mx.example.test\r\n")
        .client("MAIL FROM:<alice@example.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
        .server("250 2.1.0 Ok\r\n250 2.1.5 Ok\r\n354 go ahead\r\n")
        .client(format!("{MESSAGE}{last}"))
        .client(lost)
        .client(after)
        .server("250 2.0.0 Ok: queued\r\n221 2.0.0 Bye\r\n");
    without_segment(&conv, lost.as_bytes())
}

fn data_gaps() -> Vec<SynthPacket> {
    let mut out = data_gap_session(40031, 0, "Regards", "\r\n", ".\r\nQUIT\r\n");
    out.extend(data_gap_session(
        40032,
        1,
        "Regards",
        "\r\n.",
        "\r\nQUIT\r\n",
    ));
    out.extend(data_gap_session(
        40033,
        2,
        "Regards",
        "\r\n.\r\n",
        "QUIT\r\n",
    ));
    // A lost command whose reply was captured: the gap sits before the reply in time.
    let conv = conversation(40034, "192.0.2.25:25", 3)
        .server("220 mx.example.test ESMTP\r\n")
        .client("HELO client.example.test\r\n")
        .server("250 mx.example.test\r\n")
        .client("NOOP lost-segment\r\n")
        .server("250 2.0.0 Ok\r\n")
        .client("QUIT\r\n")
        .server("221 2.0.0 Bye\r\n");
    out.extend(without_segment(&conv, b"NOOP lost-segment\r\n"));
    out
}

/// Writes `packets` as a pcap file at `path`.
pub fn write_capture(path: &Path, packets: &[SynthPacket]) -> std::io::Result<()> {
    let file = std::io::BufWriter::new(std::fs::File::create(path)?);
    let mut writer = PcapWriter::new(file, 1)?;
    writer.packets(packets)?;
    writer.finish()?;
    Ok(())
}

#[allow(dead_code)] // Also compiled into tests/crafted.rs, which has a main of its own.
fn main() -> std::io::Result<()> {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "captures".to_string());
    for (name, packets) in crafted_captures() {
        let path = Path::new(&dir).join(name);
        write_capture(&path, &packets)?;
        println!("{}: {} packets", path.display(), packets.len());
    }
    Ok(())
}
