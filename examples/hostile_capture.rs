//! Writes hostile captures that try to exhaust memory, to check the bounds with
//! `/usr/bin/time -v mailsift export OUT.pcap -o /dev/null` (`bench/attacks.sh` runs them all).
//! Each ends with a control session (a login as `control` and one message) written while
//! every flow of the attack is still open, which must come out whole.
//!
//! Usage:
//! - `cargo run --release --example hostile_capture -- long-lines FLOWS SEGMENTS OUT.pcap`:
//!   FLOWS concurrent SMTP sessions, each sending SEGMENTS segments of 1400 bytes of one line
//!   that never ends.
//! - `cargo run --release --example hostile_capture -- half-open FLOWS OUT.pcap`: FLOWS
//!   concurrent SMTP sessions that greet, send EHLO and MAIL, and never close.
//! - `cargo run --release --example hostile_capture -- big-attachment MIB OUT.pcap`: one SMTP
//!   session carrying a message with a base64 attachment of MIB MiB (its bytes are
//!   `i * 31 % 251` for byte `i`, so an extracted file can be checked).
//! - `cargo run --release --example hostile_capture -- client-only MESSAGES MIB OUT.pcap`:
//!   MESSAGES concurrent SMTP sessions of which only the client side was captured, each sending
//!   a message of MIB MiB that no reply ever answers.
//! - `cargo run --release --example hostile_capture -- noops FLOWS COMMANDS OUT.pcap`: FLOWS
//!   concurrent SMTP sessions, each pipelining COMMANDS NOOPs that no reply answers.
//! - `cargo run --release --example hostile_capture -- unanswered FLOWS COMMANDS OUT.pcap`:
//!   FLOWS concurrent SMTP sessions, each sending EHLO, MAIL and COMMANDS recipients with
//!   100-byte paths, of which only the client side was captured.
//! - `cargo run --release --example hostile_capture -- replies FLOWS REPLIES OUT.pcap`: FLOWS
//!   concurrent SMTP sessions whose server sends REPLIES replies that no command asked for.
//! - `cargo run --release --example hostile_capture -- open-headers FLOWS KIB OUT.pcap`: FLOWS
//!   concurrent SMTP sessions, each in DATA with KIB KiB of header lines and no end of them.

use mailsift::capture::synth::{Conversation, PcapWriter, SynthPacket};
use mailsift::time::Timestamp;
use std::io::BufWriter;
use std::net::SocketAddr;

/// The packets of flow number `i`.
type FlowPackets = dyn Fn(usize) -> Vec<SynthPacket>;

fn client(i: usize) -> SocketAddr {
    let port = 1024 + (i % 60_000) as u16;
    let ip = std::net::Ipv4Addr::new(10, (i >> 16) as u8, (i >> 8) as u8, i as u8);
    SocketAddr::new(ip.into(), port)
}

fn conversation(i: usize) -> Conversation {
    Conversation::new(client(i), "192.0.2.25:25".parse().expect("address"))
        .start(Timestamp::from_parts(1_700_000_000, 0))
        .mss(1400)
        .without_close()
}

/// A message with one base64 attachment of `size` bytes, dot-stuffing not needed (base64).
fn attachment_message(size: usize) -> Vec<u8> {
    use base64::Engine;
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
    let mut m = b"From: a@example.test\r\nTo: b@example.test\r\nSubject: big\r\n\
MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=big\r\n\r\n--big\r\n\
Content-Type: text/plain\r\n\r\nsee attached\r\n--big\r\n\
Content-Type: application/octet-stream; name=big.bin\r\n\
Content-Disposition: attachment; filename=big.bin\r\n\
Content-Transfer-Encoding: base64\r\n\r\n"
        .to_vec();
    for line in encoded.as_bytes().chunks(76) {
        m.extend_from_slice(line);
        m.extend_from_slice(b"\r\n");
    }
    m.extend_from_slice(b"--big--\r\n.\r\n");
    m
}

/// A whole SMTP session of flow `i` carrying `body` (which ends with its `.` line).
fn smtp_message(i: usize, body: &[u8]) -> Conversation {
    Conversation::new(client(i), "192.0.2.25:25".parse().expect("address"))
        .start(Timestamp::from_parts(1_700_000_000, 0))
        .mss(1400)
        .server("220 mx ESMTP\r\n")
        .client("EHLO x\r\n")
        .server("250 mx\r\n")
        .client("MAIL FROM:<a@example.test>\r\n")
        .server("250 ok\r\n")
        .client("RCPT TO:<b@example.test>\r\n")
        .server("250 ok\r\n")
        .client("DATA\r\n")
        .server("354 go\r\n")
        .client(body)
        .server("250 2.0.0 queued\r\n")
        .client("QUIT\r\n")
        .server("221 bye\r\n")
}

