//! Writes hostile captures that try to exhaust memory, to check the bounds with
//! `/usr/bin/time -v mailsift export OUT.pcap -o /dev/null`.
//!
//! Usage:
//! - `cargo run --release --example hostile_capture -- long-lines FLOWS SEGMENTS OUT.pcap`:
//!   FLOWS concurrent SMTP sessions, each sending SEGMENTS segments of 1400 bytes of one line
//!   that never ends.
//! - `cargo run --release --example hostile_capture -- half-open FLOWS OUT.pcap`: FLOWS
//!   concurrent SMTP sessions that greet, send EHLO and MAIL, and never close.

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

fn usage() -> ! {
    eprintln!(
        "usage: hostile_capture long-lines FLOWS SEGMENTS OUT.pcap | half-open FLOWS OUT.pcap"
    );
    std::process::exit(2);
}

fn number(arg: Option<&String>) -> usize {
    arg.and_then(|a| a.parse().ok()).unwrap_or_else(|| usage())
}

fn main() -> std::io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let (flows, out, per_flow): (usize, &String, Box<FlowPackets>) =
        match args.get(1).map(String::as_str) {
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
    writer.finish()?;
    eprintln!("wrote {flows} flows, {packets} packets, to {out}");
    Ok(())
}