fn usage() -> ! {
    eprintln!(
        "usage: hostile_capture long-lines FLOWS SEGMENTS OUT.pcap | half-open FLOWS OUT.pcap \
         | big-attachment MIB OUT.pcap | client-only MESSAGES MIB OUT.pcap \
         | noops FLOWS COMMANDS OUT.pcap | unanswered FLOWS COMMANDS OUT.pcap \
         | replies FLOWS REPLIES OUT.pcap | open-headers FLOWS KIB OUT.pcap"
    );
    std::process::exit(2);
}

fn number(arg: Option<&String>) -> usize {
    arg.and_then(|a| a.parse().ok()).unwrap_or_else(|| usage())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (flows, out, per_flow): (usize, &String, Box<FlowPackets>) = match args
        .get(1)
        .map(String::as_str)
    {
        Some("long-lines") => {
            let segments = number(args.get(3));
            let line = vec![b'A'; 1400 * segments];
            (
                number(args.get(2)),
                args.get(4).unwrap_or_else(|| usage()),
                Box::new(move |i| {
                    conversation(i)
                        .server("220 mx ESMTP\r\n")
                        .client(&line)
                        .packets()
                }),
            )
        }
        Some("open-headers") => {
            // Header lines of 70 bytes, KIB KiB of them, and never the blank line that ends
            // the header block: each message's decoder holds its header block open.
            let kib = number(args.get(3));
            let header = format!("X-Filler: {}\r\n", "h".repeat(58)).repeat(kib * 1024 / 70);
            (
                number(args.get(2)),
                args.get(4).unwrap_or_else(|| usage()),
                Box::new(move |i| {
                    conversation(i)
                            .server("220 mx ESMTP\r\n")
                            .client("EHLO x\r\nMAIL FROM:<a@example.test>\r\nRCPT TO:<b@example.test>\r\nDATA\r\n")
                            .server("250 mx\r\n250 ok\r\n250 ok\r\n354 go\r\n")
                            .client(&header)
                            .packets()
                }),
            )
        }
        Some("half-open") => (
            number(args.get(2)),
            args.get(3).unwrap_or_else(|| usage()),
            Box::new(|i| {
                conversation(i)
                    .server("220 mx ESMTP\r\n")
                    .client("EHLO x\r\nMAIL FROM:<a@example.test>\r\n")
                    .packets()
            }),
        ),
        Some("big-attachment") => {
            let body = attachment_message(number(args.get(2)) << 20);
            (
                1,
                args.get(3).unwrap_or_else(|| usage()),
                Box::new(move |i| smtp_message(i, &body).packets()),
            )
        }
        Some("client-only") => {
            let body = attachment_message(number(args.get(3)) << 20);
            (
                number(args.get(2)),
                args.get(4).unwrap_or_else(|| usage()),
                Box::new(move |i| {
                    let mut pkts = smtp_message(i, &body).packets();
                    pkts.retain(|p| p.from == mailsift::session::Direction::Client);
                    pkts
                }),
            )
        }
        Some("noops") => {
            let noops = "NOOP\r\n".repeat(number(args.get(3)));
            (
                number(args.get(2)),
                args.get(4).unwrap_or_else(|| usage()),
                Box::new(move |i| {
                    conversation(i)
                        .server("220 mx ESMTP\r\n")
                        .client(&noops)
                        .packets()
                }),
            )
        }
        Some("unanswered") => {
            let rcpts = format!("RCPT TO:<{}@example.test>\r\n", "r".repeat(88))
                .repeat(number(args.get(3)));
            let commands = format!("EHLO x\r\nMAIL FROM:<a@example.test>\r\n{rcpts}");
            (
                number(args.get(2)),
                args.get(4).unwrap_or_else(|| usage()),
                Box::new(move |i| {
                    let mut pkts = conversation(i).client(&commands).packets();
                    pkts.retain(|p| p.from == mailsift::session::Direction::Client);
                    pkts
                }),
            )
        }
        Some("replies") => {
            let replies = format!(
                "220 mx ESMTP\r\n{}",
                "250 ok\r\n".repeat(number(args.get(3)))
            );
            (
                number(args.get(2)),
                args.get(4).unwrap_or_else(|| usage()),
                Box::new(move |i| conversation(i).server(&replies).packets()),
            )
        }
        _ => usage(),
    };
    // No flow ever closes or finishes its line, so written one after another they are all
    // open, holding what they sent, by the end of the capture.
    let mut writer = PcapWriter::new(
        BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?),
        1,
    )?;
    let mut packets = 0;
    for i in 0..flows {
        let pkts = per_flow(i);
        packets += pkts.len();
        writer.packets(&pkts)?;
    }
    // Last, while every flow of the attack is still open: the control, which must come out
    // whole (`bench/attacks.sh` checks it).
    let control =
        mailsift::capture::synth::control_session(Timestamp::from_parts(1_700_000_100, 0))
            .packets();
    packets += control.len();
    writer.packets(&control)?;
    writer.finish()?;
    eprintln!("wrote {flows} flows and the control, {packets} packets, to {out}");
    Ok(())
}
